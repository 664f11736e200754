"""What a terminal may write to the hub. Pure: every check here takes rows and what
the hub already holds, and raises HubRefused naming the row; the service does the
reading and writing around them. One refusal refuses the whole request.

A terminal belongs to one store (its enrolment code's). It may write:

- entries of its own chain, of the ledger's kinds with signs that make sense
  (ENTRY_SIGNS), within the bounds below, and only for members, cards and gift
  cards the hub holds or the same request brings (422 unknown_member,
  unknown_card, unknown_gift_card; card_mismatch for another member's card);
- new members of its own store only, and changes to a member's name, mobile,
  birth date or segment only if the member is of its store (403 not_entitled);
- cards: any change to its own store's members' cards; for another store's member
  only what a branch really does for a visiting customer: block the card or mark it
  lost, or replace it (the old card `replaced` and the new one, for the same member,
  in the same request). No card ever moves to another member;
- gift cards: new ones (they belong to no member).

Manual adjustments beyond a terminal's daily limit are taken but held (see
service.Hub and sync/hub/hubchain.py), not refused here.

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

from collections.abc import Iterable, Mapping

from ledger import limits
from ledger.cardpolicy import CARD_NUMBER_MAX, CardPolicy, mask, normalise_card_number
from ledger.errors import PaymentCardRefused, ValidationFailed
from ledger.schema import ENTRY_KINDS
from sync.errors import HubRefused
from sync.protocol import card_change_wins

# the terminals' own bounds (ledger.limits): points and Rial, either sign
ENTRY_POINTS_MAX = limits.ENTRY_POINTS_MAX  # in one entry
ENTRY_AMOUNT_MAX = limits.ENTRY_AMOUNT_RIAL_MAX  # in one entry
BALANCE_POINTS_MAX = limits.BALANCE_POINTS_MAX  # in one member's balance


# Manual adjustments (`adjust` entries) one terminal makes in a day (the stores' date),
# in points either way, before the rest that day are held for approval; a terminal's
# own limit is set with `loyalty-hub terminals limit`.
ADJUST_POINTS_PER_DAY_DEFAULT = 50_000
MEMBER_EDITABLE = ("name", "mobile", "birth_date", "segment")  # what a change of a member may touch
FOREIGN_CARD_STATUSES = ("lost", "blocked", "replaced")  # what a branch may do to another store's card

# The signs an entry's points and amount may have, by kind: +1 at least 0, -1 at
# most 0, 0 exactly 0, None either. (Gift entries move Rial, never points; a refund's
# `reverse` takes earned points back or gives redeemed ones back.)
ENTRY_SIGNS: dict[str, tuple[int | None, int | None]] = {
    "earn": (1, 1),
    "bonus": (1, 1),
    "redeem": (-1, 1),
    "expire": (-1, 1),
    "adjust": (None, 1),
    "reverse": (None, 1),
    "gift_load": (0, 1),
    "gift_spend": (0, -1),
    "tier": (0, 1),
}
assert set(ENTRY_SIGNS) == set(ENTRY_KINDS), "every ledger kind has its signs"
_SIGN_WORDS = {1: "at least 0", -1: "at most 0", 0: "0"}


def _limit_exceeded(message: str) -> HubRefused:
    return HubRefused(message, 422, "limit_exceeded")


def _not_entitled(message: str) -> HubRefused:
    return HubRefused(message, 403, "not_entitled")


def _sign_ok(value: int, sign: int | None) -> bool:
    return sign is None or (value >= 0 if sign > 0 else value <= 0 if sign < 0 else value == 0)


def _span(sign: int | None, bound: int) -> tuple[int, int]:
    return (0 if sign is not None and sign >= 0 else -bound, 0 if sign is not None and sign <= 0 else bound)


# kind -> (lowest points, highest points, lowest amount, highest amount): signs and bounds in one
_ENTRY_SPANS = {kind: _span(p, ENTRY_POINTS_MAX) + _span(a, ENTRY_AMOUNT_MAX) for kind, (p, a) in ENTRY_SIGNS.items()}


def check_entry(entry: dict[str, Any]) -> None:
    """An entry's kind, the signs of its points and amount, and their bounds (the
    values are whole numbers, already checked). Run on every entry of every batch:
    one lookup and two comparisons when all is well; the wording when it is not."""
    span = _ENTRY_SPANS.get(entry["kind"])
    if span is not None and span[0] <= entry["points"] <= span[1] and span[2] <= entry["amount"] <= span[3]:
        return
    signs = ENTRY_SIGNS.get(entry["kind"])
    if signs is None:
        raise HubRefused(f"entry {entry['id']} (seq {entry['seq']}) is of kind {entry['kind']!r}; the ledger's kinds "
                         f"are {', '.join(ENTRY_KINDS)}", 422, "bad_entry")
    for field, sign in zip(("points", "amount"), signs):
        if not _sign_ok(entry[field], sign):
            raise HubRefused(f"entry {entry['id']} (seq {entry['seq']}): a {entry['kind']} entry's {field} must be "
                             f"{_SIGN_WORDS[sign]}, not {entry[field]}", 422, "bad_entry")  # type: ignore[index]
    check_entry_bounds(entry)


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


# -- members and cards ------------------------------------------------------------------

def member_change(terminal: str, store: str, current: Mapping[str, Any] | None,
                  row: Mapping[str, Any]) -> list[str] | None:
    """None: a new member this terminal may enrol. Else the editable fields the row
    changes (empty: nothing changes). not_entitled if the terminal may not."""
    if current is None:
        if row["store_code"] != store:
            raise _not_entitled(
                f"member {row['id']} is of store {row['store_code']!r}, but terminal {terminal} is enrolled for store "
                f"{store!r}: a terminal enrols members of its own store only (check [agent] store in the terminal's "
                "config, or enrol it with a code for that store)")
        return None
    changed = [k for k in MEMBER_EDITABLE if current[k] != row[k]]
    if changed and current["store_code"] != store:
        raise _not_entitled(
            f"member {row['id']} is of store {current['store_code']!r}: only a terminal of that store changes its "
            f"{', '.join(changed)} (terminal {terminal} is of store {store!r})")
    return changed


def status_wins(current: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """Whether a card row's status replaces the held one: a more final status, or an
    equally final other one changed later."""
    return card_change_wins(current["status"], current["replaced_by"], current["status_changed_at"], row["status"],
                            row["replaced_by"], row["status_changed_at"])


def card_change(terminal: str, store: str, current: Mapping[str, Any] | None, row: Mapping[str, Any],
                member_store: str | None, request_cards: Mapping[str, Mapping[str, Any]],
                held: Mapping[str, str]) -> str | None:
    """What a card row does: "issue" (a new card), "status" (a held card's status
    changes) or None (nothing changes). Refused if the terminal may not.

    member_store: the store of the row's member (None: the hub does not know the
    member); request_cards: this request's card rows by number; held: number ->
    member id of cards the hub holds, for the numbers this request names."""
    card = f"card {mask(row['number'])}"
    if member_store is None:
        raise HubRefused(f"{card} is for member {row['member_id']}, whom the hub does not know; send the member "
                         "with it", 422, "unknown_member")
    own = member_store == store
    if current is None:
        if not own and not _replaces_a_card_of(row, request_cards, held):
            raise _not_entitled(
                f"{card} is for member {row['member_id']} of store {member_store!r}: terminal {terminal} (store "
                f"{store!r}) gives another store's member a card only to replace one of theirs, with the old card "
                "marked replaced in the same request")
        return "issue"
    if row["member_id"] != current["member_id"]:
        raise _not_entitled(f"{card} belongs to member {current['member_id']}: no terminal moves a card to another "
                            "member")
    if not status_wins(current, row):
        return None
    if not own and row["status"] not in FOREIGN_CARD_STATUSES:
        raise _not_entitled(
            f"{card} is of member {current['member_id']} of store {member_store!r}: terminal {terminal} (store "
            f"{store!r}) may block it, mark it lost or replace it, not make it {row['status']}")
    if row["status"] == "replaced":
        target = row["replaced_by"]
        new = request_cards.get(target) if target is not None else None
        target_member = new["member_id"] if new is not None else held.get(target) if target is not None else None
        if target_member != current["member_id"] or (not own and new is None):
            raise _not_entitled(
                f"{card} is marked replaced, but its replacement is not a card of the same member "
                + ("in this request" if not own else "in this request or at the hub")
                + " (no card moves to another member)")
    return "status"


def _replaces_a_card_of(row: Mapping[str, Any], request_cards: Mapping[str, Mapping[str, Any]],
                        held: Mapping[str, str], _chain: frozenset[str] = frozenset()) -> bool:
    """Whether this request marks a card of the row's member replaced by the row: a
    card the hub holds for them, or one this request itself gives them that way (a card
    replaced twice before the branch synced: A by B, then B by C; found by the
    simulation, seed 23)."""
    chain = _chain | {row["number"]}
    for number, old in request_cards.items():
        if old["status"] != "replaced" or old["replaced_by"] != row["number"] or \
                old["member_id"] != row["member_id"] or number in chain:
            continue
        if held.get(number) == row["member_id"]:
            return True
        if number not in held and _replaces_a_card_of(old, request_cards, held, chain):
            return True
    return False


def check_entry_references(fresh: Iterable[Mapping[str, Any]], members_held: set[str], gifts_held: set[str],
                           cards_held: Mapping[str, str]) -> None:
    """Every member, card and gift card the new entries name is held by the hub (or
    came in this request, which is stored by now); a card only with its own member."""
    for e in fresh:
        where = f"entry {e['id']} (seq {e['seq']})"
        if e["member_id"] is not None and e["member_id"] not in members_held:
            raise HubRefused(f"{where} is for member {e['member_id']}, whom the hub does not know; send the member "
                             "first or with it", 422, "unknown_member")
        if e["gift_card_number"] is not None and e["gift_card_number"] not in gifts_held:
            raise HubRefused(f"{where} is for gift card {mask(e['gift_card_number'])}, which the hub does not know; "
                             "send the gift card first or with it", 422, "unknown_gift_card")
        if e["card_number"] is not None:
            owner = cards_held.get(e["card_number"])
            if owner is None:
                raise HubRefused(f"{where} names card {mask(e['card_number'])}, which the hub does not know; send "
                                 "the card first or with it", 422, "unknown_card")
            if e["member_id"] is not None and owner != e["member_id"]:
                raise HubRefused(f"{where} is for member {e['member_id']} but names card {mask(e['card_number'])} of "
                                 f"member {owner}", 422, "card_mismatch")


# -- manual adjustments ------------------------------------------------------------------

def split_adjustments(fresh: Iterable[Mapping[str, Any]], limit: int, used: int) -> tuple[list[Mapping[str, Any]], int]:
    """The adjustments among new entries (in order) that go past the day's limit, given
    the points already used today; and the points used after those taken. An
    adjustment that does not fit is held whole; a smaller one after it may still fit."""
    held = []
    for e in fresh:
        if e["kind"] == "adjust" and e["member_id"] is not None and e["points"]:
            size = abs(e["points"])
            if used + size <= limit:
                used += size
            else:
                held.append(e)
    return held, used


# -- sales and refunds (protocol 2) ----------------------------------------------------

SALES_PER_REQUEST_MAX = 5_000
LINES_PER_SALE_MAX = 500  # as the till allows (ledger.types)
_SALE_TEXT = {"id": 36, "kind": 8, "original_sale_id": 36, "terminal_code": 64, "member_id": 36, "card_number": 32,
              "receipt_ref": 64, "ruleset_hash": 64, "created_at": 27, "actor": 64}
_LINE_TEXT = {"sku": 64, "name": 200, "category": 64}
RESULT_JSON_CHARS_MAX = 200_000  # a 500-line sale's answer, explanations in two languages


def _bad_sale(sale_id: Any, message: str) -> HubRefused:
    return HubRefused(f"sale {str(sale_id)[:36]}: {message}", 422, "bad_sale")


def check_sale(terminal: str, sale: Mapping[str, Any], cards_ok: set[str] | None = None) -> None:
    """A sale or refund a terminal sends: its own, well formed, inside the bounds, no
    payment card's number. Pure; references (the member) are checked by the caller.
    cards_ok: card numbers the policy already passed in this batch (a member's card
    comes back with each of their sales), added to as numbers pass."""
    if type(sale) is not dict:
        raise HubRefused("sales must be a list of objects", 422, "bad_sale")
    sid = sale.get("id")
    for field, length in _SALE_TEXT.items():
        value = sale.get(field)
        if value is None and field in ("original_sale_id", "card_number"):
            continue
        if type(value) is not str or not value or len(value) > length:
            raise _bad_sale(sid, f"{field} must be text of 1 to {length} characters")
    if sale["terminal_code"] != terminal:
        raise _not_entitled(f"sale {sid} belongs to terminal {sale['terminal_code']}, not to {terminal}")
    if sale["kind"] not in ("sale", "refund") or (sale["kind"] == "refund") != (sale.get("original_sale_id") is not None):
        raise _bad_sale(sid, "kind is sale (without original_sale_id) or refund (with it)")
    amount = sale.get("amount")
    if type(amount) is not int or not 0 <= amount <= limits.SALE_AMOUNT_RIAL_MAX:
        raise _limit_exceeded(f"sale {sid}: amount must be a whole number of 0 to {limits.SALE_AMOUNT_RIAL_MAX:,} Rial")
    result = sale.get("result_json")
    if type(result) is not str or len(result) > RESULT_JSON_CHARS_MAX:
        raise _bad_sale(sid, f"result_json must be text of at most {RESULT_JSON_CHARS_MAX:,} characters")
    card = sale.get("card_number")
    if card is not None and (cards_ok is None or card not in cards_ok):
        check_card_number(PAYMENT_ONLY, card, f"sale {sid}")
        if cards_ok is not None:
            cards_ok.add(card)
    lines = sale.get("lines")
    if type(lines) is not list or len(lines) > LINES_PER_SALE_MAX:
        raise _bad_sale(sid, f"lines must be a list of at most {LINES_PER_SALE_MAX}")
    total = 0
    for line in lines:
        if type(line) is not dict:
            raise _bad_sale(sid, "each line must be an object")
        for field, length in _LINE_TEXT.items():
            value = line.get(field)
            if type(value) is not str or not value or len(value) > length:
                raise _bad_sale(sid, f"a line's {field} must be text of 1 to {length} characters")
        numbers = [line.get(k) for k in ("line_no", "quantity", "unit_price")]
        if any(type(n) is not int or n < 0 for n in numbers) or numbers[1] == 0 or \
                (line.get("original_line_no") is not None and type(line["original_line_no"]) is not int):
            raise _bad_sale(sid, "a line's line_no, quantity and unit_price must be whole numbers (quantity >= 1)")
        line_total = numbers[1] * numbers[2]
        if line_total > limits.LINE_TOTAL_RIAL_MAX:
            raise _limit_exceeded(f"sale {sid}: a line's total is beyond {limits.LINE_TOTAL_RIAL_MAX:,} Rial")
        total += line_total
    if total != amount:
        raise _bad_sale(sid, f"its lines add up to {total}, not to its amount {amount}")
