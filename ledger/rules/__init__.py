"""The pure rules engine: the loyalty table in, an award plan with explanations out.

No I/O, no clock and no database in the evaluation: `evaluate(ruleset, snapshot,
basket, at)` is a function of its arguments. Loading a table from a file is the one
place that reads (`load_ruleset`).
"""

from ledger.rules.engine import evaluate, point_value_at, qualifying_tier, season_at
from ledger.rules.errors import InvalidRuleset, RulesError
from ledger.rules.lifecycle import (
    ExpiryOutlook,
    Lot,
    add_months,
    expiry_outlook,
    reviewed_tier,
    signup_bonus,
    tier_review_due,
)
from ledger.rules.loader import default_ruleset, load_ruleset, parse_ruleset
from ledger.rules.model import (
    Basket,
    BasketLine,
    MemberSnapshot,
    Offer,
    Plan,
    PlanLine,
    Ruleset,
    Suggestion,
    Tier,
)

__all__ = [
    "Basket", "BasketLine", "ExpiryOutlook", "InvalidRuleset", "Lot", "MemberSnapshot", "Offer", "Plan",
    "PlanLine", "Ruleset", "RulesError", "Suggestion", "Tier", "add_months", "default_ruleset", "evaluate",
    "expiry_outlook", "load_ruleset", "parse_ruleset", "point_value_at", "qualifying_tier", "reviewed_tier", "season_at",
    "signup_bonus", "tier_review_due",
]
