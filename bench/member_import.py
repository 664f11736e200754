"""Members import: 100,000 members written to an .xlsx (Persian headers, mobiles in
mixed forms, Jalali birth dates, a card and an opening balance each), checked and
imported into a fresh hub on the real PostgreSQL and on SQLite by
`sync.hub.memberimport.hubside.import_members`, as `loyalty-hub members import` does.

The floor, in the same run: reading the same file with openpyxl's read-only mode (no
checks) plus one raw executemany of the same member rows into a plain table of the
same database. Last line: one JSON object.
usage: python bench/member_import.py [--rows N] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from sync.hub.db import create_hub_engine, upgrade  # noqa: E402
from sync.hub.memberimport.hubside import import_members  # noqa: E402
from sync.hub.schema import entries, members  # noqa: E402
from sync.hub.service import Hub  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HEADER = ["نام", "موبایل", "تاریخ تولد", "شماره کارت", "سطح", "مانده امتیاز", "فروشگاه"]
TIERS = ["bronze", "نقره‌ای", "Gold"]
FA_DIGITS = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def write_file(path: Path, rows: int) -> None:
    import xlsxwriter

    # shared strings, as Excel and LibreOffice save a workbook (constant_memory would write inline strings,
    # which openpyxl reads three times slower): written in a child process, so its memory is not ours
    book = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    ws = book.add_worksheet()
    ws.write_row(0, 0, HEADER)
    for i in range(rows):
        national = f"0912{i:07d}"
        mobile = (national, f"+98 {national[1:4]} {national[4:7]} {national[7:]}", national.translate(FA_DIGITS),
                  national[1:])[i % 4]
        born = f"13{50 + i % 40}/{1 + i % 12:02d}/{1 + i % 28:02d}"
        card = "6395" + f"{i:011d}"
        ws.write_row(i + 1, 0, [f"عضو {i}", mobile, born if i % 2 else born.translate(FA_DIGITS),
                                card + luhn_digit(card), TIERS[i % 3], str(i % 5_000), "S1"])
    book.close()


def floor(path: Path, url: str) -> float:
    """Seconds to read the file raw and insert its rows with one executemany (into a
    new table each time)."""
    import openpyxl

    began = time.perf_counter()
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    it = wb.worksheets[0].iter_rows(values_only=True)
    next(it)
    rows = [(str(uuid.uuid4()), r[0], r[1], r[2], r[4], r[6]) for r in it]
    wb.close()
    engine = create_engine(url)
    with engine.begin() as conn:
        table = f"floor_{uuid.uuid4().hex[:8]}"
        conn.exec_driver_sql(f"CREATE TABLE {table} (id varchar(36) primary key, name varchar(200), "
                             "mobile varchar(20), birth_date varchar(10), tier varchar(32), store varchar(64))")
        cur = conn.connection.driver_connection.cursor()
        sql = f"INSERT INTO {table} VALUES (" + ", ".join(["%s" if "postgresql" in url else "?"] * 6) + ")"
        cur.executemany(sql, rows)
    engine.dispose()
    return time.perf_counter() - began


def pg_schema() -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with create_engine(PG).begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return f"{PG}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    with create_engine(PG).begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def run(db: str, path: Path, rows: int, folder: Path) -> dict[str, object]:
    schema = None
    if db == "postgresql":
        url, schema = pg_schema()
        floor_url, floor_schema = pg_schema()
    else:
        url, floor_url, floor_schema = f"sqlite:///{folder / 'hub.sqlite3'}", f"sqlite:///{folder / 'floor.sqlite3'}", None
    try:
        # the floor before and after the import, averaged: the machine's load drifts during a long run
        floor_before = floor(path, floor_url)
        engine = create_hub_engine(url)
        upgrade(engine)
        hub = Hub(engine)
        hub.new_enrolment_code("S1")
        began = time.perf_counter()
        dry = import_members(hub, path, by="bench", dry_run=True)
        check_s = time.perf_counter() - began
        began = time.perf_counter()
        done = import_members(hub, path, by="bench")
        import_s = time.perf_counter() - began
        assert done.members == dry.members == rows, (done.members, rows)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(members)).scalar_one() == rows
            opening = conn.execute(select(func.count()).select_from(entries)).scalar_one()
        engine.dispose()
        floor_s = (floor_before + floor(path, floor_url)) / 2
    finally:
        if schema:
            drop_schema(schema)
        if floor_schema:
            drop_schema(floor_schema)
    out = {"db": db, "rows_per_s": round(rows / import_s), "import_s": round(import_s, 2),
           "check_only_s": round(check_s, 2), "opening_entries": int(opening),
           "floor_rows_per_s": round(rows / floor_s), "floor_s": round(floor_s, 2),
           "ratio": round(floor_s / import_s, 3)}
    print(f"{db}: {rows:,} members imported in {import_s:.1f} s ({out['rows_per_s']:,}/s; checking alone "
          f"{check_s:.1f} s); floor (raw read + executemany, before and after) {floor_s:.1f} s; ratio "
          f"{out['ratio']}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "members.xlsx"
        began = time.perf_counter()
        child = multiprocessing.get_context("spawn").Process(target=write_file, args=(path, args.rows))
        child.start()
        child.join()
        print(f"wrote {args.rows:,} rows ({path.stat().st_size / 2**20:.1f} MB) in {time.perf_counter() - began:.1f} s",
              flush=True)
        results = [run(db, path, args.rows, folder) for db in (["postgresql", "sqlite"] if args.db == "both"
                                                                else [args.db])]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (the file read twice per database, held checked rows, the floor's rows)")
    print(json.dumps({"bench": "member_import", "rows": args.rows, "results": results,
                      "peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
