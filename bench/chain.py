"""A simulated day (and year) of a chain: terminals syncing with the hub on the real
PostgreSQL, scaled down to what one machine holds, with the three budgets of a
3,000-store chain (10 million members, 1 million sales a day):

(a) bytes downloaded per terminal per day (<= 2 MB): its store's scope as sums, the
    directory of that scope, the whole blocklist, and the fixed cost of every poll;
(b) the hub's p99 per sync request while terminals poll (<= 300 ms at 3,000
    terminals every 30 s, i.e. 100 requests/s), measured open loop at the rates this
    machine can drive;
(c) what one terminal's ledger holds after a year of its store's sales (< 1 GB),
    measured on a real ledger posting real sales and syncing through the real client.

Per store the simulation keeps the chain's real numbers (members and sales per store
per day); only the number of stores is scaled down. So (a)'s scoped part is measured
as it would be, and its chain-wide part (the blocklist: cards blocked anywhere) is
scaled by 3,000 / stores. Terminals of (a) and (b) are simulated clients sending
signed batches built from a real sale of a real ledger (`ledger.hubsync.batch_rows`);
the hub is the real `loyalty-hub serve` with its workers, over HTTP on loopback.

Floors, in the same run: a trivial PostgreSQL round trip, and an empty HTTP request
(GET /v1/health) to the same hub at the same request rate.
Last line: one JSON object.
usage: python bench/chain.py [--stores N] [--members-per-store N] [--sales-per-store N]
       [--rounds N] [--rates 25,50,100] [--poll-s S] [--workers N] [--year-days N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger import hubsync  # noqa: E402
from ledger.chain import entry_hash  # noqa: E402
from ledger.db import Raw  # noqa: E402
from ledger.rows import CARD_FIELDS, MEMBER_FIELDS, PROTOCOL  # noqa: E402
from ledger.sales import post_sale  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from ledger.timefmt import format_utc  # noqa: E402
from ledger.types import SaleLine, SaleRequest  # noqa: E402
from sync import signing  # noqa: E402
from sync.client import Credentials, SyncClient  # noqa: E402
from sync.hub.db import create_hub_engine, upgrade  # noqa: E402
from sync.hub.service import Hub  # noqa: E402
from tests.e2e.agent_proc import free_port  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CHAIN_STORES = 3_000
CHAIN_MEMBERS = 10_000_000
CHAIN_SALES_PER_DAY = 1_000_000
POLL_INTERVAL_S = 30
POLLS_PER_DAY = 86_400 // POLL_INTERVAL_S
VISITOR_SHARE = 0.10  # sales to a member of another store (looked up at the hub first)
BLOCKED_PER_MEMBER_DAY = 0.0001  # cards reported lost or blocked a day: 1,000 a day at 10 million members
ENROLMENTS_PER_STORE_DAY = 3
POLL_SALE_CHANCE = 0.25  # a poll carrying a sale: about twice the day's average (333 / 2,880), a busy hour
NEW_CARDS_FROM = 10**9  # numbers of cards issued during the day, above every seeded one
CONCURRENCY = 8  # requests in flight from the load generator in the day phase (more only queue at the hub)
LINES = [("SKU1", "Rice 10kg", "grocery", 1, 2_450_000), ("SKU2", "Tea 500g", "grocery", 2, 480_000),
         ("SKU3", "Oil 1.5l", "grocery", 1, 1_150_000), ("SKU4", "Soap", "home", 3, 95_000),
         ("SKU5", "Dates 1kg", "grocery", 1, 620_000)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def member_id(k: int) -> str:
    return str(uuid.UUID(int=k + 1))


def card_number(k: int) -> str:
    return f"6395{k:012d}"


# -- the template: one real sale of a real ledger, as the terminal's client sends it ----

def template() -> dict[str, Any]:
    """The entry and sale rows (with its lines and result JSON) of one real sale, as
    `ledger.hubsync.batch_rows` builds them for the wire."""
    with tempfile.TemporaryDirectory() as tmp:
        led = Ledger.open(Path(tmp) / "t.sqlite3", store="S", terminal="T")
        m = led.enrol_member(name="Sara Ahmadi", mobile="09120000001", actor="mgr")
        led.issue_card(member_id=m.id, number="6395999999999999", technology="magstripe", actor="mgr")
        with led.read() as conn:
            skip = len(hubsync.outbox_rows(Raw(conn), -1, 1000))
        post_sale(led, SaleRequest(idempotency_key="k", card_number="6395999999999999", receipt_ref="R-1",
                                   lines=tuple(SaleLine(sku=s, name=n, category=c, quantity=q, unit_price=p)
                                               for s, n, c, q, p in LINES)))
        with led.read() as conn:
            raw = Raw(conn)
            rows = hubsync.batch_rows(raw, hubsync.outbox_rows(raw, -1, 1000)[skip:])
        led.close()
    (entry,) = rows["entries"]
    (sale,) = rows["sales"]
    return {"entry": entry, "sale": sale, "member": m.id}


@dataclass
class Term:
    id: str
    store: str
    secret: str
    members: range  # the store's own members (indexes)
    seq: int = 0
    last_hash: str = ""
    cursor: int = 0
    rev: int = 0
    held: set[int] = field(default_factory=set)  # other stores' members looked up here
    down: int = 0  # bytes received: bodies and headers
    up: int = 0
    parts: dict[str, int] = field(default_factory=dict)  # bytes of each list in the answers
    latencies: list[float] = field(default_factory=list)


class Chain:
    def __init__(self, tpl: dict[str, Any], ruleset_hash: str) -> None:
        self.tpl = tpl
        self.ruleset_hash = ruleset_hash
        self.clock = datetime.now(timezone.utc)
        self.cards_issued = 0

    def new_card(self) -> int:
        self.cards_issued += 1
        return self.cards_issued

    def now(self) -> str:
        self.clock += timedelta(microseconds=1)
        return format_utc(self.clock)

    def sale(self, term: Term, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """An entry and its sale, as the template's but for member k at this terminal."""
        tpl = self.tpl
        sid, mid, at = str(uuid.uuid4()), member_id(k), self.now()
        term.seq += 1
        receipt = f"R-{term.id}-{term.seq}"
        entry = {**tpl["entry"], "id": str(uuid.uuid4()), "terminal_code": term.id, "seq": term.seq,
                 "member_id": mid, "card_number": card_number(k), "sale_id": sid, "receipt_ref": receipt,
                 "created_at": at, "prev_hash": term.last_hash}
        entry["hash"] = term.last_hash = entry_hash(entry)
        result = tpl["sale"]["result_json"].replace(tpl["sale"]["id"], sid).replace(tpl["member"], mid)
        sale = {**tpl["sale"], "id": sid, "terminal_code": term.id, "member_id": mid,
                "card_number": card_number(k), "receipt_ref": receipt, "created_at": at, "result_json": result}
        return entry, sale

    def body(self, term: Term, entries: list[dict[str, Any]], sales: list[dict[str, Any]],
             members: list[dict[str, Any]], cards: list[dict[str, Any]]) -> bytes:
        return orjson.dumps({"entries": entries, "members": members, "cards": cards, "gift_cards": [],
                             "sales": sales, "cursor": term.cursor, "directory_rev": term.rev,
                             "ruleset_hash": self.ruleset_hash, "protocol": PROTOCOL})


