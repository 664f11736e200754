"""PostgreSQL: the hub keeps sales and their lines in a partition a month, by the
sale's time (sync/hub/partitions.py). Each sale once, in its month's partition (made
ahead, or after the sync that brought a sale of a month without one); a forged id in
another month is still refused; a report holding the default partition never keeps a
sync waiting; migration 0011 moves a hub's sales in and back out with nothing lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from ledger.sales import post_sale
from sync.hub.db import create_hub_engine, upgrade
from sync.hub.partitions import keep_ahead, months_around
from sync.hub.service import Hub
from tests.attacks.forge import Forger
from tests.conftest import sale
from tests.sync.conftest import Terminal, pg_schema_url
from tests.sync.test_hub_migrations import _alembic

HUB_NOW = datetime.now(timezone.utc)
THIS, NEXT = months_around(HUB_NOW, ahead=1)
LAST = months_around(HUB_NOW, behind=1, ahead=0)[0]


@pytest.fixture
def hub_url() -> Iterator[str]:
    yield from pg_schema_url()


def _at(month: str, day: int = 10) -> datetime:
    return datetime(int(month[:4]), int(month[5:]), day, 9, 0, tzinfo=timezone.utc)


def _where(hub: Hub, table: str = "sales", key: str = "id") -> dict[str, str]:
    with hub.engine.connect() as conn:
        return {r[1]: r[0] for r in conn.execute(text(f"SELECT tableoid::regclass::text, {key} FROM {table}"))}


def _sell(t: Terminal, at: datetime, key: str) -> str:
    t.clock.now = at
    return post_sale(t.ledger, sale(key, "6395000000000001", 1_000_000, 2_000_000)).sale_id


@pytest.fixture
def till(terminals) -> Terminal:  # type: ignore[no-untyped-def]
    t = terminals("T1")
    t.clock.now = _at(LAST, 1)
    m = t.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    t.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
    return t


def test_each_sale_lands_once_in_its_months_partition(hub: Hub, hub_http: TestClient, till: Terminal) -> None:
    last = _sell(till, _at(LAST), "k-last")  # before this month: no partition until this sync brings one
    this = _sell(till, _at(THIS), "k-this")
    far = _sell(till, datetime(2031, 6, 2, 9, 0, tzinfo=timezone.utc), "k-far")  # a clock years ahead
    till.client.sync_once()
    till.client.sync_once()  # a resend of nothing: nothing twice
    where = _where(hub)
    assert where == {last: f"sales_y{LAST[:4]}m{LAST[5:]}", this: f"sales_y{THIS[:4]}m{THIS[5:]}",
                     far: "sales_default"}
    lines = _where(hub, "sale_lines", "sale_id || '/' || line_no")
    assert sorted(lines) == sorted(f"{s}/{n}" for s in (last, this, far) for n in (1, 2))
    assert {lines[f"{this}/1"], lines[f"{far}/2"]} == {f"sale_lines_y{THIS[:4]}m{THIS[5:]}", "sale_lines_default"}

    # another terminal sending that id again, a month later: refused, as the id alone is checked
    mallory = Forger(hub, hub_http, "TM", "S1")
    with hub.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM sales WHERE id = :id"), {"id": this}).mappings().one()
        lines_of = [{k: v for k, v in line.items() if k not in ("sale_id", "created_at")} for line in conn.execute(
            text("SELECT * FROM sale_lines WHERE sale_id = :id ORDER BY line_no"), {"id": this}).mappings()]
    forged = {**{k: row[k] for k in row.keys() if k not in ("store", "received_at")}, "terminal_code": "TM",
              "created_at": f"{NEXT}-02T09:00:00.000000Z", "lines": lines_of}
    r = mallory.send(sales=[forged], protocol=2)
    assert r.status_code == 409 and r.json()["code"] == "sale_conflict", r.text
    assert len(_where(hub)) == 3

    # the hub's clock reaches 2031: the month is made, and the sale moves out of the default partition
    assert keep_ahead(hub.engine, datetime(2031, 6, 1, tzinfo=timezone.utc))
    assert _where(hub)[far] == "sales_y2031m06"
    assert _where(hub, "sale_lines", "sale_id || '/' || line_no")[f"{far}/1"] == "sale_lines_y2031m06"
    with hub.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*), sum(amount) FROM sales")).one() == (3, 9_000_000)


def test_a_report_holding_the_default_partition_never_keeps_a_sync_waiting(
        hub: Hub, hub_http: TestClient, till: Terminal) -> None:
    reading = threading.Event()
    done = threading.Event()

    def long_report() -> None:  # a report's transaction, holding every partition it read
        with hub.engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM sales"))
            reading.set()
            done.wait(30)

    reader = threading.Thread(target=long_report)
    reader.start()
    try:
        assert reading.wait(10)
        sold = _sell(till, _at(LAST), "k-1")  # its month's partition is not made yet
        till.client.sync_once()  # stored at once; the partition waits its 2 s and gives up
        assert _where(hub)[sold] == "sales_default"
    finally:
        done.set()
        reader.join()
    _sell(till, _at(LAST, 12), "k-2")
    till.client.sync_once()  # the next sync makes it
    assert set(_where(hub).values()) == {f"sales_y{LAST[:4]}m{LAST[5:]}"}


def test_0011_moves_a_hubs_sales_into_months_and_back_with_nothing_lost(hub_url: str) -> None:
    engine = create_hub_engine(hub_url)
    try:
        command.upgrade(_alembic(engine), "0010")
        sales = [(f"s{i}", created) for i, created in enumerate(
            (f"{LAST}-03T10:00:00.000000Z", f"{THIS}-01T00:00:00.000000Z", "2019-02-28T23:59:59.999999Z",
             "1970-01-01T00:00:00.000000Z"))]
        with engine.begin() as conn:
            for sid, created in sales:
                conn.execute(text(
                    "INSERT INTO sales VALUES (:id, 'sale', NULL, 'T1', 'S1', 'm1', NULL, 'R', 1000, :h, :c, 'pos', "
                    "'{}', :c)"), {"id": sid, "h": "x" * 64, "c": created})
                for n in (1, 2):
                    conn.execute(text("INSERT INTO sale_lines VALUES (:id, :n, 'SKU', 'item', 'grocery', 1, 500, "
                                      "NULL, :c)"), {"id": sid, "n": n, "c": created})

        def rows() -> tuple[list, list]:  # type: ignore[type-arg]
            with engine.connect() as conn:
                return (conn.execute(text("SELECT * FROM sales ORDER BY id")).all(),
                        conn.execute(text("SELECT * FROM sale_lines ORDER BY sale_id, line_no")).all())

        before = rows()
        upgrade(engine)
        assert rows() == before
        with engine.connect() as conn:
            where = {r[1]: r[0] for r in conn.execute(text("SELECT tableoid::regclass::text, id FROM sales"))}
        assert where == {"s0": f"sales_y{LAST[:4]}m{LAST[5:]}", "s1": f"sales_y{THIS[:4]}m{THIS[5:]}",
                         "s2": "sales_y2019m02", "s3": "sales_default"}
        command.downgrade(_alembic(engine), "0010")
        assert rows() == before
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_partitioned_table WHERE partrelid IN (to_regclass('sales'), "
                                      "to_regclass('sale_lines'))")).scalar_one() == 0
        upgrade(engine)
        assert rows() == before
    finally:
        engine.dispose()
