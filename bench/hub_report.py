"""The hub's sale-lines sheet (`loyalty-hub report export`) with N lines, against raw
XlsxWriter writing the same rows of the same query from the same SQLite hub (the
floor), each in its own process so that each one's peak resident memory is its own.
Last line: one JSON object.
Budget: >= 85% of raw XlsxWriter's speed; peak RSS <= 300 MB. Both the wall-clock ratio
and the CPU-time ratio are printed (the second holds on a machine busy with other work).
usage: python bench/hub_report.py [--rows N] [--lang en|fa] [--db HUB.sqlite3]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FILL_CHUNK = 30_000  # sales per insert batch
LINES_PER_SALE = 3
MEMBERS = 10_000
STORES = 20
FIRST_DAY = date(2026, 1, 1)
SALE_EVERY_S = 20  # seconds between two sales: a million lines cover about 80 days
SHEET_ROWS_MAX = 1_048_575  # an Excel sheet's rows below its header


def _days(n_sales: int) -> tuple[date, date]:
    return FIRST_DAY, FIRST_DAY + timedelta(seconds=n_sales * SALE_EVERY_S, days=1)


def fill(path: Path, lines: int) -> None:
    """A hub with `lines` sale lines (and their sales and earn entries), written straight
    into the tables: the report reads rows, it does not check chains."""
    from sync.hub.db import create_hub_engine, upgrade

    engine = create_hub_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous = OFF")
    stamp = "2026-01-01T00:00:00.000000Z"
    db.executemany("INSERT INTO stores (code, created_at) VALUES (?, ?)", [(f"S{i}", stamp) for i in range(STORES)])
    db.executemany("INSERT INTO terminals (id, store, secret, revoked, created_at, last_seq, last_hash, adjust_used) "
                   "VALUES (?, ?, 'x', 0, ?, 0, '', 0)", [(f"T{i}", f"S{i}", stamp) for i in range(STORES)])
    members = [str(uuid.UUID(int=i + 1)) for i in range(MEMBERS)]
    db.executemany("INSERT INTO members (id, name, mobile, tier, enrolled_at, enrolled_by, store_code, rev) "
                   "VALUES (?, ?, ?, 'bronze', ?, 'mgr', ?, ?)",
                   [(m, f"Member {i}", f"0912{i:07d}", stamp, f"S{i % STORES}", i) for i, m in enumerate(members)])
    start = datetime(2026, 1, 1, 6, 0, tzinfo=timezone.utc)
    n_sales = -(-lines // LINES_PER_SALE)
    written = 0
    for base in range(0, n_sales, FILL_CHUNK):
        sale_rows, line_rows, entry_rows = [], [], []
        for i in range(base, min(base + FILL_CHUNK, n_sales)):
            sid = str(uuid.UUID(int=(1 << 64) + i))
            at = (start + timedelta(seconds=i * SALE_EVERY_S)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            store = i % STORES
            n = min(LINES_PER_SALE, lines - written)
            written += n
            prices = [(10_000 + (i * 7 + k * 13) % 900) * 100 for k in range(n)]
            amount = sum((k + 1) * p for k, p in enumerate(prices))
            member = members[i % MEMBERS]
            sale_rows.append((sid, f"T{store}", f"S{store}", member, f"R{i}", amount, at))
            line_rows.extend((sid, k + 1, f"SKU{(i + k) % 5000}", f"Item {(i + k) % 5000}",
                              ("grocery", "dairy", "bakery", "toys", "drinks")[(i + k) % 5], k + 1, p, at)
                             for k, p in enumerate(prices))
            entry_rows.append((str(uuid.UUID(int=(2 << 64) + i)), f"T{store}", i // STORES + 1, member,
                               amount // 10_000, amount, sid, at))
        db.executemany("INSERT INTO sales (id, kind, terminal_code, store, member_id, receipt_ref, amount, "
                       "ruleset_hash, created_at, actor, result_json, received_at) "
                       "VALUES (?, 'sale', ?, ?, ?, ?, ?, '-', ?, 'pos', '{}', ?)",
                       [(*r, r[-1]) for r in sale_rows])
        db.executemany("INSERT INTO sale_lines (sale_id, line_no, sku, name, category, quantity, unit_price, "
                       "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", line_rows)
        db.executemany("INSERT INTO entries (id, terminal_code, seq, member_id, kind, points, amount, sale_id, "
                       "rule_id, actor, ruleset_hash, created_at, prev_hash, hash) "
                       "VALUES (?, ?, ?, ?, 'earn', ?, ?, ?, 'earn', 'pos', '-', ?, '-', '-')", entry_rows)
        db.commit()
    db.close()


def _filters(n_sales: int):  # type: ignore[no-untyped-def]
    from ledger.reports.days import Days
    from sync.hub.reports.queries import Filters

    return Filters(Days(*_days(n_sales)))


def floor(db_path: str, out: str, lines: int, lang: str) -> None:
    """Raw XlsxWriter: the same query's rows, as raw sqlite3 returns them, into one sheet."""
    import xlsxwriter
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    from sync.hub.reports.queries import sale_lines_sheet

    sql = str(sale_lines_sheet(_filters(-(-lines // LINES_PER_SALE))).compile(
        dialect=sqlite_dialect.dialect(), compile_kwargs={"literal_binds": True}))
    book = xlsxwriter.Workbook(out, {"constant_memory": True})
    part, on_sheet = 1, 0
    ws = book.add_worksheet("lines")
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    cur = db.execute(sql)
    while chunk := cur.fetchmany(5000):
        for row in chunk:
            # past a sheet's last row the floor goes on in the next sheet, as the report
            # does: XlsxWriter drops rows beyond it without a word, which would leave the
            # floor past a million lines writing nothing
            if on_sheet == SHEET_ROWS_MAX:
                part += 1
                ws, on_sheet = book.add_worksheet(f"lines ({part})"), 0
            on_sheet += 1
            ws.write_row(on_sheet, 0, row)
    book.close()


def ours(db_path: str, out: str, lines: int, lang: str) -> None:
    from sync.hub.db import create_hub_engine
    from sync.hub.reports.export import export

    engine = create_hub_engine(f"sqlite:///{db_path}", reader=True)
    export(engine, Path(out), _filters(-(-lines // LINES_PER_SALE)), locale=lang, sheets=["sale_lines"])


def child(which: str, db_path: str, out: str, lines: str, lang: str) -> None:
    t0 = time.perf_counter()
    {"floor": floor, "ours": ours}[which](db_path, out, int(lines), lang)
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                      "peak_rss_mb": usage.ru_maxrss / 1024}))


def run(which: str, db_path: Path, out: Path, lines: int, lang: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", which, str(db_path), str(out), str(lines), lang],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="sale lines")
    parser.add_argument("--lang", choices=["en", "fa"], default="en")
    parser.add_argument("--child", nargs=5)
    parser.add_argument("--db", type=Path, help="a hub an earlier run filled with the same --rows (filling 10 "
                        "million lines takes minutes); default: fill a new one")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db_path = args.db or Path(tmp) / "hub.sqlite3"
        t0 = time.perf_counter()
        if args.db is None:
            fill(db_path, args.rows)
        filled = time.perf_counter() - t0
        base = run("floor", db_path, Path(tmp) / "floor.xlsx", args.rows, args.lang)
        mine = run("ours", db_path, Path(tmp) / "ours.xlsx", args.rows, args.lang)
        size_mb = (Path(tmp) / "ours.xlsx").stat().st_size / 1e6
    rate, floor_rate = args.rows / mine["seconds"], args.rows / base["seconds"]
    # on a machine shared with other work the wall clock counts their time too; the
    # processes' own CPU time (each is single-threaded) does not
    cpu_ratio = base["cpu_seconds"] / mine["cpu_seconds"]
    print(f"filled in {filled:.0f} s; hub report ({args.lang}): {args.rows:,} sale lines in {mine['seconds']:.1f} s "
          f"({rate:,.0f}/s), peak RSS {mine['peak_rss_mb']:.0f} MB, {size_mb:.0f} MB file; raw XlsxWriter "
          f"{base['seconds']:.1f} s ({floor_rate:,.0f}/s), peak RSS {base['peak_rss_mb']:.0f} MB; CPU "
          f"{mine['cpu_seconds']:.1f} s against {base['cpu_seconds']:.1f} s")
    print(json.dumps({"bench": "hub_report", "rows": args.rows, "lang": args.lang, "rows_per_s": round(rate),
                      "floor_rows_per_s": round(floor_rate), "ratio": round(rate / floor_rate, 3),
                      "cpu_ratio": round(cpu_ratio, 3), "peak_rss_mb": round(mine["peak_rss_mb"], 1), "floor_peak_rss_mb": round(base["peak_rss_mb"], 1),
                      "budget_ratio": 0.85, "budget_peak_rss_mb": 300}))


if __name__ == "__main__":
    main()
