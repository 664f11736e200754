"""`loyalty-hub sales prune`: the hub's old sales and lines go, counted first, audited,
never inside the last 13 months, never an entry; on PostgreSQL a whole month by
dropping its partitions, rows of the default partition with it; the till syncs on."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from ledger.reports.days import Days
from ledger.sales import post_sale
from sync.hub import retention
from sync.hub.cli import cli
from sync.hub.reports.export import export
from sync.hub.reports.queries import Filters
from sync.hub.partitions import make_months, months_around, partitioned
from sync.hub.retention import latest_cutoff
from sync.hub.service import Hub
from tests.conftest import sale
from tests.sync.conftest import Terminal

NOW = datetime.now(timezone.utc)
CUT = latest_cutoff(NOW)  # the latest month a prune may name: twelve before this one


def _back(months: int) -> str:
    return months_around(NOW, behind=months, ahead=0)[0]


M20, M15, M14 = _back(20), _back(15), _back(14)
CARD = "6395000000000001"


def _at(month: str) -> datetime:
    return datetime(int(month[:4]), int(month[5:]), 10, 9, 0, tzinfo=timezone.utc)


def _count(hub: Hub, sql: str) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def _prune(hub: Hub, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", str(hub.engine.url.render_as_string(hide_password=False)),
                                      "sales", "prune", "--by", "Nasrin (head office)", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.fixture
def till(terminals, hub: Hub) -> Terminal:  # type: ignore[no-untyped-def]
    t = terminals("T1")
    t.clock.now = _at(M20)
    m = t.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
    t.ledger.issue_card(member_id=m.id, number=CARD, technology="magstripe", actor="mgr")
    with hub.engine.begin() as conn:  # PostgreSQL: M15, M14 and CUT have partitions; M20 only the default
        if partitioned(conn):
            make_months(conn, [M15, M14, CUT])
    for n, month in enumerate([M20, M15, M14, CUT, CUT]):
        t.clock.now = _at(month)
        post_sale(t.ledger, sale(f"k{n}", CARD, 1_000_000, 2_000_000))  # two lines each
    t.clock.now = NOW
    t.client.sync_once()
    return t


def _sales_note(hub: Hub, folder: Path, first: date, locale: str) -> str:
    out = folder / f"report-{locale}-{first}.xlsx"
    export(hub.engine, out, Filters(Days(first, NOW.date())), locale=locale, now=NOW, sheets=["sales"])
    return str(openpyxl.load_workbook(out, read_only=True).worksheets[0]["A1"].value)


def test_old_sales_go_counted_audited_and_the_till_syncs_on(hub: Hub, till: Terminal, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "ROWS_PER_TRANSACTION", 2)  # more than one transaction where rows are deleted
    entries = _count(hub, "SELECT count(*) FROM entries")
    assert _count(hub, "SELECT count(*) FROM sales") == 5

    code, out = _prune(hub, "--before", CUT)  # without --yes: counted, nothing removed
    pg = hub.engine.dialect.name == "postgresql"
    whole = f", 2 whole month(s) ({M15}, {M14})" if pg else ""
    assert (code, out) == (0, f"would remove 3 sale(s) and 6 line(s) made before {CUT}-01{whole}; "
                              "run it again with --yes to remove them\n")
    assert _count(hub, "SELECT count(*) FROM sales") == 5
    assert _count(hub, "SELECT count(*) FROM audit WHERE action = 'sales.prune'") == 0

    code, out = _prune(hub, "--before", CUT, "--yes")
    assert (code, out) == (0, f"removed 3 sale(s) and 6 line(s) made before {CUT}-01{whole}\n")
    with hub.engine.connect() as conn:
        kept = conn.execute(text("SELECT created_at FROM sales")).scalars().all()
        assert sorted(k[:7] for k in kept) == [CUT, CUT]
        assert conn.execute(text("SELECT count(*) FROM sale_lines")).scalar_one() == 4
        assert conn.execute(text(f"SELECT count(*) FROM sale_lines WHERE created_at < '{CUT}-01'")).scalar_one() == 0
        audit = conn.execute(text("SELECT actor, target, detail FROM audit WHERE action = 'sales.prune'")).one()
        if pg:
            gone = [conn.execute(text(f"SELECT to_regclass('{t}_y{m[:4]}m{m[5:]}')")).scalar_one()
                    for t in ("sales", "sale_lines") for m in (M15, M14, CUT)]
            assert gone == [None, None, f"sales_y{CUT[:4]}m{CUT[5:]}", None, None, f"sale_lines_y{CUT[:4]}m{CUT[5:]}"]
    assert audit.actor == "Nasrin (head office)" and audit.target == CUT
    assert '"sales": 3' in audit.detail and '"lines": 6' in audit.detail
    assert _count(hub, "SELECT count(*) FROM entries") == entries  # points and the chain stay

    assert _prune(hub, "--before", CUT, "--yes") == (0, f"no sales made before {CUT}-01: nothing to remove\n")
    # a report of a period reaching before the cut says its first sales are gone, not that there were none
    assert "were pruned from the hub" in _sales_note(hub, tmp_path, _at(M15).date(), "en")
    assert f"sales before {CUT}-01 were pruned" in _sales_note(hub, tmp_path, _at(M15).date(), "en")
    assert "از هاب پاک شده‌اند" in _sales_note(hub, tmp_path, _at(M15).date(), "fa")
    assert "pruned" not in _sales_note(hub, tmp_path, _at(CUT).date(), "en")
    post_sale(till.ledger, sale("k-after", CARD, 500_000))
    till.client.sync_once()
    assert till.client.status()["backlog"] == 0
    assert _count(hub, "SELECT count(*) FROM sales") == 3


@pytest.mark.parametrize("before, says", [
    ("2025-13", "give a Gregorian month as YYYY-MM"),
    ("1404-09-01", "give a Gregorian month as YYYY-MM"),
    ("", "give a Gregorian month as YYYY-MM"),
    ("1404-09", "looks like a Jalali month; give the Gregorian month (Jalali 1404-09 starts on 2025-11-22"),
    ("۱۴۰۴-۰۹", "looks like a Jalali month"),
    (_back(0), f"the latest month to name now is {CUT}"),
    (_back(11), "keeps at least 13 months of sales"),
])
def test_a_month_too_recent_or_not_a_month_is_refused_and_nothing_goes(hub: Hub, till: Terminal, before: str,
                                                                        says: str) -> None:
    code, out = _prune(hub, "--before", before, "--yes")
    assert code != 0 and says in out and "Traceback" not in out
    assert _count(hub, "SELECT count(*) FROM sales") == 5
    assert _count(hub, "SELECT count(*) FROM audit WHERE action = 'sales.prune'") == 0
