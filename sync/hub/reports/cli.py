"""`loyalty-hub report export`: a thin command over sync.hub.reports.export."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import click

PERSON_CHARS_MAX = 64  # the audit's actor column


def _day(text: str | None, option: str) -> date | None:
    from ledger.reports.days import parse_day

    if text is None:
        return None
    try:
        return parse_day(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def audit_export(hub: Any, by: str, path: str, **detail: Any) -> None:
    """One audit row for an export: who, when, which file, the filters and the rows."""
    from sync.hub.service import record

    with hub.engine.begin() as conn:
        record(conn, hub.clock(), by[:PERSON_CHARS_MAX], "report.export", path[-64:], path=path, **detail)


@click.group("report")
def report() -> None:
    """The back office's Excel report of the whole chain."""


@report.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "first", default=None, help="First day, Jalali (1405/09/01) or Gregorian (2026-11-22); "
                                                    "default: 30 days before --to.")
@click.option("--to", "last", default=None, help="Last day (included), Jalali or Gregorian; default: today.")
@click.option("--store", "stores", multiple=True, help="Only this store (repeat for more).")
@click.option("--tier", "tiers", multiple=True, help="Only members of this tier (repeat for more).")
@click.option("--segment", "segments", multiple=True,
              help="Only members of this RFM segment (repeat for more): champions, loyal, new, at_risk, "
                   "hibernating, regular, no_purchase.")
@click.option("--lang", type=click.Choice(["fa", "en"]), default="fa", show_default=True,
              help="Language: fa (right to left, Jalali dates beside Excel dates) or en.")
@click.option("--sheets", default=None, help="Only these sheets, comma-separated (default: all).")
@click.option("--quiet", is_flag=True, help="No progress bar or summary line.")
@click.option("--by", default=None, help="Who exports it (audited; default: the user running it).")
@click.pass_obj
def export(db_url: str, out: Path, first: str | None, last: str | None, stores: tuple[str, ...],
           tiers: tuple[str, ...], segments: tuple[str, ...], lang: str, sheets: str | None, quiet: bool,
           by: str | None) -> None:
    """Write the chain's workbook to OUT (.xlsx): KPIs for the period and the one before,
    members, card issuance, sales, sale lines, statistics, lost/replaced/blocked cards,
    redemptions, gift cards, RFM segments and charts. Read-only, one snapshot."""
    from ledger.progress import progress_for
    from ledger.reports.days import days_of, local_today
    from sync.hub.cli import _hub, _operator
    from sync.hub.db import create_hub_engine
    from sync.hub.reports.export import SHEETS
    from sync.hub.reports.export import export as write_workbook
    from sync.hub.reports.queries import Filters

    now = datetime.now(timezone.utc)
    try:
        days = days_of(_day(first, "--from"), _day(last, "--to"), local_today(now))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--from/--to") from None
    chosen = [s.strip() for s in sheets.split(",") if s.strip()] if sheets else list(SHEETS)
    hub = _hub(db_url)  # migrated first, like every command
    engine = create_hub_engine(db_url, reader=True)
    try:
        written = write_workbook(engine, out, Filters(days, stores, tiers, segments), locale=lang, now=now,
                                 sheets=chosen, progress=progress_for(f"report {out.name}", quiet=quiet))
    finally:
        engine.dispose()
    # the workbook holds members' names and mobiles: who took them, and which, is kept
    audit_export(hub, by or _operator(), str(out.resolve()), first=days.first.isoformat(), last=days.last.isoformat(),
                     stores=list(stores), tiers=list(tiers), segments=list(segments), rows=written)
    click.echo(f"{out}: " + ", ".join(f"{k} {v:,}" for k, v in written.items()))
