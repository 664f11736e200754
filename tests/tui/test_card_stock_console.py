"""The console's door to card stock (Textual's pilot, the real API on loopback, a real
SQLite ledger): when the chain requires stock, a manager issuing a card outside this
store's stock is told why in their language, and the member gets no card; a card
from the stock is issued."""

from __future__ import annotations

import asyncio

import pytest

from ledger import hubsync
from ledger.db import Raw
from terminal_agent.runtime import Runtime
from terminal_agent.tui.api import AgentApi
from terminal_agent.tui.app import build_console
from terminal_agent.tui.members import MemberScreen
from tests.api.conftest import TOKEN
from tests.tui.journeys import fill, login, rows, text, typed, until

IN_STOCK = "6395000000000101"
NOT_IN_STOCK = "6395000000000999"


@pytest.mark.parametrize(("locale", "says"), [
    ("en", "This card is not in this store's stock of pre-printed cards"),
    ("fa", "این کارت جزو موجودی کارت‌های چاپ‌شده این فروشگاه نیست"),
])
def test_a_manager_is_told_a_card_is_not_in_the_stores_stock(agent_url: str, runtime: Runtime, locale: str,
                                                             says: str) -> None:
    with runtime.ledger.write("as a sync brings it") as conn:
        raw = Raw(conn)
        hubsync.take_card_stock(raw, [{"number": IN_STOCK, "batch": "B1", "status": "assigned"}],
                                runtime.ledger.card_policy)
        hubsync.take_card_stock_required(raw, True)
    runtime.ledger.enrol_member(name="Leila Karimi", mobile="09121112233", actor="mina")

    async def scenario() -> None:
        app = build_console(AgentApi(agent_url, TOKEN), locale)
        async with app.run_test(size=(80, 24)) as pilot:
            await login(pilot, "mina", "654321")
            await until(pilot, lambda: isinstance(app.screen, MemberScreen))
            await typed(pilot, "#lookup", "09121112233")
            await until(pilot, lambda: "Leila Karimi" in text(app, "#member"))
            await pilot.press("f3")
            await fill(pilot, card_number=NOT_IN_STOCK)
            await until(pilot, lambda: says in text(app, "#message"))
            assert NOT_IN_STOCK not in text(app, "#message") and not rows(app, "#cards")
            await pilot.press("f3")
            await fill(pilot, card_number=IN_STOCK)
            await until(pilot, lambda: len(rows(app, "#cards")) == 1)

    asyncio.run(scenario())
    with runtime.ledger.read() as conn:
        assert Raw(conn).all("SELECT number, status FROM card_stock") == [(IN_STOCK, "issued")]
