"""Read and validate a loyalty table (TOML). Every error names the file, the rule
and the key, and what is allowed; the table's hash is computed from its validated
content, so the same rules always have the same hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from ledger.rules.dates import parse_date, parse_month_day
from ledger.rules.errors import InvalidRuleset
from ledger.rules.model import (
    Bonuses,
    Caps,
    Earn,
    Expiry,
    Multiplier,
    Offer,
    SPENT_POINTS_POLICIES,
    Redemption,
    Refunds,
    Ruleset,
    Season,
    Tier,
    Tiers,
)

OFFER_KINDS = ("spend_up", "come_back", "win_back")
TIER_BASES = ("spend", "points")
RATE_MAX = 10**12
PERCENT_MAX = 10_000
OFFERS_MAX = 200
SEASONS_MAX = 200
MULTIPLIERS_MAX = 5_000


class _Section:
    """One table of the file, read key by key; unknown keys are refused."""

    def __init__(self, source: str, where: str, data: Any) -> None:
        self.source, self.where = source, where
        if not isinstance(data, dict):
            raise InvalidRuleset(source, where, f"must be a table, got {type(data).__name__}")
        self.data = data
        self.read: set[str] = set()

    def fail(self, key: str, message: str) -> InvalidRuleset:
        return InvalidRuleset(self.source, f"{self.where}.{key}" if self.where else key, message)

    def raw(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return self.data.get(key, default)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0, maximum: int = RATE_MAX) -> int:
        value = self.raw(key, default)
        if value is None:
            raise self.fail(key, "is required")
        if type(value) is not int:
            raise self.fail(key, f"must be a whole number, got {value!r}")
        if not minimum <= value <= maximum:
            raise self.fail(key, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def text(self, key: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self.raw(key, default)
        if value is None:
            raise self.fail(key, "is required")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be non-empty text, got {value!r}")
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value.strip()

    def strs(self, key: str) -> tuple[str, ...]:
        value = self.raw(key, [])
        if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
            raise self.fail(key, f"must be a list of names, got {value!r}")
        return tuple(x.strip() for x in value)

    def date(self, key: str, required: bool = False) -> Any:
        value = self.raw(key)
        if value is None:
            if required:
                raise self.fail(key, "is required")
            return None
        try:
            return parse_date(str(value) if not isinstance(value, str) else value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None

    def table(self, key: str) -> "_Section":
        return _Section(self.source, f"{self.where}.{key}" if self.where else key, self.raw(key, {}))

    def tables(self, key: str, limit: int) -> list[dict[str, Any]]:
        value = self.raw(key, [])
        if not isinstance(value, list):
            raise self.fail(key, "must be an array of tables ([[...]])")
        if len(value) > limit:
            raise self.fail(key, f"may have at most {limit} entries, has {len(value)}")
        return value

    def done(self) -> None:
        extra = sorted(set(self.data) - self.read)
        if extra:
            raise self.fail(extra[0], "is not a known key here (check its spelling)")


def _multipliers(sec: _Section, key: str, name: str) -> tuple[Multiplier, ...]:
    out: list[Multiplier] = []
    seen: set[str] = set()
    for i, raw in enumerate(sec.tables(key, MULTIPLIERS_MAX)):
        item = _Section(sec.source, f"{sec.where}.{key}[{i}]", raw)
        k = item.text(name)
        if k in seen:
            raise item.fail(name, f"{k!r} is listed twice")
        seen.add(k)
        out.append(Multiplier(k, item.integer("multiplier_percent", maximum=PERCENT_MAX)))
        item.done()
    return tuple(out)


def _tiers(sec: _Section) -> tuple[Tiers, tuple[Tier, ...]]:
    levels: list[Tier] = []
    for i, raw in enumerate(sec.tables("levels", 20)):
        item = _Section(sec.source, f"tiers.levels[{i}]", raw)
        tid = item.text("id")
        item.where = f"tier {tid!r}"
        tier = Tier(
            id=tid,
            name_en=item.text("name_en"),
            name_fa=item.text("name_fa"),
            threshold=item.integer("threshold"),
            earn_percent=item.integer("earn_multiplier_percent", 100, minimum=100, maximum=PERCENT_MAX),
            discount_percent=item.integer("discount_percent", 0, maximum=100),
        )
        item.done()
        if levels and tier.threshold <= levels[-1].threshold:
            raise item.fail("threshold", f"must be above the tier before ({levels[-1].id}: {levels[-1].threshold})")
        if any(t.id == tid for t in levels):
            raise item.fail("id", "is used by another tier")
        levels.append(tier)
    if not levels:
        raise sec.fail("levels", "at least one tier is required")
    if levels[0].threshold != 0:
        raise InvalidRuleset(sec.source, f"tier {levels[0].id!r}.threshold", "the first tier is the entry tier: it must be 0")
    review = []
    for text in sec.strs("review_on"):
        try:
            review.append(parse_month_day(text))
        except ValueError as exc:
            raise sec.fail("review_on", str(exc)) from None
    policy = Tiers(
        basis=sec.text("basis", "spend", choices=TIER_BASES),
        window_days=sec.integer("window_days", 365, minimum=1, maximum=3660),
        review_days=tuple(review or [(1, 1)]),
        levels=tuple(levels),
    )
    sec.done()
    return policy, tuple(levels)


def _season(source: str, i: int, raw: Any, earn: Earn, redemption: Redemption) -> Season:
    item = _Section(source, f"seasons[{i}]", raw)
    sid = item.text("id")
    item.where = f"season {sid!r}"
    season = Season(
        id=sid,
        name_en=item.text("name_en", sid),
        name_fa=item.text("name_fa", sid),
        start=item.date("from", required=True),
        end=item.date("to", required=True),
        earn_rial_per_point=item.integer("earn_rial_per_point", earn.rial_per_point, minimum=1),
        redeem_rial_per_point=item.integer("redeem_rial_per_point", redemption.rial_per_point, minimum=1),
    )
    item.done()
    if season.end < season.start:
        raise item.fail("to", "is before `from`")
    return season


def _offer(source: str, i: int, raw: Any, tier_ids: set[str]) -> Offer:
    item = _Section(source, f"offers[{i}]", raw)
    oid = item.text("id")
    item.where = f"offer {oid!r}"
    kind = item.text("kind", choices=OFFER_KINDS)
    need = {"spend_up": ("credit_percent",), "come_back": ("credit_percent", "within_days"),
            "win_back": ("inactive_days", "points")}[kind]
    values: dict[str, Any] = {}
    for key in ("credit_percent", "basket_ratio_percent", "minimum_amount", "within_days", "inactive_days",
                "points", "min_history_visits", "min_average_gap_days", "max_average_gap_days", "max_uses"):
        if key in need and key not in item.data:
            raise item.fail(key, f"is required for a {kind} offer")
        maximum = 100 if key == "credit_percent" else PERCENT_MAX if key == "basket_ratio_percent" else RATE_MAX
        values[key] = item.integer(key, 0, maximum=maximum)
    if kind == "spend_up" and not (values["basket_ratio_percent"] or values["minimum_amount"]):
        raise item.fail("basket_ratio_percent", "a spend_up offer needs basket_ratio_percent or minimum_amount")
    for key in need:
        if values[key] == 0:
            raise item.fail(key, "must be above 0")
    tiers = item.strs("tiers")
    for t in tiers:
        if t not in tier_ids:
            raise item.fail("tiers", f"{t!r} is not a tier of this table ({', '.join(sorted(tier_ids))})")
    offer = Offer(id=oid, kind=kind, valid_from=item.date("valid_from"), valid_to=item.date("valid_to"),
                  max_uses=values.pop("max_uses"), tiers=tiers, segments=item.strs("segments"), **values)
    item.done()
    if offer.valid_from and offer.valid_to and offer.valid_to < offer.valid_from:
        raise item.fail("valid_to", "is before valid_from")
    return offer


def parse_ruleset(data: dict[str, Any], source: str = "<ruleset>") -> Ruleset:
    root = _Section(source, "", data)
    prog = root.table("programme")
    name = prog.text("name", "Loyalty programme")
    offset = prog.integer("utc_offset_minutes", 210, minimum=-720, maximum=840)
    prog.done()

    e = root.table("earn")
    earn = Earn(
        rial_per_point=e.integer("rial_per_point", minimum=1),
        minimum_purchase=e.integer("minimum_purchase", 0),
        categories=_multipliers(e, "categories", "category"),
        skus=_multipliers(e, "skus", "sku"),
    )
    e.done()

    r = root.table("redemption")
    redemption = Redemption(
        rial_per_point=r.integer("rial_per_point", minimum=1),
        minimum_points=r.integer("minimum_points", 0),
        step=r.integer("step", 1, minimum=1),
        max_share_percent=r.integer("max_share_percent", 100, maximum=100),
    )
    r.done()

    policy, levels = _tiers(root.table("tiers"))
    tier_ids = {t.id for t in levels}

    seasons = tuple(_season(source, i, raw, earn, redemption) for i, raw in enumerate(root.tables("seasons", SEASONS_MAX)))
    ordered = sorted(seasons, key=lambda s: s.start)
    for a, b in zip(ordered, ordered[1:]):
        if b.start <= a.end:
            raise InvalidRuleset(source, f"season {b.id!r}.from", f"overlaps season {a.id!r}; seasons may not overlap")
    ids = [s.id for s in seasons]
    if len(set(ids)) != len(ids):
        raise InvalidRuleset(source, "seasons", "two seasons have the same id")

    b = root.table("bonuses")
    bonuses = Bonuses(
        signup_points=b.integer("signup_points", 0),
        birthday_points=b.integer("birthday_points", 0),
        birthday_window_days=b.integer("birthday_window_days", 7, maximum=183),
        referral_points=b.integer("referral_points", 0),
        referral_minimum_purchase=b.integer("referral_minimum_purchase", 0),
        streak_points=b.integer("streak_points", 0),
        streak_every=b.integer("streak_every", 5, minimum=2, maximum=1000),
        streak_within_days=b.integer("streak_within_days", 30, minimum=1, maximum=3660),
    )
    b.done()

    offers = tuple(_offer(source, i, raw, tier_ids) for i, raw in enumerate(root.tables("offers", OFFERS_MAX)))
    offer_ids = [o.id for o in offers]
    if len(set(offer_ids)) != len(offer_ids):
        raise InvalidRuleset(source, "offers", "two offers have the same id")

    c = root.table("caps")
    caps = Caps(points_per_sale=c.integer("points_per_sale", 0), points_per_member_per_day=c.integer("points_per_member_per_day", 0))
    c.done()
    x = root.table("expiry")
    expiry = Expiry(months=x.integer("months", 0, maximum=600), warn_days=x.integer("warn_days", 30, minimum=1, maximum=366))
    x.done()
    f = root.table("refunds")
    refunds = Refunds(spent_points=f.text("spent_points", "debt", choices=SPENT_POINTS_POLICIES))
    f.done()
    root.done()

    ruleset = Ruleset(name=name, utc_offset_minutes=offset, earn=earn, tiers=levels, tier_policy=policy,
                      seasons=seasons, redemption=redemption, bonuses=bonuses, offers=offers, caps=caps,
                      expiry=expiry, refunds=refunds)
    return dataclasses.replace(ruleset, hash=ruleset_hash(ruleset))


def ruleset_hash(ruleset: Ruleset) -> str:
    content = dataclasses.asdict(dataclasses.replace(ruleset, hash=""))
    text = json.dumps(content, sort_keys=True, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_ruleset(path: str | Path) -> Ruleset:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidRuleset(str(path), "", f"cannot read the loyalty table: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRuleset(str(path), "", "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidRuleset(str(path), "", f"is not valid TOML: {exc}") from None
    return parse_ruleset(data, str(path))


_DEFAULT: Ruleset | None = None


def default_ruleset() -> Ruleset:
    """The built-in loyalty table (ledger/rules/default.toml)."""
    global _DEFAULT
    if _DEFAULT is None:
        text = resources.files("ledger.rules").joinpath("default.toml").read_text("utf-8")
        _DEFAULT = parse_ruleset(tomllib.loads(text), "built-in default table")
    return _DEFAULT
