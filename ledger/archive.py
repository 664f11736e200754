"""Archiving: a terminal's ledger stays bounded.

Own entries, sales and refunds that the hub has acknowledged (no outbox row left for
them) and that are older than the retention are folded into sums and deleted, one
batch per transaction, so a kill at any moment leaves a batch archived whole or not
at all, and a till's sale waits for one batch at most:

- entries, a prefix of each terminal's chain: the checkpoint moves to the last one
  archived (its seq and hash: `ledger verify` checks the chain on from there) and
  keeps their sums; each member's archived credit and debit, each gift card's
  archived Rial and each bonus rule's archived uses take them over, so balances,
  per-member limits and expiry come out as before;
- a sale together with its refunds (never one without the other: a refund is
  checked against what the sale's earlier refunds returned), once every entry they
  made is archived: each member's stats take their count, spend and visits, which
  is what a sale's snapshot needs of them; their idempotency keys and receipts are
  kept for KEY_RETENTION_DAYS more, so a POS retry is refused rather than posted
  again and a refund of one is told it belongs to head office.

The retention is never shorter than what the loyalty table in force looks back on
(the tier window, the streak, point expiry): the windows a sale's rules read are
always whole in the rows kept. Archiving checks the chain of what it archives and
refuses, archiving nothing, where it is broken.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ledger.chain import GENESIS_HASH, entry_hash
from ledger.db import Raw
from ledger.errors import IntegrityFailure
from ledger.rows import ENTRY_FIELDS
from ledger.timefmt import format_utc
from ledger.types import require_int, require_text
from ledger.writer import audit

if TYPE_CHECKING:
    from ledger.service import Ledger

RETENTION_DAYS_MIN = 366  # a whole year of tier windows and of refunds stays at the till
RETENTION_DAYS_DEFAULT = 400
RETENTION_DAYS_MAX = 3660
KEY_RETENTION_DAYS = 730  # archived sales' keys and receipts, past their sales' retention
ARCHIVE_BATCH_ROWS = 500  # entries (or sales) per transaction: a sale waits behind one batch at most
ARCHIVE_BATCH_MAX = 50_000
_MONTH_DAYS = 31  # point expiry is counted in months: the longest month, to be sure
ARCHIVE_ACTION = "ledger.archive"


@dataclass
class ArchiveReport:
    """What one run archived (or, dry, would archive)."""

    cutoff: str
    retention_days: int  # in force: the configured one, or longer if the loyalty table looks back further
    entries: int = 0
    sales: int = 0  # sales and refunds
    lines: int = 0
    keys_dropped: int = 0  # archived sales' keys past their own retention
    batches: int = 0
    dry_run: bool = False
    checkpoints: dict[str, int] = field(default_factory=dict)  # terminal -> seq archived up to

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def retention_in_force(ruleset: Any, retention_days: int) -> int:
    """The configured retention, or what the loyalty table looks back on if longer: the
    tier window, the streak's window and point expiry must be whole in the kept rows."""
    require_int("retention days", retention_days, minimum=RETENTION_DAYS_MIN, maximum=RETENTION_DAYS_MAX)
    needs = [ruleset.tier_policy.window_days, ruleset.bonuses.streak_within_days,
             math.ceil(ruleset.expiry.months * _MONTH_DAYS)]
    return max(retention_days, *needs)


# -- entries: a prefix of each chain ----------------------------------------------------

_COLUMNS = ", ".join(ENTRY_FIELDS)
_FIRST_UNSENT_SQL = ("SELECT min(e.seq) FROM outbox o JOIN entries e ON e.id = o.entry_id "
                     "WHERE e.terminal_code = ?")
_PREFIX_SQL = f"SELECT {_COLUMNS} FROM entries WHERE terminal_code = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?"
_CHECKPOINT_SQL = "SELECT seq, hash FROM checkpoints WHERE terminal_code = ?"


def checkpoint_of(raw: Raw, terminal: str) -> tuple[int, str]:
    """(seq, hash) the terminal's chain is archived up to; (0, genesis) if none is."""
    row = raw.one_or_none(_CHECKPOINT_SQL, (terminal,))
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)


