"""Campaigns: one template to the members of a segment, tier or store, now or at a
set time, with a control group held out at random (seeded, so the split can be
drawn again) to measure what the messages did.

A campaign's messages are queued when it is made, due at its time; they are
rendered then (a balance in the text is the one at scheduling). Cancelling cancels
those not sent yet. `results` compares the purchases of the messaged members and of
the control group in the days after the campaign was due, as rows for a workbook.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, insert, select, update

from ledger.timefmt import format_utc, parse_utc
from sync.errors import HubRefused
from sync.hub.config import HubConfig
from sync.hub.messages import queue, triggers
from sync.hub.messages.parts import sms_parts
from sync.hub.messages.producer import Producer, load_members, named_tiers, today_at
from sync.hub.messages.triggers import Member
from sync.hub.schema import audit, campaign_members, campaigns, entries, members, messages

PREVIEW_MESSAGES = 3
RECIPIENTS_MAX = 1_000_000


@dataclass(frozen=True)
class Draft:
    template: str
    segment: str | None
    tier: str | None
    store: str | None
    due: datetime
    control_percent: int
    seed: int


def split(member_ids: list[str], percent: int, seed: int) -> tuple[list[str], list[str]]:
    """(to message, control): `percent` of the members, drawn at random with `seed`
    from the members in id order (the same seed and members: the same split)."""
    ordered = sorted(member_ids)
    random.Random(seed).shuffle(ordered)
    held = math.floor(len(ordered) * percent / 100)
    return sorted(ordered[held:]), sorted(ordered[:held])


def audience(engine: Engine, d: Draft) -> list[Member]:
    query = select(members.c.id)
    if d.segment:
        query = query.where(members.c.segment == d.segment)
    if d.store:
        query = query.where(members.c.store_code == d.store)
    with engine.connect() as conn:
        ids = list(conn.execute(query.order_by(members.c.id).limit(RECIPIENTS_MAX + 1)).scalars())
        if len(ids) > RECIPIENTS_MAX:
            raise HubRefused(f"more than {RECIPIENTS_MAX:,} members; narrow the campaign", 413, "too_many")
        found = load_members(conn, ids)
    return [m for m in found.values() if not d.tier or m.tier == d.tier]


def plan(engine: Engine, cfg: HubConfig, d: Draft) -> dict[str, Any]:
    """What the campaign would do: recipients, control group, the first messages, cost."""
    t = cfg.templates.get(d.template)
    if t.kind != "campaign":
        raise HubRefused(f"template {d.template!r} is a {t.kind} template; a campaign needs one of kind campaign "
                         f"({', '.join(cfg.templates.of_kind('campaign'))})", 422, "wrong_template")
    everyone = audience(engine, d)
    to_message, control = split([m.id for m in everyone], d.control_percent, d.seed)
    by_id = {m.id: m for m in everyone}
    planned = [triggers.campaign(0, d.template, by_id[i], cfg.store_name(by_id[i].store), d.due,
                                 today_at(cfg, by_id[i].store, d.due)) for i in to_message]
    with engine.connect() as conn:
        planned = named_tiers(cfg, Producer(engine, cfg).ruleset(conn), planned)
    bodies = [queue.render(cfg, p)[1] for p in planned]
    parts = sum(sms_parts(b).parts for b in bodies)
    return {"recipients": len(to_message), "control": len(control), "parts": parts,
            "cost_rial": parts * cfg.messages.price_per_part_rial, "first": bodies[:PREVIEW_MESSAGES],
            "members": to_message, "control_members": control, "by_id": by_id}


def create(engine: Engine, cfg: HubConfig, d: Draft, by: str, now: datetime) -> dict[str, Any]:
    """Make the campaign and queue its messages (due at d.due); its row and the plan."""
    p = plan(engine, cfg, d)
    with engine.begin() as conn:
        cid = int(conn.execute(insert(campaigns).values(
            template=d.template, segment=d.segment, tier=d.tier, store=d.store, created_at=format_utc(now),
            created_by=by[:64], due_at=format_utc(d.due), status="scheduled", control_percent=d.control_percent,
            seed=d.seed, recipients=p["recipients"], control=p["control"]).returning(campaigns.c.id)).scalar_one())
        rows = [{"campaign_id": cid, "member_id": i, "control": False} for i in p["members"]] + \
               [{"campaign_id": cid, "member_id": i, "control": True} for i in p["control_members"]]
        if rows:
            conn.execute(insert(campaign_members), rows)
        by_id = p["by_id"]
        planned = [triggers.campaign(cid, d.template, by_id[i], cfg.store_name(by_id[i].store), d.due,
                                     today_at(cfg, by_id[i].store, d.due)) for i in p["members"]]
        planned = named_tiers(cfg, Producer(engine, cfg).ruleset(conn), planned)
        for i in range(0, len(planned), 1000):
            queue.enqueue(conn, cfg, planned[i:i + 1000], now)
        conn.execute(insert(audit).values(at=format_utc(now), actor=by[:64], action="campaign.send",
                                          target=str(cid), detail=json.dumps(
                                              {"template": d.template, "segment": d.segment, "tier": d.tier,
                                               "store": d.store, "due_at": format_utc(d.due),
                                               "recipients": p["recipients"], "control": p["control"]},
                                              ensure_ascii=False, sort_keys=True)))
    return {"id": cid, **{k: v for k, v in p.items() if k not in ("members", "control_members", "by_id")}}


def listing(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        counts: dict[int, dict[str, int]] = {}
        for cid, status, n in conn.execute(select(messages.c.campaign_id, messages.c.status, func.count())
                                           .where(messages.c.campaign_id.is_not(None))
                                           .group_by(messages.c.campaign_id, messages.c.status)):
            counts.setdefault(int(cid), {})[status] = int(n)
        return [dict(r._mapping) | {"messages": counts.get(int(r.id), {})}
                for r in conn.execute(select(campaigns).order_by(campaigns.c.id))]


def cancel(engine: Engine, campaign_id: int, by: str, now: datetime) -> int:
    """Cancel a campaign's messages not sent yet; how many."""
    with engine.begin() as conn:
        row = conn.execute(select(campaigns.c.status).where(campaigns.c.id == campaign_id).with_for_update()).first()
        if row is None:
            raise HubRefused(f"no campaign {campaign_id} (loyalty-hub campaign list)", 404, "unknown_campaign")
        if row.status == "cancelled":
            raise HubRefused(f"campaign {campaign_id} is already cancelled", 409, "already_cancelled")
        n = queue.cancel(conn, messages.c.campaign_id == campaign_id, f"campaign cancelled by {by}", now)
        conn.execute(update(campaigns).where(campaigns.c.id == campaign_id).values(status="cancelled"))
        conn.execute(insert(audit).values(at=format_utc(now), actor=by[:64], action="campaign.cancel",
                                          target=str(campaign_id), detail=json.dumps({"cancelled": n})))
    return n


