"""End to end with real parts: the daemon as a process, a magnetic stripe reader on a
socat PTY, a swipe written into the PTY, the read on the SSE stream, a sale through
the API, and `ledger verify` on the file afterwards."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from drivers.magstripe import encode_track
from ledger.service import Ledger
from tests.drivers.serial_emulator import PtyReader
from tests.e2e.agent_proc import Agent, free_port, write_config
from tests.e2e.test_reader_to_sale import EVENT_TIMEOUT_S, _collect_events

MEMBER = "6395000000000555"


@pytest.mark.slow
def test_a_swipe_on_a_serial_reader_pays_for_a_sale(tmp_path: Path) -> None:
    pty = PtyReader(tmp_path).plug()
    port = free_port()
    cfg = write_config(tmp_path, port, f'[[readers]]\nkind = "serial"\nid = "msr1"\nport = "{pty.port}"\n')
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    m = led.enrol_member(name="Serial", mobile="09351113333", actor="test")
    led.issue_card(member_id=m.id, number=MEMBER, technology="magstripe", actor="test")
    led.close()
    agent = Agent(cfg, port).start()
    events: list[dict] = []
    ready, stop = threading.Event(), threading.Event()
    threading.Thread(target=_collect_events, args=(agent.base, events, ready, stop), daemon=True).start()
    try:
        assert ready.wait(EVENT_TIMEOUT_S)
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        while not any(e.get("type") == "reader" and e.get("state") == "connected" for e in events):
            assert time.monotonic() < deadline, f"the reader never connected: {events}"
            time.sleep(0.05)
        pty.write((encode_track(1, MEMBER) + "\r" + encode_track(2, MEMBER, "2912101")).encode() + b"\r\n")
        while not any(e.get("type") == "card" for e in events):
            assert time.monotonic() < deadline, f"no card event: {events}"
            time.sleep(0.02)
        card = next(e for e in events if e.get("type") == "card")
        assert card["number"] == MEMBER and card["technology"] == "magstripe"
        with agent.client() as c:
            sale = c.post("/v1/sales", json={
                "idempotency_key": "msr-1", "card_number": card["number"], "receipt_ref": "R1",
                "lines": [{"sku": "A", "name": "Tea", "category": "grocery", "quantity": 3, "unit_price": 1_000_000}]})
            assert sale.status_code == 200, sale.text
            body = sale.json()
            assert body["earned_points"] == 300 and body["balance"] == 400  # 100 sign-up + 300
        pty.unplug()  # the reader goes away; the agent keeps serving
        while not any(e.get("type") == "reader" and e.get("state") == "disconnected" for e in events):
            assert time.monotonic() < deadline + EVENT_TIMEOUT_S, f"no disconnect event: {events}"
            time.sleep(0.05)
        with agent.client() as c:
            assert c.get("/v1/health").status_code == 200
    finally:
        stop.set()
        assert agent.stop() == 0
        pty.unplug()
    log = (tmp_path / "agent.log").read_text()
    assert MEMBER not in log and "Sarah" not in log
    verify = subprocess.run([sys.executable, "-m", "terminal_agent", "--config", str(cfg), "ledger", "verify"],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stderr
    assert "ok: 2 entries" in verify.stdout
