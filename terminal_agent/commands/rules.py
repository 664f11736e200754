"""`loyalty-agent rules ...`: check a loyalty table, explain a basket, and the
periodic runs (point expiry, the tier review)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ledger.errors import ValidationFailed
from ledger.rules import load_ruleset
from terminal_agent.commands.context import AgentContext, pass_ctx

BASKET_FILE_BYTES_MAX = 1_000_000


@click.group("rules")
def group() -> None:
    """The loyalty table: check it, explain it, run expiry and the tier review."""


@group.command("check")
@click.argument("path", type=click.Path(dir_okay=False))
def check(path: str) -> None:
    """Validate a loyalty table file and summarise what it says."""
    r = load_ruleset(path)
    click.echo(f"{path}: ok ({r.name}), hash {r.hash}")
    click.echo(f"  earn: 1 point per {r.earn.rial_per_point:,} Rial, minimum purchase {r.earn.minimum_purchase:,} Rial"
               f"; {len(r.earn.categories)} category and {len(r.earn.skus)} SKU multipliers")
    click.echo("  tiers: " + ", ".join(f"{t.id} from {t.threshold:,} (x{t.earn_percent}%, -{t.discount_percent}%)"
                                       for t in r.tiers) + f" by {r.tier_policy.basis}")
    for s in r.seasons:
        click.echo(f"  season {s.id}: {s.start} to {s.end}, 1 point per {s.earn_rial_per_point:,} Rial, "
                   f"a point pays {s.redeem_rial_per_point:,} Rial")
    click.echo(f"  redemption: a point pays {r.redemption.rial_per_point:,} Rial, at least "
               f"{r.redemption.minimum_points}, steps of {r.redemption.step}, up to {r.redemption.max_share_percent}%"
               " of a basket")
    for o in r.offers:
        click.echo(f"  offer {o.id}: {o.kind}")
    click.echo(f"  expiry: {'never' if not r.expiry.months else f'{r.expiry.months} months'}")


def _basket(path: Path) -> tuple[tuple[Any, ...], int]:
    from ledger.types import SaleLine

    try:
        raw = path.read_bytes()[:BASKET_FILE_BYTES_MAX + 1]
        data = json.loads(raw)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}", param_hint="--basket") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"{path} is not JSON: {exc}", param_hint="--basket") from None
    if isinstance(data, list):
        data = {"lines": data}
    if not isinstance(data, dict) or not isinstance(data.get("lines"), list) or not data["lines"]:
        raise click.BadParameter(f'{path}: expected {{"lines": [{{"sku", "name", "category", "quantity", '
                                 '"unit_price"}}, ...], "redeem_points": 0}', param_hint="--basket")
    lines = []
    for i, line in enumerate(data["lines"], start=1):
        if not isinstance(line, dict):
            raise ValidationFailed(f"{path}: line {i} must be an object")
        try:
            lines.append(SaleLine(sku=line.get("sku"), name=line.get("name", line.get("sku")),
                                  category=line.get("category", "general"), quantity=line.get("quantity", 1),
                                  unit_price=line.get("unit_price")))
        except ValidationFailed as exc:
            raise ValidationFailed(f"{path}: line {i}: {exc}") from None
    redeem = data.get("redeem_points", 0)
    if type(redeem) is not int or redeem < 0:
        raise ValidationFailed(f"{path}: redeem_points must be a whole number of points, got {redeem!r}")
    return tuple(lines), redeem


@group.command("explain")
@click.option("--member", "who", required=True, help="Card number or mobile number of the member.")
@click.option("--basket", "basket_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help='JSON file: {"lines": [{"sku", "name", "category", "quantity", "unit_price"}], "redeem_points"}.')
@click.option("--lang", type=click.Choice(["en", "fa"]), default=None, help="Language (default: the config's locale).")
@pass_ctx
def explain(actx: AgentContext, who: str, basket_path: Path, lang: str | None) -> None:
    """What a basket would earn for a member, rule by rule, without writing anything."""
    from ledger.sales import quote

    lines, redeem = _basket(basket_path)
    lang = lang or ("fa" if actx.config.agent.locale == "fa" else "en")
    led = _open(actx)
    try:
        plan = quote(led, who, lines, redeem)
    finally:
        led.close()
    width = max(len(a.rule_id) for a in plan.awards) if plan.awards else 4
    for a in plan.awards:
        text = a.explanation_fa if lang == "fa" else a.explanation_en
        click.echo(f"{a.rule_id:<{width}}  {a.points:>8}  {text}")
    click.echo(f"{'total':<{width}}  {plan.earned_points:>8}  points")
    if plan.redeem_points:
        click.echo(f"redeem {plan.redeem_points} points = {plan.redeem_rial:,} Rial")
    if plan.redeem_problem:
        click.echo(f"redemption refused: {plan.redeem_problem}")
    click.echo(f"may redeem up to {plan.max_redeem_points} points ({plan.max_redeem_rial:,} Rial)")
    for s in plan.suggestions:
        click.echo(f"offer: {s['text_fa'] if lang == 'fa' else s['text_en']}")
    click.echo(f"ruleset {plan.ruleset_hash[:12]}")


def _open(actx: AgentContext):  # type: ignore[no-untyped-def]
    from terminal_agent.ledgers import open_ledger

    return open_ledger(actx.config)


@group.command("expire")
@click.option("--actor", default="expiry-run", show_default=True, help="Recorded on each expire entry.")
@pass_ctx
def expire(actx: AgentContext, actor: str) -> None:
    """Expire points older than the table's expiry period (first in, first out)."""
    from ledger.lifecycle import expire_points

    led = _open(actx)
    try:
        done = expire_points(led, actor)
    finally:
        led.close()
    for member_id, points in done:
        click.echo(f"{member_id}: {points} points expired")
    click.echo(f"{len(done)} member(s), {sum(p for _, p in done)} points expired")


@group.command("expiring")
@pass_ctx
def expiring(actx: AgentContext) -> None:
    """Members whose points expire within the warning window (30 days by default)."""
    from ledger.lifecycle import expiring_soon

    led = _open(actx)
    try:
        soon = expiring_soon(led)
    finally:
        led.close()
    for item in soon:
        click.echo(f"{item.member_id}: {item.points} points, first on {item.first_expiry:%Y-%m-%d}")
    click.echo(f"{len(soon)} member(s) with points expiring soon")


@group.command("review-tiers")
@click.option("--actor", default="tier-review", show_default=True)
@click.option("--force", is_flag=True, help="Review even when today is not a review day of the table.")
@pass_ctx
def review(actx: AgentContext, actor: str, force: bool) -> None:
    """Move members up or down to the tier their window earns (downgrades happen only here)."""
    from ledger.lifecycle import review_tiers
    from ledger.rules.dates import is_review_day, local_date

    led = _open(actx)
    try:
        today = local_date(led.clock(), led.ruleset.utc_offset_minutes)
        if not force and not is_review_day(today, led.ruleset.tier_policy.review_days):
            click.echo(f"{today} is not a tier review day of this table; use --force to review anyway")
            return
        changes = review_tiers(led, actor)
    finally:
        led.close()
    for member_id, old, new in changes:
        click.echo(f"{member_id}: {old} -> {new}")
    click.echo(f"{len(changes)} tier change(s)")
