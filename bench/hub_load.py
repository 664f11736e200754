"""Many terminals syncing at once: 200 simulated terminals each send a signed batch
of 500 entries (valid hash chains) at the same moment, against the hub on PostgreSQL
with 1 and then 2 worker processes. Reports errors (budget 0) and request latency.
The floor is one terminal's batch alone on the same hub. Last line: one JSON object.
usage: python bench/hub_load.py [--terminals N] [--entries N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger.chain import entry_hash  # noqa: E402
from sync import signing  # noqa: E402
from sync.hub.db import create_hub_engine, upgrade  # noqa: E402
from sync.hub.service import Hub  # noqa: E402
from tests.e2e.agent_proc import free_port  # noqa: E402

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REQUEST_TIMEOUT_S = 120.0
STORE = "load"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def batch(terminal: str, n: int) -> bytes:
    prev = ""
    rows = []
    for seq in range(1, n + 1):
        row = {"id": str(uuid.uuid4()), "terminal_code": terminal, "seq": seq, "member_id": f"m-{terminal}",
               "card_number": None, "gift_card_number": None, "kind": "adjust", "points": 1, "amount": 0,
               "sale_id": None, "receipt_ref": None, "rule_id": None, "reason": "load", "actor": "bench",
               "ruleset_hash": "-" * 64, "created_at": "2026-11-25T00:00:00.000000Z", "prev_hash": prev}
        row["hash"] = prev = entry_hash(row)
        rows.append(row)
    # the member the entries are for comes with them: the hub takes entries only for members it knows
    member = {"id": f"m-{terminal}", "name": "load", "mobile": "09120000000", "birth_date": None, "referrer_id": None,
              "tier": "bronze", "segment": None, "enrolled_at": "2026-11-25T00:00:00.000000Z", "enrolled_by": "bench",
              "store_code": STORE}
    return json.dumps({"entries": rows, "members": [member], "cursor": 10**12, "directory_rev": 10**12}).encode()


async def fire(base: str, creds: dict[str, str], bodies: dict[str, bytes]) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
        async def one(terminal: str) -> None:
            nonlocal errors
            body = bodies[terminal]
            headers = signing.signed_headers(terminal, creds[terminal], "POST", "/v1/sync", body)
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/sync", content=body, headers=headers)
                if r.status_code != 200:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append((time.perf_counter() - t0) * 1000)

        await asyncio.gather(*(one(t) for t in bodies))
    return latencies, errors


def run(workers: int, terminals: int, entries: int) -> dict[str, float]:
    schema = f"load_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG}?options=-csearch_path%3D{schema}"
    engine = create_hub_engine(url)
    upgrade(engine)
    hub = Hub(engine)
    creds = {}
    for i in range(terminals + 1):
        tid = f"L{i:04d}"
        creds[tid] = hub.enroll(hub.new_enrolment_code(STORE), tid)[1]
    engine.dispose()
    bodies = {t: batch(t, entries) for t in creds}
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sync.hub", "--db", url, "serve", "--port", str(port),
                             "--workers", str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/v1/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        alone = "L0000"
        floor, _ = asyncio.run(fire(base, creds, {alone: bodies.pop(alone)}))
        t0 = time.perf_counter()
        latencies, errors = asyncio.run(fire(base, creds, bodies))
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return {"workers": workers, "errors": errors, "p50_ms": round(pct(latencies, 0.5), 1),
            "p99_ms": round(pct(latencies, 0.99), 1), "floor_ms": round(floor[0], 1),
            "entries_per_s": round(terminals * entries / wall)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--terminals", type=int, default=200)
    parser.add_argument("--entries", type=int, default=500)
    args = parser.parse_args()
    results = [run(w, args.terminals, args.entries) for w in (1, 2)]
    for r in results:
        print(f"{r['workers']} worker(s): {r['errors']} errors, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
              f"{r['entries_per_s']:,} entries/s; one batch alone {r['floor_ms']} ms")
    print(json.dumps({"bench": "hub_load", "terminals": args.terminals, "entries_each": args.entries,
                      "results": results, "budget_errors": 0}))


if __name__ == "__main__":
    main()
