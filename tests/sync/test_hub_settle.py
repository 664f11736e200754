"""`loyalty-hub reconcile settle`: an overdrawn member written off or kept as a debt,
through an entry of the hub's own chain that every terminal takes at its next sync;
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from ledger.verify import verify
from sync.hub.cli import cli
from sync.hub.schema import HUB_TERMINAL, audit, entries
from tests.attacks.forge import Forger, Till, card_row, hub_balance, member_row


def _overdraw(t: Forger, member_id: str, card: str) -> None:
    r = t.send(members=[member_row(member_id, "S1", mobile="0912" + member_id[-7:].rjust(7, "0"))],
               cards=[card_row(card, member_id)],
               entries=[t.entry(member_id=member_id, card_number=card, kind="earn", points=100, amount=1_000_000),
                        t.entry(member_id=member_id, card_number=card, kind="redeem", points=-300, amount=0)])
    assert r.status_code == 200, r.text


def test_an_overdrawn_member_is_written_off_or_kept_as_a_debt_everywhere(hub, hub_http, hub_url,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path) -> None:
    t = Forger(hub, hub_http, "TA", "S1")
    _overdraw(t, "m1", "6395000000000001")
    _overdraw(t, "m2", "6395000000000002")
    till = Till(tmp_path, hub, hub_http, "TB", "S1")
    run = CliRunner()
    try:
        till.client.sync_once()
        assert till.ledger.balance("m1") == till.ledger.balance("m2") == -200
        listed = json.loads(run.invoke(cli, ["--db", hub_url, "reconcile", "--json"]).output)["overdrawn"]
        assert [(r["member_id"], r["balance"], r["settled"]) for r in listed] == [("m1", -200, None), ("m2", -200, None)]

        no_way = run.invoke(cli, ["--db", hub_url, "reconcile", "settle", "m1", "--by", "anna", "--reason", "x"])
        assert no_way.exit_code != 0 and "--write-off or --keep-debt" in no_way.output
        off = run.invoke(cli, ["--db", hub_url, "reconcile", "settle", "m1", "--write-off", "--by", "anna",
                               "--reason", "double redemption, our fault"])
        assert off.exit_code == 0, off.output
        kept = run.invoke(cli, ["--db", hub_url, "reconcile", "settle", "m2", "--keep-debt", "--by", "anna",
                                "--reason", "the customer will earn it back"])
        assert kept.exit_code == 0, kept.output
        again = run.invoke(cli, ["--db", hub_url, "reconcile", "settle", "m1", "--write-off", "--by", "anna",
                                 "--reason", "again"])
        assert again.exit_code == 1 and "not overdrawn" in again.output

        assert hub_balance(hub, "m1") == 0 and hub_balance(hub, "m2") == -200
        till.client.sync_once()
        assert till.ledger.balance("m1") == 0 and till.ledger.balance("m2") == -200
        assert verify(till.ledger.engine).ok  # the hub's chain checks like any terminal's
        with hub.engine.connect() as conn:
            hub_rows = conn.execute(select(entries.c.seq, entries.c.member_id, entries.c.kind, entries.c.points,
                                           entries.c.actor, entries.c.ruleset_hash)
                                    .where(entries.c.terminal_code == HUB_TERMINAL).order_by(entries.c.seq)).all()
            trail = conn.execute(select(audit.c.actor, audit.c.action, audit.c.target)
                                 .where(audit.c.action.like("settle.%")).order_by(audit.c.id)).all()
        assert [tuple(r) for r in hub_rows] == [(1, "m1", "adjust", 200, "anna", "-" * 64),
                                                (2, "m2", "adjust", 0, "anna", "-" * 64)]
        assert [tuple(r) for r in trail] == [("anna", "settle.write-off", "m1"), ("anna", "settle.keep-debt", "m2")]
        with till.ledger.read() as conn:  # the write-off reached the terminal in the points elsewhere
            assert conn.exec_driver_sql("SELECT elsewhere FROM balances WHERE member_id = 'm1'").scalar() == 0
            assert conn.exec_driver_sql("SELECT count(*) FROM entries").scalar() == 0  # sums, not entries

        report = json.loads(run.invoke(cli, ["--db", hub_url, "reconcile", "--json"]).output)["overdrawn"]
        assert [(r["member_id"], r["settled"]["decision"], r["settled"]["decided_by"]) for r in report] == \
            [("m2", "keep-debt", "anna")]
        text = run.invoke(cli, ["--db", hub_url, "reconcile"]).output
        assert "member m1" not in text and "settled: debt kept, by anna" in text
        assert "1 member(s) overdrawn, 1 of them settled (debt kept)" in text
        # the debt grows: the decision was about the old balance, so m2 is open again
        r = t.send(entries=[t.entry(member_id="m2", card_number="6395000000000002", kind="redeem", points=-10)])
        assert r.status_code == 200
        report = json.loads(run.invoke(cli, ["--db", hub_url, "reconcile", "--json"]).output)["overdrawn"]
        assert [(r["member_id"], r["balance"], r["settled"]) for r in report] == [("m2", -210, None)]
    finally:
        till.close()
