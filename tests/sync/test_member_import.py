"""`loyalty-hub members import`: a chain's existing members from Excel, into the hub
on SQLite and on the real PostgreSQL; all or nothing, every bad row named in the
error workbook, opening balances in the hub's own chain, and the members reaching
terminals like any others."""

from __future__ import annotations

import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import jdatetime
import openpyxl
import pytest
import xlsxwriter
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger.cardpolicy import CardPolicy, CardRange
from ledger.errors import UnknownMember
from ledger.verify import verify
from sync.client import Credentials, SyncClient
from sync.errors import ImportRefused
from sync.hub import cli as hub_cli
from sync.hub.memberimport import book, cells
from sync.hub.memberimport.cells import CellProblem
from sync.hub.memberimport.hubside import import_members
from sync.hub.schema import (
    HUB_TERMINAL,
    audit,
    balances,
    cards,
    entries,
    member_stores,
    members,
    terminal_balances,
    terminals,
)
from sync.hub.service import Hub
from sync.hub.verify import verify_hub
from tests.conftest import Clock

FA = ["نام", "موبایل", "تاریخ تولد", "شماره کارت", "سطح", "مانده امتیاز", "معرف", "فروشگاه"]
EN = ["Name", "Mobile", "Birth date", "Card number", "Tier", "Opening balance", "Referrer", "Store"]
BANK_CARD = "6037991234567893"  # a Shetab (Melli) number with a valid Luhn digit


