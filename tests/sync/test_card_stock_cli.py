"""`loyalty-hub cards stock ...` and `cards history` as head office runs them (the real
command line in a process, on SQLite and PostgreSQL): a refused batch is one clear
message listing the refused numbers masked, exit 1, no traceback, nothing imported;
a text file and an .xlsx workbook are imported; assign, counts and history print what
happened; `verify` names a card issued outside stock while the chain required it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sync.hub.app import create_hub_app
from sync.hub.config import parse_hub_config
from sync.hub.db import create_hub_engine, upgrade
from sync.hub.service import Hub
from sync.hub.stockfile import check_digit
from tests.attacks.forge import Forger, card_row, member_row

CLI_TIMEOUT_S = 60


def card(serial: int) -> str:
    body = "6395" + str(serial).zfill(11)
    return body + check_digit(body)


def _cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync.hub", "--db", db, *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S)


def _ok(db: str, *args: str) -> str:
    out = _cli(db, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.slow
def test_head_office_imports_assigns_counts_and_reads_a_cards_story(hub_url: str, tmp_path: Path) -> None:
    import openpyxl

    ranges = _cli(hub_url, "cards", "ranges", "set", "6395:16:luhn")
    assert ranges.returncode == 0 and ranges.stdout == "member card ranges: 6395:16:luhn\n"
    assert ranges.stderr.strip() == ("warning: the member range 6395 holds Shetab 639599: a number there with a "
                                     "valid check digit is refused as a bank card; print no member cards there")
    _ok(hub_url, "terminals", "add", "--store", "S1")
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{card(1)}\n4111111111111111\n\n# a comment\n{card(1)}\n")
    out = _cli(hub_url, "cards", "stock", "import", "--batch", "B1", "--file", str(bad), "--by", "ho")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "2 of 3 number(s) refused, nothing was imported" in out.stderr
    assert "line 2: this is a bank card (Visa 411111******1111)" in out.stderr and "line 5:" in out.stderr
    assert "4111111111111111" not in out.stderr + out.stdout

    good = tmp_path / "cards.txt"
    good.write_text("\n".join(card(i) for i in range(1, 6)) + "\n")
    out = _cli(hub_url, "cards", "stock", "import", "--batch", "B1", "--file", str(good), "--by", "ho")
    assert out.returncode == 0 and "batch B1: 5 card(s) in stock at head office" in out.stdout
    # not a terminal (a cron job's log): one summary line a stage on stderr, no bar
    assert "batch B1: checking against the stock and the cards: 5 done in" in out.stderr
    assert "batch B1: writing: 5 done in" in out.stderr and "\x1b[" not in out.stderr
    book = openpyxl.Workbook()
    for i in range(6, 9):
        book.active.append([card(i)])
    book.save(tmp_path / "cards.xlsx")
    assert "3 card(s)" in _ok(hub_url, "cards", "stock", "import", "--batch", "B2", "--file",
                              str(tmp_path / "cards.xlsx"), "--by", "ho")
    assert "4 card(s)" in _ok(hub_url, "cards", "stock", "import", "--batch", "B3", "--first", card(20), "--last",
                              card(23), "--by", "ho")
    out = _cli(hub_url, "cards", "stock", "import", "--batch", "B4", "--by", "ho")
    assert out.returncode == 2 and "give --first and --last, or --file" in out.stderr

    out = _cli(hub_url, "cards", "stock", "assign", "B1", "--store", "S1", "--count", "2", "--by", "ho", "--quiet")
    assert out.returncode == 0 and f"2 card(s) of batch B1 assigned to store S1 ({card(1)} to {card(2)})" in out.stdout
    assert out.stderr == ""  # --quiet: no summary line either
    out = _cli(hub_url, "cards", "stock", "assign", "B1", "--store", "S1", "--count", "9")
    assert out.returncode == 1 and "has 3 card(s) left at head office, not 9" in out.stderr
    counts = json.loads(_ok(hub_url, "cards", "stock", "counts", "--json"))
    assert {r["where"]: r["in_stock"] for r in counts["counts"]} == {"head office": 10, "S1": 2}
    assert [(b["name"], b["cards"], b["assigned"]) for b in counts["batches"]] == \
        [("B1", 5, 2), ("B2", 3, 0), ("B3", 4, 0)]
    table = _ok(hub_url, "cards", "stock", "counts", "--store", "S1")
    assert table.splitlines()[1].split() == ["S1", "2", "0", "0", "0", "0", "0"]

    history = _ok(hub_url, "cards", "history", card(1))
    assert "imported" in history and "batch B1" in history and "to store S1" in history and "by ho" in history
    out = _cli(hub_url, "cards", "history", "4111111111111111")
    assert out.returncode == 2 and "bank card" in out.stderr and "4111111111111111" not in out.stderr
    assert _cli(hub_url, "cards", "history", card(99)).returncode == 1

    # a till issues a card outside its stock while the chain requires it ([cards] stock_required)
    engine = create_hub_engine(hub_url)
    upgrade(engine)
    hub = Hub(engine)
    config = parse_hub_config({"cards": {"stock_required": True}}, "hub.toml", tmp_path)
    with TestClient(create_hub_app(hub, config), base_url="http://hub.test") as http:
        till = Forger(hub, http, "TA", "S1")
        answer = till.send(protocol=2, members=[member_row("m1", "S1")], cards=[card_row(card(50), "m1")])
        assert answer.status_code == 200 and answer.json()["card_stock_required"] is True
        assert [r["number"] for r in answer.json()["card_stock"]] == [card(1), card(2)]
    engine.dispose()
    out = _cli(hub_url, "verify")
    assert out.returncode == 1 and "1 card(s) were issued outside their store's stock" in out.stderr
    assert "issued outside stock" in _ok(hub_url, "cards", "history", card(50))
