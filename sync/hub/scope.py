"""What a terminal of a chain is told (protocol 2): its scope, as sums.

A chain of thousands of stores cannot send every branch's entries to every till. A
terminal instead receives, for the members of its store's scope (enrolled there,
seen there, or looked up there):

- each member's points elsewhere (the balance minus this terminal's own part), the
  tier the last `tier` entry set, and bonus and offer uses at other terminals;
- those members' directory rows (members and their cards);
- every gift card's Rial elsewhere, and every gift card (bearer cards go anywhere);
- the complete blocklist: every card lost, blocked or replaced anywhere;
- the store's pre-printed cards (stock.py): assigned to it, or issued since.

A card outside the scope is looked up at the hub when presented (`lookup`), which puts
its member in the store's scope from then on. The sums are kept up to date at ingest
(`record_effects`), in the transaction that stores the entries, so an answer is a
few indexed reads whatever the size of the chain.

Lock order (ordering.py): everything here is written after the ingest lock, whose
holder is alone until commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from sync.hub.db import dialect_insert
from sync.hub.schema import (
    balances,
    card_stock,
    cards,
    counters,
    entries,
    gift_balances,
    gift_cards,
    member_stores,
    member_tiers,
    members,
    rule_uses,
    terminal_balances,
)
from sync.protocol import CARD_FIELDS, GIFT_FIELDS, MEMBER_FIELDS, STOCK_FIELDS

SCAN_ENTRIES_MAX = 20_000  # entries after a terminal's cursor read in one answer (index only)
SCOPE_ROWS_MAX = 5_000  # members (with their state) in one answer
BLOCKED = ("lost", "blocked", "replaced")


def _upsert_add(conn: Connection, table: Any, keys: tuple[str, ...], column: str, rows: list[dict[str, Any]],
                latest: str | None = None) -> None:
    if not rows:
        return
    stmt = dialect_insert(conn, table)
    change = {column: table.c[column] + stmt.excluded[column]}
    if latest is not None:
        change[latest] = func.max(table.c[latest], stmt.excluded[latest]) if conn.dialect.name == "sqlite" \
            else func.greatest(table.c[latest], stmt.excluded[latest])
    conn.execute(stmt.on_conflict_do_update(index_elements=[table.c[k] for k in keys], set_=change),
                 sorted(rows, key=lambda r: tuple(r[k] for k in keys)))


def add_scope(conn: Connection, store: str, member_ids: Iterable[str], since: str) -> None:
    """Members now in the store's scope (a no-op for those already in it)."""
    rows = [{"member_id": m, "store": store, "since": since} for m in sorted(set(member_ids))]
    if rows:
        conn.execute(dialect_insert(conn, member_stores).on_conflict_do_nothing(), rows)


def record_effects(conn: Connection, rows: list[dict[str, Any]], store: str | None, at: str) -> None:
    """Keep the sums a protocol-2 answer reads, for entries just stored (in their
    transaction): each terminal's part of balances and gift cards, bonus uses, tiers,
    and the store's scope (a member who transacts at a store is in its scope)."""
    parts: dict[tuple[str, str], int] = defaultdict(int)
    gifts: dict[tuple[str, str], int] = defaultdict(int)
    uses: dict[tuple[str, str, str], list[Any]] = {}
    tiers: dict[str, tuple[str, str]] = {}
    for e in rows:
        member, terminal = e["member_id"], e["terminal_code"]
        if member and e["points"]:
            parts[(member, terminal)] += e["points"]
        if e["gift_card_number"] and e["amount"] and e["kind"] in ("gift_load", "gift_spend"):
            gifts[(e["gift_card_number"], terminal)] += e["amount"]
        if member and e["kind"] == "bonus" and e["rule_id"]:
            seen = uses.setdefault((member, e["rule_id"], terminal), [0, e["created_at"]])
            seen[0] += 1
            seen[1] = max(seen[1], e["created_at"])
        if member and e["kind"] == "tier" and e["reason"] and " -> " in e["reason"]:
            new = e["reason"].rsplit(" -> ", 1)[1].strip()[:32]
            if member not in tiers or e["created_at"] >= tiers[member][1]:
                tiers[member] = (new, e["created_at"])
    _upsert_add(conn, terminal_balances, ("member_id", "terminal_code"), "points",
                [{"member_id": m, "terminal_code": t, "points": p} for (m, t), p in parts.items()])
    _upsert_add(conn, gift_balances, ("number", "terminal_code"), "amount",
                [{"number": n, "terminal_code": t, "amount": a} for (n, t), a in gifts.items()])
    _upsert_add(conn, rule_uses, ("member_id", "rule_id", "terminal_code"), "uses",
                [{"member_id": m, "rule_id": r, "terminal_code": t, "uses": n, "last_used_at": last}
                 for (m, r, t), (n, last) in uses.items()], latest="last_used_at")
    if tiers:
        stmt = dialect_insert(conn, member_tiers)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[member_tiers.c.member_id],
            set_={"tier": stmt.excluded.tier, "changed_at": stmt.excluded.changed_at},
            where=member_tiers.c.changed_at <= stmt.excluded.changed_at),
            [{"member_id": m, "tier": t, "changed_at": c} for m, (t, c) in sorted(tiers.items())])
    if store is not None:
        add_scope(conn, store, {e["member_id"] for e in rows if e["member_id"]}, at)


