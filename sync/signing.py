"""Request signatures between terminal and hub: HMAC-SHA256 over the method, the
path, a timestamp, a one-time nonce and the SHA-256 of the body. Pure.

The hub refuses a timestamp more than SKEW_MAX_S away from its clock, a nonce it has
seen within that window, a wrong signature and a revoked terminal.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

SKEW_MAX_S = 300  # five minutes either way
HEADER_TERMINAL = "X-Terminal"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_NONCE = "X-Nonce"
HEADER_SIGNATURE = "X-Signature"
NONCE_BYTES = 16


def canonical(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((method.upper(), path, timestamp, nonce, digest)).encode("utf-8")


def sign(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), canonical(method, path, timestamp, nonce, body), hashlib.sha256).hexdigest()


def signed_headers(terminal: str, secret: str, method: str, path: str, body: bytes,
                   now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    nonce = secrets.token_hex(NONCE_BYTES)
    return {
        HEADER_TERMINAL: terminal,
        HEADER_TIMESTAMP: timestamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: sign(secret, method, path, timestamp, nonce, body),
    }


def check(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes, signature: str,
          now: float) -> str | None:
    """None if the request is genuine and fresh; else the reason to refuse it."""
    try:
        sent = int(timestamp)
    except ValueError:
        return "the timestamp is not a number of seconds"
    if abs(now - sent) > SKEW_MAX_S:
        return f"the timestamp is {int(now - sent)} s away from the hub's clock (at most {SKEW_MAX_S} s)"
    if not 16 <= len(nonce) <= 64:
        return "the nonce must be 16 to 64 characters"
    expected = sign(secret, method, path, timestamp, nonce, body)
    if not hmac.compare_digest(expected, signature or ""):
        return "the signature is wrong"
    return None
