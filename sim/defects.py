"""Defects the simulation has found in today's code, by name. `--allow NAME` (or
`--allow-known`) lets a run go on past one of them: the auditor records where it
fired, sets aside what it spoils (a member the hub never heard of, a terminal the hub
refuses for ever...) and checks everything else. TEMPORARY: remove a name here once
its fix has landed, and the seeds that found it fail again if the fix is incomplete."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownDefect:
    name: str
    invariant: str
    diagnosis: str


KNOWN_DEFECTS: dict[str, KnownDefect] = {d.name: d for d in (
)}

# Found by the simulation and fixed since (kept for the record: reintroduce one on a
# scratch branch and the seeds in docs/sim-proof.md catch it again; the patches that
# reintroduce each are in docs/sim-proof/):
# negative-balance-refused, refund-negative-balance, clock-back-directory-loss,
# ruleset-forgotten-on-restart, restore-sequence-gap, bank-card-issued,
# bank-card-as-gift-card, huge-amount-overflow, card-status-diverges,
# backup-rotation-clock-back, replacement-split, other-store-card-issued,
# visiting-card-replaced-twice, replacement-chain-split (a long run's seed 5195),
# restore-renumbered-conflict (a long run's seed 7014).