def member_states(conn: Connection, terminal: str, member_ids: list[str]) -> list[dict[str, Any]]:
    """For each member: points elsewhere (the balance without this terminal's part),
    the tier, and bonus uses at other terminals ([rule, uses, last used])."""
    if not member_ids:
        return []
    total = dict(conn.execute(select(balances.c.member_id, balances.c.points)
                              .where(balances.c.member_id.in_(member_ids))).all())
    mine = dict(conn.execute(select(terminal_balances.c.member_id, terminal_balances.c.points)
                             .where(terminal_balances.c.member_id.in_(member_ids),
                                    terminal_balances.c.terminal_code == terminal)).all())
    tier_of = dict(conn.execute(select(member_tiers.c.member_id, member_tiers.c.tier)
                                .where(member_tiers.c.member_id.in_(member_ids))).all())
    used: dict[str, list[list[Any]]] = defaultdict(list)
    for m, rule, n, last in conn.execute(
            select(rule_uses.c.member_id, rule_uses.c.rule_id, func.sum(rule_uses.c.uses),
                   func.max(rule_uses.c.last_used_at))
            .where(rule_uses.c.member_id.in_(member_ids), rule_uses.c.terminal_code != terminal)
            .group_by(rule_uses.c.member_id, rule_uses.c.rule_id)):
        used[m].append([rule, int(n), last])
    return [{"member_id": m, "elsewhere": int(total.get(m, 0)) - int(mine.get(m, 0)), "tier": tier_of.get(m),
             "uses": sorted(used.get(m, []))} for m in member_ids]


def gift_states(conn: Connection, terminal: str, numbers: list[str]) -> list[dict[str, Any]]:
    if not numbers:
        return []
    rows = conn.execute(select(gift_balances.c.number, func.sum(gift_balances.c.amount))
                        .where(gift_balances.c.number.in_(numbers), gift_balances.c.terminal_code != terminal)
                        .group_by(gift_balances.c.number)).all()
    elsewhere = {n: int(a) for n, a in rows}
    return [{"number": n, "elsewhere": elsewhere.get(n, 0)} for n in numbers]


def _in_scope(conn: Connection, store: str, member_ids: set[str]) -> list[str]:
    if not member_ids:
        return []
    return sorted(conn.execute(select(member_stores.c.member_id).where(
        member_stores.c.store == store, member_stores.c.member_id.in_(member_ids))).scalars())


