"""A fault injector between terminal and hub, at the HTTP transport: it drops
requests, drops answers after the hub committed, delays, resets, truncates answers
and answers 500/503, at random (seeded) or on command."""

from __future__ import annotations

import random
import time

import httpx

FAULTS = ("drop_request", "drop_answer", "delay", "reset", "truncate", "error_500", "error_503")


class FaultyTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, rate: float = 0.3, seed: int = 0) -> None:
        self.inner = inner
        self.rate = rate
        self.random = random.Random(seed)
        self.next_fault: str | None = None
        self.injected: dict[str, int] = {f: 0 for f in FAULTS}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self.next_fault
        self.next_fault = None
        if fault is None and self.random.random() < self.rate:
            fault = self.random.choice(FAULTS)
        if fault is not None:
            self.injected[fault] += 1
        if fault == "drop_request":
            raise httpx.ConnectError("fault: request dropped", request=request)
        if fault == "reset":
            raise httpx.RemoteProtocolError("fault: connection reset", request=request)
        if fault in ("error_500", "error_503"):
            return httpx.Response(int(fault[-3:]), text="fault", request=request)
        if fault == "delay":
            time.sleep(0.01)
        response = self.inner.handle_request(request)
        if fault == "drop_answer":
            response.read()
            raise httpx.ReadTimeout("fault: answer lost after the hub committed", request=request)
        if fault == "truncate":
            body = response.read()
            return httpx.Response(response.status_code, content=body[: len(body) // 2], request=request)
        return response
