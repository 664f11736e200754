"""Server-sent events over a real uvicorn server on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from terminal_agent.api.app import create_app
from terminal_agent.runtime import Runtime
from tests.api.conftest import TOKEN


@pytest.fixture
def server(runtime: Runtime) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(runtime), log_config=None, lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    runtime.stopping = True
    srv.should_exit = True
    thread.join(timeout=10)


def test_card_read_reaches_the_event_stream_and_last_card(server: str, runtime: Runtime) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    event = {"type": "card", "reader_id": "sim1", "technology": "magstripe", "card_number": "6395000000000101",
             "masked": "639500******0101", "read_at": "2026-03-01T09:00:00Z"}
    got: list[dict] = []
    with httpx.stream("GET", f"{server}/v1/events", headers=headers, timeout=10) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        threading.Timer(0.2, runtime.bus.publish, args=(event,)).start()
        for line in lines:
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
                break
    assert got == [event]
    last = httpx.get(f"{server}/v1/cards/last", headers=headers).json()
    assert last["card"]["masked"] == "639500******0101"


def test_event_stream_needs_the_token(server: str) -> None:
    r = httpx.get(f"{server}/v1/events", timeout=5)
    assert r.status_code == 401
