"""The messages table as a queue shared by workers.

A message is created once per key (INSERT ... ON CONFLICT DO NOTHING), rendered
then, and claimed by one worker at a time: on PostgreSQL with
`SELECT ... FOR UPDATE SKIP LOCKED`, so two workers never take the same rows and
never wait for each other; on SQLite every transaction begins IMMEDIATE and so runs
alone (one worker is all it needs). A claimed message is `sending` with its attempt
number and a lease; a worker killed mid-send leaves it `sending`, and once the lease
has passed another worker claims it again. Every later write names the attempt it
belongs to (`attempts = n`), so a worker that outlived its lease cannot overwrite
what the next one recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select, update

from ledger.timefmt import format_utc
from sync.hub.config import HubConfig
from sync.hub.db import dialect_insert
from sync.hub.messages.errors import TemplateError
from sync.hub.messages.parts import sms_parts
from sync.hub.messages.templates import PLACEHOLDERS
from sync.hub.messages.text import Style
from sync.hub.messages.triggers import KEY_CHARS_MAX, Planned
from sync.hub.schema import message_reports, messages

FINAL = ("delivered", "undelivered", "failed", "suppressed", "cancelled")
ACTIVE = ("sending", "sent", "delivered", "undelivered")  # counted against the daily limit
REASON_CHARS_MAX = 200


def style(cfg: HubConfig, store: str | None) -> Style:
    m = cfg.messages
    return Style(cfg.locale(store), m.calendar, m.currency, m.persian_digits)


def render(cfg: HubConfig, p: Planned) -> tuple[str, str]:
    """(locale, body) of a planned message."""
    template = cfg.templates.get(p.template)
    if template.kind != p.kind:
        raise TemplateError(f"template {p.template!r} is a {template.kind} template, not a {p.kind} one")
    locale = cfg.locale(p.store)
    footer = cfg.messages.optout_footer_fa if locale == "fa" else cfg.messages.optout_footer_en
    values = {k: v for k, v in p.values.items() if k in PLACEHOLDERS[p.kind]}
    return locale, template.render(locale, values, style(cfg, p.store), footer)


def row_of(cfg: HubConfig, p: Planned, now: datetime) -> dict[str, Any]:
    assert len(p.key) <= KEY_CHARS_MAX, p.key
    locale, body = render(cfg, p)
    at = format_utc(now)
    return {"key": p.key, "kind": p.kind, "template": p.template, "member_id": p.member_id, "mobile": p.mobile,
            "store": p.store, "locale": locale, "body": body, "parts": sms_parts(body).parts,
            "campaign_id": p.campaign_id, "created_at": at,
            # (never later than now: a till's clock ahead; a scheduled campaign counts from when it is due)
            "occurred_at": format_utc(p.occurred_at if p.due_at else min(p.occurred_at, now)),
            "due_at": format_utc(p.due_at or now), "status": "queued", "attempts": 0}


def enqueue(conn: Connection, cfg: HubConfig, planned: list[Planned], now: datetime) -> list[int]:
    """Queue what is not queued yet (by key); the ids of the rows added."""
    rows: dict[str, dict[str, Any]] = {}
    for p in planned:
        rows.setdefault(p.key, row_of(cfg, p, now))
    if not rows:
        return []
    stmt = dialect_insert(conn, messages).on_conflict_do_nothing(index_elements=["key"]).returning(messages.c.id)
    return [int(r[0]) for r in conn.execute(stmt, list(rows.values())).all()]


def claim(conn: Connection, now: datetime, limit: int) -> list[Any]:
    """Due messages, and `sending` ones whose worker's lease has passed, locked for
    this transaction (other workers skip them)."""
    at = format_utc(now)
    query = (select(messages)
             .where(or_(and_(messages.c.status == "queued", messages.c.due_at <= at),
                        and_(messages.c.status == "sending", messages.c.lease_until <= at)))
             .order_by(messages.c.due_at, messages.c.id).limit(limit))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return list(conn.execute(query).all())


def fenced(message_id: int, attempt: int) -> Any:
    """The UPDATE of one attempt of one message: a no-op if another worker has moved on."""
    return update(messages).where(messages.c.id == message_id, messages.c.attempts == attempt,
                                  messages.c.status == "sending")


def set_state(conn: Connection, message_id: int, now: datetime, status: str, reason: str | None = None,
              **values: Any) -> None:
    """A claimed message's state, decided in the claim's transaction (not sent)."""
    final = {"done_at": format_utc(now)} if status in FINAL else {}
    conn.execute(update(messages).where(messages.c.id == message_id)
                 .values(status=status, reason=None if reason is None else reason[:REASON_CHARS_MAX],
                         lease_until=None, **final, **values))


def start_sending(conn: Connection, claimed: list[tuple[int, int, str]], now: datetime, lease: timedelta) -> None:
    """(message id, attempt, gateway) of each message about to go: `sending`, with a
    lease; one statement for the batch."""
    if not claimed:
        return
    conn.execute(update(messages).where(messages.c.id == bindparam("m_id")).values(
        status="sending", attempts=bindparam("m_attempt"), gateway=bindparam("m_gateway"),
        lease_until=format_utc(now + lease), sent_at=format_utc(now)),
        [{"m_id": i, "m_attempt": a, "m_gateway": g} for i, a, g in claimed])


def record_sent(conn: Connection, sent: list[tuple[int, int, str, str | None]], now: datetime) -> int:
    """(message id, attempt, gateway, provider id) of messages the gateway took: `sent`
    (each only if still its attempt's); a delivery report that came first is applied.
    How many were recorded."""
    if not sent:
        return 0
    done = conn.execute(update(messages).where(
        messages.c.id == bindparam("m_id"), messages.c.attempts == bindparam("m_attempt"),
        messages.c.status == "sending").values(status="sent", provider_id=bindparam("m_provider"), lease_until=None,
                                               reason=None, sent_at=format_utc(now)),
        [{"m_id": i, "m_attempt": a, "m_provider": p} for i, a, _, p in sent])
    ids = {(g, p) for _, _, g, p in sent if p}
    if ids:
        early = conn.execute(select(message_reports.c.id, message_reports.c.gateway, message_reports.c.provider_id,
                                    message_reports.c.status, message_reports.c.detail).where(
            message_reports.c.applied.is_(False),
            message_reports.c.provider_id.in_({p for _, p in ids})).order_by(message_reports.c.id)).all()
        for r in early:
            if (r.gateway, r.provider_id) in ids and apply_report(conn, r.gateway, r.provider_id, r.status,
                                                                   r.detail, now):
                conn.execute(update(message_reports).where(message_reports.c.id == r.id).values(applied=True))
    return int(done.rowcount)


def record_retry(conn: Connection, message_id: int, attempt: int, due: datetime, reason: str) -> bool:
    return bool(conn.execute(fenced(message_id, attempt).values(
        status="queued", due_at=format_utc(due), lease_until=None, reason=reason[:REASON_CHARS_MAX])).rowcount)


def record_failed(conn: Connection, message_id: int, attempt: int, reason: str, now: datetime) -> bool:
    return bool(conn.execute(fenced(message_id, attempt).values(
        status="failed", lease_until=None, reason=reason[:REASON_CHARS_MAX], done_at=format_utc(now))).rowcount)


def apply_report(conn: Connection, gateway: str, provider_id: str, status: str, detail: str | None,
                 now: datetime) -> bool:
    """A delivery report onto its message; False if no sent message has that id yet."""
    done = conn.execute(update(messages).where(
        messages.c.gateway == gateway, messages.c.provider_id == provider_id,
        messages.c.status.in_(("sent", "delivered", "undelivered"))).values(
        status=status, done_at=format_utc(now), reason=None if status == "delivered" else (detail or status)[:200]))
    return bool(done.rowcount)


def cancel(conn: Connection, where: Any, reason: str, now: datetime) -> int:
    done = conn.execute(update(messages).where(where, messages.c.status == "queued").values(
        status="cancelled", reason=reason[:REASON_CHARS_MAX], done_at=format_utc(now)))
    return int(done.rowcount)
