"""The manager console driven like a person would (Textual's pilot), against the real
API served by uvicorn on loopback over a real SQLite ledger: log in, enrol, issue,
swipe, replace, adjust, block; every action audited under the manager's name."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from textual.widgets import DataTable, Input, Static

from ledger.schema import audit_log
from terminal_agent.runtime import Runtime
from terminal_agent.tui.api import AgentApi
from terminal_agent.tui.app import FormScreen, LoginScreen, MainScreen, ManagerConsole
from tests.api.conftest import TOKEN
from tests.e2e.agent_proc import free_port

UNTIL_S = 10.0


async def until(pilot: Any, condition: Callable[[], Any]) -> None:
    deadline = time.monotonic() + UNTIL_S
    while not condition():
        assert time.monotonic() < deadline, (f"the console did not get there: {pilot.app.screen}: "
                                             f"{[str(w.render()) for w in pilot.app.screen.query(Static)]}")
        await pilot.pause(0.05)


def text(app: ManagerConsole, selector: str) -> str:
    """What a Static shows on the main screen, or on the screen on top (a form, the login)."""
    screens = [app.screen, *reversed(app.screen_stack)]
    for screen in screens:
        found = screen.query(selector)
        if found:
            return str(found.first(Static).render())
    raise AssertionError(f"nothing shows {selector}")


async def fill(pilot: Any, **values: str) -> None:
    """Type into the open form and press Enter from field to field; Enter in the last
    one sends the form, as a person does."""
    await until(pilot, lambda: isinstance(pilot.app.screen, FormScreen))
    form = pilot.app.screen
    for name, value in values.items():
        form.query_one(f"#f-{name}", Input).value = value
    fields = list(form.query(Input))
    fields[0].focus()
    await pilot.pause()
    for field in fields:
        assert field.has_focus
        await pilot.press("enter")
        await pilot.pause()


async def find(pilot: Any, main: MainScreen, query: str) -> None:
    """Type into the lookup and press Enter."""
    lookup = main.query_one("#lookup", Input)
    lookup.value = query
    lookup.focus()
    await pilot.press("enter")


async def login_with_enter(pilot: Any, username: str, pin: str) -> None:
    """Type the user, Enter (to the PIN), the PIN, Enter: as a person does."""
    screen = pilot.app.screen
    screen.query_one("#username", Input).value = username
    screen.query_one("#username", Input).focus()
    await pilot.press("enter")
    assert screen.query_one("#pin", Input).has_focus
    screen.query_one("#pin", Input).value = pin
    await pilot.press("enter")


def test_a_manager_enrols_issues_swipes_replaces_adjusts_and_blocks(agent_url: str, runtime: Runtime) -> None:
    async def scenario() -> None:
        app = ManagerConsole(AgentApi(agent_url, TOKEN), "en", "mina")
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, LoginScreen))
            app.screen.query_one("#pin", Input).value = "0000"
            await pilot.click("#login-button")
            await until(pilot, lambda: "PIN" in text(app, "#login-error"))
            assert isinstance(app.screen, LoginScreen) and app.screen.query_one("#pin", Input).value == ""

            await login_with_enter(pilot, "reza", "1111")  # a cashier
            await until(pilot, lambda: "for managers" in text(app, "#login-error"))

            await login_with_enter(pilot, "mina", "654321")
            await until(pilot, lambda: isinstance(app.screen, MainScreen))
            main = app.screen

            await pilot.press("f3")  # issue a card with nobody found: told what to do first
            await until(pilot, lambda: "Find a member first" in text(app, "#message"))

            await pilot.press("f2")
            await fill(pilot, name="", mobile="09121112233")
            assert "Name is required" in text(app, "#form-error")  # the form stays open and says why
            await fill(pilot, name="Leila Karimi", mobile="09121112233", birth_date="1990-06-03")
            await until(pilot, lambda: "Member enrolled" in text(app, "#message"))
            assert "Leila Karimi" in text(app, "#member") and "Balance: 100" in text(app, "#member")

            await pilot.press("f3")
            await fill(pilot, card_number="6395000000000101")
            await until(pilot, lambda: main.query_one("#cards", DataTable).row_count == 1)

            # a swipe at the till's reader brings the member up by itself
            main.query_one("#lookup", Input).value = ""
            main.show(None)
            await until(pilot, lambda: runtime.bus.subscribers)  # the console listens
            runtime.bus.publish({"type": "card", "reader_id": "r1", "technology": "magstripe",
                                 "number": "6395000000000101", "masked": "…0101", "at": "2026-11-25T10:00:00+00:00"})
            await until(pilot, lambda: "Leila Karimi" in text(app, "#member"))
            assert main.query_one("#lookup", Input).value == "6395000000000101"

            await pilot.press("f4")  # the selected card is offered as the lost one
            await until(pilot, lambda: isinstance(app.screen, FormScreen))
            assert app.screen.query_one("#f-old_card", Input).value == "6395000000000101"
            await fill(pilot, new_card="6395000000000202")
            await until(pilot, lambda: "Card replaced" in text(app, "#message"))
            rows = [main.query_one("#cards", DataTable).get_row_at(i)[:2] for i in range(2)]
            assert sorted(rows) == [["6395000000000101", "replaced"], ["6395000000000202", "active"]]

            await find(pilot, main, "6395000000000101")
            await until(pilot, lambda: "replaced on" in text(app, "#message"))

            await find(pilot, main, "09121112233")
            await until(pilot, lambda: "Leila Karimi" in text(app, "#member"))
            await pilot.press("f6")
            await fill(pilot, points="many", reason="welcome gift")
            assert "whole number" in text(app, "#form-error")
            await fill(pilot, points="500", reason="welcome gift")
            await until(pilot, lambda: "new balance: 600" in text(app, "#message"))
            assert "Balance: 600" in text(app, "#member")

            await pilot.press("f5")
            await fill(pilot, card_number="6395000000000202", reason="stolen")
            await until(pilot, lambda: "Card blocked" in text(app, "#message"))

            await pilot.press("f2")  # the same mobile again: the agent's refusal is shown as it is
            await fill(pilot, name="Someone", mobile="09121112233")
            await until(pilot, lambda: "already has the mobile" in text(app, "#message"))

    asyncio.run(scenario())
    with runtime.ledger.engine.connect() as conn:
        done = conn.execute(select(audit_log.c.action, audit_log.c.actor)).all()
    by_mina = {action for action, actor in done if actor == "mina"}
    assert {"member.enrol", "card.issue", "card.replace", "points.adjust", "card.block"} <= by_mina, done


def test_the_console_says_when_the_agent_is_not_running() -> None:
    async def scenario() -> None:
        app = ManagerConsole(AgentApi(f"http://127.0.0.1:{free_port()}", TOKEN), "fa")
        async with app.run_test() as pilot:
            await until(pilot, lambda: isinstance(app.screen, LoginScreen))
            app.screen.query_one("#username", Input).value = "mina"
            app.screen.query_one("#pin", Input).value = "654321"
            await pilot.click("#login-button")
            await until(pilot, lambda: "does not answer" in text(app, "#login-error"))

    asyncio.run(scenario())
