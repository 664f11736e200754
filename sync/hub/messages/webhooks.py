"""The hub's routes for messages.

- `GET|POST /v1/messages/{gateway}/reports`: a gateway's delivery reports.
- `GET|POST /v1/messages/{gateway}/inbound`: members' replies (an opt-out word, a code).
  Both authenticated by the gateway's own secret token (`webhook_token`), in the
  query (`?token=`, for providers that can only be given a URL) or in the
  X-Webhook-Token header; a gateway without a token has no webhooks (404).
- `POST /v1/verifications` and `/v1/verifications/check`: a till asks for a code
  for a member's mobile and checks it; signed like /v1/sync (Hub.authenticate).
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import parse_qsl

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sync.errors import HubRefused
from sync.hub.messages.messaging import Messaging

WEBHOOK_BYTES_MAX = 64 * 1024
VERIFY_BYTES_MAX = 4 * 1024
TOKEN_HEADER = "x-webhook-token"


async def _fields(request: Request, body: bytes) -> dict[str, Any]:
    """The webhook's fields: its query, and its body as JSON or as a form."""
    data: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != "token"}
    if not body:
        return data
    if body.lstrip()[:1] in (b"{", b"["):
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):  # (UnicodeDecodeError is a ValueError)
            raise HubRefused("the body is not JSON", 400, "invalid_json") from None
        if isinstance(parsed, list):  # a batch of reports: the first object's fields (providers send one)
            parsed = parsed[0] if parsed and isinstance(parsed[0], dict) else {}
        if not isinstance(parsed, dict):
            raise HubRefused("the body must be a JSON object", 400, "invalid_json")
        return data | parsed
    try:
        return data | dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise HubRefused("the body is not UTF-8", 400, "invalid_input") from None


def _check_token(messaging: Messaging, gateway: str, request: Request) -> None:
    cfg = messaging.cfg.gateways.get(gateway)
    expected = cfg.secret("webhook_token") if cfg is not None else ""
    if not expected:
        raise HubRefused(f"no webhooks for gateway {gateway!r}", 404, "no_webhook")
    given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HubRefused("the webhook token is wrong", 401, "bad_token")


def add_message_routes(app: FastAPI, hub: Any, messaging: Messaging) -> None:
    from sync.hub.app import read_body  # (app.py imports this module)
    from sync.hub.service import parse_body

    async def reports(gateway: str, request: Request) -> JSONResponse:
        _check_token(messaging, gateway, request)
        data = await _fields(request, await read_body(request, WEBHOOK_BYTES_MAX))
        applied = await anyio.to_thread.run_sync(messaging.take_reports, gateway, data)
        return JSONResponse({"ok": True, "applied": applied})

    async def inbound(gateway: str, request: Request) -> JSONResponse:
        _check_token(messaging, gateway, request)
        data = await _fields(request, await read_body(request, WEBHOOK_BYTES_MAX))
        return JSONResponse({"ok": True, **await anyio.to_thread.run_sync(messaging.take_inbound, gateway, data)})

    for method in ("GET", "POST"):  # providers call with either
        app.add_api_route("/v1/messages/{gateway}/reports", reports, methods=[method], tags=["messages"],
                          operation_id=f"message_reports_{method.lower()}")
        app.add_api_route("/v1/messages/{gateway}/inbound", inbound, methods=[method], tags=["messages"],
                          operation_id=f"message_inbound_{method.lower()}")

    async def _signed(request: Request) -> tuple[str, dict[str, Any]]:
        headers = {k.lower(): v for k, v in request.headers.items()}
        hub.require_signature_headers(headers)
        body = await read_body(request, VERIFY_BYTES_MAX)
        terminal = await anyio.to_thread.run_sync(hub.authenticate, headers, "POST", request.url.path, body)
        return terminal, parse_body(body, strict=True)

    @app.post("/v1/verifications", tags=["messages"])
    async def verification_start(request: Request) -> JSONResponse:
        terminal, data = await _signed(request)
        return JSONResponse(await anyio.to_thread.run_sync(messaging.verifications.request, terminal, data))

    @app.post("/v1/verifications/check", tags=["messages"])
    async def verification_check(request: Request) -> JSONResponse:
        _, data = await _signed(request)
        return JSONResponse(await anyio.to_thread.run_sync(messaging.verifications.check, data))
