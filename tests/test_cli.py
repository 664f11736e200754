"""The command line's promises: bad config is one line naming file and key, exit 2; no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from terminal_agent.cli import cli


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ('[agent]\nlocale = "de"\n', "agent.locale", "'fa' or 'en'"),
        ("[ledger]\npth = 1\n", "ledger.pth", "unknown key"),
        ("[backup]\nkeep = 0\n", "backup.keep", "greater than or equal to 1"),
        ("[backup]\ninterval_minutes = \"often\"\n", "backup.interval_minutes", "integer"),
        ('[[readers]]\nkind = "serial"\nid = "r1"\n', "readers[0].port", "missing"),
        ("[agent\n", "", "not valid TOML"),
    ],
)
def test_bad_config_names_file_and_key_and_exits_2(tmp_path: Path, text: str, key: str, hint: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    result = CliRunner().invoke(cli, ["config", "check", str(cfg)])
    assert result.exit_code == 2
    line = result.output.strip()
    assert line.count("\n") == 0
    assert str(cfg) in line and key in line and hint in line


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "db", "upgrade"])
    assert result.exit_code == 2 and "nope.toml" in result.output and "file not found" in result.output


def test_console_script_shows_no_traceback_on_user_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[agent]\nstore = ''\n")
    proc = subprocess.run([sys.executable, "-m", "terminal_agent", "config", "check", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "agent.store" in proc.stderr


def test_db_upgrade_creates_and_then_reports_current(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[agent]\ndata_dir = "d"\n')
    runner = CliRunner()
    first = runner.invoke(cli, ["--config", str(cfg), "db", "upgrade"])
    assert first.exit_code == 0 and "upgraded from empty" in first.output
    second = runner.invoke(cli, ["--config", str(cfg), "db", "upgrade"])
    assert second.exit_code == 0 and "already at revision" in second.output
    assert (tmp_path / "d" / "ledger.sqlite3").exists()


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "[verify] ok" in result.output
    assert "was replaced on" in result.output
    assert "sales 6, entries 14" in result.output and (tmp_path / "demo" / "report.xlsx").stat().st_size > 0
