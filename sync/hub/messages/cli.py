"""`loyalty-hub messages ...` and `loyalty-hub campaign ...`: thin commands over the
messages package."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime, timezone
from typing import Any

import click


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _setup(ctx: click.Context) -> tuple[Any, Any]:
    """(engine, config): the database migrated first, like every command."""
    from sync.hub.cli import _hub

    return _hub(ctx.obj).engine, ctx.meta["hub_config"]


def _messaging(ctx: click.Context) -> Any:
    from sync.hub.messages.messaging import Messaging

    engine, config = _setup(ctx)
    return Messaging(engine, config)


def _operator() -> str:
    from sync.hub.cli import _operator as who

    return who()


@click.group()
def messages() -> None:
    """Messages to members: the worker that sends them, what was sent, previews, opt-outs."""


@messages.command("worker")
@click.option("--until-idle", is_flag=True, help="Stop once nothing is due (tests, cron).")
@click.pass_context
def messages_worker(ctx: click.Context, until_idle: bool) -> None:
    """Turn the sync's events into messages and send them until SIGTERM. Several may
    run against PostgreSQL (they share the queue); on SQLite run one."""
    from sync.hub.messages.errors import MessagesError
    from sync.hub.messages.worker import Worker

    engine, config = _setup(ctx)
    if not config.messages.enabled:
        raise MessagesError(f"{config.source}: messages.enabled is false; nothing to send")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    before = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with Worker(engine, config) as worker:
            click.echo(f"messages worker: gateway {config.messages.gateway}, polling every {config.worker.poll_s} s",
                       err=True)
            worker.run(stop, until_idle=until_idle)
            counts = ", ".join(f"{k} {v}" for k, v in sorted(worker.counts.items())) or "nothing"
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    click.echo(f"messages worker stopped: {counts}", err=True)


@messages.command("list")
@click.option("--status", default=None, help="queued, sending, sent, delivered, undelivered, failed, suppressed, "
                                              "cancelled.")
@click.option("--kind", default=None, help="code, welcome, receipt, tier, birthday, expiry, offer, gift_load, "
                                            "gift_spend, campaign.")
@click.option("--member", "target", default=None, help="A member id or a mobile number.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def messages_list(ctx: click.Context, status: str | None, kind: str | None, target: str | None, limit: int,
                  as_json: bool) -> None:
    """The newest messages, with their state and why (suppressed, failed...)."""
    rows = _messaging(ctx).list(status, kind, target, limit)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        why = f"  ({r['reason']})" if r["reason"] else ""
        click.echo(f"#{r['id']}  {r['created_at']}  {r['kind']}  {r['mobile']}  {r['status']}  attempts "
                   f"{r['attempts']}  {r['parts']} part(s){why}")
    click.echo(f"{len(rows)} message(s)")


@messages.command("preview")
@click.argument("template")
@click.option("--locale", type=click.Choice(["fa", "en"]), default=None, help="Default: the config's.")
@click.option("--member", "member_id", default=None, help="Render for this member (else sample values).")
@click.option("--store", default=None, help="The store whose name and settings apply.")
@click.pass_context
def messages_preview(ctx: click.Context, template: str, locale: str | None, member_id: str | None,
                     store: str | None) -> None:
    """Show TEMPLATE rendered, its length in SMS parts (Persian: 70 characters in one,
    67 a part beyond; Latin: 160, 153) and its cost at messages.price_per_part_rial."""
    p = _messaging(ctx).preview(template, locale, member_id, store)
    click.echo(p["text"])
    click.echo(f"-- {p['template']} ({p['kind']}): {p['chars']} characters, {p['encoding']}, {p['parts']} part(s), "
               f"{p['cost_rial']:,} Rial")


@messages.command("optout")
@click.argument("target", metavar="MEMBER_ID|MOBILE")
@click.option("--kind", default="all", show_default=True, help="A kind of message, or all.")
@click.option("--undo", is_flag=True, help="Forget the opt-out (messages of that kind go again).")
@click.pass_context
def messages_optout(ctx: click.Context, target: str, kind: str, undo: bool) -> None:
    """Stop messages of KIND to a member's mobile number (codes still go: the person asks for them)."""
    mobile = _messaging(ctx).choose(target, kind, None if undo else "out")
    click.echo(f"{mobile}: {kind} {'no longer opted out' if undo else 'opted out'}")


@messages.command("optin")
@click.argument("target", metavar="MEMBER_ID|MOBILE")
@click.option("--kind", default="receipt", show_default=True, help="A kind of message (receipts in opt-in mode).")
@click.option("--undo", is_flag=True, help="Forget the opt-in.")
@click.pass_context
def messages_optin(ctx: click.Context, target: str, kind: str, undo: bool) -> None:
    """Ask for messages of KIND for a member's mobile (purchase receipts when [triggers] receipt = "opt-in")."""
    mobile = _messaging(ctx).choose(target, kind, None if undo else "in")
    click.echo(f"{mobile}: {kind} {'opt-in forgotten' if undo else 'opted in'}")


