"""What `loyalty-agent status` and GET /v1/status report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ledger.schema import card_stock, entries, members, outbox, sync_state
from terminal_agent.runtime import Runtime


def agent_status(rt: Runtime) -> dict[str, Any]:
    with rt.ledger.read() as conn:
        entry_count = conn.execute(select(func.count()).select_from(entries)).scalar_one()
        member_count = conn.execute(select(func.count()).select_from(members)).scalar_one()
        backlog = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        in_stock = conn.execute(select(func.count()).select_from(card_stock)
                                .where(card_stock.c.status == "in_stock")).scalar_one()
        required = bool(conn.execute(select(sync_state.c.card_stock_required)).scalar())
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
    if in_stock or required:  # a chain that sends pre-printed cards: how many are left to issue here
        out["card_stock"] = {"in_stock": in_stock, "required": required}
    for name, source in rt.status_sources.items():
        try:
            out[name] = source()
        except Exception as exc:  # a broken reporter must not break status
            out[name] = {"error": str(exc)}
    return out
