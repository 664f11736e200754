"""The ASGI guard in front of the API: the token and the body's size are checked from
the request head, before any byte of the body is read or parsed.

A request without the POS token is refused at once (and audited, within a bound);
a body whose declared Content-Length is over API_BODY_BYTES_MAX is refused with 413
without reading it; a chunked body is counted as it arrives and refused with 413 at
the limit. Refusals close the connection, so an unread body is never parsed as the
next request.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminal_agent.api.auth import audit_refusal, token_problem
from terminal_agent.api.problems import problem_at

# The largest valid sale (500 lines, every text at its longest, non-ASCII escaped as
# \uXXXX) is about 1.1 MB: twice that leaves room and still bounds what is buffered.
API_BODY_BYTES_MAX = 2 * 1024 * 1024


class Guard:
    def __init__(self, app: ASGIApp, *, runtime: object, open_paths: Iterable[str],
                 body_bytes_max: int = API_BODY_BYTES_MAX) -> None:
        self.app = app
        self.runtime = runtime
        self.open_paths = frozenset(open_paths)
        self.body_bytes_max = body_bytes_max

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            # a repeated Content-Length or Authorization is refused below, not merged
            headers[name] = value if name not in headers else b"\x00repeated"
        path: str = scope["path"]
        if path not in self.open_paths:
            raw = headers.get(b"authorization")
            refusal = token_problem(None if raw is None else raw.decode("latin-1"), self.runtime.token)  # type: ignore[attr-defined]
            if refusal is not None:
                action = "api.no_token" if refusal.code == "missing_token" else "api.bad_token"
                await run_in_threadpool(audit_refusal, self.runtime.ledger, scope["method"], path,  # type: ignore[attr-defined]
                                        "anonymous", action, refusal.detail)
                await self._refuse(scope, receive, send, refusal.status, refusal.code, refusal.detail,
                                   refusal.headers)
                return
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await self._refuse(scope, receive, send, 400, "bad_content_length",
                                   "Content-Length must be one whole number of bytes")
                return
            if int(length) > self.body_bytes_max:
                await self._too_large(scope, receive, send)
                return
        elif b"transfer-encoding" in headers:
            body = await self._read_counted(receive)
            if body is None:
                await self._too_large(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_counted(self, receive: Receive) -> bytes | None:
        """The whole chunked body, or None as soon as it passes the limit."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b""  # the client left; the app will see the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_bytes_max:
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._refuse(scope, receive, send, 413, "body_too_large",
                           f"the request body is over {self.body_bytes_max} bytes")

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str,
                      headers: dict[str, str] | None = None) -> None:
        response = problem_at(status, code, detail, scope["path"], {**(headers or {}), "Connection": "close"})
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # afterwards: the disconnect, for streaming answers

    return replay
