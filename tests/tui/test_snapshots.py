"""Every screen of the console as a picture, in Persian and English, at 80x24 (a till's
terminal, tmux) and 120x40, against the real API over a ledger with fixed data and a
fixed clock. A change to what a screen shows fails here until the new pictures are
looked at and accepted (`pytest tests/tui/test_snapshots.py --snapshot-update`).

The pictures are Textual's rendering, so Textual is pinned exactly (pyproject's test
extra); the cursor does not blink."""

from __future__ import annotations

import html
import itertools
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ledger.sales import post_sale
from ledger.types import SaleLine, SaleRequest
from ledger.users import add_user
from terminal_agent.runtime import Runtime
from terminal_agent.tui.api import AgentApi
from terminal_agent.tui.app import build_console
from terminal_agent.tui.base import ConfirmScreen, FormScreen
from terminal_agent.tui.login import ReloginScreen
from terminal_agent.tui.members import MemberScreen
from terminal_agent.tui.tasks import AuditScreen, GiftScreen, HistoryScreen, StatusScreen, UsersScreen
from terminal_agent.tui.till import RefundScreen, TillScreen
from tests.api.conftest import TOKEN
from tests.tui.journeys import login, rows, settled, text, typed, until

STEADY_TRIES = 25  # pictures 0.2 s apart until two agree: 5 s for answers that are still coming
ROW = re.compile(r'<text[^>]*\by="([0-9.]+)"[^>]*>(.*?)</text>')

CARD = "6395000000000101"
GIFT = "7000111122223333"
SIZES = [(80, 24), (120, 40)]


def seed(runtime: Runtime) -> None:
    """A member with a card, a sale, an adjustment; a gift card; an admin."""
    led = runtime.ledger
    assert runtime.pin_key is not None
    runtime.started_at = datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc)
    add_user(led, username="azadeh", role="admin", pin="246810", actor="setup", pin_key=runtime.pin_key)
    member = led.enrol_member(name="لیلا کریمی", mobile="09121112233", actor="mina",
                              birth_date=datetime(1991, 8, 1).date())
    led.issue_card(member_id=member.id, number=CARD, technology="magstripe", actor="mina")
    lines = (SaleLine(sku="A1", name="Rice", category="grocery", quantity=2, unit_price=2_500_000),
             SaleLine(sku="B7", name="Tea", category="grocery", quantity=1, unit_price=900_000))
    post_sale(led, SaleRequest(idempotency_key="k1", card_number=CARD, receipt_ref="R-1001", lines=lines))
    led.adjust(member_id=member.id, points=50, reason="welcome", actor="mina")
    led.gift_issue(number=GIFT, amount=1_000_000, actor="mina")


async def as_manager(pilot: Any) -> None:
    await login(pilot, "azadeh", "246810")
    await until(pilot, lambda: isinstance(pilot.app.screen, MemberScreen))


async def member_found(pilot: Any) -> None:
    await as_manager(pilot)
    await typed(pilot, "#lookup", CARD)
    await until(pilot, lambda: "\n" in text(pilot.app, "#member") and pilot.app.screen.progress is not None)


async def screen_login(pilot: Any) -> None:
    from terminal_agent.tui.login import LoginScreen

    await until(pilot, lambda: isinstance(pilot.app.screen, LoginScreen))
    await typed(pilot, "#username", "mina", enter=False)


async def screen_member(pilot: Any) -> None:
    await member_found(pilot)
    await pilot.press("tab")  # to the cards table


async def screen_enrol(pilot: Any) -> None:
    await as_manager(pilot)
    await pilot.press("f2")
    await until(pilot, lambda: isinstance(pilot.app.screen, FormScreen))
    form = pilot.app.screen
    form.query_one("#f-name").value = "لیلا کریمی"
    form.query_one("#f-mobile").value = "09121112233"
    form.query_one("#f-birth_date").value = "1370-13-10" if pilot.app.look.rtl else "1991-13-10"
    form.submit()  # a date not in the calendar: refused with an example


async def screen_history(pilot: Any) -> None:
    await member_found(pilot)
    await pilot.press("f7")
    await until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen) and rows(pilot.app, "#history"))


async def screen_gift(pilot: Any) -> None:
    await as_manager(pilot)
    await pilot.press("f8")
    await until(pilot, lambda: isinstance(pilot.app.screen, GiftScreen))
    await typed(pilot, "#gift-number", GIFT)
    await until(pilot, lambda: text(pilot.app, "#result"))


async def screen_users(pilot: Any) -> None:
    await as_manager(pilot)
    await pilot.press("f9")
    await until(pilot, lambda: isinstance(pilot.app.screen, UsersScreen) and rows(pilot.app, "#users"))


async def screen_audit(pilot: Any) -> None:
    await as_manager(pilot)
    await pilot.app.screen.run_action("audit")
    await until(pilot, lambda: isinstance(pilot.app.screen, AuditScreen) and rows(pilot.app, "#audit"))
    pilot.app.screen.query_one("#audit").focus()


async def screen_status(pilot: Any) -> None:
    await as_manager(pilot)
    await pilot.app.screen.run_action("status")
    await until(pilot, lambda: isinstance(pilot.app.screen, StatusScreen) and text(pilot.app, "#status-text"))


async def screen_menu(pilot: Any) -> None:
    await as_manager(pilot)
    await pilot.press("f1")
    await pilot.press("down", "down", "down")


