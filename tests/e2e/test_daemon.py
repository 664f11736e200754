"""The daemon as a real process: ready, one per data dir, SIGTERM loses nothing acknowledged."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from ledger.schema import sales
from ledger.service import Ledger
from ledger.users import add_user
from ledger.verify import verify
from terminal_agent.config import load_config
from terminal_agent.runtime import pin_key
from tests.e2e.agent_proc import Agent, free_port, write_config


def _prepare(tmp_path: Path) -> tuple[Path, int]:
    port = free_port()
    cfg = write_config(tmp_path, port)
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    add_user(led, username="mina", role="manager", pin="654321", actor="test", pin_key=pin_key(load_config(cfg)))
    m = led.enrol_member(name="E2E", mobile="09351234567", actor="test")
    led.issue_card(member_id=m.id, number="6395000000000999", technology="magstripe", actor="test")
    led.close()
    return cfg, port


@pytest.mark.slow
def test_second_instance_is_refused_naming_the_holder(tmp_path: Path) -> None:
    cfg, port = _prepare(tmp_path)
    agent = Agent(cfg, port).start()
    try:
        second = subprocess.run([sys.executable, "-m", "terminal_agent", "--config", str(cfg), "run"],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert f"pid {agent.proc.pid}" in second.stderr and "Traceback" not in second.stderr  # type: ignore[union-attr]
    finally:
        agent.kill()


@pytest.mark.slow
def test_sigterm_during_a_stream_of_sales_loses_nothing_acknowledged(tmp_path: Path) -> None:
    cfg, port = _prepare(tmp_path)
    agent = Agent(cfg, port).start()
    acknowledged: list[str] = []
    stop = threading.Event()

    def till() -> None:
        with agent.client() as c:
            i = 0
            while not stop.is_set():
                i += 1
                body = {"idempotency_key": f"k{i}", "card_number": "6395000000000999", "receipt_ref": f"R{i}",
                        "lines": [{"sku": "A", "name": "Tea", "category": "grocery", "quantity": 1,
                                   "unit_price": 1_000_000}]}
                try:
                    r = c.post("/v1/sales", json=body)
                except httpx.HTTPError:
                    return  # the agent has gone: nothing more can be acknowledged
                if r.status_code == 200:
                    acknowledged.append(r.json()["sale_id"])
                elif r.status_code >= 500:
                    return

    worker = threading.Thread(target=till)
    worker.start()
    time.sleep(1.5)
    assert agent.stop() == 0
    stop.set()
    worker.join(timeout=10)
    assert len(acknowledged) > 10
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    with led.engine.connect() as conn:
        stored = {r.id for r in conn.execute(select(sales.c.id))}
    assert set(acknowledged) <= stored
    assert verify(led.engine).ok
    led.close()
    assert "stopped" in (tmp_path / "agent.log").read_text()


@pytest.mark.slow
def test_the_daemon_prints_slips_on_the_configured_printer_and_reports_it(tmp_path: Path) -> None:
    port = free_port()
    device = tmp_path / "lp0"
    device.touch()
    cfg = write_config(tmp_path, port, f'[printer]\ndevice = "{device}"\nwidth_px = 384\n')
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    m = led.enrol_member(name="E2E", mobile="09351234567", actor="test")
    led.issue_card(member_id=m.id, number="6395000000000999", technology="magstripe", actor="test")
    led.close()
    agent = Agent(cfg, port).start()
    try:
        with agent.client() as c:
            sale = c.post("/v1/sales", json={
                "idempotency_key": "k1", "card_number": "6395000000000999", "receipt_ref": "R1",
                "lines": [{"sku": "A", "name": "Tea", "category": "grocery", "quantity": 1, "unit_price": 1_000_000}]})
            assert sale.status_code == 200, sale.text
            r = c.post(f"/v1/sales/{sale.json()['sale_id']}/slip", json={"locale": "fa"})
            assert r.status_code == 200, r.text
        assert device.stat().st_size == r.json()["bytes"] > 1000 and device.read_bytes().startswith(b"\x1b@")
        status = subprocess.run([sys.executable, "-m", "terminal_agent", "--config", str(cfg), "status"],
                                capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        assert f"printer:  {device}: last slip 20" in status.stdout and "0 waiting" in status.stdout
    finally:
        assert agent.stop() == 0
