"""Agent and hub as real processes on loopback, with kill -9 of each in the middle of
work: the final state is exact once both run again."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from ledger.schema import entries as local_entries
from ledger.service import Ledger
from ledger.verify import verify
from sync.hub.schema import entries as hub_entries
from tests.e2e.agent_proc import Agent, free_port, write_config

READY_S = 20.0


class HubProc:
    def __init__(self, folder: Path, port: int) -> None:
        self.db = f"sqlite:///{folder / 'hub.sqlite3'}"
        self.port = port
        self.log = folder / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "sync.hub", "--db", self.db, *args], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def start(self) -> "HubProc":
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "sync.hub", "--db", self.db, "serve",
                                          "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v1/health", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"hub not ready: {self.log.read_text()}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def _sell(agent: Agent, start: int, count: int, card: str) -> int:
    done = 0
    with agent.client() as c:
        for i in range(start, start + count):
            r = c.post("/v1/sales", json={"idempotency_key": f"k{i}", "card_number": card, "receipt_ref": f"R{i}",
                                          "lines": [{"sku": "A", "name": "Tea", "category": "grocery", "quantity": 1,
                                                     "unit_price": 1_000_000}]})
            assert r.status_code == 200, r.text
            done += 1
    return done


@pytest.mark.slow
def test_kill_9_of_hub_and_agent_loses_nothing(tmp_path: Path) -> None:
    hub = HubProc(tmp_path, free_port()).start()
    port = free_port()
    cfg = write_config(tmp_path, port, f'[sync]\nhub_url = "http://127.0.0.1:{hub.port}"\ninterval_s = 1\n'
                                       "backoff_max_s = 2\n")
    code = hub.cli("terminals", "add", "--store", "S1")
    enrol = subprocess.run([sys.executable, "-m", "terminal_agent", "--config", str(cfg), "enroll",
                            f"http://127.0.0.1:{hub.port}", code], capture_output=True, text=True, timeout=60)
    assert enrol.returncode == 0, enrol.stderr
    assert oct((tmp_path / "data" / "hub.json").stat().st_mode & 0o777) == "0o600"
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    m = led.enrol_member(name="Proc", mobile="09351119999", actor="test")
    led.issue_card(member_id=m.id, number="6395000000000321", technology="magstripe", actor="test")
    led.close()
    agent = Agent(cfg, port).start()
    try:
        _sell(agent, 0, 20, "6395000000000321")
        hub.kill9()  # the hub dies; the till goes on
        _sell(agent, 20, 20, "6395000000000321")
        hub.start()
        _sell(agent, 40, 10, "6395000000000321")
        agent.kill()  # kill -9 of the agent with sync in flight
        agent = Agent(cfg, port).start()
        _sell(agent, 50, 10, "6395000000000321")
        engine = create_engine(hub.db)
        deadline = time.monotonic() + 30
        while True:
            with engine.connect() as conn:
                on_hub = set(conn.execute(select(hub_entries.c.id)).scalars())
            with create_engine(f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite3'}").connect() as conn:
                mine = set(conn.execute(select(local_entries.c.id)).scalars())
            if on_hub == mine:
                break
            assert time.monotonic() < deadline, f"hub has {len(on_hub)} entries, the terminal {len(mine)}"
            time.sleep(0.2)
        assert len(mine) >= 61  # the sign-up bonus and one earn entry per sale, at least
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(hub_entries)).scalar_one() == len(mine)
    finally:
        agent.stop()
        hub.stop()
    local = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    assert verify(local.engine).ok
    local.close()
