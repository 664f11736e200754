"""The hub's messaging, as the command line and the webhooks use it: members'
choices, delivery reports, inbound replies, listing and previewing messages."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Engine, delete, select

from ledger.errors import InvalidMobile
from ledger.mobile import normalise_mobile
from ledger.timefmt import format_utc
from sync.errors import HubRefused
from sync.hub.config import HubConfig
from sync.hub.db import dialect_insert
from sync.hub.messages import queue
from sync.hub.messages.gateways import Gateway, build_gateway
from sync.hub.messages.parts import sms_parts
from sync.hub.messages.producer import load_members, today_at
from sync.hub.messages.templates import KINDS, PLACEHOLDERS
from sync.hub.messages.text import latin_digits
from sync.hub.messages.verification import Verifications
from sync.hub.schema import gift_card_contacts, members, message_prefs, message_reports, messages

LIST_ROWS_MAX = 1000
PREF_KINDS = ("all", *KINDS)
# what a preview shows for a placeholder when no member is named
SAMPLE = {"name": "سارا", "store": "", "balance": 12_500, "tier": "silver", "old_tier": "bronze", "amount": 1_250_000,
          "earned": 125, "redeemed": 0, "points": 125, "offer": "weekend", "minutes": 5, "days": 7, "code": "123456",
          "gift_balance": 500_000, "card": "*1234"}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _words(text: str) -> str:
    return latin_digits(text).strip().lower()


class Messaging:
    def __init__(self, engine: Engine, cfg: HubConfig, clock: Callable[[], datetime] = _now) -> None:
        self.engine, self.cfg, self.clock = engine, cfg, clock
        self.verifications = Verifications(engine, cfg, clock)
        self._gateways: dict[str, Gateway] = {}

    def gateway(self, name: str) -> Gateway | None:
        if name not in self.cfg.gateways:
            return None
        if name not in self._gateways:
            self._gateways[name] = build_gateway(name, self.cfg.gateways[name], self.cfg.resolve("."))
        return self._gateways[name]

    def close(self) -> None:
        for g in self._gateways.values():
            g.close()

    # -- members' choices -----------------------------------------------------------------

    def mobile_of(self, target: str) -> str:
        """A member id or a mobile number, as the mobile number."""
        with self.engine.connect() as conn:
            found = conn.execute(select(members.c.mobile).where(members.c.id == target)).scalar()
        if found:
            return str(found)
        try:
            return normalise_mobile(target)
        except InvalidMobile:
            raise HubRefused(f"{target!r} is neither a member id the hub holds nor a mobile number", 404,
                             "unknown_member") from None

    def choose(self, target: str, kind: str, choice: str | None, source: str = "cli") -> str:
        """Record a choice (out, in) or forget it (None); the mobile number it is for."""
        if kind not in PREF_KINDS:
            raise HubRefused(f"unknown kind {kind!r} (one of {', '.join(PREF_KINDS)})", 400, "invalid_input")
        mobile = self.mobile_of(target)
        with self.engine.begin() as conn:
            self._choose(conn, mobile, kind, choice, source)
        return mobile

    def _choose(self, conn: Any, mobile: str, kind: str, choice: str | None, source: str) -> None:
        conn.execute(delete(message_prefs).where(message_prefs.c.mobile == mobile, message_prefs.c.kind == kind))
        if choice is not None:
            conn.execute(dialect_insert(conn, message_prefs).values(
                mobile=mobile, kind=kind, choice=choice, source=source, at=format_utc(self.clock())))

    def choices(self, target: str) -> tuple[str, dict[str, str]]:
        mobile = self.mobile_of(target)
        with self.engine.connect() as conn:
            rows = conn.execute(select(message_prefs.c.kind, message_prefs.c.choice)
                                .where(message_prefs.c.mobile == mobile)).all()
        return mobile, {k: c for k, c in rows}

    def gift_contact(self, number: str, mobile: str) -> str:
        try:
            mobile = normalise_mobile(mobile)
        except InvalidMobile as exc:
            raise HubRefused(str(exc), 422, "invalid_mobile") from None
        number = re.sub(r"[\s-]", "", number)
        if not number.isdigit() or not 4 <= len(number) <= 32:
            raise HubRefused("a gift card number is 4 to 32 digits", 400, "invalid_input")
        with self.engine.begin() as conn:
            stmt = dialect_insert(conn, gift_card_contacts).values(number=number, mobile=mobile,
                                                                   at=format_utc(self.clock()))
            conn.execute(stmt.on_conflict_do_update(index_elements=["number"],
                                                    set_={"mobile": mobile, "at": stmt.excluded.at}))
        return mobile

    # -- webhooks ---------------------------------------------------------------------------

    def take_reports(self, gateway: str, data: dict[str, Any]) -> int:
        """Delivery reports: applied to their messages (or kept until the message is
        recorded sent); how many were applied now."""
        g = self.gateway(gateway)
        assert g is not None
        now = self.clock()
        applied = 0
        with self.engine.begin() as conn:
            for report in g.reports(data):
                done = queue.apply_report(conn, gateway, report.provider_id, report.status, report.detail, now)
                applied += done
                conn.execute(message_reports.insert().values(
                    gateway=gateway, provider_id=report.provider_id[:64], status=report.status,
                    detail=report.detail[:200], at=format_utc(now), applied=done))
        return applied

    def take_inbound(self, gateway: str, data: dict[str, Any]) -> dict[str, Any]:
        """A member's reply: an opt-out word opts the number out of everything but codes;
        a code confirms the number; anything else is only kept."""
        g = self.gateway(gateway)
        assert g is not None
        inbound = g.inbound(data)
        if inbound is None:
            raise HubRefused("no sender and text in this inbound message", 422, "bad_inbound")
        text = _words(inbound.text)
        action = "kept"
        if text in {_words(w) for w in self.cfg.messages.optout_words}:
            with self.engine.begin() as conn:
                self._choose(conn, inbound.mobile, "all", "out", "reply")
            action = "opted out"
        elif re.fullmatch(rf"[0-9]{{{self.cfg.verification.digits}}}", text):
            result = self.verifications.try_code(inbound.mobile, text)
            action = "verified" if result.get("verified") else f"code refused: {result['refused'][1]}"
        with self.engine.begin() as conn:
            conn.execute(message_reports.insert().values(
                gateway=gateway, provider_id=None, mobile=inbound.mobile, status="inbound",
                detail=f"{action}: {inbound.text}"[:200], at=format_utc(self.clock()), applied=True))
        return {"mobile": inbound.mobile, "action": action}

    # -- looking -----------------------------------------------------------------------------

    def list(self, status: str | None = None, kind: str | None = None, target: str | None = None,
             limit: int = 50) -> list[dict[str, Any]]:
        query = select(messages).order_by(messages.c.id.desc()).limit(min(limit, LIST_ROWS_MAX))
        if status:
            query = query.where(messages.c.status == status)
        if kind:
            query = query.where(messages.c.kind == kind)
        if target:
            query = query.where(messages.c.mobile == self.mobile_of(target))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def preview(self, template: str, locale: str | None = None, member_id: str | None = None,
                store: str | None = None) -> dict[str, Any]:
        """A template rendered for a member (or with sample values): its text, SMS parts
        and cost."""
        t = self.cfg.templates.get(template)
        values: dict[str, Any] = dict(SAMPLE, store=self.cfg.store_name(store) or "فروشگاه", date=date.today(),
                                      expiry_date=date.today())
        if member_id:
            with self.engine.connect() as conn:
                m = load_members(conn, [member_id]).get(member_id)
            if m is None:
                raise HubRefused(f"no member {member_id}", 404, "unknown_member")
            store = store or m.store
            values |= {"name": m.name, "balance": m.balance, "tier": m.tier, "store": self.cfg.store_name(store),
                       "date": today_at(self.cfg, store, self.clock())}
        cfg = self.cfg if locale is None else self.cfg.model_copy(update={"messages": self.cfg.messages.model_copy(
            update={"locale": locale}), "stores": {}})
        from sync.hub.messages.triggers import Planned  # a throwaway message, rendered like a real one

        _, body = queue.render(cfg, Planned("preview", t.kind, template, "", self.clock(), store, None,
                                            {k: v for k, v in values.items() if k in PLACEHOLDERS[t.kind]}))
        parts = sms_parts(body)
        price = self.cfg.messages.price_per_part_rial
        return {"template": template, "kind": t.kind, "text": body, "encoding": parts.encoding, "chars": parts.chars,
                "units": parts.units, "parts": parts.parts, "cost_rial": parts.cost(price)}
