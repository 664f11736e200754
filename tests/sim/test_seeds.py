"""The simulator (sim/) in CI: a fixed set of seeds through the whole system, that a
seed replays exactly, and that the auditor really fires."""

from __future__ import annotations

import os
import shutil

import pytest

from sim.core import PG_URL, run_seed
from sim.defects import KNOWN_DEFECTS

# TEMPORARY, while the fixes land in other branches (sim/defects.py says what each is):
# drop a name here when its fix is merged, and these seeds check the fix.
CI_ALLOW = (
    "negative-balance-refused",
    "refund-negative-balance",
    "clock-back-directory-loss",
    "ruleset-forgotten-on-restart",
    "restore-sequence-gap",
    "bank-card-issued",
    "bank-card-as-gift-card",
    "huge-amount-overflow",
    "card-status-diverges",
    "backup-rotation-clock-back",
)
CI_SEEDS = tuple(range(1, 41))  # between them they meet every known defect
CI_STEPS = 200


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_seed_keeps_every_invariant(seed: int) -> None:
    result = run_seed(seed, CI_STEPS, allow=CI_ALLOW)
    assert result.ok, result.report()


def _pg_reachable() -> str | None:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(PG_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: no server here
        return f"PostgreSQL at {PG_URL} is not reachable: {type(exc).__name__}"


def test_seed_with_the_hub_on_postgresql() -> None:
    why = _pg_reachable()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; under CI the PostgreSQL tests must run")
        pytest.skip(why)
    result = run_seed(5, CI_STEPS, allow=CI_ALLOW, pg=True)
    assert result.ok, result.report()


def test_a_seed_replays_exactly() -> None:
    first = run_seed(12, 150, allow=CI_ALLOW)
    again = run_seed(12, 150, allow=CI_ALLOW)
    assert first.events == again.events
    assert first.known_seen == again.known_seen
    other = run_seed(13, 150, allow=CI_ALLOW)
    assert other.events != first.events


def test_the_auditor_catches_a_balance_edited_behind_the_ledger() -> None:
    result = run_seed(3, 90, allow=CI_ALLOW, corrupt_at=60)
    shutil.rmtree(result.folder, ignore_errors=True)
    assert not result.ok
    assert result.violation is not None
    assert (result.violation.invariant, result.violation.step) == ("balance_equals_entries", 60)
    report = result.report()
    assert "VIOLATION seed 3 at step 60: balance_equals_entries" in report
    assert "self-test" in report  # the history shows what led to it
    assert "replay: python -m sim --seed 3 --steps 90" in report


def test_a_known_defect_fails_the_run_unless_allowed() -> None:
    """Without its allowance a defect the simulation knows stops the run, naming itself."""
    result = run_seed(3, 90, allow=CI_ALLOW, corrupt_at=60)
    shutil.rmtree(result.folder, ignore_errors=True)
    assert result.violation is not None and result.violation.defect is None
    strict = run_seed(1, 60, allow=())
    shutil.rmtree(strict.folder, ignore_errors=True)
    if strict.ok:  # the defects it meets by step 60 have been fixed
        return
    assert strict.violation is not None
    assert strict.violation.defect in KNOWN_DEFECTS, strict.report()
    assert f"--allow {strict.violation.defect}" in strict.report()
