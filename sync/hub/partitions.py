"""PostgreSQL: the hub's sales and sale lines in one partition a month, by the sale's
time. A chain of a million sales a day writes some 365 million sales and two billion
lines a year: a report of a month reads that month's partition alone, vacuum and
index builds work a month at a time, and a month past retention goes with DROP
TABLE instead of a DELETE of tens of millions of rows. SQLite (the embedded hub)
keeps plain tables: nothing here runs there.

Each month's partition is made ahead (this month and the next MONTHS_AHEAD) by the
hub itself: at `loyalty-hub` start and, in a running hub, after the first sync of a
month, in a transaction of its own that waits at most LOCK_TIMEOUT_MS for its locks
(a long report holds the default partition) and is tried again at a later sync.
It never runs inside a sync's transaction: a sale is never kept waiting by it. A
sale whose month has no partition (a terminal's clock years off, or a hub that was
not started for months) lands in the default partition, read with the rest; when
its month's partition is made later, it moves there.

A partition's primary key must hold the partition key, so a sale is unique by (id,
created_at) in the database; the hub checks the id alone before it inserts, under
SALES_LOCK_KEY (service.Hub._take_sales), so two batches cannot both add one id."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

log = logging.getLogger("sync.hub.partitions")

PARTITIONED = ("sales", "sale_lines")
MONTHS_AHEAD = 2
LOCK_TIMEOUT_MS = 2_000
PARTITION_LOCK_KEY = 0x6C6F79616C7074  # "loyalpt": one maker of partitions at a time
SALES_LOCK_KEY = 0x6C6F79616C736C  # "loyalsl": one batch adding sales at a time (ids unique)
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_PARTITION_NAME = re.compile(r"^(sales|sale_lines)_(y\d{4}m\d{2}|default)$")


def is_partition(name: str | None) -> bool:
    """A table the partitioning made (for Alembic's comparison, which knows parents only)."""
    return bool(name and _PARTITION_NAME.match(name))


def month_of(created_at: str) -> str | None:
    """'YYYY-MM' of a stored time ('2026-12-03T09:00:00.000000Z'), None if it is none."""
    month = created_at[:7] if isinstance(created_at, str) else ""
    return month if _MONTH.match(month) else None


def months_around(now: datetime, behind: int = 0, ahead: int = MONTHS_AHEAD) -> list[str]:
    index = now.year * 12 + now.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - behind, index + ahead + 1)]


def _next(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def partition_name(table: str, month: str) -> str:
    return f"{table}_y{month[:4]}m{month[5:]}"


def partitioned(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.exec_driver_sql(
        "SELECT count(*) FROM pg_partitioned_table WHERE partrelid = to_regclass('sales')").scalar())


def months_made(conn: Connection) -> set[str]:
    """Months that have a partition of sales (sale_lines gets each one with it)."""
    names = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('sales')").scalars()
    made = set()
    for name in names:
        found = re.match(r"^sales_y(\d{4})m(\d{2})$", name)
        if found:
            made.add(f"{found[1]}-{found[2]}")
    return made


def make_months(conn: Connection, months: Iterable[str]) -> list[str]:
    """Make the partitions of `months` that are missing, in the caller's transaction,
    moving their rows out of the default partition first (PostgreSQL refuses to attach
    a range the default partition holds rows of). Returns the months made."""
    wanted = sorted({m for m in months if _MONTH.match(m)})
    if not wanted or set(wanted) <= months_made(conn):
        return []
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PARTITION_LOCK_KEY})")
    missing = [m for m in wanted if m not in months_made(conn)]  # again, under the lock
    for month in missing:
        low, high = f"{month}-01", f"{_next(month)}-01"
        for table in PARTITIONED:
            name = partition_name(table, month)
            conn.exec_driver_sql(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS)')
            conn.exec_driver_sql(
                f'WITH moved AS (DELETE FROM "{table}_default" WHERE created_at >= %(low)s AND created_at < %(high)s '
                f'RETURNING *) INSERT INTO "{name}" SELECT * FROM moved', {"low": low, "high": high})
            conn.exec_driver_sql(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" '
                                 f"FOR VALUES FROM ('{low}') TO ('{high}')")
    if missing:
        log.info("sales partitions made for %s", ", ".join(missing))
    return missing


def keep_ahead(engine: Engine, now: datetime, months: Iterable[str] = ()) -> bool:
    """Make this month's partitions and the next MONTHS_AHEAD's (and those of
    `months`, sales just stored in the default partition, within that window) in a
    transaction of its own. False when its locks were not had within LOCK_TIMEOUT_MS
    (tried again later); True when every one of them exists."""
    if engine.dialect.name != "postgresql":
        return True
    window = months_around(now, behind=1)
    wanted = set(months_around(now)) | (set(months) & set(window))
    try:
        with engine.begin() as conn:
            if not partitioned(conn):
                return True
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
            make_months(conn, wanted)
        return True
    except OperationalError as exc:  # lock_timeout: a long report holds the default partition
        log.warning("sales partitions not made this time (%s); tried again at a later sync",
                    str(exc.orig).splitlines()[0][:200])
        return False
