"""Two hub processes serving one PostgreSQL (the hub's workers are stateless: nonces,
terminals and cursors live in the database): four real terminal ledgers of two
stores sell and sync through either process at random, concurrently, while each
process is killed with SIGKILL mid-run and started again. Every sale and every entry
lands at the hub exactly once, and every terminal ends on the hub's balances."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.errors import LedgerError
from ledger.sales import post_sale
from ledger.service import Ledger
from ledger.verify import verify
from sync.client import Credentials, SyncClient
from sync.errors import HubRefused, HubUnreachable
from sync.hub.db import create_hub_engine, upgrade
from sync.hub.schema import balances as hub_balances
from sync.hub.schema import entries as hub_entries
from sync.hub.schema import sales as hub_sales
from sync.hub.service import Hub
from sync.hub.verify import verify_hub
from tests.conftest import sale
from tests.e2e.agent_proc import free_port
from tests.sync.conftest import pg_schema_url
from tests.sync.test_processes import HubProc

SALES_EACH = 40
SETTLE_S = 90.0


@pytest.fixture
def pg_hub_url() -> Iterator[str]:
    yield from pg_schema_url()


class Terminal:
    """A real ledger with one sync client per hub process; each sync goes through one
    of them at random (as behind a load balancer), the other when that one is down."""

    def __init__(self, folder: Path, hub: Hub, code: str, store: str, ports: list[int]) -> None:
        self.code = code
        self.ledger = Ledger.open(folder / f"{code}.sqlite3", store=store, terminal=code)
        _, secret = hub.enroll(hub.new_enrolment_code(store), code)
        self.clients = [SyncClient(self.ledger, Credentials(f"http://127.0.0.1:{p}", code, store, secret),
                                   batch_size=7, timeout_s=5) for p in ports]
        self.rng = random.Random(code)
        self.failures = 0

    def sync(self) -> int:
        """One sync through either process; the backlog left (-1 if neither answered)."""
        first = self.rng.randrange(len(self.clients))
        for client in self.clients[first:] + self.clients[:first]:
            try:
                return client.sync_once().backlog
            except HubUnreachable:
                self.failures += 1
        return -1

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.ledger.close()


@pytest.mark.slow
def test_two_hub_processes_on_one_postgresql_count_every_sale_once(pg_hub_url: str, tmp_path: Path) -> None:
    engine = create_hub_engine(pg_hub_url)
    upgrade(engine)
    hub = Hub(engine)
    procs = []
    for i in range(2):
        proc = HubProc(tmp_path, free_port())
        proc.db, proc.log = pg_hub_url, tmp_path / f"hub{i}.log"
        procs.append(proc.start())
    ports = [p.port for p in procs]
    terms = [Terminal(tmp_path, hub, code, store, ports)
             for code, store in (("TA1", "S1"), ("TA2", "S1"), ("TB1", "S2"), ("TB2", "S2"))]
    try:
        # members enrolled at each store's first till, known to the hub before the day
        cards: list[str] = []
        for n, t in enumerate((terms[0], terms[2])):
            for k in range(3):
                m = t.ledger.enrol_member(name=f"M{n}{k}", mobile=f"0912000{n}{k:03d}", actor="mgr")
                cards.append(t.ledger.issue_card(member_id=m.id, number=f"63950000000{n}{k:04d}",
                                                 technology="magstripe", actor="mgr").number)
            assert t.sync() == 0
        for t in terms:  # every till sells to every member: the others are looked up at the hub first
            for number in cards:
                try:
                    t.ledger.card(number)
                except LedgerError:
                    t.clients[0].lookup(number, timeout_s=10)
        stop = threading.Event()
        sold: dict[str, list[str]] = {t.code: [] for t in terms}
        errors: list[BaseException] = []

        def till(t: Terminal) -> None:
            try:
                for i in range(SALES_EACH):
                    done = post_sale(t.ledger, sale(f"{t.code}-{i}", t.rng.choice(cards), 1_000_000 + 10_000 * i))
                    sold[t.code].append(done.sale_id)
                    if i % 3 == 2:
                        t.sync()
                    time.sleep(t.rng.uniform(0.0, 0.05))
                while not stop.is_set():  # keep syncing beside the others until told
                    t.sync()
                    time.sleep(0.05)
            except (HubRefused, LedgerError, AssertionError) as exc:
                errors.append(exc)

        threads = [threading.Thread(target=till, args=(t,), daemon=True) for t in terms]
        for th in threads:
            th.start()
        rng = random.Random(11)
        for victim in (procs[0], procs[1], procs[0]):  # kill -9 mid-run, one process at a time
            time.sleep(rng.uniform(0.5, 1.5))
            victim.kill9()
            time.sleep(rng.uniform(0.3, 1.0))
            victim.start()
        deadline = time.monotonic() + SETTLE_S
        while any(len(sold[t.code]) < SALES_EACH for t in terms) and not errors:
            assert time.monotonic() < deadline, {k: len(v) for k, v in sold.items()}
            time.sleep(0.1)
        stop.set()
        for th in threads:
            th.join(timeout=30)
        assert not errors, errors
        while any(t.sync() != 0 for t in terms):  # every outbox empty
            assert time.monotonic() < deadline, "the outboxes did not drain"
        for t in terms:  # and every till has taken what the others sent last
            assert t.sync() == 0
        assert sum(t.failures for t in terms) > 0  # the kills did hit requests in flight

        with engine.connect() as conn:
            on_hub = conn.execute(select(hub_entries.c.id, hub_entries.c.terminal_code, hub_entries.c.member_id,
                                         hub_entries.c.points)).all()
            hub_sale_ids = list(conn.execute(select(hub_sales.c.id)).scalars())
            hub_points = dict(conn.execute(select(hub_balances.c.member_id, hub_balances.c.points)).all())
            entry_count = conn.execute(select(func.count()).select_from(hub_entries)).scalar_one()
        assert len(hub_sale_ids) == len(set(hub_sale_ids)) == 4 * SALES_EACH
        assert set(hub_sale_ids) == {s for ids in sold.values() for s in ids}
        mine: set[str] = set()
        for t in terms:
            with t.ledger.read() as conn:
                own = set(conn.exec_driver_sql("SELECT id FROM entries WHERE terminal_code = ?", (t.code,)).scalars())
            assert own == {r.id for r in on_hub if r.terminal_code == t.code}, t.code
            mine |= own
        assert entry_count == len(on_hub) == len(mine)  # each entry once
        summed: dict[str, int] = {}
        for r in on_hub:
            if r.member_id:
                summed[r.member_id] = summed.get(r.member_id, 0) + r.points
        assert {m: p for m, p in hub_points.items() if p or m in summed} == summed
        for t in terms:  # every till holds every member, on the hub's balance
            for number in cards:
                member = t.ledger.card(number).member_id
                assert t.ledger.balance(member) == hub_points[member], (t.code, number)
            assert verify(t.ledger.engine).ok
        assert verify_hub(engine, hub.card_policy()).entries == len(on_hub)
    finally:
        for p in procs:
            p.stop()
        for t in terms:
            t.close()
        engine.dispose()
