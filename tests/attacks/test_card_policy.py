"""Invariant 10: a payment card never becomes a member card, whichever door it comes
through. Each test offers bank card numbers where a member or gift card belongs and
checks the refusal, its masked wording, and that the number is written nowhere:
not in any table, not in the WAL, not in a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ledger.errors import CardOutOfRange, PaymentCardRefused
from ledger.sales import post_sale
from ledger.service import Ledger
from terminal_agent.runtime import Runtime
from tests.conftest import sale

BANK_CARDS = ("4111111111111111", "4761739001010010", "6037991234567893", "5500000000000004")


def assert_nowhere(folder: Path, *numbers: str) -> None:
    """No file of the ledger (database, WAL, shared memory) holds the number's digits."""
    for path in folder.iterdir():
        if path.is_file():
            data = path.read_bytes()
            for number in numbers:
                assert number.encode() not in data, f"{number[:6]}… found in {path.name}"


@pytest.mark.parametrize("number", BANK_CARDS)
def test_the_ledger_refuses_a_bank_card_as_a_member_card(ledger: Ledger, ledger_path: Path,
                                                         member_card: tuple[str, str], number: str) -> None:
    member_id, card = member_card
    with pytest.raises(PaymentCardRefused, match="bank card") as issued:
        ledger.issue_card(member_id=member_id, number=number, technology="magstripe", actor="mgr")
    assert number not in str(issued.value) and f"{number[:6]}******{number[-4:]}" in str(issued.value)
    with pytest.raises(PaymentCardRefused):
        ledger.replace_card(old_number=card, new_number=number, actor="mgr")
    with pytest.raises(PaymentCardRefused):
        post_sale(ledger, sale("k-bank", number, 100_000))
    with pytest.raises(PaymentCardRefused):
        ledger.find_member(number)
    with pytest.raises(PaymentCardRefused):
        ledger.gift_issue(number=number, amount=1000, actor="mgr")
    assert ledger.card(card).status == "active"  # the replacement did not half happen
    assert_nowhere(ledger_path.parent, number)


def test_numbers_outside_the_ranges_are_refused_at_issue(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, _ = member_card
    with pytest.raises(CardOutOfRange):
        ledger.issue_card(member_id=member_id, number="1234", technology="manual", actor="mgr")
    with pytest.raises(CardOutOfRange):
        ledger.issue_card(member_id=member_id, number="63950000000000021", technology="manual", actor="mgr")


def test_persian_digits_in_a_card_number_are_the_same_card(ledger: Ledger, member_card: tuple[str, str]) -> None:
    member_id, _ = member_card
    card = ledger.issue_card(member_id=member_id, number="۶۳۹۵ ۰۰۰۰ ۰۰۰۰ ۰۰۰۷", technology="manual", actor="mgr")
    assert card.number == "6395000000000007"
    assert ledger.find_member("٦٣٩٥٠٠٠٠٠٠٠٠٠٠٠٧").id == member_id
    assert post_sale(ledger, sale("k-fa", "۶۳۹۵۰۰۰۰۰۰۰۰۰۰۰۷", 500_000)).member_id == member_id


@pytest.mark.parametrize("number", BANK_CARDS)
def test_the_api_refuses_a_bank_card_at_every_route(client: TestClient, manager_headers: dict[str, str],
                                                    runtime: Runtime, number: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = client.post("/v1/members", json={"name": "Leila", "mobile": "09121112233"}, headers=manager_headers)
    member_id = r.json()["id"]
    r = client.post(f"/v1/members/{member_id}/cards", json={"number": number}, headers=manager_headers)
    assert r.status_code == 422 and r.json()["code"] == "bank_card", r.text
    assert number not in r.text and number[:6] in r.text
    ok = client.post(f"/v1/members/{member_id}/cards", json={"number": "6395000000000101"}, headers=manager_headers)
    assert ok.status_code == 201
    r = client.post("/v1/cards/6395000000000101/replace", json={"new_number": number}, headers=manager_headers)
    assert r.status_code == 422 and r.json()["code"] == "bank_card"
    line = {"sku": "A1", "name": "Rice", "category": "grocery", "quantity": 1, "unit_price": 100_000}
    for path, body in (("/v1/sales", {"idempotency_key": "k1", "card_number": number, "receipt_ref": "R1",
                                      "lines": [line]}),
                       ("/v1/quote", {"card_number": number, "lines": [line]})):
        r = client.post(path, json=body)
        assert r.status_code == 422 and r.json()["code"] == "bank_card", (path, r.text)
    r = client.get("/v1/members/lookup", params={"q": number})
    assert r.status_code == 422 and r.json()["code"] == "bank_card"
    r = client.post("/v1/gift-cards", json={"number": number, "amount": 1000}, headers=manager_headers)
    assert r.status_code == 422 and r.json()["code"] == "bank_card"
    # the test's own HTTP client logs the URLs it calls; the agent's loggers must not
    assert not [r for r in caplog.records if not r.name.startswith("httpx") and number in r.getMessage()]
    folder = Path(str(runtime.ledger.engine.url.database)).parent
    assert_nowhere(folder, number)


def test_ledger_verify_reports_a_stored_bank_card_masked(tmp_path: Path) -> None:
    """A ledger written by an older version (or edited by hand) that holds a bank
    card's number fails `ledger verify`, which names it masked only."""
    import sqlite3

    from click.testing import CliRunner

    from terminal_agent.cli import cli

    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[agent]\ndata_dir = "{tmp_path / "data"}"\n')
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="main", terminal="T1")
    m = led.enrol_member(name="Old", mobile="09120000001", actor="t")
    led.close()
    runner = CliRunner()
    ok = runner.invoke(cli, ["--config", str(cfg), "ledger", "verify"])
    assert ok.exit_code == 0, ok.output
    raw = sqlite3.connect(tmp_path / "data" / "ledger.sqlite3")
    raw.execute("INSERT INTO cards (number, member_id, technology, status, issued_at, issued_by) "
                "VALUES ('4111111111111111', ?, 'magstripe', 'active', '2026-03-01T09:00:00.000000Z', 't')", (m.id,))
    raw.commit()
    raw.close()
    bad = runner.invoke(cli, ["--config", str(cfg), "ledger", "verify"])
    assert bad.exit_code == 1
    assert "411111******1111" in bad.output and "bank card" in bad.output and "4111111111111111" not in bad.output
