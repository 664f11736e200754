"""A terminal whose clock is off, and a terminal restored from an older backup, both
carry on by themselves (they used to need someone: `stale` for ever, and 409
`sequence_gap` for ever with the sales since the backup only at the hub)."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from ledger import backup
from ledger.sales import post_sale
from ledger.service import Ledger
from ledger.verify import verify
from sync.client import SyncClient
from sync.hub.schema import entries, members
from sync.hub.service import Hub
from tests.conftest import sale


def test_a_terminal_an_hour_fast_syncs_in_the_hubs_time(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a = terminals("TA")
    a.client.wall_clock = lambda: time.time() + 3600
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    report = a.client.sync_once()  # refused as stale once, signed again in the hub's time
    assert report.backlog == 0 and report.sent >= 0
    offset = a.client.status()["clock_offset_s"]
    assert offset is not None and -3700 < offset < -3500
    assert hub.sync("TA", {})["last_seq"] >= 0
    with hub.engine.connect() as conn:
        assert conn.execute(select(members.c.id).where(members.c.id == m.id)).scalar_one() == m.id


def test_a_terminal_restored_from_an_older_backup_takes_its_entries_back(  # type: ignore[no-untyped-def]
        hub: Hub, terminals, tmp_path: Path) -> None:
    a, b = terminals("TA"), terminals("TB")
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    post_sale(a.ledger, sale("s1", card.number, 3_000_000))
    a.client.sync_once()
    path = Path(str(a.ledger.engine.url.database))
    kept = backup.backup_now(path, tmp_path / "backups", keep=5)
    late = a.ledger.enrol_member(name="After the backup", mobile="09120000002", actor="mgr")
    late_card = a.ledger.issue_card(member_id=late.id, number="6395000000000002", technology="magstripe",
                                    actor="mgr")
    post_sale(a.ledger, sale("s2", card.number, 5_000_000))
    post_sale(a.ledger, sale("s3", late_card.number, 2_000_000))
    a.client.sync_once()  # the hub holds all of it
    b.client.sync_once()
    expected = {m.id: b.ledger.balance(m.id), late.id: b.ledger.balance(late.id)}
    a.client.close()
    a.ledger.close()
    backup.restore(kept.path, path)
    a.ledger = Ledger.open(path, store="S1", terminal="TA", clock=a.clock)
    a.client = SyncClient(a.ledger, a.creds, batch_size=50, transport=a.client.http._transport)
    # the till sells before it reaches the hub: seq numbers the hub already holds
    after = post_sale(a.ledger, sale("s4", card.number, 1_000_000))
    a.client.sync_once()  # was: 409 sequence_gap, for ever
    assert a.ledger.balance(m.id) == expected[m.id] + after.earned_points
    assert a.ledger.find_member("6395000000000002").id == late.id
    assert a.ledger.balance(late.id) == expected[late.id]
    assert verify(a.ledger.engine).ok
    b.client.sync_once()
    assert b.ledger.balance(m.id) == a.ledger.balance(m.id) and verify(b.ledger.engine).ok
    assert a.client.sync_once().backlog == 0


def test_a_restored_terminal_that_sold_nothing_since_takes_its_entries_back_too(  # type: ignore[no-untyped-def]
        hub: Hub, terminals, tmp_path: Path) -> None:
    """With nothing to send it met no sequence_gap and silently lacked what the hub
    holds of it (found by the simulation, seed 80): every answer says the hub's last seq."""
    a = terminals("TA")
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    a.client.sync_once()
    path = Path(str(a.ledger.engine.url.database))
    kept = backup.backup_now(path, tmp_path / "backups", keep=5)
    post_sale(a.ledger, sale("s1", card.number, 5_000_000))
    a.client.sync_once()
    expected = a.ledger.balance(m.id)
    a.client.close()
    a.ledger.close()
    backup.restore(kept.path, path)
    a.ledger = Ledger.open(path, store="S1", terminal="TA", clock=a.clock)
    a.client = SyncClient(a.ledger, a.creds, batch_size=50, transport=a.client.http._transport)
    assert a.ledger.balance(m.id) < expected
    a.client.sync_once()
    assert a.ledger.balance(m.id) == expected and verify(a.ledger.engine).ok


def test_a_till_restored_twice_from_backups_either_side_of_a_renumbering_takes_its_chain_back(  # type: ignore[no-untyped-def]
        hub: Hub, terminals, tmp_path: Path) -> None:
    """Backup 1; entries reach the hub; restore 1 and a sale at seqs the hub already
    holds; backup 2 (that sale at its old seq); the sync renumbers it after the hub's;
    restore 2. Its first sync sent the sale at its old seq and the hub, holding it at the
    new one, answered 409 entry_conflict at every sync after (the simulation, seed 7014)."""
    a = terminals("TA")
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    a.client.sync_once()
    path = Path(str(a.ledger.engine.url.database))

    def restore(kept: backup.BackupInfo) -> None:
        a.client.close()
        a.ledger.close()
        backup.restore(kept.path, path)
        a.ledger = Ledger.open(path, store="S1", terminal="TA", clock=a.clock)
        a.client = SyncClient(a.ledger, a.creds, batch_size=50, transport=a.client.http._transport)

    first = backup.backup_now(path, tmp_path / "backups", keep=5)
    post_sale(a.ledger, sale("s1", card.number, 5_000_000))
    a.client.sync_once()  # the hub holds s1
    restore(first)
    renumbered = post_sale(a.ledger, sale("s2", card.number, 2_000_000))  # at s1's seqs
    second = backup.backup_now(path, tmp_path / "backups", keep=5)
    a.client.sync_once()  # s1 taken back, s2 renumbered after it and sent
    expected = a.ledger.balance(m.id)
    restore(second)  # s2 at its old seq again, unsent
    report = a.client.sync_once()  # was: 409 entry_conflict, for ever
    assert report.backlog == 0 and a.client.status()["last_error"] is None
    assert a.ledger.balance(m.id) == expected and verify(a.ledger.engine).ok
    with a.ledger.engine.connect() as conn:
        assert hub.sync("TA", {})["last_seq"] == conn.exec_driver_sql(
            "SELECT max(seq) FROM entries WHERE terminal_code = 'TA'").scalar()
    with hub.engine.connect() as conn:
        sold = conn.execute(select(entries.c.seq).where(entries.c.sale_id == renumbered.sale_id)).scalars().all()
    assert len(sold) == len(set(sold)) >= 1  # each of s2's entries once
