"""Pre-printed card stock at head office: batches of printed cards are imported (every
number checked by the card policy, all or nothing), assigned to stores, and issued at
a store's tills (recorded when the card reaches the hub). A store's terminals receive
their stock downstream (scope.py) and issue from it offline (ledger.stock).

The reports (`stock_counts`, `card_history`) return plain rows, for the command line
and the back office's workbook alike. Every change is audited.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, insert, select, update

from ledger.cardpolicy import CardPolicy, mask, normalise_card_number
from ledger.errors import ValidationFailed
from ledger.progress import ProgressFactory, no_progress, progress_of
from ledger.timefmt import format_utc
from sync.errors import HubRefused
from sync.hub.schema import HUB_TERMINAL, audit, card_batches, card_stock, card_stock_outside, cards, counters, stores
from sync.hub.stockfile import STOCK_BATCH_MAX, Numbered

if TYPE_CHECKING:
    from sync.hub.service import Hub

BATCH_NAME_MAX = 64
REFUSALS_SHOWN_MAX = 20  # refused numbers listed in one refusal (it says how many more)
LOOKUP_CHUNK = 1_000  # numbers per IN (...) when checking a batch against the stock and the cards
WRITE_CHUNK = 5_000  # rows per executemany
HISTORY_ROWS_MAX = 1_000  # audit rows of one card read for its history
OUTSIDE_SHOWN_MAX = 1_000  # cards issued outside stock that a report lists
STATUSES = ("in_stock", "assigned", "issued")


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _batch_name(name: str) -> str:
    name = (name or "").strip()
    if not 1 <= len(name) <= BATCH_NAME_MAX or not name.isprintable():
        raise HubRefused(f"--batch names the batch: 1 to {BATCH_NAME_MAX} printable characters")
    return name


def check_numbers(policy: CardPolicy, numbered: Numbered) -> tuple[list[str], list[str]]:
    """(the normalised numbers, what is wrong) of a batch, each problem naming where the
    number was and showing it masked: not a card number, a payment card, outside the
    programme's ranges, or twice in the batch. Pure."""
    numbers: list[str] = []
    problems: list[str] = []
    first_seen: dict[str, str] = {}
    for where, raw in numbered:
        try:
            number = normalise_card_number(raw)
        except ValidationFailed as exc:
            problems.append(f"{where}: {exc}")
            continue
        refused = policy.refusal(number)
        if refused is not None:
            problems.append(f"{where}: {refused.message}")
            continue
        if number in first_seen:
            problems.append(f"{where}: card {mask(number)} is in the batch twice (also {first_seen[number]})")
            continue
        first_seen[number] = where
        numbers.append(number)
    return numbers, problems


def _refusal(name: str, total: int, problems: list[str]) -> HubRefused:
    shown = problems[:REFUSALS_SHOWN_MAX]
    more = len(problems) - len(shown)
    return HubRefused(f"batch {name}: {len(problems)} of {total:,} number(s) refused, nothing was imported:\n  "
                      + "\n  ".join(shown) + (f"\n  ... and {more} more" if more else ""), 422, "stock_refused")


def import_batch(hub: "Hub", name: str, numbered: Numbered, by: str, source: str,
                 progress: ProgressFactory = no_progress) -> dict[str, Any]:
    """A new batch of printed cards at head office, all or nothing: refused whole
    (HubRefused listing the refused numbers, masked) if any number is not a member
    card of the programme, is in the batch twice, is already in stock or already
    issued. The batch's row."""
    from sync.hub.service import _person, record

    name, by = _batch_name(name), _person(by)
    if not numbered:
        raise HubRefused(f"batch {name}: no numbers to import")
    if len(numbered) > STOCK_BATCH_MAX:
        raise HubRefused(f"batch {name}: {len(numbered):,} numbers; a batch holds at most {STOCK_BATCH_MAX:,}")
    now = hub.clock()
    at = format_utc(now)
    with hub.engine.begin() as conn:
        if conn.execute(select(card_batches.c.name).where(card_batches.c.name == name)).first() is not None:
            raise HubRefused(f"there is already a batch {name}; give this one another name", 409, "batch_exists")
        numbers, problems = check_numbers(hub._card_policy(conn), numbered)
        where = {normalise_card_number(raw): w for w, raw in numbered if _normalises(raw)}
        with progress_of(progress(f"batch {name}: checking against the stock and the cards"),
                         len(numbers)) as bar:
            for chunk in _chunks(sorted(numbers), LOOKUP_CHUNK):
                for number, batch in conn.execute(select(card_stock.c.number, card_stock.c.batch)
                                                  .where(card_stock.c.number.in_(chunk))):
                    problems.append(f"{where[number]}: card {mask(number)} is already in stock (batch {batch})")
                for number in conn.execute(select(cards.c.number).where(cards.c.number.in_(chunk))).scalars():
                    problems.append(f"{where[number]}: card {mask(number)} is already issued to a member")
                bar.advance(len(chunk))
        if problems:
            raise _refusal(name, len(numbered), problems)
        conn.execute(insert(card_batches).values(name=name, cards=len(numbers), source=source[:200],
                                                 imported_at=at, imported_by=by))
        with progress_of(progress(f"batch {name}: writing"), len(numbers)) as bar:
            for chunk in _chunks(numbers, WRITE_CHUNK):
                conn.execute(insert(card_stock), [{"number": n, "batch": name, "status": "in_stock", "store": None,
                                                   "assigned_at": None, "assigned_by": None, "issued_at": None,
                                                   "issued_terminal": None, "rev": None} for n in chunk])
                bar.advance(len(chunk))
        record(conn, now, by, "stock.import", name, cards=len(numbers), source=source[:200],
               first=mask(min(numbers)), last=mask(max(numbers)))
        return dict(conn.execute(select(card_batches).where(card_batches.c.name == name)).one()._mapping)


