"""Property tests over random sequences of ledger operations (hypothesis state machine)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select

from ledger.errors import InsufficientPoints, RefundExceedsSale, ValidationFailed
from ledger.sales import post_sale, refund
from ledger.schema import entries
from ledger.service import Ledger
from ledger.types import RefundRequest, SaleLine, SaleRequest
from ledger.verify import verify
from tests.conftest import Clock

prices = st.integers(min_value=0, max_value=50_000_000)
line_st = st.builds(
    SaleLine,
    sku=st.sampled_from(["A", "B", "C"]),
    name=st.just("item"),
    category=st.sampled_from(["grocery", "dairy", "tobacco"]),
    quantity=st.integers(min_value=1, max_value=5),
    unit_price=prices,
)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.clock = Clock()
        self.ledger = Ledger.open(Path(self.dir.name) / "l.sqlite3", store="S", terminal="T", clock=self.clock)
        self.cards: list[tuple[str, str]] = []
        self.requests: dict[str, SaleRequest] = {}
        self.results: dict[str, object] = {}
        self.sales: list[tuple[str, str, int]] = []  # (sale_id, member_id, net points)
        self.n = 0

    @initialize()
    def members(self) -> None:
        for i in range(3):
            m = self.ledger.enrol_member(name=f"m{i}", mobile=f"0935000000{i}", actor="mgr")
            card = self.ledger.issue_card(member_id=m.id, number=f"639500000000000{i}", technology="magstripe",
                                          actor="mgr")
            self.cards.append((m.id, card.number))

    def teardown(self) -> None:
        self.ledger.close()
        self.dir.cleanup()

    @rule(who=st.integers(0, 2), lines=st.lists(line_st, min_size=1, max_size=4),
          redeem_share=st.integers(0, 100), days=st.integers(0, 40))
    def sell(self, who: int, lines: list[SaleLine], redeem_share: int, days: int) -> None:
        self.clock.advance(days=days)
        member_id, card = self.cards[who]
        self.n += 1
        balance = self.ledger.balance(member_id)
        req = SaleRequest(idempotency_key=f"k{self.n}", card_number=card, receipt_ref=f"r{self.n}",
                          lines=tuple(lines), redeem_points=balance * redeem_share // 100)
        try:
            result = post_sale(self.ledger, req)
        except (InsufficientPoints, ValidationFailed):
            assert self.ledger.balance(member_id) == balance  # nothing written
            return
        assert result.redeemed_points <= balance
        self.requests[req.idempotency_key] = req
        self.results[req.idempotency_key] = result
        self.sales.append((result.sale_id, member_id, result.earned_points - result.redeemed_points))

    @precondition(lambda self: bool(self.requests))
    @rule(data=st.data())
    def repost_changes_nothing(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.requests)))
        with self.ledger.engine.connect() as conn:
            before = conn.execute(select(func.count()).select_from(entries)).scalar_one()
        again = post_sale(self.ledger, self.requests[key])
        assert again.replayed and again.to_json() == self.results[key].to_json()  # type: ignore[attr-defined]
        with self.ledger.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(entries)).scalar_one() == before

    @precondition(lambda self: bool(self.sales))
    @rule(data=st.data())
    def full_refund_undoes_the_sale(self, data: st.DataObject) -> None:
        sale_id, member_id, net = data.draw(st.sampled_from(self.sales))
        before = self.ledger.balance(member_id)
        self.n += 1
        try:
            refund(self.ledger, RefundRequest(idempotency_key=f"rf{self.n}", sale_id=sale_id))
        except RefundExceedsSale:
            return
        assert self.ledger.balance(member_id) == before - net
        self.sales.remove((sale_id, member_id, net))

    @rule(who=st.integers(0, 2), points=st.integers(1, 10_000))
    def adjust_up(self, who: int, points: int) -> None:
        member_id, _ = self.cards[who]
        before = self.ledger.balance(member_id)
        assert self.ledger.adjust(member_id=member_id, points=points, reason="test", actor="mgr") == before + points

    @invariant()
    def balances_equal_entries_and_chain_verifies(self) -> None:
        report = verify(self.ledger.engine)
        assert report.ok, report.problems


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=15, stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
