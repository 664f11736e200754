"""A terminal that archives (ledger.archive) goes on syncing: the hub holds every entry
it archived, takes the ones after the checkpoint in order, and a terminal archived up
to its head and then restored from an older backup takes its entries back from the
hub after the checkpoint. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select

from ledger import backup
from ledger.cardpolicy import CardPolicy
from ledger.db import Raw
from ledger.sales import post_sale
from ledger.service import Ledger
from ledger.verify import verify
from sync.client import SyncClient
from sync.hub.schema import entries
from sync.hub.service import Hub
from sync.hub.verify import verify_hub
from tests.conftest import sale

RETENTION = 400
BEGIN = datetime.now(timezone.utc) - timedelta(days=460)


def _hub_entries(hub: Hub, terminal: str) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(entries)
                                .where(entries.c.terminal_code == terminal)).scalar_one())


def test_an_archiving_terminal_keeps_syncing_and_the_hub_holds_it_all(  # type: ignore[no-untyped-def]
        hub: Hub, terminals) -> None:
    a = terminals("TA")
    a.clock.now = BEGIN
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    for i in range(5):
        post_sale(a.ledger, sale(f"old-{i}", card.number, 3_000_000))
    a.client.sync_once()
    a.clock.now = BEGIN + timedelta(days=450)
    post_sale(a.ledger, sale("new-1", card.number, 2_000_000))  # not at the hub yet: kept, whatever its age
    report = a.ledger.archive(a.clock.now, RETENTION)
    assert report.entries > 5 and report.sales == 5
    post_sale(a.ledger, sale("new-2", card.number, 2_000_000))
    assert a.client.sync_once().backlog == 0
    with a.ledger.read() as conn:
        head = int(Raw(conn).scalar("SELECT next_seq - 1 FROM terminals WHERE code = 'TA'"))
    assert _hub_entries(hub, "TA") == head
    assert verify(a.ledger.engine).ok
    assert verify_hub(hub.engine, CardPolicy()).entries == head  # raises BadRow at a bad one


def test_a_terminal_archived_to_its_head_then_restored_takes_its_entries_back(  # type: ignore[no-untyped-def]
        hub: Hub, terminals, tmp_path: Path) -> None:
    a = terminals("TA")
    a.clock.now = BEGIN
    m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    post_sale(a.ledger, sale("s1", card.number, 3_000_000))
    a.client.sync_once()
    a.clock.now = BEGIN + timedelta(days=450)
    a.ledger.archive(a.clock.now, RETENTION)
    with a.ledger.read() as conn:
        assert Raw(conn).scalar("SELECT count(*) FROM entries") == 0  # all of it behind the checkpoint
    path = Path(str(a.ledger.engine.url.database))
    kept = backup.backup_now(path, tmp_path / "backups", keep=5)
    post_sale(a.ledger, sale("s2", card.number, 5_000_000))
    a.client.sync_once()  # the hub holds it; the backup does not
    expected = a.ledger.balance(m.id)
    a.client.close()
    a.ledger.close()
    backup.restore(kept.path, path)
    a.ledger = Ledger.open(path, store="S1", terminal="TA", clock=a.clock)
    a.client = SyncClient(a.ledger, a.creds, batch_size=50, transport=a.client.http._transport)
    after = post_sale(a.ledger, sale("s3", card.number, 1_000_000))  # under a seq the hub already holds
    a.client.sync_once()  # the hub's entries continue the checkpoint's hash; the till's go after them
    assert a.ledger.balance(m.id) == expected + after.earned_points
    result = verify(a.ledger.engine)
    assert result.ok, result.problems
    assert a.client.sync_once().backlog == 0