def _normalises(raw: str) -> bool:
    try:
        normalise_card_number(raw)
        return True
    except ValidationFailed:
        return False


def _take_revs(conn: Connection, count: int) -> int:
    """Advance the directory's rev by `count`; the first of the revs taken."""
    row = conn.execute(update(counters).where(counters.c.name == "rev")
                       .values(value=counters.c.value + count).returning(counters.c.value)).first()
    if row is None:
        conn.execute(insert(counters).values(name="rev", value=count))
        return 1
    return int(row[0]) - count + 1


def assign(hub: "Hub", batch: str, store: str, count: int | None, by: str,
           progress: ProgressFactory = no_progress) -> dict[str, Any]:
    """Send `count` cards of a batch (None: every one left) from head office to a
    store, lowest numbers first; its terminals receive them at their next sync. All
    or nothing: refused if the batch has fewer at head office. What was assigned."""
    from sync.hub.service import _person, record

    batch, by = _batch_name(batch), _person(by)
    store = (store or "").strip()
    if count is not None and (type(count) is not int or not 1 <= count <= STOCK_BATCH_MAX):
        raise HubRefused(f"--count is 1 to {STOCK_BATCH_MAX:,}")
    now = hub.clock()
    at = format_utc(now)
    with hub.engine.begin() as conn:
        if conn.execute(select(stores.c.code).where(stores.c.code == store)).first() is None:
            raise HubRefused(f"no store {store!r} at the hub (a store comes with its first terminal: loyalty-hub "
                             "terminals add --store CODE)", 404, "unknown_store")
        if conn.execute(select(card_batches.c.name).where(card_batches.c.name == batch)).first() is None:
            raise HubRefused(f"no batch {batch!r} (loyalty-hub cards stock counts lists them)", 404, "unknown_batch")
        # the lock order of ordering.py: the counters row before directory rows
        conn.execute(update(counters).where(counters.c.name == "rev").values(value=counters.c.value))
        query = (select(card_stock.c.number).where(card_stock.c.batch == batch, card_stock.c.status == "in_stock")
                 .order_by(card_stock.c.number).with_for_update())
        numbers = list(conn.execute(query if count is None else query.limit(count)).scalars())
        if not numbers:
            raise HubRefused(f"batch {batch} has no cards left at head office", 409, "stock_empty")
        if count is not None and len(numbers) < count:
            raise HubRefused(f"batch {batch} has {len(numbers)} card(s) left at head office, not {count}; nothing "
                             "was assigned", 409, "stock_short")
        first_rev = _take_revs(conn, len(numbers))
        with progress_of(progress(f"batch {batch}: assigning to store {store}"), len(numbers)) as bar:
            for chunk_start in range(0, len(numbers), WRITE_CHUNK):
                chunk = numbers[chunk_start:chunk_start + WRITE_CHUNK]
                conn.execute(update(card_stock).where(card_stock.c.number == bindparam("n")).values(
                    status="assigned", store=store, assigned_at=at, assigned_by=by, rev=bindparam("r")),
                    [{"n": n, "r": first_rev + chunk_start + i} for i, n in enumerate(chunk)])
                bar.advance(len(chunk))
        record(conn, now, by, "stock.assign", batch, store=store, cards=len(numbers), first=mask(numbers[0]),
               last=mask(numbers[-1]))
    return {"batch": batch, "store": store, "cards": len(numbers), "first": numbers[0], "last": numbers[-1]}


