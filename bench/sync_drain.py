"""Drain pending entries from a terminal into the hub on PostgreSQL, against a raw
COPY of the same rows into the same tables (the floor). Last line: one JSON object.
Budget: >= 5,000 entries/s and >= 25% of the COPY rate.

The backlog is what a till's day leaves: sales, each an entry with its sale row and
three lines (protocol 2 sends them up together; the result JSON is a real sale's),
plus each member's sign-up bonus. --adjust fills it with bare adjustments instead,
the payload this bench measured before sales travelled.
usage: python bench/sync_drain.py [--entries N] [--pg URL] [--adjust]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.db import Raw  # noqa: E402
from ledger.sales import _INSERT_LINE_SQL, _INSERT_SALE_SQL, post_sale  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from ledger.timefmt import format_utc  # noqa: E402
from ledger.types import SaleLine, SaleRequest  # noqa: E402
from ledger.writer import NewEntry, append_entries, queue_for_hub  # noqa: E402
from sync.client import Credentials, SyncClient  # noqa: E402
from sync.hub.service import ENTRY_FIELDS, LINE_FIELDS, SALE_FIELDS  # noqa: E402
from tests.e2e.agent_proc import free_port  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MEMBERS = 100
WRITE_CHUNK = 2000


LINES = (SaleLine(sku="SKU1", name="Rice 10kg", category="grocery", quantity=1, unit_price=2_450_000),
         SaleLine(sku="SKU2", name="Tea 500g", category="grocery", quantity=2, unit_price=480_000),
         SaleLine(sku="SKU3", name="Oil 1.5l", category="grocery", quantity=1, unit_price=1_150_000))


def fill(led: Ledger, n: int, adjust: bool) -> None:
    ids = [led.enrol_member(name=f"m{i}", mobile=f"0912{i:07d}", actor="bench").id for i in range(MEMBERS)]
    cards = [led.issue_card(member_id=m, number=f"6395{i:012d}", technology="magstripe", actor="bench").number
             for i, m in enumerate(ids)]
    left = n - MEMBERS  # each enrolment wrote a sign-up bonus
    if not adjust:  # one real sale: its result JSON is every bench sale's (the text is what travels)
        result = post_sale(led, SaleRequest(idempotency_key="k", card_number=cards[0], receipt_ref="R",
                                            lines=LINES)).to_json()
        left -= 1
    amount = sum(x.total for x in LINES)
    while left > 0:
        k = min(WRITE_CHUNK, left)
        at = datetime.now(timezone.utc)
        with led.write("bench fill") as conn:
            if adjust:
                append_entries(conn, led.terminal, [NewEntry(kind="adjust", points=1, amount=0,
                                                             member_id=ids[i % MEMBERS], reason="bench")
                                                    for i in range(k)],
                               actor="bench", ruleset_hash="-" * 64, at=at)
            else:  # as post_sale writes them: the entry, the sale and its lines, the sale queued after it
                raw = Raw(conn)
                for i in range(k):
                    sid, m = str(uuid.uuid4()), i % MEMBERS
                    append_entries(conn, led.terminal, [NewEntry(
                        kind="earn", points=amount // 10_000, amount=amount, member_id=ids[m], card_number=cards[m],
                        sale_id=sid, receipt_ref=f"R{left}-{i}", rule_id="earn")], actor="pos",
                        ruleset_hash="-" * 64, at=at)
                    raw.run(_INSERT_SALE_SQL, (sid, f"k{left}-{i}", "-" * 64, "sale", led.terminal, ids[m], cards[m],
                                               f"R{left}-{i}", amount, "-" * 64, format_utc(at), "pos",
                                               json.dumps({**result, "sale_id": sid, "member_id": ids[m]},
                                                          ensure_ascii=False)))
                    raw.many(_INSERT_LINE_SQL, [(sid, no, x.sku, x.name, x.category, x.quantity, x.unit_price)
                                                for no, x in enumerate(LINES, start=1)])
                    queue_for_hub(conn, "sale", sid, at)
        left -= k


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--adjust", action="store_true", help="bare adjustments, no sales (the old payload)")
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.pg)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{args.pg}?options=-csearch_path%3D{schema}"
    port = free_port()
    hub = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            led = Ledger.open(Path(tmp) / "t.sqlite3", store="S1", terminal="T1")
            fill(led, args.entries, args.adjust)
            hub = subprocess.Popen([sys.executable, "-m", "sync.hub", "--db", url, "serve", "--port", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            base = f"http://127.0.0.1:{port}"
            for _ in range(400):
                try:
                    if httpx.get(f"{base}/v1/health", timeout=0.5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            code = subprocess.run([sys.executable, "-m", "sync.hub", "--db", url, "terminals", "add", "--store", "S1"],
                                  capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
            secret = httpx.post(f"{base}/v1/enroll", json={"code": code, "terminal": "T1"}).json()["secret"]
            # the filler is manual adjustments (one point each, ~100,000 in a day): far above the
            # hub's default daily limit, which would hold them; this bench measures the drain
            subprocess.run([sys.executable, "-m", "sync.hub", "--db", url, "terminals", "limit", "T1",
                            "--adjust-points-per-day", str(args.entries), "--by", "bench"],
                           capture_output=True, check=True, cwd=ROOT)
            client = SyncClient(led, Credentials(base, "T1", "S1", secret), batch_size=5000, timeout_s=120)
            parts = {"payload": 0.0, "send": 0.0, "apply": 0.0}
            for name in parts:  # where the time goes, for BENCHMARKS.md
                original = getattr(client, f"_{name}")

                def timed(*a, _f=original, _n=name):  # type: ignore[no-untyped-def]
                    t = time.perf_counter()
                    try:
                        return _f(*a)
                    finally:
                        parts[_n] += time.perf_counter() - t

                setattr(client, f"_{name}", timed)
            t0 = time.perf_counter()
            report = client.sync_once()
            while report.backlog:
                report = client.sync_once()
            drain_s = time.perf_counter() - t0
            client.close()
            with led.read() as conn:
                rows = conn.exec_driver_sql(f"SELECT {', '.join(ENTRY_FIELDS)} FROM entries ORDER BY seq").all()
                # the hub's sales carry the store and when they came; lines the sale's time
                sale_rows = [(*r, "S1", r[SALE_FIELDS.index("created_at")]) for r in conn.exec_driver_sql(
                    f"SELECT {', '.join(SALE_FIELDS)} FROM sales").all()]
                line_rows = conn.exec_driver_sql(
                    f"SELECT l.sale_id, {', '.join('l.' + c for c in LINE_FIELDS)}, s.created_at FROM sale_lines l "
                    "JOIN sales s ON s.id = l.sale_id").all()
            led.close()
        # the floor: COPY the same rows into an empty copy of the hub's entries table
        with psycopg.connect(args.pg.replace("postgresql+psycopg", "postgresql")) as pg:
            pg.execute(f'SET search_path = "{schema}"')
            for table in ("entries", "sales", "sale_lines"):
                pg.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
            buf = io.StringIO()
            t0 = time.perf_counter()
            for table, columns, data in (
                    ("entries", ENTRY_FIELDS, rows),
                    ("sales", (*SALE_FIELDS, "store", "received_at"), sale_rows),
                    ("sale_lines", ("sale_id", *LINE_FIELDS, "created_at"), line_rows)):
                with pg.cursor().copy(f"COPY floor_{table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
            pg.commit()
            copy_s = time.perf_counter() - t0
            del buf
    finally:
        if hub is not None:
            hub.terminate()
            hub.wait(timeout=15)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    rate, floor = len(rows) / drain_s, len(rows) / copy_s
    print(f"drained {len(rows):,} entries ({len(sale_rows):,} sales, {len(line_rows):,} lines) in {drain_s:.1f} s "
          f"({rate:,.0f}/s); COPY {floor:,.0f}/s; "
          + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
    print(json.dumps({"bench": "sync_drain", "entries": len(rows), "sales": len(sale_rows), "lines": len(line_rows),
                      "entries_per_s": round(rate),
                      "floor_entries_per_s": round(floor), "ratio": round(rate / floor, 3),
                      "budget_entries_per_s": 5000, "budget_ratio": 0.25}))


if __name__ == "__main__":
    main()
