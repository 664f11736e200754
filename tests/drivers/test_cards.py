"""Duplicate reads within a window count once; the card policy itself is
ledger.cardpolicy's (tests/ledger/test_cardpolicy.py), handed to every reader."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from drivers.cards import DEDUPE_CARDS_MAX, Deduper
from drivers.intake import Intake
from drivers.events import CardRead, CardRefused
from ledger.cardpolicy import CardPolicy

T0 = datetime(2026, 11, 25, 9, tzinfo=timezone.utc)


def test_duplicates_within_the_window_count_once_and_memory_is_bounded() -> None:
    d = Deduper(timedelta(milliseconds=1500))
    assert d.first("A", T0) and not d.first("A", T0 + timedelta(milliseconds=1000))
    assert not d.first("A", T0 + timedelta(milliseconds=2000))  # within 1.5 s of the last read
    assert d.first("A", T0 + timedelta(seconds=4))
    assert d.first("B", T0 + timedelta(seconds=4))
    for i in range(DEDUPE_CARDS_MAX + 10):
        d.first(f"C{i}", T0)
    assert len(d._seen) == DEDUPE_CARDS_MAX


def test_the_intake_applies_the_ledgers_policy_and_shows_refusals_masked() -> None:
    intake = Intake("r1", "magstripe", CardPolicy(), Deduper(timedelta(0)))
    read = intake.card("6395000000001234", T0)
    assert isinstance(read, CardRead) and read.number == "6395000000001234" and read.masked == "639500******1234"
    refused = intake.card("4111111111111111", T0)
    assert isinstance(refused, CardRefused) and refused.code == "bank_card"
    assert refused.masked == "411111******1111" and "4111111111111111" not in refused.reason
    out = intake.card("5000000000000000", T0)
    assert isinstance(out, CardRefused) and out.code == "card_out_of_range"
