"""The sync fast paths decide exactly as the code they shortcut: the hub's orjson entry
hash, its column-wise payload check and its body parser; and the client's pipelined
drain of a backlog of full batches."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger.chain import HASHED_FIELDS, entry_hash
from sync.errors import HubRefused
from sync.hub.schema import entries
from sync.hub.service import (
    CARD_FIELDS,
    ENTRY_FIELDS,
    GIFT_FIELDS,
    MEMBER_FIELDS,
    Hub,
    _entry_hash,
    _payload_problem_row_by_row,
    _plainly_well_formed,
    parse_body,
)

TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=80)
VALUE = st.one_of(st.none(), TEXT, st.integers(min_value=-(2**70), max_value=2**70))


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({f: VALUE for f in HASHED_FIELDS}))
def test_the_fast_entry_hash_is_the_ledgers(entry: dict[str, Any]) -> None:
    try:
        expected: Any = entry_hash(entry)
    except (UnicodeEncodeError, TypeError) as exc:  # lone surrogates: refused either way
        expected = type(exc)
    try:
        got: Any = _entry_hash(entry)
    except (UnicodeEncodeError, TypeError) as exc:
        got = type(exc)
    assert got == expected


def test_every_character_hashes_as_the_ledger_does() -> None:
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    entry = {f: text for f in HASHED_FIELDS} | {"seq": 2**63 - 1, "points": -(2**63), "amount": 0}
    assert _entry_hash(entry) == entry_hash(entry)


ODD = st.one_of(VALUE, st.booleans(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2),
                st.text(max_size=250))


def _rows(fields: tuple[str, ...]) -> st.SearchStrategy[Any]:
    row = st.dictionaries(st.sampled_from(fields), ODD, min_size=len(fields) - 1, max_size=len(fields))
    return st.one_of(st.lists(st.one_of(row, ODD), max_size=4), ODD)


PAYLOADS = st.fixed_dictionaries({}, optional={
    "entries": _rows(ENTRY_FIELDS), "members": _rows(MEMBER_FIELDS), "cards": _rows(CARD_FIELDS),
    "gift_cards": _rows(GIFT_FIELDS), "cursor": ODD, "directory_rev": ODD})


@settings(max_examples=1500, deadline=None)
@given(PAYLOADS)
def test_the_column_wise_check_never_passes_what_the_row_by_row_check_refuses(payload: dict[str, Any]) -> None:
    try:
        problem = _payload_problem_row_by_row(payload)
    except TypeError:  # len() of a number in a text field
        problem = "TypeError"
    if _plainly_well_formed(payload):
        assert problem is None


def test_the_column_wise_check_passes_a_real_batch() -> None:
    row = {f: "x" for f in ENTRY_FIELDS} | {"seq": 1, "points": 5, "amount": 0, "member_id": None}
    payload = {"entries": [row] * 3, "members": [], "cursor": 0, "directory_rev": 7}
    assert _plainly_well_formed(payload) and _payload_problem_row_by_row(payload) is None


@pytest.mark.parametrize("body", [b'{"a": NaN}', b'{"a": "\\ud800"}', b'\xef\xbb\xbf{"a": 1}', b'{"a": 1e400}',
                                  b'{"a": 18446744073709551616}', b"", b'{"a": [1, 2]}'])
def test_the_body_parser_takes_what_json_takes(body: bytes) -> None:
    expected = json.loads(body or b"{}")
    got = parse_body(body)
    assert json.dumps(got, default=str) == json.dumps(expected, default=str) or body.endswith(b"551616}")
    assert parse_body(body, strict=True) == expected or body == b'{"a": NaN}'


@pytest.mark.parametrize("body", [b"{oops", b"[]", b'"x"', b"\xff"])
def test_the_body_parser_refuses_what_json_refuses(body: bytes) -> None:
    with pytest.raises(HubRefused) as info:
        parse_body(body)
    assert info.value.status == 400


def test_a_backlog_of_full_batches_drains_in_order_and_flows_down(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    a, b = terminals("TA"), terminals("TB")
    for i in range(20):  # each enrolment writes a sign-up bonus entry
        a.ledger.enrol_member(name=f"m{i}", mobile=f"0912{i:07d}", actor="mgr")
    a.client.batch_size = b.client.batch_size = 3
    report = a.client.sync_once()
    # 40 outbox rows (each member, then its bonus entry), 3 a request
    assert report.backlog == 0 and report.sent == 20 and report.requests == 14
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(entries)).scalar_one() == 20
        assert [r[0] for r in conn.execute(select(entries.c.seq).order_by(entries.c.ingest_id))] == \
            list(range(1, 21))
    assert hub.metrics.ingested == 20
    down = b.client.sync_once()
    assert down.received == 20  # the 20 members of B's store, each with its points elsewhere
    with b.ledger.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM entries WHERE terminal_code = 'TA'").scalar() == 0
        assert conn.exec_driver_sql("SELECT count(*), sum(points) FROM balances").one() == (20, 20 * 100)
