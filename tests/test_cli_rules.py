"""`loyalty-agent rules ...` on a real ledger file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from ledger.service import Ledger
from terminal_agent.cli import cli


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[agent]\ndata_dir = "d"\nlocale = "en"\n')
    return cfg


def test_rules_check_reports_the_key_of_a_bad_table(tmp_path: Path) -> None:
    good = CliRunner().invoke(cli, ["rules", "check", str(Path("ledger/rules/default.toml").resolve())])
    assert good.exit_code == 0 and "ok (Default loyalty table)" in good.output
    bad = tmp_path / "r.toml"
    bad.write_text("[earn]\nrial_per_point = -5\n")
    result = CliRunner().invoke(cli, ["rules", "check", str(bad)])
    assert result.exit_code == 2
    assert "r.toml: earn.rial_per_point: must be between 1" in result.output
    assert "Traceback" not in result.output


def test_rules_explain_prints_each_rule_and_the_total(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    led = Ledger.open(tmp_path / "d" / "ledger.sqlite3", store="main", terminal="T1")
    m = led.enrol_member(name="Reza", mobile="09121112233", actor="mgr")
    led.issue_card(member_id=m.id, number="6395000000000009", technology="magstripe", actor="mgr")
    led.close()
    basket = tmp_path / "b.json"
    basket.write_text(json.dumps({"lines": [
        {"sku": "rice", "name": "Rice 10kg", "category": "grocery", "quantity": 2, "unit_price": 1_500_000},
        {"sku": "cig", "name": "Cigarettes", "category": "tobacco", "quantity": 1, "unit_price": 800_000}]}))
    result = CliRunner().invoke(cli, ["--config", str(cfg), "rules", "explain", "--member", "09121112233",
                                      "--basket", str(basket)])
    assert result.exit_code == 0, result.output
    assert "earn" in result.output and "category tobacco earns nothing" in result.output
    assert re.search(r"^total\s+300\s+points$", result.output, re.M), result.output
    fa = CliRunner().invoke(cli, ["--config", str(cfg), "rules", "explain", "--member", "6395000000000009",
                                  "--basket", str(basket), "--lang", "fa"])
    assert fa.exit_code == 0 and "امتیاز" in fa.output
    basket.write_text('{"lines": [{"sku": "x", "unit_price": 1.5}]}')
    bad = CliRunner().invoke(cli, ["--config", str(cfg), "rules", "explain", "--member", "09121112233",
                                   "--basket", str(basket)])
    assert bad.exit_code != 0 and "line 1" in bad.output and "whole number" in bad.output
    unknown = CliRunner().invoke(cli, ["--config", str(cfg), "rules", "explain", "--member", "09350000000",
                                       "--basket", str(Path("/nonexistent.json"))])
    assert unknown.exit_code != 0 and "Traceback" not in unknown.output


def test_expiry_and_review_commands_run_on_an_empty_ledger(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    runner = CliRunner()
    assert "0 member(s), 0 points expired" in runner.invoke(cli, ["--config", str(cfg), "rules", "expire"]).output
    assert "0 member(s)" in runner.invoke(cli, ["--config", str(cfg), "rules", "expiring"]).output
    forced = runner.invoke(cli, ["--config", str(cfg), "rules", "review-tiers", "--force"])
    assert forced.exit_code == 0 and "0 tier change(s)" in forced.output