def record_issue(conn: Connection, number: str, member_id: str | None, terminal: str, store: str, at: str,
                 required: bool, next_rev: Callable[[Connection], int]) -> str | None:
    """A card new to the hub, from a terminal: marked issued in the stock (its store's
    terminals then stop offering it) and, if it was not in the terminal's store's stock,
    recorded as issued outside it (never refused: the card is in a member's hand) when
    the chain requires stock or the card was another store's or head office's.
    In the sync's transaction; None if it came from the store's stock, else why not."""
    row = conn.execute(select(card_stock.c.status, card_stock.c.store).where(card_stock.c.number == number)
                       .with_for_update()).first()
    why = None
    if row is None:
        why = "not_in_stock"
    elif row.status == "in_stock":
        why = "head_office"
    elif row.store != store:
        why = "other_store"
    if row is not None and row.status != "issued":
        # a card still at head office is counted where it was issued; one of another
        # store's stock stays that store's, whose tills must learn it is gone
        conn.execute(update(card_stock).where(card_stock.c.number == number).values(
            status="issued", store=row.store if row.store is not None else store, issued_at=at,
            issued_terminal=terminal, rev=next_rev(conn)))
    # a number never in stock, while stock is not required, is how a chain without stock
    # issues every card: nothing to report
    if why is not None and (required or row is not None):
        conn.execute(insert(card_stock_outside).values(number=number, terminal_code=terminal, store=store,
                                                       member_id=member_id, why=why, required=required,
                                                       received_at=at))
    return why


# -- reports ---------------------------------------------------------------------------

HEAD_OFFICE = "head office"
COUNT_COLUMNS = ("in_stock", "issued", "lost", "blocked", "replaced", "outside_stock")


def stock_counts(conn: Connection, store: str | None = None) -> list[dict[str, Any]]:
    """One row per place: head office first (cards not assigned yet), then each store
    (in_stock: assigned and not issued; issued cards by their status now: issued
    (active), lost, blocked, replaced; outside_stock: cards its tills issued that were
    not in its stock). With `store`, that store's row only."""
    places: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNT_COLUMNS, 0))
    query = (select(card_stock.c.store, card_stock.c.status, cards.c.status.label("card_status"), func.count())
             .select_from(card_stock.outerjoin(cards, cards.c.number == card_stock.c.number))
             .group_by(card_stock.c.store, card_stock.c.status, cards.c.status))
    if store is not None:
        query = query.where(card_stock.c.store == store)
    for place, status, card_status, n in conn.execute(query):
        row = places[HEAD_OFFICE if status == "in_stock" else place]
        if status in ("in_stock", "assigned"):
            row["in_stock"] += int(n)
        else:
            row["issued" if card_status in (None, "active") else card_status] += int(n)
    outside = select(card_stock_outside.c.store, func.count()).group_by(card_stock_outside.c.store)
    if store is not None:
        outside = outside.where(card_stock_outside.c.store == store)
    for place, n in conn.execute(outside):
        places[place]["outside_stock"] += int(n)
    if store is None:
        places[HEAD_OFFICE]  # shown even when empty
    else:
        places[store]
    order = sorted(places, key=lambda p: (p != HEAD_OFFICE, p or ""))
    return [{"where": p, **places[p]} for p in order]


def batches(conn: Connection) -> list[dict[str, Any]]:
    """Every batch, oldest first, with how many of its cards are at head office,
    assigned (not issued) and issued."""
    left = dict(conn.execute(select(card_stock.c.batch, func.count()).where(card_stock.c.status == "in_stock")
                             .group_by(card_stock.c.batch)).all())
    assigned = dict(conn.execute(select(card_stock.c.batch, func.count()).where(card_stock.c.status == "assigned")
                                 .group_by(card_stock.c.batch)).all())
    return [{**dict(r._mapping), "at_head_office": int(left.get(r.name, 0)),
             "assigned": int(assigned.get(r.name, 0)),
             "issued": int(r.cards) - int(left.get(r.name, 0)) - int(assigned.get(r.name, 0))}
            for r in conn.execute(select(card_batches).order_by(card_batches.c.imported_at, card_batches.c.name))]


