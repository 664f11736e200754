"""The hub's HTTP API: enrolment, signed sync, health and Prometheus metrics."""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ledger.rules.errors import RulesError
from sync.errors import HubRefused
from sync.hub.service import Hub, dump_answer, parse_body

log = logging.getLogger("sync.hub")
REQUEST_BYTES_MAX = 32 * 1024 * 1024  # a batch of 5,000 entries is about 3 MB


def _problem(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": f"urn:loyalty-hub:{code}", "title": code.replace("_", " "), "status": status,
                         "code": code, "detail": detail}, status_code=status,
                        media_type="application/problem+json")


async def _json_body(request: Request) -> tuple[bytes, dict[str, Any]]:
    body = await request.body()
    if len(body) > REQUEST_BYTES_MAX:
        raise HubRefused(f"the request is larger than {REQUEST_BYTES_MAX} bytes", 413, "too_large")
    return body, parse_body(body)


def create_hub_app(hub: Hub) -> FastAPI:
    app = FastAPI(title="Loyalty hub", openapi_url="/v1/openapi.json", docs_url=None, redoc_url=None)

    @app.exception_handler(HubRefused)
    async def refused(request: Request, exc: HubRefused) -> JSONResponse:
        status = exc.status or 400
        if status in (401, 403):
            log.warning("refused %s from %s: %s", request.url.path, request.client.host if request.client else "?",
                        exc)
        return _problem(status, exc.problem or "refused", str(exc))

    @app.exception_handler(RulesError)
    async def bad_rules(request: Request, exc: RulesError) -> JSONResponse:
        return _problem(422, exc.code, str(exc))

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/v1/enroll")
    async def enroll(request: Request) -> JSONResponse:
        _, data = await _json_body(request)
        store, secret = hub.enroll(str(data.get("code", "")), str(data.get("terminal", "")))
        return JSONResponse({"terminal": data.get("terminal"), "store": store, "secret": secret})

    @app.post("/v1/sync")
    async def sync_(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > REQUEST_BYTES_MAX:
            raise HubRefused(f"the request is larger than {REQUEST_BYTES_MAX} bytes", 413, "too_large")
        # who sent it first: nothing of an unsigned or forged body is parsed
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await request.body()
        if len(body) > REQUEST_BYTES_MAX:
            raise HubRefused(f"the request is larger than {REQUEST_BYTES_MAX} bytes", 413, "too_large")
        terminal = await anyio.to_thread.run_sync(hub.authenticate, headers, "POST", request.url.path, body)

        def answer() -> bytes:  # parsing, checking and writing a 3 MB batch: off the event loop
            return dump_answer(hub.sync_body(terminal, body))

        return Response(await anyio.to_thread.run_sync(answer), media_type="application/json")

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

    return app
