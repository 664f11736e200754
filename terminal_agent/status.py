"""What `loyalty-agent status` and GET /v1/status report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ledger.schema import entries, members, outbox
from terminal_agent.runtime import Runtime


def agent_status(rt: Runtime) -> dict[str, Any]:
    with rt.ledger.read() as conn:
        entry_count = conn.execute(select(func.count()).select_from(entries)).scalar_one()
        member_count = conn.execute(select(func.count()).select_from(members)).scalar_one()
        backlog = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    path = rt.ledger_path
    size = path.stat().st_size if path.exists() else 0
    out: dict[str, Any] = {
        "terminal": rt.ledger.terminal,
        "store": rt.ledger.store,
        "started_at": rt.started_at.isoformat(),
        "readers": list(rt.bus.readers.values()),
        "last_card": rt.bus.last_card,
        "ledger": {"path": str(path), "bytes": size, "entries": entry_count, "members": member_count},
        "sync": {"backlog": backlog},
    }
    for name, source in rt.status_sources.items():
        try:
            out[name] = source()
        except Exception as exc:  # a broken reporter must not break status
            out[name] = {"error": str(exc)}
    return out
