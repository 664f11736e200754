"""The ledger's side of sync, with no network: what goes up (the outbox, in order)
and what comes down (other branches' members, cards, gift cards and entries, the
hub's acknowledgements). sync.client speaks HTTP and calls these inside the ledger's
own transactions; nothing outside the ledger package writes to a till's ledger.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ledger.cardpolicy import CardPolicy, normalise_card_number
from ledger.db import Raw
from ledger.errors import IntegrityFailure, ValidationFailed
from ledger.rows import CARD_FIELDS, ENTRY_FIELDS, GIFT_FIELDS, LINE_FIELDS, MEMBER_FIELDS, SALE_FIELDS, card_change_wins
from ledger.writer import move_balances

log = logging.getLogger("ledger.hubsync")

_ENTRY_COLUMNS = ", ".join(f"e.{c}" for c in ENTRY_FIELDS)


# -- up -------------------------------------------------------------------------------

def outbox_rows(raw: Raw, after_id: int, limit: int) -> list[tuple[Any, ...]]:
    """(outbox id, kind, ref, entry fields... or Nones) of the next `limit` rows after
    `after_id`, in outbox order: entries and directory changes as they happened."""
    return raw.all(f"SELECT o.id, o.kind, o.ref, {_ENTRY_COLUMNS} FROM outbox o "
                   "LEFT JOIN entries e ON e.id = o.entry_id WHERE o.id > ? ORDER BY o.id LIMIT ?",
                   (after_id, limit))


def outbox_head(raw: Raw, after_id: int, limit: int) -> list[tuple[Any, ...]]:
    """(outbox id, kind, ref) of the same rows: to tell whether rows read ahead still hold."""
    return raw.all("SELECT id, kind, ref FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))


_DIRECTORY = {"member": ("members", "id", MEMBER_FIELDS), "card": ("cards", "number", CARD_FIELDS),
              "gift_card": ("gift_cards", "number", GIFT_FIELDS)}


def batch_rows(raw: Raw, rows: list[tuple[Any, ...]]) -> dict[str, list[dict[str, Any]]]:
    """The rows of a batch as sent: its entries in order, and each directory row it
    names once, as it stands now."""
    out: dict[str, list[dict[str, Any]]] = {
        "entries": [dict(zip(ENTRY_FIELDS, r[3:])) for r in rows if r[1] == "entry"]}
    for kind, key in (("member", "members"), ("card", "cards"), ("gift_card", "gift_cards")):
        table, column, fields = _DIRECTORY[kind]
        refs = list(dict.fromkeys(r[2] for r in rows if r[1] == kind))
        if kind == "card" and refs:
            refs = _with_replacements(raw, refs)
        found = {r[0]: r for r in raw.all(f"SELECT {', '.join(fields)} FROM {table} WHERE {column} IN "
                                          "(SELECT value FROM json_each(?))", (json.dumps(refs),))} if refs else {}
        out[key] = [dict(zip(fields, found[ref])) for ref in refs if ref in found]
    out["sales"] = _sales(raw, list(dict.fromkeys(r[2] for r in rows if r[1] == "sale")))
    return out


def _sales(raw: Raw, ids: list[str]) -> list[dict[str, Any]]:
    """Sales and refunds with their lines, for the hub's back office."""
    if not ids:
        return []
    wanted = json.dumps(ids)
    lines: dict[str, list[dict[str, Any]]] = {}
    for r in raw.all(f"SELECT sale_id, {', '.join(LINE_FIELDS)} FROM sale_lines WHERE sale_id IN "
                     "(SELECT value FROM json_each(?)) ORDER BY sale_id, line_no", (wanted,)):
        lines.setdefault(r[0], []).append(dict(zip(LINE_FIELDS, r[1:])))
    found = {r[0]: dict(zip(SALE_FIELDS, r)) for r in raw.all(
        f"SELECT {', '.join(SALE_FIELDS)} FROM sales WHERE id IN (SELECT value FROM json_each(?))", (wanted,))}
    return [{**found[i], "lines": lines.get(i, [])} for i in ids if i in found]


