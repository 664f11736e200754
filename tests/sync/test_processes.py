"""Agent and hub as real processes on loopback, with kill -9 of each in the middle of
work: the final state is exact once both run again."""

from __future__ import annotations

import random
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from ledger.schema import entries as local_entries
from ledger.schema import sales as local_sales
from ledger.service import Ledger
from ledger.verify import verify
from sync.hub.schema import entries as hub_entries
from tests.e2e.agent_proc import Agent, free_port, write_config
from tests.sync.faultproxy import FaultProxy

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


class Till(threading.Thread):
    """A POS posting sales one after another; each is retried with its own key until
    the agent acknowledges it, through agent restarts."""

    def __init__(self, agent_box: list[Agent], card: str, count: int) -> None:
        super().__init__(daemon=True)
        self.agent_box, self.card, self.count = agent_box, card, count
        self.acknowledged: dict[str, str] = {}

    def run(self) -> None:
        for i in range(self.count):
            body = {"idempotency_key": f"k{i}", "card_number": self.card, "receipt_ref": f"R{i}",
                    "lines": [{"sku": "A", "name": "Tea", "category": "grocery", "quantity": 1,
                               "unit_price": 1_000_000}]}
            while True:
                try:
                    with self.agent_box[0].client() as c:
                        r = c.post("/v1/sales", json=body)
                    if r.status_code == 200:
                        self.acknowledged[f"k{i}"] = r.json()["sale_id"]
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)


@pytest.mark.slow
def test_kill_9_of_hub_and_agent_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(7)
    hub = HubProc(tmp_path, free_port()).start()
    proxy = FaultProxy(free_port(), hub.port, rate=0.3, seed=7).start()  # the network between them
    port = free_port()
    cfg = write_config(tmp_path, port, f'[sync]\nhub_url = "http://127.0.0.1:{proxy.listen_port}"\n'
                                       "interval_s = 1\nbackoff_max_s = 2\n")
    code = hub.cli("terminals", "add", "--store", "S1")
    enrol = subprocess.run([sys.executable, "-m", "terminal_agent", "--config", str(cfg), "enroll",
                            f"http://127.0.0.1:{hub.port}", code], capture_output=True, text=True, timeout=60)
    assert enrol.returncode == 0, enrol.stderr
    assert oct((tmp_path / "data" / "hub.json").stat().st_mode & 0o777) == "0o600"
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    m = led.enrol_member(name="Proc", mobile="09351119999", actor="test")
    led.issue_card(member_id=m.id, number="6395000000000321", technology="magstripe", actor="test")
    led.close()
    box = [Agent(cfg, port).start()]
    till = Till(box, "6395000000000321", 150)
    till.start()
    try:
        for _ in range(3):
            time.sleep(rng.uniform(0.2, 1.0))
            hub.kill9()  # the hub dies mid-batch; the till goes on
            time.sleep(rng.uniform(0.1, 0.6))
            hub.start()
            time.sleep(rng.uniform(0.2, 1.0))
            box[0].kill()  # kill -9 of the agent, sales and sync in flight
            box[0] = Agent(cfg, port).start()
        till.join(timeout=120)
        assert not till.is_alive() and len(till.acknowledged) == 150
        assert sum(proxy.injected.values()) > 0
        proxy.rate = 0.0  # the network heals
        engine = create_engine(hub.db)
        local_db = create_engine(f"sqlite:///{tmp_path / 'data' / 'ledger.sqlite3'}")
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                on_hub = set(conn.execute(select(hub_entries.c.id)).scalars())
            with local_db.connect() as conn:
                mine = set(conn.execute(select(local_entries.c.id)).scalars())
                sales_ids = set(conn.execute(select(local_sales.c.id)).scalars())
            if on_hub == mine:
                break
            assert time.monotonic() < deadline, f"hub has {len(on_hub)} entries, the terminal {len(mine)}"
            time.sleep(0.2)
        assert set(till.acknowledged.values()) <= sales_ids  # nothing acknowledged was lost
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(hub_entries)).scalar_one() == len(mine)
    finally:
        box[0].stop()
        hub.stop()
        proxy.stop()
    local = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    assert verify(local.engine).ok
    local.close()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "hub.crt", folder / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.slow
def test_tls_with_the_configured_ca_bundle(tmp_path: Path) -> None:
    if subprocess.run(["which", "openssl"], capture_output=True).returncode != 0:
        pytest.skip("openssl is not installed (Debian package: openssl)")
    cert, key = _self_signed(tmp_path)
    port = free_port()
    hub = HubProc(tmp_path, port)
    with open(hub.log, "ab") as log:
        hub.proc = subprocess.Popen([sys.executable, "-m", "sync.hub", "--db", hub.db, "serve", "--port", str(port),
                                     "--tls-cert", str(cert), "--tls-key", str(key)], stdout=log,
                                    stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + READY_S
        while True:
            try:
                trust = ssl.create_default_context(cafile=str(cert))
                if httpx.get(f"https://127.0.0.1:{port}/v1/health", verify=trust, timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, hub.log.read_text()
                time.sleep(0.05)
        url = f"https://127.0.0.1:{port}"
        plain = write_config(tmp_path, free_port(), f'[sync]\nhub_url = "{url}"\n')
        code = hub.cli("terminals", "add", "--store", "S1")
        refused = subprocess.run([sys.executable, "-m", "terminal_agent", "--config", str(plain), "enroll", url, code],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "cannot reach the hub" in refused.stderr
        assert "Traceback" not in refused.stderr
        trusting = write_config(tmp_path, free_port(), f'[sync]\nhub_url = "{url}"\nca_bundle = "{cert}"\n')
        ok = subprocess.run([sys.executable, "-m", "terminal_agent", "--config", str(trusting), "enroll", url, code],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
        led.enrol_member(name="Tls", mobile="09351110000", actor="test")
        led.close()
        now = subprocess.run([sys.executable, "-m", "terminal_agent", "--config", str(trusting), "sync", "now"],
                             capture_output=True, text=True, timeout=60)
        assert now.returncode == 0 and "sent 1 entries" in now.stdout, now.stderr
    finally:
        hub.stop()
