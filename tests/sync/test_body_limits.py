"""A batch larger than what the hub, or a proxy before it, takes in one body: the
terminal sends it again in smaller batches instead of being refused (413) at every
sync for ever. nginx refuses bodies over 1 MB unless told otherwise, and a hypermarket's
offline backlog of 500-line baskets passes even the hub's own 32 MB."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ledger.db import Raw
from ledger.sales import post_sale
from ledger.verify import verify
from sync.errors import HubRefused
from sync.hub.schema import sale_lines, sales
from sync.hub.service import Hub
from tests.attacks.forge import Till
from tests.conftest import sale


class BodyLimit(httpx.BaseTransport):
    """A proxy before the hub with nginx's habit: a body over `limit` bytes is answered
    413 with an HTML page and never reaches the hub."""

    def __init__(self, inner: httpx.BaseTransport, limit: int) -> None:
        self.inner, self.limit = inner, limit
        self.refused = 0
        self.passed: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        size = len(request.read())
        if size > self.limit:
            self.refused += 1
            return httpx.Response(413, html="<html><body><h1>413 Request Entity Too Large</h1></body></html>")
        self.passed.append(size)
        return self.inner.handle_request(request)


@pytest.fixture
def till(hub: Hub, hub_http: TestClient, tmp_path: Path):  # type: ignore[no-untyped-def]
    t = Till(tmp_path, hub, hub_http, "T1", "S1")
    member = t.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    t.ledger.issue_card(member_id=member.id, number="6395000000000001", technology="magstripe", actor="mgr")
    yield t
    t.close()


def _big_sales(till: Till, count: int, lines: int = 40, key: str = "k") -> set[str]:
    return {post_sale(till.ledger, sale(f"{key}{i}", "6395000000000001", *([150_000] * lines))).sale_id
            for i in range(count)}


def _through(till: Till, hub_http: TestClient, limit: int) -> BodyLimit:
    proxy = BodyLimit(hub_http._transport, limit)
    till.client.http = httpx.Client(base_url=till.client.creds.hub_url, transport=proxy)
    return proxy


def _hub_sales(hub: Hub) -> tuple[int, int, int]:
    with hub.engine.connect() as conn:
        return (conn.execute(select(func.count()).select_from(sales)).scalar_one(),
                conn.execute(select(func.count(func.distinct(sales.c.id)))).scalar_one(),
                conn.execute(select(func.count()).select_from(sale_lines)).scalar_one())


def test_a_backlog_larger_than_the_body_limit_goes_up_in_smaller_batches(
        hub: Hub, hub_http: TestClient, till: Till) -> None:
    sold = _big_sales(till, 60)
    proxy = _through(till, hub_http, 64 * 1024)
    report = till.client.sync_once()  # the whole backlog is one batch of 500 rows: far over 64 KB
    assert proxy.refused >= 1 and max(proxy.passed) <= 64 * 1024
    assert report.sent > 0 and till.client.status()["last_error"] is None
    with till.ledger.read() as conn:
        assert Raw(conn).scalar("SELECT count(*) FROM outbox") == 0
    assert _hub_sales(hub) == (60, 60, 60 * 40)
    with hub.engine.connect() as conn:
        assert set(conn.execute(select(sales.c.id)).scalars()) == sold
    assert verify(till.ledger.engine).ok
    refused = proxy.refused
    _big_sales(till, 3, key="later")
    till.client.sync_once()  # the smaller batches are remembered: no new refusal
    assert proxy.refused == refused and _hub_sales(hub) == (63, 63, 63 * 40)


def test_one_row_past_the_limit_is_refused_clearly_and_lost_nowhere(
        hub: Hub, hub_http: TestClient, till: Till) -> None:
    sold = _big_sales(till, 2, lines=200)
    proxy = _through(till, hub_http, 16 * 1024)  # less than one 200-line sale
    with pytest.raises(HubRefused) as refused:
        till.client.sync_once()
    assert refused.value.status == 413 and "even one outbox row" in str(refused.value)
    assert "even one outbox row" in till.client.status()["last_error"]
    with pytest.raises(HubRefused):
        till.client.sync_once()  # still refused, still kept
    proxy.limit = 32 * 1024 * 1024  # the proxy's limit raised
    till.client.sync_once()
    assert _hub_sales(hub)[:2] == (2, 2)
    with hub.engine.connect() as conn:
        assert set(conn.execute(select(sales.c.id)).scalars()) == sold
    with till.ledger.read() as conn:
        assert Raw(conn).scalar("SELECT count(*) FROM outbox") == 0