def _prefix(raw: Raw, terminal: str, after_seq: int, after_hash: str, cutoff: str,
            limit: int) -> list[dict[str, Any]]:
    """The next entries of the chain after `after_seq` that may be archived: acknowledged,
    older than the cutoff, in an unbroken chain (checked: a broken one is not hidden)."""
    unsent = raw.scalar(_FIRST_UNSENT_SQL, (terminal,))
    below = int(unsent) if unsent is not None else 2 ** 62
    out: list[dict[str, Any]] = []
    expected, prev = after_seq + 1, after_hash
    for values in raw.all(_PREFIX_SQL, (terminal, after_seq, below, limit)):
        e = dict(zip(ENTRY_FIELDS, values))
        if e["created_at"] >= cutoff:
            break
        if e["seq"] != expected or e["prev_hash"] != prev or entry_hash(e) != e["hash"]:
            raise IntegrityFailure(f"entry seq {e['seq']} of terminal {terminal} does not continue its chain "
                                   f"after seq {expected - 1}; nothing was archived: run `loyalty-agent ledger "
                                   "verify` and call head office")
        out.append(e)
        expected, prev = expected + 1, e["hash"]
    return out


def _fold_entries(raw: Raw, terminal: str, rows: list[dict[str, Any]]) -> None:
    credit: dict[str, int] = {}
    debit: dict[str, int] = {}
    gift: dict[str, int] = {}
    uses: dict[tuple[str, str], list[Any]] = {}
    for e in rows:
        if e["member_id"] is not None and e["points"]:
            side = credit if e["points"] > 0 else debit
            side[e["member_id"]] = side.get(e["member_id"], 0) + abs(e["points"])
        if e["gift_card_number"] is not None and e["amount"]:
            gift[e["gift_card_number"]] = gift.get(e["gift_card_number"], 0) + e["amount"]
        if e["kind"] == "bonus" and e["rule_id"] is not None and e["member_id"] is not None:
            seen = uses.setdefault((e["member_id"], e["rule_id"]), [0, e["created_at"]])
            seen[0] += 1
            seen[1] = max(seen[1], e["created_at"])
    for member_id in sorted(set(credit) | set(debit)):
        if raw.one_or_none("UPDATE balances SET archived_credit = archived_credit + ?, "
                           "archived_debit = archived_debit + ? WHERE member_id = ? RETURNING 1",
                           (credit.get(member_id, 0), debit.get(member_id, 0), member_id)) is None:
            raise IntegrityFailure(f"member {member_id} has entries but no balance row; nothing was archived")
    for number, amount in sorted(gift.items()):
        if raw.one_or_none("UPDATE gift_cards SET archived = archived + ? WHERE number = ? RETURNING 1",
                           (amount, number)) is None:
            raise IntegrityFailure(f"gift card …{number[-4:]} has entries but is not issued; nothing was archived")
    raw.many("INSERT INTO member_rule_uses (member_id, rule_id, elsewhere, archived, last_used_at) "
             "VALUES (?, ?, 0, ?, ?) ON CONFLICT (member_id, rule_id) DO UPDATE SET "
             "archived = archived + excluded.archived, "
             "last_used_at = max(coalesce(last_used_at, ''), excluded.last_used_at)",
             [(m, r, n, last) for (m, r), (n, last) in sorted(uses.items())])
    last = rows[-1]
    raw.run("INSERT INTO checkpoints (terminal_code, seq, hash, at, credit, debit, gift, uses) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (terminal_code) DO UPDATE SET seq = excluded.seq, "
            "hash = excluded.hash, at = excluded.at, credit = credit + excluded.credit, "
            "debit = debit + excluded.debit, gift = gift + excluded.gift, uses = uses + excluded.uses",
            (terminal, last["seq"], last["hash"], last["created_at"], sum(credit.values()), sum(debit.values()),
             sum(gift.values()), sum(n for n, _ in uses.values())))
    raw.run("DELETE FROM entries WHERE terminal_code = ? AND seq >= ? AND seq <= ?",
            (terminal, rows[0]["seq"], last["seq"]))


# -- sales: a sale with its refunds ------------------------------------------------------

_SALE_COLUMNS = ("id", "kind", "terminal_code", "member_id", "amount", "created_at", "idempotency_key",
                 "request_hash", "receipt_ref")
_SALE_CANDIDATES_SQL = (f"SELECT {', '.join(_SALE_COLUMNS)} FROM sales WHERE kind = 'sale' AND created_at < ? "
                        "AND (created_at > ? OR (created_at = ? AND id > ?)) ORDER BY created_at, id LIMIT ?")
_REFUNDS_SQL = f"SELECT {', '.join(_SALE_COLUMNS)} FROM sales WHERE original_sale_id = ?"
_SALE_ENTRIES_SQL = "SELECT terminal_code, seq FROM entries WHERE sale_id = ?"
Cursor = tuple[str, str]


