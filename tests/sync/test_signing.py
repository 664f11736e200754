"""Request signatures: pure checks."""

from __future__ import annotations

from sync import signing

SECRET = "s3cret-s3cret-s3cret"


def test_a_signed_request_checks_and_any_change_breaks_it() -> None:
    h = signing.signed_headers("T1", SECRET, "POST", "/v1/sync", b'{"a":1}', now=1_000_000)
    args = (h["X-Timestamp"], h["X-Nonce"])
    assert signing.check(SECRET, "POST", "/v1/sync", *args, b'{"a":1}', h["X-Signature"], 1_000_010) is None
    assert "signature is wrong" in signing.check(SECRET, "POST", "/v1/sync", *args, b'{"a":2}',
                                                 h["X-Signature"], 1_000_010)
    assert "signature is wrong" in signing.check(SECRET, "POST", "/v1/other", *args, b'{"a":1}',
                                                 h["X-Signature"], 1_000_010)
    assert "signature is wrong" in signing.check("other-secret", "POST", "/v1/sync", *args, b'{"a":1}',
                                                 h["X-Signature"], 1_000_010)
    assert "timestamp" in signing.check(SECRET, "POST", "/v1/sync", *args, b'{"a":1}', h["X-Signature"],
                                        1_000_000 + signing.SKEW_MAX_S + 1)
    assert "not a number" in signing.check(SECRET, "POST", "/v1/sync", "soon", h["X-Nonce"], b"", "x", 0)
    assert "nonce" in signing.check(SECRET, "POST", "/v1/sync", h["X-Timestamp"], "short", b"", "x", 1_000_000)