def workbook(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """An .xlsx as Excel writes it: text as text, numbers as numbers, dates as date cells."""
    wb = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    ws = wb.add_worksheet()
    when = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws.write_row(0, 0, header)
    for r, row in enumerate(rows, 1):
        for c, value in enumerate(row):
            if value is None:
                continue
            if isinstance(value, (datetime, date)):
                ws.write_datetime(r, c, value if isinstance(value, datetime) else datetime(value.year, value.month,
                                                                                           value.day), when)
            elif isinstance(value, (int, float)):
                ws.write_number(r, c, value)
            else:
                ws.write_string(r, c, value)
    wb.close()
    return path


def stores(hub: Hub, *codes: str) -> None:
    for code in codes:
        hub.new_enrolment_code(code)  # a store comes to be with its first terminal's code


def counts(hub: Hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        return {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (members, cards, entries, balances, member_stores, audit)}


def error_rows(path: Path) -> list[tuple[Any, ...]]:
    ws = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0] == book.ERROR_HEADERS
    return rows[1:]


def test_persian_headers_and_every_common_form_import_members_cards_and_opening_balances(hub: Hub,
                                                                                          tmp_path: Path) -> None:
    stores(hub, "S1", "S2")
    path = workbook(tmp_path / "members.xlsx", FA, [
        ["سارا رضایی", "۰۹۱۲ ۱۲۳ ۴۵۶۷", "۱۳۷۰/۰۵/۱۲", "6395-0000-0000-0001", "طلایی", "۱٬۲۵۰", None, None],
        ["Ali", "+98 912 000 0002", "1991-08-03", None, "silver", 300, "09121234567", "S2"],
        ["Reza", 9120000003, datetime(1985, 3, 21), "6395000000000003", None, None, "0912-123-4567", None],
        ["Mina", "0098 912 000 0004", "1370-05-12", None, "نقره‌ای", 0, None, None],
    ])
    report = import_members(hub, path, by="head office", store="S1")
    assert (report.members, report.cards, report.points, report.entries) == (4, 2, 1550, 2)
    assert report.by_store == {"S1": 3, "S2": 1}
    with hub.engine.connect() as conn:
        got = {r.mobile: r for r in conn.execute(select(members))}
        assert sorted(got) == ["09120000002", "09120000003", "09120000004", "09121234567"]
        sara = got["09121234567"]
        assert (sara.name, sara.birth_date, sara.tier, sara.store_code, sara.enrolled_by) == \
            ("سارا رضایی", "1991-08-03", "gold", "S1", "head office")
        assert got["09120000004"].birth_date == "1991-08-03" and got["09120000004"].tier == "silver"
        assert got["09120000003"].birth_date == "1985-03-21" and got["09120000003"].tier == "bronze"
        assert got["09120000002"].referrer_id == got["09120000003"].referrer_id == sara.id
        assert got["09120000002"].store_code == "S2"
        assert dict(conn.execute(select(cards.c.number, cards.c.member_id)).all()) == {
            "6395000000000001": sara.id, "6395000000000003": got["09120000003"].id}
        assert dict(conn.execute(select(balances.c.member_id, balances.c.points)).all()) == {
            sara.id: 1250, got["09120000002"].id: 300}
        # the hub's part of each balance (what other terminals are told is "elsewhere")
        assert set(conn.execute(select(terminal_balances)).all()) == {
            (sara.id, HUB_TERMINAL, 1250), (got["09120000002"].id, HUB_TERMINAL, 300)}
        assert conn.execute(select(terminals.c.last_seq).where(terminals.c.id == HUB_TERMINAL)).scalar_one() == 2
        opening = conn.execute(select(entries).order_by(entries.c.seq)).all()
        assert [(e.terminal_code, e.kind, e.points, e.actor, e.reason) for e in opening] == [
            (HUB_TERMINAL, "adjust", 1250, "head office", "opening balance (import members.xlsx)"),
            (HUB_TERMINAL, "adjust", 300, "head office", "opening balance (import members.xlsx)")]
        assert set(conn.execute(select(member_stores.c.member_id, member_stores.c.store)).all()) == {
            (m.id, m.store_code) for m in got.values()}
        (row,) = conn.execute(select(audit).where(audit.c.action == "members.import")).all()
    assert row.actor == "head office" and row.target == "members.xlsx"
    import hashlib
    import json
    detail = json.loads(row.detail)
    assert detail["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (detail["members"], detail["cards"], detail["opening_points"]) == (4, 2, 1550)
    verified = verify_hub(hub.engine, hub.card_policy())  # the hub's chain and balances hold
    assert verified.entries == 2 and verified.balances == 2


def test_english_headers_any_case_and_the_store_column_alone(hub: Hub, tmp_path: Path) -> None:
    stores(hub, "S1")
    path = workbook(tmp_path / "m.xlsx", ["NAME", "mobile_number", "Date of birth", "TIER", "Points", "store code",
                                          "Notes"],
                    [["Sara", "09120000001", date(2000, 1, 31), "Gold", "2,000", "S1", "vip"]])
    report = import_members(hub, path, by="hq")
    assert (report.members, report.points, report.ignored_columns) == (1, 2000, ("Notes",))
    with hub.engine.connect() as conn:
        m = conn.execute(select(members)).one()
    assert (m.birth_date, m.tier, m.store_code) == ("2000-01-31", "gold", "S1")


def test_every_kind_of_bad_row_is_named_in_the_error_workbook_and_nothing_is_written(hub: Hub,
                                                                                      tmp_path: Path) -> None:
    stores(hub, "S1")
    ok = workbook(tmp_path / "first.xlsx", EN, [["Held", "09129999999", None, "6395000000000099", None, 5, None, None]])
    import_members(hub, ok, by="hq", store="S1")
    hub.set_card_ranges(CardPolicy((CardRange("6395", (16,)),)), by="hq")
    before = counts(hub)
    future = (date.today() + timedelta(days=30)).isoformat()
    path = workbook(tmp_path / "bad.xlsx", EN, [
        ["Good", "09120000001", None, "6395000000000001", None, 10, None, None],  # row 2: fine
        [None, "09120000002", None, None, None, None, None, None],  # 3: no name
        ["Bad mobile", "0812345678", None, None, None, None, None, None],  # 4
        ["Twice", "0912 000 0001", None, None, None, None, None, None],  # 5: row 2's mobile
        ["Bad date", "09120000005", "1370/13/40", None, None, None, None, None],  # 6
        ["Future", "09120000006", future, None, None, None, None, None],  # 7
        ["Bank card", "09120000007", None, BANK_CARD, None, None, None, None],  # 8
        ["Out of range", "09120000008", None, "7700000000000001", None, None, None, None],  # 9
        ["Card as number", "09120000009", None, 6395000000000010, None, None, None, None],  # 10
        ["Card twice", "09120000010", None, "6395000000000001", None, None, None, None],  # 11: row 2's card
        ["Tier", "09120000011", None, None, "platinum", None, None, None],  # 12
        ["Negative", "09120000012", None, None, None, -5, None, None],  # 13
        ["Fraction", "09120000013", None, None, None, 2.5, None, None],  # 14
        ["Too many", "09120000014", None, None, None, 10**13, None, None],  # 15
        ["Referrer", "09120000015", None, None, None, None, "09350000000", None],  # 16: nobody
        ["Self", "09120000016", None, None, None, None, "09120000016", None],  # 17
        ["Store", "09120000017", None, None, None, None, None, "S9"],  # 18
        ["At hub", "09129999999", None, None, None, None, None, None],  # 19: the hub's member
        ["Card at hub", "09120000019", None, "6395000000000099", None, None, None, None],  # 20
    ])
    with pytest.raises(ImportRefused, match="18 of 19 rows have problems") as refused:
        import_members(hub, path, by="hq", store="S1")
    assert refused.value.errors_path == tmp_path / "bad.errors.xlsx"
    assert counts(hub) == before  # nothing of the file, not even its good row
    listed = error_rows(tmp_path / "bad.errors.xlsx")
    assert [(r[0], r[1], r[3]) for r in listed] == [
        (3, "Name", "missing_name"), (4, "Mobile", "bad_mobile"), (5, "Mobile", "duplicate_mobile"),
        (6, "Birth date", "bad_date"), (7, "Birth date", "future_date"), (8, "Card number", "bank_card"),
        (9, "Card number", "card_out_of_range"), (10, "Card number", "card_as_number"),
        (11, "Card number", "duplicate_card"), (12, "Tier", "unknown_tier"), (13, "Opening balance", "negative_points"),
        (14, "Opening balance", "bad_points"), (15, "Opening balance", "limit_exceeded"),
        (16, "Referrer", "unknown_referrer"), (17, "Referrer", "self_referrer"), (18, "Store", "unknown_store"),
        (19, "Mobile", "member_exists"), (20, "Card number", "card_exists")]
    assert all(r[4] and r[5] for r in listed)  # a reason in English and in Persian
    assert "row 2" in listed[2][4] and "ردیف 2" in listed[2][5]
    bank = next(r for r in listed if r[3] == "bank_card")
    assert bank[2] == "603799******7893"
    # the bank card's number is nowhere in the workbook's bytes, in clear
    with zipfile.ZipFile(tmp_path / "bad.errors.xlsx") as z:
        assert not any(BANK_CARD.encode() in z.read(n) for n in z.namelist())


def test_a_bad_last_row_leaves_the_hub_unchanged(hub: Hub, tmp_path: Path) -> None:
    stores(hub, "S1")
    rows: list[list[Any]] = [[f"M{i}", f"0912{i:07d}", None, f"6395{i:012d}", None, 100, None, None]
                             for i in range(1, 301)]
    rows.append(["Last", "0912 bad", None, None, None, None, None, None])
    before = counts(hub)
    with pytest.raises(ImportRefused, match="1 of 301 rows"):
        import_members(hub, workbook(tmp_path / "m.xlsx", EN, rows), by="hq", store="S1")
    assert counts(hub) == before
    assert [(r[0], r[3]) for r in error_rows(tmp_path / "m.errors.xlsx")] == [(302, "bad_mobile")]


def test_dry_run_says_what_would_happen_and_changes_nothing_then_a_rerun_is_all_duplicates(hub: Hub,
                                                                                           tmp_path: Path) -> None:
    stores(hub, "S1")
    path = workbook(tmp_path / "m.xlsx", FA, [["A", "09120000001", None, "6395000000000001", None, 70, None, None],
                                              ["B", "09120000002", None, None, None, 30, None, None]])
    before = counts(hub)
    dry = import_members(hub, path, by="hq", store="S1", dry_run=True)
    assert (dry.dry_run, dry.members, dry.cards, dry.points) == (True, 2, 1, 100)
    assert counts(hub) == before
    import_members(hub, path, by="hq", store="S1")
    after = counts(hub)
    with pytest.raises(ImportRefused, match="imported before.*2 of 2 rows"):
        import_members(hub, path, by="hq", store="S1")
    assert counts(hub) == after
    assert [(r[0], r[3]) for r in error_rows(tmp_path / "m.errors.xlsx")] == [
        (2, "member_exists"), (2, "card_exists"), (3, "member_exists")]


def test_imported_members_reach_their_store_s_terminal_and_another_store_looks_them_up(
        hub: Hub, hub_http: Any, terminals: Any, tmp_path: Path) -> None:
    home = terminals("T1")  # store S1
    path = workbook(tmp_path / "m.xlsx", EN, [["Sara", "09120000001", None, "6395000000000001", "gold", 1500, None,
                                               None]])
    (member_id,) = import_members(hub, path, by="hq", store="S1").member_ids
    home.client.sync_once()
    m = home.ledger.find_member("6395000000000001")
    assert (m.id, m.name, m.mobile, m.tier) == (member_id, "Sara", "09120000001", "gold")
    assert home.ledger.balance(member_id) == 1500
    assert verify(home.ledger.engine).ok
    # a terminal of another store does not receive them, but finds them at the hub
    from ledger.service import Ledger

    other = Ledger.open(tmp_path / "T2.sqlite3", store="S2", terminal="T2", clock=Clock())
    enrol = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S2"), "terminal": "T2"})
    client = SyncClient(other, Credentials("http://hub.test", "T2", "S2", enrol.json()["secret"]),
                        transport=hub_http._transport)
    try:
        client.sync_once()
        with pytest.raises(UnknownMember):
            other.find_member("09120000001")
        assert client.lookup("0912 000 0001") == member_id
        assert other.balance(member_id) == 1500
        assert other.find_member("6395000000000001").id == member_id
    finally:
        client.close()
        other.close()


@pytest.mark.parametrize("hub_url", ["sqlite"], indirect=True)
def test_bad_files_are_one_line_errors_without_a_traceback(hub_url: str, hub: Hub, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    stores(hub, "S1")
    text = tmp_path / "members.xlsx"
    text.write_text("name,mobile\nSara,09120000001\n")
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    blank = workbook(tmp_path / "blank.xlsx", [], [])
    no_mobile = workbook(tmp_path / "nomobile.xlsx", ["name", "card"], [["Sara", "6395000000000001"]])
    twice = workbook(tmp_path / "twice.xlsx", ["name", "mobile", "موبایل"], [["Sara", "09120000001", "x"]])
    header_only = workbook(tmp_path / "header.xlsx", ["name", "mobile"], [])
    big = workbook(tmp_path / "big.xlsx", ["name", "mobile"], [[f"M{i}", f"0912{i:07d}"] for i in range(6)])
    good = workbook(tmp_path / "good.xlsx", ["name", "mobile"], [["Sara", "09120000001"]])
    damaged = tmp_path / "damaged.xlsx"  # the sheet's XML cut in the middle
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(damaged, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[:len(data) // 2] if item.filename.startswith("xl/worksheets/") else data)
    monkeypatch.setattr(book, "IMPORT_ROWS_MAX", 5)
    runner = CliRunner()
    for args, said in [
        ([str(text)], "not an Excel workbook"),
        ([str(empty)], "the file is empty"),
        ([str(tmp_path / "missing.xlsx")], "no such file"),
        ([str(blank)], "the first sheet is empty"),
        ([str(no_mobile)], "missing: mobile / موبایل"),
        ([str(twice)], "two columns are the mobile"),
        ([str(header_only)], "no members below the header"),
        ([str(big)], "more than 5 rows"),
        ([str(damaged)], "the workbook is damaged"),
        ([str(good), "--store", "S9"], "--store S9: the hub has no such store"),
        ([str(good)], "1 of 1 rows have problems"),
    ]:
        result = runner.invoke(hub_cli.cli, ["--db", hub_url, "members", "import", *args, "--by", "hq"])
        assert result.exit_code == 1, (args, result.output)
        lines = result.output.strip().splitlines()
        assert lines[-1].startswith("error: ") and said in lines[-1], (args, result.output)
        assert "Traceback" not in result.output
    assert counts(hub)["members"] == 0
    result = runner.invoke(hub_cli.cli, ["--db", hub_url, "members", "import", str(good), "--store", "S1",
                                         "--by", "hq", "--errors", str(tmp_path / "e.xlsx")])
    assert result.exit_code == 0, result.output
    assert "imported 1 new members" in result.output
    assert "checking good.xlsx: 1 done" in result.output  # the progress summary lines (not a terminal)
    assert "importing: 1 done in " in result.output and ": 1 members, 0 cards, 0 opening points" in result.output


# -- the cell parsers --------------------------------------------------------------

_PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@st.composite
def written_mobile(draw: st.DrawFn) -> tuple[str, Any]:
    rest = draw(st.text("0123456789", min_size=9, max_size=9))
    national = "09" + rest
    form = draw(st.sampled_from(["national", "+98", "0098", "98", "bare", "int", "float", "spaced"]))
    if form == "int":
        return national, int(national)
    if form == "float":
        return national, float(national)
    text = {"national": national, "+98": "+98" + national[1:], "0098": "0098" + national[1:],
            "98": "98" + national[1:], "bare": national[1:],
            "spaced": f"{national[:4]} {national[4:7]}-{national[7:]}"}[form]
    digits = draw(st.sampled_from([None, _PERSIAN, _ARABIC]))
    return national, text.translate(digits) if digits else text


@given(written_mobile())
def test_a_mobile_in_any_common_form_is_read_as_its_national_number(case: tuple[str, Any]) -> None:
    national, cell = case
    assert cells.mobile(cell) == national


@given(st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none(), st.booleans()))
def test_a_mobile_cell_is_a_number_or_a_problem_never_a_crash(cell: Any) -> None:
    try:
        got = cells.mobile(cell)
    except CellProblem as p:
        assert p.en and p.fa
    else:
        assert len(got) == 11 and got.startswith("09") and got.isdigit()


TODAY = date(2026, 12, 1)


@given(st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
       st.sampled_from(["jalali/", "jalali-", "jalali-fa", "gregorian", "gregorian/", "cell", "datetime"]))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_a_birth_date_jalali_gregorian_or_a_date_cell_is_read_as_the_same_day(born: date, form: str) -> None:
    j = jdatetime.date.fromgregorian(date=born)
    cell: Any = {
        "jalali/": f"{j.year}/{j.month:02d}/{j.day:02d}", "jalali-": f"{j.year}-{j.month}-{j.day}",
        "jalali-fa": f"{j.year}/{j.month:02d}/{j.day:02d}".translate(_PERSIAN),
        "gregorian": born.isoformat(), "gregorian/": born.strftime("%Y/%m/%d"), "cell": born,
        "datetime": datetime(born.year, born.month, born.day),
    }[form]
    assert cells.birth_date(cell, TODAY) == born.isoformat()


@given(st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.datetimes()))
def test_a_birth_date_cell_is_a_day_or_a_problem_never_a_crash(cell: Any) -> None:
    try:
        got = cells.birth_date(cell, TODAY)
    except CellProblem as p:
        assert p.en and p.fa
    else:
        assert got is None or date(1800, 1, 1) <= date.fromisoformat(got) <= TODAY


@given(st.one_of(st.text(max_size=25), st.integers(), st.floats()))
def test_points_and_cards_are_values_or_problems_and_a_card_problem_never_shows_the_number(cell: Any) -> None:
    try:
        assert cells.points(cell) >= 0
    except CellProblem:
        pass
    policy = CardPolicy((CardRange("6395", (16,)),))
    try:
        cells.card(cell, policy)
    except CellProblem as p:
        digits = "".join(ch for ch in str(cell) if ch.isdigit())
        if len(digits) >= 13:
            assert digits not in p.en and digits not in p.fa


@pytest.mark.parametrize("hub_url", ["sqlite"], indirect=True)
def test_a_database_that_refuses_the_write_is_a_clear_refusal_and_nothing_is_written(
        hub_url: str, hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from sync.hub import db

    stores(hub, "S1")
    path = workbook(tmp_path / "m.xlsx", EN, [["Sara", "09120000001", None, None, None, 10, None, None]])
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 100)
    impatient = Hub(db.create_hub_engine(hub_url))
    other = sqlite3.connect(hub_url.removeprefix("sqlite:///"))
    other.execute("BEGIN IMMEDIATE")  # another writer holds the hub's database
    try:
        with pytest.raises(ImportRefused, match="database refused the import .*locked.*nothing was imported"):
            import_members(impatient, path, by="hq", store="S1")
    finally:
        other.rollback()
        other.close()
        impatient.engine.dispose()
    assert counts(hub)["members"] == 0


def test_headers_are_found_however_they_are_typed() -> None:
    from sync.hub.memberimport.columns import read_header

    cols = read_header(["  نام و نام خانوادگی ", "موبايل", "تاريخ\u200cتولد", None, "Opening_Balance", "ردیف"])
    assert cols.index == {"name": 0, "mobile": 1, "birth_date": 2, "opening_balance": 4}
    assert cols.header["mobile"] == "موبايل" and cols.ignored == ("ردیف",)


@pytest.mark.parametrize("what", ["mobile", "card"])
def test_a_terminal_enrolling_the_same_member_while_the_file_is_checked_undoes_the_whole_import(
        hub: Hub, terminals: Any, tmp_path: Path, what: str) -> None:
    from ledger.progress import NO_PROGRESS

    till = terminals("T1")  # store S1
    path = workbook(tmp_path / "m.xlsx", EN, [["A", "09120000001", None, "6395000000000001", None, 10, None, None],
                                              ["B", "09120000002", None, None, None, 20, None, None]])

    def meanwhile(label: str) -> Any:
        if label == "importing":  # checked, not yet written: the till enrols and syncs now
            m = till.ledger.enrol_member(name="Till", mobile="09120000001" if what == "mobile" else "09350000009",
                                         actor="mgr")
            if what == "card":
                till.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe",
                                       actor="mgr")
            till.client.sync_once()
        return NO_PROGRESS

    before = counts(hub)
    with pytest.raises(ImportRefused, match=f"a terminal (enrolled|issued) one of its {what}s while it was checked; "
                                            "nothing was imported"):
        import_members(hub, path, by="hq", store="S1", progress=meanwhile)
    after = counts(hub)
    assert after["members"] == before["members"] + 1  # the till's member only
    with hub.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(entries).where(entries.c.terminal_code == HUB_TERMINAL)
                            ).scalar_one() == 0