def downstream(conn: Connection, terminal: str, store: str, cursor: int, rev: int) -> dict[str, Any]:
    """A protocol-2 answer's downstream part: what changed after (cursor, rev) for this
    terminal's scope, and the cursor and rev to hand back. Tops are read first, rows up
    to them second (ordering.py)."""
    top = int(conn.execute(select(func.max(entries.c.ingest_id))).scalar() or 0)
    changed_members: set[str] = set()
    changed_gifts: set[str] = set()
    new_cursor = cursor
    if top > cursor:
        scanned = conn.execute(select(entries.c.ingest_id, entries.c.member_id, entries.c.gift_card_number)
                               .where(entries.c.ingest_id > cursor, entries.c.ingest_id <= top,
                                      entries.c.terminal_code != terminal)
                               .order_by(entries.c.ingest_id).limit(SCAN_ENTRIES_MAX)).all()
        new_cursor = top if len(scanned) < SCAN_ENTRIES_MAX else int(scanned[-1].ingest_id)
        changed_members = {r.member_id for r in scanned if r.member_id}
        changed_gifts = {r.gift_card_number for r in scanned if r.gift_card_number}
    top_rev = int(conn.execute(select(counters.c.value).where(counters.c.name == "rev")).scalar() or 0)
    directory: dict[str, list[dict[str, Any]]] = {"members": [], "cards": [], "gift_cards": [], "blocklist": [],
                                                  "card_stock": []}
    new_rev = rev
    if top_rev > rev:
        new_rev = top_rev
        scoped = select(member_stores.c.member_id).where(member_stores.c.store == store)
        directory["members"] = [
            {k: getattr(r, k) for k in MEMBER_FIELDS} for r in conn.execute(
                select(members).where(members.c.rev > rev, members.c.rev <= top_rev, members.c.id.in_(scoped))
                .order_by(members.c.rev).limit(SCOPE_ROWS_MAX))]
        directory["cards"] = [
            {k: getattr(r, k) for k in CARD_FIELDS} for r in conn.execute(
                select(cards).where(cards.c.rev > rev, cards.c.rev <= top_rev, cards.c.member_id.in_(scoped))
                .order_by(cards.c.rev).limit(SCOPE_ROWS_MAX))]
        directory["gift_cards"] = [
            {k: getattr(r, k) for k in GIFT_FIELDS} for r in conn.execute(
                select(gift_cards).where(gift_cards.c.rev > rev, gift_cards.c.rev <= top_rev)
                .order_by(gift_cards.c.rev).limit(SCOPE_ROWS_MAX))]
        directory["blocklist"] = [
            {"number": r.number, "status": r.status, "replaced_by": r.replaced_by,
             "changed_at": r.status_changed_at, "reason": r.status_reason} for r in conn.execute(
                select(cards).where(cards.c.rev > rev, cards.c.rev <= top_rev, cards.c.status.in_(BLOCKED))
                .order_by(cards.c.rev).limit(SCOPE_ROWS_MAX))]
        # the store's pre-printed cards (stock.py): assigned to it, or issued since
        directory["card_stock"] = [
            dict(zip(STOCK_FIELDS, r)) for r in conn.execute(
                select(*(card_stock.c[f] for f in STOCK_FIELDS))
                .where(card_stock.c.store == store, card_stock.c.rev > rev, card_stock.c.rev <= top_rev)
                .order_by(card_stock.c.rev).limit(SCOPE_ROWS_MAX))]
        if any(len(rows) == SCOPE_ROWS_MAX for rows in directory.values()):
            # more than one answer holds: hand back the rev up to which every list is whole
            new_rev = _reached_rev(conn, rev, top_rev, store)
    in_scope = _in_scope(conn, store, changed_members) + [m["id"] for m in directory["members"]]
    states = member_states(conn, terminal, sorted(set(in_scope))[:SCOPE_ROWS_MAX])
    gifts = gift_states(conn, terminal, sorted(changed_gifts | {g["number"] for g in directory["gift_cards"]}))
    return {**directory, "member_states": states, "gift_states": gifts, "cursor": new_cursor,
            "directory_rev": new_rev, "more": new_cursor < top or new_rev < top_rev}


def _reached_rev(conn: Connection, rev: int, top_rev: int, store: str) -> int:
    """When a list was cut at SCOPE_ROWS_MAX, the rev up to which every list is whole."""
    scoped = select(member_stores.c.member_id).where(member_stores.c.store == store)
    ends = []
    for query in (select(members.c.rev).where(members.c.rev > rev, members.c.rev <= top_rev,
                                              members.c.id.in_(scoped)),
                  select(cards.c.rev).where(cards.c.rev > rev, cards.c.rev <= top_rev,
                                            cards.c.member_id.in_(scoped)),
                  select(gift_cards.c.rev).where(gift_cards.c.rev > rev, gift_cards.c.rev <= top_rev),
                  select(cards.c.rev).where(cards.c.rev > rev, cards.c.rev <= top_rev,
                                            cards.c.status.in_(BLOCKED)),
                  select(card_stock.c.rev).where(card_stock.c.store == store, card_stock.c.rev > rev,
                                                 card_stock.c.rev <= top_rev)):
        revs = list(conn.execute(query.order_by(query.selected_columns[0]).limit(SCOPE_ROWS_MAX)).scalars())
        if len(revs) == SCOPE_ROWS_MAX:
            ends.append(int(revs[-1]))
    return min(ends) if ends else top_rev
