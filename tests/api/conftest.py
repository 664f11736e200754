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
from terminal_agent.runtime import Runtime

TOKEN = "test-token-0123456789abcdef"
SERVER_START_S = 10.0


@pytest.fixture
def runtime(tmp_path: Path, ledger: Ledger) -> Runtime:
    cfg = parse_config({"agent": {"data_dir": str(tmp_path), "locale": "en"}}, "test.toml", tmp_path)
    rt = Runtime(config=cfg, ledger=ledger, token=TOKEN)
    add_user(ledger, username="mina", role="manager", pin="4321", actor="test")
    add_user(ledger, username="reza", role="cashier", pin="1111", actor="test")
    return rt


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


@pytest.fixture
def manager_headers(client: TestClient) -> dict[str, str]:
    r = client.post("/v1/sessions", json={"username": "mina", "pin": "4321"})
    assert r.status_code == 200, r.text
    return {"X-Session": r.json()["session"]}


@pytest.fixture
def agent_url(runtime: Runtime) -> Iterator[str]:
    """The app served by uvicorn on loopback in a thread: real HTTP, streaming included."""
    from tests.e2e.agent_proc import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_config=None,
                                           lifespan="off", access_log=False))
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
