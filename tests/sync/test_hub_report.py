"""The back office's workbook (`loyalty-hub report export`) from a hub fed by real
terminal ledgers of two stores, on SQLite and PostgreSQL: every sheet read back with
openpyxl and checked against the hub's tables (values, types, totals), both
languages, the filters, a table continued past a sheet's row limit, bad filters
refused in one line, and LibreOffice opening the file."""

from __future__ import annotations

import json
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ledger.reports.days import Days
from ledger.rules import default_ruleset, point_value_at
from ledger.sales import post_sale, refund
from ledger.service import Ledger
from ledger.types import RefundRequest, SaleLine, SaleRequest
from sync.client import Credentials, SyncClient
from sync.hub.cli import cli
from sync.hub.db import create_hub_engine
from sync.hub.reports.export import export
from sync.hub.reports.queries import Filters
from sync.hub.schema import audit, balances, entries, gift_balances, sale_lines, sales
from sync.hub.service import Hub
from tests.conftest import START, Clock
from tests.reports.libreoffice import first_sheet_as_csv

SARA, ALI, SARA_NEW, REZA = "6395000000000001", "6395000000000002", "6395000000000003", "6395000000000004"
GIFT = "7777000000000001"
MARCH = Days(date(2026, 3, 1), date(2026, 3, 3))  # 1404/12/10 to 1404/12/12


class Till:
    """A real terminal of a store: its ledger on disk on the test's clock, and the real
    sync client talking to the hub app."""

    def __init__(self, folder: Path, hub: Hub, http: TestClient, code: str, store: str, clock: Clock) -> None:
        self.ledger = Ledger.open(folder / f"{code}.sqlite3", store=store, terminal=code, clock=clock)
        r = http.post("/v1/enroll", json={"code": hub.new_enrolment_code(store), "terminal": code})
        assert r.status_code == 200, r.text
        self.client = SyncClient(self.ledger, Credentials("http://hub.test", code, store, r.json()["secret"]),
                                 transport=http._transport)

    def close(self) -> None:
        self.client.close()
        self.ledger.close()


def basket(key: str, card: str, *lines: tuple[str, int, int], redeem: int = 0) -> SaleRequest:
    """lines: (category, quantity, unit price)."""
    return SaleRequest(idempotency_key=key, card_number=card, receipt_ref=f"R-{key}", redeem_points=redeem,
                       lines=tuple(SaleLine(sku=f"{cat[:3].upper()}{i}", name=f"{cat} {i}", category=cat,
                                            quantity=qty, unit_price=price)
                                   for i, (cat, qty, price) in enumerate(lines, start=1)))


