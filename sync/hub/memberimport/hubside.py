"""`loyalty-hub members import`: check a members workbook against the hub and write
it in one transaction, or nothing.

The write is what a terminal's enrolment does at the hub, for many members at once:
member and card rows with new directory revs (so the home store's terminals receive
them in their scoped directory, and any other terminal can look them up), opening
balances as entries of the hub's own chain (hubchain.py: `adjust` entries written by
the person named with --by, which every terminal checks like any other), balances
and the home store's scope, and one audit row for the import (who, the file, its
SHA-256, the counts). No welcome message is queued: these members are not new to the
chain, only to the hub.

Lock order (ordering.py): the `counters` row (all the revs at once), the hub's
chain, the ingest lock, then balances. Terminals' syncs that write directory rows or
entries wait for the commit (about 20 s for 100,000 members on a 2-core machine).
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledger.progress import NO_PROGRESS, Progress, ProgressFactory, no_progress, progress_of
from ledger.timefmt import format_utc
from sync.errors import ImportRefused
from sync.hub.hubchain import HubEntry, chain_entries, lock_hub_chain
from sync.hub.memberimport.book import Sheet, default_errors_path, sha256_of, write_errors
from sync.hub.memberimport.cells import fold
from sync.hub.memberimport.check import Context, Plan, against_hub, check_row, referrers_outside
from sync.hub.ordering import hold_ingest_order
from sync.hub.schema import (
    HUB_TERMINAL,
    audit,
    balances,
    card_stock,
    cards,
    counters,
    entries,
    member_stores,
    members,
    rulesets,
    stores,
    terminal_balances,
    terminals,
)
from sync.hub.service import PERSON_CHARS_MAX, Hub, record, store_day
from sync.protocol import ENTRY_FIELDS

QUERY_KEYS_MAX = 5_000  # keys in one IN (...) lookup of what the hub holds
INSERT_ROWS_CHUNK = 5_000  # rows of one INSERT round (progress advances between them)
ACTION = "members.import"
RULE_ID = "opening"  # the hub chain entry's rule_id: what it is
CARD_TECHNOLOGY = "magstripe"  # the card's technology until its first swipe or tap says otherwise
# everyday names of the default tiers, beside the loyalty table's own
TIER_ALIASES = {"bronze": ("برنز",), "silver": ("نقره", "نقره ای"), "gold": ("طلا",)}



@dataclass
class ImportReport:
    file: str
    sha256: str
    rows: int  # data rows read
    members: int
    cards: int
    points: int
    by_store: dict[str, int]
    ignored_columns: tuple[str, ...]
    dry_run: bool
    entries: int = 0  # opening balance entries written
    member_ids: list[str] = field(default_factory=list)


_silent = no_progress


def _by(by: str) -> str:
    by = (by or "").strip()
    if not 1 <= len(by) <= PERSON_CHARS_MAX:
        raise ImportRefused(f"--by names who imports: 1 to {PERSON_CHARS_MAX} characters")
    return by


def _tiers(conn: Connection) -> tuple[dict[str, str], str]:
    """The loyalty table's tiers (the one last published at the hub, else the built-in
    one): folded id and names -> id, and the entry tier."""
    from ledger.rules import default_ruleset, parse_ruleset

    text = conn.execute(select(rulesets.c.toml).order_by(rulesets.c.version.desc()).limit(1)).scalar()
    ruleset = parse_ruleset(tomllib.loads(text), "the hub's loyalty table") if text else default_ruleset()
    names: dict[str, str] = {}
    for t in reversed(ruleset.tiers):  # the first tier of a name wins
        for alias in (t.id, t.name_en, t.name_fa, *TIER_ALIASES.get(t.id, ())):
            names[fold(alias)] = t.id
    return names, ruleset.tiers[0].id


def _context(hub: Hub, conn: Connection, default_store: str | None) -> Context:
    known = frozenset(conn.execute(select(stores.c.code)).scalars())
    if default_store is not None and default_store not in known:
        raise ImportRefused(f"--store {default_store}: the hub has no such store (a store is made by "
                            "`loyalty-hub terminals add --store CODE`)")
    tiers, entry_tier = _tiers(conn)
    return Context(date.fromisoformat(store_day(hub.clock())), hub._card_policy(conn), tiers, entry_tier, known,
                   default_store)


def _chunks(keys: list[str], size: int = QUERY_KEYS_MAX) -> Iterable[list[str]]:
    for i in range(0, len(keys), size):
        yield keys[i:i + size]


def _held(conn: Connection, column: Any, keys: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(sorted(set(keys))):
        out.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
    return out


def _hub_referrers(conn: Connection, mobiles: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for chunk in _chunks(sorted(mobiles)):
        for member_id, mobile in conn.execute(select(members.c.id, members.c.mobile).where(members.c.mobile.in_(chunk))):
            out.setdefault(mobile, []).append(member_id)
    return out


def _imported_before(conn: Connection, file_name: str, sha256: str) -> str | None:
    """When and by whom this very file was imported, if it was (found by its name, which
    the audit's target index holds, and its SHA-256)."""
    row = conn.execute(select(audit.c.at, audit.c.actor).where(audit.c.target == file_name[:64],
                                                               audit.c.action == ACTION,
                                                               audit.c.detail.contains(sha256))
                       .order_by(audit.c.id).limit(1)).first()
    return None if row is None else f"this file was imported before, at {row.at} by {row.actor}; "


def import_members(hub: Hub, path: Path, *, by: str, store: str | None = None, dry_run: bool = False,
                   errors_path: Path | None = None, progress: ProgressFactory = _silent) -> ImportReport:
    """Check the workbook at `path`; unless `dry_run`, import it whole. ImportRefused
    (the hub unchanged) if the file or any row is bad: the rows' problems are then in
    the error workbook (default: FILE.errors.xlsx beside it)."""
    try:
        return _import(hub, path, by, store, dry_run, errors_path, progress)
    except IntegrityError:  # a card issued by a terminal meanwhile (its number is the key)
        raise ImportRefused(f"{path.name}: a terminal issued one of its cards while it was checked; nothing was "
                            "imported: run the import again to see which") from None
    except DBAPIError as exc:  # the database itself (locked, gone, out of space): any transaction is undone
        raise ImportRefused(f"{path.name}: the hub's database refused the import ({str(exc.orig)[:200]}); nothing "
                            "was imported") from None


def _import(hub: Hub, path: Path, by: str, store: str | None, dry_run: bool, errors_path: Path | None,
            progress: ProgressFactory) -> ImportReport:
    by = _by(by)
    store = store.strip() if store else None
    errors_path = errors_path or default_errors_path(path)
    with hub.engine.connect() as conn:
        ctx = _context(hub, conn, store)
    sheet = Sheet(path)
    try:
        plan = Plan()
        with progress_of(progress(f"checking {path.name}"), sheet.estimated_rows) as bar:
            advance, n = bar.advance, 0
            for number, values in sheet.rows():
                check_row(plan, number, values, sheet.columns, ctx)
                n += 1
                if n == 1_000:
                    advance(n)
                    n = 0
            advance(n)
    finally:
        sheet.close()
    digest = sha256_of(path)
    if plan.rows == 0:
        raise ImportRefused(f"{path}: no members below the header row")
    with hub.engine.connect() as conn:
        mobiles = [m.mobile for m in plan.members]
        held_mobiles = _held(conn, members.c.mobile, mobiles)
        held_cards = _held(conn, cards.c.number, [m.card for m in plan.members if m.card is not None])
        against_hub(plan, sheet.columns, held_mobiles, held_cards, _hub_referrers(conn, referrers_outside(plan)))
        before = _imported_before(conn, path.name, digest) if plan.problems else None
    report = ImportReport(path.name, digest, plan.rows, len(plan.members), plan.cards, plan.points,
                          plan.by_store(), sheet.columns.ignored, dry_run)
    if plan.problems:
        write_errors(errors_path, plan.problems, path)
        bad_rows = len({p.row for p in plan.problems})
        raise ImportRefused(f"{path.name}: {before or ''}{bad_rows:,} of {plan.rows:,} rows have problems "
                            f"({len(plan.problems):,} in all); nothing was imported; each is listed in {errors_path}",
                            errors_path)
    if not dry_run:
        report.entries = _write(hub, plan, path.name, digest, by, progress)
        report.member_ids = [m.id for m in plan.members]
    return report


def _next_revs(conn: Connection, n: int) -> int:
    """Take n directory revs at once (the `counters` row stays locked until commit,
    ordering.py); the first of them."""
    top = conn.execute(update(counters).where(counters.c.name == "rev").values(value=counters.c.value + n)
                       .returning(counters.c.value)).scalar()
    if top is None:  # (migration 0002 seeds the row)
        conn.execute(insert(counters).values(name="rev", value=n))
        top = n
    return int(top) - n + 1


MEMBER_COLUMNS = ("id", "name", "mobile", "birth_date", "referrer_id", "tier", "segment", "enrolled_at", "enrolled_by",
                  "store_code", "rev")
CARD_COLUMNS = ("number", "member_id", "technology", "status", "replaced_by", "issued_at", "issued_by",
                "status_changed_at", "status_reason", "rev")
SCOPE_COLUMNS = ("member_id", "store", "since")  # the home store's scope (scope.add_scope), for new members
ENTRY_COLUMNS = (*ENTRY_FIELDS, "received_at")


def _insert_rows(conn: Connection, table: Any, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """New rows by the driver itself: COPY on PostgreSQL, executemany on SQLite
    (SQLAlchemy's per-row parameter work was a third of an import's write). The rows
    are new (fresh ids, numbers checked absent), so a clash is a row a terminal wrote
    meanwhile: IntegrityError, and the whole import is undone."""
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql(f"INSERT INTO {table.name} ({', '.join(columns)}) "
                             f"VALUES ({', '.join('?' for _ in columns)})", rows)
        return
    import psycopg

    cur = conn.connection.driver_connection.cursor()
    try:
        with cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.errors.IntegrityError as exc:
        raise IntegrityError(f"COPY {table.name}", None, exc) from None


def _append_opening(conn: Connection, chain: tuple[int, str], items: list[HubEntry], now: datetime) -> tuple[int, str]:
    """Opening balances as entries of the hub's chain: the rows hubchain.append_hub_entries
    writes (hubchain.chain_entries makes them), and their sums (scope.record_effects:
    the hub's part of each balance), written as new rows in bulk, since every member
    here is new: no balance or part exists to add to, and one entry is within
    BALANCE_POINTS_MAX. The chain's (last seq, last hash) after them; the caller holds
    the chain and ingest locks and updates the hub's terminal row."""
    at = format_utc(now)
    rows = chain_entries(chain[0], chain[1], items, now)
    _insert_rows(conn, entries, ENTRY_COLUMNS, [tuple(r[f] for f in ENTRY_FIELDS) + (at,) for r in rows])
    _insert_rows(conn, balances, ("member_id", "points"), [(r["member_id"], r["points"]) for r in rows])
    _insert_rows(conn, terminal_balances, ("member_id", "terminal_code", "points"),
                 [(r["member_id"], HUB_TERMINAL, r["points"]) for r in rows])
    return rows[-1]["seq"], rows[-1]["hash"]


def _record_stock(conn: Connection, imported: list[Any], at: str) -> int:
    """Cards of the import found in head office's card stock, not issued yet: recorded
    as issued, by the hub, with new revs, so no till offers one to another member (its
    store's tills learn it at their next sync). A card of a store's stock stays counted
    at that store; one still at head office goes to the member's store. The count."""
    found: dict[str, str | None] = {}
    numbers = [m.card for m in imported]
    for i in range(0, len(numbers), QUERY_KEYS_MAX):
        found.update(conn.execute(select(card_stock.c.number, card_stock.c.store).where(
            card_stock.c.number.in_(numbers[i:i + QUERY_KEYS_MAX]), card_stock.c.status != "issued")
            .with_for_update()).all())
    if not found:
        return 0
    rev = _next_revs(conn, len(found))
    rows = [{"n": m.card, "s": found[m.card] or m.store, "r": rev + j}
            for j, m in enumerate(m for m in imported if m.card in found)]
    conn.execute(update(card_stock).where(card_stock.c.number == bindparam("n")).values(
        status="issued", store=bindparam("s"), issued_at=at, issued_terminal=HUB_TERMINAL, rev=bindparam("r")), rows)
    return len(rows)


def _write(hub: Hub, plan: Plan, file_name: str, digest: str, by: str, progress: ProgressFactory) -> int:
    now = hub.clock()
    at = format_utc(now)
    new = plan.members
    with_card = [m for m in new if m.card is not None]
    opening = [m for m in new if m.points > 0]
    reason = f"opening balance (import {file_name})"
    shown = progress_of(progress("importing"), len(new) + len(with_card) + len(opening))
    with hub.engine.begin() as conn, shown as bar:
        rev = _next_revs(conn, len(new) + len(with_card))
        # a terminal may have enrolled one of these mobiles since the file was checked
        if _held(conn, members.c.mobile, (m.mobile for m in new)):
            raise ImportRefused(f"{file_name}: a terminal enrolled one of its mobiles while it was checked; "
                                "nothing was imported: run the import again to see which")
        for i in range(0, len(new), INSERT_ROWS_CHUNK):
            chunk = new[i:i + INSERT_ROWS_CHUNK]
            _insert_rows(conn, members, MEMBER_COLUMNS, [
                (m.id, m.name, m.mobile, m.birth_date, m.referrer_id, m.tier, None, at, by, m.store, rev + i + j)
                for j, m in enumerate(chunk)])
            _insert_rows(conn, member_stores, SCOPE_COLUMNS, [(m.id, m.store, at) for m in chunk])
            bar.advance(len(chunk))
        rev += len(new)
        for i in range(0, len(with_card), INSERT_ROWS_CHUNK):
            chunk = with_card[i:i + INSERT_ROWS_CHUNK]
            _insert_rows(conn, cards, CARD_COLUMNS, [
                (m.card, m.id, CARD_TECHNOLOGY, "active", None, at, by, None, None, rev + i + j)
                for j, m in enumerate(chunk)])
            bar.advance(len(chunk))
        from_stock = _record_stock(conn, with_card, at)
        if opening:
            chain = lock_hub_chain(conn)
            hold_ingest_order(conn)
            for i in range(0, len(opening), INSERT_ROWS_CHUNK):  # in chunks: memory stays bounded
                chunk = opening[i:i + INSERT_ROWS_CHUNK]
                chain = _append_opening(conn, chain, [HubEntry(m.id, m.points, reason, RULE_ID, by) for m in chunk],
                                        now)
                bar.advance(len(chunk))
            conn.execute(update(terminals).where(terminals.c.id == HUB_TERMINAL)
                         .values(last_seq=chain[0], last_hash=chain[1], last_seen_at=at))
        record(conn, now, by, ACTION, file_name, file=file_name, sha256=digest, rows=plan.rows,
               members=len(new), cards=len(with_card), cards_from_stock=from_stock, opening_points=plan.points,
               entries=len(opening),
               stores=plan.by_store())
        shown.summary = f"{len(new):,} members, {len(with_card):,} cards, {plan.points:,} opening points"
    return len(opening)


def describe(report: ImportReport) -> list[str]:
    """What the import did (or would do), as the command line prints it."""
    verb = "would import" if report.dry_run else "imported"
    lines = [f"{report.file}: {verb} {report.members:,} new members, {report.cards:,} cards, "
             f"{report.points:,} opening points" + ("" if report.dry_run else f" ({report.entries:,} entries in the "
                                                                                f"hub's chain)")]
    for code, n in sorted(report.by_store.items()):
        lines.append(f"  store {code}: {n:,} members")
    if report.ignored_columns:
        lines.append("  columns ignored: " + ", ".join(report.ignored_columns))
    lines.append(f"  file sha256 {report.sha256}")
    if report.dry_run:
        lines.append("dry run: nothing was changed")
    return lines
