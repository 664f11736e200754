"""The report's segment filter scores members in SQL (queries.in_segments) from the
cuts of the chain's population; it must put every member in the very segment the
Python scorer (rfm.Ranks) names on the Members sheet, on random chains, edges of a
day included. Real SQLite files of the hub's schema."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert, select

from ledger.reports.rfm import SEGMENTS, Ranks
from ledger.timefmt import format_utc, parse_utc
from sync.hub.reports import queries as q
from sync.hub.schema import members, metadata, sales

AT = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
UNTIL = AT + timedelta(days=2)  # the period ends after `at` (a report run before its end)

# a member's purchases: (seconds before AT, sale or refund, Rial); a visit after AT counts 0 days
purchase = st.tuples(st.sampled_from([-3600, 0, 1, 59, 86_399, 86_400, 86_401, 3 * 86_400, 40 * 86_400,
                                      400 * 86_400]) | st.integers(-86_400, 500 * 86_400),
                     st.sampled_from(["sale", "sale", "refund"]), st.integers(1, 5_000_000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(purchase, max_size=6), min_size=1, max_size=25))
def test_sql_segments_are_the_scorers(tmp_path_factory, chain: list[list[tuple[int, str, int]]]) -> None:  # type: ignore[no-untyped-def]
    path: Path = tmp_path_factory.mktemp("seg") / "hub.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    with engine.begin() as conn:
        for i, bought in enumerate(chain):
            conn.execute(insert(members).values(id=f"m{i}", name=f"M {i}", mobile=f"0912{i:07d}", tier="bronze",
                                                enrolled_at=format_utc(AT - timedelta(days=900)), enrolled_by="t",
                                                store_code="S1", rev=i + 1))
            for j, (ago, kind, amount) in enumerate(bought):
                conn.execute(insert(sales).values(
                    id=f"s{i}-{j}", kind=kind, terminal_code="T1", store="S1", member_id=f"m{i}", receipt_ref="R",
                    amount=amount, ruleset_hash="h", created_at=format_utc(AT - timedelta(seconds=ago)), actor="c",
                    result_json="{}", received_at=format_utc(AT)))
    with engine.connect() as conn:
        def days_since(last: str | None) -> int | None:  # as the export counts them
            return None if not last else max((AT - parse_utc(last)).days, 0)

        ranks = Ranks((days_since(last) or 0, int(v), int(s))
                      for last, v, s in conn.execute(q.activity_values(UNTIL)) if last is not None and v)
        activity = {m: (last, int(v), int(s)) for m, last, v, s in conn.execute(q.activity(UNTIL))}
        expected = {f"m{i}": ranks.of(days_since(activity.get(f"m{i}", (None, 0, 0))[0]),
                                      *activity.get(f"m{i}", (None, 0, 0))[1:])[3] for i in range(len(chain))}
        for segment in SEGMENTS:
            found = set(conn.execute(select(members.c.id).where(q.in_segments(ranks, AT, UNTIL, [segment])))
                        .scalars())
            assert found == {m for m, s in expected.items() if s == segment}, segment
        both = set(conn.execute(select(members.c.id).where(q.in_segments(ranks, AT, UNTIL, ["no_purchase", "new"])))
                   .scalars())
        assert both == {m for m, s in expected.items() if s in ("no_purchase", "new")}
    engine.dispose()
