"""Small loyalty tables for the examples: one rule switched on at a time."""

from __future__ import annotations

import copy
from typing import Any

from ledger.rules import Ruleset, parse_ruleset

BASE: dict[str, Any] = {
    "programme": {"name": "test", "utc_offset_minutes": 210},
    "earn": {"rial_per_point": 10_000, "minimum_purchase": 100_000},
    "redemption": {"rial_per_point": 1_000, "minimum_points": 100, "step": 10, "max_share_percent": 50},
    "tiers": {
        "basis": "spend", "window_days": 365, "review_on": ["01-01"],
        "levels": [
            {"id": "bronze", "name_en": "Bronze", "name_fa": "برنزی", "threshold": 0},
            {"id": "silver", "name_en": "Silver", "name_fa": "نقره‌ای", "threshold": 50_000_000,
             "earn_multiplier_percent": 125, "discount_percent": 2},
            {"id": "gold", "name_en": "Gold", "name_fa": "طلایی", "threshold": 200_000_000,
             "earn_multiplier_percent": 150, "discount_percent": 5},
        ],
    },
}


def table(**sections: Any) -> Ruleset:
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key].update(value)
        else:
            data[key] = value
    return parse_ruleset(data, "test.toml")
