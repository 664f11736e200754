"""python -m sim --seed N --steps M [--terminals K] [--stores S] [--pg] [--allow NAME ...]
python -m sim --seeds N --steps M ...   (seeds 1..N; stops at the first failure)"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sim.core import run_seed
from sim.defects import KNOWN_DEFECTS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim", description="Deterministic simulation of terminals, hub, "
                                "network, clocks and crashes; one seed replays exactly.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--seed", type=int, help="run this seed")
    which.add_argument("--seeds", type=int,
                       help="run N seeds, --first to --first+N-1; stop at the first failure")
    p.add_argument("--first", type=int, default=1, help="with --seeds: the first seed (default 1)")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--terminals", type=int, help="2 to 8 (default: the seed chooses)")
    p.add_argument("--stores", type=int, help="2 or more (default: the seed chooses)")
    p.add_argument("--pg", action="store_true", help="the hub on PostgreSQL at 127.0.0.1:5432/test, a fresh schema")
    p.add_argument("--via", choices=("app", "hub"), default="app",
                   help="reach the hub through its FastAPI app (default) or call Hub directly")
    p.add_argument("--allow", action="append", default=[], metavar="DEFECT",
                   help="TEMPORARY: go past this known defect (repeatable): " + ", ".join(KNOWN_DEFECTS))
    p.add_argument("--allow-known", action="store_true", help="TEMPORARY: go past every known defect")
    p.add_argument("--tmp", type=Path, help="folder for the run's files (default /dev/shm)")
    p.add_argument("--keep", action="store_true", help="keep the run's files")
    p.add_argument("--events", action="store_true", help="print the whole event log")
    p.add_argument("--corrupt-at", type=int, help="self-test: edit a balance row at this step (the auditor must fire)")
    a = p.parse_args(argv)
    if a.terminals is not None and not 2 <= a.terminals <= 8:
        p.error("--terminals must be 2 to 8")
    if a.stores is not None and not 2 <= a.stores <= (a.terminals or 8):
        p.error("--stores must be 2 or more, and no more than the terminals")
    unknown = [x for x in a.allow if x not in KNOWN_DEFECTS]
    if unknown:
        p.error(f"unknown defect {', '.join(unknown)}; known: {', '.join(KNOWN_DEFECTS)}")
    allow = tuple(KNOWN_DEFECTS) if a.allow_known else tuple(a.allow)
    options = dict(terminals=a.terminals, stores=a.stores, pg=a.pg, allow=allow, via=a.via, tmp=a.tmp,
                   corrupt_at=a.corrupt_at, keep=a.keep)
    seeds = [a.seed] if a.seed is not None else list(range(a.first, a.first + a.seeds))
    began = time.perf_counter()
    for n, seed in enumerate(seeds, start=1):
        result = run_seed(seed, a.steps, **options)
        if a.events:
            print("\n".join(result.events))
        print(result.report(), flush=True)
        if not result.ok:
            if len(seeds) > 1:
                print(f"stopped at seed {seed} after {n} seeds")
            return 1
    minutes = (time.perf_counter() - began) / 60
    if len(seeds) > 1:
        print(f"{len(seeds)} seeds ok in {minutes * 60:.1f}s: {len(seeds) / minutes:.1f} seeds per minute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
