"""Messages to members on PostgreSQL: (1) messages queued, then handed by two worker
processes to a local HTTP gateway, per second; (2) the latency from a sale's sync to
its receipt SMS reaching the gateway, through the real hub and a worker process.

Floors, measured in the same run: the same number of plain INSERTs and UPDATEs of
queue-like rows (one INSERT batch, then an UPDATE per row, 50 rows a transaction:
what the queue does minus rendering, judging and the claim), the same number of
POSTs to the local gateway from 8 threads (what the gateway costs), and one sync
request alone. Last line: one JSON object.
usage: python bench/messages.py [--messages N] [--sales N]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.sales import post_sale  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from sync.client import Credentials, SyncClient  # noqa: E402
from sync.hub.config import load_hub_config  # noqa: E402
from sync.hub.db import create_hub_engine, upgrade  # noqa: E402
from sync.hub.messages import queue  # noqa: E402
from sync.hub.messages.triggers import Planned  # noqa: E402
from sync.hub.service import Hub  # noqa: E402
from tests.conftest import sale  # noqa: E402
from tests.e2e.agent_proc import free_port  # noqa: E402
from tests.messages.fakegateway import Fake, serving  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
WAIT_S = 300.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def fresh_schema(admin: object) -> tuple[str, str]:
    schema = f"msg_{uuid.uuid4().hex[:10]}"
    with admin.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    return schema, f"{PG}?options=-csearch_path%3D{schema}"


def write_config(folder: Path, gateway_url: str, settle_s: float, poll_s: float) -> Path:
    path = folder / "hub.toml"
    path.write_text(f"""[messages]
