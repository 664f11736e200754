"""The widgets that know Persian, on a screen of their own: an input field that edits
Persian as a person expects in a terminal without bidi, and text that wraps before
it is put right to left."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.app import App, ComposeResult

from terminal_agent.i18n import visual
from terminal_agent.tui.widgets import BidiInput, Look, Words


class Bench(App[None]):
    def __init__(self, look: Look) -> None:
        super().__init__()
        self.look = look
        self.blink = False

    def compose(self) -> ComposeResult:
        yield BidiInput(id="field")
        yield Words("", id="words")


def _line(app: Any) -> str:
    return str(app.query_one("#field", BidiInput).render_line(0).text)


def test_typing_persian_shows_it_joined_right_to_left_and_the_arrows_move_the_way_they_point() -> None:
    async def scenario() -> None:
        app = Bench(Look("fa"))
        async with app.run_test(size=(40, 6)) as pilot:
            field = app.query_one("#field", BidiInput)
            field.focus()
            await pilot.press(*"سلام")
            assert field.value == "سلام"  # kept in typing (logical) order
            assert "سلام" not in _line(app)  # never unjoined in typing order
            assert _line(app).rstrip().endswith("ﺳ")  # the first letter typed is on the right, joined
            await pilot.press("right")  # towards the start of a Persian word
            assert field.cursor_position == 3
            await pilot.press("left", "left")
            assert field.cursor_position == 4
            await pilot.press("home")
            await pilot.press(*"و ")
            assert field.value == "و سلام"
            field.value = "09121112233"  # digits stay left to right, flush right
            await pilot.pause()
            assert _line(app).rstrip().endswith("09121112233") and _line(app).startswith(" ")

    asyncio.run(scenario())


def test_a_terminal_that_does_bidi_gets_the_letters_as_typed() -> None:
    async def scenario() -> None:
        app = Bench(Look("fa", bidi="terminal"))
        async with app.run_test(size=(40, 6)) as pilot:
            field = app.query_one("#field", BidiInput)
            field.focus()
            await pilot.press(*"سلام")
            assert "سلام" in _line(app)
            words = app.query_one("#words", Words)
            words.update("مانده امتیاز")
            await pilot.pause()
            assert "مانده امتیاز" in str(words.render())

    asyncio.run(scenario())


def test_words_wrap_first_then_each_line_reads_from_the_right() -> None:
    async def scenario() -> None:
        app = Bench(Look("fa"))
        async with app.run_test(size=(12, 6)) as pilot:
            words = app.query_one("#words", Words)
            words.update("یک دو سه چهار پنج")
            await pilot.pause()
            shown = str(words.render()).split("\n")
            assert [x.strip() for x in shown] == [visual("یک دو سه"), visual("چهار پنج")]

    asyncio.run(scenario())


def test_persian_digits_follow_the_setting() -> None:
    assert Look("fa").num(1200) == "۱٬۲۰۰" and Look("fa", persian_digits=False).num(1200) == "1٬200"
    assert Look("fa", persian_digits=False).t("pin_digits", role="x", min="6") == "رمز x باید 6 تا 12 رقم باشد"
    assert Look("fa").ident("R-1001") == "R-1001" and Look("fa").ident("6395") == "۶۳۹۵"
