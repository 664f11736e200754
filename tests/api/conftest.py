from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from ledger.service import Ledger
from ledger.users import add_user
from terminal_agent.api.app import create_app
from terminal_agent.config import parse_config
from terminal_agent.api.server import server_config
from terminal_agent.runtime import Runtime, pin_key

TOKEN = "test-token-0123456789abcdef"
MANAGER_PIN = "654321"  # managers and admins need 6 digits
SERVER_START_S = 10.0


@pytest.fixture
def runtime(tmp_path: Path, ledger: Ledger) -> Runtime:
    cfg = parse_config({"agent": {"data_dir": str(tmp_path), "locale": "en"}}, "test.toml", tmp_path)
    rt = Runtime(config=cfg, ledger=ledger, token=TOKEN, pin_key=pin_key(cfg))
    add_user(ledger, username="mina", role="manager", pin=MANAGER_PIN, actor="test", pin_key=rt.pin_key)
    add_user(ledger, username="reza", role="cashier", pin="1111", actor="test", pin_key=rt.pin_key)
    return rt


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


@pytest.fixture
def manager_headers(client: TestClient) -> dict[str, str]:
    r = client.post("/v1/sessions", json={"username": "mina", "pin": MANAGER_PIN})
    assert r.status_code == 200, r.text
    return {"X-Session": r.json()["session"]}


@pytest.fixture
def agent_url(runtime: Runtime) -> Iterator[str]:
    """The app served by uvicorn on loopback in a thread: real HTTP, streaming included."""
    from tests.e2e.agent_proc import free_port

    port = free_port()
    server = uvicorn.Server(server_config(create_app(runtime), host="127.0.0.1", port=port))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    runtime.stopping = True
    runtime.bus.close()  # event streams end, so the server can stop
    server.should_exit = True
    thread.join(timeout=10)