def _families(raw: Raw, cutoff: str, through: dict[str, int], after: Cursor,
              limit: int) -> tuple[list[list[dict[str, Any]]], Cursor, bool]:
    """Sales (each with its refunds) that may be archived, in time order after the
    cursor: every one of them acknowledged, older than the cutoff, and every entry it
    made archived (at or below `through`, the seq each chain is archived up to).
    Returns them, the cursor after the last sale looked at, and whether that was all."""
    pending = set(raw.column("SELECT ref FROM outbox WHERE kind = 'sale'"))
    rows = raw.all(_SALE_CANDIDATES_SQL, (cutoff, after[0], after[0], after[1], limit))
    out = []
    for values in rows:
        sale = dict(zip(_SALE_COLUMNS, values))
        family = [sale] + [dict(zip(_SALE_COLUMNS, r)) for r in raw.all(_REFUNDS_SQL, (sale["id"],))]
        if any(s["created_at"] >= cutoff or s["id"] in pending for s in family):
            continue
        if any(seq > through.get(terminal, 0) for s in family for terminal, seq in raw.all(_SALE_ENTRIES_SQL,
                                                                                          (s["id"],))):
            continue
        out.append(family)
    cursor = (rows[-1][5], rows[-1][0]) if rows else after
    return out, cursor, len(rows) < limit


def _fold_sales(raw: Raw, families: list[list[dict[str, Any]]]) -> int:
    """Fold the families into member stats and the checkpoints, keep their keys, delete
    them with their lines; returns the lines deleted."""
    stats: dict[str, list[Any]] = {}  # member -> [sales, spend, gross, first, last]
    per_terminal: dict[str, list[int]] = {}  # terminal -> [sales, spend, gross]
    rows = [s for family in families for s in family]
    for s in rows:
        st = stats.setdefault(s["member_id"], [0, 0, 0, None, None])
        tt = per_terminal.setdefault(s["terminal_code"], [0, 0, 0])
        amount = int(s["amount"])
        if s["kind"] == "sale":
            st[0] += 1
            st[1] += amount
            st[2] += amount
            st[3] = min(st[3] or s["created_at"], s["created_at"])
            st[4] = max(st[4] or s["created_at"], s["created_at"])
            tt[0] += 1
            tt[1] += amount
            tt[2] += amount
        else:
            st[1] -= amount
            tt[1] -= amount
    raw.many("INSERT INTO member_stats (member_id, sales, spend, gross, first_visit_at, last_visit_at) "
             "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (member_id) DO UPDATE SET sales = sales + excluded.sales, "
             "spend = spend + excluded.spend, gross = gross + excluded.gross, "
             "first_visit_at = min(coalesce(first_visit_at, excluded.first_visit_at), excluded.first_visit_at), "
             "last_visit_at = max(coalesce(last_visit_at, excluded.last_visit_at), excluded.last_visit_at)",
             [(m, *v) for m, v in sorted(stats.items())])
    raw.many("INSERT INTO checkpoints (terminal_code, seq, hash, at, sales, spend, gross) "
             "VALUES (?, 0, '', '', ?, ?, ?) ON CONFLICT (terminal_code) DO UPDATE SET "
             "sales = sales + excluded.sales, spend = spend + excluded.spend, gross = gross + excluded.gross",
             [(t, *v) for t, v in sorted(per_terminal.items())])
    raw.many("INSERT INTO archived_sales (id, idempotency_key, request_hash, kind, terminal_code, receipt_ref, "
             "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
             [(s["id"], s["idempotency_key"], s["request_hash"], s["kind"], s["terminal_code"], s["receipt_ref"],
               s["created_at"]) for s in rows])
    ids = json.dumps([s["id"] for s in rows])
    refunds = json.dumps([s["id"] for s in rows if s["kind"] == "refund"])
    lines = int(raw.scalar("SELECT count(*) FROM sale_lines WHERE sale_id IN (SELECT value FROM json_each(?))",
                           (ids,)))
    raw.run("DELETE FROM sale_lines WHERE sale_id IN (SELECT value FROM json_each(?))", (ids,))
    raw.run("DELETE FROM sales WHERE id IN (SELECT value FROM json_each(?))", (refunds,))  # before their sales
    raw.run("DELETE FROM sales WHERE id IN (SELECT value FROM json_each(?))", (ids,))
    return lines


# -- a run ---------------------------------------------------------------------------------

def _terminals(raw: Raw) -> list[str]:
    return raw.column("SELECT code FROM terminals ORDER BY code")


