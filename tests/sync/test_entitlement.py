"""The hub's entitlement checks, pure: entry kinds, signs and bounds (the fast path
decides as the worded one), members, cards and held adjustments."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.schema import ENTRY_KINDS
from sync.errors import HubRefused
from sync.hub.entitlement import (
    ENTRY_AMOUNT_MAX,
    ENTRY_POINTS_MAX,
    ENTRY_SIGNS,
    card_change,
    check_entry,
    member_change,
    split_adjustments,
)

BIG = st.one_of(st.integers(min_value=-3, max_value=3), st.integers(min_value=-(2**63), max_value=2**63),
                st.sampled_from([ENTRY_POINTS_MAX, ENTRY_POINTS_MAX + 1, -ENTRY_POINTS_MAX - 1, ENTRY_AMOUNT_MAX,
                                 ENTRY_AMOUNT_MAX + 1, -ENTRY_AMOUNT_MAX - 1]))


def _allowed(kind: str, points: int, amount: int) -> bool:
    if kind not in ENTRY_SIGNS:
        return False
    for value, sign, bound in zip((points, amount), ENTRY_SIGNS[kind], (ENTRY_POINTS_MAX, ENTRY_AMOUNT_MAX)):
        if abs(value) > bound or (sign == 1 and value < 0) or (sign == -1 and value > 0) or (sign == 0 and value):
            return False
    return True


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.sampled_from(ENTRY_KINDS), st.text(max_size=8)), BIG, BIG)
def test_check_entry_passes_exactly_what_the_rules_allow(kind: str, points: int, amount: int) -> None:
    entry = {"id": "e", "seq": 1, "kind": kind, "points": points, "amount": amount}
    try:
        check_entry(entry)
        passed = True
    except HubRefused as exc:
        assert exc.status == 422 and exc.problem in ("bad_entry", "limit_exceeded")
        passed = False
    assert passed == _allowed(kind, points, amount)


def _member(store: str, **fields: Any) -> dict[str, Any]:
    return {"id": "m1", "name": "Sara", "mobile": "0912", "birth_date": None, "segment": None,
            "store_code": store} | fields


def test_member_change() -> None:
    assert member_change("TA", "S1", None, _member("S1")) is None
    with pytest.raises(HubRefused, match="own store only"):
        member_change("TB", "S2", None, _member("S1"))
    assert member_change("TB", "S2", _member("S1"), _member("S1")) == []
    assert member_change("TA", "S1", _member("S1"), _member("S1", name="X", segment="vip")) == ["name", "segment"]
    with pytest.raises(HubRefused, match="only a terminal of that store"):
        member_change("TB", "S2", _member("S1"), _member("S1", mobile="0935"))


def _card(number: str, member: str = "m1", status: str = "active", replaced_by: str | None = None,
          at: str | None = None) -> dict[str, Any]:
    return {"number": number, "member_id": member, "status": status, "replaced_by": replaced_by,
            "status_changed_at": at}


T1, T2 = "2026-12-01T00:00:00.000000Z", "2026-12-02T00:00:00.000000Z"


@pytest.mark.parametrize("store, current, row, request_cards, held, expected", [
    ("S1", None, _card("C9"), {}, {}, "issue"),  # own store: any new card
    ("S2", None, _card("C9"), {}, {}, "not_entitled"),  # another store's member: not a second card
    ("S2", None, _card("C9"), {"C1": _card("C1", status="replaced", replaced_by="C9")}, {"C1": "m1"}, "issue"),
    ("S2", None, _card("C9"), {"C1": _card("C1", status="replaced", replaced_by="C9")}, {"C1": "m2"},
     "not_entitled"),  # "replacing" someone else's card
    # a card replaced twice before the branch synced: C1 (held) by C5, then C5 by C9, in one request
    ("S2", None, _card("C9"), {"C1": _card("C1", status="replaced", replaced_by="C5"),
                               "C5": _card("C5", status="replaced", replaced_by="C9")}, {"C1": "m1"}, "issue"),
    ("S2", None, _card("C9"), {"C1": _card("C1", status="replaced", replaced_by="C5"),
                               "C5": _card("C5", status="replaced", replaced_by="C9")}, {"C1": "m2"},
     "not_entitled"),  # the chain starts at someone else's card
    ("S2", None, _card("C9"), {"C5": _card("C5", status="replaced", replaced_by="C9")}, {},
     "not_entitled"),  # the chain starts at no card the hub holds
    ("S2", None, _card("C9", status="replaced", replaced_by="C5"),
     {"C5": _card("C5", status="replaced", replaced_by="C9")}, {}, "not_entitled"),  # a loop gives nothing
    ("S2", _card("C1"), _card("C1", member="m2"), {}, {}, "not_entitled"),  # moved
    ("S1", _card("C1"), _card("C1", member="m2"), {}, {}, "not_entitled"),  # moved, even by its own store
    ("S2", _card("C1"), _card("C1", status="blocked", at=T1), {}, {}, "status"),
    ("S2", _card("C1", status="blocked", at=T1), _card("C1", status="lost", at=T2), {}, {}, "status"),
    ("S2", _card("C1", status="blocked", at=T1), _card("C1", status="active", at=T2), {}, {}, None),
    ("S2", _card("C1"), _card("C1", status="replaced", replaced_by="C9", at=T1), {"C9": _card("C9")}, {}, "status"),
    ("S2", _card("C1"), _card("C1", status="replaced", replaced_by="C9", at=T1), {}, {"C9": "m1"}, "not_entitled"),
    ("S1", _card("C1"), _card("C1", status="replaced", replaced_by="C9", at=T1), {}, {"C9": "m1"}, "status"),
    ("S1", _card("C1"), _card("C1", status="replaced", replaced_by="C9", at=T1), {}, {"C9": "m2"}, "not_entitled"),
])
def test_card_change(store: str, current: Any, row: Any, request_cards: Any, held: Any, expected: str | None) -> None:
    request_cards = {row["number"]: row} | request_cards
    try:
        got = card_change("T", store, current, row, "S1", request_cards, held)
    except HubRefused as exc:
        got = exc.problem
    assert got == expected


def test_a_card_for_a_member_the_hub_does_not_know_is_unknown_member() -> None:
    with pytest.raises(HubRefused) as info:
        card_change("T", "S1", None, _card("C1"), None, {}, {})
    assert info.value.problem == "unknown_member"


def test_split_adjustments_holds_what_goes_past_the_limit() -> None:
    rows = [{"kind": k, "member_id": m, "points": p} for k, m, p in
            [("adjust", "m1", 60), ("earn", "m1", 500), ("adjust", "m1", -50), ("adjust", None, 999),
             ("adjust", "m2", 30), ("adjust", "m2", 10)]]
    held, used = split_adjustments(rows, limit=100, used=0)
    assert [r["points"] for r in held] == [-50] and used == 100
    held, used = split_adjustments(rows, limit=100, used=95)
    assert [r["points"] for r in held] == [60, -50, 30, 10] and used == 95
