"""Two processes posting into one ledger file: nothing lost, no seq twice, verify passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.schema import entries, outbox, sales
from ledger.service import Ledger
from ledger.verify import verify

SALES_PER_PROCESS = 1000
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_post_1000_sales_each(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    led = Ledger.open(path, store="S1", terminal="T1")
    cards = []
    for i in range(10):
        m = led.enrol_member(name=f"member {i}", mobile=f"0912000{i:04d}", actor="mgr")
        cards.append(led.issue_card(member_id=m.id, number=f"63950000000001{i:02d}", technology="magstripe",
                                    actor="mgr").number)
    led.close()
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.ledger.poster", str(path), prefix, str(SALES_PER_PROCESS),
                          *cards], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for prefix in ("A", "B")
    ]
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
    led = Ledger.open(path, store="S1", terminal="T1")
    with led.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sales)).scalar_one() == 2 * SALES_PER_PROCESS
        seqs = [r[0] for r in conn.execute(select(entries.c.seq).order_by(entries.c.seq))]
        assert seqs == list(range(1, len(seqs) + 1))
        assert conn.execute(select(func.count()).select_from(outbox)
                            .where(outbox.c.kind == "entry")).scalar_one() == len(seqs)
        for prefix in ("A", "B"):
            n = conn.execute(select(func.count()).select_from(sales)
                             .where(sales.c.idempotency_key.like(f"{prefix}-%"))).scalar_one()
            assert n == SALES_PER_PROCESS
    assert verify(led.engine).ok
    led.close()