def archive(ledger: "Ledger", *, now: datetime | None = None, retention_days: int = RETENTION_DAYS_DEFAULT,
            batch: int = ARCHIVE_BATCH_ROWS, dry_run: bool = False, actor: str = "system",
            stop: Callable[[], bool] = lambda: False) -> ArchiveReport:
    """Archive what the hub holds and the retention no longer needs; with `dry_run`,
    only count it. Each batch is one transaction, audited in it; `stop` is asked
    between batches (the daemon's shutdown), and what is left waits for the next run."""
    require_int("batch", batch, minimum=1, maximum=ARCHIVE_BATCH_MAX)
    actor = require_text("actor", actor, maximum=64)
    now = now or ledger.clock()
    days = retention_in_force(ledger.ruleset, retention_days)
    cutoff = format_utc(now - timedelta(days=days))
    key_cutoff = format_utc(now - timedelta(days=days + KEY_RETENTION_DAYS))
    report = ArchiveReport(cutoff=cutoff, retention_days=days, dry_run=dry_run)
    if dry_run:
        _count(ledger, report, cutoff, key_cutoff, batch)
        return report

    def batch_done(conn: Any, **what: int) -> None:
        report.batches += 1
        audit(conn, at=now, actor=actor, action=ARCHIVE_ACTION, target=None, cutoff=cutoff, retention_days=days,
              **what)

    # entries first, each terminal's chain in batches; then the sales whose entries are gone
    with ledger.read() as conn:
        terminals = _terminals(Raw(conn))
    for terminal in terminals:
        while not stop():
            with ledger.write("archiving entries") as conn:
                raw = Raw(conn)
                seq, head = checkpoint_of(raw, terminal)
                rows = _prefix(raw, terminal, seq, head, cutoff, batch)
                if not rows:
                    report.checkpoints[terminal] = seq
                    break
                _fold_entries(raw, terminal, rows)
                report.entries += len(rows)
                report.checkpoints[terminal] = rows[-1]["seq"]
                batch_done(conn, terminal=terminal, entries=len(rows), through_seq=rows[-1]["seq"])
    cursor: Cursor = ("", "")
    done = False
    while not done and not stop():
        with ledger.write("archiving sales") as conn:
            raw = Raw(conn)
            through = {t: checkpoint_of(raw, t)[0] for t in _terminals(raw)}
            families, cursor, done = _families(raw, cutoff, through, cursor, batch)
            if families:
                lines = _fold_sales(raw, families)
                count = sum(len(f) for f in families)
                report.sales += count
                report.lines += lines
                batch_done(conn, sales=count, lines=lines)
    with ledger.write("dropping archived sales' keys") as conn:
        raw = Raw(conn)
        raw.run("DELETE FROM archived_sales WHERE created_at < ?", (key_cutoff,))
        report.keys_dropped = int(raw.scalar("SELECT changes()"))
        if report.keys_dropped:
            batch_done(conn, keys_dropped=report.keys_dropped)
    return report


def _count(ledger: "Ledger", report: ArchiveReport, cutoff: str, key_cutoff: str, batch: int) -> None:
    """A dry run: the same choice as a real run, in one read, writing nothing."""
    with ledger.read() as conn:
        raw = Raw(conn)
        through: dict[str, int] = {}
        for terminal in _terminals(raw):
            seq, head = checkpoint_of(raw, terminal)
            while rows := _prefix(raw, terminal, seq, head, cutoff, batch):
                report.entries += len(rows)
                seq, head = rows[-1]["seq"], rows[-1]["hash"]
            through[terminal] = report.checkpoints[terminal] = seq
        cursor: Cursor = ("", "")
        done = False
        while not done:
            families, cursor, done = _families(raw, cutoff, through, cursor, batch)
            ids = [s["id"] for f in families for s in f]
            report.sales += len(ids)
            if ids:
                report.lines += int(raw.scalar("SELECT count(*) FROM sale_lines WHERE sale_id IN "
                                               "(SELECT value FROM json_each(?))", (json.dumps(ids),)))
        report.keys_dropped = int(raw.scalar("SELECT count(*) FROM archived_sales WHERE created_at < ?",
                                             (key_cutoff,)))


# -- what the rest of the ledger reads ---------------------------------------------------

def archived_sale(raw: Raw, *, sale_id: str | None = None, receipt_ref: str | None = None) -> tuple[str, str] | None:
    """(receipt, when) of an archived sale by its id or receipt; None if none is kept."""
    if sale_id is not None:
        row = raw.one_or_none("SELECT receipt_ref, created_at FROM archived_sales WHERE id = ? AND kind = 'sale'",
                              (sale_id,))
    else:
        row = raw.one_or_none("SELECT receipt_ref, created_at FROM archived_sales WHERE receipt_ref = ? "
                              "AND kind = 'sale' ORDER BY created_at DESC LIMIT 1", (receipt_ref,))
    return (str(row[0]), str(row[1])) if row else None


def archived_refusal(receipt: str, created_at: str) -> str:
    return (f"sale {receipt} of {created_at[:10]} is past the retention and archived at this till: a refund of "
            "it is handled at head office")
