"""The hub on both databases: SQLite files, and the real PostgreSQL on 127.0.0.1:5432
(a fresh schema per test). Without a reachable PostgreSQL the PostgreSQL half skips,
except under CI (CI=true), where it fails: CI must test what production runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from ledger.service import Ledger
from sync.client import Credentials, SyncClient
from sync.hub.app import create_hub_app
from sync.hub.db import create_hub_engine, upgrade
from sync.hub.service import Hub
from tests.conftest import Clock

PG_URL = os.environ.get("LOYALTY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> str | None:
    try:
        with create_engine(PG_URL).connect() as conn:
            conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # any failure to connect means: no server here
        return f"PostgreSQL at {PG_URL} is not reachable: {type(exc).__name__}"


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.sqlite3'}"
        return
    yield from pg_schema_url()


def pg_schema_url() -> Iterator[str]:
    """A hub URL on the real PostgreSQL in a fresh schema, dropped afterwards (a fixture's
    body: under CI an unreachable PostgreSQL fails the test, elsewhere it skips)."""
    why = _pg_available()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; under CI the PostgreSQL tests must run")
        pytest.skip(why)
    schema = f"hub_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def hub(hub_url: str) -> Iterator[Hub]:
    engine = create_hub_engine(hub_url)
    upgrade(engine)
    yield Hub(engine)
    engine.dispose()


@pytest.fixture
def hub_http(hub: Hub) -> Iterator[TestClient]:
    with TestClient(create_hub_app(hub), base_url="http://hub.test") as client:
        yield client


class Terminal:
    """A terminal's ledger on disk and its sync client, talking to the hub app."""

    def __init__(self, folder: Path, code: str, hub: Hub, http: TestClient,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.code = code
        self.clock = Clock()
        self.ledger = Ledger.open(folder / f"{code}.sqlite3", store="S1", terminal=code, clock=self.clock)
        enrol = http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": code})
        assert enrol.status_code == 200, enrol.text
        self.creds = Credentials("http://hub.test", code, "S1", enrol.json()["secret"])
        self.client = SyncClient(self.ledger, self.creds, batch_size=50,
                                 transport=transport or http._transport)

    def close(self) -> None:
        self.client.close()
        self.ledger.close()


@pytest.fixture
def terminals(tmp_path: Path, hub: Hub, hub_http: TestClient) -> Iterator[dict[str, Terminal]]:
    made: dict[str, Terminal] = {}

    def make(code: str, transport: httpx.BaseTransport | None = None) -> Terminal:
        made[code] = Terminal(tmp_path, code, hub, hub_http, transport)
        return made[code]

    yield make  # type: ignore[misc]
    for t in made.values():
        t.close()
