"""`ledger verify`: recompute every balance from entries and check every hash chain.

Read-only; streams the entries so a large ledger is checked in bounded memory.
Stops at the first bad entry of each terminal chain, since every later hash
depends on it. A chain archived in part (ledger.archive) is checked from its
checkpoint on: the first entry kept continues the checkpoint's seq and hash, the
last one is the terminal's head, and what was archived adds up to the checkpoint's
sums.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, String, func, select, type_coerce

from ledger.cardpolicy import CardPolicy, mask, payment_network
from ledger.chain import GENESIS_HASH, HASHED_FIELDS, hash_of_values
from ledger.schema import balances, checkpoints, entries, gift_cards, member_rule_uses, member_stats, terminals

VERIFY_BATCH_ROWS = 5000


@dataclass
class VerifyReport:
    entries_checked: int = 0
    entries_archived: int = 0  # before the checkpoints, checked as sums
    terminals: int = 0
    members: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# the hashed fields in the chain's order, the time as the text that was hashed (not
# parsed and formatted again), then the stored hash: a tuple per row for hash_of_values
_CHAIN_QUERY = select(*(type_coerce(entries.c[name], String) if name == "created_at" else entries.c[name]
                        for name in HASHED_FIELDS), entries.c.hash).order_by(entries.c.terminal_code, entries.c.seq)
_N_HASHED = len(HASHED_FIELDS)
_ID, _TERMINAL, _SEQ, _POINTS, _AMOUNT, _PREV = (HASHED_FIELDS.index(name) for name in (
    "id", "terminal_code", "seq", "points", "amount", "prev_hash"))


def _check_chains(conn: Connection, report: VerifyReport) -> None:
    current: str | None = None
    expected_seq = 1
    prev = GENESIS_HASH
    broken = False
    archived = {r.terminal_code: (int(r.seq), r.hash) for r in conn.execute(select(checkpoints))}
    report.entries_archived = sum(seq for seq, _ in archived.values())
    heads = {r.code: (int(r.next_seq) - 1, r.last_hash) for r in conn.execute(select(terminals))}
    ends: dict[str, tuple[int, str]] = {}  # terminal -> (seq, hash) its kept chain ends at
    bad: set[str] = set()  # terminals whose chain is already reported broken
    result = conn.execution_options(yield_per=VERIFY_BATCH_ROWS).execute(_CHAIN_QUERY)
    for row in result:
        # the hashed fields as stored (the time as its text), then the stored hash
        values, stored = tuple(row[:_N_HASHED]), row[_N_HASHED]
        code, seq, points, amount = values[_TERMINAL], values[_SEQ], values[_POINTS], values[_AMOUNT]
        if code != current:
            if current is not None and not broken:
                ends[current] = (expected_seq - 1, prev)
            current, broken = code, False
            seq0, prev = archived.get(current, (0, GENESIS_HASH))
            expected_seq = seq0 + 1
            report.terminals += 1
        report.entries_checked += 1
        if broken:
            continue
        where = f"entry {values[_ID]} (terminal {current}, seq {seq})"
        if seq != expected_seq:
            report.problems.append(f"{where}: expected seq {expected_seq}; an entry is missing or out of place")
            broken = True
        elif values[_PREV] != prev:
            report.problems.append(f"{where}: prev_hash does not match the hash of the entry before it")
            broken = True
        elif type(points) is not int or type(amount) is not int:
            report.problems.append(f"{where}: points and amount must be integers")
            broken = True
        elif hash_of_values(values) != stored:
            report.problems.append(f"{where}: contents do not match its hash; the entry was edited")
            broken = True
        if broken:
            bad.add(current)
        prev = stored
        expected_seq += 1
    if current is not None and not broken:
        ends[current] = (expected_seq - 1, prev)
    for code, head in sorted(heads.items()):
        # the chain kept ends at the terminal's head: entries deleted from its end (or
        # all of them after the checkpoint) are missed by every check above
        if code in bad:
            continue
        end = ends.get(code, archived.get(code, (0, GENESIS_HASH)))
        if end != head:
            report.problems.append(f"terminal {code}: its last entry is seq {head[0]} but its chain (kept and "
                                   f"archived) ends at seq {end[0]}; entries are missing or a checkpoint was edited")


def _check_balances(conn: Connection, report: VerifyReport) -> None:
    sums = dict(
        conn.execute(
            select(entries.c.member_id, func.sum(entries.c.points))
            .where(entries.c.member_id.is_not(None))
            .group_by(entries.c.member_id)
        ).all()
    )
    rows = conn.execute(select(balances.c.member_id, balances.c.points, balances.c.elsewhere,
                               balances.c.archived_credit, balances.c.archived_debit).order_by(balances.c.member_id))
    for member_id, points, elsewhere, archived_credit, archived_debit in rows:
        report.members += 1
        held = int(sums.pop(member_id, 0) or 0)
        # what other terminals did (as the hub said) and what was archived are sums, not entries
        expected = held + int(elsewhere) + int(archived_credit) - int(archived_debit)
        if points != expected:
            extra = f" (entries {held}, elsewhere {elsewhere}, archived {archived_credit - archived_debit})" \
                if elsewhere or archived_credit or archived_debit else ""
            report.problems.append(
                f"member {member_id}: balance {points} but the entries add up to {expected}{extra}"
            )
    for member_id in sorted(sums):
        report.problems.append(f"member {member_id}: has entries but no balance row")
    gift_sums = dict(
        conn.execute(
            select(entries.c.gift_card_number, func.sum(entries.c.amount))
            .where(entries.c.gift_card_number.is_not(None))
            .group_by(entries.c.gift_card_number)
        ).all()
    )
    for number, balance, elsewhere, archived in conn.execute(
            select(gift_cards.c.number, gift_cards.c.balance, gift_cards.c.elsewhere, gift_cards.c.archived)):
        expected = int(gift_sums.get(number, 0) or 0) + int(elsewhere) + int(archived)
        if balance != expected:
            report.problems.append(f"gift card …{number[-4:]}: balance {balance} but the entries add up to {expected}")


# what the archive moved out of the entries and sales, and where each sum went
_ARCHIVE_SUMS = (
    ("credit", balances.c.archived_credit, "the members' archived credits"),
    ("debit", balances.c.archived_debit, "the members' archived debits"),
    ("gift", gift_cards.c.archived, "the gift cards' archived Rial"),
    ("uses", member_rule_uses.c.archived, "the archived bonus uses"),
    ("sales", member_stats.c.sales, "the members' archived sales"),
    ("spend", member_stats.c.spend, "the members' archived spend"),
    ("gross", member_stats.c.gross, "the members' archived purchases"),
)


def _sum(column: Any) -> Any:
    return select(func.coalesce(func.sum(column), 0)).scalar_subquery()


# one statement for the fourteen sums, built once: verify runs after every step of
# the simulation, and fourteen statements were a quarter of a seed's time
_ARCHIVE_SUMS_QUERY = select(*(_sum(checkpoints.c[name]) for name, _, _ in _ARCHIVE_SUMS),
                             *(_sum(column) for _, column, _ in _ARCHIVE_SUMS))


def _check_archive_sums(conn: Connection, report: VerifyReport) -> None:
    """What was archived adds up to the checkpoints' sums: a sum edited on one side
    (a member's archived credit with their balance, say) shows here."""
    row = conn.execute(_ARCHIVE_SUMS_QUERY).one()
    count = len(_ARCHIVE_SUMS)
    for (_, _, what), kept, held in zip(_ARCHIVE_SUMS, row[:count], row[count:]):
        if int(kept) != int(held):
            report.problems.append(f"archive: {what} add up to {held} but the checkpoints say {kept}; "
                                   "a checkpoint or an archived sum was edited")


# (table, column, member card?): member cards must pass the whole policy; gift card
# numbers and numbers that only travel with an entry must never be a payment card's
_CARD_COLUMNS = (("cards", "number", True), ("cards", "replaced_by", True), ("sales", "card_number", False),
                 ("entries", "card_number", False), ("entries", "gift_card_number", False),
                 ("gift_cards", "number", False))


def _check_card_numbers(conn: Connection, policy: CardPolicy, report: VerifyReport) -> None:
    """Invariant 10 on what is stored: a number the policy refuses (kept by an older
    version, or copied in) is reported, masked, never shown whole."""
    for table, column, member_card in _CARD_COLUMNS:
        rows = conn.execution_options(yield_per=VERIFY_BATCH_ROWS).exec_driver_sql(
            f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")
        for (number,) in rows:
            network = payment_network(number)
            if network is not None:
                report.problems.append(f"{table}.{column}: {mask(number)} is a bank card's number ({network}); "
                                       "it must not be stored")
            elif member_card and policy.refusal(number) is not None:
                report.problems.append(f"{table}.{column}: {mask(number)} is outside the member card ranges")


def verify(engine: Engine, policy: CardPolicy | None = None) -> VerifyReport:
    """Every chain and balance; with a card policy, every stored card number too."""
    report = VerifyReport()
    with engine.connect() as conn:
        _check_chains(conn, report)
        _check_balances(conn, report)
        _check_archive_sums(conn, report)
        if policy is not None:
            _check_card_numbers(conn, policy, report)
    return report
