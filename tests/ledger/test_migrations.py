from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ledger import db
from ledger.schema import metadata


def test_migrations_build_exactly_the_schema_module(tmp_path: Path) -> None:
    engine = db.create_ledger_engine(tmp_path / "l.sqlite3")
    assert db.upgrade(engine) == db.head_revision()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    engine.dispose()


def test_pragmas_are_wal_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    engine = db.create_ledger_engine(tmp_path / "l.sqlite3")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.BUSY_TIMEOUT_MS_DEFAULT
    engine.dispose()


def test_upgrade_twice_is_a_no_op(tmp_path: Path) -> None:
    engine = db.create_ledger_engine(tmp_path / "l.sqlite3")
    first = db.upgrade(engine)
    assert db.upgrade(engine) == first
    engine.dispose()


def test_a_ledger_with_history_goes_down_and_up_again_whole(tmp_path: Path) -> None:
    """0003 -> 0004 rebuilds the members table, which cards, sales, entries and
    balances refer to: every row and reference survives, both ways, and foreign keys
    are on again afterwards."""
    from alembic import command

    from ledger.sales import post_sale
    from ledger.service import Ledger
    from ledger.types import SaleLine, SaleRequest
    from ledger.verify import verify

    path = tmp_path / "l.sqlite3"
    led = Ledger.open(path, store="S", terminal="T")
    referrer = led.enrol_member(name="Ali", mobile="09120000001", actor="t")
    m = led.enrol_member(name="Sara", mobile="09120000002", referrer="09120000001", actor="t")
    card = led.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="t")
    post_sale(led, SaleRequest(idempotency_key="k", card_number=card.number, receipt_ref="r",
                               lines=(SaleLine(sku="A", name="Tea", category="grocery", quantity=1,
                                               unit_price=2_000_000),)))
    balance = led.balance(m.id)
    led.close()

    def counts(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
        with engine.connect() as conn:
            return {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()
                    for t in ("members", "cards", "sales", "entries", "balances")}

    engine = db.create_ledger_engine(path)
    before = counts(engine)
    command.downgrade(db._alembic_config(engine), "0003")
    assert db.current_revision(engine) == "0003" and counts(engine) == before
    assert db.upgrade(engine) == db.head_revision() and counts(engine) == before
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert verify(engine).ok
    engine.dispose()
    led = Ledger.open(path, store="S", terminal="T")
    assert led.balance(m.id) == balance and led.find_member("09120000002").id == m.id
    assert led.member(m.id).referrer_id == referrer.id
    led.close()


def test_a_checkpoint_copies_the_whole_wal_into_the_file(tmp_path: Path) -> None:
    """What the daemon runs every few seconds beside the till; it once ran inside a
    transaction, where SQLite refuses ("database table is locked"), and never did."""
    from ledger.service import Ledger

    led = Ledger.open(tmp_path / "l.sqlite3", store="S", terminal="T")
    for i in range(5):
        led.enrol_member(name=f"M{i}", mobile=f"0912000000{i}", actor="t")
    frames, done = led.checkpoint()
    assert frames > 0 and done == frames
    # what a reader sees is unchanged, and the WAL can start over
    assert led.find_member("09120000003").name == "M3"
    assert led.checkpoint() == (frames, frames)  # nothing new was written since
    led.close()


def test_a_migration_that_would_leave_a_broken_reference_changes_nothing(tmp_path: Path) -> None:
    import sqlite3

    import pytest
    from alembic import command

    from ledger.errors import DatabaseError
    from ledger.service import Ledger

    path = tmp_path / "l.sqlite3"
    Ledger.open(path, store="S", terminal="T").close()
    engine = db.create_ledger_engine(path)
    command.downgrade(db._alembic_config(engine), "0003")
    raw = sqlite3.connect(path)  # foreign keys are off by default here: an orphan card gets in
    raw.execute("INSERT INTO cards (number, member_id, technology, status, issued_at, issued_by) "
                "VALUES ('6395000000000009', 'no-such-member', 'magstripe', 'active', "
                "'2026-03-01T09:00:00.000000Z', 't')")
    raw.commit()
    raw.close()
    with pytest.raises(DatabaseError, match="broken references, first in table cards"):
        db.upgrade(engine)
    assert db.current_revision(engine) == "0003"  # nothing was changed
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_a_read_does_not_hold_the_write_lock(tmp_path: Path) -> None:
    """Every transaction began IMMEDIATE, reads too: a lookup or a status read held
    the lock a till's sale waits for. A write now commits while a read is open."""
    from ledger.service import Ledger

    led = Ledger.open(tmp_path / "l.sqlite3", store="S", terminal="T", busy_timeout_ms=0)
    try:
        with led.read() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM members").scalar() == 0
            led.enrol_member(name="A", mobile="09120000001", actor="t")  # busy_timeout 0: fails at once if locked
            assert conn.exec_driver_sql("SELECT count(*) FROM members").scalar() == 0  # one snapshot
        assert led.find_member("09120000001").name == "A"
    finally:
        led.close()
