"""Rules evaluations per second: a 50-line basket under a 30-rule loyalty table.

The floor, measured in the same run, is the least any engine must do: walk the 50
lines and total them. Last line: one JSON object. Budget: >= 20,000 evaluations/s.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.rules import Basket, BasketLine, MemberSnapshot, evaluate, parse_ruleset  # noqa: E402
from tests.rules.tables import BASE  # noqa: E402

ROUNDS = 20
PER_ROUND = 1_000


def thirty_rules() -> dict:
    data = dict(BASE)
    data["earn"] = {**BASE["earn"], "categories": [{"category": f"c{i}", "multiplier_percent": 100 + i * 10}
                                                   for i in range(10)],
                    "skus": [{"sku": f"s{i}", "multiplier_percent": 300} for i in range(5)]}
    data["seasons"] = [{"id": f"season{i}", "from": f"140{4 + i}-01-01", "to": f"140{4 + i}-01-13",
                        "earn_rial_per_point": 5_000} for i in range(3)]
    data["bonuses"] = {"signup_points": 100, "birthday_points": 200, "referral_points": 300,
                       "referral_minimum_purchase": 1_000_000, "streak_points": 50}
    data["offers"] = [
        {"id": "spend-up", "kind": "spend_up", "basket_ratio_percent": 400, "minimum_amount": 1_000_000,
         "credit_percent": 20, "max_uses": 1},
        {"id": "come-back", "kind": "come_back", "within_days": 20, "credit_percent": 20, "max_uses": 1},
        {"id": "win-back", "kind": "win_back", "inactive_days": 120, "points": 300},
        {"id": "vip", "kind": "spend_up", "minimum_amount": 5_000_000, "credit_percent": 5, "segments": ["vip"]},
    ]
    data["caps"] = {"points_per_sale": 50_000, "points_per_member_per_day": 100_000}
    data["expiry"] = {"months": 12}
    return data  # 15 multipliers + 3 tiers + 3 seasons + 4 bonuses + 4 offers + 2 caps = 31 rules


def main() -> None:
    rules = parse_ruleset(thirty_rules(), "bench")
    now = datetime(2026, 6, 1, 9, tzinfo=timezone.utc)
    snap = MemberSnapshot("m", "silver", 50_000, segment="vip", birth_date=date(1990, 6, 3), has_referrer=True,
                          purchase_count=12, total_spend=9_000_000, first_visit_at=now - timedelta(days=120),
                          last_visit_at=now - timedelta(days=8),
                          recent_visits=tuple(now - timedelta(days=d) for d in (8, 15, 22)))
    lines = tuple(BasketLine(f"s{i % 7}", f"item {i}", f"c{i % 12}", 1 + i % 3, 10_000 + i * 7_919)
                  for i in range(50))
    basket = Basket(lines, redeem_points=100)

    def floor_once() -> int:
        return sum(line.quantity * line.unit_price for line in lines)

    def measure(fn) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
        per_call_ms: list[float] = []
        start_all = time.perf_counter()
        for _ in range(ROUNDS):
            start = time.perf_counter()
            for _ in range(PER_ROUND):
                fn()
            per_call_ms.append((time.perf_counter() - start) * 1000 / PER_ROUND)
        return ROUNDS * PER_ROUND / (time.perf_counter() - start_all), per_call_ms

    evaluate(rules, snap, basket, now)  # warm up
    ops, rounds = measure(lambda: evaluate(rules, snap, basket, now))
    floor_ops, _ = measure(floor_once)
    # p99 of single evaluations, timed one by one
    single = []
    for _ in range(5_000):
        t = time.perf_counter()
        evaluate(rules, snap, basket, now)
        single.append((time.perf_counter() - t) * 1000)
    single.sort()
    print(f"rules: {len(rules.earn.categories) + len(rules.earn.skus) + len(rules.tiers) + len(rules.seasons) + 4 + len(rules.offers) + 2}"
          f", lines: {len(lines)}, median round {statistics.median(rounds):.4f} ms/eval")
    print(json.dumps({"bench": "rules_eval", "ops_per_s": round(ops), "p50_ms": round(single[len(single) // 2], 4),
                      "p99_ms": round(single[int(len(single) * 0.99)], 4), "floor_ops_per_s": round(floor_ops),
                      "ratio": round(ops / floor_ops, 4), "budget_ops_per_s": 20_000}))


if __name__ == "__main__":
    main()
