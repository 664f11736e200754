"""`loyalty-hub`: the central hub's command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ledger.rules.errors import RulesError
from sync.errors import SyncError

DEFAULT_DB = "sqlite:///hub.sqlite3"
HUB_LOOPBACK = "127.0.0.1"


class HubGroup(click.Group):
    """Our errors become one line and an exit status, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SyncError, RulesError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(getattr(exc, "exit_code", 1))


@click.group(cls=HubGroup)
@click.option("--db", "db_url", envvar="LOYALTY_HUB_DB", default=DEFAULT_DB, show_default=True,
              help="Database URL: sqlite:///file or postgresql+psycopg://user@host/db ($LOYALTY_HUB_DB).")
@click.option("--config", "config_path", envvar="LOYALTY_HUB_CONFIG", default=None,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The hub's config file (messages, gateways...; see hub.example.toml) ($LOYALTY_HUB_CONFIG).")
@click.pass_context
def cli(ctx: click.Context, db_url: str, config_path: Path | None) -> None:
    """The central hub: terminals sync their ledgers here and learn what other branches did."""
    from sync.hub.config import load_hub_config

    config = load_hub_config(config_path)  # validated once, here: a bad key is one line and exit 2
    if config.hub.db and ctx.get_parameter_source("db_url") == click.core.ParameterSource.DEFAULT:
        db_url = config.hub.db
    ctx.meta["hub_config"] = config
    ctx.meta["hub_config_path"] = config_path
    ctx.obj = db_url


def _hub(db_url: str):  # type: ignore[no-untyped-def]
    from sync.hub.db import create_hub_engine, upgrade
    from sync.hub.service import Hub

    engine = create_hub_engine(db_url)
    upgrade(engine)
    return Hub(engine)


@cli.command()
@click.option("--host", default=HUB_LOOPBACK, show_default=True)
@click.option("--port", default=8780, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (PostgreSQL only: SQLite has one writer).")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option("--db", "serve_db", default=None, help="Database URL (the same as the group's --db).")
@click.pass_obj
def serve(db_url: str, host: str, port: int, workers: int, tls_cert: str | None, tls_key: str | None,
          serve_db: str | None) -> None:
    """Serve the sync API until SIGTERM."""
    db_url = serve_db or db_url
    import logging
    import os

    import uvicorn

    if workers > 1 and db_url.startswith("sqlite"):
        raise click.BadParameter("several workers need PostgreSQL; SQLite has one writer", param_hint="--workers")
    _hub(db_url)  # migrate once, before any worker starts
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ["LOYALTY_HUB_DB"] = db_url
    config_path = click.get_current_context().meta.get("hub_config_path")
    if config_path is not None:  # the workers load the same file
        os.environ["LOYALTY_HUB_CONFIG"] = str(Path(config_path).resolve())
    # no Server and Date headers: nobody reads them, and every till's poll carried them
    # 2,880 times a day (the hub's clock travels as X-Hub-Time)
    uvicorn.run("sync.hub.asgi:app", host=host, port=port, workers=workers, log_level="info", access_log=False,
                ssl_certfile=tls_cert, ssl_keyfile=tls_key, server_header=False, date_header=False)


def _operator() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "loyalty-hub"


@cli.group()
def terminals() -> None:
    """Enrol, list and revoke terminals."""


@terminals.command("add")
@click.option("--store", required=True, help="The store (branch) the terminal belongs to.")
@click.pass_obj
def terminals_add(db_url: str, store: str) -> None:
    """Print a one-time enrolment code (valid 24 hours) for a terminal of STORE."""
    code = _hub(db_url).new_enrolment_code(store)
    click.echo(code)
    click.echo(f"on the terminal: loyalty-agent enroll HUB_URL {code}", err=True)


@terminals.command("revoke")
@click.argument("terminal_id")
@click.option("--by", default=_operator, show_default="the user running it", help="Who revokes it (audited).")
@click.pass_obj
def terminals_revoke(db_url: str, terminal_id: str, by: str) -> None:
    """Refuse every further request from TERMINAL_ID."""
    _hub(db_url).revoke(terminal_id, by)
    click.echo(f"terminal {terminal_id} revoked")


@terminals.command("limit")
@click.argument("terminal_id")
@click.option("--adjust-points-per-day", "points", type=click.IntRange(0), required=True,
              help="Points of manual adjustments (either way) the terminal makes a day before the rest are held.")
@click.option("--by", default=_operator, show_default="the user running it", help="Who sets it (audited).")
@click.pass_obj
def terminals_limit(db_url: str, terminal_id: str, points: int, by: str) -> None:
    """Set TERMINAL_ID's daily limit of manual adjustments; above it they are held for
    approval (loyalty-hub adjustments)."""
    _hub(db_url).set_adjust_limit(terminal_id, points, by)
    click.echo(f"terminal {terminal_id}: manual adjustments above {points} points a day are held")


@terminals.command("list")
@click.pass_obj
def terminals_list(db_url: str) -> None:
    """The terminals, active or revoked, with their last seq and when they last synced."""
    for t in _hub(db_url).list_terminals():
        state = "revoked" if t["revoked"] else "active"
        click.echo(f"{t['id']}  store {t['store']}  {state}  last seq {t['last_seq']}  last seen {t['last_seen_at']}")


@cli.group()
def sales() -> None:
    """The sales and lines the terminals sent (the back office's detail): how long they stay."""


@sales.command("prune")
@click.option("--before", required=True, metavar="YYYY-MM",
              help="Remove the sales made before the first day of this Gregorian month (UTC), with their lines.")
@click.option("--yes", is_flag=True, help="Remove them; without it, only count what would go.")
@click.option("--by", default=_operator, show_default="the user running it", help="Who prunes (audited).")
@click.pass_obj
def sales_prune(db_url: str, before: str, yes: bool, by: str) -> None:
    """Remove old sales and their lines from the hub (entries, points and balances stay).
    The month must leave at least 13 months (this one and the twelve before it)."""
    from sync.hub.retention import prune_sales

    hub = _hub(db_url)
    done = prune_sales(hub.engine, before, hub.clock(), by, apply=yes)
    months = f", {len(done.months)} whole month(s) ({', '.join(done.months)})" if done.months else ""
    what = f"{done.sales:,} sale(s) and {done.lines:,} line(s) made before {done.before}-01{months}"
    if done.done:
        click.echo(f"removed {what}")
    elif done.sales or done.lines or done.months:
        click.echo(f"would remove {what}; run it again with --yes to remove them")
    else:
        click.echo(f"no sales made before {done.before}-01: nothing to remove")


@cli.group()
def adjustments() -> None:
    """Manual adjustments held above their terminal's daily limit: approve or reject them."""


@adjustments.command("list")
@click.option("--all", "everything", is_flag=True, help="Decided ones too.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def adjustments_list(db_url: str, everything: bool, as_json: bool) -> None:
    """Held adjustments: their points reach no balance until approved."""
    rows = _hub(db_url).adjustments(everything)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        decided = "" if r["status"] == "held" else f"  {r['status']} by {r['decided_by']}: {r['decision_reason']}"
        click.echo(f"#{r['id']}  {r['held_at']}  {r['terminal_code']}#{r['seq']} by {r['actor']}  member "
                   f"{r['member_id']}  {r['points']:+} points  ({r['reason'] or 'no reason given'}){decided}")
    click.echo(f"{sum(r['status'] == 'held' for r in rows)} adjustment(s) held")


def _decide(db_url: str, held_id: int, approve: bool, by: str, reason: str) -> None:
    row = _hub(db_url).decide_adjustment(held_id, approve, by, reason)
    gave = f"; the hub's chain gives member {row['member_id']} {row['points']:+} points" if approve else \
        "; nothing more is written"
    click.echo(f"adjustment #{held_id} {row['status']}{gave}")


@adjustments.command("approve")
@click.argument("held_id", type=int, metavar="ID")
@click.option("--by", required=True, help="Who approves it (written as the entry's actor).")
@click.option("--reason", required=True, help="Why (written into the entry and the audit).")
@click.pass_obj
def adjustments_approve(db_url: str, held_id: int, by: str, reason: str) -> None:
    """Give the member the held points: an entry of the hub's own chain, sent to every terminal."""
    _decide(db_url, held_id, True, by, reason)


@adjustments.command("reject")
@click.argument("held_id", type=int, metavar="ID")
@click.option("--by", required=True, help="Who rejects it.")
@click.option("--reason", required=True, help="Why (audited).")
@click.pass_obj
def adjustments_reject(db_url: str, held_id: int, by: str, reason: str) -> None:
    """Keep the held points cancelled; only the decision is recorded."""
    _decide(db_url, held_id, False, by, reason)


@cli.group()
def cards() -> None:
    """The programme's member cards, as the hub checks every number terminals send."""


@cards.group("ranges", invoke_without_command=True)
@click.pass_context
def cards_ranges(ctx: click.Context) -> None:
    """Show the member card ranges (none set: only payment cards are refused)."""
    if ctx.invoked_subcommand is not None:
        return
    from sync.hub.cardranges import range_text

    policy = _hub(ctx.obj).card_policy()
    if not policy.ranges:
        click.echo("no member card ranges set: every number but a payment card's is taken")
    for r in policy.ranges:
        click.echo(range_text(r))


@cards_ranges.command("set")
@click.argument("specs", nargs=-1, required=True, metavar="PREFIX:LENGTHS[:luhn]...")
@click.option("--by", default=_operator, show_default="the user running it", help="Who sets them (audited).")
@click.pass_obj
def cards_ranges_set(db_url: str, specs: tuple[str, ...], by: str) -> None:
    """Replace the member card ranges, e.g. `6395:16 77:10,12:luhn` (lengths separated by
    commas, `luhn`: the last digit is a Luhn check digit). Cards terminals send from then
    on must lie in one of them; `loyalty-hub verify` lists stored cards that do not."""
    from sync.hub.cardranges import parse_ranges, range_text

    policy = parse_ranges(specs)
    _hub(db_url).set_card_ranges(policy, by)
    click.echo("member card ranges: " + " ".join(range_text(r) for r in policy.ranges))
    for warning in policy.overlap_warnings():
        click.echo(f"warning: {warning}", err=True)


@cards_ranges.command("clear")
@click.option("--by", default=_operator, show_default="the user running it", help="Who clears them (audited).")
@click.pass_obj
def cards_ranges_clear(db_url: str, by: str) -> None:
    """Remove every range: only payment card numbers are refused."""
    from ledger.cardpolicy import CardPolicy

    _hub(db_url).set_card_ranges(CardPolicy(()), by)
    click.echo("no member card ranges set: every number but a payment card's is taken")


@cards.group("stock")
def cards_stock() -> None:
    """Pre-printed cards: import batches at head office, assign them to stores, count them."""


@cards_stock.command("import")
@click.option("--batch", "batch", required=True, help="A new batch's name (the delivery, e.g. 1405-09-print-2).")
@click.option("--first", default=None, help="First number of a printed range ...")
@click.option("--last", default=None, help="... and the last (inclusive; in a Luhn range each gets its check digit).")
@click.option("--file", "path", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Or a file: one number per line, or the first column of an .xlsx workbook.")
@click.option("--by", default=_operator, show_default="the user running it", help="Who imports it (audited).")
@click.option("--quiet", is_flag=True, help="No progress bar or summary line on stderr.")
@click.pass_obj
def cards_stock_import(db_url: str, batch: str, first: str | None, last: str | None, path: Path | None,
                       by: str, quiet: bool) -> None:
    """Take a batch of printed cards into head office's stock: every number must be a
    member card of the programme (ranges, check digit, never a payment card), new to the
    stock and not issued; if one is not, the refused numbers are listed (masked) and
    nothing is imported."""
    from ledger.progress import progress_for
    from sync.hub.stock import import_batch
    from sync.hub.stockfile import file_numbers, range_numbers

    if (path is None) == (first is None and last is None) or (path is None and (first is None or last is None)):
        raise click.UsageError("give --first and --last, or --file")
    hub = _hub(db_url)
    if path is not None:
        numbered, source = file_numbers(path), f"file {path.name}"
    else:
        numbered = range_numbers(first or "", last or "", hub.card_policy())
        source = f"range of {len(numbered)}"
    row = import_batch(hub, batch, numbered, by, source, progress=lambda label: progress_for(label, quiet=quiet))
    click.echo(f"batch {row['name']}: {row['cards']} card(s) in stock at head office")


@cards_stock.command("assign")
@click.argument("batch")
@click.option("--store", required=True, help="The store that receives the cards.")
@click.option("--count", type=click.IntRange(1), default=None, help="How many (lowest numbers first) ...")
@click.option("--all", "everything", is_flag=True, help="... or every card of the batch left at head office.")
@click.option("--by", default=_operator, show_default="the user running it", help="Who assigns them (audited).")
@click.option("--quiet", is_flag=True, help="No progress bar or summary line on stderr.")
@click.pass_obj
def cards_stock_assign(db_url: str, batch: str, store: str, count: int | None, everything: bool, by: str,
                       quiet: bool) -> None:
    """Send cards of BATCH from head office to a store; its tills receive them at their
    next sync and issue them offline."""
    from ledger.progress import progress_for
    from sync.hub.stock import assign

    if (count is None) == (not everything):
        raise click.UsageError("say how many: --count N or --all")
    done = assign(_hub(db_url), batch, store, count, by, progress=lambda label: progress_for(label, quiet=quiet))
    click.echo(f"{done['cards']} card(s) of batch {done['batch']} assigned to store {done['store']} "
               f"({done['first']} to {done['last']})")


@cards_stock.command("counts")
@click.option("--store", default=None, help="One store only.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def cards_stock_counts(db_url: str, store: str | None, as_json: bool) -> None:
    """Cards in stock at head office and at each store, issued, lost, blocked, replaced,
    and issued outside a store's stock; then the batches."""
    from sync.hub.stock import COUNT_COLUMNS, batches, stock_counts

    hub = _hub(db_url)
    with hub.engine.connect() as conn:
        rows = stock_counts(conn, store)
        listed = batches(conn) if store is None else []
    if as_json:
        click.echo(json.dumps({"counts": rows, "batches": listed}, indent=2, ensure_ascii=False))
        return
    click.echo(f"{'where':<20}" + "".join(f"{c:>14}" for c in COUNT_COLUMNS))
    for r in rows:
        click.echo(f"{r['where']:<20}" + "".join(f"{r[c]:>14}" for c in COUNT_COLUMNS))
    for b in listed:
        click.echo(f"batch {b['name']}: {b['cards']} card(s) ({b['source']}), imported {b['imported_at']} by "
                   f"{b['imported_by']}: {b['at_head_office']} at head office, {b['assigned']} assigned, "
                   f"{b['issued']} issued")


@cards.command("history")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def cards_history(db_url: str, number: str, as_json: bool) -> None:
    """A card's whole story: imported, assigned, issued (where, by whom, to which
    member), lost, blocked, replaced."""
    from ledger.cardpolicy import CardPolicy
    from ledger.errors import ValidationFailed
    from sync.hub.stock import card_history

    try:
        number = CardPolicy(()).accept(number)  # a payment card is never looked up, only refused
    except ValidationFailed as exc:
        raise click.BadParameter(str(exc), param_hint="NUMBER") from None
    hub = _hub(db_url)
    with hub.engine.connect() as conn:
        rows = card_history(conn, number)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        raise click.ClickException(f"the hub knows no card {number}")
    for r in rows:
        click.echo(f"{r['at']}  {r['event']:<28} {r['where']:<20} by {r['by'] or '-'}"
                   + (f"  {r['detail']}" if r["detail"] else ""))


@cli.group()
def rules() -> None:
    """Publish the loyalty table to every terminal."""


@rules.command("publish")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def rules_publish(db_url: str, path: Path) -> None:
    """Validate the table at PATH and publish it; terminals take it at their next sync."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="PATH") from None
    version, digest = _hub(db_url).publish_ruleset(text, str(path))
    click.echo(f"published version {version} ({digest[:12]})")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def reconcile(ctx: click.Context, as_json: bool) -> None:
    """Members overdrawn by offline redemptions at different terminals, mobile numbers
    enrolled as two members at branches that were offline, and entries whose time is
    implausible (a till's clock far off). `reconcile settle` settles an overdrawn member."""
    if ctx.invoked_subcommand is not None:
        return
    hub = _hub(ctx.obj)
    overdrawn, shared = hub.reconcile(), hub.shared_mobiles()
    times, times_total = hub.implausible_times()
    if as_json:
        click.echo(json.dumps({"overdrawn": overdrawn, "shared_mobiles": shared, "implausible_times": times,
                               "implausible_times_total": times_total}, indent=2))
        return
    for row in overdrawn:
        settled = row["settled"]
        note = "" if settled is None else (f"  settled: debt kept, by {settled['decided_by']} at "
                                           f"{settled['decided_at']} ({settled['reason']})")
        click.echo(f"member {row['member_id']}: balance {row['balance']}{note}")
        for d in row["debits"]:
            click.echo(f"  {d['created_at']}  {d['terminal_code']}#{d['seq']}  {d['kind']} {d['points']}  "
                       f"receipt {d['receipt_ref']}")
    kept = sum(r["settled"] is not None for r in overdrawn)
    click.echo(f"{len(overdrawn)} member(s) overdrawn" + (f", {kept} of them settled (debt kept)" if kept else ""))
    for row in shared:
        click.echo(f"mobile {row['mobile']}:")
        for m in row["members"]:
            click.echo(f"  member {m['member_id']}  store {m['store_code']}  enrolled {m['enrolled_at']} by "
                       f"{m['enrolled_by']}  balance {m['balance']}")
    click.echo(f"{len(shared)} mobile number(s) enrolled as more than one member")
    for t in times:
        why = "after it reached the hub" if t["flag"] == "future" else "long before its terminal was enrolled"
        click.echo(f"  {t['terminal_code']}#{t['seq']}  written {t['created_at']}, {why} (received "
                   f"{t['received_at']})")
    more = f" (the first {len(times)} shown)" if times_total > len(times) else ""
    click.echo(f"{times_total} entr(ies) with an implausible time{more}: check those terminals' clocks")


@reconcile.command("settle")
@click.argument("member_id")
@click.option("--write-off", "decision", flag_value="write-off", help="Bring the balance back to 0.")
@click.option("--keep-debt", "decision", flag_value="keep-debt", help="Keep the debt; record the decision.")
@click.option("--by", required=True, help="Who decides (written as the entry's actor).")
@click.option("--reason", required=True, help="Why (written into the entry and the audit).")
@click.pass_obj
def reconcile_settle(db_url: str, member_id: str, decision: str | None, by: str, reason: str) -> None:
    """Settle an overdrawn member with an entry of the hub's own chain, which every
    terminal takes at its next sync: --write-off gives the points back to 0, --keep-debt
    records that the debt stands (a 0-point entry)."""
    if decision is None:
        raise click.UsageError("say how: --write-off or --keep-debt")
    done = _hub(db_url).settle(member_id, decision == "write-off", by, reason)
    how = "written off: balance back to 0" if decision == "write-off" else "debt kept"
    click.echo(f"member {member_id} (balance {done['balance']}) settled, {how}; hub entry {done['entry_id']}")


@cli.command()
@click.pass_obj
def verify(db_url: str) -> None:
    """Check every terminal's hash chain (the hub's own too), every balance against the
    entries, and every stored card number against the card policy; exit 1 naming the
    first bad row. Read-only; one snapshot; bounded memory however large the hub."""
    from sync.hub.db import create_hub_engine
    from sync.hub.verify import BadRow, verify_hub

    policy = _hub(db_url).card_policy()  # (migrates first, like every command)
    engine = create_hub_engine(db_url, reader=True)
    try:
        report = verify_hub(engine, policy)
    except BadRow as exc:
        click.echo(f"verify: {exc}", err=True)
        sys.exit(1)
    finally:
        engine.dispose()
    click.echo(f"ok: {report.entries} entries in {report.terminals} chain(s), {report.balances} balance(s), "
               f"{report.card_numbers} card number(s)")


from sync.hub.messages.cli import campaign, messages  # noqa: E402  (they add themselves to `cli`)

cli.add_command(messages)
cli.add_command(campaign)

from sync.hub.memberimport.cli import members  # noqa: E402

cli.add_command(members)
from sync.hub.reports.cli import report  # noqa: E402

cli.add_command(report)


def main(argv: list[str] | None = None) -> None:
    import os

    os.umask(0o077)  # the hub's SQLite file and anything else it writes: its user's alone
    cli.main(args=argv, prog_name="loyalty-hub")


if __name__ == "__main__":  # pragma: no cover
    main()
