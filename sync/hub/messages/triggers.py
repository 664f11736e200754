"""What happened, as the messages it calls for. Pure: plain facts in, planned
messages out, each with the key that makes it once per trigger and member.

Keys: `welcome:<member>`, `receipt:<sale>:<member>`, `tier:<entry>`,
`offer:<entry>`, `gift:<entry>`, `birthday:<member>:<year>`,
`expiry:<member>:<day the points expire>`, `code:<verification>`,
`campaign:<campaign>:<member>`. A resent sync batch, a second worker or a job
run twice meets the same key and adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

# entries whose arrival may call for a message (the sync writes an event for each)
EVENT_KINDS = frozenset({"earn", "bonus", "redeem", "tier", "gift_load", "gift_spend"})
PURCHASE_KINDS = frozenset({"earn", "bonus", "redeem"})
KEY_CHARS_MAX = 120


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    mobile: str
    store: str
    tier: str
    balance: int
    birth_date: date | None = None


@dataclass(frozen=True)
class Planned:
    key: str
    kind: str  # the template kind: code, welcome, receipt...
    template: str  # the template's name
    mobile: str
    occurred_at: datetime  # when what it is about happened (its max age counts from here)
    store: str | None = None
    member_id: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    campaign_id: int | None = None
    due_at: datetime | None = None  # not before (a scheduled campaign); None: at once


def relevant(entry: dict[str, Any]) -> bool:
    """Whether the sync should write a message event for this entry."""
    kind = entry["kind"]
    if kind in PURCHASE_KINDS:
        return bool(entry["sale_id"]) and bool(entry["member_id"])
    return kind in EVENT_KINDS


def _member_values(m: Member, store_name: str, today: date) -> dict[str, Any]:
    return {"name": m.name, "store": store_name, "date": today, "balance": m.balance, "tier": m.tier}


def welcome(m: Member, store_name: str, at: datetime, today: date) -> Planned:
    return Planned(f"welcome:{m.id}", "welcome", "welcome", m.mobile, at, m.store, m.id,
                   _member_values(m, store_name, today))


def receipt(sale: list[dict[str, Any]], m: Member, store: str, store_name: str, at: datetime,
            today: date) -> Planned | None:
    """The receipt of one sale for its buyer: `sale` is the sale's entries for this
    member. None for a member who only got a bonus from it (a referrer)."""
    mine = [e for e in sale if e["member_id"] == m.id]
    if not any(e["kind"] in ("earn", "redeem") for e in mine):
        return None
    earned = sum(int(e["points"]) for e in mine if e["kind"] in ("earn", "bonus"))
    redeemed = -sum(int(e["points"]) for e in mine if e["kind"] == "redeem")
    amounts = [int(e["amount"]) for e in mine if e["kind"] == "earn"]
    tier = next((new_tier(e["reason"]) for e in mine if e["kind"] == "tier"), None) or m.tier
    values = _member_values(m, store_name, today) | {"amount": amounts[0] if amounts else None, "earned": earned,
                                                     "points": earned, "redeemed": redeemed, "tier": tier}
    return Planned(f"receipt:{mine[0]['sale_id']}:{m.id}", "receipt", "receipt", m.mobile, at, store, m.id, values)


def new_tier(reason: str | None) -> str | None:
    """`silver -> gold` -> gold."""
    return tier_move(reason)[1]


def tier_move(reason: str | None) -> tuple[str | None, str | None]:
    old, arrow, new = (reason or "").partition("->")
    return (old.strip() or None, new.strip() or None) if arrow else (None, None)


def tier_change(entry: dict[str, Any], m: Member, store: str, store_name: str, at: datetime,
                today: date) -> Planned | None:
    old, new = tier_move(entry["reason"])
    if new is None:
        return None
    values = _member_values(m, store_name, today) | {"tier": new, "old_tier": old}
    return Planned(f"tier:{entry['id']}", "tier", "tier", m.mobile, at, store, m.id, values)


def offer(entry: dict[str, Any], m: Member, template: str, store: str, store_name: str, at: datetime,
          today: date) -> Planned:
    values = _member_values(m, store_name, today) | {"offer": entry["rule_id"], "points": int(entry["points"])}
    return Planned(f"offer:{entry['id']}", "offer", template, m.mobile, at, store, m.id, values)


def gift(entry: dict[str, Any], mobile: str, gift_balance: int, store: str, store_name: str, at: datetime,
         today: date, member_id: str | None = None) -> Planned:
    number = entry["gift_card_number"] or ""
    values = {"store": store_name, "date": today, "amount": abs(int(entry["amount"])), "gift_balance": gift_balance,
              "card": "*" + number[-4:]}
    return Planned(f"gift:{entry['id']}", entry["kind"], entry["kind"], mobile, at, store, member_id, values)


def birthday(m: Member, store_name: str, at: datetime, today: date) -> Planned:
    return Planned(f"birthday:{m.id}:{today.year}", "birthday", "birthday", m.mobile, at, m.store, m.id,
                   _member_values(m, store_name, today))


def expiry(m: Member, points: int, expires_on: date, store_name: str, at: datetime, today: date) -> Planned:
    values = _member_values(m, store_name, today) | {"points": points, "expiry_date": expires_on,
                                                     "days": (expires_on - today).days}
    return Planned(f"expiry:{m.id}:{expires_on.isoformat()}", "expiry", "expiry", m.mobile, at, m.store, m.id,
                   values)


def code(verification_id: int, mobile: str, code_text: str, ttl: timedelta, store: str | None, store_name: str,
         at: datetime) -> Planned:
    values = {"code": code_text, "minutes": max(1, int(ttl.total_seconds() // 60)), "store": store_name}
    return Planned(f"code:{verification_id}", "code", "code", mobile, at, store, None, values)


def campaign(campaign_id: int, template: str, m: Member, store_name: str, due: datetime, today: date) -> Planned:
    return Planned(f"campaign:{campaign_id}:{m.id}", "campaign", template, m.mobile, due, m.store, m.id,
                   _member_values(m, store_name, today), campaign_id=campaign_id, due_at=due)


def receipt_wanted(mode: str, opted_in: bool) -> bool:
    """Receipts: `on` for every member (an opt-out still holds, at send time),
    `opt-in` for members who asked for them, `off` for nobody."""
    return mode == "on" or (mode == "opt-in" and opted_in)


def sale_complete(sale_last_seq: int, terminal_last_seq: int, first_seen: datetime, now: datetime,
                  settle: timedelta) -> bool:
    """Whether every entry of a sale has reached the hub. A sale's entries are
    consecutive in its terminal's chain and the hub stores a chain in order, so a
    later entry from that terminal proves the sale whole; a sale that ended a batch
    may continue in the next one, which a syncing terminal sends at once: it is
    taken as whole once `settle` has passed."""
    return terminal_last_seq > sale_last_seq or now - first_seen >= settle
