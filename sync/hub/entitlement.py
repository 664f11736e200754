"""What a terminal may write to the hub. Pure: every check here takes rows and what
the hub already holds, and raises HubRefused naming the row; the service does the
reading and writing around them.

Bounds: every number the hub sums stays far inside a signed 64-bit integer. An
entry moves at most ENTRY_POINTS_MAX points and ENTRY_AMOUNT_MAX Rial; a balance
stays within BALANCE_POINTS_MAX either way. A batch of BATCH_ENTRIES_MAX entries at
the bound added to a balance at the bound is 6 * 10**15, under 2**63 (9.2 * 10**18),
so the database never overflows before the check.

Card numbers: ledger.cardpolicy.CardPolicy, the programme's one policy, with the
ranges head office set at the hub. A payment card number is refused wherever it
appears (shown masked only), so a terminal with an old config cannot spread one.
"""

from __future__ import annotations

from typing import Any

from ledger.cardpolicy import CARD_NUMBER_MAX, CardPolicy, normalise_card_number
from ledger.errors import PaymentCardRefused, ValidationFailed
from sync.errors import HubRefused

ENTRY_POINTS_MAX = 10**12  # points, either sign, in one entry
ENTRY_AMOUNT_MAX = 10**15  # Rial, either sign, in one entry
BALANCE_POINTS_MAX = 10**15  # points, either sign, in one member's balance


def _limit_exceeded(message: str) -> HubRefused:
    return HubRefused(message, 422, "limit_exceeded")


def check_entry_bounds(entry: dict[str, Any]) -> None:
    """An entry's points and amount (whole numbers, already checked) inside the bounds."""
    if not -ENTRY_POINTS_MAX <= entry["points"] <= ENTRY_POINTS_MAX:
        raise _limit_exceeded(f"entry {entry['id']} (seq {entry['seq']}) moves {entry['points']} points, beyond "
                              f"ENTRY_POINTS_MAX ({ENTRY_POINTS_MAX:,} points either way)")
    if not -ENTRY_AMOUNT_MAX <= entry["amount"] <= ENTRY_AMOUNT_MAX:
        raise _limit_exceeded(f"entry {entry['id']} (seq {entry['seq']}) carries an amount of {entry['amount']} "
                              f"Rial, beyond ENTRY_AMOUNT_MAX ({ENTRY_AMOUNT_MAX:,} Rial either way)")


def check_balance(member_id: str, points: int) -> None:
    """A balance after this request's entries: within BALANCE_POINTS_MAX."""
    if not -BALANCE_POINTS_MAX <= points <= BALANCE_POINTS_MAX:
        raise _limit_exceeded(f"member {member_id}: this request would leave a balance of {points} points, beyond "
                              f"BALANCE_POINTS_MAX ({BALANCE_POINTS_MAX:,} points either way)")


# -- card numbers ----------------------------------------------------------------------

PAYMENT_ONLY = CardPolicy(())  # no ranges: refuses payment cards only


def check_card_number(policy: CardPolicy, number: str, where: str) -> None:
    """A member card number against the programme's policy (ranges, then payment
    networks first of all). The refusal shows the number masked, never whole: it may
    be a bank card a terminal with an old config let through."""
    try:
        refusal = policy.refusal(normalise_card_number(number))
    except ValidationFailed:
        raise HubRefused(f"{where}: a card number must be 4 to {CARD_NUMBER_MAX} letters or digits", 422,
                         "invalid_card_number") from None
    if refusal is not None:
        raise HubRefused(f"{where}: {refusal.message}; nothing of this request was stored", 422, refusal.code)


def check_gift_card_number(number: str, where: str) -> None:
    """A gift card number: any number but a payment card's."""
    try:
        PAYMENT_ONLY.not_payment(number, "gift card number")
    except PaymentCardRefused as exc:
        raise HubRefused(f"{where}: {exc}; nothing of this request was stored", 422, PaymentCardRefused.code) from None
    except ValidationFailed:
        raise HubRefused(f"{where}: a gift card number must be 4 to {CARD_NUMBER_MAX} letters or digits", 422,
                         "invalid_card_number") from None
