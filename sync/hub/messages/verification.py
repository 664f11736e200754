"""Codes that confirm a member's mobile number at enrolment.

A till asks for one (`POST /v1/verifications`, signed like /v1/sync) and checks what
the member reads back (`POST /v1/verifications/check`); a member who reaches the hub
unconfirmed while verification is required (`[verification] required`) is sent one
by the worker, and may reply with it by SMS or give it at the next visit. Codes are
stored salted and hashed (SHA-256), expire, and take a bounded number of tries;
a mobile is sent a bounded number an hour. The confirmed state is the hub's alone
(`verified_mobiles`): the till's ledger keeps none.

A 5-6 digit code is short: its hash does not keep it secret from someone who reads
the database; its expiry and the bound on tries are what protect it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from ledger.errors import InvalidMobile
from ledger.mobile import normalise_mobile
from ledger.timefmt import format_utc, parse_utc
from sync.errors import HubRefused
from sync.hub.config import HubConfig
from sync.hub.db import dialect_insert
from sync.hub.messages import triggers
from sync.hub.messages.queue import enqueue
from sync.hub.messages.text import latin_digits
from sync.hub.schema import members, terminals, verifications, verified_mobiles


def _hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def mobile_of(raw: Any) -> str:
    if type(raw) is not str:
        raise HubRefused("mobile must be text", 400, "invalid_input")
    try:
        return normalise_mobile(raw)
    except InvalidMobile as exc:
        raise HubRefused(str(exc), 422, "invalid_mobile") from None


def is_verified(conn: Connection, mobile: str) -> bool:
    return conn.execute(select(verified_mobiles.c.mobile).where(verified_mobiles.c.mobile == mobile)).first() \
        is not None


def issue(conn: Connection, cfg: HubConfig, mobile: str, member_id: str | None, terminal: str | None,
          store: str | None, ttl: timedelta, now: datetime) -> tuple[int, datetime]:
    """A new code for `mobile`, queued as a message in the caller's transaction;
    (verification id, expiry)."""
    code = f"{secrets.randbelow(10 ** cfg.verification.digits):0{cfg.verification.digits}d}"
    salt = secrets.token_hex(16)
    expires = now + ttl
    vid = int(conn.execute(insert(verifications).values(
        mobile=mobile, member_id=member_id, code_hash=_hash(salt, code), salt=salt, created_at=format_utc(now),
        expires_at=format_utc(expires), attempts=0, terminal=terminal).returning(verifications.c.id)).scalar_one())
    planned = triggers.code(vid, mobile, code, ttl, store, cfg.store_name(store), now)
    enqueue(conn, cfg, [planned], now)
    return vid, expires


def welcome_verified(conn: Connection, cfg: HubConfig, mobile: str, now: datetime) -> None:
    """A confirmed mobile's members who have reached the hub get their welcome now."""
    from sync.hub.messages.producer import load_members, today_at  # (the producer imports this module)

    ids = list(conn.execute(select(members.c.id).where(members.c.mobile == mobile)).scalars())
    found = load_members(conn, ids)
    planned = [triggers.welcome(m, cfg.store_name(m.store), now, today_at(cfg, m.store, now))
               for m in found.values() if cfg.trigger(m.store, "welcome")]
    enqueue(conn, cfg, planned, now)


class Verifications:
    def __init__(self, engine: Engine, cfg: HubConfig, clock: Callable[[], datetime]) -> None:
        self.engine, self.cfg, self.clock = engine, cfg, clock

    def request(self, terminal: str, data: dict[str, Any]) -> dict[str, Any]:
        """A code for a member's mobile, sent through the queue at once (codes ignore quiet hours)."""
        mobile = mobile_of(data.get("mobile"))
        member_id = data.get("member_id")
        if member_id is not None and (type(member_id) is not str or len(member_id) > 36):
            raise HubRefused("member_id must be text of at most 36 characters", 400, "invalid_input")
        if not self.cfg.messages.enabled:
            raise HubRefused("the hub sends no messages ([messages] enabled = false); no code can be sent", 409,
                             "messages_off")
        now = self.clock()
        v = self.cfg.verification
        with self.engine.begin() as conn:
            store = conn.execute(select(terminals.c.store).where(terminals.c.id == terminal)).scalar()
            if is_verified(conn, mobile):
                return {"mobile": mobile, "verified": True, "required": v.required, "verification_id": None}
            recent = int(conn.execute(select(func.count()).select_from(verifications).where(
                verifications.c.mobile == mobile,
                verifications.c.created_at > format_utc(now - timedelta(hours=1)))).scalar_one())
            if recent >= v.per_mobile_per_hour:
                raise HubRefused(f"{mobile} was sent {recent} codes in the last hour (at most "
                                 f"{v.per_mobile_per_hour}); try later", 429, "too_many_codes")
            vid, expires = issue(conn, self.cfg, mobile, member_id, terminal, store, timedelta(seconds=v.ttl_s), now)
        return {"mobile": mobile, "verified": False, "required": v.required, "verification_id": vid,
                "expires_at": format_utc(expires)}

    def check(self, data: dict[str, Any]) -> dict[str, Any]:
        mobile = mobile_of(data.get("mobile"))
        code = data.get("code")
        if type(code) is not str or not 1 <= len(code) <= 12:
            raise HubRefused("code must be text of 1 to 12 characters", 400, "invalid_input")
        result = self.try_code(mobile, latin_digits(code.strip()))
        if "refused" in result:
            status, problem, text, fields = result["refused"]
            raise HubRefused(text, status, problem, fields)
        return result

    def try_code(self, mobile: str, code: str) -> dict[str, Any]:
        """Check a code against the mobile's newest open verification; every try is
        counted (committed even when wrong). {"verified": True, ...} or {"refused": ...}."""
        now = self.clock()
        v = self.cfg.verification
        with self.engine.begin() as conn:
            if is_verified(conn, mobile):
                return {"mobile": mobile, "verified": True}
            row = conn.execute(select(verifications).where(verifications.c.mobile == mobile,
                                                           verifications.c.verified_at.is_(None))
                               .order_by(verifications.c.id.desc()).limit(1).with_for_update()).first()
            if row is None:
                return {"refused": (404, "no_code", f"no code was sent to {mobile}; ask for one", None)}
            if parse_utc(row.expires_at) < now:
                return {"refused": (410, "code_expired", "the code has expired; ask for a new one", None)}
            if row.attempts >= v.attempts_max:
                return {"refused": (429, "too_many_attempts", f"{row.attempts} wrong codes: this code is void; ask "
                                    "for a new one", None)}
            conn.execute(update(verifications).where(verifications.c.id == row.id)
                         .values(attempts=verifications.c.attempts + 1))
            if not hmac.compare_digest(_hash(row.salt, code), row.code_hash):
                left = v.attempts_max - row.attempts - 1
                return {"refused": (422, "wrong_code", f"the code is wrong; {left} tries left",
                                    {"attempts_left": left})}
            conn.execute(update(verifications).where(verifications.c.id == row.id).values(verified_at=format_utc(now)))
            conn.execute(dialect_insert(conn, verified_mobiles).values(
                mobile=mobile, verified_at=format_utc(now), verification_id=row.id).on_conflict_do_nothing())
            welcome_verified(conn, self.cfg, mobile, now)
        return {"mobile": mobile, "verified": True}
