"""What every reader emits: card reads and reader status changes. Plain frozen data.

A CardRead carries the member card number (already checked against the loyalty
ranges) and its masked form; raw track data never leaves the parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

TECHNOLOGIES = ("magstripe", "contactless", "chip", "simulated")
READER_STATES = ("connected", "disconnected", "error")


@dataclass(frozen=True)
class CardRead:
    reader_id: str
    technology: str
    number: str
    masked: str
    at: datetime  # aware UTC

    def to_event(self) -> dict[str, Any]:
        return {"type": "card", "reader_id": self.reader_id, "technology": self.technology,
                "number": self.number, "masked": self.masked, "at": self.at.isoformat()}


@dataclass(frozen=True)
class CardRefused:
    """A read that was refused (bank card, outside the ranges); only the masked form."""

    reader_id: str
    technology: str
    masked: str
    reason: str
    code: str
    at: datetime

    def to_event(self) -> dict[str, Any]:
        return {"type": "card_refused", "reader_id": self.reader_id, "technology": self.technology,
                "masked": self.masked, "reason": self.reason, "code": self.code, "at": self.at.isoformat()}


@dataclass(frozen=True)
class ReaderStatus:
    reader_id: str
    kind: str
    state: str  # connected, disconnected, error
    detail: str
    at: datetime

    def to_event(self) -> dict[str, Any]:
        return {"type": "reader", "reader_id": self.reader_id, "kind": self.kind, "state": self.state,
                "detail": self.detail, "at": self.at.isoformat()}


ReaderEvent = CardRead | CardRefused | ReaderStatus
