"""The seam between the ledger and the pure rules engine.

`build_snapshot` reads what the rules need to know about a member from the ledger's
tables (inside the caller's transaction, so the answer and the write agree);
`plan_sale` runs the engine and returns what the ledger will write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row

from ledger.types import AwardLine, SaleLine


@dataclass(frozen=True)
class Plan:
    awards: tuple[AwardLine, ...]
    earned_points: int
    redeem_points: int
    redeem_rial: int
    max_redeem_points: int
    max_redeem_rial: int
    redeem_problem: str | None
    discount_rial: int
    point_value_rial: int
    new_tier: str | None
    referrer_points: int
    referrer_rule_id: str | None
    suggestions: tuple[dict[str, Any], ...]
    ruleset_hash: str


def build_snapshot(conn: Connection, member: Row[Any], at: datetime, ruleset: Any) -> Any:
    from ledger.snapshots import snapshot_from_db

    return snapshot_from_db(conn, member, at, ruleset)


def plan_sale(ruleset: Any, snapshot: Any, lines: tuple[SaleLine, ...], redeem_points: int, at: datetime) -> Plan:
    from ledger import rules

    basket = rules.Basket(
        lines=tuple(rules.BasketLine(sku=x.sku, name=x.name, category=x.category, quantity=x.quantity,
                                     unit_price=x.unit_price) for x in lines),
        redeem_points=redeem_points,
    )
    plan = rules.evaluate(ruleset, snapshot, basket, at)
    awards = tuple(
        AwardLine(rule_id=x.rule_id, kind=x.kind, points=x.points, explanation_en=x.explanation_en,
                  explanation_fa=x.explanation_fa, rial=x.rial)
        for x in plan.lines
    )
    return Plan(
        awards=awards,
        earned_points=plan.total_points,
        redeem_points=plan.redeem_points,
        redeem_rial=plan.redeem_rial,
        max_redeem_points=plan.max_redeem_points,
        max_redeem_rial=plan.max_redeem_rial,
        redeem_problem=plan.redeem_problem,
        discount_rial=plan.discount_rial,
        point_value_rial=plan.point_value_rial,
        new_tier=plan.new_tier,
        referrer_points=plan.referrer_points,
        referrer_rule_id=plan.referrer_rule_id,
        suggestions=tuple({"rule_id": s.rule_id, "text_en": s.text_en, "text_fa": s.text_fa}
                          for s in plan.suggestions),
        ruleset_hash=plan.ruleset_hash,
    )