REPLACEMENT_HOPS_MAX = 32  # cards of one replacement chain gathered into a batch (a card replaced 32 times offline)


def _with_replacements(raw: Raw, numbers: list[str]) -> list[str]:
    """The cards named, and every card of their replacement chains, both ways: the
    card each was replaced by, the card that one was replaced by, and so on, and the
    cards they replaced. A replacement travels whole, whichever batch its rows fell in:
    the hub takes a card marked replaced only beside its replacement (and another
    store's member's new card only beside the old one), so a card replaced twice
    before a sync must bring both replacements along (seed 5195)."""
    out = list(dict.fromkeys(numbers))
    seen = set(out)
    frontier = out
    for _ in range(REPLACEMENT_HOPS_MAX):
        wanted = json.dumps(frontier)
        pairs = raw.all("SELECT number, replaced_by FROM cards WHERE (number IN (SELECT value FROM json_each(?)) "
                        "OR replaced_by IN (SELECT value FROM json_each(?))) AND replaced_by IS NOT NULL",
                        (wanted, wanted))
        frontier = [n for pair in pairs for n in pair if n not in seen]
        frontier = list(dict.fromkeys(frontier))
        if not frontier:
            break
        seen.update(frontier)
        out += frontier
    return out


def acknowledged(raw: Raw, entry_ids: list[str], batch_end: int) -> None:
    """The hub took these entries and every directory row up to `batch_end`."""
    if entry_ids:  # one statement for the whole batch (SQLite's json_each), not one per id
        raw.run("DELETE FROM outbox WHERE entry_id IN (SELECT value FROM json_each(?))", (json.dumps(entry_ids),))
    raw.run("DELETE FROM outbox WHERE kind <> 'entry' AND id <= ?", (batch_end,))


# -- down -----------------------------------------------------------------------------

def take_members(raw: Raw, members: list[dict[str, Any]]) -> None:
    """Members enrolled at other branches (unknown ones only: members are not edited)."""
    for m in members:
        if raw.one_or_none("SELECT 1 FROM members WHERE id = ?", (m["id"],)) is not None:
            continue
        if raw.one_or_none("SELECT 1 FROM members WHERE mobile = ?", (m["mobile"],)) is not None:
            # taken whole, entries and card included; `loyalty-hub reconcile` lists the pair
            log.warning("member %s from the hub shares a mobile number with another member; "
                        "they are listed by the hub for a merge", m["id"])
        referrer = m["referrer_id"]
        if referrer and raw.one_or_none("SELECT 1 FROM members WHERE id = ?", (referrer,)) is None:
            referrer = None
        raw.run(f"INSERT INTO members ({', '.join(MEMBER_FIELDS)}) VALUES ({', '.join('?' for _ in MEMBER_FIELDS)})",
                tuple(referrer if k == "referrer_id" else m[k] for k in MEMBER_FIELDS))
        raw.run("INSERT INTO balances (member_id, points) VALUES (?, 0)", (m["id"],))


def _card_number(policy: CardPolicy, value: Any) -> str | None:
    """The number if this terminal's policy takes it as a member card; None (and a
    warning that shows it masked) if not: a card this till would refuse anyway."""
    try:
        return policy.accept(value)
    except ValidationFailed as exc:
        log.warning("a card from the hub was not taken: %s", exc)
        return None


