"""The console driven like a person would (Textual's pilot), against the real API
served by uvicorn on loopback over a real SQLite ledger: the manager's journeys
(enrol, issue, swipe, replace, adjust, block, history, gift cards, users), the
cashier's (sale, redeem, refund, gift card spend), Persian throughout, roles, a
refusal that changes nothing, Ctrl+C, and an agent that restarts under the console."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import uvicorn
from sqlalchemy import select

from ledger.schema import audit_log, members, users
from ledger.users import add_user
from terminal_agent.api.app import create_app
from terminal_agent.api.server import server_config
from terminal_agent.runtime import Runtime
from terminal_agent.tui.api import AgentApi
from terminal_agent.tui.app import build_console
from terminal_agent.tui.base import ConfirmScreen, FormScreen
from terminal_agent.tui.login import LoginScreen, ReloginScreen
from terminal_agent.tui.members import MemberScreen
from terminal_agent.tui.tasks import AuditScreen, GiftScreen, HistoryScreen, StatusScreen, UsersScreen
from terminal_agent.tui.till import RefundScreen, TillScreen
from terminal_agent.tui.widgets import BidiInput
from tests.api.conftest import TOKEN
from tests.e2e.agent_proc import free_port
from tests.tui.journeys import confirm, fill, login, rows, text, typed, until

CARD = "6395000000000101"
NEW_CARD = "6395000000000202"


def _audit(runtime: Runtime) -> set[tuple[str, str]]:
    with runtime.ledger.engine.connect() as conn:
        return {(a, actor) for a, actor in conn.execute(select(audit_log.c.action, audit_log.c.actor))}


def test_a_manager_enrols_issues_swipes_replaces_adjusts_blocks_and_reads_history(
        agent_url: str, runtime: Runtime) -> None:
    async def scenario() -> None:
        app = build_console(AgentApi(agent_url, TOKEN), "en", username="mina")
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, LoginScreen))
            app.screen.query_one("#pin", BidiInput).value = "0000"
            await pilot.click("#login-button")
            await until(pilot, lambda: "Wrong user name or PIN" in text(app, "#login-error"))
            assert app.screen.query_one("#pin", BidiInput).value == ""

            await login(pilot, "mina", "654321")
            await until(pilot, lambda: isinstance(app.screen, MemberScreen))
            main = app.screen
            assert "mina (manager)" in text(app, "#titlebar")
            assert "users" not in [o.id for o in main.query_one("#menu").options]  # an admin's task

            await pilot.press("f3")  # issue a card with nobody found: told what to do first
            await until(pilot, lambda: "Find a member first" in text(app, "#message"))

            await pilot.press("f2")
            await fill(pilot, name="", mobile="09121112233")
            assert "Name is required" in text(app, "#form-error")  # the form stays open and says why
            await fill(pilot, name="Leila Karimi", mobile="09121112233", birth_date="1991-02-30")
            assert "no such Gregorian date" in text(app, "#form-error") and "1991-08-01" in text(app, "#form-error")
            await fill(pilot, name="Leila Karimi", mobile="09121112233", birth_date="1991-06-03")
            await until(pilot, lambda: "Member enrolled" in text(app, "#message"))
            assert "Leila Karimi" in text(app, "#member") and "Balance: 100 points" in text(app, "#member")
            assert "born 1991-06-03" in text(app, "#member")
            await until(pilot, lambda: "50,000,000 Rial more to Silver" in text(app, "#member"))

            await pilot.press("f3")
            await fill(pilot, card_number=CARD)
            await until(pilot, lambda: len(rows(app, "#cards")) == 1)

            # a swipe at the till's reader brings the member up by itself
            main.query_one("#lookup", BidiInput).value = ""
            main.show(None)
            await until(pilot, lambda: runtime.bus.subscribers)  # the console listens
            runtime.bus.publish({"type": "card", "reader_id": "r1", "technology": "magstripe",
                                 "number": CARD, "masked": "…0101", "at": "2026-11-25T10:00:00+00:00"})
            await until(pilot, lambda: "Leila Karimi" in text(app, "#member"))
            assert main.query_one("#lookup", BidiInput).value == CARD

            await pilot.press("f4")  # the selected card is offered as the lost one
            await until(pilot, lambda: isinstance(app.screen, FormScreen))
            assert app.screen.query_one("#f-old_card", BidiInput).value == CARD
            await fill(pilot, new_card=NEW_CARD)
            await until(pilot, lambda: "Card replaced" in text(app, "#message"))
            await until(pilot, lambda: len(rows(app, "#cards")) == 2)
            assert sorted((c["number"], c["status"]) for c in rows(app, "#cards")) == [
                (CARD, "replaced"), (NEW_CARD, "active")]

            await typed(pilot, "#lookup", CARD)
            await until(pilot, lambda: "card was replaced" in text(app, "#message"))

            await typed(pilot, "#lookup", "09121112233")
            await until(pilot, lambda: "Leila Karimi" in text(app, "#member"))
            await pilot.press("f6")
            await fill(pilot, points="many", reason="welcome gift")
            assert "whole number" in text(app, "#form-error")
            await fill(pilot, points="500", reason="welcome gift")
            await until(pilot, lambda: "new balance 600" in text(app, "#message"))
            await until(pilot, lambda: "Balance: 600 points" in text(app, "#member"))

            await pilot.press("f7")
            await until(pilot, lambda: isinstance(app.screen, HistoryScreen) and rows(app, "#history"))
            history = rows(app, "#history")
            assert [h["kind"] for h in history] == ["adjust", "bonus"]
            assert [h["balance_after"] for h in history] == [600, 100]
            assert "Adjusted by mina: welcome gift" in text(app, "#detail")
            await pilot.press("down")
            await until(pilot, lambda: "Sign-up bonus" in text(app, "#detail"))
            await pilot.press("escape")
            await until(pilot, lambda: app.screen is main)

            await pilot.press("f5")
            await fill(pilot, card_number=NEW_CARD, reason="stolen")
            await until(pilot, lambda: "Card blocked" in text(app, "#message"))

            await pilot.press("f2")  # the same mobile again: refused, said why, nothing changes
            await fill(pilot, name="Someone", mobile="09121112233")
            await until(pilot, lambda: "Another member already has this mobile" in text(app, "#message"))

    asyncio.run(scenario())
    with runtime.ledger.engine.connect() as conn:
        assert conn.execute(select(members.c.birth_date)).scalars().all() == [__import__("datetime").date(1991, 6, 3)]
    assert {("member.enrol", "mina"), ("card.issue", "mina"), ("card.replace", "mina"), ("points.adjust", "mina"),
            ("card.block", "mina")} <= _audit(runtime)


def test_a_manager_in_persian_sees_persian_and_jalali_dates(agent_url: str, runtime: Runtime) -> None:
    async def scenario() -> None:
        app = build_console(AgentApi(agent_url, TOKEN), "fa", persian_digits=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot, "mina", "۶۵۴۳۲۰")  # a wrong PIN: refused in Persian
            await until(pilot, lambda: text(app, "#login-error").startswith("نام کاربری یا رمز نادرست"))
            await login(pilot, "mina", "۶۵۴۳۲۱")  # typed on a Persian keyboard: the same digits
            await until(pilot, lambda: isinstance(app.screen, MemberScreen))
            await pilot.press("f2")
            await fill(pilot, name="لیلا کریمی", mobile="۰۹۱۲۱۱۱۲۲۳۳", birth_date="1370-12-31")
            assert "چنین تاریخ شمسی وجود ندارد" in text(app, "#form-error")
            assert "۱۳۷۰/۰۵/۱۰" in text(app, "#form-error")  # an example in the calendar asked for
            await fill(pilot, name="لیلا کریمی", mobile="۰۹۱۲۱۱۱۲۲۳۳", birth_date="۱۳۷۰-۰۵-۱۰")
            await until(pilot, lambda: "عضو ثبت شد" in text(app, "#message"))
            member = text(app, "#member")
            assert "تولد ۱۳۷۰/۰۵/۱۰" in member and "برنزی" in member and "۱۰۰ امتیاز" in member
            await until(pilot, lambda: "۵۰٬۰۰۰٬۰۰۰ ریال دیگر تا سطح نقره‌ای" in text(app, "#member"))
            await pilot.press("f3")
            await fill(pilot, card_number="4111111111111111")  # a bank card, in the user's language
            await until(pilot, lambda: "کارت بانکی" in text(app, "#message"))
            assert not rows(app, "#cards")

    asyncio.run(scenario())
    with runtime.ledger.engine.connect() as conn:
        assert str(conn.execute(select(members.c.birth_date)).scalar_one()) == "1991-08-01"


def test_gift_cards_users_audit_and_status_for_an_admin(agent_url: str, runtime: Runtime) -> None:
    assert runtime.pin_key is not None
    add_user(runtime.ledger, username="azadeh", role="admin", pin="246810", actor="test", pin_key=runtime.pin_key)

    async def scenario() -> None:
        app = build_console(AgentApi(agent_url, TOKEN), "en")
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot, "azadeh", "246810")
            await until(pilot, lambda: isinstance(app.screen, MemberScreen))

            await pilot.press("f8")
            await until(pilot, lambda: isinstance(app.screen, GiftScreen))
            await typed(pilot, "#gift-number", "7000111122223333", enter=False)
            await pilot.press("f3")
            await fill(pilot, amount="2,000,000")
            await until(pilot, lambda: "issued with 2,000,000 Rial" in text(app, "#message"))
            await pilot.press("f4")
            await fill(pilot, amount="500000")
            await until(pilot, lambda: "holds 2,500,000 Rial" in text(app, "#message"))
            await typed(pilot, "#gift-number", "7000111122223333")
            await until(pilot, lambda: "holds 2,500,000 Rial" in text(app, "#result"))
            await pilot.press("escape")

            await pilot.press("f9")
            await until(pilot, lambda: isinstance(app.screen, UsersScreen) and rows(app, "#users"))
            await pilot.press("f2")
            await fill(pilot, username="sara", role="manager", pin="1234", pin_again="1234")
            assert "6 to 12 digits" in text(app, "#form-error")  # said before asking the agent
            await fill(pilot, username="sara", role="manager", pin="123456", pin_again="123457")
            assert "differ" in text(app, "#form-error")
            await fill(pilot, username="sara", role="manager", pin="123456", pin_again="123456")
            await until(pilot, lambda: "User sara added" in text(app, "#message"))
            await until(pilot, lambda: "sara" in [u["username"] for u in rows(app, "#users")])
            table = app.screen.query_one("#users")
            table.move_cursor(row=[u["username"] for u in rows(app, "#users")].index("sara"))
            await pilot.press("f3")
            await confirm(pilot)
            await until(pilot, lambda: "sara disabled" in text(app, "#message"))
            await pilot.press("f4")
            await fill(pilot, pin="654987", pin_again="654987")
            await until(pilot, lambda: "New PIN set for sara" in text(app, "#message"))
            await pilot.press("escape")

            main = app.screen
            await until(pilot, lambda: isinstance(app.screen, MemberScreen))
            await pilot.press("f1")  # the menu reaches every task, whatever the width
            menu = main.query_one("#menu")
            await until(pilot, lambda: menu.has_focus)
            options = [o.id for o in menu.options]
            start = -1 if menu.highlighted is None else menu.highlighted
            await pilot.press(*["down"] * (options.index("audit") - start))
            assert menu.highlighted == options.index("audit")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, AuditScreen) and rows(app, "#audit"))
            await typed(pilot, "#action", "user")
            await until(pilot, lambda: {r["action"] for r in rows(app, "#audit")} == {
                "user.add", "user.disable", "user.set_pin"})
            assert "user disabled" in [str(c) for c in app.screen.query_one("#audit").get_row_at(1)]
            await typed(pilot, "#since", "2026-02-31")
            await until(pilot, lambda: "no such Gregorian date" in text(app, "#message"))
            await pilot.press("escape")

            await main.run_action("status")
            await until(pilot, lambda: isinstance(app.screen, StatusScreen) and text(app, "#status-text"))
            assert "Terminal T1 of store S1" in text(app, "#status-text")
            assert "No printer configured" in text(app, "#status-text")

    asyncio.run(scenario())
    with runtime.ledger.engine.connect() as conn:
        assert conn.execute(select(users.c.disabled_at).where(users.c.username == "sara")).scalar_one()
    assert {("gift.issue", "azadeh"), ("gift.load", "azadeh"), ("user.add", "azadeh"), ("user.disable", "azadeh"),
            ("user.set_pin", "azadeh")} <= _audit(runtime)


def _member_with_card(runtime: Runtime, points: int = 0) -> str:
    member = runtime.ledger.enrol_member(name="Leila", mobile="09121112233", actor="test")
    runtime.ledger.issue_card(member_id=member.id, number=CARD, technology="magstripe", actor="test")
    if points:
        runtime.ledger.adjust(member_id=member.id, points=points, reason="start", actor="test")
    return member.id


def test_a_cashier_sells_redeems_refunds_and_takes_a_gift_card(agent_url: str, runtime: Runtime) -> None:
    _member_with_card(runtime, points=900)  # 100 for signing up + 900
    runtime.ledger.gift_issue(number="7000111122223333", amount=1_000_000, actor="test")

    async def scenario() -> None:
        app = build_console(AgentApi(agent_url, TOKEN), "en")
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot, "reza", "1111")
            await until(pilot, lambda: isinstance(app.screen, TillScreen))
            till = app.screen
            assert "enrol" not in [o.id for o in till.query_one("#menu").options]
            await pilot.press("f9")  # nothing to sell yet
            await until(pilot, lambda: "Find a member first" in text(app, "#message"))

            await typed(pilot, "#lookup", CARD)
            await until(pilot, lambda: "Balance: 1,000 points" in text(app, "#customer"))
            assert till.query_one("#amount", BidiInput).has_focus
            await typed(pilot, "#amount", "۲٬۰۰۰٬۰۰۰")  # Persian digits and separators are numbers too
            await until(pilot, lambda: "Earns" in text(app, "#quote"))
            assert "Can pay up to" in text(app, "#quote") and "To pay: 2,000,000 Rial" in text(app, "#quote")
            await typed(pilot, "#redeem", "100")
            await until(pilot, lambda: "Pays 100 points" in text(app, "#quote"))
            await typed(pilot, "#receipt", "R-1001")
            await confirm(pilot)
            await until(pilot, lambda: "Sale posted" in text(app, "#message"))
            assert "Receipt: R-1001" in text(app, "#sale") and "Points redeemed: 100" in text(app, "#sale")
            first_key = None
            with runtime.ledger.engine.connect() as conn:
                first_key = conn.execute(select(__import__("ledger.schema", fromlist=["sales"]).sales
                                                .c.idempotency_key)).scalar_one()
            assert first_key != till.sale_key  # the next sale gets a new key

            # two lines with categories
            await typed(pilot, "#lookup", CARD)
            await until(pilot, lambda: till.card == CARD and till.query_one("#amount", BidiInput).has_focus)
            await typed(pilot, "#amount", "300000", enter=False)
            await typed(pilot, "#category", "dairy", enter=False)
            await pilot.press("f7")
            await until(pilot, lambda: "dairy 300,000" in text(app, "#lines"))
            await typed(pilot, "#amount", "700000")
            await until(pilot, lambda: "To pay: 1,000,000 Rial" in text(app, "#quote"))
            await typed(pilot, "#receipt", "R-1002")
            await confirm(pilot)
            await until(pilot, lambda: "Sale posted" in text(app, "#message"))

            await pilot.press("f4")
            await until(pilot, lambda: isinstance(app.screen, RefundScreen))
            await typed(pilot, "#receipt", "R-1001")
            await until(pilot, lambda: rows(app, "#lines"))
            assert rows(app, "#lines")[0]["refundable"] == 1
            await pilot.press("f9")
            await confirm(pilot)
            await until(pilot, lambda: "Refund done" in text(app, "#message"))
            assert "Refund: 2,000,000 Rial" in text(app, "#result")
            await until(pilot, lambda: rows(app, "#lines") and rows(app, "#lines")[0]["refundable"] == 0)
            await pilot.press("f9")  # nothing left: said, nothing sent
            await until(pilot, lambda: "Nothing of this sale is left" in text(app, "#message"))
            await pilot.press("escape")

            await pilot.press("f5")
            await fill(pilot, number="7000111122223333", amount="1,500,000", receipt="R-1003")
            await confirm(pilot)
            await until(pilot, lambda: "does not hold that much" in text(app, "#message"))
            await pilot.press("f5")
            await fill(pilot, number="7000111122223333", amount="400000", receipt="R-1003")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert "it holds 1,000,000 Rial" in text(app, "#question")
            await confirm(pilot)
            await until(pilot, lambda: "gift card 7000111122223333 holds 600,000 Rial" in text(app, "#message"))

            await pilot.press("f6")  # no printer here: said in words
            await until(pilot, lambda: "No receipt printer" in text(app, "#message"))

    asyncio.run(scenario())
    assert {("gift.spend", "reza")} <= _audit(runtime)
    assert runtime.ledger.gift_balance("7000111122223333") == 600_000


def test_a_retried_sale_is_posted_once(agent_url: str, runtime: Runtime) -> None:
    """The till sends the same idempotency key on a retry: the agent answers with the
    first sale, and the console says so."""
    _member_with_card(runtime)

    async def scenario() -> None:
        app = build_console(AgentApi(agent_url, TOKEN), "en")
        async with app.run_test(size=(120, 40)) as pilot:
            await login(pilot, "reza", "1111")
            await until(pilot, lambda: isinstance(app.screen, TillScreen))
            till = app.screen
            await typed(pilot, "#lookup", CARD)
            await until(pilot, lambda: till.card == CARD)
            await typed(pilot, "#amount", "1000000")
            await until(pilot, lambda: till.quoted is not None)
            key = till.sale_key
            till.call("sale", till.api.sale, key, CARD, "R-9", till.basket(), 0, "en")
            await until(pilot, lambda: "Sale posted" in text(app, "#message"))
            till.call("sale", till.api.sale, key, CARD, "R-9", [{"sku": "general", "name": "general",
                                                                 "category": "general", "quantity": 1,
                                                                 "unit_price": 1000000}], 0, "en")
            await until(pilot, lambda: "already posted" in text(app, "#message"))

    asyncio.run(scenario())
    with runtime.ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sales").scalar_one() == 1


def test_roles_are_mirrored_and_ctrl_c_asks_in_the_users_language(agent_url: str, runtime: Runtime) -> None:
    async def scenario() -> None:
        app = build_console(AgentApi(agent_url, TOKEN), "fa")
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot, "reza", "1111")
            await until(pilot, lambda: isinstance(app.screen, TillScreen))
            await app.screen.run_action("menu")
            await pilot.press("ctrl+c")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            assert text(app, "#question") == "از برنامه خارج می‌شوید؟"
            await pilot.press("escape")  # no: the till is still there
            await until(pilot, lambda: isinstance(app.screen, TillScreen))
            # a cashier who reaches a manager's task anyway is refused by the agent, in Persian
            app.screen.call("find", app.api.history, "x")
            await until(pilot, lambda: "نقش شما اجازه این کار را ندارد" in text(app, "#message"))
            await app.screen.run_action("logout")  # from the menu: back to the login, the session closed
            await until(pilot, lambda: isinstance(app.screen, LoginScreen) and app.api.session is None)
            await login(pilot, "reza", "1111")
            await until(pilot, lambda: isinstance(app.screen, TillScreen))
            await pilot.press("ctrl+c")
            await confirm(pilot)
        assert app.return_code == 0

    asyncio.run(scenario())


def test_the_console_survives_the_agent_restarting(runtime: Runtime) -> None:
    """The agent goes away and comes back (sessions forgotten): the console says so,
    keeps its screen, asks for the PIN again over it, and goes on."""
    _member_with_card(runtime)
    port = free_port()

    def serve() -> tuple[uvicorn.Server, threading.Thread]:
        runtime.sessions = type(runtime.sessions)()  # a restarted agent knows no sessions
        server = uvicorn.Server(server_config(create_app(runtime), host="127.0.0.1", port=port))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        return server, thread

    def stop(server: uvicorn.Server, thread: threading.Thread) -> None:
        runtime.bus.close()
        server.should_exit = True
        thread.join(timeout=10)
        runtime.bus = type(runtime.bus)()

    async def scenario() -> None:
        server, thread = serve()
        app = build_console(AgentApi(f"http://127.0.0.1:{port}", TOKEN), "en")
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot, "mina", "654321")
            await until(pilot, lambda: isinstance(app.screen, MemberScreen))
            main = app.screen
            await typed(pilot, "#lookup", CARD)
            await until(pilot, lambda: "Leila" in text(app, "#member"))
            await asyncio.to_thread(stop, server, thread)
            await typed(pilot, "#lookup", CARD)
            await until(pilot, lambda: "does not answer" in text(app, "#message"))
            assert "Leila" in text(app, "#member")  # the screen keeps what it showed
            await until(pilot, lambda: "not answering" in text(app, "#titlebar"))
            server, thread = await asyncio.to_thread(serve)
            await until(pilot, lambda: "agent: connected" in text(app, "#titlebar"))
            await pilot.press("f6")
            await fill(pilot, points="5", reason="after restart")
            await until(pilot, lambda: isinstance(app.screen, ReloginScreen))
            await typed(pilot, "#pin", "654321")
            await until(pilot, lambda: app.screen is main and "Logged in again" in text(app, "#message"))
            await pilot.press("f6")
            await fill(pilot, points="5", reason="after restart")
            await until(pilot, lambda: "new balance 105" in text(app, "#message"))
            await until(pilot, lambda: runtime.bus.subscribers)  # listening to the readers again
        await asyncio.to_thread(stop, server, thread)

    asyncio.run(scenario())


def test_the_console_says_when_the_agent_is_not_running() -> None:
    async def scenario() -> None:
        app = build_console(AgentApi(f"http://127.0.0.1:{free_port()}", TOKEN), "fa")
        async with app.run_test() as pilot:
            await login(pilot, "mina", "654321")
            await until(pilot, lambda: "سامانه پاسخ نمی‌دهد" in text(app, "#login-error"))

    asyncio.run(scenario())


_ = Any


def test_the_till_prints_the_slip_of_its_sale_when_a_printer_is_set(agent_url: str, runtime: Runtime,
                                                                     tmp_path: Any) -> None:
    from terminal_agent.slip import SlipPrinter, default_font

    font = default_font()
    if font is None:
        import pytest

        pytest.skip("no font with Persian letters (Debian: fonts-dejavu-core)")
    device = tmp_path / "lp0"
    device.touch()
    runtime.attach_printer(SlipPrinter(device, 384, str(font), cut=True))
    _member_with_card(runtime)
    async def scenario() -> None:
        app = build_console(AgentApi(agent_url, TOKEN), "fa")
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot, "reza", "1111")
            await until(pilot, lambda: isinstance(app.screen, TillScreen))
            await pilot.press("f6")  # nothing sold yet
            await until(pilot, lambda: "ابتدا یک فروش ثبت کنید" in text(app, "#message"))
            await typed(pilot, "#lookup", CARD)
            await until(pilot, lambda: app.screen.card == CARD)
            await typed(pilot, "#amount", "500000")
            await until(pilot, lambda: app.screen.quoted is not None)
            await typed(pilot, "#receipt", "R-77")
            await confirm(pilot)
            await until(pilot, lambda: "فروش ثبت شد" in text(app, "#message"))
            assert "رسید: R-77" in text(app, "#sale") and "سطح: برنزی" in text(app, "#sale")
            await pilot.press("f6")
            await until(pilot, lambda: "رسید امتیاز چاپ شد" in text(app, "#message"))

    asyncio.run(scenario())
    assert device.stat().st_size > 0
    with runtime.ledger.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sales").scalar_one() == 1


def test_status_tells_the_card_stock_left_to_issue_in_both_languages(agent_url: str, runtime: Runtime) -> None:
    from ledger import hubsync
    from ledger.db import Raw
    from tests.api.conftest import MANAGER_PIN

    async def status_text(locale: str) -> str:
        app = build_console(AgentApi(agent_url, TOKEN), locale)
        async with app.run_test(size=(100, 30)) as pilot:
            await login(pilot, "mina", MANAGER_PIN)
            await until(pilot, lambda: isinstance(app.screen, MemberScreen))
            await app.screen.run_action("status")
            await until(pilot, lambda: isinstance(app.screen, StatusScreen) and text(app, "#status-text"))
            return text(app, "#status-text")

    assert "Card stock" not in asyncio.run(status_text("en"))  # a chain without stock: no line for it
    with runtime.ledger.write("as a sync brings it") as conn:
        raw = Raw(conn)
        hubsync.take_card_stock(raw, [{"number": f"63950000000001{n:02d}", "batch": "B1", "status": "assigned"}
                                      for n in range(12)], runtime.ledger.card_policy)
        hubsync.take_card_stock(raw, [{"number": "6395000000000100", "status": "issued"}], runtime.ledger.card_policy)
    assert "Card stock: 11 pre-printed cards to issue" in asyncio.run(status_text("en"))
    with runtime.ledger.write("as a sync brings it") as conn:
        hubsync.take_card_stock_required(Raw(conn), True)
    assert "Card stock: 11 pre-printed cards to issue (only these may be issued)" in asyncio.run(status_text("en"))
    shown = asyncio.run(status_text("fa"))
    assert "موجودی کارت" in shown and "۱۱" in shown and "فقط همین‌ها صادر می‌شوند" in shown
