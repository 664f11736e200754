"""Benchmark: one sale committed in process (SQLite, WAL, synchronous=FULL).

Floor: raw sqlite3 doing the same durable work per sale in one transaction (the
sale row, its line, two entries, two outbox rows, a balance and terminal update),
with the same pragmas. The two run interleaved, a floor sale then a ledger sale, so
both meet the same disk: on a machine shared with other work an fsync swings between
0.2 and 15 ms from minute to minute, and a floor measured before the ledger compared
two different disks. --no-fsync runs both with synchronous=OFF: the work of a sale
without the disk's wait, to see the code's share where the fsync is slow. Last
line: one JSON object.
usage: python bench/ledger_post.py [--sales N] [--no-fsync]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event  # noqa: E402

from ledger.errors import DatabaseError  # noqa: E402
from ledger.sales import post_sale  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from ledger.types import SaleLine, SaleRequest  # noqa: E402
from terminal_agent.daemon import CHECKPOINT_INTERVAL_S  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_ledger(folder: Path, n: int, synchronous: str = "FULL") -> Iterator[float]:
    led = Ledger.open(folder / "ledger.sqlite3", store="S", terminal="T")
    if synchronous != "FULL":  # pooled connections are made again with the bench's setting
        led.engine.dispose()
        event.listen(led.engine, "connect", lambda dbapi, _r: dbapi.execute(f"PRAGMA synchronous = {synchronous}"))
    cards = []
    for i in range(20):
        m = led.enrol_member(name=f"m{i}", mobile=f"0912{i:07d}", actor="bench")
        cards.append(led.issue_card(member_id=m.id, number=f"6395{i:012d}", technology="magstripe",
                                    actor="bench").number)
    line = (SaleLine(sku="A", name="Rice", category="grocery", quantity=2, unit_price=1_250_000),)
    # as in the daemon: WAL checkpoints run beside the till, not inside its commits
    stop = threading.Event()

    def checkpoints() -> None:
        while not stop.wait(CHECKPOINT_INTERVAL_S):
            try:
                led.checkpoint()
            except DatabaseError:  # busy this round; the daemon logs it and tries again
                pass

    worker = threading.Thread(target=checkpoints, daemon=True)
    worker.start()
    try:
        for i in range(n):
            req = SaleRequest(idempotency_key=f"k{i}", card_number=cards[i % 20], receipt_ref=f"r{i}", lines=line)
            t0 = time.perf_counter()
            post_sale(led, req)
            yield (time.perf_counter() - t0) * 1000
    finally:
        stop.set()
        worker.join()
        led.close()


def run_floor(folder: Path, n: int, synchronous: str = "FULL") -> Iterator[float]:
    con = sqlite3.connect(folder / "floor.sqlite3", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.executescript("""
        CREATE TABLE sales (id TEXT PRIMARY KEY, key TEXT UNIQUE, amount INTEGER, result TEXT);
        CREATE TABLE lines (sale_id TEXT, no INTEGER, sku TEXT, qty INTEGER, price INTEGER);
        CREATE TABLE entries (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, member TEXT, points INTEGER, hash TEXT);
        CREATE TABLE outbox (id INTEGER PRIMARY KEY, entry_id TEXT);
        CREATE TABLE balances (member TEXT PRIMARY KEY, points INTEGER);
        CREATE TABLE terminals (code TEXT PRIMARY KEY, seq INTEGER);
        INSERT INTO terminals VALUES ('T', 1);
    """)
    for i in range(20):
        con.execute("INSERT INTO balances VALUES (?, 0)", (f"m{i}",))
    for i in range(n):
        t0 = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.execute("SELECT result FROM sales WHERE key = ?", (f"k{i}",)).fetchone()
        seq = con.execute("SELECT seq FROM terminals WHERE code = 'T'").fetchone()[0]
        sid = str(uuid.uuid4())
        con.execute("INSERT INTO sales VALUES (?, ?, ?, ?)", (sid, f"k{i}", 2_500_000, "{}"))
        con.execute("INSERT INTO lines VALUES (?, 1, 'A', 2, 1250000)", (sid,))
        for k in range(2):
            eid = str(uuid.uuid4())
            con.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", (eid, seq + k, f"m{i % 20}", 250, "h" * 64))
            con.execute("INSERT INTO outbox (entry_id) VALUES (?)", (eid,))
        con.execute("UPDATE balances SET points = points + 250 WHERE member = ?", (f"m{i % 20}",))
        con.execute("UPDATE terminals SET seq = ? WHERE code = 'T'", (seq + 2,))
        con.execute("COMMIT")
        yield (time.perf_counter() - t0) * 1000
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=2000)
    parser.add_argument("--no-fsync", action="store_true", help="synchronous=OFF for both (not the product's setting)")
    args = parser.parse_args()
    synchronous = "OFF" if args.no_fsync else "FULL"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor, ours = [], []
        for f, o in zip(run_floor(folder, args.sales, synchronous), run_ledger(folder, args.sales, synchronous)):
            floor.append(f)
            ours.append(o)
    ops = 1000 / statistics.mean(ours)
    floor_ops = 1000 / statistics.mean(floor)
    print(f"ledger: {ops:.0f} sales/s, floor raw sqlite3: {floor_ops:.0f} sales/s", file=sys.stderr)
    print(json.dumps({"bench": "ledger_post", "ops_per_s": round(ops), "p50_ms": round(pct(ours, 0.5), 3),
                      "p99_ms": round(pct(ours, 0.99), 3), "floor_ops_per_s": round(floor_ops),
                      "floor_p99_ms": round(pct(floor, 0.99), 3), "ratio": round(ops / floor_ops, 3),
                      "synchronous": synchronous}))


if __name__ == "__main__":
    main()
