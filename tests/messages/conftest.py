"""Fixtures of the messages tests: the hub on SQLite and PostgreSQL (tests/sync's),
a config built from sections, a clock the test drives, fake gateways on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sync.hub.config import HubConfig, parse_hub_config
from tests.conftest import START
from tests.messages.fakegateway import Fake, serving
from tests.sync.conftest import hub, hub_http, hub_url, terminals  # noqa: F401  (fixtures)

# 12:30 in Tehran on the terminals' day: outside the default quiet hours
NOON = START + timedelta(minutes=5)


class Clock:
    def __init__(self, at: datetime = NOON) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# fast retries, receipts for everyone, a file gateway in the test's folder
BASE = {"messages": {"gateway": "out", "daily_limit": 0},
        "worker": {"poll_s": 0.05, "backoff_s": 0.05, "backoff_max_s": 0.2, "lease_s": 30, "receipt_settle_s": 0},
        "triggers": {"receipt": "on"},
        "gateways": {"out": {"kind": "file", "path": "sent.jsonl", "webhook_token": "t" * 24}}}


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., HubConfig]:
    def make(extra: dict[str, Any] | None = None) -> HubConfig:
        return parse_hub_config(deep_merge(BASE, extra or {}), str(tmp_path / "hub.toml"), tmp_path)

    return make


def sent_file(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "sent.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def fake_gateway() -> Iterator[Callable[..., tuple[Fake, str]]]:
    """Start fakes: make(flavour, default mode, ...) -> (fake, base URL)."""
    started: list[Any] = []

    def make(flavour: str = "kavenegar", default: str = "ok", **kwargs: Any) -> tuple[Fake, str]:
        fake = Fake(flavour, default, **kwargs)
        ctx = serving(fake)
        url = ctx.__enter__()
        started.append(ctx)
        return fake, url

    yield make
    for ctx in started:
        ctx.__exit__(None, None, None)


def gateway_section(flavour: str, url: str, **extra: Any) -> dict[str, Any]:
    """A [gateways.NAME] table for a fake at `url`."""
    if flavour == "kavenegar":
        return {"kind": "kavenegar", "api_key": "k" * 20, "sender": "10004346", "url": f"{url}/v1",
                "timeout_s": 1.0, **extra}
    if flavour == "smsir":
        return {"kind": "smsir", "api_key": "s" * 20, "line_number": "30007732", "url": f"{url}/v1",
                "timeout_s": 1.0, **extra}
    return {"kind": "http", "url": f"{url}/send", "id_field": "id", "timeout_s": 1.0, **extra}
