"""The audit log, read with filters for the manager's console. Reads only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ledger.schema import audit_log
from ledger.types import require_int

if TYPE_CHECKING:
    from ledger.service import Ledger

AUDIT_ROWS_MAX = 500


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


def audit_rows(ledger: "Ledger", *, actor: str | None = None, action: str | None = None,
               since: datetime | None = None, until: datetime | None = None, before_id: int | None = None,
               limit: int = 100) -> list[AuditRow]:
    """Newest first. `action` matches a whole action or its family ("card" for card.*);
    `since` and `until` bound the time (until exclusive); `before_id` pages back."""
    require_int("limit", limit, minimum=1, maximum=AUDIT_ROWS_MAX)
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    if action:
        query = query.where((audit_log.c.action == action) | audit_log.c.action.startswith(action + ".",
                                                                                             autoescape=True))
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if until is not None:
        query = query.where(audit_log.c.at < until)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    with ledger.read() as conn:
        rows = conn.execute(query).all()
    out = []
    for r in rows:
        try:
            detail = json.loads(r.detail)
        except ValueError:
            detail = {"text": r.detail}
        out.append(AuditRow(int(r.id), r.at, r.actor, r.action, r.target, detail if isinstance(detail, dict)
                            else {"value": detail}))
    return out
