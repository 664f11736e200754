from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.service import Ledger
from ledger.users import add_user
from terminal_agent.api.app import create_app
from terminal_agent.config import parse_config
from terminal_agent.runtime import Runtime

TOKEN = "test-token-0123456789abcdef"


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
