"""How long the hub keeps the sales and lines the terminals sent: the back office's
detail, not the ledger. Entries (points, balances, the chain) are never removed here;
a sale's points stay whatever happens to its lines.

`loyalty-hub sales prune --before YYYY-MM` removes the sales (and refunds) made
before the first of that month, UTC, with their lines. Without `--yes` it only
counts. The month must be at least KEEP_MONTHS_MIN before this one, so a year's
report can still sit beside the year before, and a slip of the keyboard cannot
empty the back office.

On PostgreSQL with monthly partitions (migration 0011) a whole month goes by DROP
TABLE of its two partitions, in one transaction with the default partition's older
rows, waiting at most LOCK_TIMEOUT_MS for the tables (a long report or a sync's
insert holds them; try again). Elsewhere (SQLite, or PostgreSQL before 0011) rows go
in transactions of ROWS_PER_TRANSACTION sales, so a sync waits for one of them at
most; the audit row, with the counts, is written in the first. A prune cut short
(kill -9) leaves whole transactions only and is finished by running it again."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.exc import OperationalError

from sync.errors import HubError, HubRefused
from sync.hub.partitions import PARTITION_LOCK_KEY, months_around, months_made, partition_name, partitioned
from sync.hub.schema import audit, sale_lines, sales

KEEP_MONTHS_MIN = 13  # this month and the twelve before it stay, at least
ROWS_PER_TRANSACTION = 5_000
LOCK_TIMEOUT_MS = 5_000
JALALI_YEARS_BEFORE = 1700  # a year below it is a Jalali one (1404 is 2025-26): no hub holds sales that old
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
ACTION = "sales.prune"  # the audit row of a prune, its target the month: what the workbook reads


@dataclass(frozen=True)
class Prune:
    before: str  # 'YYYY-MM': what was made before its first day goes
    sales: int
    lines: int
    months: tuple[str, ...]  # whole monthly partitions among them (PostgreSQL)
    done: bool  # False: only counted


def latest_cutoff(now: datetime) -> str:
    """The latest month a prune may name at `now`."""
    return months_around(now, behind=KEEP_MONTHS_MIN - 1, ahead=0)[0]


def pruned_before(conn: Connection) -> date | None:
    """The first day whose sales the hub still holds after a prune; None: never pruned."""
    month = conn.execute(select(func.max(audit.c.target)).where(audit.c.action == ACTION)).scalar()
    return date(int(month[:4]), int(month[5:7]), 1) if month else None


def check_cutoff(before: str, now: datetime) -> str:
    found = _MONTH.match(before.strip())
    if not found or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1:
        raise HubRefused(f"--before {before!r}: give a Gregorian month as YYYY-MM, e.g. 2025-03 "
                         "(sales are kept by their UTC time)", 400, "invalid_input")
    month = f"{int(found[1]):04d}-{int(found[2]):02d}"
    if int(found[1]) < JALALI_YEARS_BEFORE:
        import jdatetime

        starts = jdatetime.date(int(found[1]), int(found[2]), 1).togregorian()
        raise HubRefused(f"--before {month} looks like a Jalali month; give the Gregorian month (Jalali {month} "
                         f"starts on {starts.isoformat()}, in {starts.strftime('%Y-%m')})", 400, "invalid_input")
    latest = latest_cutoff(now)
    if month > latest:
        raise HubRefused(f"--before {month}: the hub keeps at least {KEEP_MONTHS_MIN} months of sales "
                         f"(this month and the twelve before it); the latest month to name now is {latest}",
                         400, "retention_too_short")
    return month


def _counts(conn: Connection, cut: str) -> tuple[int, int]:
    return (int(conn.execute(select(func.count()).where(sales.c.created_at < cut)).scalar_one()),
            int(conn.execute(select(func.count()).select_from(sale_lines)
                             .where(sale_lines.c.created_at < cut)).scalar_one()))


def prune_sales(engine: Engine, before: str, now: datetime, by: str, apply: bool) -> Prune:
    """Count, and with `apply` remove, the sales and lines made before `before`."""
    from sync.hub.service import _person  # the hub's service only when a prune runs (as stock.py)

    month = check_cutoff(before, now)
    by = _person(by)
    cut = f"{month}-01"
    with engine.connect() as conn:
        whole = tuple(sorted(m for m in months_made(conn) if m < month)) if partitioned(conn) else ()
        counted, lines = _counts(conn, cut)
    result = Prune(month, counted, lines, whole, done=False)
    if not apply or not (counted or lines or whole):
        return result
    detail = {"before": month, "sales": counted, "lines": lines, "months": list(whole)}
    try:
        if whole:
            _drop_months(engine, cut, whole, now, by, detail)
        else:
            _delete_rows(engine, cut, now, by, detail)
    except OperationalError as exc:
        raise HubError(f"the sales were not pruned: {str(exc.orig).splitlines()[0][:200]}; a report or a sync "
                       "held them: run it again (what was removed stays removed)") from None
    return Prune(month, counted, lines, whole, done=True)


def _audit(conn: Connection, now: datetime, by: str, detail: dict[str, Any]) -> None:
    from sync.hub.service import record

    record(conn, now, by, ACTION, detail["before"], **detail)


def _drop_months(engine: Engine, cut: str, whole: tuple[str, ...], now: datetime, by: str,
                 detail: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PARTITION_LOCK_KEY})")  # not beside keep_ahead
        made = months_made(conn)
        for month in whole:
            if month in made:
                for table in ("sale_lines", "sales"):
                    conn.exec_driver_sql(f'DROP TABLE "{partition_name(table, month)}"')
        # what is left before the cut is in the default partition (a clock years off)
        conn.execute(delete(sale_lines).where(sale_lines.c.created_at < cut))
        conn.execute(delete(sales).where(sales.c.created_at < cut))
        _audit(conn, now, by, detail)


def _delete_rows(engine: Engine, cut: str, now: datetime, by: str, detail: dict[str, Any]) -> None:
    first = True
    while True:
        with engine.begin() as conn:
            if first:
                _audit(conn, now, by, detail)
                first = False
            ids = list(conn.execute(select(sales.c.id).where(sales.c.created_at < cut)
                                    .limit(ROWS_PER_TRANSACTION)).scalars())
            if ids:
                conn.execute(delete(sale_lines).where(sale_lines.c.sale_id.in_(ids)))
                conn.execute(delete(sales).where(sales.c.id.in_(ids)))
            else:  # lines whose sale went before them (none are written so; a hub edited by hand)
                conn.execute(delete(sale_lines).where(sale_lines.c.created_at < cut))
                return