@pytest.fixture
def chain(hub: Hub, hub_http: TestClient, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two stores' terminals over three days of March 2026: sales of several lines and
    categories, a redemption, a refund, a card lost, a card replaced, a gift card."""
    clock = Clock()
    hub.clock = clock  # the hub dates its audit (card status changes) on the same days
    ta, tb = Till(tmp_path, hub, hub_http, "TA", "S1", clock), Till(tmp_path, hub, hub_http, "TB", "S2", clock)
    a = ta.ledger
    sara = a.enrol_member(name="Sara Ahmadi", mobile="09121110001", actor="mgr-a")
    a.issue_card(member_id=sara.id, number=SARA, technology="magstripe", actor="mgr-a")
    ali = a.enrol_member(name="Ali Karimi", mobile="09121110002", actor="mgr-a")
    a.issue_card(member_id=ali.id, number=ALI, technology="magstripe", actor="mgr-a")
    reza = tb.ledger.enrol_member(name="Reza Rostami", mobile="09121110003", actor="mgr-b")
    tb.ledger.issue_card(member_id=reza.id, number=REZA, technology="contactless", actor="mgr-b")
    first = post_sale(a, basket("s1", SARA, ("grocery", 2, 500_000), ("dairy", 1, 2_000_000), ("dairy", 3, 70_000)))
    post_sale(tb.ledger, basket("b1", REZA, ("bakery", 4, 1_000_000)))
    a.gift_issue(number=GIFT, amount=5_000_000, actor="mgr-a")
    clock.advance(days=1)
    post_sale(a, basket("s2", SARA, ("grocery", 1, 2_500_000), ("toys", 1, 333_333), redeem=100))
    post_sale(a, basket("a1", ALI, ("toys", 1, 1_200_000)))
    a.gift_spend(number=GIFT, amount=1_500_000, actor="cashier", receipt_ref="G1")
    refund(a, RefundRequest("r1", first.sale_id, None))
    a.block_card(number=ALI, actor="mgr-a", reason="reported lost by phone")
    clock.advance(days=1)
    a.replace_card(old_number=SARA, new_number=SARA_NEW, actor="mgr-a")
    post_sale(tb.ledger, basket("b2", REZA, ("bakery", 1, 900_000), ("dairy", 2, 150_000)))
    for till in (ta, tb):
        assert till.client.sync_once().backlog == 0
    yield ta, tb
    ta.close()
    tb.close()


def sheet_rows(ws: Any) -> list[tuple[Any, ...]]:
    """The data rows under the filter note and the header."""
    return [r for r in ws.iter_rows(min_row=3, values_only=True) if any(v is not None for v in r)]


def by_title(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    book = openpyxl.load_workbook(path)
    return {ws.title: sheet_rows(ws) for ws in book.worksheets}


def write(hub: Hub, out: Path, filters: Filters | None = None, **kw: Any) -> dict[str, int]:
    engine = create_hub_engine(str(hub.engine.url.render_as_string(hide_password=False)), reader=True)
    try:
        return export(engine, out, filters or Filters(MARCH), now=datetime(2026, 3, 10, tzinfo=START.tzinfo), **kw)
    finally:
        engine.dispose()


def test_every_sheet_matches_the_hub_it_was_written_from(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "chain.xlsx"
    written = write(hub, out, locale="en")
    book = by_title(out)
    assert list(book) == ["KPIs", "Members", "Card issuance", "Sales", "Sale lines", "Sale statistics",
                          "Lost, replaced, blocked", "Card history", "Redemptions", "Gift cards", "Card stock",
                          "RFM segments", "Campaigns", "Charts"]
    assert book["Campaigns"] == []  # none was sent (tests/messages/test_campaigns.py fills it)
    with hub.engine.connect() as conn:
        hub_sales = conn.execute(select(sales.c.id, sales.c.kind, sales.c.amount, sales.c.store)).all()
        hub_lines = conn.execute(select(func.count(), func.sum(sale_lines.c.quantity * sale_lines.c.unit_price))).one()
        hub_balances = dict(conn.execute(select(balances.c.member_id, balances.c.points)).all())
        redeemed = conn.execute(select(-func.sum(entries.c.points), func.sum(entries.c.amount))
                                .where(entries.c.kind == "redeem")).one()
        earned = conn.execute(select(func.sum(entries.c.points)).where(
            entries.c.sale_id.is_not(None), (entries.c.kind.in_(("earn", "bonus"))) |
            (entries.c.rule_id == "reverse-earn"))).scalar()
        gift_balance = conn.execute(select(func.sum(gift_balances.c.amount))).scalar()
        outstanding = conn.execute(select(func.sum(entries.c.points)).where(entries.c.member_id.is_not(None))).scalar()

    # sales: every one of both stores, as Excel dates and integer Rial
    rows = book["Sales"]
    assert written["sales"] == len(rows) == len(hub_sales) == 6
    assert all(isinstance(r[0], datetime) and isinstance(r[8], int) for r in rows)
    assert sum(r[8] for r in rows) == sum(s.amount for s in hub_sales)
    assert {r[3] for r in rows} == {"S1", "S2"} and {r[1] for r in rows} == {"sale", "refund"}
    assert rows[0][0] == datetime(2026, 3, 1, 12, 30)  # 09:00 UTC in Tehran
    assert all(r[7] in ("", "…0001", "…0002", "…0004") for r in rows)  # masked
    assert sum(r[9] for r in rows) == earned and sum(r[10] for r in rows) == redeemed[0] == 100
    # sale lines: every line, each sale's points shared among its lines to the point
    lines = book["Sale lines"]
    assert len(lines) == hub_lines[0] == 12  # nine sold, three returned
    assert sum(r[13] for r in lines) == hub_lines[1]
    assert all(r[13] == r[11] * r[12] and isinstance(r[13], int) for r in lines)
    assert sum(r[14] for r in lines) == earned and sum(r[15] for r in lines) == 100
    assert {r[10] for r in lines} == {"grocery", "dairy", "toys", "bakery"}
    # members: balances as the hub holds them, home stores, tiers
    members = {r[1]: r for r in book["Members"]}
    assert set(members) == {"Sara Ahmadi", "Ali Karimi", "Reza Rostami"}
    assert all(members[n][7] == hub_balances[members[n][0]] for n in members)
    assert members["Reza Rostami"][5] == "S2" and members["Sara Ahmadi"][5] == "S1"
    assert isinstance(members["Sara Ahmadi"][6], datetime) and isinstance(members["Sara Ahmadi"][8], datetime)
    assert members["Reza Rostami"][9] == 2 and members["Reza Rostami"][10] == 4_000_000 + 1_200_000
    # statistics: the same Rial as the lines, by store, day, category and tier
    stats = book["Sale statistics"]
    assert all(isinstance(r[1], datetime) for r in stats)
    sold = sum(r[5] for r in stats)
    refunded = sum(r[6] for r in stats)
    assert sold - refunded == sum(s.amount if s.kind == "sale" else -s.amount for s in hub_sales)
    bakery = [r for r in stats if r[2] == "bakery"]
    assert [(r[0], r[4], r[5], r[8]) for r in bakery] == [("S2", 1, 4_000_000, 4_000_000),
                                                          ("S2", 1, 900_000, 900_000)]
    # cards: four issued (three and a replacement), one lost, one replaced
    issued = book["Card issuance"]
    assert sum(r[3] for r in issued) == 4 and sum(r[4] for r in issued) == 1 and sum(r[5] for r in issued) == 1
    assert {(r[1], r[2]) for r in issued if r[3]} == {("S1", "mgr-a"), ("S2", "mgr-b")}
    assert all(isinstance(r[0], datetime) for r in issued)
    out_of_use = {r[2]: r for r in book["Lost, replaced, blocked"]}
    assert set(out_of_use) == {"lost", "replaced"}
    assert out_of_use["replaced"][4] == "…0003" and out_of_use["lost"][3] == "reported lost by phone"
    # redemptions with their Rial
    red = book["Redemptions"]
    assert [(r[1], r[6], r[7]) for r in red] == [("S1", 100, redeemed[1])] and redeemed[1] > 0
    gifts = book["Gift cards"]
    assert [(r[1], r[4], r[5], r[6]) for r in gifts] == [("…0001", 5_000_000, 1_500_000, gift_balance)]
    assert gift_balance == 3_500_000
    # segments: every member in one
    segs = book["RFM segments"]
    assert sum(r[1] for r in segs) == 3 and all(r[5] for r in segs)
    # KPIs: this period and the one before, with definitions
    kpis = {r[0]: r for r in book["KPIs"]}
    assert kpis["Purchases"][1] == 5 and kpis["Purchases"][2] == 0
    assert kpis["Members' revenue (Rial)"][1] == sum(s.amount if s.kind == "sale" else -s.amount for s in hub_sales)
    assert kpis["Active members"][1] == 3 and kpis["Points redeemed"][1] == 100
    value = point_value_at(default_ruleset(), datetime(2026, 3, 3, 20, 29, tzinfo=START.tzinfo))
    assert kpis["Point value (Rial)"][1] == value
    assert kpis["Points outstanding at the period's end"][1] == outstanding == sum(hub_balances.values())
    assert kpis["Points liability (Rial)"][1] == outstanding * value
    assert kpis["Members at the period's end"][1] == 3 and kpis["Members at the period's end"][2] == 0
    assert all(isinstance(r[3], str) and len(r[3]) > 10 for r in kpis.values())
    # four native charts, and no card number anywhere
    with zipfile.ZipFile(out) as z:
        assert len([n for n in z.namelist() if n.startswith("xl/charts/chart")]) == 4
        assert not any(c.encode() in z.read(n) for n in z.namelist() for c in (SARA, ALI, SARA_NEW, REZA, GIFT))


def test_persian_reads_right_to_left_with_a_jalali_text_beside_each_date(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "fa.xlsx"
    write(hub, out, locale="fa", sheets=["sales", "sale_statistics", "kpis"])
    book = openpyxl.load_workbook(out)
    assert [ws.title for ws in book.worksheets] == ["فروش", "آمار فروش", "شاخص‌ها"]
    assert all(ws.sheet_view.rightToLeft for ws in book.worksheets)
    sales_ws = book.worksheets[0]
    assert sales_ws.cell(1, 1).value.startswith("1404/12/10 تا 1404/12/12")
    first = sheet_rows(sales_ws)[0]
    assert first[0] == "1404/12/10 12:30" and first[1] == datetime(2026, 3, 1, 12, 30)
    assert sales_ws.cell(3, 2).number_format == "yyyy-mm-dd hh:mm"
    stats = sheet_rows(book.worksheets[1])
    assert stats[0][1] == "1404/12/10" and stats[0][2] == datetime(2026, 3, 1)


def test_a_table_past_the_row_limit_goes_on_to_the_next_sheet(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "small.xlsx"
    written = write(hub, out, locale="en", sheets=["sale_lines", "sales"], rows_max=4)
    book = openpyxl.load_workbook(out)
    assert [ws.title for ws in book.worksheets] == ["Sale lines", "Sale lines (2)", "Sale lines (3)",
                                                    "Sales", "Sales (2)"]
    parts = [sheet_rows(ws) for ws in book.worksheets[:3]]
    assert [len(p) for p in parts] == [4, 4, 4] and written["sale_lines"] == 12
    assert all(ws.cell(2, 1).value == "Time" for ws in book.worksheets)  # the header on every part
    times = [r[0] for p in parts for r in p]
    assert times == sorted(times)  # one table, in order, across its sheets


def test_filters_narrow_every_sheet(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ta, tb = chain
    out = tmp_path / "s2.xlsx"
    write(hub, out, Filters(MARCH, stores=("S2",)), locale="en")
    book = by_title(out)
    assert {r[3] for r in book["Sales"]} == {"S2"} and len(book["Sales"]) == 2
    assert {r[2] for r in book["Sale lines"]} == {"S2"} and [r[1] for r in book["Members"]] == ["Reza Rostami"]
    assert book["Redemptions"] == [] and book["Gift cards"] == []
    one_day = tmp_path / "day2.xlsx"
    write(hub, one_day, Filters(Days(date(2026, 3, 2), date(2026, 3, 2))), locale="en")
    book = by_title(one_day)
    assert sorted(r[2] for r in book["Sales"]) == ["R-a1", "R-s1", "R-s2"]  # the refund keeps the sale's receipt
    kpis = {r[0]: r for r in book["KPIs"]}
    assert kpis["Purchases"][1:3] == (2, 2)  # 2 March, and 1 March before it
    assert kpis["Retention"][1] == pytest.approx(0.5)  # Sara and Reza bought on the 1st; Sara again on the 2nd
    segment = tmp_path / "seg.xlsx"
    write(hub, segment, Filters(MARCH, segments=("no_purchase",)), locale="en")
    assert by_title(segment)["Sales"] == []
    tiered = tmp_path / "tier.xlsx"
    tier = by_title(out)["Members"][0][3]
    write(hub, tiered, Filters(MARCH, tiers=(tier,)), locale="en")
    assert len(by_title(tiered)["Sales"]) == 6


def test_a_segment_narrows_the_kpis_statistics_and_card_sheets_to_its_members(hub: Hub, chain,  # type: ignore[no-untyped-def]
                                                                               tmp_path: Path) -> None:
    from ledger.reports.rfm import SEGMENTS

    whole = tmp_path / "whole.xlsx"
    write(hub, whole, locale="en")
    book = by_title(whole)
    key_of = {english: key for key, (english, _) in SEGMENTS.items()}
    segment_of = {r[0]: key_of[r[4]] for r in book["Members"]}
    reza = next(r[0] for r in book["Members"] if r[1] == "Reza Rostami")
    key = segment_of[reza]
    kept = {m for m, k in segment_of.items() if k == key}
    assert kept != set(segment_of)  # the filter must leave someone out to prove anything
    out = tmp_path / "segment.xlsx"
    write(hub, out, Filters(MARCH, segments=(key,)), locale="en")
    narrowed = by_title(out)
    purchases = [r for r in book["Sales"] if r[1] == "sale" and r[5] in kept]
    assert narrowed["Sales"] == [r for r in book["Sales"] if r[5] in kept]
    kpis = {r[0]: r for r in narrowed["KPIs"]}
    assert kpis["Purchases"][1] == len(purchases)
    lines = [r for r in book["Sale lines"] if r[5] in kept]
    assert sum(r[5] for r in narrowed["Sale statistics"]) == sum(r[13] for r in lines if r[1] == "sale") > 0
    assert sum(r[7] for r in narrowed["Sale statistics"]) == sum(r[11] for r in lines if r[1] == "sale")
    assert kpis["Active members"][1] == len({r[5] for r in purchases})
    assert kpis["Members at the period's end"][1] == len(kept)
    assert {r[0] for r in narrowed["Sale statistics"]} == {r[3] for r in purchases}
    assert narrowed["Redemptions"] == [r for r in book["Redemptions"] if r[4] in kept]
    assert [r[1] for r in narrowed["Members"]] == [r[1] for r in book["Members"] if r[0] in kept]


def test_the_command_and_its_clear_refusals(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = hub.engine.url.render_as_string(hide_password=False)
    runner = CliRunner()
    out = tmp_path / "cmd.xlsx"
    ok = runner.invoke(cli, ["--db", url, "report", "export", str(out), "--from", "1404/12/10", "--to", "2026-03-03",
                             "--store", "S1", "--store", "S2", "--lang", "en", "--by", "auditor"])
    assert ok.exit_code == 0, ok.output
    assert "sales 6" in ok.output and "sale_lines 12" in ok.output and out.exists()
    assert "done in" in ok.output  # the progress summary line (not a terminal)
    with hub.engine.connect() as conn:  # the workbook holds members' names and mobiles: who took it is kept
        row = conn.execute(select(audit).where(audit.c.action == "report.export")).one()
    assert row.actor == "auditor" and json.loads(row.detail)["stores"] == ["S1", "S2"]
    assert json.loads(row.detail)["rows"]["sales"] == 6 and json.loads(row.detail)["first"] == "2026-03-01"
    for args, says in ((["--from", "1404/13/01"], "a Jalali month is 1 to 12"),
                       (["--to", "2026-02-30"], "not a Gregorian calendar day"),
                       (["--from", "1404/12/12", "--to", "1404/12/10"], "is after the last"),
                       (["--store", "S9"], "no store called 'S9'; the stores are: S1, S2"),
                       (["--tier", "platinum"], "no tier called 'platinum'"),
                       (["--segment", "vip"], "no segment called 'vip'"),
                       (["--sheets", "nope"], "no sheet called 'nope'")):
        bad = runner.invoke(cli, ["--db", url, "report", "export", str(tmp_path / "bad.xlsx"), *args])
        assert bad.exit_code == 2, (args, bad.output)
        assert says in bad.output and "Traceback" not in bad.output, bad.output
    assert not (tmp_path / "bad.xlsx").exists()
    nowhere = runner.invoke(cli, ["--db", url, "report", "export", str(tmp_path / "no" / "x.xlsx")])
    assert nowhere.exit_code == 2 and "does not exist" in nowhere.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == []


def test_libreoffice_opens_both_languages(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for lang in ("en", "fa"):
        out = tmp_path / f"{lang}.xlsx"
        write(hub, out, locale=lang)
        text = first_sheet_as_csv(out, tmp_path / lang)
        assert ("Purchases" if lang == "en" else "تعداد خرید") in text  # the first sheet, the KPIs


def test_a_terminals_report_keeps_to_its_own_store(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Sara (of S1) buys at S2 too: S1's terminal learns her balance from the hub, but
    its own report counts only its own sales and points, and its own members."""
    from ledger.reports.excel import export as terminal_export

    ta, tb = chain
    sara = ta.ledger.find_member(SARA_NEW).id
    tb.client.lookup(SARA_NEW)
    post_sale(tb.ledger, basket("b3", SARA_NEW, ("bakery", 1, 5_000_000)))
    tb.client.sync_once()
    ta.client.sync_once()
    with ta.ledger.read() as conn:
        own = dict(conn.exec_driver_sql("SELECT member_id, sum(points) FROM entries WHERE member_id IS NOT NULL "
                                        "GROUP BY member_id").all())
        elsewhere = conn.exec_driver_sql("SELECT elsewhere FROM balances WHERE member_id = ?", (sara,)).scalar()
    assert elsewhere > 0  # the points Sara earned at S2 are in S1's ledger, as a sum
    out = tmp_path / "s1.xlsx"
    terminal_export(Path(ta.ledger.engine.url.database), out, sheets=["kpis", "members", "sales"], locale="en")
    book = openpyxl.load_workbook(out)
    kpis = {r[0]: r[1] for r in book.worksheets[0].iter_rows(min_row=3, values_only=True)}
    assert book.worksheets[0].cell(1, 1).value == "store S1 only"
    assert kpis["Points outstanding from this store"] == sum(own.values())
    assert kpis["Members enrolled here"] == 2
    members = {r[1]: r for r in book.worksheets[1].iter_rows(min_row=3, values_only=True)}
    assert set(members) == {"Sara Ahmadi", "Ali Karimi"}  # not Reza, of S2
    assert members["Sara Ahmadi"][7] == own[sara]
    assert members["Sara Ahmadi"][8] == ta.ledger.balance(sara) == own[sara] + elsewhere
    sold = [r for r in book.worksheets[2].iter_rows(min_row=3, values_only=True)]
    assert {r[3] for r in sold} == {"TA"} and "R-b3" not in {r[2] for r in sold}


def test_the_card_stock_sheet_counts_where_the_printed_cards_are(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sync.hub.stock import assign, import_batch

    numbers = [(f"line {i}", f"6395000000{500 + i:06d}") for i in range(1, 11)]
    import_batch(hub, "print-1", numbers, "ho", "file cards.txt")
    assign(hub, "print-1", "S1", 4, "ho")
    out = tmp_path / "stock.xlsx"
    write(hub, out, locale="en", sheets=["card_stock"])
    rows = by_title(out)["Card stock"]
    assert rows == [("head office", 6, 0, 0, 0, 0, 0), ("S1", 4, 0, 0, 0, 0, 0)]
    narrowed = tmp_path / "stock-s2.xlsx"  # the store filter keeps its stores; head office stays
    write(hub, narrowed, Filters(MARCH, stores=("S2",)), locale="fa", sheets=["card_stock"])
    assert by_title(narrowed)["موجودی کارت"] == [("دفتر مرکزی", 6, 0, 0, 0, 0, 0)]


def test_the_card_history_sheet_tells_each_cards_story(hub: Hub, chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """From head office's stock to the member and out of use, card by card: what
    `loyalty-hub cards history` tells of one card, for every card of the period."""
    from sync.hub.stock import assign, card_history, import_batch

    ta, _ = chain
    stocked = "6395000000000501"
    import_batch(hub, "print-2", [("line 1", stocked)], "ho", "file cards.txt")
    assign(hub, "print-2", "S1", 1, "ho")
    ta.client.sync_once()  # TA receives its store's stock
    ali = ta.ledger.find_member("09121110002").id
    ta.ledger.issue_card(member_id=ali, number=stocked, technology="magstripe", actor="mgr-a")
    assert ta.client.sync_once().backlog == 0
    ta.ledger.block_card(number=stocked, actor="mgr-a", reason="left at the till")  # after the hub has it
    assert ta.client.sync_once().backlog == 0
    out = tmp_path / "history.xlsx"
    written = write(hub, out, locale="en", sheets=["card_history"])
    rows = by_title(out)["Card history"]
    story = {}
    for card, at, event, by, where, terminal, member, detail in rows:
        assert isinstance(at, datetime) and len(card) == 5  # a date cell; the number masked
        story.setdefault(card, []).append((event, by, where, terminal, member, detail))
    assert written == {"card_history": len(rows)} and list(story) == ["…0001", "…0002", "…0003", "…0004", "…0501"]
    assert story["…0501"] == [
        ("imported into stock", "ho", "head office", None, None, "batch print-2"),
        ("assigned to the store", "ho", "S1", None, None, None),
        ("issued to the member", "mgr-a", "S1", "TA", ali, None),
        ("recorded against the stock", "hub", "S1", "TA", None, None),
        ("lost", "TA", "S1", "TA", ali, "active → lost: left at the till"),
    ]
    # a card that reached the hub already out of use: its status as its row says
    assert [e[0] for e in story["…0001"]] == ["issued to the member", "replaced"]
    assert story["…0001"][1][5] == "replaced by …0003: lost"
    assert [e[0] for e in story["…0002"]] == ["issued to the member", "lost"]
    with hub.engine.connect() as conn:  # the command line's story of the card is the sheet's
        assert [r["event"] for r in card_history(conn, stocked)] == [
            "imported", "assigned", "issued", "recorded against the stock", "lost"]
    # a store's events only (head office's import is no store's); in Persian
    narrowed = tmp_path / "history-s2.xlsx"
    write(hub, narrowed, Filters(MARCH, stores=("S2",)), locale="fa", sheets=["card_history"])
    (only,) = by_title(narrowed)["سابقه کارت‌ها"]
    assert only[:2] == ("…0004", "1404/12/10 12:30") and only[3:6] == ("صدور برای عضو", "mgr-b", "S2")
    with zipfile.ZipFile(out) as z:  # no whole card number anywhere in the file
        assert not any(n.encode() in z.read(f) for f in z.namelist() for n in (SARA, ALI, REZA, stocked))