def answer_bytes(r: httpx.Response) -> int:
    """What came over the wire for this answer: status line, headers and body."""
    head = 17 + sum(len(k) + len(v) + 4 for k, v in r.headers.raw)
    return head + r.num_bytes_downloaded


async def post(http: httpx.AsyncClient, term: Term, path: str, body: bytes) -> httpx.Response:
    headers = signing.signed_headers(term.id, term.secret, "POST", path, body)
    headers["Content-Type"] = "application/json"
    term.up += len(body) + sum(len(k) + len(v) + 4 for k, v in headers.items())
    r = await http.post(path, content=body, headers=headers)
    term.down += answer_bytes(r)
    if r.status_code != 200:
        raise RuntimeError(f"{term.id} {path}: {r.status_code} {r.text[:300]}")
    return r


async def sync(http: httpx.AsyncClient, chain: Chain, term: Term, entries: list[dict[str, Any]],
               sales: list[dict[str, Any]], members: list[dict[str, Any]] | None = None,
               cards: list[dict[str, Any]] | None = None, scheduled: float | None = None) -> dict[str, Any]:
    t0 = time.perf_counter() if scheduled is None else scheduled
    r = await post(http, term, "/v1/sync", chain.body(term, entries, sales, members or [], cards or []))
    term.latencies.append((time.perf_counter() - t0) * 1000)
    answer = orjson.loads(r.content)
    for key in ("members", "cards", "gift_cards", "blocklist", "member_states", "gift_states"):
        if answer.get(key):
            term.parts[key] = term.parts.get(key, 0) + len(orjson.dumps(answer[key]))
    term.cursor, term.rev = int(answer["cursor"]), int(answer["directory_rev"])
    if answer.get("more"):
        await sync(http, chain, term, [], [])
    return answer


