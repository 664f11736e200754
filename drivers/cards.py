"""What a reader needs to know of card numbers: which are member cards (a policy the
agent hands in: drivers know no ledger, yet one policy guards every door) and
duplicate reads within a window. Pure."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Protocol

DEDUPE_CARDS_MAX = 256  # distinct cards remembered for de-duplication


class Refusal(Protocol):
    code: str  # stable, e.g. "bank_card", "card_out_of_range"
    message: str  # shows the number masked only
    masked: str


class CardCheck(Protocol):
    """The programme's card policy as readers use it (ledger.cardpolicy.CardPolicy)."""

    def refusal(self, number: str) -> Refusal | None: ...

    def mask(self, number: str) -> str: ...


class Deduper:
    """Reads of the same card within `window` count once. Remembers a bounded number of cards."""

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self._seen: OrderedDict[str, datetime] = OrderedDict()

    def first(self, key: str, at: datetime) -> bool:
        last = self._seen.get(key)
        self._seen[key] = at
        self._seen.move_to_end(key)
        while len(self._seen) > DEDUPE_CARDS_MAX:
            self._seen.popitem(last=False)
        return last is None or at - last > self.window or at < last
