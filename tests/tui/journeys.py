"""Helpers to drive the console as a person does (Textual's pilot)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from terminal_agent.tui.base import ConfirmScreen, FormScreen
from terminal_agent.tui.widgets import BidiInput, Table, Words

UNTIL_S = 10.0


async def until(pilot: Any, condition: Callable[[], Any]) -> None:
    deadline = time.monotonic() + UNTIL_S
    while not condition():
        assert time.monotonic() < deadline, (f"the console did not get there: {pilot.app.screen}: "
                                             f"{[w.text for w in pilot.app.screen.query(Words)]}")
        await pilot.pause(0.05)


def text(app: Any, selector: str) -> str:
    """What a Words widget says (in reading order), on the screen on top or below it
    ("" while no screen shows one)."""
    for screen in reversed(app.screen_stack):
        found = screen.query(selector)
        if found:
            return str(found.first(Words).text)
    return ""


def rows(app: Any, selector: str) -> list[Any]:
    """What the rows of a table on the screen on top stand for ([] while it has none)."""
    found = app.screen.query(selector)
    return list(found.first(Table).row_data) if found else []


async def fill(pilot: Any, **values: str) -> None:
    """Type into the open form and press Enter from field to field; Enter in the last
    one sends the form."""
    await until(pilot, lambda: isinstance(pilot.app.screen, FormScreen))
    form = pilot.app.screen
    for name, value in values.items():
        form.query_one(f"#f-{name}", BidiInput).value = value
    fields = list(form.query(BidiInput))
    fields[0].focus()
    await pilot.pause()
    for field in fields:
        assert field.has_focus
        await pilot.press("enter")
        await pilot.pause()


async def confirm(pilot: Any, yes: bool = True) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
    await pilot.press("enter" if yes else "escape")
    await pilot.pause()


async def typed(pilot: Any, selector: str, value: str, enter: bool = True) -> None:
    field = pilot.app.screen.query_one(selector, BidiInput)
    field.value = value
    field.focus()
    await pilot.pause()
    if enter:
        await pilot.press("enter")


async def login(pilot: Any, username: str, pin: str) -> None:
    """The user, Enter (to the PIN), the PIN, Enter: as a person does."""
    from terminal_agent.tui.login import LoginScreen

    await until(pilot, lambda: isinstance(pilot.app.screen, LoginScreen))
    screen = pilot.app.screen
    await typed(pilot, "#username", username)
    assert screen.query_one("#pin", BidiInput).has_focus
    await typed(pilot, "#pin", pin)


async def settled(pilot: Any) -> None:
    """Until every table on every screen has measured its rows (a DataTable sizes its
    columns when the app is next idle; a picture taken before shows them cut)."""
    def measured() -> bool:
        return all(not (t._new_rows or t._updated_cells or t._require_update_dimensions)
                   for screen in pilot.app.screen_stack for t in screen.query(Table))
    await until(pilot, measured)
    await pilot.pause(0.1)
