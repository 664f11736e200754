"""A 1,000,000-row Excel export (the entries sheet) against raw XlsxWriter writing the
same rows from the same ledger (the floor), each in its own process so that each
one's peak resident memory is its own. Last line: one JSON object.
Budget: >= 70% of raw XlsxWriter's speed; peak RSS <= 300 MB.
usage: python bench/excel_export.py [--rows N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILL_CHUNK = 50_000
COLUMNS = "created_at, terminal_code, seq, kind, member_id, points, amount, rule_id, reason"


def fill(path: Path, n: int) -> None:
    """A ledger with n entries (written straight into the table: the export reads rows,
    it does not check the chain)."""
    from ledger.service import Ledger

    Ledger.open(path, store="S1", terminal="T1").close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    members = [str(uuid.UUID(int=i)) for i in range(1000)]
    for base in range(0, n, FILL_CHUNK):
        rows = []
        for seq in range(base + 1, min(base + FILL_CHUNK, n) + 1):
            at = (start + timedelta(seconds=seq * 7)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            rows.append((str(uuid.UUID(int=seq)), "T1", seq, members[seq % 1000], "earn", 10 + seq % 500,
                         1_000_000 + seq, "earn", None, "pos", "-" * 64, at, "0" * 64, "0" * 64))
        db.executemany("INSERT INTO entries (id, terminal_code, seq, member_id, kind, points, amount, rule_id, "
                       "reason, actor, ruleset_hash, created_at, prev_hash, hash) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.commit()
    db.close()


def floor(db_path: str, out: str) -> None:
    """Raw XlsxWriter: the same rows, as they come from SQLite, into one sheet."""
    import xlsxwriter

    book = xlsxwriter.Workbook(out, {"constant_memory": True})
    ws = book.add_worksheet("entries")
    ws.write_row(0, 0, COLUMNS.split(", "))
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    cur = db.execute(f"SELECT {COLUMNS} FROM entries ORDER BY created_at, terminal_code, seq")
    n = 0
    while chunk := cur.fetchmany(5000):
        for row in chunk:
            n += 1
            ws.write_row(n, 0, row)
    book.close()


def ours(db_path: str, out: str) -> None:
    from ledger.reports.excel import export

    export(Path(db_path), Path(out), sheets=["entries"], locale=os.environ.get("BENCH_LANG", "en"))


def child(which: str, db_path: str, out: str) -> None:
    t0 = time.perf_counter()
    {"floor": floor, "ours": ours}[which](db_path, out)
    seconds = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))


def run(which: str, db_path: Path, out: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", which, str(db_path), str(out)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "ledger.sqlite3"
        fill(db_path, args.rows)
        base = run("floor", db_path, Path(tmp) / "floor.xlsx")
        mine = run("ours", db_path, Path(tmp) / "ours.xlsx")
        size_mb = (Path(tmp) / "ours.xlsx").stat().st_size / 1e6
    rate, floor_rate = args.rows / mine["seconds"], args.rows / base["seconds"]
    print(f"export: {args.rows:,} rows in {mine['seconds']:.1f} s ({rate:,.0f}/s), peak RSS "
          f"{mine['peak_rss_mb']:.0f} MB, {size_mb:.0f} MB file; raw XlsxWriter {base['seconds']:.1f} s "
          f"({floor_rate:,.0f}/s), peak RSS {base['peak_rss_mb']:.0f} MB")
    print(json.dumps({"bench": "excel_export", "rows": args.rows, "rows_per_s": round(rate),
                      "floor_rows_per_s": round(floor_rate), "ratio": round(rate / floor_rate, 3),
                      "peak_rss_mb": round(mine["peak_rss_mb"], 1), "floor_peak_rss_mb": round(base["peak_rss_mb"], 1),
                      "budget_ratio": 0.7, "budget_peak_rss_mb": 300}))


if __name__ == "__main__":
    main()
