"""`loyalty-hub verify`: every terminal's chain (seq from 1 without gaps, prev_hash,
entry_hash, and the terminal's last seq and hash), every balance recomputed from the
entries, every stored card number against the programme's card policy, and no card
issued outside its store's stock while the chain required stock.

Read-only, in one snapshot (create_hub_engine(reader=True)), streaming: entries are
read in order in batches of VERIFY_BATCH_ROWS (a server-side cursor on PostgreSQL),
balances are summed and compared by the database, so a large hub is checked in
bounded memory. Stops at the first bad row and names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, literal_column, select

from ledger.cardpolicy import CardPolicy, mask
from ledger.chain import GENESIS_HASH, entry_hash
from sync.errors import HubRefused
from sync.hub.entitlement import PAYMENT_ONLY, check_card_number, check_gift_card_number
from sync.hub.schema import balances, cards, entries, gift_cards, terminals
from sync.protocol import ENTRY_FIELDS

VERIFY_BATCH_ROWS = 5_000  # rows read at a time


class BadRow(Exception):
    """The first row that does not check; its message names it."""


@dataclass
class VerifyReport:
    entries: int = 0
    terminals: int = 0
    balances: int = 0
    card_numbers: int = 0


def _stream(conn: Connection, query: Any) -> Iterator[Any]:
    return iter(conn.execution_options(yield_per=VERIFY_BATCH_ROWS).execute(query))


def _card(policy: CardPolicy, number: str, where: str, gift: bool = False) -> None:
    try:
        if gift:
            check_gift_card_number(number, where)
        else:
            check_card_number(policy, number, where)
    except HubRefused as exc:
        raise BadRow(str(exc).replace("; nothing of this request was stored", "")) from None


def _check_chains(conn: Connection, report: VerifyReport) -> None:
    heads = {r.id: (int(r.last_seq), r.last_hash) for r in conn.execute(
        select(terminals.c.id, terminals.c.last_seq, terminals.c.last_hash))}
    seen: set[str] = set()
    current: str | None = None
    expected, prev = 1, GENESIS_HASH

    def close(terminal: str | None, last_seq: int, last_hash: str) -> None:
        if terminal is None:
            return
        head = heads.get(terminal)
        if head is None:
            raise BadRow(f"terminal {terminal}: has entries but no terminal row")
        if head != (last_seq, last_hash):
            raise BadRow(f"terminal {terminal}: its row says last seq {head[0]}, but its chain ends at seq "
                         f"{last_seq}" + ("" if head[0] != last_seq else " with another hash"))

    query = select(*(entries.c[f] for f in ENTRY_FIELDS)).order_by(entries.c.terminal_code, entries.c.seq)
    for row in _stream(conn, query):
        e = row._mapping
        if e["terminal_code"] != current:
            close(current, expected - 1, prev)
            current, expected, prev = e["terminal_code"], 1, GENESIS_HASH
            seen.add(current)
            report.terminals += 1
        where = f"terminal {current}, entry seq {e['seq']} (id {e['id']})"
        if e["seq"] != expected:
            raise BadRow(f"{where}: expected seq {expected}; an entry is missing or out of place")
        if e["prev_hash"] != prev:
            raise BadRow(f"{where}: prev_hash is not the hash of seq {expected - 1}")
        if entry_hash(e) != e["hash"]:
            raise BadRow(f"{where}: its content does not match its hash; the row was edited")
        if e["card_number"] is not None:
            _card(PAYMENT_ONLY, e["card_number"], where)
        if e["gift_card_number"] is not None:
            _card(PAYMENT_ONLY, e["gift_card_number"], where, gift=True)
        prev, expected = e["hash"], expected + 1
        report.entries += 1
    close(current, expected - 1, prev)
    for terminal, (last_seq, _) in sorted(heads.items()):
        if terminal not in seen and last_seq != 0:
            raise BadRow(f"terminal {terminal}: its row says last seq {last_seq}, but it has no entries")


def _check_balances(conn: Connection, report: VerifyReport) -> None:
    sums = (select(entries.c.member_id, func.sum(entries.c.points).label("total"))
            .where(entries.c.member_id.is_not(None)).group_by(entries.c.member_id).subquery())
    total = func.coalesce(sums.c.total, 0)
    stored = func.coalesce(balances.c.points, 0)
    wrong = conn.execute(select(sums.c.member_id, total, stored)
                         .select_from(sums.outerjoin(balances, balances.c.member_id == sums.c.member_id))
                         .where(total != stored).order_by(sums.c.member_id).limit(1)).first()
    if wrong is not None:
        raise BadRow(f"member {wrong[0]}: balance {int(wrong[2])}, but its entries add up to {int(wrong[1])}")
    orphan = conn.execute(select(balances.c.member_id, balances.c.points).where(
        balances.c.points != 0, ~exists().where(and_(entries.c.member_id == balances.c.member_id)))
        .order_by(balances.c.member_id).limit(1)).first()
    if orphan is not None:
        raise BadRow(f"member {orphan[0]}: balance {int(orphan[1])}, but it has no entries")
    report.balances = int(conn.execute(select(func.count()).select_from(balances)).scalar_one())


def _check_cards(conn: Connection, policy: CardPolicy, report: VerifyReport) -> None:
    for number, replaced_by in _stream(conn, select(cards.c.number, cards.c.replaced_by).order_by(cards.c.number)):
        _card(policy, number, "a stored card")
        if replaced_by is not None:
            _card(policy, replaced_by, f"card {mask(number)}: its replacement")
        report.card_numbers += 1
    for (number,) in _stream(conn, select(gift_cards.c.number).order_by(gift_cards.c.number)):
        _card(policy, number, "a stored gift card", gift=True)
        report.card_numbers += 1


def _check_stock(conn: Connection) -> None:
    """Cards issued outside their store's stock while the chain required it (recorded at
    ingest: the card was already in a member's hand, so it was taken, never refused)."""
    from sync.hub.stock import outside_stock

    rows, total = outside_stock(conn, required_only=True, limit=1)
    if total:
        r = rows[0]
        raise BadRow(f"{total} card(s) were issued outside their store's stock while the chain required it; the "
                     f"first: card {mask(r['number'])} at terminal {r['terminal_code']} (store {r['store']}), "
                     f"received {r['received_at']} (loyalty-hub cards history NUMBER)")


def verify_hub(engine: Engine, policy: CardPolicy) -> VerifyReport:
    """The report if everything checks; BadRow naming the first row that does not."""
    report = VerifyReport()
    with engine.connect() as conn:
        conn.execute(select(literal_column("1")))  # the snapshot starts here: every check sees one moment
        _check_chains(conn, report)
        _check_balances(conn, report)
        _check_cards(conn, policy, report)
        _check_stock(conn)
    return report
