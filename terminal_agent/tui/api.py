"""The console's side of the local API: the same routes and policies the POS uses,
under the logged-in user's session. Blocking (httpx.Client): the screens call it from
thread workers, never on the event loop.

Every refusal comes back as an ApiError carrying the problem's `code` (the console
words it from its catalogue) and the agent's own detail (shown in English only). An
agent that does not answer is ApiError("unreachable"); a session the agent no longer
knows (it restarted) is ApiError("bad_session").
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

REQUEST_TIMEOUT_S = 10.0
EVENTS_READ_TIMEOUT_S = 40.0  # the agent sends a keep-alive every 15 s: silence past this is a dead stream
EVENT_LINE_BYTES_MAX = 64 * 1024  # an event is a few hundred bytes; a longer line is not ours
CONSOLE_ROLES = ("cashier", "manager", "admin")


class ApiError(Exception):
    def __init__(self, code: str, detail: str = "", status: int = 0) -> None:
        super().__init__(detail or code)
        self.code = code
        self.detail = detail
        self.status = status


def new_key() -> str:
    """An idempotency key: made once per sale or refund, sent again on every retry."""
    return str(uuid.uuid4())


class AgentApi:
    def __init__(self, base_url: str, token: str, verify: Any = True,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url
        self.session: str | None = None
        self.username: str | None = None
        self.role: str | None = None
        self._http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                  timeout=REQUEST_TIMEOUT_S, verify=verify, transport=transport)
        self._stream: httpx.Response | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.stop_events()
        self.logout()
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"X-Session": self.session} if self.session else {}
        try:
            r = self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise ApiError("unreachable", f"the agent at {self.base_url} does not answer ({type(exc).__name__})") \
                from None
        if r.status_code >= 400:
            try:
                problem = r.json()
            except ValueError:
                raise ApiError("error", f"the agent answered {r.status_code}", r.status_code) from None
            raise ApiError(str(problem.get("code", "error")), str(problem.get("detail", "")), r.status_code)
        return r.json()

    # -- sessions ---------------------------------------------------------------

    def login(self, username: str, pin: str) -> str:
        """Open a session; the role decides which screen the console shows."""
        answer = self._call("POST", "/v1/sessions", json={"username": username, "pin": pin})
        if answer["role"] not in CONSOLE_ROLES:
            raise ApiError("forbidden", f"role {answer['role']}")
        with self._lock:
            self.session, self.username, self.role = answer["session"], answer["username"], answer["role"]
        return str(answer["role"])

    def logout(self) -> None:
        if self.session:
            try:
                self._call("DELETE", "/v1/sessions")
            except ApiError:
                pass  # the agent went away: the session went with it
        self.session = None

    def health(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/health"))

    def status(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/status"))

    def tiers(self) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/tiers"))

    # -- members and cards --------------------------------------------------------

    def lookup(self, card_or_mobile: str) -> dict[str, Any]:
        return dict(self._call("GET", "/v1/members/lookup", params={"q": card_or_mobile}))

    def enrol(self, name: str, mobile: str, birth_date: str | None, referrer: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "mobile": mobile}
        if birth_date:
            body["birth_date"] = birth_date
        if referrer:
            body["referrer"] = referrer
        return dict(self._call("POST", "/v1/members", json=body))

    def issue_card(self, member_id: str, number: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/members/{member_id}/cards", json={"number": number}))

    def replace_card(self, old: str, new: str, reason: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/cards/{old}/replace", json={"new_number": new, "reason": reason}))

    def block_card(self, number: str, reason: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/cards/{number}/block", json={"reason": reason, "lost": True}))

    def adjust(self, member_id: str, points: int, reason: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/members/{member_id}/adjustments",
                               json={"points": points, "reason": reason}))

    def history(self, member_id: str, limit: int = 100) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/members/{member_id}/history", params={"limit": limit}))

    # -- the till -------------------------------------------------------------------

    def quote(self, card: str, lines: list[dict[str, Any]], redeem_points: int) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/quote", json={"card_number": card, "lines": lines,
                                                          "redeem_points": redeem_points}))

    def sale(self, key: str, card: str, receipt_ref: str, lines: list[dict[str, Any]], redeem_points: int,
             locale: str) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/sales", json={
            "idempotency_key": key, "card_number": card, "receipt_ref": receipt_ref, "lines": lines,
            "redeem_points": redeem_points, "locale": locale}))

    def slip(self, sale_id: str, locale: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/sales/{sale_id}/slip", json={"locale": locale}))

    def sales_by_receipt(self, receipt_ref: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/v1/sales/by-receipt/{receipt_ref}")["sales"])

    def refund(self, key: str, sale_id: str, lines: list[dict[str, int]] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"idempotency_key": key, "sale_id": sale_id}
        if lines is not None:
            body["lines"] = lines
        return dict(self._call("POST", "/v1/refunds", json=body))

    # -- gift cards -------------------------------------------------------------------

    def gift_balance(self, number: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/gift-cards/{number}"))

    def gift_issue(self, number: str, amount: int) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/gift-cards", json={"number": number, "amount": amount}))

    def gift_load(self, number: str, amount: int) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/gift-cards/{number}/load", json={"amount": amount}))

    def gift_spend(self, number: str, amount: int, receipt_ref: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/gift-cards/{number}/spend",
                               json={"amount": amount, "receipt_ref": receipt_ref}))

    # -- users and the audit log ----------------------------------------------------------

    def users(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v1/users")["users"])

    def add_user(self, username: str, role: str, pin: str) -> dict[str, Any]:
        return dict(self._call("POST", "/v1/users", json={"username": username, "role": role, "pin": pin}))

    def set_disabled(self, username: str, disabled: bool) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/users/{username}/{'disable' if disabled else 'enable'}"))

    def set_pin(self, username: str, pin: str) -> dict[str, Any]:
        return dict(self._call("PUT", f"/v1/users/{username}/pin", json={"pin": pin}))

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v not in (None, "")}
        return list(self._call("GET", "/v1/audit", params=params)["rows"])

    # -- events -------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """The agent's server-sent events (card reads, reader states), as they come.
        stop_events() from another thread ends the stream."""
        kind = "message"
        try:
            with self._http.stream("GET", "/v1/events",
                                   timeout=httpx.Timeout(EVENTS_READ_TIMEOUT_S, connect=5.0)) as r:
                if r.status_code != 200:
                    raise ApiError("events", f"the agent refused the event stream ({r.status_code})", r.status_code)
                self._stream = r
                for line in r.iter_lines():
                    if len(line) > EVENT_LINE_BYTES_MAX:
                        continue
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        try:
                            data = json.loads(line[5:])
                        except ValueError:
                            continue
                        if isinstance(data, dict):
                            yield {**data, "type": data.get("type", kind)}
                    elif not line:
                        kind = "message"
        except (httpx.HTTPError, httpx.StreamError, RuntimeError, AttributeError) as exc:
            raise ApiError("unreachable", f"the event stream from {self.base_url} ended ({type(exc).__name__})") \
                from None
        finally:
            self._stream = None

    def stop_events(self) -> None:
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - closing from another thread may race the reader; it ends either way
                pass