def take_cards(raw: Raw, cards: list[dict[str, Any]], policy: CardPolicy) -> None:
    """Cards issued, blocked or replaced at other branches."""
    for c in cards:  # new cards first, so a replacement can point at them
        if _card_number(policy, c["number"]) is None:
            continue
        if raw.one_or_none("SELECT 1 FROM cards WHERE number = ?", (c["number"],)) is None and \
                raw.one_or_none("SELECT 1 FROM members WHERE id = ?", (c["member_id"],)) is not None:
            raw.run(f"INSERT INTO cards ({', '.join(CARD_FIELDS)}) VALUES ({', '.join('?' for _ in CARD_FIELDS)})",
                    tuple(None if k == "replaced_by" else c[k] for k in CARD_FIELDS))
    for c in cards:
        local = raw.one_or_none("SELECT status, replaced_by, status_changed_at FROM cards WHERE number = ?",
                                (c["number"],))
        if local is None or not card_change_wins(local[0], local[1], local[2], c["status"], c["replaced_by"],
                                                 c["status_changed_at"]):
            continue
        target = c["replaced_by"]
        if target and raw.one_or_none("SELECT 1 FROM cards WHERE number = ?", (target,)) is None:
            target = None
        raw.run("UPDATE cards SET status = ?, replaced_by = ?, status_changed_at = ?, status_reason = ? "
                "WHERE number = ?", (c["status"], target, c["status_changed_at"], c["status_reason"], c["number"]))


def take_gift_cards(raw: Raw, gift_cards: list[dict[str, Any]], policy: CardPolicy) -> None:
    for g in gift_cards:
        if raw.one_or_none("SELECT 1 FROM gift_cards WHERE number = ?", (g["number"],)) is None:
            policy.not_payment(g["number"], "gift card number")
            raw.run("INSERT INTO gift_cards (number, status, balance, issued_at, issued_by) VALUES (?, ?, 0, ?, ?)",
                    (g["number"], g["status"], g["issued_at"], g["issued_by"]))


def take_entries(raw: Raw, entries: list[dict[str, Any]], own_terminal: str, policy: CardPolicy) -> int:
    """Other terminals' entries, each once, with their effect on balances (within the
    bounds of ledger.limits); returns how many were new. An entry naming a payment
    card's number is refused whole (ValidationFailed): it must not be stored here."""
    member_delta: dict[str, int] = {}
    member_credit: dict[str, int] = {}
    gift_delta: dict[str, int] = {}
    gift_loaded: dict[str, int] = {}
    fresh = []
    for e in entries:
        if e["terminal_code"] == own_terminal:
            continue
        if raw.one_or_none("SELECT 1 FROM entries WHERE id = ?", (e["id"],)) is not None:
            continue
        for key in ("card_number", "gift_card_number"):
            if e[key]:
                try:
                    policy.not_payment(normalise_card_number(e[key]))
                except ValidationFailed as exc:
                    raise IntegrityFailure(f"entry {e['id']} of terminal {e['terminal_code']} from the hub: {exc}; "
                                           "it was not taken (head office: loyalty-hub verify)") from None
        fresh.append(tuple(e[k] for k in ENTRY_FIELDS))
        if e["member_id"] and e["points"]:
            member_delta[e["member_id"]] = member_delta.get(e["member_id"], 0) + e["points"]
            if e["points"] > 0:
                member_credit[e["member_id"]] = member_credit.get(e["member_id"], 0) + e["points"]
        if e["gift_card_number"] and e["amount"] and e["kind"] in ("gift_load", "gift_spend"):
            gift_delta[e["gift_card_number"]] = gift_delta.get(e["gift_card_number"], 0) + e["amount"]
            if e["amount"] > 0:
                gift_loaded[e["gift_card_number"]] = gift_loaded.get(e["gift_card_number"], 0) + e["amount"]
    raw.many(f"INSERT INTO entries ({', '.join(ENTRY_FIELDS)}) VALUES ({', '.join('?' for _ in ENTRY_FIELDS)})",
             fresh)
    move_balances(raw, member_delta, member_credit, gift_delta, gift_loaded)
    return len(fresh)


# -- a terminal restored from an older backup ------------------------------------------

def acked_seq(raw: Raw, terminal: str) -> int:
    """The last seq of this terminal's chain the hub is known to hold: everything before
    the first entry still in the outbox (or the whole chain if nothing is waiting)."""
    first_unsent = raw.scalar("SELECT min(e.seq) FROM outbox o JOIN entries e ON e.id = o.entry_id "
                              "WHERE e.terminal_code = ?", (terminal,))
    if first_unsent is not None:
        return int(first_unsent) - 1
    return int(raw.scalar("SELECT next_seq FROM terminals WHERE code = ?", (terminal,))) - 1


