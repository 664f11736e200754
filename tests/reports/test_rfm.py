"""RFM scores: table-driven segments, and properties over random members."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.reports.rfm import Activity, score, segment_of

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def member(i: int, days: int | None, visits: int, spend: int) -> Activity:
    return Activity(f"m{i}", None if days is None else NOW - timedelta(days=days), visits, spend)


def test_five_members_spread_over_the_five_scores_and_the_best_is_a_champion() -> None:
    scored = {r.member_id: r for r in score(
        [member(i, days=10 * (5 - i), visits=i + 1, spend=1_000_000 * (i + 1)) for i in range(5)], NOW)}
    assert [scored[f"m{i}"].r for i in range(5)] == [1, 2, 3, 4, 5]  # the most recent scores 5
    assert [scored[f"m{i}"].f for i in range(5)] == [1, 2, 3, 4, 5]
    assert [scored[f"m{i}"].m for i in range(5)] == [1, 2, 3, 4, 5]
    assert scored["m4"].segment == "champions" and scored["m0"].segment == "hibernating"
    assert scored["m4"].recency_days == 10


def test_equal_values_share_a_score_and_a_member_who_never_bought_has_none() -> None:
    scored = {r.member_id: r for r in score(
        [member(0, 3, 2, 500), member(1, 3, 2, 500), member(2, None, 0, 0)], NOW)}
    assert (scored["m0"].r, scored["m0"].f, scored["m0"].m) == (scored["m1"].r, scored["m1"].f, scored["m1"].m) == (5, 5, 5)
    assert (scored["m2"].r, scored["m2"].segment, scored["m2"].recency_days) == (0, "no_purchase", None)
    assert score([], NOW) == []


SEGMENTS = [
    ((5, 5, 5), "champions"), ((3, 4, 1), "loyal"), ((2, 5, 5), "at_risk"), ((5, 1, 2), "new"),
    ((1, 3, 1), "at_risk"), ((1, 1, 5), "hibernating"), ((3, 3, 3), "regular"), ((0, 0, 0), "no_purchase"),
]


@pytest.mark.parametrize("rfm,segment", SEGMENTS, ids=[s for _, s in SEGMENTS])
def test_segments(rfm: tuple[int, int, int], segment: str) -> None:
    assert segment_of(*rfm) == segment


activities = st.lists(st.tuples(st.none() | st.integers(0, 2000), st.integers(1, 500), st.integers(-10**8, 10**11)),
                      max_size=60)


@settings(max_examples=200, deadline=None)
@given(activities)
def test_scores_are_one_to_five_and_more_never_scores_less(rows: list[tuple[int | None, int, int]]) -> None:
    acts = [member(i, d, v if d is not None else 0, s) for i, (d, v, s) in enumerate(rows)]
    scored = score(acts, NOW)
    assert [r.member_id for r in scored] == [a.member_id for a in acts]  # one each, in order
    bought = [r for r in scored if r.recency_days is not None]
    for r in bought:
        assert 1 <= r.r <= 5 and 1 <= r.f <= 5 and 1 <= r.m <= 5
    for a in bought:
        for b in bought:
            if a.spend >= b.spend:
                assert a.m >= b.m
            if a.visits >= b.visits:
                assert a.f >= b.f
            if a.recency_days <= b.recency_days:  # type: ignore[operator]
                assert a.r >= b.r
    if bought:
        assert max(r.m for r in bought) == 5


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=-10**12, max_value=10**12), min_size=1, max_size=60))
def test_the_cuts_a_query_scores_by_agree_with_the_scorer(values: list[int]) -> None:
    """A report scores members in SQL from the cuts (sync.hub.reports.queries): a value
    of the population scores 1 plus the cuts at or below it, exactly as the scorer."""
    from ledger.reports.rfm import _scorer, cuts_of_sorted

    scorer, cuts = _scorer(values), cuts_of_sorted(sorted(values))
    assert len(cuts) == 4
    for v in values:
        assert scorer(v) == 1 + sum(1 for c in cuts if c is not None and v >= c)
