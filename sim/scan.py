"""Looking for payment-card numbers at rest: every text value of every table of a
SQLite file or of the hub's PostgreSQL schema, searched for 13-19 digit runs that
stand alone (not inside a hex digest or an id) and that ledger.cardpolicy calls a
payment card (Luhn-valid, a payment network's prefix)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledger.cardpolicy import payment_network

DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9]{13,19}(?![0-9A-Za-z])")


def payment_numbers(text: str) -> list[str]:
    return [m for m in DIGIT_RUN.findall(text) if payment_network(m)]


def scan_sqlite(path: Path) -> Iterator[tuple[str, str, str]]:
    """(table, column, number) for each payment number in the file."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cur = con.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cur.description]
            for row in cur:
                for name, value in zip(names, row):
                    if isinstance(value, str) and len(value) >= 13:
                        for number in payment_numbers(value):
                            yield table, name, number
    finally:
        con.close()


def scan_engine(engine: Any) -> Iterator[tuple[str, str, str]]:
    """The same over a SQLAlchemy engine (the hub's PostgreSQL schema, or its SQLite file)."""
    from sqlalchemy import inspect, text

    tables = inspect(engine).get_table_names()  # before the read below: on SQLite each is a write lock
    with engine.connect() as conn:
        for table in tables:
            result = conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for name, value in zip(columns, row):
                    if isinstance(value, str) and len(value) >= 13:
                        for number in payment_numbers(value):
                            yield table, name, number


def luhn_complete(body: str) -> str:
    """body + the check digit that makes it Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)