_TERMINAL_ENTRIES_SQL = (f"SELECT {', '.join(ENTRY_FIELDS)} FROM entries WHERE terminal_code = ? AND seq > ? "
                         "ORDER BY seq")


def take_own_entries(raw: Raw, terminal: str, after_seq: int, theirs: list[dict[str, Any]]) -> tuple[int, int]:
    """After a restore from an older backup the hub holds entries of this terminal that
    this ledger lost, and the till may have written new ones under the same seqs since.
    Take the hub's (checked: this terminal's, in order, each chained to the one before
    and hashing to its hash), then renumber the till's own entries that never reached
    the hub after them (same ids and contents, new seq and hashes, queued again). Their
    effect on balances was counted when they were written; the hub's new ones are added.
    Returns (entries taken, entries renumbered)."""
    from ledger.chain import GENESIS_HASH, entry_hash

    prev_row = raw.one_or_none("SELECT hash FROM entries WHERE terminal_code = ? AND seq = ?", (terminal, after_seq))
    if prev_row is None:  # archived up to there (ledger.archive), or nothing before it
        cp = raw.one_or_none("SELECT seq, hash FROM checkpoints WHERE terminal_code = ?", (terminal,))
        prev_row = (cp[1],) if cp is not None and int(cp[0]) == after_seq else None
    prev = prev_row[0] if prev_row else GENESIS_HASH
    expected = after_seq + 1
    for e in theirs:
        if e["terminal_code"] != terminal or e["seq"] != expected or e["prev_hash"] != prev or \
                entry_hash(e) != e["hash"]:
            raise IntegrityFailure(f"the hub's copy of this terminal's entry seq {e['seq']} does not continue its "
                                   f"chain after seq {expected - 1}; nothing was taken")
        prev, expected = e["hash"], expected + 1
    ours = [dict(zip(ENTRY_FIELDS, r)) for r in raw.all(_TERMINAL_ENTRIES_SQL, (terminal, after_seq))]
    known = {e["id"] for e in ours}
    hub_ids = {e["id"] for e in theirs}
    unsent = [e for e in ours if e["id"] not in hub_ids]
    raw.run("DELETE FROM outbox WHERE entry_id IN (SELECT id FROM entries WHERE terminal_code = ? AND seq > ?)",
            (terminal, after_seq))
    raw.run("DELETE FROM entries WHERE terminal_code = ? AND seq > ?", (terminal, after_seq))
    member_delta: dict[str, int] = {}
    member_credit: dict[str, int] = {}
    gift_delta: dict[str, int] = {}
    gift_loaded: dict[str, int] = {}
    for e in theirs:
        if e["id"] in known:
            continue  # written here before the backup was taken, already counted
        if e["member_id"] and e["points"]:
            member_delta[e["member_id"]] = member_delta.get(e["member_id"], 0) + e["points"]
            if e["points"] > 0:
                member_credit[e["member_id"]] = member_credit.get(e["member_id"], 0) + e["points"]
        if e["gift_card_number"] and e["amount"] and e["kind"] in ("gift_load", "gift_spend"):
            gift_delta[e["gift_card_number"]] = gift_delta.get(e["gift_card_number"], 0) + e["amount"]
            if e["amount"] > 0:
                gift_loaded[e["gift_card_number"]] = gift_loaded.get(e["gift_card_number"], 0) + e["amount"]
    insert = f"INSERT INTO entries ({', '.join(ENTRY_FIELDS)}) VALUES ({', '.join('?' for _ in ENTRY_FIELDS)})"
    raw.many(insert, [tuple(e[k] for k in ENTRY_FIELDS) for e in theirs])
    for e in unsent:
        e["seq"], e["prev_hash"] = expected, prev
        e["hash"] = prev = entry_hash(e)
        expected += 1
        raw.run(insert, tuple(e[k] for k in ENTRY_FIELDS))
        raw.run("INSERT INTO outbox (entry_id, created_at) VALUES (?, ?)", (e["id"], e["created_at"]))
    raw.run("UPDATE terminals SET next_seq = ?, last_hash = ? WHERE code = ?", (expected, prev, terminal))
    move_balances(raw, member_delta, member_credit, gift_delta, gift_loaded)
    return len(theirs) - len(known & hub_ids), len(unsent)


