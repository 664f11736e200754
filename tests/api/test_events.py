"""Server-sent events over a real uvicorn server on loopback (the agent_url fixture): card
reads reach the stream, a client that leaves frees its place with no error in the
server, and past the limit a new stream takes the oldest one's place."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import Any

import httpx
import pytest

from terminal_agent.events import SUBSCRIBERS_MAX
from terminal_agent.runtime import Runtime
from tests.api.conftest import TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}"}
WAIT_S = 10.0


def test_card_read_reaches_the_event_stream_and_last_card(agent_url: str, runtime: Runtime) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    event = {"type": "card", "reader_id": "sim1", "technology": "magstripe", "card_number": "6395000000000101",
             "masked": "639500******0101", "read_at": "2026-03-01T09:00:00Z"}
    got: list[dict] = []
    with httpx.stream("GET", f"{agent_url}/v1/events", headers=headers, timeout=10) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        threading.Timer(0.2, runtime.bus.publish, args=(event,)).start()
        for line in lines:
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
                break
    assert got == [event]
    last = httpx.get(f"{agent_url}/v1/cards/last", headers=headers).json()
    assert last["card"]["masked"] == "639500******0101"


def test_event_stream_needs_the_token(agent_url: str) -> None:
    r = httpx.get(f"{agent_url}/v1/events", timeout=5)
    assert r.status_code == 401


def until(condition: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "it did not happen"
        time.sleep(0.02)


def test_a_client_that_leaves_frees_its_stream_without_a_server_error(
        agent_url: str, runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with httpx.Client(base_url=agent_url, headers=HEADERS, timeout=5) as client:
        for _ in range(3):
            with client.stream("GET", "/v1/events") as r:
                lines = r.iter_lines()
                assert next(lines) == ": connected"
                until(lambda: runtime.bus.subscribers == 1)
                runtime.bus.publish({"type": "card", "number": "6395000000000101", "masked": "…0101"})
                assert next(lines) == ""
                assert next(lines) == "event: card"
                assert "6395000000000101" in next(lines)
            until(lambda: not runtime.bus.subscribers)  # hung up: its queue is gone
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


def test_sixteen_streams_that_never_read_cannot_keep_the_pos_from_its_events(
        agent_url: str, runtime: Runtime) -> None:
    """Past the limit a new stream takes the place of the oldest (which ends), not a 503:
    streams that connect and never read cannot hold every place."""
    with contextlib.ExitStack() as open_streams:
        hoarders = []
        for _ in range(SUBSCRIBERS_MAX):
            c = open_streams.enter_context(httpx.Client(base_url=agent_url, headers=HEADERS, timeout=5))
            r = open_streams.enter_context(c.stream("GET", "/v1/events"))
            assert r.status_code == 200
            hoarders.append(r)  # never read again
        until(lambda: runtime.bus.subscribers == SUBSCRIBERS_MAX)
        with httpx.Client(base_url=agent_url, headers=HEADERS, timeout=5) as pos, \
                pos.stream("GET", "/v1/events") as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            until(lambda: runtime.bus.replaced == 1)
            assert runtime.bus.subscribers == SUBSCRIBERS_MAX
            card = {"type": "card", "reader_id": "sim1", "card_number": "6395000000000101", "masked": "…0101"}
            runtime.bus.publish(card)
            assert [next(lines), next(lines), json.loads(next(lines)[6:])] == ["", "event: card", card]
        # the oldest stream was ended, saying why
        oldest = hoarders[0].iter_lines()
        assert next(oldest) == ": connected"
        assert "replaced by a newer stream" in "".join(oldest)


def test_a_subscriber_that_falls_behind_is_dropped_and_its_place_freed() -> None:
    import asyncio

    from terminal_agent.events import SUBSCRIBER_QUEUE_EVENTS_MAX, End, EventBus

    async def scenario() -> None:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        slow, keeping_up = bus.subscribe(), bus.subscribe()
        for i in range(SUBSCRIBER_QUEUE_EVENTS_MAX + 1):
            bus.publish({"type": "card", "n": i})
            assert (await keeping_up.next())["n"] == i  # type: ignore[index]
        assert bus.subscribers == 1 and bus.dropped_slow == 1
        backlog = [await slow.next() for _ in range(SUBSCRIBER_QUEUE_EVENTS_MAX + 1)]
        assert isinstance(backlog[-1], End) and "behind" in backlog[-1].reason

    asyncio.run(scenario())
