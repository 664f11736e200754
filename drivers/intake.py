"""Where a number read off a card becomes an event: range check, bank-card refusal,
masking and de-duplication, the same for every reader."""

from __future__ import annotations

from datetime import datetime

from drivers.cards import CardCheck, Deduper
from drivers.errors import FrameError
from drivers.events import CardRead, CardRefused
from drivers.magstripe import Swipe


class Intake:
    def __init__(self, reader_id: str, technology: str, policy: CardCheck, deduper: Deduper) -> None:
        self.reader_id = reader_id
        self.technology = technology
        self.policy = policy
        self.deduper = deduper

    def card(self, number: str, at: datetime) -> CardRead | CardRefused | None:
        """The event for a read, or None for a duplicate within the window."""
        if not self.deduper.first(number, at):
            return None
        refused = self.policy.refusal(number)
        if refused is not None:
            return CardRefused(self.reader_id, self.technology, refused.masked, refused.message, refused.code, at)
        return CardRead(self.reader_id, self.technology, number, self.policy.mask(number), at)

    def swipe(self, swipe: Swipe, member_track: int, at: datetime) -> CardRead | CardRefused | None:
        """The event for a magnetic stripe swipe: its member number, or a refusal that
        tells the cashier to swipe again when no track could be read."""
        try:
            number = swipe.member_number(member_track)
        except FrameError as exc:
            return CardRefused(self.reader_id, self.technology, "", str(exc), "bad_swipe", at)
        return self.card(number, at)
