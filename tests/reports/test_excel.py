"""The Excel export on a real ledger file, read back with openpyxl: every row, integers
as integers, Persian right to left with Jalali times, cards masked, the period kept,
and every bad request refused with nothing left behind."""

from __future__ import annotations

import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from ledger.errors import ValidationFailed
from ledger.reports.excel import Period, export
from ledger.sales import post_sale, refund
from ledger.service import Ledger
from ledger.types import RefundRequest
from terminal_agent.cli import cli
from tests.conftest import START, Clock, sale
from tests.reports.libreoffice import first_sheet_as_csv

CARD_A, CARD_B = "6395000000000001", "6395000000000002"


@pytest.fixture
def shop(ledger: Ledger, clock: Clock) -> Ledger:
    """Two members: A buys three times over two days and returns one sale, B never buys."""
    a = ledger.enrol_member(name="Sara Ahmadi", mobile="09121110001", actor="mgr")
    ledger.issue_card(member_id=a.id, number=CARD_A, technology="magstripe", actor="mgr")
    b = ledger.enrol_member(name="Reza Karimi", mobile="09121110002", actor="mgr")
    ledger.issue_card(member_id=b.id, number=CARD_B, technology="magstripe", actor="mgr")
    first = post_sale(ledger, sale("s1", CARD_A, 1_000_000))
    post_sale(ledger, sale("s2", CARD_A, 2_500_000))
    clock.advance(days=1)
    post_sale(ledger, sale("s3", CARD_A, 4_000_000))
    refund(ledger, RefundRequest("r1", first.sale_id, None))
    return ledger


def rows(path: Path, sheet: int) -> list[tuple]:  # type: ignore[type-arg]
    ws = openpyxl.load_workbook(path).worksheets[sheet]
    return [r for r in ws.iter_rows(values_only=True) if any(v is not None for v in r)]