# -- seeding the hub ------------------------------------------------------------------

def seed(url: str, schema: str, stores: int, per_store: int) -> int:
    """Members, their cards, their store's scope and balances, straight into the hub's
    tables by COPY (as a chain's hub holds them before the day). Returns the top rev."""
    total = stores * per_store
    at = format_utc(datetime.now(timezone.utc) - timedelta(days=400))
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql").split("?")[0]) as pg:
        pg.execute(f'SET search_path = "{schema}"')
        with pg.cursor().copy("COPY members (id, name, mobile, birth_date, referrer_id, tier, segment, enrolled_at, "
                              "enrolled_by, store_code, rev) FROM STDIN") as copy:
            for k in range(total):
                copy.write_row((member_id(k), f"Member {k}", f"09{k:09d}", None, None, "bronze", None, at, "seed",
                                f"S{k // per_store:04d}", k + 1))
        with pg.cursor().copy("COPY cards (number, member_id, technology, status, replaced_by, issued_at, issued_by, "
                              "status_changed_at, status_reason, rev) FROM STDIN") as copy:
            for k in range(total):
                copy.write_row((card_number(k), member_id(k), "magstripe", "active", None, at, "seed", None, None,
                                total + k + 1))
        with pg.cursor().copy("COPY member_stores (member_id, store, since) FROM STDIN") as copy:
            for k in range(total):
                copy.write_row((member_id(k), f"S{k // per_store:04d}", at))
        with pg.cursor().copy("COPY balances (member_id, points) FROM STDIN") as copy:
            for k in range(total):
                copy.write_row((member_id(k), 100 + k % 5000))
        pg.execute("INSERT INTO counters (name, value) VALUES ('rev', %s) ON CONFLICT (name) DO UPDATE "
                   "SET value = excluded.value", (2 * total,))
        pg.commit()
        pg.autocommit = True
        for table in ("members", "cards", "member_stores", "balances"):
            pg.execute(f"ANALYZE {table}")
    return 2 * total


def pg_floor(url: str, n: int = 2000) -> tuple[float, float]:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql").split("?")[0], autocommit=True) as pg:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            pg.execute("SELECT 1").fetchone()
            times.append((time.perf_counter() - t0) * 1000)
    return pct(times, 0.5), pct(times, 0.99)


# -- (a): the day -----------------------------------------------------------------------

async def day(base: str, chain: Chain, terms: list[Term], args: argparse.Namespace) -> float:
    """The day's sales in `rounds` syncs per terminal (each carrying its share), with
    visitors looked up first, cards blocked and members enrolled as the rates say."""
    rng = random.Random(1)
    total_members = args.stores * args.members_per_store
    blocks_per_round = BLOCKED_PER_MEMBER_DAY * total_members / args.rounds
    enrol_chance = ENROLMENTS_PER_STORE_DAY / args.rounds
    blocked: set[int] = set()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    gate = asyncio.Semaphore(CONCURRENCY)
    t_start = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as http:
        for round_ in range(args.rounds):
            per_term = [args.sales_per_store // args.rounds + (1 if round_ < args.sales_per_store % args.rounds
                                                               else 0) for _ in terms]
            blockers = rng.sample(range(len(terms)), min(len(terms), int(blocks_per_round)
                                                         + (rng.random() < blocks_per_round % 1)))

            async def one(i: int, term: Term) -> None:
                async with gate:
                    entries, sales, members, cards = [], [], [], []
                    for _ in range(per_term[i]):
                        if rng.random() < VISITOR_SHARE:
                            k = rng.randrange(total_members)
                            if k not in term.members and k not in term.held:
                                await post(http, term, "/v1/lookup", orjson.dumps({"q": card_number(k)}))
                                term.held.add(k)
                        else:
                            k = rng.choice(term.members)
                        if k in blocked:
                            continue
                        e, s = chain.sale(term, k)
                        entries.append(e)
                        sales.append(s)
                    if i in blockers:  # a member of this store reports a card lost
                        k = rng.choice(term.members)
                        if k not in blocked:
                            blocked.add(k)
                            cards.append({**dict.fromkeys(CARD_FIELDS), "number": card_number(k),
                                          "member_id": member_id(k), "technology": "magstripe",
                                          "status": "lost", "issued_at": format_utc(chain.clock
                                                                                    - timedelta(days=400)),
                                          "issued_by": "seed", "status_changed_at": chain.now(),
                                          "status_reason": "lost"})
                    if rng.random() < enrol_chance:
                        mid, at = str(uuid.uuid4()), chain.now()
                        members.append({**dict.fromkeys(MEMBER_FIELDS), "id": mid, "name": "New member",
                                        "mobile": f"0935{rng.randrange(10**7):07d}", "tier": "bronze",
                                        "enrolled_at": at, "enrolled_by": "cashier", "store_code": term.store})
                        cards.append({**dict.fromkeys(CARD_FIELDS),
                                      "number": card_number(NEW_CARDS_FROM + chain.new_card()),
                                      "member_id": mid, "technology": "magstripe", "status": "active",
                                      "issued_at": at, "issued_by": "cashier"})
                    await sync(http, chain, term, entries, sales, members, cards)

            await asyncio.gather(*(one(i, t) for i, t in enumerate(terms)))
            print(f"  round {round_ + 1}/{args.rounds}: {time.perf_counter() - t_start:.0f} s", file=sys.stderr)
    return time.perf_counter() - t_start