def outside_stock(conn: Connection, required_only: bool = False,
                  limit: int = OUTSIDE_SHOWN_MAX) -> tuple[list[dict[str, Any]], int]:
    """Cards issued outside their store's stock (the first `limit`, oldest first), and
    how many there are; `required_only`: only those issued while the chain required
    stock."""
    where = [card_stock_outside.c.required.is_(True)] if required_only else []
    total = int(conn.execute(select(func.count()).select_from(card_stock_outside).where(*where)).scalar_one())
    rows = conn.execute(select(card_stock_outside).where(*where).order_by(card_stock_outside.c.id).limit(limit))
    return [dict(r._mapping) for r in rows], total


_WHY = {"not_in_stock": "a number that was never in stock", "head_office": "a card still at head office",
        "other_store": "a card of another store's stock"}


def card_history(conn: Connection, number: str) -> list[dict[str, Any]]:
    """A card's whole story, oldest first: imported in a batch, assigned to a store,
    issued to a member at a terminal (by whom), recorded against the stock, status
    changes (lost, blocked, replaced) and replacements, issues outside stock. Each row:
    at, event, by, where, detail. Empty if the hub never heard of the number."""
    import json

    out: list[dict[str, Any]] = []

    def add(at: str | None, event: str, by: str | None, where: str | None, detail: str = "") -> None:
        out.append({"at": at or "", "event": event, "by": by or "", "where": where or "", "detail": detail})

    stocked = conn.execute(select(card_stock, card_batches.c.imported_at, card_batches.c.imported_by)
                           .select_from(card_stock.join(card_batches, card_batches.c.name == card_stock.c.batch))
                           .where(card_stock.c.number == number)).first()
    if stocked is not None:
        add(stocked.imported_at, "imported", stocked.imported_by, HEAD_OFFICE, f"batch {stocked.batch}")
        if stocked.assigned_at is not None:
            add(stocked.assigned_at, "assigned", stocked.assigned_by, stocked.store, f"to store {stocked.store}")
    card = conn.execute(select(cards).where(cards.c.number == number)).first()
    issue_audit = conn.execute(select(audit).where(audit.c.target == number, audit.c.action == "card.issue")
                               .order_by(audit.c.id).limit(1)).first()
    terminal = issue_audit.actor if issue_audit is not None else None
    if card is not None:
        replaced = conn.execute(select(cards.c.number).where(cards.c.replaced_by == number)).scalars().first()
        detail = f"to member {card.member_id}" + (f", replacing card {mask(replaced)}" if replaced else "")
        add(card.issued_at, "issued", card.issued_by, f"terminal {terminal}" if terminal else None, detail)
    if stocked is not None and stocked.issued_at is not None:
        if stocked.issued_terminal == HUB_TERMINAL:  # loyalty-hub members import brought it with its member
            add(stocked.issued_at, "recorded against the stock", "hub", HEAD_OFFICE, "imported with its member")
        else:
            add(stocked.issued_at, "recorded against the stock", "hub", f"terminal {stocked.issued_terminal}",
                "received from the terminal")
    for r in conn.execute(select(card_stock_outside).where(card_stock_outside.c.number == number)
                          .order_by(card_stock_outside.c.id)):
        add(r.received_at, "issued outside stock", "hub", f"terminal {r.terminal_code}",
            f"{_WHY.get(r.why, r.why)}, issued at store {r.store}" + ("; the chain required stock" if r.required
                                                                      else ""))
    for r in conn.execute(select(audit).where(audit.c.target == number, audit.c.action == "card.status")
                          .order_by(audit.c.id).limit(HISTORY_ROWS_MAX)):
        d = json.loads(r.detail)
        status = d.get("status") or [None, None]
        text = f"{status[0]} -> {status[1]}"
        if d.get("replaced_by"):
            text += f", replaced by card {mask(d['replaced_by'])}"
        if d.get("reason"):
            text += f": {d['reason']}"
        add(r.at, str(status[1]), r.actor, f"terminal {r.actor}", text)
    if card is not None and not any(r["event"] == card.status for r in out) and card.status != "active":
        # a status the audit does not show, as the card row says it
        # (a card that reached the hub already replaced or lost: it came with that status)
        text = (f"replaced by card {mask(card.replaced_by)}" if card.replaced_by else "") + \
            (f": {card.status_reason}" if card.status_reason else "")
        add(card.status_changed_at, card.status, None, f"terminal {terminal}" if terminal else None, text)
    out.sort(key=lambda r: r["at"])
    return out
