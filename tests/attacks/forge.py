"""A terminal that writes its requests by hand: enrolled for real, signing for real,
but sending whatever rows it likes, hash-chained correctly (so only the hub's own
rules can refuse them)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ledger.chain import entry_hash
from ledger.timefmt import format_utc
from sync import signing

NO_RULESET = "-" * 64


def now_text(**delta: float) -> str:
    return format_utc(datetime.now(timezone.utc) + timedelta(**delta))


def member_row(member_id: str, store: str, **fields: Any) -> dict[str, Any]:
    return {"id": member_id, "name": "Sara", "mobile": "09120000001", "birth_date": None, "referrer_id": None,
            "tier": "bronze", "segment": None, "enrolled_at": now_text(), "enrolled_by": "mgr",
            "store_code": store} | fields


def card_row(number: str, member_id: str, **fields: Any) -> dict[str, Any]:
    return {"number": number, "member_id": member_id, "technology": "magstripe", "status": "active",
            "replaced_by": None, "issued_at": now_text(), "issued_by": "mgr", "status_changed_at": None,
            "status_reason": None} | fields


def gift_row(number: str, **fields: Any) -> dict[str, Any]:
    return {"number": number, "status": "active", "issued_at": now_text(), "issued_by": "mgr"} | fields


class Forger:
    def __init__(self, hub: Any, http: Any, terminal: str, store: str) -> None:
        self.hub, self.http, self.terminal, self.store = hub, http, terminal, store
        r = http.post("/v1/enroll", json={"code": hub.new_enrolment_code(store), "terminal": terminal})
        assert r.status_code == 200, r.text
        self.secret = r.json()["secret"]
        self.seq, self.last_hash = 0, ""

    def entry(self, **fields: Any) -> dict[str, Any]:
        """The next entry of this terminal's chain (kept only if the hub takes it: see send)."""
        self.seq += 1
        row = {"id": str(uuid.uuid4()), "terminal_code": self.terminal, "seq": self.seq, "member_id": None,
               "card_number": None, "gift_card_number": None, "kind": "adjust", "points": 0, "amount": 0,
               "sale_id": None, "receipt_ref": None, "rule_id": None, "reason": "test", "actor": "mgr",
               "ruleset_hash": NO_RULESET, "created_at": now_text(), "prev_hash": self.last_hash} | fields
        row["hash"] = self.last_hash = entry_hash(row)
        return row

    def post(self, payload: dict[str, Any], now: float | None = None) -> Any:
        body = json.dumps(payload).encode()
        headers = signing.signed_headers(self.terminal, self.secret, "POST", "/v1/sync", body, now=now)
        return self.http.post("/v1/sync", content=body, headers=headers)

    def send(self, **payload: Any) -> Any:
        """POST the rows; on a refusal the entries made for it are forgotten (the chain
        goes on from what the hub holds)."""
        sent = payload.get("entries") or []
        r = self.post(payload)
        if r.status_code != 200 and sent:
            self.seq, self.last_hash = sent[0]["seq"] - 1, sent[0]["prev_hash"]
        return r


class Till:
    """A real terminal (ledger on disk, the real sync client) of a given store."""

    def __init__(self, folder: Path, hub, http, code: str, store: str) -> None:  # type: ignore[no-untyped-def]
        from ledger.service import Ledger
        from sync.client import Credentials, SyncClient

        self.ledger = Ledger.open(folder / f"{code}.sqlite3", store=store, terminal=code)
        r = http.post("/v1/enroll", json={"code": hub.new_enrolment_code(store), "terminal": code})
        assert r.status_code == 200, r.text
        self.client = SyncClient(self.ledger, Credentials("http://hub.test", code, store, r.json()["secret"]),
                                 transport=http._transport)

    def close(self) -> None:
        self.client.close()
        self.ledger.close()


def hub_balance(hub, member_id: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from sync.hub.schema import balances

    with hub.engine.connect() as conn:
        return int(conn.execute(select(balances.c.points).where(balances.c.member_id == member_id)).scalar() or 0)
