from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import backup
from ledger.errors import BackupError
from ledger.sales import post_sale
from ledger.service import Ledger
from terminal_agent.cli import cli
from terminal_agent.runlock import RunLock
from tests.conftest import sale


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[agent]\ndata_dir = "data"\nstore = "S1"\n[backup]\nkeep = 3\n')
    return cfg


def test_backup_is_a_verified_copy_and_rotates(tmp_path: Path, ledger: Ledger, ledger_path: Path,
                                               member_card: tuple[str, str]) -> None:
    post_sale(ledger, sale("s1", member_card[1], 1_000_000))
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    made = [backup.backup_now(ledger_path, tmp_path / "b", keep=3, at=t0 + timedelta(hours=i)) for i in range(5)]
    left = backup.list_backups(tmp_path / "b")
    assert left == [m.path for m in made[2:]]
    assert made[-1].entries > 0
    with sqlite3.connect(left[-1]) as con:
        assert con.execute("SELECT count(*) FROM entries").fetchone()[0] == made[-1].entries
    assert not list((tmp_path / "b").glob("*.partial"))


def test_restore_refuses_a_corrupt_or_foreign_file(tmp_path: Path, ledger_path: Path, ledger: Ledger) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not a readable SQLite database"):
        backup.restore(junk, ledger_path)
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(BackupError, match="not a loyalty ledger"):
        backup.restore(other, ledger_path)


def test_restore_refuses_a_backup_that_fails_verify(tmp_path: Path, ledger: Ledger, ledger_path: Path,
                                                    member_card: tuple[str, str]) -> None:
    post_sale(ledger, sale("s1", member_card[1], 1_000_000))
    info = backup.backup_now(ledger_path, tmp_path / "b", keep=3)
    with sqlite3.connect(info.path) as con:
        con.execute("UPDATE entries SET points = points + 1")
    with pytest.raises(BackupError, match="fails ledger verify"):
        backup.restore(info.path, ledger_path)


def test_cli_backup_and_restore_round_trip(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    data = tmp_path / "data"
    led = Ledger.open(data / "ledger.sqlite3", store="S1")
    m = led.enrol_member(name="A", mobile="09120000011", actor="mgr")
    led.issue_card(member_id=m.id, number="6395000000000011", technology="magstripe", actor="mgr")
    post_sale(led, sale("s1", "6395000000000011", 2_000_000))
    balance_at_backup = led.balance(m.id)
    runner = CliRunner()
    out = runner.invoke(cli, ["--config", str(cfg), "backup", "now"])
    assert out.exit_code == 0, out.output
    post_sale(led, sale("s2", "6395000000000011", 9_000_000))
    assert led.balance(m.id) != balance_at_backup
    led.close()
    file = backup.list_backups(data / "backups")[-1]
    with RunLock(data):
        refused = runner.invoke(cli, ["--config", str(cfg), "backup", "restore", str(file), "--yes"])
    assert refused.exit_code == 1 and "another loyalty agent" in refused.output
    done = runner.invoke(cli, ["--config", str(cfg), "backup", "restore", str(file), "--yes"])
    assert done.exit_code == 0, done.output
    again = Ledger.open(data / "ledger.sqlite3", store="S1")
    assert again.balance(m.id) == balance_at_backup
    again.close()
    assert list(data.glob("ledger.sqlite3.before-restore-*"))


def test_backups_after_the_clock_stepped_back_keep_the_newest(tmp_path: Path, ledger: Ledger,
                                                              ledger_path: Path) -> None:
    """Backups were named and rotated by the clock: after a step back the newest one
    sorted oldest, rotation deleted it, and backup_now failed (found by the simulation)."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    first = backup.backup_now(ledger_path, tmp_path / "b", keep=1, at=t0)
    ledger.enrol_member(name="After", mobile="09120000009", actor="t")
    second = backup.backup_now(ledger_path, tmp_path / "b", keep=1, at=t0 - timedelta(hours=5))
    assert backup.list_backups(tmp_path / "b") == [second.path] and not first.path.exists()
    with sqlite3.connect(second.path) as con:
        assert con.execute("SELECT count(*) FROM members").fetchone()[0] == 1
