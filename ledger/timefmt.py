"""The one text form of a time in the ledger: UTC, microseconds, a `Z`.

It is hashed into the entry chain and compared across SQLite and PostgreSQL, so
it must never change.
"""

from __future__ import annotations

from datetime import datetime, timezone

UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return value.astimezone(timezone.utc).strftime(UTC_FORMAT)


def parse_utc(value: str) -> datetime:
    return datetime.strptime(value, UTC_FORMAT).replace(tzinfo=timezone.utc)