gateway = "local"
daily_limit = 0
quiet_start = "00:00"
quiet_end = "00:00"
[worker]
poll_s = {poll_s}
receipt_settle_s = {settle_s}
[triggers]
receipt = "on"
welcome = false
[gateways.local]
kind = "http"
url = "{gateway_url}/send"
body = '{{"to": {{mobile}}, "text": {{text}}, "ref": {{id}}, "kind": {{kind}}}}'
id_field = "id"
""")
    return path


def workers(url: str, config: Path, n: int) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-m", "sync.hub", "--config", str(config), "--db", url, "messages",
                              "worker"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            for _ in range(n)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


def throughput(admin: object, n: int) -> dict[str, float]:
    schema, url = fresh_schema(admin)
    fake = Fake("http")
    try:
        with serving(fake) as gateway, tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), gateway, 2.0, 0.05)
            cfg = load_hub_config(config)
            engine = create_hub_engine(url)
            upgrade(engine)
            now = datetime.now(timezone.utc)
            planned = [Planned(f"campaign:1:m{i}", "campaign", "campaign", f"0912{i:07d}", now, None, f"m{i}",
                               {"name": f"Member {i}", "balance": i}) for i in range(n)]
            t0 = time.perf_counter()
            with engine.begin() as conn:
                for i in range(0, n, 1000):
                    queue.enqueue(conn, cfg, planned[i:i + 1000], now)
            queued_s = time.perf_counter() - t0
            procs = workers(url, config, 2)
            t0 = time.perf_counter()
            try:
                deadline = time.monotonic() + WAIT_S
                while len(fake.delivered) < n:
                    assert time.monotonic() < deadline, f"{len(fake.delivered)} of {n} sent in {WAIT_S} s"
                    time.sleep(0.02)
                sent_s = time.perf_counter() - t0
            finally:
                stop(procs)
            twice = len(fake.delivered) - len({d["ref"] for d in fake.delivered})
            # floors: plain rows, then the gateway alone
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE plain_queue (id bigint PRIMARY KEY, body text, status text)"))
            t0 = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO plain_queue VALUES (:id, :body, 'queued')"),
                             [{"id": i, "body": "x" * 80} for i in range(n)])
            for i in range(0, n, 50):
                with engine.begin() as conn:
                    for j in range(i, min(n, i + 50)):
                        conn.execute(text("UPDATE plain_queue SET status = 'sent' WHERE id = :id"), {"id": j})
            floor_db_s = time.perf_counter() - t0
            engine.dispose()
            with httpx.Client() as client:
                def post(i: int) -> None:
                    client.post(f"{gateway}/send", json={"to": "09120000000", "text": "x", "ref": -i})

                t0 = time.perf_counter()
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(post, range(n)))
                floor_http_s = time.perf_counter() - t0
    finally:
        with admin.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return {"messages": n, "queued_per_s": round(n / queued_s), "sent_per_s_2_workers": round(n / sent_s),
            "sent_twice": twice, "floor_plain_insert_update_per_s": round(n / floor_db_s),
            "floor_gateway_posts_per_s": round(n / floor_http_s)}


def latency(admin: object, sales: int, settle_s: float, poll_s: float) -> dict[str, float]:
    schema, url = fresh_schema(admin)
    fake = Fake("http")
    try:
        with serving(fake) as gateway, tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), gateway, settle_s, poll_s)
            engine = create_hub_engine(url)
            upgrade(engine)
            hub = Hub(engine)
            code = hub.new_enrolment_code("S1")
            engine.dispose()
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            serve = subprocess.Popen([sys.executable, "-m", "sync.hub", "--config", str(config), "--db", url, "serve",
                                      "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=ROOT)
            procs = workers(url, config, 1)
            try:
                for _ in range(600):
                    try:
                        if httpx.get(f"{base}/v1/health", timeout=0.5).status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.05)
                secret = httpx.post(f"{base}/v1/enroll", json={"code": code, "terminal": "T1"}).json()["secret"]
                led = Ledger.open(Path(tmp) / "t.sqlite3", store="S1", terminal="T1")
                client = SyncClient(led, Credentials(base, "T1", "S1", secret))
                m = led.enrol_member(name="Sara", mobile="09120000001", actor="bench")
                card = led.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="bench")
                client.sync_once()
                waits, syncs = [], []
                for i in range(sales):
                    post_sale(led, sale(f"k{i}", card.number, 2_000_000))
                    before = sum(1 for r in fake.requests if r.get("kind") == "receipt")
                    t0 = time.perf_counter()
                    client.sync_once()
                    syncs.append((time.perf_counter() - t0) * 1000)
                    deadline = time.monotonic() + 30
                    while sum(1 for r in fake.requests if r.get("kind") == "receipt") == before:
                        assert time.monotonic() < deadline, "no receipt in 30 s"
                        time.sleep(0.002)
                    waits.append((time.perf_counter() - t0) * 1000)
                client.close()
                led.close()
            finally:
                stop(procs)
                serve.terminate()
                serve.wait(timeout=30)
    finally:
        with admin.begin() as conn:  # type: ignore[attr-defined]
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return {"receipt_settle_s": settle_s, "poll_s": poll_s, "sales": sales, "p50_ms": round(pct(waits, 0.5), 1),
            "p99_ms": round(pct(waits, 0.99), 1), "floor_sync_p50_ms": round(pct(syncs, 0.5), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sales", type=int, default=20)
    args = parser.parse_args()
    admin = create_engine(PG)
    t = throughput(admin, args.messages)
    print(f"{t['messages']} messages: queued {t['queued_per_s']:,}/s; "
          f"sent by 2 workers {t['sent_per_s_2_workers']:,}/s "
          f"({t['sent_twice']} twice); floors: plain INSERT+UPDATE {t['floor_plain_insert_update_per_s']:,}/s, "
          f"gateway alone {t['floor_gateway_posts_per_s']:,}/s")
    lat = [latency(admin, args.sales, 2.0, 0.5), latency(admin, args.sales, 0.0, 0.05)]
    for r in lat:
        print(f"sale synced -> receipt at the gateway (settle {r['receipt_settle_s']} s, poll {r['poll_s']} s): "
              f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; the sync request alone p50 {r['floor_sync_p50_ms']} ms")
    print(json.dumps({"bench": "messages", "throughput": t, "latency": lat}))


if __name__ == "__main__":
    main()