async def empty_answer_bytes(base: str, chain: Chain, term: Term) -> int:
    """One poll with nothing new either way: the fixed cost of each of the day's polls.
    (The first poll takes what others did since this terminal's last sync; the second
    is empty.) The terminal's count of bytes is left as it was."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        before = term.down
        await sync(http, chain, term, [], [])
        middle = term.down
        await sync(http, chain, term, [], [])
        empty = term.down - middle
        term.down = before
        return empty


# -- (b): polling ----------------------------------------------------------------------

async def catch_up(base: str, chain: Chain, terms: list[Term]) -> None:
    """Every terminal syncs once, taking what the others did after its last sync of the
    day: those bytes are the day's too (counted), and the polls measured after are the
    steady state, not each terminal's catch-up (a terminal polling every 30 s is never
    more than 30 s behind)."""
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    gate = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as http:
        async def one(term: Term) -> None:
            async with gate:
                await sync(http, chain, term, [], [])

        await asyncio.gather(*(one(t) for t in terms))


async def poll(base: str, chain: Chain, terms: list[Term], rate: float, seconds: float,
               health: bool = False) -> dict[str, float]:
    """Open loop: terminal i syncs every len(terms) / rate seconds, at its own offset;
    each request's time runs from when it was due (a hub falling behind shows as
    latency, not as a lower rate). health: GET /v1/health instead (the floor)."""
    period = len(terms) / rate
    rng = random.Random(2)
    latencies: list[float] = []
    done = 0
    limits = httpx.Limits(max_connections=len(terms), max_keepalive_connections=len(terms))
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as http:
        t0 = time.perf_counter()
        end = t0 + seconds

        async def loop(i: int, term: Term) -> None:
            nonlocal done
            due = t0 + i * period / len(terms)
            while due < end:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                if health:
                    r = await http.get("/v1/health")
                    assert r.status_code == 200
                    latencies.append((time.perf_counter() - due) * 1000)
                else:
                    entries, sales = [], []
                    if rng.random() < POLL_SALE_CHANCE:
                        k = rng.choice(term.members)
                        e, s = chain.sale(term, k)
                        entries, sales = [e], [s]
                    n = len(term.latencies)
                    await sync(http, chain, term, entries, sales, scheduled=due)
                    latencies.extend(term.latencies[n:n + 1])
                done += 1
                due += period

        await asyncio.gather(*(loop(i, t) for i, t in enumerate(terms)))
        wall = time.perf_counter() - t0
    return {"target_per_s": rate, "reached_per_s": round(done / wall, 1), "requests": done,
            "p50_ms": round(pct(latencies, 0.5), 1), "p99_ms": round(pct(latencies, 0.99), 1)}


# -- (c): a year of one real terminal ---------------------------------------------------

def year(base: str, hub_url: str, store: str, per_store_members: range, days: int, sales_per_day: int,
         folder: Path) -> dict[str, Any]:
    """A real ledger at one store: it takes its scope from the hub (the install), then
    posts the store's sales for `days` days and syncs once a day through the real
    client. What it holds at the end, and what it downloaded."""
    out = subprocess.run([sys.executable, "-m", "sync.hub", "--db", hub_url, "terminals", "add", "--store", store],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    secret = httpx.post(f"{base}/v1/enroll", json={"code": out, "terminal": "Y0000"}).json()["secret"]
    start = datetime.now(timezone.utc)
    clock_at = [start]

    def clock() -> datetime:
        clock_at[0] += timedelta(microseconds=1)
        return clock_at[0]

    led = Ledger.open(folder / "year.sqlite3", store=store, terminal="Y0000", clock=clock)
    client = SyncClient(led, Credentials(base, "Y0000", store, secret), batch_size=500, timeout_s=120)
    down = [0]
    original = client._post

    def counted(*a: Any, **kw: Any) -> httpx.Response:
        r = original(*a, **kw)
        down[0] += answer_bytes(r)
        return r

    client._post = counted  # type: ignore[method-assign]
    t0 = time.perf_counter()
    report = client.sync_once()
    while report.backlog or report.requests == 50:
        report = client.sync_once()
    install = {"bytes": down[0], "s": round(time.perf_counter() - t0, 1)}
    with led.read() as conn:
        held = [r[0] for r in conn.exec_driver_sql("SELECT number FROM cards WHERE status = 'active'").all()]
    rng = random.Random(3)
    lines = tuple(SaleLine(sku=s, name=n, category=c, quantity=q, unit_price=p) for s, n, c, q, p in LINES)
    down[0] = 0
    t0 = time.perf_counter()
    posted = 0
    for d in range(days):
        clock_at[0] = start + timedelta(days=d, hours=8)
        for i in range(sales_per_day):
            clock_at[0] += timedelta(seconds=43_200 / sales_per_day)
            k = rng.randrange(len(held))
            post_sale(led, SaleRequest(idempotency_key=f"y{d}-{i}", card_number=held[k], receipt_ref=f"Y{d}-{i}",
                                       lines=lines[: 1 + (d + i) % len(lines)]))
            posted += 1
        report = client.sync_once()
        while report.backlog:
            report = client.sync_once()
    post_s = time.perf_counter() - t0
    led.checkpoint()
    client.close()
    with led.read() as conn:
        tables = [r[0] for r in conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all()]
        rows = {t: int(conn.exec_driver_sql(f'SELECT count(*) FROM "{t}"').scalar() or 0) for t in tables}
        try:
            sizes = dict(conn.exec_driver_sql("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").all())
        except Exception:  # a SQLite built without dbstat
            sizes = {}
    led.close()
    size = sum(p.stat().st_size for p in folder.glob("year.sqlite3*"))
    return {"days": days, "sales": posted, "file_bytes": size, "rows": {k: v for k, v in rows.items() if v},
            "largest": sorted(((int(v), k) for k, v in sizes.items()), reverse=True)[:8],
            "install_bytes": install["bytes"], "install_s": install["s"], "down_bytes_year": down[0],
            "sales_per_s": round(posted / post_s, 1)}


# -- main ------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", type=int, default=300)
    parser.add_argument("--members-per-store", type=int, default=CHAIN_MEMBERS // CHAIN_STORES)
    parser.add_argument("--sales-per-store", type=int, default=CHAIN_SALES_PER_DAY // CHAIN_STORES)
    parser.add_argument("--rounds", type=int, default=24, help="syncs per terminal that carry the day's sales")
    parser.add_argument("--rates", default="25,50,100", help="poll rates to drive, requests/s")
    parser.add_argument("--poll-s", type=float, default=20.0, help="seconds at each rate")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--year-days", type=int, default=365)
    parser.add_argument("--pg", default=PG)
    args = parser.parse_args()
    scale = CHAIN_STORES / args.stores
    schema = f"chain_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.pg)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{args.pg}?options=-csearch_path%3D{schema}"
    proc = None
    try:
        engine = create_hub_engine(url)
        upgrade(engine)
        hub = Hub(engine)
        t0 = time.perf_counter()
        top_rev = seed(args.pg, schema, args.stores, args.members_per_store)
        seed_s = time.perf_counter() - t0
        ruleset_text = (ROOT / "ledger" / "rules" / "default.toml").read_text()
        _, ruleset_hash = hub.publish_ruleset(ruleset_text, "default.toml")
        terms = []
        for s in range(args.stores):
            store = f"S{s:04d}"
            _, secret = hub.enroll(hub.new_enrolment_code(store), f"T{s:04d}")
            terms.append(Term(f"T{s:04d}", store, secret,
                              range(s * args.members_per_store, (s + 1) * args.members_per_store),
                              cursor=0, rev=top_rev))
        engine.dispose()
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "sync.hub", "--db", url, "serve", "--port", str(port),
                                 "--workers", str(args.workers)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{base}/v1/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        chain = Chain(template(), ruleset_hash)
        pg_p50, pg_p99 = pg_floor(args.pg)
        # (a) the day
        day_s = asyncio.run(day(base, chain, terms, args))
        asyncio.run(catch_up(base, chain, terms))
        empty = asyncio.run(empty_answer_bytes(base, chain, terms[0]))
        down = [t.down for t in terms]
        chain_wide = [t.parts.get("blocklist", 0) + t.parts.get("gift_cards", 0) for t in terms]
        day_lat = [x for t in terms for x in t.latencies]
        polls = POLLS_PER_DAY - args.rounds
        mean_down = statistics.mean(down)
        # at 3,000 stores: the scoped part as measured, the chain-wide part times the scale
        full = mean_down + (scale - 1) * statistics.mean(chain_wide) + polls * empty
        a = {"mean_bytes": round(mean_down), "max_bytes": max(down), "chain_wide_bytes": round(statistics.mean(chain_wide)),
             "empty_poll_bytes": empty, "polls_per_day": POLLS_PER_DAY,
             "parts_mean_bytes": {k: round(sum(t.parts.get(k, 0) for t in terms) / len(terms))
                                  for k in ("members", "cards", "blocklist", "member_states", "gift_cards")},
             "up_mean_bytes": round(statistics.mean(t.up for t in terms)),
             "at_3000_stores_bytes": round(full), "day_s": round(day_s, 1),
             "day_requests_p50_ms": round(pct(day_lat, 0.5), 1), "day_requests_p99_ms": round(pct(day_lat, 0.99), 1)}
        print(f"(a) day: {len(terms)} terminals, {sum(len(t.latencies) for t in terms)} syncs in {day_s:.0f} s; "
              f"down per terminal {mean_down / 1e3:.1f} kB in {args.rounds} syncs (chain-wide part "
              f"{a['chain_wide_bytes'] / 1e3:.1f} kB), an empty poll {empty} B; at 3,000 stores polling every "
              f"30 s: {full / 1e6:.2f} MB/day", file=sys.stderr)
        # (b) polling, open loop, with the floor at the same rates
        b = []
        for rate in (float(r) for r in args.rates.split(",")):
            for t in terms:
                t.latencies.clear()
            floor = asyncio.run(poll(base, chain, terms, rate, args.poll_s / 2, health=True))
            got = asyncio.run(poll(base, chain, terms, rate, args.poll_s))
            got.update(floor_p50_ms=floor["p50_ms"], floor_p99_ms=floor["p99_ms"],
                       floor_reached_per_s=floor["reached_per_s"])
            b.append(got)
            print(f"(b) {rate:.0f}/s: reached {got['reached_per_s']}/s, p50 {got['p50_ms']} ms, p99 "
                  f"{got['p99_ms']} ms; empty GET p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms", file=sys.stderr)
        # (c) a year of one terminal
        with tempfile.TemporaryDirectory() as tmp:
            c = year(base, url, "S0000", terms[0].members, args.year_days, args.sales_per_store, Path(tmp))
        c["year_bytes_extrapolated"] = round(c["file_bytes"] * 365 / max(1, args.year_days))
        print(f"(c) {c['days']} days, {c['sales']:,} sales ({c['sales_per_s']}/s with sync): ledger "
              f"{c['file_bytes'] / 1e6:.1f} MB; install download {c['install_bytes'] / 1e6:.2f} MB in "
              f"{c['install_s']} s; rows {c['rows']}", file=sys.stderr)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(json.dumps({"bench": "chain", "stores": args.stores, "members_per_store": args.members_per_store,
                      "sales_per_store": args.sales_per_store, "workers": args.workers, "seed_s": round(seed_s, 1),
                      "floor_pg_p50_ms": round(pg_p50, 3), "floor_pg_p99_ms": round(pg_p99, 3),
                      "down_per_terminal_day": a, "poll": b, "year": c,
                      "budget_down_bytes": 2_000_000, "budget_p99_ms": 300, "budget_rate_per_s": 100,
                      "budget_ledger_bytes": 10**9}))


if __name__ == "__main__":
    main()
