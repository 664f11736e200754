"""Data at rest (issue: any local user read names, mobiles, card numbers and PIN
hashes): the data folder is 0700 and every file in it 0600, created that way and
fixed at start; backups leave nothing behind but their own private files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from ledger import backup
from ledger.sales import post_sale
from terminal_agent.config import parse_config
from terminal_agent.ledgers import open_ledger
from tests.conftest import sale


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_old_open_data_folder_is_made_private_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    cfg = parse_config({"agent": {"data_dir": str(data)}}, "t.toml", tmp_path)
    old_umask = os.umask(0o022)  # as an earlier version ran: everything world-readable
    try:
        led = open_ledger(cfg)
        led.close()
        (data / "api-token").write_text("x" * 32)
        os.chmod(data / "api-token", 0o644)
        assert mode(data / "ledger.sqlite3") & 0o044  # readable by others before the fix
        led = open_ledger(cfg)
        try:
            assert mode(data) == 0o700
            for name in ("ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm", "api-token"):
                assert mode(data / name) & 0o077 == 0, name
        finally:
            led.close()
    finally:
        os.umask(old_umask)


def test_backups_are_private_and_leave_no_sidecars_behind(tmp_path: Path, ledger, ledger_path: Path,  # type: ignore[no-untyped-def]
                                                          member_card: tuple[str, str]) -> None:
    post_sale(ledger, sale("s1", member_card[1], 1_000_000))
    old_umask = os.umask(0o022)
    try:
        for _ in range(9):
            backup.backup_now(ledger_path, tmp_path / "b", keep=3)
    finally:
        os.umask(old_umask)
    files = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert len(files) == 3 and all(f.endswith(".sqlite3") for f in files), files
    assert all(mode(tmp_path / "b" / f) == 0o600 for f in files)


def test_rotation_removes_what_a_crashed_backup_left(tmp_path: Path) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    for name in ("ledger-20260101T000000000000Z.partial", "ledger-20260101T000000000000Z.partial-wal",
                 "ledger-20260101T000000000000Z.partial-shm"):
        (folder / name).write_bytes(b"x")
        os.utime(folder / name, (0, 0))  # long ago: its backup died
    (folder / "ledger-20260102T000000000000Z.partial").write_bytes(b"x")  # being written right now
    backup.rotate(folder, keep=3)
    assert [p.name for p in folder.iterdir()] == ["ledger-20260102T000000000000Z.partial"]


def test_the_cli_creates_files_private_whatever_the_shells_umask(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[agent]\ndata_dir = "{tmp_path / "data"}"\n')
    env = {**os.environ, "LOYALTY_AGENT_CONFIG": str(cfg)}
    script = "import os, sys; os.umask(0o022); from terminal_agent.cli import main; main(sys.argv[1:])"
    subprocess.run([sys.executable, "-c", script, "backup", "now"], env=env, check=False, capture_output=True,
                   timeout=120)
    subprocess.run([sys.executable, "-c", script, "db", "upgrade"], env=env, check=True, capture_output=True,
                   timeout=120)
    subprocess.run([sys.executable, "-c", script, "backup", "now"], env=env, check=True, capture_output=True,
                   timeout=120)
    made = [p for p in (tmp_path / "data").rglob("*")]
    assert made and all(mode(p) & 0o077 == 0 for p in made), [(p.name, oct(mode(p))) for p in made]


def test_the_systemd_units_keep_files_private_and_bound_descriptors() -> None:
    units = list((Path(__file__).parents[2] / "deploy").glob("*.service"))
    assert len(units) == 2
    for unit in units:
        text = unit.read_text()
        assert "UMask=0077" in text and "LimitNOFILE=" in text, unit