@messages.command("gift-contact")
@click.argument("number")
@click.argument("mobile")
@click.pass_context
def messages_gift_contact(ctx: click.Context, number: str, mobile: str) -> None:
    """Tell MOBILE of loads and spends of gift card NUMBER (gift cards name nobody in the ledger)."""
    mobile = _messaging(ctx).gift_contact(number, mobile)
    click.echo(f"gift card *{number[-4:]}: loads and spends go to {mobile}")


@click.group()
def campaign() -> None:
    """Campaigns: one template to a segment, tier or store, with a control group; list, cancel, results."""


@campaign.command("send")
@click.option("--template", required=True, help="A template of kind campaign (messages.templates).")
@click.option("--segment", default=None, help="Members of this segment only.")
@click.option("--tier", default=None, help="Members of this tier only (their tier now).")
@click.option("--store", default=None, help="Members enrolled at this store only.")
@click.option("--at", "at_text", default=None, help="When: YYYY-MM-DD HH:MM in the stores' time; default now.")
@click.option("--control-percent", default=10, show_default=True, type=click.IntRange(0, 90),
              help="Share of the audience held out, not messaged, to compare with.")
@click.option("--seed", default=None, type=int, help="Seed of the control group's draw (default: random, printed).")
@click.option("--dry-run", is_flag=True, help="Show recipients, the first messages and the cost; queue nothing.")
@click.option("--by", default=_operator, show_default="the user running it", help="Who sends it (audited).")
@click.pass_context
def campaign_send(ctx: click.Context, template: str, segment: str | None, tier: str | None, store: str | None,
                  at_text: str | None, control_percent: int, seed: int | None, dry_run: bool, by: str) -> None:
    """Queue TEMPLATE for every member who matches (quiet hours, opt-outs and the daily
    limit still apply when each is sent); with --dry-run, only show what it would do."""
    import secrets

    from sync.hub.messages import campaigns

    engine, config = _setup(ctx)
    now = _now()
    seed = seed if seed is not None else secrets.randbelow(2**31)
    draft = campaigns.Draft(template, segment, tier, store, campaigns.parse_at(at_text, config, now),
                            control_percent, seed)
    p = campaigns.plan(engine, config, draft) if dry_run else campaigns.create(engine, config, draft, by, now)
    for text in p["first"]:
        click.echo(text)
        click.echo("--")
    head = "dry run: would queue" if dry_run else f"campaign {p['id']}: queued"
    click.echo(f"{head} {p['recipients']} message(s) ({p['parts']} part(s), {p['cost_rial']:,} Rial), control group "
               f"{p['control']} (seed {seed}), due {draft.due.isoformat(timespec='minutes')}")


@campaign.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def campaign_list(ctx: click.Context, as_json: bool) -> None:
    """Campaigns, with what became of their messages so far."""
    from sync.hub.messages import campaigns

    rows = campaigns.listing(_setup(ctx)[0])
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        states = ", ".join(f"{k} {v}" for k, v in sorted(r["messages"].items())) or "no messages"
        click.echo(f"#{r['id']}  {r['status']}  due {r['due_at']}  template {r['template']}  {r['recipients']} "
                   f"recipient(s), control {r['control']}  ({states})")


@campaign.command("cancel")
@click.argument("campaign_id", type=int, metavar="ID")
@click.option("--by", default=_operator, show_default="the user running it", help="Who cancels it (audited).")
@click.pass_context
def campaign_cancel(ctx: click.Context, campaign_id: int, by: str) -> None:
    """Cancel a campaign: its messages not sent yet are not sent."""
    from sync.hub.messages import campaigns

    n = campaigns.cancel(_setup(ctx)[0], campaign_id, by, _now())
    click.echo(f"campaign {campaign_id} cancelled: {n} message(s) not sent")


@campaign.command("results")
@click.argument("campaign_id", type=int, metavar="ID")
@click.option("--days", type=click.IntRange(1, 365),
              help="Purchases counted in this many days after the campaign was due "
              "(default: 14, campaigns.RESULT_DAYS, as the back office's workbook counts).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def campaign_results(ctx: click.Context, campaign_id: int, days: int | None, as_json: bool) -> None:
    """Sent, delivered, failed and opted out; and purchases by the messaged members
    against the control group in the DAYS after."""
    from sync.hub.messages import campaigns

    rows = campaigns.results(_setup(ctx)[0], campaign_id, campaigns.RESULT_DAYS if days is None else days)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        click.echo(f"{r['group']:>8}: {r['members']} member(s); sent {r['sent']}, delivered {r['delivered']}, failed "
                   f"{r['failed']}, opted out {r['opted_out']}; {r['buyers']} bought ({r['buyer_share']:.1%}), "
                   f"{r['sales']} sale(s), {r['amount_rial']:,} Rial")
