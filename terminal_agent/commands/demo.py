"""`loyalty-agent demo`: a day at the till on a fresh ledger, narrated."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from ledger import backup as backups
from ledger.errors import CardReplaced
from ledger.sales import post_sale, quote, refund
from ledger.service import Ledger
from ledger.types import RefundRequest, SaleLine, SaleRequest
from ledger.verify import verify
from terminal_agent.commands.context import AgentContext, pass_ctx

DEMO_CARD = "6395000000001234"
DEMO_NEW_CARD = "6395000000005678"


def _say(step: str, text: str) -> None:
    click.echo(click.style(f"[{step}] ", bold=True) + text)


def _basket(*items: tuple[str, str, str, int, int]) -> tuple[SaleLine, ...]:
    return tuple(SaleLine(sku=s, name=n, category=c, quantity=q, unit_price=p) for s, n, c, q, p in items)


@click.command("demo")
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-data"),
              show_default=True, help="Folder for the demo's own ledger (emptied first).")
@pass_ctx
def group(actx: AgentContext, folder: Path) -> None:
    """Walk through a day at the till on a fresh demo ledger: enrol, earn, redeem, refund, replace a card."""
    from terminal_agent.ledgers import card_policy, configured_ruleset

    cfg = actx.config
    if (folder / "ledger.sqlite3").exists():
        shutil.rmtree(folder)
    led = Ledger.open(folder / "ledger.sqlite3", store=cfg.agent.store, terminal=cfg.agent.terminal,
                      ruleset=configured_ruleset(cfg), card_policy=card_policy(cfg))
    try:
        _walk(led, folder)
    finally:
        led.close()


def _walk(led: Ledger, folder: Path) -> None:
    _say("ruleset", f"loyalty table {led.ruleset.hash[:12]}…, tiers: {', '.join(t.id for t in led.ruleset.tiers)}")
    m = led.enrol_member(name="Sara Ahmadi", mobile="0912 345 6789", actor="manager")
    led.issue_card(member_id=m.id, number=DEMO_CARD, technology="magstripe", actor="manager")
    _say("enrol", f"member {m.name} ({m.mobile}), card …{DEMO_CARD[-4:]}, tier {m.tier}, "
                  f"balance {led.balance(m.id)} points")
    basket = _basket(("1001", "Rice 10kg", "grocery", 1, 4_500_000), ("2001", "Cheese", "dairy", 2, 850_000),
                     ("9001", "Cigarettes", "tobacco", 1, 600_000))
    plan = quote(led, DEMO_CARD, basket)
    _say("quote", f"basket of {sum(x.total for x in basket):,} Rial would earn {plan.earned_points} points")
    for award in plan.awards:
        _say("  why", f"{award.points:>6}  {award.explanation_en}  |  {award.explanation_fa}")
    sale = post_sale(led, SaleRequest(idempotency_key="demo-1", card_number=DEMO_CARD, receipt_ref="R-0001",
                                      lines=basket))
    _say("sale", f"R-0001 committed: +{sale.earned_points} points, balance {sale.balance}, tier {sale.tier}")
    again = post_sale(led, SaleRequest(idempotency_key="demo-1", card_number=DEMO_CARD, receipt_ref="R-0001",
                                       lines=basket))
    _say("retry", f"the POS retried R-0001 with the same key: same answer, nothing written ({again.replayed=})")
    for i in range(3):
        post_sale(led, SaleRequest(idempotency_key=f"demo-big-{i}", card_number=DEMO_CARD,
                                   receipt_ref=f"R-01{i}", lines=_basket(("3001", "TV", "electronics", 1, 60_000_000))))
    _say("sales", f"three large purchases later: balance {led.balance(m.id)} points, tier {led.member(m.id).tier}")
    small = _basket(("1002", "Bread", "grocery", 2, 150_000), ("2002", "Milk", "dairy", 3, 220_000))
    can = quote(led, DEMO_CARD, small)
    redeem = post_sale(led, SaleRequest(idempotency_key="demo-2", card_number=DEMO_CARD, receipt_ref="R-0002",
                                        lines=small, redeem_points=can.max_redeem_points))
    _say("redeem", f"R-0002 paid {redeem.redeemed_rial:,} Rial with {redeem.redeemed_points} points; "
                   f"balance {redeem.balance}")
    back = refund(led, RefundRequest(idempotency_key="demo-3", sale_id=redeem.sale_id))
    _say("refund", f"R-0002 refunded: {back.returned_points} points returned, {back.reversed_points} reversed; "
                   f"balance {back.balance}")
    led.replace_card(old_number=DEMO_CARD, new_number=DEMO_NEW_CARD, actor="manager", reason="lost")
    _say("replace", f"card …{DEMO_CARD[-4:]} lost; card …{DEMO_NEW_CARD[-4:]} issued; "
                    f"balance still {led.balance(m.id)}")
    try:
        led.find_member(DEMO_CARD)
    except CardReplaced as refused:
        _say("refused", str(refused))
    info = backups.backup_now(Path(led.engine.url.database or ""), folder / "backups", keep=3)
    _say("backup", f"{info.path.name}: {info.entries} entries, verified")
    report = verify(led.engine)
    _say("verify", f"{'ok' if report.ok else 'FAILED'}: {report.entries_checked} entries, "
                   f"{report.members} balances match their entries")
    from ledger.reports.excel import export

    workbook = folder / "report.xlsx"
    written = export(Path(led.engine.url.database or ""), workbook, locale="fa")
    _say("report", f"{workbook}: " + ", ".join(f"{k} {v}" for k, v in written.items()) + " rows (open it in Excel)")
