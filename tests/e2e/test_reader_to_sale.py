"""A card read travels from a reader through the daemon to the POS: the read arrives
on the SSE stream, the POS commits a sale for it, and the ledger verifies."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from ledger.service import Ledger
from ledger.verify import verify
from tests.e2e.agent_proc import TOKEN, Agent, free_port, write_config

EVENT_TIMEOUT_S = 15.0


def _swipe(sock_path: Path, number: str) -> None:
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    while not sock_path.exists():
        assert time.monotonic() < deadline, "the simulated reader never opened its socket"
        time.sleep(0.05)
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock_path))
        s.sendall(number.encode() + b"\n")


def _collect_events(base: str, out: list[dict], ready: threading.Event, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=None) as c:
        try:
            with c.stream("GET", "/v1/events") as r:
                ready.set()
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        out.append(json.loads(line[5:]))
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            return  # the agent stopped: the stream ends


@pytest.mark.slow
def test_a_swipe_arrives_on_the_stream_and_pays_for_a_sale(tmp_path: Path) -> None:
    port = free_port()
    sock_path = tmp_path / "data" / "sim1.sock"
    cfg = write_config(tmp_path, port, '[[readers]]\nkind = "simulated"\nid = "sim1"\nsource = "data/sim1.sock"\n')
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    m = led.enrol_member(name="Swipe", mobile="09351112222", actor="test")
    led.issue_card(member_id=m.id, number="6395000000000777", technology="magstripe", actor="test")
    led.close()
    agent = Agent(cfg, port).start()
    events: list[dict] = []
    ready, stop = threading.Event(), threading.Event()
    listener = threading.Thread(target=_collect_events, args=(agent.base, events, ready, stop), daemon=True)
    listener.start()
    try:
        assert ready.wait(EVENT_TIMEOUT_S)
        _swipe(sock_path, "4111111111111111")  # a bank card by mistake
        _swipe(sock_path, "6395000000000777")
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while not any(e.get("type") == "card" for e in events):
            assert time.monotonic() < deadline, f"no card event; got {events}"
            time.sleep(0.05)
        refused = [e for e in events if e.get("type") == "card_refused"]
        assert refused and "bank card" in refused[0]["reason"] and "4111111111111111" not in json.dumps(events)
        card = next(e for e in events if e.get("type") == "card")
        assert card["number"] == "6395000000000777" and card["masked"].endswith("0777")
        with agent.client() as c:
            assert c.get("/v1/cards/last").json()["card"]["number"] == "6395000000000777"
            body = {"idempotency_key": "swipe-1", "card_number": card["number"], "receipt_ref": "R1",
                    "lines": [{"sku": "A", "name": "Tea", "category": "grocery", "quantity": 1,
                               "unit_price": 2_000_000}]}
            sale = c.post("/v1/sales", json=body)
            assert sale.status_code == 200, sale.text
            assert sale.json()["balance"] == 100 + sale.json()["earned_points"]
    finally:
        stop.set()
        assert agent.stop() == 0
    log = (tmp_path / "agent.log").read_text()
    assert "4111111111111111" not in log and "6395000000000777" not in log  # masked only
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    assert verify(led.engine).ok
    led.close()
