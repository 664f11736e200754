"""Where a number read off a card becomes an event: range check, bank-card refusal,
masking and de-duplication, the same for every reader."""

from __future__ import annotations

from datetime import datetime

from drivers.cards import CardPolicy, Deduper, mask
from drivers.errors import CardRejected
from drivers.events import CardRead, CardRefused


class Intake:
    def __init__(self, reader_id: str, technology: str, policy: CardPolicy, deduper: Deduper) -> None:
        self.reader_id = reader_id
        self.technology = technology
        self.policy = policy
        self.deduper = deduper

    def card(self, number: str, at: datetime) -> CardRead | CardRefused | None:
        """The event for a read, or None for a duplicate within the window."""
        if not self.deduper.first(number, at):
            return None
        try:
            accepted = self.policy.accept(number)
        except CardRejected as exc:
            return CardRefused(self.reader_id, self.technology, mask(number), str(exc), exc.code, at)
        return CardRead(self.reader_id, self.technology, accepted, mask(accepted), at)
