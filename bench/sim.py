"""Benchmark: the simulator's throughput, N seeds of M steps (python -m sim).

Floor, measured in the same run and the same kind of folder: the same number of plain
sales (post_sale) on one ledger file, round 20 members, with no network, hub, auditor or second
terminal: what one step would cost if every step were the cheapest thing a terminal
does. Known defects are allowed (the run measures speed; the seed tests judge).
Last line: one JSON object.
usage: python bench/sim.py [--seeds N] [--steps M] [--pg]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.sales import post_sale  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from ledger.types import SaleLine, SaleRequest  # noqa: E402
from sim.core import default_tmp, run_seed  # noqa: E402
from sim.defects import KNOWN_DEFECTS  # noqa: E402

FLOOR_CARDS = 20  # the floor's sales go round 20 members, as bench/api_sale.py's do


def floor_sales(count: int) -> float:
    """Seconds for `count` plain sales on one ledger file in the simulator's folder kind."""
    folder = Path(tempfile.mkdtemp(prefix="bench-sim-floor-", dir=default_tmp()))
    try:
        led = Ledger.open(folder / "ledger.sqlite3", store="S1", terminal="T1")
        cards = []
        for i in range(FLOOR_CARDS):
            member = led.enrol_member(name=f"floor {i}", mobile=f"0912{i:07d}", actor="bench")
            cards.append(led.issue_card(member_id=member.id, number=f"6395{i:012d}", technology="magstripe",
                                        actor="bench").number)
        lines = (SaleLine(sku="SKU1", name="item", category="grocery", quantity=1, unit_price=480_000),)
        began = time.perf_counter()
        for n in range(count):
            post_sale(led, SaleRequest(idempotency_key=f"k{n}", card_number=cards[n % FLOOR_CARDS],
                                       receipt_ref=f"R{n}", lines=lines))
        spent = time.perf_counter() - began
        led.close()
        return spent
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--pg", action="store_true")
    args = parser.parse_args()
    began = time.perf_counter()
    failed = []
    for seed in range(1, args.seeds + 1):
        result = run_seed(seed, args.steps, allow=tuple(KNOWN_DEFECTS), pg=args.pg)
        if not result.ok:
            failed.append(seed)
            print(result.report(), file=sys.stderr)
    spent = time.perf_counter() - began
    steps = args.seeds * args.steps
    floor = floor_sales(steps)
    steps_per_s = steps / spent
    floor_per_s = steps / floor
    print(f"{args.seeds} seeds x {args.steps} steps in {spent:.1f}s; floor {steps} plain sales in {floor:.1f}s",
          file=sys.stderr)
    print(json.dumps({"bench": "sim", "seeds": args.seeds, "steps": args.steps, "hub": "pg" if args.pg else "sqlite",
                      "seeds_per_min": round(args.seeds / spent * 60, 1), "steps_per_s": round(steps_per_s, 1),
                      "floor_steps_per_s": round(floor_per_s, 1), "ratio": round(steps_per_s / floor_per_s, 4),
                      "failed_seeds": failed}))


if __name__ == "__main__":
    main()
