"""Drain pending entries from a terminal into the hub on PostgreSQL, against a raw
COPY of the same rows into the same table (the floor). Last line: one JSON object.
Budget: >= 5,000 entries/s and >= 25% of the COPY rate.
usage: python bench/sync_drain.py [--entries N] [--pg URL]
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

from ledger.service import Ledger  # noqa: E402
from ledger.writer import NewEntry, append_entries  # noqa: E402
from sync.client import Credentials, SyncClient  # noqa: E402
from sync.hub.service import ENTRY_FIELDS  # noqa: E402
from tests.e2e.agent_proc import free_port  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MEMBERS = 100
WRITE_CHUNK = 2000


def fill(led: Ledger, n: int) -> None:
    ids = [led.enrol_member(name=f"m{i}", mobile=f"0912{i:07d}", actor="bench").id for i in range(MEMBERS)]
    left = n - MEMBERS  # each enrolment wrote a sign-up bonus
    while left > 0:
        k = min(WRITE_CHUNK, left)
        with led.write("bench fill") as conn:
            append_entries(conn, led.terminal, [NewEntry(kind="adjust", points=1, amount=0, member_id=ids[i % MEMBERS],
                                                         reason="bench") for i in range(k)],
                           actor="bench", ruleset_hash="-" * 64, at=datetime.now(timezone.utc))
        left -= k


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--pg", default=PG)
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
            fill(led, args.entries)
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
            led.close()
        # the floor: COPY the same rows into an empty copy of the hub's entries table
        with psycopg.connect(args.pg.replace("postgresql+psycopg", "postgresql")) as pg:
            pg.execute(f'SET search_path = "{schema}"')
            pg.execute("CREATE TABLE floor_entries (LIKE entries INCLUDING ALL)")
            buf = io.StringIO()
            t0 = time.perf_counter()
            with pg.cursor().copy(f"COPY floor_entries ({', '.join(ENTRY_FIELDS)}) FROM STDIN") as copy:
                for row in rows:
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
    print(f"drained {len(rows):,} entries in {drain_s:.1f} s ({rate:,.0f}/s); COPY {floor:,.0f}/s; "
          + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))
    print(json.dumps({"bench": "sync_drain", "entries": len(rows), "entries_per_s": round(rate),
                      "floor_entries_per_s": round(floor), "ratio": round(rate / floor, 3),
                      "budget_entries_per_s": 5000, "budget_ratio": 0.25}))


if __name__ == "__main__":
    main()
