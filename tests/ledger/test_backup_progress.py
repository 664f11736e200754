"""A backup tells its progress in pages copied; `loyalty-agent backup now` shows it
(one summary line when stderr is not a terminal)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from ledger import backup
from ledger.service import Ledger
from terminal_agent.cli import cli
from tests.progress_recorder import Recorder


def _big_ledger(path: Path) -> None:
    led = Ledger.open(path, store="S1")
    for i in range(300):
        led.enrol_member(name=f"Member {i} " + "x" * 150, mobile=f"0912{i:07d}", actor="mgr")
    led.close()


def test_a_backup_reports_every_page_it_copies(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.sqlite3"
    _big_ledger(path)
    monkeypatch.setattr(backup, "BACKUP_PAGES_PER_STEP", 8)  # several steps, so several reports
    pages = sqlite3.connect(path).execute("PRAGMA page_count").fetchone()[0]
    seen = Recorder()
    backup.backup_now(path, tmp_path / "b", keep=2, progress=seen)
    assert seen.total == pages and seen.done == pages and seen.advances > 1


def test_backup_now_prints_a_summary_line_off_a_terminal(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[agent]\ndata_dir = "data"\nstore = "S1"\n[backup]\nkeep = 3\n')
    _big_ledger(tmp_path / "data" / "ledger.sqlite3")
    out = CliRunner().invoke(cli, ["--config", str(cfg), "backup", "now"])
    assert out.exit_code == 0, out.output
    assert "backup (pages): " in out.output and " done in " in out.output
    assert "backup written: " in out.output
