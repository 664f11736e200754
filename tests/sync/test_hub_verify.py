"""`loyalty-hub verify` on SQLite and PostgreSQL: a sound hub passes; each kind of
corruption, made directly in the database, makes it exit 1 naming the first bad row;
a large hub is read in bounded memory."""

from __future__ import annotations

import tracemalloc
import uuid

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, text

from ledger.chain import entry_hash
from sync.hub.cli import cli
from sync.hub.db import create_hub_engine
from sync.hub.schema import entries, terminals
from sync.hub.verify import verify_hub
from tests.attacks.forge import Forger, card_row, gift_row, member_row

C1 = "6395000000000001"
VISA = "4111111111111111"


def _sound_hub(hub, hub_http) -> list[dict]:  # type: ignore[no-untyped-def]
    t = Forger(hub, hub_http, "T1", "S1")
    sent = [t.entry(member_id="m1", card_number=C1, kind="earn", points=100, amount=1_000_000),
            t.entry(member_id="m1", card_number=C1, kind="redeem", points=-30, amount=0),
            t.entry(kind="gift_load", amount=500, gift_card_number="GIFT0001"),
            t.entry(member_id="m2", kind="bonus", points=7)]
    r = t.send(members=[member_row("m1", "S1"), member_row("m2", "S1", mobile="09120000002")],
               cards=[card_row(C1, "m1")], gift_cards=[gift_row("GIFT0001")], entries=sent)
    assert r.status_code == 200, r.text
    return sent


def _verify(hub_url: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--db", hub_url, "verify"])


CORRUPTIONS = [
    ("UPDATE entries SET points = 1000 WHERE seq = 1", "terminal T1, entry seq 1", "does not match its hash"),
    ("DELETE FROM entries WHERE seq = 2 AND terminal_code = 'T1'", "terminal T1, entry seq 3", "expected seq 2"),
    ("UPDATE entries SET prev_hash = 'x' WHERE seq = 3", "terminal T1, entry seq 3", "prev_hash"),
    ("UPDATE balances SET points = points + 1 WHERE member_id = 'm2'", "member m2", "add up to 7"),
    ("INSERT INTO balances (member_id, points) VALUES ('ghost', 5)", "member ghost", "has no entries"),
    ("UPDATE terminals SET last_seq = 9 WHERE id = 'T1'", "terminal T1", "last seq 9"),
    ("UPDATE cards SET replaced_by = '4111111111111111'", "replacement", "411111******1111"),
    ("UPDATE gift_cards SET number = '4111111111111111'", "gift card", "411111******1111"),
]


@pytest.mark.parametrize("corrupt, row, why", CORRUPTIONS, ids=[c[2] for c in CORRUPTIONS])
def test_verify_names_the_first_bad_row(hub, hub_http, hub_url: str, corrupt: str, row: str, why: str) -> None:  # type: ignore[no-untyped-def]
    _sound_hub(hub, hub_http)
    ok = _verify(hub_url)
    assert ok.exit_code == 0 and "ok: 4 entries in 1 chain(s), 2 balance(s), 2 card number(s)" in ok.output, ok.output
    with hub.engine.begin() as conn:
        conn.execute(text(corrupt))
    bad = _verify(hub_url)
    assert bad.exit_code == 1 and row in bad.output and why in bad.output, bad.output
    assert VISA not in bad.output


def test_verify_checks_stored_cards_against_the_ranges_set_later(hub, hub_http, hub_url: str) -> None:  # type: ignore[no-untyped-def]
    _sound_hub(hub, hub_http)
    assert CliRunner().invoke(cli, ["--db", hub_url, "cards", "ranges", "set", "77:10"]).exit_code == 0
    bad = _verify(hub_url)
    assert bad.exit_code == 1 and "not a member card of this programme" in bad.output and "******" in bad.output


BIG_HUB_ENTRIES = 60_000
VERIFY_PEAK_BYTES_MAX = 40 * 1024 * 1024  # the rows alone, read whole, come to several times this


def test_a_large_hub_is_verified_in_bounded_memory(hub, hub_url: str) -> None:  # type: ignore[no-untyped-def]
    rows, prev = [], ""
    for seq in range(1, BIG_HUB_ENTRIES + 1):
        row = {"id": str(uuid.uuid4()), "terminal_code": "T1", "seq": seq, "member_id": None, "card_number": None,
               "gift_card_number": None, "kind": "adjust", "points": 0, "amount": 0, "sale_id": None,
               "receipt_ref": "r" * 64, "rule_id": "x" * 64, "reason": "y" * 200, "actor": "bench",
               "ruleset_hash": "-" * 64, "created_at": "2026-12-01T00:00:00.000000Z", "prev_hash": prev}
        row["hash"] = prev = entry_hash(row)
        rows.append(row)
    with hub.engine.begin() as conn:
        conn.execute(insert(terminals).values(id="T1", store="S1", secret="s", revoked=False,
                                              created_at="2026-12-01T00:00:00.000000Z", last_seq=BIG_HUB_ENTRIES,
                                              last_hash=prev))
        conn.execute(insert(entries), rows)
    del rows
    engine = create_hub_engine(hub_url, reader=True)
    tracemalloc.start()
    try:
        report = verify_hub(engine, hub.card_policy())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        engine.dispose()
    assert report.entries == BIG_HUB_ENTRIES
    assert peak < VERIFY_PEAK_BYTES_MAX, f"verify held {peak // 2**20} MB"
