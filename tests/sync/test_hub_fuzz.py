"""parse_body on anything at all: a dict, or HubRefused with a 4xx status; never
another exception (a RecursionError was a 500)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.errors import HubRefused
from sync.hub.service import parse_body


def _parse(body: bytes) -> None:
    try:
        data = parse_body(body)
    except HubRefused as exc:
        assert 400 <= exc.status < 500 and exc.problem
        return
    assert isinstance(data, dict)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_a_dict_or_a_4xx(body: bytes) -> None:
    _parse(body)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                  max_size=3),
                       max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=200_000), st.sampled_from([b"[", b'{"a":', b"[{\"k\":"]),
       st.booleans(), JSONISH)
def test_deep_nesting_is_a_dict_or_a_4xx(depth: int, opener: bytes, closed: bool, leaf: Any) -> None:
    closer = {b"[": b"]", b'{"a":': b"}", b'[{"k":': b"}]"}[opener]
    body = b'{"x": ' + opener * depth + json.dumps(leaf).encode() + (closer * depth if closed else b"") + b"}"
    _parse(body)
    _parse(opener * depth + (closer * depth if closed else b""))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=64), st.integers(min_value=0, max_value=5000))
def test_junk_around_deep_nesting_is_a_dict_or_a_4xx(before: bytes, after: bytes, depth: int) -> None:
    _parse(before + b"[" * depth + after)
