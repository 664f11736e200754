"""The hub's migrations on SQLite and PostgreSQL: a database made by 0001 (terminals
and codes present) upgrades to head with its stores filled in and the directory rev
counter seeded; head downgrades to 0001 and upgrades again."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select, text

from sync.hub.db import MIGRATIONS_DIR, create_hub_engine, upgrade
from sync.hub.schema import counters, enrolment_codes, terminals


def _alembic(engine) -> Config:  # type: ignore[no-untyped-def]
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def test_0002_fills_stores_and_seeds_the_rev_counter(hub_url: str) -> None:
    engine = create_hub_engine(hub_url)
    try:
        cfg = _alembic(engine)
        command.upgrade(cfg, "0001")
        with engine.begin() as conn:
            conn.execute(insert(terminals).values(id="T1", store="S1", secret="x" * 43, revoked=False,
                                                  created_at="2026-03-01T09:00:00.000000Z", last_seq=0, last_hash=""))
            conn.execute(insert(enrolment_codes).values(code_hash="a" * 64, store="S2",
                                                        created_at="2026-03-02T09:00:00.000000Z",
                                                        expires_at="2026-03-03T09:00:00.000000Z"))
        upgrade(engine)
        with engine.connect() as conn:
            stores = conn.execute(text("SELECT code, created_at FROM stores ORDER BY code")).all()
            rev = conn.execute(select(counters.c.value).where(counters.c.name == "rev")).scalar_one()
        assert [tuple(r) for r in stores] == [("S1", "2026-03-01T09:00:00.000000Z"),
                                              ("S2", "2026-03-02T09:00:00.000000Z")]
        assert rev == 0
        command.downgrade(cfg, "0001")
        upgrade(engine)  # again: the seed does not double the counter row
        with engine.connect() as conn:
            assert conn.execute(select(counters.c.value).where(counters.c.name == "rev")).scalars().all() == [0]
    finally:
        engine.dispose()


CONCURRENT_COMMANDS = 5
COMMAND_TIMEOUT_S = 120


def test_five_loyalty_hub_commands_on_a_fresh_database_all_succeed(hub_url: str) -> None:
    """Each command migrates first; started together on a new database they used to
    race on the first migration (relation already exists) and all but one failed."""
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-m", "sync.hub", "--db", hub_url, "terminals", "list"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(CONCURRENT_COMMANDS)]
    results = [(p.wait(timeout=COMMAND_TIMEOUT_S), p.stderr.read() if p.stderr else "") for p in procs]
    for p in procs:
        for stream in (p.stdout, p.stderr):
            if stream is not None:
                stream.close()
    assert [rc for rc, _ in results] == [0] * CONCURRENT_COMMANDS, [err for _, err in results]
    engine = create_hub_engine(hub_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_failing_migration_leaves_the_database_as_it_was(hub_url: str) -> None:
    """0003 refuses a database where a terminal is enrolled as 'HUB' (the id of the
    hub's own chain): the run from 0001 fails at 0003 and 0002's table is not left
    behind, on SQLite too (its DDL used to commit migration by migration)."""
    import pytest

    from sync.errors import HubError

    engine = create_hub_engine(hub_url)
    try:
        command.upgrade(_alembic(engine), "0001")
        with engine.begin() as conn:
            conn.execute(insert(terminals).values(id="HUB", store="S1", secret="x" * 43, revoked=False,
                                                  created_at="2026-03-01T09:00:00.000000Z", last_seq=0, last_hash=""))
        with pytest.raises(HubError, match="enrolled as 'HUB'"):
            upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"
            assert "stores" not in __import__("sqlalchemy").inspect(conn).get_table_names()
    finally:
        engine.dispose()


def test_0003_adds_the_audit_table_and_the_hubs_own_chain(hub_url: str) -> None:
    engine = create_hub_engine(hub_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            row = conn.execute(select(terminals).where(terminals.c.id == "hub")).one()
            assert row.revoked and row.last_seq == 0 and row.last_hash == ""
            assert conn.execute(text("SELECT count(*) FROM audit")).scalar_one() == 0
        command.downgrade(_alembic(engine), "0002")
        upgrade(engine)
    finally:
        engine.dispose()


def test_migrations_build_exactly_the_schema_module(hub_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from sync.hub.schema import metadata

    engine = create_hub_engine(hub_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_name": _not_a_month})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def _not_a_month(name: str | None, type_: str, parent_names: object) -> bool:
    from sync.hub.partitions import is_partition

    return not (type_ == "table" and is_partition(name))


def test_0003_to_0007_upgrade_a_hub_with_history_and_go_down_and_up_again(hub_url: str) -> None:
    """A hub at 0002 with a terminal and an entry: at head, the terminal has the
    default adjustment limit, the entry no arrival time (it came before), the hub's own
    chain is empty, and every new table is there and empty; down to 0002 and up again."""
    from sqlalchemy import inspect

    from sync.hub.schema import entries

    engine = create_hub_engine(hub_url)
    try:
        cfg = _alembic(engine)
        command.upgrade(cfg, "0002")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO terminals (id, store, secret, revoked, created_at, last_seq, last_hash) "
                              "VALUES ('T1', 'S1', 's', false, '2026-03-01T09:00:00.000000Z', 1, 'h')"))
            conn.execute(text("INSERT INTO entries (id, terminal_code, seq, kind, points, amount, actor, ruleset_hash, "
                              "created_at, prev_hash, hash) VALUES ('e1', 'T1', 1, 'adjust', 5, 0, 'a', 'r', "
                              "'2026-03-01T09:00:00.000000Z', '', 'h')"))
        for _ in range(2):
            upgrade(engine)
            with engine.connect() as conn:
                t1 = conn.execute(select(terminals).where(terminals.c.id == "T1")).one()
                assert (t1.adjust_points_per_day, t1.adjust_day, t1.adjust_used, t1.last_seq) == (None, None, 0, 1)
                assert conn.execute(select(entries.c.received_at)).scalars().all() == [None]
                assert conn.execute(select(terminals.c.last_seq).where(terminals.c.id == "hub")).scalar_one() == 0
                tables = set(inspect(conn).get_table_names())
                for table in ("audit", "entry_time_flags", "card_ranges", "held_adjustments", "settlements"):
                    assert table in tables
                    assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
            command.downgrade(cfg, "0002")
            with engine.connect() as conn:
                assert "audit" not in inspect(conn).get_table_names()
                assert conn.execute(text("SELECT count(*) FROM entries")).scalar_one() == 1
    finally:
        engine.dispose()
