"""The hub's HTTP API: enrolment, signed sync, health and Prometheus metrics; messages' webhooks and
verification codes (sync/hub/messages/webhooks.py)."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ledger.rules.errors import RulesError
from sync.errors import HubRefused
from sync.hub.config import HubConfig
from sync.hub.service import Hub, dump_answer, parse_body

log = logging.getLogger("sync.hub")
LOOKUP_BYTES_MAX = 4 * 1024  # a card number or a mobile
REQUEST_BYTES_MAX = 32 * 1024 * 1024  # bytes of a sync body; a batch of 5,000 entries is about 3 MB
ENROLL_BYTES_MAX = 4 * 1024  # bytes of an enrolment body: a code and a terminal id


HUB_TIME_HEADER = "X-Hub-Time"


def hub_time_text(clock: Any = time.time) -> str:
    """The hub's clock for the X-Hub-Time header: unix seconds with 3 decimals."""
    return f"{clock():.3f}"


class HubTimeHeader:
    """Every answer carries the hub's clock (X-Hub-Time), whatever the route and the
    status, so a terminal whose clock is wrong can see by how much and sign with the
    hub's time. Pure ASGI: it stamps the response's start message. (A 500 is sent by
    Starlette outside every middleware; its handler below stamps it itself.)"""

    def __init__(self, app: Any, clock: Any = time.time) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-hub-time"]
                message = {**message, "headers": headers + [(b"x-hub-time", hub_time_text(self.clock).encode())]}
            await send(message)

        await self.app(scope, receive, stamped)


def _problem(status: int, code: str, detail: str, fields: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"type": f"urn:loyalty-hub:{code}", "title": code.replace("_", " "), "status": status,
                         "code": code, "detail": detail, **(fields or {})}, status_code=status,
                        media_type="application/problem+json", headers={HUB_TIME_HEADER: hub_time_text()})


def _too_large(limit: int) -> HubRefused:
    return HubRefused(f"the request is larger than {limit} bytes; send less at a time", 413, "too_large")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read chunk by chunk and refused (413) as soon as it passes `limit`
    bytes: a declared length is checked before anything is read, and a chunked body
    without one is never held past the limit (Starlette's request.body() reads all)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(limit)
    return bytes(body)


def create_hub_app(hub: Hub, config: HubConfig | None = None) -> FastAPI:
    """config: the hub's (messages, gateways' webhook tokens); None: the embedded defaults."""
    from sync.hub.messages.messaging import Messaging
    from sync.hub.messages.webhooks import add_message_routes

    config = config or HubConfig()
    hub.message_events = config.messages.enabled
    hub.card_stock_required = config.cards.stock_required
    app = FastAPI(title="Loyalty hub", openapi_url="/v1/openapi.json", docs_url=None, redoc_url=None)

    @app.exception_handler(HubRefused)
    async def refused(request: Request, exc: HubRefused) -> JSONResponse:
        status = exc.status or 400
        if status in (401, 403):
            log.warning("refused %s from %s: %s", request.url.path, request.client.host if request.client else "?",
                        exc)
        return _problem(status, exc.problem or "refused", str(exc), exc.fields)

    @app.exception_handler(RulesError)
    async def bad_rules(request: Request, exc: RulesError) -> JSONResponse:
        return _problem(422, exc.code, str(exc))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:  # a bug: a problem body, and the clock
        log.error("%s failed: %s: %s", request.url.path, type(exc).__name__, str(exc)[:200])
        return _problem(500, "internal_error", "the hub failed to answer this request; it is logged")

    app.add_middleware(HubTimeHeader, clock=hub.auth_clock)

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/v1/enroll")
    async def enroll(request: Request) -> JSONResponse:
        data = parse_body(await read_body(request, ENROLL_BYTES_MAX))
        code, terminal = data.get("code", ""), data.get("terminal", "")
        if type(code) is not str or type(terminal) is not str:  # (str() of a deep list recurses)
            raise HubRefused("code and terminal must be text", 400, "invalid_input")
        store, secret = hub.enroll(code, terminal)
        return JSONResponse({"terminal": data.get("terminal"), "store": store, "secret": secret})

    @app.post("/v1/sync")
    async def sync_(request: Request) -> JSONResponse:
        # who sent it first: nothing of an unsigned or forged body is parsed, and an
        # unsigned one is not even read
        headers = {k.lower(): v for k, v in request.headers.items()}
        hub.require_signature_headers(headers)
        body = await read_body(request, REQUEST_BYTES_MAX)
        terminal = await anyio.to_thread.run_sync(hub.authenticate, headers, "POST", request.url.path, body)

        def answer() -> bytes:  # parsing, checking and writing a 3 MB batch: off the event loop
            return dump_answer(hub.sync_body(terminal, body))

        return Response(await anyio.to_thread.run_sync(answer), media_type="application/json")

    @app.post("/v1/lookup")
    async def lookup(request: Request) -> JSONResponse:
        """A card or mobile a terminal does not hold: the member, their cards and sums,
        and from now on the member is in the terminal's store's scope."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        hub.require_signature_headers(headers)
        body = await read_body(request, LOOKUP_BYTES_MAX)
        terminal = await anyio.to_thread.run_sync(hub.authenticate, headers, "POST", request.url.path, body)
        data = parse_body(body)
        query, member_id = data.get("q"), data.get("member_id")
        if not ((type(query) is str and member_id is None) or (query is None and type(member_id) is str)):
            raise HubRefused("send q (a card number or a mobile number) or member_id, as text", 400, "invalid_input")
        return JSONResponse(await anyio.to_thread.run_sync(hub.lookup, terminal, query or "", member_id))

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        m = hub.metrics
        lines = [
            "# HELP loyalty_hub_entries_ingested_total Entries stored (resends not counted).",
            "# TYPE loyalty_hub_entries_ingested_total counter",
            f"loyalty_hub_entries_ingested_total {m.ingested}",
            "# HELP loyalty_hub_batches_total Sync requests answered.",
            "# TYPE loyalty_hub_batches_total counter",
            f"loyalty_hub_batches_total {m.batches}",
            "# HELP loyalty_hub_adjustments_held_total Manual adjustments held above a terminal's daily limit.",
            "# TYPE loyalty_hub_adjustments_held_total counter",
            f"loyalty_hub_adjustments_held_total {m.held}",
            "# HELP loyalty_hub_refused_requests_total Requests refused, by reason.",
            "# TYPE loyalty_hub_refused_requests_total counter",
        ]
        for reason, count in sorted(m.refused.items()):
            lines.append(f'loyalty_hub_refused_requests_total{{reason="{reason}"}} {count}')
        lines += ["# HELP loyalty_hub_terminal_lag_seconds Seconds since each terminal last synced.",
                  "# TYPE loyalty_hub_terminal_lag_seconds gauge"]
        for terminal, lag in sorted(hub.terminal_lag().items()):
            lines.append(f'loyalty_hub_terminal_lag_seconds{{terminal="{terminal}"}} {lag:.3f}')
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    add_message_routes(app, hub, Messaging(hub.engine, config, hub.clock))
    return app
