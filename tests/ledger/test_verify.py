"""`ledger verify` catches edits made behind the ledger's back (invariants 3 and 9)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from ledger.sales import post_sale
from ledger.service import Ledger
from ledger.verify import verify
from terminal_agent.cli import cli
from tests.conftest import sale


def _filled(ledger: Ledger, card: str) -> list[str]:
    for i in range(4):
        post_sale(ledger, sale(f"s{i}", card, 4_000_000))
    with sqlite3.connect(ledger.engine.url.database) as con:
        return [r[0] for r in con.execute("SELECT id FROM entries ORDER BY terminal_code, seq")]


def _run_verify(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["ledger", "verify", "--file", str(path)])
    return result.exit_code, result.output


def test_clean_ledger_verifies(ledger: Ledger, ledger_path: Path, member_card: tuple[str, str]) -> None:
    _filled(ledger, member_card[1])
    code, out = _run_verify(ledger_path)
    assert code == 0 and "ok" in out


def test_edited_points_are_named(ledger: Ledger, ledger_path: Path, member_card: tuple[str, str]) -> None:
    ids = _filled(ledger, member_card[1])
    with sqlite3.connect(ledger_path) as con:
        con.execute("UPDATE entries SET points = points + 1000 WHERE id = ?", (ids[2],))
        con.execute("UPDATE balances SET points = points + 1000")
    report = verify(ledger.engine)
    assert not report.ok and ids[2] in report.problems[0] and "edited" in report.problems[0]
    code, out = _run_verify(ledger_path)
    assert code == 1 and ids[2] in out


def test_deleted_entry_is_found(ledger: Ledger, ledger_path: Path, member_card: tuple[str, str]) -> None:
    ids = _filled(ledger, member_card[1])
    with sqlite3.connect(ledger_path) as con:
        con.execute("DELETE FROM outbox WHERE entry_id = ?", (ids[1],))
        con.execute("DELETE FROM entries WHERE id = ?", (ids[1],))
    report = verify(ledger.engine)
    assert not report.ok and ids[2] in report.problems[0] and "missing" in report.problems[0]


def test_balance_that_disagrees_with_entries_is_found(ledger: Ledger, ledger_path: Path,
                                                      member_card: tuple[str, str]) -> None:
    _filled(ledger, member_card[1])
    with sqlite3.connect(ledger_path) as con:
        con.execute("UPDATE balances SET points = points + 7")
    report = verify(ledger.engine)
    assert not report.ok and member_card[0] in report.problems[0] and "add up to" in report.problems[0]


def test_rehashed_forgery_still_breaks_the_next_link(ledger: Ledger, ledger_path: Path,
                                                     member_card: tuple[str, str]) -> None:
    """Someone who edits an entry and recomputes its own hash still breaks the next entry's prev_hash."""
    from ledger.chain import entry_hash
    from ledger.schema import entries as t

    ids = _filled(ledger, member_card[1])
    with ledger.engine.connect() as conn:
        row = dict(conn.execute(t.select().where(t.c.id == ids[1])).one()._mapping)
    row["points"] += 500
    forged = entry_hash(row)
    with sqlite3.connect(ledger_path) as con:
        con.execute("UPDATE entries SET points = ?, hash = ? WHERE id = ?", (row["points"], forged, ids[1]))
        con.execute("UPDATE balances SET points = points + 500")
    report = verify(ledger.engine)
    assert not report.ok and ids[2] in report.problems[0] and "prev_hash" in report.problems[0]
