"""Commit-sale round trips to the daemon over loopback, against the in-process commit.

Starts a real `loyalty-agent run` (SQLite, synchronous=FULL), measures POST /v1/sales
with a keep-alive client (p50, p99), the same sales committed in process on another
ledger in the same run (the floor the API stands on), the daemon's resident memory
when idle and its time from start to ready. Last line: one JSON object.

The round trip is timed with the standard library's http.client on one keep-alive
connection: the thinnest client Python has, so the number is the agent's, not the
client's. The same sales through httpx are timed too and reported beside it
(`httpx_p50_ms`): a Python POS on httpx pays its own client's cost on top.
Budgets: p50 <= 3 ms, p99 <= 10 ms; idle RSS <= 100 MB; ready <= 2 s.
usage: python bench/api_sale.py [--sales N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.sales import post_sale  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from ledger.types import SaleLine, SaleRequest  # noqa: E402
from tests.e2e.agent_proc import TOKEN, free_port, write_config  # noqa: E402

READY_TIMEOUT_S = 30.0
CARDS = 20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed(path: Path) -> list[str]:
    led = Ledger.open(path, store="S1", terminal="T1")
    cards = []
    for i in range(CARDS):
        m = led.enrol_member(name=f"m{i}", mobile=f"0912{i:07d}", actor="bench")
        cards.append(led.issue_card(member_id=m.id, number=f"6395{i:012d}", technology="magstripe",
                                    actor="bench").number)
    led.close()
    return cards


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def body(i: int, card: str) -> dict:
    return {"idempotency_key": f"k{i}", "card_number": card, "receipt_ref": f"r{i}",
            "lines": [{"sku": "A", "name": "Rice", "category": "grocery", "quantity": 2, "unit_price": 1_250_000}]}


def in_process(folder: Path, n: int) -> list[float]:
    cards = seed(folder / "floor.sqlite3")
    led = Ledger.open(folder / "floor.sqlite3", store="S1", terminal="T1")
    line = (SaleLine(sku="A", name="Rice", category="grocery", quantity=2, unit_price=1_250_000),)
    times = []
    for i in range(n):
        req = SaleRequest(idempotency_key=f"k{i}", card_number=cards[i % CARDS], receipt_ref=f"r{i}", lines=line)
        t0 = time.perf_counter()
        post_sale(led, req)
        times.append((time.perf_counter() - t0) * 1000)
    led.close()
    return times


def with_http_client(port: int, cards: list[str], keys: range) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10.0)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    times = []
    try:
        for i in range(-50, 0):  # warm up
            conn.request("POST", "/v1/sales", json.dumps(body(i - keys.start, cards[i % CARDS])), headers)
            conn.getresponse().read()
        for i in keys:
            payload = json.dumps(body(i, cards[i % CARDS]))
            t0 = time.perf_counter()
            conn.request("POST", "/v1/sales", payload, headers)
            r = conn.getresponse()
            answer = r.read()
            times.append((time.perf_counter() - t0) * 1000)
            if r.status != 200:
                raise SystemExit(f"sale {i} failed: {r.status} {answer[:500]!r}")
    finally:
        conn.close()
    return times


def with_httpx(port: int, cards: list[str], keys: range) -> list[float]:
    times = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0,
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for i in range(-50, 0):  # warm up
            client.post("/v1/sales", json=body(i - keys.start, cards[i % CARDS]))
        for i in keys:
            payload = body(i, cards[i % CARDS])
            t0 = time.perf_counter()
            r = client.post("/v1/sales", json=payload)
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"sale {i} failed: {r.status_code} {r.text}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sales", type=int, default=2000)
    n = parser.parse_args().sales
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        port = free_port()
        cfg = write_config(folder, port)
        cards = seed(folder / "data" / "ledger.sqlite3")
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "terminal_agent", "--config", str(cfg), "run"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=0.2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() - started > READY_TIMEOUT_S or proc.poll() is not None:
                    raise SystemExit("the agent did not become ready")
                time.sleep(0.005)
            ready_s = time.perf_counter() - started
            time.sleep(1.0)
            idle_rss = rss_mb(proc.pid)
            times = with_http_client(port, cards, range(n))
            httpx_times = with_httpx(port, cards, range(n, 2 * n))
            busy_rss = rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        floor = in_process(folder, n)
    print(f"api: p50 {pct(times, 0.5):.2f} ms, p99 {pct(times, 0.99):.2f} ms (httpx: p50 "
          f"{pct(httpx_times, 0.5):.2f} ms, p99 {pct(httpx_times, 0.99):.2f} ms); in process: p50 "
          f"{pct(floor, 0.5):.2f} ms, p99 {pct(floor, 0.99):.2f} ms; ready {ready_s:.2f} s; "
          f"idle RSS {idle_rss:.1f} MB, after {n} sales {busy_rss:.1f} MB")
    print(json.dumps({"bench": "api_sale", "sales": n, "p50_ms": round(pct(times, 0.5), 3),
                      "p99_ms": round(pct(times, 0.99), 3), "httpx_p50_ms": round(pct(httpx_times, 0.5), 3),
                      "httpx_p99_ms": round(pct(httpx_times, 0.99), 3), "floor_p50_ms": round(pct(floor, 0.5), 3),
                      "floor_p99_ms": round(pct(floor, 0.99), 3),
                      "ratio": round(pct(floor, 0.5) / pct(times, 0.5), 3),
                      "ready_s": round(ready_s, 3), "idle_rss_mb": round(idle_rss, 1),
                      "busy_rss_mb": round(busy_rss, 1)}))


if __name__ == "__main__":
    main()
