"""The one text form of a time in the ledger: UTC, microseconds, a `Z`.

It is hashed into the entry chain and compared across SQLite and PostgreSQL, so
it must never change.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

UTC_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# The stores' local time for what people read (receipts, reports): Iran, UTC+3:30,
# with no daylight saving since 2022. (The loyalty table's own days follow its
# programme.utc_offset_minutes.)
IRAN_OFFSET = timedelta(minutes=210)


def format_utc(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    if value.year >= 1000:
        # the same text as strftime(UTC_FORMAT) (isoformat's first 26 characters are
        # YYYY-MM-DDTHH:MM:SS.ffffff for a four-digit year) at a fifth of its cost: a
        # sale formats its time several times. Earlier years keep strftime's own form.
        return value.isoformat(timespec="microseconds")[:26] + "Z"
    return value.strftime(UTC_FORMAT)


def parse_utc(value: str) -> datetime:
    # fromisoformat reads the 'Z' form since Python 3.11 and is ~20x faster than strptime,
    # which matters: member snapshots parse visit times on every sale.
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or len(value) != 27 or not value.endswith("Z"):
        raise ValueError(f"not a ledger time (expected YYYY-MM-DDTHH:MM:SS.ffffffZ): {value!r}")
    return parsed
