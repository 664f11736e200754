"""The till's fast paths write exactly what the reference code writes: an entry's hash
from its values (orjson) and a time's text (isoformat): both are stored, hashed and
compared across the chain, so a single byte of difference would break it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.chain import HASHED_FIELDS, entry_hash, hash_of_values
from ledger.timefmt import UTC_FORMAT, format_utc

TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=80)
VALUE = st.one_of(st.none(), TEXT, st.integers(min_value=-(2**70), max_value=2**70))


def _outcome(f: Any, arg: Any) -> Any:
    try:
        return f(arg)
    except (UnicodeEncodeError, TypeError) as exc:  # lone surrogates: refused either way
        return type(exc)


@settings(max_examples=400, deadline=None)
@given(st.tuples(*(VALUE for _ in HASHED_FIELDS)))
def test_the_hash_of_values_is_the_entry_hash(values: tuple[Any, ...]) -> None:
    assert _outcome(hash_of_values, values) == _outcome(entry_hash, dict(zip(HASHED_FIELDS, values)))


def test_every_character_hashes_as_the_entry_hash_does() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    entry = {f: text for f in HASHED_FIELDS} | {"seq": 2**63 - 1, "points": -(2**63), "amount": 0}
    assert hash_of_values(tuple(entry[f] for f in HASHED_FIELDS)) == entry_hash(entry)


def test_an_integer_beyond_64_bits_hashes_as_the_entry_hash_does() -> None:
    entry = dict.fromkeys(HASHED_FIELDS, "x") | {"seq": 1, "points": 2**70, "amount": -(2**65)}
    assert hash_of_values(tuple(entry[f] for f in HASHED_FIELDS)) == entry_hash(entry)


@settings(max_examples=400, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30)),
       st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_a_time_formats_as_strftime_does(naive: datetime, offset_minutes: int) -> None:
    for tz in (timezone.utc, timezone(timedelta(minutes=offset_minutes))):
        at = naive.replace(tzinfo=tz)
        try:
            expected = at.astimezone(timezone.utc).strftime(UTC_FORMAT)
        except OverflowError:  # an offset that takes the time out of the calendar
            continue
        assert format_utc(at) == expected
