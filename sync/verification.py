"""The till's side of verification codes: ask the hub to send a code to a member's
mobile, and check the code the member reads back. Signed like /v1/sync; a short
timeout, since a person is waiting at the till.

When the hub does not answer, the answer says so (`status: offline`) and nothing
else happens here: the member stays unverified, and when verification is required
the hub sends a code itself once this terminal syncs the member (the hub's trigger
on a member's arrival); the member may reply with it or give it at the next visit.
The verified state is kept at the hub only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from sync import signing
from sync.client import Credentials

VERIFY_TIMEOUT_S = 3.0
START_PATH = "/v1/verifications"
CHECK_PATH = "/v1/verifications/check"
OFFLINE_DETAIL = ("the hub did not answer: the member stays unverified for now; the hub sends a code by itself "
                  "once this terminal has synced the member")


@dataclass(frozen=True)
class Answer:
    status: str  # sent | verified | offline | refused
    verified: bool = False
    mobile: str | None = None
    verification_id: int | None = None
    expires_at: str | None = None
    required: bool | None = None
    detail: str = ""
    http_status: int = 0  # a refusal's
    problem: str = ""  # a refusal's code: wrong_code, code_expired, too_many_attempts, too_many_codes...
    attempts_left: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("http_status",)}


def _post(creds: Credentials, path: str, payload: dict[str, Any], timeout_s: float, verify: Any,
          transport: httpx.BaseTransport | None) -> httpx.Response | None:
    """The hub's answer, signed in the hub's time if our clock was refused as stale; None if offline."""
    body = json.dumps(payload).encode()
    offset = 0.0
    with httpx.Client(base_url=creds.hub_url, timeout=timeout_s, verify=verify, transport=transport) as http:
        for _ in range(2):
            headers = signing.signed_headers(creds.terminal, creds.secret, "POST", path, body, now=time.time() + offset)
            headers["Content-Type"] = "application/json"
            try:
                r = http.post(path, content=body, headers=headers)
            except httpx.HTTPError:
                return None
            if r.status_code >= 500:
                return None
            problem = _problem(r)
            hub_now = problem.get("hub_time")
            if r.status_code == 401 and problem.get("code") == "stale" and isinstance(hub_now, (int, float)):
                offset = float(hub_now) - time.time()
                continue
            return r
    return r


def _problem(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _answer(r: httpx.Response | None, ok_status: str) -> Answer:
    if r is None:
        return Answer("offline", detail=OFFLINE_DETAIL)
    data = _problem(r)
    if r.status_code != 200:
        return Answer("refused", detail=str(data.get("detail") or r.text[:200]), http_status=r.status_code,
                      problem=str(data.get("code", "")), attempts_left=data.get("attempts_left"))
    verified = bool(data.get("verified"))
    return Answer("verified" if verified else ok_status, verified, data.get("mobile"), data.get("verification_id"),
                  data.get("expires_at"), data.get("required"))


def start(creds: Credentials, mobile: str, member_id: str | None = None, *, timeout_s: float = VERIFY_TIMEOUT_S,
          verify: Any = True, transport: httpx.BaseTransport | None = None) -> Answer:
    """Ask the hub to send a code to `mobile` (`verified` already if it was confirmed before)."""
    payload: dict[str, Any] = {"mobile": mobile}
    if member_id:
        payload["member_id"] = member_id
    return _answer(_post(creds, START_PATH, payload, timeout_s, verify, transport), "sent")


def check(creds: Credentials, mobile: str, code: str, *, timeout_s: float = VERIFY_TIMEOUT_S, verify: Any = True,
          transport: httpx.BaseTransport | None = None) -> Answer:
    """Check the code the member read back: `verified`, or refused (wrong_code with
    attempts_left, code_expired, too_many_attempts, no_code)."""
    return _answer(_post(creds, CHECK_PATH, {"mobile": mobile, "code": code}, timeout_s, verify, transport),
                   "refused")
