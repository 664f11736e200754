"""Events and the calendar into messages: what the worker does before it sends.

`produce` takes the events the sync wrote (oldest first; on PostgreSQL locked with
SKIP LOCKED so two workers share them), gathers the facts each needs (the entry, the
member, the balance, the sale's other entries), asks triggers.py what to send and
queues it, and deletes the events, all in one transaction. `daily` runs the
birthday and expiry jobs once per local day, after the quiet hours.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update

from ledger.rules import Lot, Ruleset, default_ruleset, expiry_outlook, parse_ruleset
from ledger.timefmt import format_utc, parse_utc
from sync.hub.config import HubConfig
from sync.hub.db import dialect_insert
from sync.hub.messages import triggers, verification
from sync.hub.messages.decency import in_quiet_hours
from sync.hub.messages.queue import enqueue
from sync.hub.messages.text import is_birthday, local_day
from sync.hub.messages.triggers import Member, Planned
from sync.hub.messages.decency import Policy
from sync.hub.schema import (
    balances,
    entries,
    gift_card_contacts,
    members,
    message_events,
    message_jobs,
    message_prefs,
    rulesets,
    terminals,
)

log = logging.getLogger("sync.hub.messages")
EVENTS_PER_ROUND_MAX = 500
SALE_ENTRIES_MAX = 64  # a sale's entries lie within this many seqs of any one of them
PLANNED_PER_INSERT_MAX = 1000


def today_at(cfg: HubConfig, store: str | None, now: datetime) -> date:
    return local_day(now, cfg.offset(store))


def _tiers(conn: Connection, ids: list[str]) -> dict[str, str]:
    """Each member's newest tier entry's new tier (the hub's members.tier is the one at enrolment)."""
    out: dict[str, str] = {}
    for member_id in ids:
        reason = conn.execute(select(entries.c.reason).where(entries.c.member_id == member_id,
                                                             entries.c.kind == "tier")
                              .order_by(entries.c.created_at.desc(), entries.c.ingest_id.desc()).limit(1)).scalar()
        new = triggers.new_tier(reason)
        if new:
            out[member_id] = new
    return out


def load_members(conn: Connection, ids: list[str] | set[str]) -> dict[str, Member]:
    ids = sorted(set(ids))
    if not ids:
        return {}
    rows = conn.execute(select(members.c.id, members.c.name, members.c.mobile, members.c.store_code, members.c.tier,
                               members.c.birth_date, func.coalesce(balances.c.points, 0).label("balance"))
                        .select_from(members.outerjoin(balances, balances.c.member_id == members.c.id))
                        .where(members.c.id.in_(ids))).all()
    tiers = _tiers(conn, ids)
    return {r.id: Member(r.id, r.name, r.mobile, r.store_code, tiers.get(r.id, r.tier), int(r.balance),
                         _date(r.birth_date)) for r in rows}


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def named_tiers(cfg: HubConfig, ruleset: Ruleset, planned: list[Planned]) -> list[Planned]:
    """Tier ids as the loyalty table names them, in each message's language."""
    names = {t.id: (t.name_fa, t.name_en) for t in ruleset.tiers}
    out = []
    for p in planned:
        fa = cfg.locale(p.store) == "fa"
        values = {k: (names[v][0 if fa else 1] if k in ("tier", "old_tier") and v in names else v)
                  for k, v in p.values.items()}
        out.append(dataclasses.replace(p, values=values))
    return out


def opted_in(conn: Connection, mobile: str, kind: str) -> bool:
    return conn.execute(select(message_prefs.c.choice).where(
        message_prefs.c.mobile == mobile, message_prefs.c.kind == kind)).scalar() == "in"


class Producer:
    def __init__(self, engine: Engine, cfg: HubConfig) -> None:
        self.engine, self.cfg = engine, cfg
        self._offers: tuple[int, frozenset[str]] | None = None  # (ruleset version, offer ids)
        self._ruleset: tuple[int, Ruleset] | None = None

    # -- the rules in force ------------------------------------------------------------

    def ruleset(self, conn: Connection) -> Ruleset:
        row = conn.execute(select(rulesets.c.version, rulesets.c.toml).order_by(rulesets.c.version.desc())
                           .limit(1)).first()
        if row is None:
            return default_ruleset()
        if self._ruleset is None or self._ruleset[0] != row.version:
            self._ruleset = (row.version, parse_ruleset(tomllib.loads(row.toml), f"ruleset v{row.version}"))
        return self._ruleset[1]

    def offer_ids(self, conn: Connection) -> frozenset[str]:
        if self.cfg.triggers.offer_rules:
            return frozenset(self.cfg.triggers.offer_rules)
        return frozenset(o.id for o in self.ruleset(conn).offers)

    # -- events -------------------------------------------------------------------------

    def produce(self, now: datetime, limit: int = EVENTS_PER_ROUND_MAX) -> int:
        """Turn waiting events into messages; how many events were done with."""
        with self.engine.begin() as conn:
            query = select(message_events).order_by(message_events.c.id).limit(limit)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            events = conn.execute(query).all()
            if not events:
                return 0
            refs = [e.ref for e in events if e.source == "entry"]
            rows = {r.id: r._mapping for r in conn.execute(select(entries).where(entries.c.id.in_(refs)))} \
                if refs else {}
            member_ids = {e.ref for e in events if e.source == "member"} | \
                {r["member_id"] for r in rows.values() if r["member_id"]}
            found = load_members(conn, member_ids)
            stores = dict(conn.execute(select(terminals.c.id, terminals.c.store).where(
                terminals.c.id.in_({r["terminal_code"] for r in rows.values()}))).all()) if rows else {}
            planned: list[Planned] = []
            done: list[int] = []
            for event in events:
                if event.source == "member":
                    if event.ref in found:
                        planned += self.arrival(conn, found[event.ref], parse_utc(event.at), now)
                    done.append(event.id)
                    continue
                entry = rows.get(event.ref)
                if entry is None:  # (never: the entry came in the event's own transaction)
                    done.append(event.id)
                    continue
                ready, more = self.from_entry(conn, entry, found, stores.get(entry["terminal_code"]),
                                              parse_utc(event.at), now)
                planned += more
                if ready:
                    done.append(event.id)
            enqueue(conn, self.cfg, named_tiers(self.cfg, self.ruleset(conn), planned), now)
            if done:
                conn.execute(delete(message_events).where(message_events.c.id.in_(done)))
        return len(done)

    def arrival(self, conn: Connection, m: Member, at: datetime, now: datetime) -> list[Planned]:
        """A new member at the hub: a code if verification is required and the mobile is
        not confirmed yet (the welcome follows the confirmation), else the welcome."""
        cfg = self.cfg
        if cfg.verification.required and not verification.is_verified(conn, m.mobile):
            open_code = conn.execute(select(func.count()).select_from(verification.verifications).where(
                verification.verifications.c.mobile == m.mobile,
                verification.verifications.c.verified_at.is_(None),
                verification.verifications.c.expires_at > format_utc(now))).scalar_one()
            if not open_code:  # (a till may have asked for one already)
                verification.issue(conn, cfg, m.mobile, m.id, None, m.store,
                                   timedelta(seconds=cfg.verification.arrival_ttl_s), now)
            return []
        if not cfg.trigger(m.store, "welcome"):
            return []
        return [triggers.welcome(m, cfg.store_name(m.store), at, today_at(cfg, m.store, now))]

    def from_entry(self, conn: Connection, entry: Any, found: dict[str, Member], store: str | None,
                   received: datetime, now: datetime) -> tuple[bool, list[Planned]]:
        """(whether the event is done with, what to queue)."""
        cfg = self.cfg
        kind = entry["kind"]
        occurred = min(parse_utc(entry["created_at"]), received)
        name, today = cfg.store_name(store), today_at(cfg, store, now)
        m = found.get(entry["member_id"]) if entry["member_id"] else None
        out: list[Planned] = []
        if kind in triggers.PURCHASE_KINDS and m is not None:
            sale = conn.execute(select(entries).where(
                entries.c.terminal_code == entry["terminal_code"], entries.c.sale_id == entry["sale_id"],
                entries.c.seq.between(entry["seq"] - SALE_ENTRIES_MAX, entry["seq"] + SALE_ENTRIES_MAX))).all()
            sale_rows = [r._mapping for r in sale]
            last = conn.execute(select(terminals.c.last_seq).where(
                terminals.c.id == entry["terminal_code"])).scalar_one()
            if not triggers.sale_complete(max(r["seq"] for r in sale_rows), int(last), received, now,
                                          timedelta(seconds=cfg.worker.receipt_settle_s)):
                return False, []  # the rest of the sale may be in the terminal's next batch
            if triggers.receipt_wanted(cfg.trigger(store, "receipt"), opted_in(conn, m.mobile, "receipt")):
                p = triggers.receipt(sale_rows, m, store or m.store, name, occurred, today)
                if p is not None:
                    out.append(p)
            if kind == "bonus" and entry["rule_id"] and cfg.trigger(store, "offer") and \
                    entry["rule_id"] in self.offer_ids(conn):
                own = f"offer-{entry['rule_id']}"
                template = own if own in cfg.templates.by_name else "offer"
                out.append(triggers.offer(entry, m, template, store or m.store, name, occurred, today))
        elif kind == "tier" and m is not None and cfg.trigger(store, "tier"):
            p = triggers.tier_change(entry, m, store or m.store, name, occurred, today)
            out += [p] if p is not None else []
        elif kind in ("gift_load", "gift_spend") and cfg.trigger(store, "gift"):
            mobile = m.mobile if m is not None else conn.execute(select(gift_card_contacts.c.mobile).where(
                gift_card_contacts.c.number == entry["gift_card_number"])).scalar()
            if mobile:
                balance = int(conn.execute(select(func.coalesce(func.sum(entries.c.amount), 0)).where(
                    entries.c.gift_card_number == entry["gift_card_number"],
                    entries.c.kind.in_(("gift_load", "gift_spend")))).scalar_one())
                out.append(triggers.gift(entry, mobile, balance, store or "", name, occurred, today,
                                         m.id if m else None))
        return True, out

    # -- the calendar -------------------------------------------------------------------------

    def _claim_job(self, conn: Connection, name: str, day: date) -> bool:
        """Whether this worker runs job `name` for `day` (one worker, once a day)."""
        text = day.isoformat()
        added = conn.execute(dialect_insert(conn, message_jobs).values(name=name, last_day=text)
                             .on_conflict_do_nothing().returning(message_jobs.c.name)).first()
        if added is not None:
            return True
        return bool(conn.execute(update(message_jobs).where(message_jobs.c.name == name,
                                                            message_jobs.c.last_day < text)
                                 .values(last_day=text)).rowcount)

    def daily(self, now: datetime) -> int:
        """Birthdays and expiry warnings, once per local day, once the quiet hours are
        over; how many messages were queued."""
        cfg = self.cfg
        start, end = cfg.quiet(None)
        policy = Policy(start, end, cfg.offset(None), 0, timedelta(0))
        if in_quiet_hours(now, policy):
            return 0
        today = today_at(cfg, None, now)
        queued = 0
        for job, run in (("birthday", self._birthdays), ("expiry", self._expiries)):
            with self.engine.begin() as conn:
                if not self._claim_job(conn, job, today):
                    continue
            try:
                queued += run(now, today)
            except Exception:
                with self.engine.begin() as conn:  # let the next round try again
                    conn.execute(update(message_jobs).where(message_jobs.c.name == job)
                                 .values(last_day=(today - timedelta(days=1)).isoformat()))
                raise
        return queued

    def _queue_in_chunks(self, conn: Connection, planned: list[Planned], now: datetime) -> int:
        added = 0
        planned = named_tiers(self.cfg, self.ruleset(conn), planned)
        for i in range(0, len(planned), PLANNED_PER_INSERT_MAX):
            added += len(enqueue(conn, self.cfg, planned[i:i + PLANNED_PER_INSERT_MAX], now))
        return added

    def _birthdays(self, now: datetime, today: date) -> int:
        cfg = self.cfg
        with self.engine.begin() as conn:
            born = conn.execute(select(members.c.id, members.c.birth_date, members.c.store_code)
                                .where(members.c.birth_date.is_not(None))).all()
            ids = [r.id for r in born if cfg.trigger(r.store_code, "birthday") and (b := _date(r.birth_date))
                   and is_birthday(b, today, cfg.messages.calendar)]
            found = load_members(conn, ids)
            planned = [triggers.birthday(m, cfg.store_name(m.store), now, today) for m in found.values()]
            return self._queue_in_chunks(conn, planned, now)

    def _expiries(self, now: datetime, today: date) -> int:
        cfg = self.cfg
        with self.engine.begin() as conn:
            ruleset = self.ruleset(conn)
            if ruleset.expiry.months == 0:
                return 0
            ruleset = dataclasses.replace(ruleset, expiry=dataclasses.replace(
                ruleset.expiry, warn_days=cfg.triggers.expiry_days))
            holders = list(conn.execute(select(balances.c.member_id).where(balances.c.points > 0)
                                        .order_by(balances.c.member_id)).scalars())
            stores = dict(conn.execute(select(members.c.id, members.c.store_code)
                                       .where(members.c.id.in_(holders))).all()) if holders else {}
            planned: list[Planned] = []
            for member_id in holders:
                if not cfg.trigger(stores.get(member_id), "expiry"):
                    continue
                lots = [Lot(parse_utc(r.created_at), int(r.points)) for r in conn.execute(
                    select(entries.c.created_at, entries.c.points)
                    .where(entries.c.member_id == member_id, entries.c.points > 0)
                    .order_by(entries.c.created_at, entries.c.ingest_id))]
                debited = -int(conn.execute(select(func.coalesce(func.sum(entries.c.points), 0)).where(
                    entries.c.member_id == member_id, entries.c.points < 0)).scalar_one())
                upcoming = expiry_outlook(ruleset, lots, debited, now).upcoming
                if not upcoming:
                    continue
                m = load_members(conn, [member_id]).get(member_id)
                if m is None:
                    continue
                first = min(when for when, _ in upcoming)
                points = sum(p for _, p in upcoming)
                planned.append(triggers.expiry(m, points, local_day(first, cfg.offset(m.store)),
                                               cfg.store_name(m.store), now, today))
            return self._queue_in_chunks(conn, planned, now)
