"""The member card ranges head office sets at the hub, as `loyalty-hub cards ranges
set` writes them: PREFIX:LENGTHS[:luhn], lengths separated by commas (`6395:16`,
`77:10,12:luhn`). Pure; the policy itself is ledger.cardpolicy.CardPolicy."""

from __future__ import annotations

from ledger.cardpolicy import CARD_NUMBER_MAX, CardPolicy, CardRange, payment_prefix_of
from sync.errors import HubRefused

CARD_NUMBER_MIN = 4  # characters, as ledger.cardpolicy.normalise_card_number takes them
RANGES_MAX = 100  # ranges in one policy


def parse_range(spec: str) -> CardRange:
    """One PREFIX:LENGTHS[:luhn]; HubRefused saying what is wrong with it."""
    parts = spec.strip().split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2].lower() != "luhn"):
        raise HubRefused(f"range {spec!r}: write PREFIX:LENGTHS or PREFIX:LENGTHS:luhn, e.g. 6395:16 or "
                         "77:10,12:luhn")
    prefix, lengths_text = parts[0], parts[1]
    if not prefix.isascii() or not prefix.isdigit():
        raise HubRefused(f"range {spec!r}: the prefix must be digits")
    try:
        lengths = tuple(sorted({int(x) for x in lengths_text.split(",")}))
    except ValueError:
        raise HubRefused(f"range {spec!r}: lengths are whole numbers separated by commas") from None
    if not all(max(CARD_NUMBER_MIN, len(prefix)) <= n <= CARD_NUMBER_MAX for n in lengths):
        raise HubRefused(f"range {spec!r}: each length must be {max(CARD_NUMBER_MIN, len(prefix))} to "
                         f"{CARD_NUMBER_MAX} (at least the prefix's)")
    network = payment_prefix_of(prefix)
    if network is not None:
        raise HubRefused(f"range {spec!r}: numbers starting {prefix} are {network} payment cards; a member "
                         "card range cannot lie inside a payment network's")
    return CardRange(prefix, lengths, len(parts) == 3)


def parse_ranges(specs: list[str] | tuple[str, ...]) -> CardPolicy:
    if len(specs) > RANGES_MAX:
        raise HubRefused(f"at most {RANGES_MAX} ranges")
    return CardPolicy(tuple(parse_range(s) for s in specs))


def range_text(r: CardRange) -> str:
    """The range as parse_range reads it."""
    return f"{r.prefix}:{','.join(map(str, r.lengths))}" + (":luhn" if r.luhn else "")
