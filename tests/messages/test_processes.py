"""Real worker processes: one killed with SIGKILL while a gateway holds its send
sends nothing twice (or exactly what the documented edge allows), and two workers on
PostgreSQL share one queue without sending anything twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import select

from sync.hub.config import load_hub_config
from sync.hub.db import create_hub_engine, upgrade
from sync.hub.messages import queue
from sync.hub.messages.triggers import Planned
from sync.hub.schema import messages
from tests.messages.fakegateway import Fake

WAIT_S = 60.0


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value) + '"'


def write_config(path: Path, gateway: dict[str, Any], worker: dict[str, Any]) -> Path:
    lines = ["[messages]", 'gateway = "g"', "daily_limit = 0", 'quiet_start = "00:00"', 'quiet_end = "00:00"',
             "[worker]"] + [f"{k} = {_toml(v)}" for k, v in worker.items()] + ["[gateways.g]"] + \
            [f"{k} = {_toml(v)}" for k, v in gateway.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def queue_messages(url: str, config: Path, n: int) -> None:
    cfg = load_hub_config(config)
    engine = create_hub_engine(url)
    upgrade(engine)
    now = datetime.now(timezone.utc)
    planned = [Planned(f"campaign:1:m{i}", "campaign", "campaign", f"0912{i:07d}", now, None, f"m{i}",
                       {"name": f"m{i}"}) for i in range(n)]
    with engine.begin() as conn:
        queue.enqueue(conn, cfg, planned, now)
    engine.dispose()


def start_worker(url: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "sync.hub", "--config", str(config), "--db", url, "messages",
                                 "worker"], stdout=out, stderr=subprocess.STDOUT)


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.05)


def states(url: str) -> list[Any]:
    engine = create_hub_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(messages.c.id, messages.c.status, messages.c.attempts,
                                            messages.c.reason).order_by(messages.c.id)))
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("flavour, unknown_outcome, delivered, status", [
    ("kavenegar", "resend", 1, "sent"),  # resent with the same localid: Kavenegar drops the repeat
    ("http", "resend", 2, "sent"),  # no idempotency key: the documented edge, the member gets it twice
    ("http", "fail", 1, "failed"),  # ... or, by choice, never resent
])
def test_a_worker_killed_mid_send_sends_nothing_twice(
        hub_url: str, tmp_path: Path, fake_gateway: Callable[..., tuple[Fake, str]], flavour: str,
        unknown_outcome: str, delivered: int, status: str) -> None:
    fake, url = fake_gateway(flavour)
    fake.script = ["hold"]  # the first send is taken at once and never answered
    gateway = {"kind": "kavenegar", "api_key": "k" * 20, "url": f"{url}/v1"} if flavour == "kavenegar" else \
        {"kind": "http", "url": f"{url}/send", "id_field": "id"}
    config = write_config(tmp_path / "hub.toml", gateway | {"timeout_s": 30},
                          {"lease_s": 2, "poll_s": 0.05, "unknown_outcome": unknown_outcome})
    queue_messages(hub_url, config, 1)
    first = start_worker(hub_url, config, tmp_path / "w1.log")
    try:
        wait_for(lambda: len(fake.requests) == 1, "the first send")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    (row,) = states(hub_url)
    assert (row.status, row.attempts) == ("sending", 1)  # what the dead worker left
    second = start_worker(hub_url, config, tmp_path / "w2.log")
    try:
        wait_for(lambda: states(hub_url)[0].status == status, f"the message {status}")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
    (row,) = states(hub_url)
    assert len(fake.delivered) == delivered, fake.delivered
    assert row.attempts == (2 if status == "sent" else 1)
    if status == "failed":
        assert row.reason.startswith("outcome unknown")


MESSAGES = 300


@pytest.mark.slow
def test_two_workers_on_postgresql_share_one_queue_without_sending_anything_twice(
        hub_url: str, tmp_path: Path, fake_gateway: Callable[..., tuple[Fake, str]]) -> None:
    if not hub_url.startswith("postgresql"):
        pytest.skip("several workers need PostgreSQL (SKIP LOCKED); SQLite runs one")
    fake, url = fake_gateway("http")  # no idempotency key: a message claimed twice would be delivered twice
    config = write_config(tmp_path / "hub.toml", {"kind": "http", "url": f"{url}/send", "id_field": "id"},
                          {"batch": 10, "send_threads": 2, "poll_s": 0.05})
    queue_messages(hub_url, config, MESSAGES)
    workers = [start_worker(hub_url, config, tmp_path / f"w{i}.log") for i in range(2)]
    try:
        wait_for(lambda: all(r.status == "sent" for r in states(hub_url)), "every message sent")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(timeout=20)
    refs = Counter(d["ref"] for d in fake.delivered)
    assert len(refs) == MESSAGES and set(refs.values()) == {1}
    sent_by = [int(line.split("sent ")[1].split(",")[0]) for i in range(2)
               for line in (tmp_path / f"w{i}.log").read_text().splitlines() if "worker stopped" in line]
    assert len(sent_by) == 2 and sum(sent_by) == MESSAGES and min(sent_by) > 0, sent_by