# -- chain scale (protocol 2): sums instead of other terminals' entries -----------------

def protocol(raw: Raw) -> int:
    return int(raw.scalar("SELECT protocol FROM sync_state WHERE id = 1"))


_FOREIGN = "terminal_code NOT IN (SELECT code FROM terminals)"


def compact(raw: Raw) -> int:
    """Leave the old protocol: other terminals' entries become their sums (points and
    Rial elsewhere, bonus uses elsewhere) and are removed; members this store never
    saw are marked stale until the hub confirms them. Balances do not move. Returns the
    entries removed. Runs once, in the transaction that takes the hub's first answer
    of the new protocol (whose sums then replace these)."""
    raw.run(f"UPDATE balances SET elsewhere = elsewhere + coalesce((SELECT sum(points) FROM entries "
            f"WHERE entries.member_id = balances.member_id AND {_FOREIGN}), 0)")
    raw.run(f"UPDATE gift_cards SET elsewhere = elsewhere + coalesce((SELECT sum(amount) FROM entries "
            f"WHERE entries.gift_card_number = gift_cards.number AND kind IN ('gift_load', 'gift_spend') "
            f"AND {_FOREIGN}), 0)")
    raw.run(f"INSERT INTO member_rule_uses (member_id, rule_id, elsewhere, archived, last_used_at) "
            f"SELECT member_id, rule_id, count(*), 0, max(created_at) FROM entries WHERE kind = 'bonus' "
            f"AND rule_id IS NOT NULL AND member_id IN (SELECT id FROM members) AND {_FOREIGN} "
            f"GROUP BY member_id, rule_id ON CONFLICT (member_id, rule_id) DO UPDATE SET "
            f"elsewhere = elsewhere + excluded.elsewhere, last_used_at = max(coalesce(last_used_at, ''), "
            f"excluded.last_used_at)")
    removed = int(raw.scalar(f"SELECT count(*) FROM entries WHERE {_FOREIGN}"))
    raw.run(f"DELETE FROM entries WHERE {_FOREIGN}")
    raw.run("UPDATE members SET stale = 1 WHERE store_code NOT IN (SELECT store_code FROM terminals) "
            "AND id NOT IN (SELECT member_id FROM sales) AND id NOT IN (SELECT member_id FROM member_stats)")
    raw.run("UPDATE sync_state SET protocol = 2 WHERE id = 1")
    return removed


def take_member_states(raw: Raw, states: list[dict[str, Any]], ranks: dict[str, int]) -> None:
    """What the hub says of members held here: points elsewhere (absolute: the balance
    moves by the difference), the tier if it ranks higher than the one held, bonus
    uses elsewhere; and the member is confirmed (not stale). Members not held are
    skipped: they come with their state when they come."""
    member_delta: dict[str, int] = {}
    for s in states:
        mid = s["member_id"]
        row = raw.one_or_none("SELECT b.elsewhere, m.tier FROM balances b JOIN members m ON m.id = b.member_id "
                              "WHERE b.member_id = ?", (mid,))
        if row is None:
            continue
        elsewhere, tier = int(row[0]), row[1]
        if int(s["elsewhere"]) != elsewhere:
            member_delta[mid] = int(s["elsewhere"]) - elsewhere
            raw.run("UPDATE balances SET elsewhere = ? WHERE member_id = ?", (int(s["elsewhere"]), mid))
        if s.get("tier") and ranks.get(s["tier"], -1) > ranks.get(tier, -1):
            raw.run("UPDATE members SET tier = ? WHERE id = ?", (s["tier"], mid))
        raw.run("UPDATE member_rule_uses SET elsewhere = 0 WHERE member_id = ?", (mid,))
        for rule, uses, last in s.get("uses") or []:
            raw.run("INSERT INTO member_rule_uses (member_id, rule_id, elsewhere, archived, last_used_at) "
                    "VALUES (?, ?, ?, 0, ?) ON CONFLICT (member_id, rule_id) DO UPDATE SET "
                    "elsewhere = excluded.elsewhere, last_used_at = max(coalesce(last_used_at, ''), "
                    "excluded.last_used_at)", (mid, str(rule)[:64], int(uses), last))
        raw.run("UPDATE members SET stale = 0 WHERE id = ? AND stale", (mid,))
    move_balances(raw, member_delta, {}, {}, {})


