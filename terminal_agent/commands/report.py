"""`loyalty-agent report export`: the back office's Excel workbook from this ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from ledger.rules.dates import parse_date
from ledger.timefmt import IRAN_OFFSET
from terminal_agent.commands.context import AgentContext, pass_ctx


def _day_start(text: str | None, option: str) -> datetime | None:
    """A Jalali or Gregorian date as the UTC instant its day begins in the store."""
    if not text:
        return None
    try:
        day = parse_date(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - IRAN_OFFSET


@click.group("report")
def group() -> None:
    """Back-office reports (read-only: safe while the agent runs)."""


@group.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--sheets", default=None,
              help="Sheets to write, comma-separated (default: all): kpis, members, sales, entries, rfm, "
                   "card_issuance, sale_lines, cards_out_of_use, redemptions, gift_cards.")
@click.option("--from", "since", default=None, help="First day, Jalali (1405-01-01) or Gregorian.")
@click.option("--to", "until", default=None, help="Last day (included), Jalali or Gregorian.")
@click.option("--lang", type=click.Choice(["fa", "en"]), default=None, help="Language (default: agent.locale).")
@click.option("--quiet", is_flag=True, help="No progress bar or summary line.")
@pass_ctx
def export(actx: AgentContext, out: str, sheets: str | None, since: str | None, until: str | None,
           lang: str | None, quiet: bool) -> None:
    """Write this store's Excel workbook (its own members, sales and points; the chain's
    is `loyalty-hub report export`): KPIs, members, sales, entries, RFM segments, card
    issuance, sale lines, lost/replaced/blocked cards, redemptions and gift cards."""
    from ledger.progress import progress_for
    from ledger.reports.excel import SHEETS, Period
    from ledger.reports.excel import export as write_workbook

    end = _day_start(until, "--to")
    period = Period(_day_start(since, "--from"), end + timedelta(days=1) if end else None)
    chosen = [s.strip() for s in sheets.split(",") if s.strip()] if sheets else list(SHEETS)
    written = write_workbook(actx.config.ledger_path, Path(out), sheets=chosen, locale=lang or actx.config.agent.locale,
                             period=period, progress=progress_for(f"report {Path(out).name}", quiet=quiet))
    click.echo(f"{out}: " + ", ".join(f"{k} {v:,} rows" for k, v in written.items()))