def test_every_sheet_in_english(shop: Ledger, ledger_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "club.xlsx"
    written = export(ledger_path, out, locale="en", now=START + timedelta(days=2))
    # entries: two sign-up bonuses, three earns, the refund's reversal
    assert written == {"kpis": 13, "members": 2, "sales": 4, "entries": 6, "rfm": 2, "card_issuance": 1,
                       "sale_lines": 4, "cards_out_of_use": 0, "redemptions": 0, "gift_cards": 0}
    kpis = dict(rows(out, 0)[2:])  # under the store's note and the header
    assert kpis["Sales"] == 3 and kpis["Revenue (Rial)"] == 7_500_000 and kpis["Refunds (Rial)"] == 1_000_000
    assert kpis["Average basket (Rial)"] == 2_500_000 and kpis["Members enrolled here"] == 2
    assert kpis["Points outstanding from this store"] == sum(shop.balance(m) for m in (
        shop.find_member(CARD_A).id, shop.find_member(CARD_B).id))
    members = {r[1]: r for r in rows(out, 1)[2:]}
    assert members["Sara Ahmadi"][7] == shop.balance(shop.find_member(CARD_A).id)
    enrolled = members["Sara Ahmadi"][5]  # an Excel date, in the store's time (UTC+3:30)
    assert isinstance(enrolled, datetime) and enrolled.replace(second=0, microsecond=0) == datetime(2026, 3, 1, 12, 30)
    assert members["Reza Karimi"][4] == "No purchase yet"
    sales = rows(out, 2)[1:]
    assert sales[0][0] == "Time" and [r[1] for r in sales[1:]] == ["sale", "sale", "sale", "refund"]
    assert all(isinstance(r[0], datetime) and r[5] == "…0001" and isinstance(r[6], int) for r in sales[1:])
    entries = rows(out, 3)[2:]
    assert [r[2] for r in entries] == list(range(1, 7)) and all(isinstance(r[5], int) for r in entries)
    rfm = {r[1]: r for r in rows(out, 4)[2:]}
    assert rfm["Sara Ahmadi"][3:5] == (3, 6_500_000) and rfm["Sara Ahmadi"][5:8] == (5, 5, 5)
    assert rfm["Reza Karimi"][8] == "No purchase yet"
    issued = rows(out, 5)[2:]  # under the store's note and the header
    assert issued == [(datetime(2026, 3, 1), "mgr", 2, 0, 0, 0)]
    lines = rows(out, 6)[2:]
    assert [r[12] for r in lines] == [1_000_000, 2_500_000, 4_000_000, 1_000_000]
    assert sum(r[13] for r in lines) == sum(r[5] for r in entries if r[3] in ("earn", "reverse"))
    assert all(ws.cell(1, 1).value == "store S1 only" for ws in openpyxl.load_workbook(out).worksheets)
    # a card number never leaves the till whole
    with zipfile.ZipFile(out) as z:
        assert not any(CARD_A.encode() in z.read(n) or CARD_B.encode() in z.read(n) for n in z.namelist())


def test_a_sheet_past_its_rows_goes_on_in_the_next(shop: Ledger, ledger_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "long.xlsx"
    written = export(ledger_path, out, sheets=["entries", "sales"], locale="en", rows_max=4)
    book = openpyxl.load_workbook(out)
    assert [ws.title for ws in book.worksheets] == ["Entries", "Entries (2)", "Sales"]
    entries = rows(out, 0)[2:] + rows(out, 1)[2:]  # each part under the note and the header
    assert written == {"entries": 6, "sales": 4} and [r[2] for r in entries] == list(range(1, 7))


def test_persian_sheets_read_right_to_left_with_jalali_times(shop: Ledger, ledger_path: Path,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "club-fa.xlsx"
    export(ledger_path, out, sheets=["sales", "rfm"], locale="fa")
    book = openpyxl.load_workbook(out)
    assert [ws.title for ws in book.worksheets] == ["فروش", "RFM"]
    assert all(ws.sheet_view.rightToLeft for ws in book.worksheets)
    assert rows(out, 0)[0][0] == "فقط فروشگاه S1"
    first = rows(out, 0)[2]
    assert first[0] == "1404/12/10 12:30"  # 2026-03-01 09:00 UTC, in Tehran, in the Jalali calendar
    assert first[1] == datetime(2026, 3, 1, 12, 30)  # and beside it a real date cell, to sort and filter by
    assert rows(out, 0)[1][:2] == ("زمان (شمسی)", "زمان") and rows(out, 0)[1][7] == "مبلغ (ریال)"


def test_a_period_keeps_only_its_days(shop: Ledger, ledger_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "day2.xlsx"
    day2 = START + timedelta(days=1) - timedelta(hours=9)
    written = export(ledger_path, out, sheets=["sales", "entries"], locale="en",
                     period=Period(day2, day2 + timedelta(days=1)))
    assert written == {"sales": 2, "entries": 2}  # the third sale and the refund, with their entries


def test_bad_requests_are_refused_and_leave_no_file(shop: Ledger, ledger_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.xlsx"
    with pytest.raises(ValidationFailed, match="no sheet called 'cards'"):
        export(ledger_path, out, sheets=["members", "cards"])
    with pytest.raises(ValidationFailed, match="folder .* does not exist"):
        export(ledger_path, tmp_path / "nowhere" / "x.xlsx")
    with pytest.raises(ValidationFailed, match="start must come before"):
        export(ledger_path, out, period=Period(START, START))
    with pytest.raises(ValidationFailed, match="no ledger at"):
        export(tmp_path / "missing.sqlite3", out)
    not_a_ledger = tmp_path / "notes.sqlite3"
    not_a_ledger.write_text("hello")
    with pytest.raises(ValidationFailed, match="cannot read"):
        export(not_a_ledger, out)
    assert sorted(p.name for p in tmp_path.iterdir() if "x.xlsx" in p.name) == []  # nothing half written


def test_the_command_takes_jalali_days_and_says_what_it_wrote(shop: Ledger, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[agent]\ndata_dir = "{tmp_path}"\nlocale = "en"\n[ledger]\npath = "ledger.sqlite3"\n')
    out = tmp_path / "march.xlsx"
    runner = CliRunner()
    ok = runner.invoke(cli, ["--config", str(cfg), "report", "export", str(out), "--sheets", "sales",
                             "--from", "1404-12-10", "--to", "1404-12-10"])
    assert ok.exit_code == 0, ok.output
    assert "sales 2 rows" in ok.output and out.exists()  # 10 Esfand 1404 (1 March 2026): the first two sales
    assert "report march.xlsx: 2 done in" in ok.output  # the progress's summary line (not a terminal)
    bad = runner.invoke(cli, ["--config", str(cfg), "report", "export", str(out), "--from", "1404-13-40"])
    assert bad.exit_code == 2 and "--from" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(cli, ["--config", str(cfg), "report", "export", str(out), "--sheets", "nope"])
    assert bad.exit_code != 0 and "no sheet called 'nope'" in bad.output


@pytest.mark.parametrize("utc,persian,english", [
    ("2026-03-01T20:29:59.000000Z", "1404/12/10 23:59", datetime(2026, 3, 1, 23, 59, 59)),
    ("2026-03-01T20:30:00.000000Z", "1404/12/11 00:00", datetime(2026, 3, 2, 0, 0)),  # Tehran's midnight
    ("2026-03-20T21:00:00.000000Z", "1405/01/01 00:30", datetime(2026, 3, 21, 0, 30)),  # Nowruz
])
def test_times_are_the_stores_local_time(ledger: Ledger, ledger_path: Path, clock: Clock, tmp_path: Path,
                                         utc: str, persian: str, english: datetime) -> None:
    clock.now = datetime.fromisoformat(utc.replace("Z", "+00:00"))
    ledger.enrol_member(name="Sara Ahmadi", mobile="09121110001", actor="mgr")
    for locale in ("fa", "en"):
        out = tmp_path / f"{locale}.xlsx"
        export(ledger_path, out, sheets=["members"], locale=locale)
        (member,) = rows(out, 0)[2:]
        if locale == "fa":  # the Jalali text, then the date cell
            assert member[5] == persian
        when = member[6 if locale == "fa" else 5]
        assert isinstance(when, datetime) and abs(when - english) < timedelta(milliseconds=1)


def test_the_stores_cards_lines_redemptions_and_gift_cards(shop: Ledger, ledger_path: Path, tmp_path: Path,
                                                           clock: Clock) -> None:
    sara = shop.find_member(CARD_A).id
    clock.advance(days=1)
    bought = post_sale(shop, sale("s4", CARD_A, 3_000_000, 1_000_000, redeem=100))
    shop.block_card(number=CARD_B, actor="mgr2", reason="stolen", lost=False)
    shop.replace_card(old_number=CARD_A, new_number="6395000000000003", actor="mgr2")
    shop.gift_issue(number="7777000000000001", amount=2_000_000, actor="mgr2")
    shop.gift_spend(number="7777000000000001", amount=500_000, actor="cashier", receipt_ref="G1")
    out = tmp_path / "more.xlsx"
    written = export(ledger_path, out, sheets=["card_issuance", "sale_lines", "cards_out_of_use", "redemptions",
                                               "gift_cards"], locale="en", rows_max=3)
    book = openpyxl.load_workbook(out)
    assert [ws.title for ws in book.worksheets] == [
        "Card issuance", "Sale lines", "Sale lines (2)", "Lost, replaced, blocked", "Redemptions", "Gift cards"]
    assert written["sale_lines"] == 6
    issued = rows(out, 0)[2:]
    assert issued == [(datetime(2026, 3, 1), "mgr", 2, 0, 0, 0), (datetime(2026, 3, 3), "mgr2", 1, 0, 1, 1)]
    lines = rows(out, 1)[2:] + rows(out, 2)[2:]
    last_sale = [r for r in lines if r[2] == "R-s4"]
    assert [r[12] for r in last_sale] == [3_000_000, 1_000_000]
    assert sum(r[13] for r in last_sale) == bought.earned_points and sum(r[14] for r in last_sale) == 100
    assert isinstance(lines[0][0], datetime) and all(isinstance(r[12], int) for r in lines)
    out_of_use = {r[2]: r for r in rows(out, 3)[2:]}
    assert set(out_of_use) == {"blocked", "replaced"} and out_of_use["replaced"][4] == "…0003"
    assert rows(out, 4)[2:][0][3:6] == (sara, 100, bought.redeemed_rial)
    assert [r[1:] for r in rows(out, 5)[2:]] == [("…0001", "active", "mgr2", 2_000_000, 500_000, 1_500_000)]
    with zipfile.ZipFile(out) as z:
        assert not any(n.encode() in z.read(f) for f in z.namelist()
                       for n in (CARD_A, CARD_B, "6395000000000003", "7777000000000001"))


def test_libreoffice_opens_the_stores_workbook_in_both_languages(shop: Ledger, ledger_path: Path,
                                                                 tmp_path: Path) -> None:
    for lang, says in (("en", "Revenue (Rial)"), ("fa", "فروش (ریال)")):
        out = tmp_path / f"store-{lang}.xlsx"
        export(ledger_path, out, locale=lang)
        assert says in first_sheet_as_csv(out, tmp_path / lang)
