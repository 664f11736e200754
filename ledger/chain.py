"""The hash chain over a terminal's entries (invariant 9).

Each entry's hash covers every field that carries meaning plus the previous entry's
hash, so editing, deleting or reordering any entry breaks every hash after it.
The same function runs on the terminal and on the hub.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from ledger.timefmt import format_utc

GENESIS_HASH = ""

# The order is part of the format: changing it breaks every stored chain.
HASHED_FIELDS = (
    "id",
    "terminal_code",
    "seq",
    "member_id",
    "card_number",
    "gift_card_number",
    "kind",
    "points",
    "amount",
    "sale_id",
    "receipt_ref",
    "rule_id",
    "reason",
    "actor",
    "ruleset_hash",
    "created_at",
    "prev_hash",
)


def _canonical(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None:  # nearly every field: the fast path
        return value
    if isinstance(value, datetime):
        return format_utc(value)
    if isinstance(value, bool) or isinstance(value, float):
        # A float (or a bool posing as an int) has no place in the ledger.
        raise TypeError(f"entry field of type {type(value).__name__} cannot be hashed")
    return value


def entry_hash(entry: Mapping[str, Any]) -> str:
    payload = [_canonical(entry.get(name)) for name in HASHED_FIELDS]
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_of_values(values: tuple[Any, ...]) -> str:
    """entry_hash of an entry given as its HASHED_FIELDS values in order, each text, a
    whole number (not a bool) or None, the time already in its text form: what the
    till writes. orjson writes that list byte for byte as entry_hash's json.dumps does
    (tests/ledger/test_chain_fast.py; the hub checks every entry the same way), in a
    fraction of the time; what it will not write (a lone surrogate, an integer beyond
    64 bits) goes to entry_hash, which decides as before."""
    try:
        return hashlib.sha256(orjson.dumps(values)).hexdigest()
    except TypeError:
        return entry_hash(dict(zip(HASHED_FIELDS, values)))


def request_hash(body: Any) -> str:
    """Hash of a request body for idempotency: key order and spacing do not matter."""
    text = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
