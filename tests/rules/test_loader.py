"""The loyalty table file: every mistake is named by file, rule and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ledger.rules import InvalidRuleset, default_ruleset, load_ruleset, parse_ruleset
from tests.rules.tables import BASE, table

ROOT = Path(__file__).resolve().parents[2]


def test_the_built_in_table_loads_and_has_a_stable_hash() -> None:
    a = default_ruleset()
    b = load_ruleset(ROOT / "ledger" / "rules" / "default.toml")
    assert a.hash == b.hash and len(a.hash) == 64
    assert [t.id for t in a.tiers] == ["bronze", "silver", "gold"]
    assert table().hash != table(earn={"rial_per_point": 20_000}).hash


BAD = [
    ({"earn": {"rial_per_point": 0}}, "earn.rial_per_point", "between 1 and"),
    ({"earn": {"rial_per_point": 1.5}}, "earn.rial_per_point", "whole number"),
    ({"earn": {"rial_per_ponit": 1}}, "earn.rial_per_ponit", "not a known key"),
    ({"earn": {"categories": [{"category": "x", "multiplier_percent": -1}]}}, "earn.categories[0].multiplier_percent",
     "between 0"),
    ({"seasons": [{"id": "s1", "from": "1405-13-01", "to": "1405-01-02"}]}, "season 's1'.from", "Jalali"),
    ({"seasons": [{"id": "s1", "from": "1405-01-10", "to": "1405-01-02"}]}, "season 's1'.to", "before"),
    ({"seasons": [{"id": "s1", "from": "1405-01-01", "to": "1405-01-10"},
                  {"id": "s2", "from": "2026-03-25", "to": "2026-04-10"}]}, "season 's2'.from", "overlaps season 's1'"),
    ({"offers": [{"id": "o1", "kind": "come_back", "credit_percent": 10}]}, "offer 'o1'.within_days", "required"),
    ({"offers": [{"id": "o1", "kind": "teleport"}]}, "offer 'o1'.kind", "one of spend_up"),
    ({"offers": [{"id": "o1", "kind": "win_back", "inactive_days": 9, "points": 5, "tiers": ["platinum"]}]},
     "offer 'o1'.tiers", "'platinum' is not a tier"),
    ({"redemption": {"max_share_percent": 101}}, "redemption.max_share_percent", "between 0 and 100"),
    ({"caps": {"points_per_day": 5}}, "caps.points_per_day", "not a known key"),
]


@pytest.mark.parametrize("change,where,message", BAD, ids=[b[1] for b in BAD])
def test_errors_name_the_rule_and_the_key(change: dict, where: str, message: str) -> None:
    with pytest.raises(InvalidRuleset) as err:
        table(**change)
    assert err.value.where == where and message in str(err.value)
    assert str(err.value).startswith("test.toml: ")


def test_tier_thresholds_must_rise_and_start_at_zero() -> None:
    levels = BASE["tiers"]["levels"]
    with pytest.raises(InvalidRuleset, match="tier 'silver'.threshold: must be above"):
        table(tiers={"levels": [levels[0], {**levels[1], "threshold": 0}]})
    with pytest.raises(InvalidRuleset, match="the first tier is the entry tier"):
        table(tiers={"levels": [{**levels[1]}]})


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidRuleset, match="cannot read"):
        load_ruleset(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[earn\n")
    with pytest.raises(InvalidRuleset, match="bad.toml: is not valid TOML"):
        load_ruleset(bad)
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidRuleset, match="not UTF-8"):
        load_ruleset(bad)


def test_unquoted_toml_dates_are_read_as_written(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text((ROOT / "ledger/rules/default.toml").read_text(encoding="utf-8").replace(
        'from = "1405-01-01"', "from = 1405-01-01"), encoding="utf-8")
    assert load_ruleset(path).seasons[0].start.isoformat() == "2026-03-21"


def test_the_evaluation_is_pure() -> None:
    """No database, HTTP, serial or clock module is loaded by the engine."""
    code = (
        "import sys, ledger.rules\n"
        "bad = [m for m in ('sqlalchemy', 'httpx', 'serial', 'smartcard', 'click', 'fastapi', 'time_machine') "
        "if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
    import inspect

    import ledger.rules.engine as engine

    import re

    source = inspect.getsource(engine)
    for call in (r"\.now\(", r"\.today\(", r"\btime\.time\(", r"(?<![\w.])open\(", r"\brandom\."):
        assert re.search(call, source) is None, call


def test_parse_accepts_only_tables() -> None:
    with pytest.raises(InvalidRuleset, match="earn: must be a table"):
        parse_ruleset({**BASE, "earn": 5}, "x.toml")
