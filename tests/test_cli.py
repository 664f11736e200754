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


@pytest.mark.parametrize("missing", ["tls_cert", "tls_key"])
def test_config_check_refuses_tls_files_that_do_not_exist(tmp_path: Path, missing: str) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    (cert if missing == "tls_key" else key).write_text("-----BEGIN nothing-----\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[api]\ntls_cert = "{cert.name}"\ntls_key = "{key.name}"\n')
    result = CliRunner().invoke(cli, ["config", "check", str(cfg)])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and f"api.{missing}" in line and str(tmp_path / f"{missing[4:]}.pem") in line


def test_config_check_refuses_a_cert_and_key_that_are_not_a_pem_pair(tmp_path: Path) -> None:
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[api]\ntls_cert = "{cert}"\ntls_key = "{cert}"\n')  # the certificate twice: no key
    result = CliRunner().invoke(cli, ["config", "check", str(cfg)])
    assert result.exit_code == 2 and "api.tls_key" in result.output and result.output.strip().count("\n") == 0
    cfg.write_text(f'[api]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    result = CliRunner().invoke(cli, ["config", "check", str(cfg)])
    assert result.exit_code == 0, result.output


def test_users_add_takes_no_pin_on_the_command_line_but_reads_it_from_stdin(tmp_path: Path) -> None:
    from ledger.service import Ledger
    from ledger.users import authenticate
    from terminal_agent.config import load_config
    from terminal_agent.runtime import pin_key

    cfg = tmp_path / "config.toml"
    cfg.write_text('[agent]\ndata_dir = "data"\n')
    refused = CliRunner().invoke(cli, ["--config", str(cfg), "users", "add", "mina", "--role", "manager",
                                       "--pin", "654321"])
    assert refused.exit_code == 2 and "No such option" in refused.output
    short = CliRunner().invoke(cli, ["--config", str(cfg), "users", "add", "mina", "--role", "manager"],
                               input="4321\n")
    assert short.exit_code != 0 and "6 to 12 digits" in short.output  # managers need 6 digits
    added = CliRunner().invoke(cli, ["--config", str(cfg), "users", "add", "mina", "--role", "manager"],
                               input="654321\n")
    assert added.exit_code == 0, added.output
    assert "654321" not in added.output
    changed = CliRunner().invoke(cli, ["--config", str(cfg), "users", "set-pin", "mina"], input="112233\n")
    assert changed.exit_code == 0, changed.output
    config = load_config(cfg)
    led = Ledger.open(config.ledger_path, store="main", terminal="T1")
    try:
        assert authenticate(led, username="mina", pin="112233", pin_key=pin_key(config)).role == "manager"
    finally:
        led.close()
    assert (config.data_dir / "pin-key").stat().st_mode & 0o777 == 0o600


def test_a_terminal_configured_for_another_store_than_its_enrolment_is_told_so(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The hub refuses members enrolled for another store than the terminal's: the
    terminal says so plainly instead of meeting 403 on every sync."""
    import json

    from click.testing import CliRunner

    from terminal_agent.cli import cli

    data = tmp_path / "data"
    data.mkdir()
    (data / "hub.json").write_text(json.dumps({"hub_url": "http://127.0.0.1:9", "terminal": "T1", "store": "tehran-1",
                                               "secret": "s" * 40}))
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[agent]\ndata_dir = "{data}"\nstore = "main"\n')
    out = CliRunner().invoke(cli, ["--config", str(cfg), "sync", "status"])
    assert out.exit_code == 1 and "enrolled for store 'tehran-1'" in out.output and 'store = "tehran-1"' in out.output


def test_status_says_how_many_pre_printed_cards_are_left_to_issue(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from ledger import hubsync
    from ledger.db import Raw
    from terminal_agent.cli import cli
    from terminal_agent.ledgers import open_ledger
    from terminal_agent.config import load_config

    cfg_path = tmp_path / "config.toml"
    cfg_path.write_text(f'[agent]\ndata_dir = "{tmp_path / "data"}"\nstore = "S1"\n')
    (tmp_path / "data").mkdir()
    led = open_ledger(load_config(cfg_path))
    with led.write("as a sync brings it") as conn:
        hubsync.take_card_stock(Raw(conn), [{"number": f"639500000000010{n}", "batch": "B1", "status": "assigned"}
                                            for n in range(3)], led.card_policy)
        hubsync.take_card_stock_required(Raw(conn), True)
    led.close()
    out = CliRunner().invoke(cli, ["--config", str(cfg_path), "status"])
    assert "stock:    3 pre-printed cards to issue (only these may be issued)" in out.output, out.output
