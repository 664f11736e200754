"""An httpx transport that hands each request straight to a Hub in the calling thread:
real signing, real authentication and real database transactions, without an event
loop in between, so several terminals can sync truly at once from their own threads."""

from __future__ import annotations

import json

import httpx

from sync.errors import HubRefused
from sync.hub.service import Hub


class HubTransport(httpx.BaseTransport):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            terminal = self.hub.authenticate(headers, request.method, request.url.path, body)
            answer = self.hub.sync(terminal, json.loads(body))
        except HubRefused as exc:
            return httpx.Response(exc.status or 400, json={"code": exc.problem, "detail": str(exc)}, request=request)
        return httpx.Response(200, json=answer, request=request)
