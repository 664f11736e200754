"""Fixtures shared by the whole suite: a real ledger file and a clock the test drives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ledger.service import Ledger
from ledger.types import SaleLine, SaleRequest

START = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class Clock:
    """A clock the test moves by hand; every call is one microsecond later, like a real one."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def ledger(ledger_path: Path, clock: Clock) -> Iterator[Ledger]:
    led = Ledger.open(ledger_path, store="S1", terminal="T1", clock=clock)
    yield led
    led.close()


def sale(key: str, card: str, *prices: int, redeem: int = 0, category: str = "grocery") -> SaleRequest:
    """A sale of one unit per price, e.g. sale("k1", card, 500_000)."""
    lines = tuple(
        SaleLine(sku=f"SKU{i}", name=f"item {i}", category=category, quantity=1, unit_price=p)
        for i, p in enumerate(prices, start=1)
    )
    return SaleRequest(idempotency_key=key, card_number=card, receipt_ref=f"R-{key}", lines=lines,
                       redeem_points=redeem)


@pytest.fixture
def member_card(ledger: Ledger) -> tuple[str, str]:
    """A member with one active card: (member_id, card_number)."""
    m = ledger.enrol_member(name="Sara Ahmadi", mobile="0912 345 6789", actor="manager1")
    card = ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="manager1")
    return m.id, card.number
