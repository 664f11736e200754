"""The manager console's side of the local API: the same routes the POS uses, with a
manager's session. Every refusal comes back as an ApiError carrying the problem's
code and the agent's own words, ready to show."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

REQUEST_TIMEOUT_S = 10.0
EVENT_LINE_BYTES_MAX = 64 * 1024  # an event is a few hundred bytes; a longer line is not ours


class ApiError(Exception):
    def __init__(self, code: str, detail: str, status: int = 0) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status


class AgentApi:
    def __init__(self, base_url: str, token: str, verify: Any = True,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url
        self.session: str | None = None
        self.username: str | None = None
        self._http = httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                       timeout=REQUEST_TIMEOUT_S, verify=verify, transport=transport)

    async def close(self) -> None:
        if self.session:
            try:
                await self._call("DELETE", "/v1/sessions")
            except ApiError:
                pass  # the agent went away: the session dies with it
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {"X-Session": self.session} if self.session else {}
        try:
            r = await self._http.request(method, path, headers=headers, **kw)
        except httpx.HTTPError as exc:
            raise ApiError("unreachable", f"the agent at {self.base_url} does not answer ({type(exc).__name__}); "
                           "is `loyalty-agent run` running?") from None
        if r.status_code >= 400:
            try:
                problem = r.json()
                raise ApiError(str(problem.get("code", "error")), str(problem.get("detail", r.text)), r.status_code)
            except ValueError:
                raise ApiError("error", f"the agent answered {r.status_code}", r.status_code) from None
        return r.json()

    async def login(self, username: str, pin: str) -> str:
        answer = await self._call("POST", "/v1/sessions", json={"username": username, "pin": pin})
        if answer["role"] not in ("manager", "admin"):
            self.session = answer["session"]
            try:
                await self._call("DELETE", "/v1/sessions")
            finally:
                self.session = None
            raise ApiError("forbidden", f"{answer['username']} is a {answer['role']}; the console is for managers")
        self.session, self.username = answer["session"], answer["username"]
        return str(answer["role"])

    async def lookup(self, card_or_mobile: str) -> dict[str, Any]:
        return dict(await self._call("GET", "/v1/members/lookup", params={"q": card_or_mobile}))

    async def enrol(self, name: str, mobile: str, birth_date: str | None, referrer: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "mobile": mobile}
        if birth_date:
            body["birth_date"] = birth_date
        if referrer:
            body["referrer"] = referrer
        return dict(await self._call("POST", "/v1/members", json=body))

    async def issue_card(self, member_id: str, number: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/v1/members/{member_id}/cards", json={"number": number}))

    async def replace_card(self, old: str, new: str, reason: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/v1/cards/{old}/replace", json={"new_number": new, "reason": reason}))

    async def block_card(self, number: str, reason: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/v1/cards/{number}/block", json={"reason": reason, "lost": True}))

    async def adjust(self, member_id: str, points: int, reason: str) -> dict[str, Any]:
        return dict(await self._call("POST", f"/v1/members/{member_id}/adjustments",
                                     json={"points": points, "reason": reason}))

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """The agent's server-sent events (card reads, reader states), as they come."""
        kind = "message"
        try:
            async with self._http.stream("GET", "/v1/events", timeout=httpx.Timeout(None, connect=5.0)) as r:
                if r.status_code != 200:
                    raise ApiError("events", f"the agent refused the event stream ({r.status_code})", r.status_code)
                async for line in r.aiter_lines():
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
        except httpx.HTTPError as exc:
            raise ApiError("unreachable", f"the event stream from {self.base_url} ended ({type(exc).__name__})") \
                from None