def take_gift_states(raw: Raw, states: list[dict[str, Any]]) -> None:
    gift_delta: dict[str, int] = {}
    for s in states:
        row = raw.one_or_none("SELECT elsewhere FROM gift_cards WHERE number = ?", (s["number"],))
        if row is None or int(s["elsewhere"]) == int(row[0]):
            continue
        gift_delta[s["number"]] = int(s["elsewhere"]) - int(row[0])
        raw.run("UPDATE gift_cards SET elsewhere = ? WHERE number = ?", (int(s["elsewhere"]), s["number"]))
    move_balances(raw, {}, {}, gift_delta, {})


def take_blocklist(raw: Raw, rows: list[dict[str, Any]], policy: CardPolicy) -> None:
    """Cards lost, blocked or replaced anywhere: a card held here takes the status
    (the more final wins); one whose member is not held goes on the blocklist."""
    for b in rows:
        try:
            number = normalise_card_number(b["number"])
        except ValidationFailed:
            continue
        if policy.refusal(number) is not None and policy.refusal(number).code == "bank_card":  # type: ignore[union-attr]
            continue  # never stored, not even to refuse it
        local = raw.one_or_none("SELECT status, replaced_by, status_changed_at FROM cards WHERE number = ?",
                                (number,))
        if local is not None:
            if card_change_wins(local[0], local[1], local[2], b["status"], b["replaced_by"], b["changed_at"]):
                target = b["replaced_by"]
                if target and raw.one_or_none("SELECT 1 FROM cards WHERE number = ?", (target,)) is None:
                    target = None
                raw.run("UPDATE cards SET status = ?, replaced_by = ?, status_changed_at = ?, status_reason = ? "
                        "WHERE number = ?", (b["status"], target, b["changed_at"], b["reason"], number))
            continue
        raw.run("INSERT INTO blocklist (number, status, replaced_by, changed_at, reason) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (number) DO UPDATE SET status = excluded.status, replaced_by = excluded.replaced_by, "
                "changed_at = excluded.changed_at, reason = excluded.reason",
                (number, b["status"], b["replaced_by"], b["changed_at"], b["reason"]))


# -- pre-printed card stock (ledger.stock) --------------------------------------------

def take_card_stock(raw: Raw, rows: list[dict[str, Any]], policy: CardPolicy) -> None:
    """This store's stock as the hub sends it, changes only: a card assigned to the
    store goes into stock (unless already issued here); one the hub says was issued (at
    any till of the store) is marked issued, so no other till hands it out. A number
    this till's policy refuses is not kept (a warning shows it masked)."""
    for r in rows:
        number = _card_number(policy, r.get("number"))
        if number is None:
            continue
        if r.get("status") == "assigned":
            raw.run("INSERT INTO card_stock (number, batch, status) VALUES (?, ?, 'in_stock') "
                    "ON CONFLICT (number) DO NOTHING", (number, str(r.get("batch") or "")[:64]))
        elif r.get("status") == "issued":
            at = r.get("issued_at")
            raw.run("UPDATE card_stock SET status = 'issued', issued_at = coalesce(issued_at, ?) "
                    "WHERE number = ? AND status = 'in_stock'", (at[:27] if isinstance(at, str) else None, number))


def take_card_stock_required(raw: Raw, required: Any) -> None:
    """The chain's choice (hub config [cards] stock_required); an answer without it (an
    older hub) changes nothing."""
    if required is not None:
        raw.run("UPDATE sync_state SET card_stock_required = ? WHERE id = 1", (1 if required is True else 0,))