RESULT_DAYS = 14  # purchases counted after a campaign: `campaign results` and the workbook


def results(engine: Engine, campaign_id: int, days: int) -> list[dict[str, Any]]:
    """One row per group (messaged, control): members, what became of the messages
    (sent, delivered, failed, opted out, otherwise suppressed, cancelled, waiting),
    and purchases (sales with an earn entry) by the group's members in the `days`
    after the campaign was due: buyers, sales, Rial, and the share who bought."""
    with engine.connect() as conn:
        return results_on(conn, campaign_id, days)


def results_on(conn: Connection, campaign_id: int, days: int) -> list[dict[str, Any]]:
    """results, in the caller's transaction (the back office's workbook reads one moment)."""
    c = conn.execute(select(campaigns).where(campaigns.c.id == campaign_id)).first()
    if c is None:
        raise HubRefused(f"no campaign {campaign_id}", 404, "unknown_campaign")
    start = parse_utc(c.due_at)
    end = format_utc(start + timedelta(days=days))
    statuses: dict[str, int] = {}
    for status, reason, n in conn.execute(select(messages.c.status, messages.c.reason, func.count()).where(
            messages.c.campaign_id == campaign_id).group_by(messages.c.status, messages.c.reason)):
        key = "opted_out" if status == "suppressed" and reason == "opted out" else status
        statuses[key] = statuses.get(key, 0) + int(n)
    out = []
    for control in (False, True):
        size = int(conn.execute(select(func.count()).select_from(campaign_members).where(
            campaign_members.c.campaign_id == campaign_id, campaign_members.c.control.is_(control))).scalar_one())
        bought = conn.execute(
            select(func.count(func.distinct(entries.c.member_id)), func.count(func.distinct(entries.c.sale_id)),
                   func.coalesce(func.sum(entries.c.amount), 0))
            .select_from(entries.join(campaign_members, and_(
                campaign_members.c.member_id == entries.c.member_id,
                campaign_members.c.campaign_id == campaign_id, campaign_members.c.control.is_(control))))
            .where(entries.c.kind == "earn", entries.c.sale_id.is_not(None),
                   entries.c.created_at >= c.due_at, entries.c.created_at < end)).one()
        buyers, sales, amount = int(bought[0]), int(bought[1]), int(bought[2])
        row: dict[str, Any] = {"campaign_id": campaign_id, "group": "control" if control else "messaged",
                               "members": size, "days": days}
        for key in ("sent", "delivered", "undelivered", "failed", "opted_out", "suppressed", "cancelled",
                    "queued", "sending"):
            row[key] = 0 if control else statuses.get(key, 0)
        row |= {"buyers": buyers, "sales": sales, "amount_rial": amount,
                "buyer_share": round(buyers / size, 4) if size else 0.0}
        out.append(row)
    return out


def parse_at(text: str | None, cfg: HubConfig, now: datetime) -> datetime:
    """--at: `YYYY-MM-DD HH:MM` in the stores' local time, or an ISO time with its offset."""
    if not text:
        return now
    try:
        at = datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        raise HubRefused(f"--at {text!r}: write YYYY-MM-DD HH:MM (the stores' time) or an ISO time with offset",
                         400, "invalid_input") from None
    if at.tzinfo is None:
        at = (at - cfg.offset(None)).replace(tzinfo=timezone.utc)
    return at