async def screen_till(pilot: Any) -> None:
    await login(pilot, "reza", "1111")
    await until(pilot, lambda: isinstance(pilot.app.screen, TillScreen))
    till = pilot.app.screen
    await typed(pilot, "#lookup", CARD)
    await until(pilot, lambda: till.card == CARD and text(pilot.app, "#customer"))
    await pilot.pause(0.3)  # the offers to mention (none for this member) come with a second answer
    await typed(pilot, "#amount", "1200000", enter=False)
    await typed(pilot, "#redeem", "100", enter=False)
    await typed(pilot, "#receipt", "R-1002", enter=False)
    await till.run_action("quote")
    await until(pilot, lambda: text(pilot.app, "#quote"))


async def screen_refund(pilot: Any) -> None:
    await login(pilot, "reza", "1111")
    await until(pilot, lambda: isinstance(pilot.app.screen, TillScreen))
    await pilot.press("f4")
    await until(pilot, lambda: isinstance(pilot.app.screen, RefundScreen))
    await typed(pilot, "#receipt", "R-1001")
    await until(pilot, lambda: rows(pilot.app, "#lines"))


async def screen_gift_spend(pilot: Any) -> None:
    await login(pilot, "reza", "1111")
    await until(pilot, lambda: isinstance(pilot.app.screen, TillScreen))
    await pilot.press("f5")
    await until(pilot, lambda: isinstance(pilot.app.screen, FormScreen))
    form = pilot.app.screen
    form.query_one("#f-number").value = GIFT
    form.query_one("#f-amount").value = "400000"
    form.query_one("#f-receipt").value = "R-1002"


async def screen_relogin(pilot: Any) -> None:
    """The agent restarted (it knows no session): the PIN is asked over the screen."""
    await member_found(pilot)
    pilot.app.runtime_for_test.sessions = type(pilot.app.runtime_for_test.sessions)()
    await pilot.press("f6")
    await until(pilot, lambda: isinstance(pilot.app.screen, FormScreen))
    form = pilot.app.screen
    form.query_one("#f-points").value = "5"
    form.query_one("#f-reason").value = "test"
    form.submit()
    await until(pilot, lambda: isinstance(pilot.app.screen, ReloginScreen))


async def screen_quit(pilot: Any) -> None:
    await login(pilot, "reza", "1111")
    await until(pilot, lambda: isinstance(pilot.app.screen, TillScreen))
    await pilot.press("ctrl+c")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))


SCREENS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "login": screen_login, "member": screen_member, "menu": screen_menu, "enrol": screen_enrol,
    "history": screen_history, "gift": screen_gift, "users": screen_users, "audit": screen_audit,
    "status": screen_status, "till": screen_till, "refund": screen_refund, "gift_spend": screen_gift_spend,
    "relogin": screen_relogin, "quit": screen_quit,
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("locale", ["fa", "en"])
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen(screen: str, locale: str, size: tuple[int, int], agent_url: str, runtime: Runtime,
                snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    made = itertools.count(1)
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(made)))  # ids on screen (audit) stay put
    monkeypatch.setattr("terminal_agent.tui.till.receipt_ref_now", lambda: "C260301-123000")  # not the clock
    seed(runtime)
    app = build_console(AgentApi(agent_url, TOKEN), locale, blink=False)
    app.runtime_for_test = runtime  # type: ignore[attr-defined]  (the relogin picture forgets its sessions)

    shown: list[str] = []

    async def run_before(pilot: Any) -> None:
        await SCREENS[screen](pilot)
        await pilot.pause(0.2)
        await settled(pilot)
        shown.append(await steady(pilot))

    accepted = SNAPSHOTS / f"test_screen[{screen}-{locale}-{size[0]}x{size[1]}].svg"
    assert snap_compare(app, terminal_size=size, run_before=run_before), (
        "the screen differs from the accepted picture, rows (accepted | shown):\n"
        + rows_differing(accepted.read_text(encoding="utf-8") if accepted.exists() else "", shown[-1] if shown else ""))


SNAPSHOTS = Path(__file__).with_name("__snapshots__") / "test_snapshots"


async def steady(pilot: Any) -> str:
    """The picture once two taken 0.2 s apart agree: an answer still on its way (a
    loaded CI machine) lands before the picture, not in it."""
    last = ""
    for _ in range(STEADY_TRIES):
        await pilot.pause(0.2)
        shot = str(pilot.app.export_screenshot(title=type(pilot.app).__name__))  # as the plugin titles it
        if shot == last:
            return shot
        last = shot
    raise AssertionError(f"the screen kept changing for {STEADY_TRIES * 0.2:.0f} s:\n{screen_text(last)}")


def screen_text(svg: str) -> list[str]:
    """An SVG picture's text, a row per line of the terminal."""
    lines: dict[float, str] = {}
    for y, words in ROW.findall(svg):
        lines[float(y)] = lines.get(float(y), "") + html.unescape(re.sub(r"<[^>]+>", "", words))
    return [lines[y].replace("\u00a0", " ").rstrip() for y in sorted(lines)]


def rows_differing(accepted: str, shown: str) -> str:
    """For CI's log, where the HTML report cannot be seen: the rows that differ."""
    a, b = screen_text(accepted), screen_text(shown)
    out = [f"{i:>2}: {x!r} | {y!r}" for i, (x, y) in enumerate(itertools.zip_longest(a, b, fillvalue="")) if x != y]
    return "\n".join(out) or "(same text: the colours or the cursor differ)"
