"""What the hub does, apart from HTTP: enrolment, signed-request checks, ingesting
batches exactly once, the downstream answer, reconciliation and published rules.

Each sync request is one transaction: a batch is taken whole or not at all, so a
terminal that resends after a lost answer gets the same acknowledgement and nothing
is counted twice.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import Counter
from functools import partial
from itertools import chain
from operator import is_not, itemgetter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from sqlalchemy import ARRAY, Connection, Engine, String, and_, any_, bindparam, func, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError

from ledger.cardpolicy import CardPolicy, CardRange, mask
from ledger.chain import HASHED_FIELDS, entry_hash
from ledger.errors import ValidationFailed
from ledger.mobile import looks_like_mobile, normalise_mobile
from ledger.timefmt import IRAN_OFFSET, format_utc, parse_utc
from sync import signing
from sync.errors import HubRefused
from sync.hub.db import dialect_insert, insert_new_rows
from sync.hub.cardranges import range_text
from sync.hub.entitlement import (
    ADJUST_POINTS_PER_DAY_DEFAULT,
    ENTRY_POINTS_MAX,
    MEMBER_EDITABLE,
    PAYMENT_ONLY,
    SALES_PER_REQUEST_MAX,
    card_change,
    check_balance,
    check_card_number,
    check_entry,
    check_entry_references,
    check_gift_card_number,
    check_sale,
    member_change,
    split_adjustments,
)
from sync.protocol import CARD_FIELDS, ENTRY_FIELDS, GIFT_FIELDS, LINE_FIELDS, MEMBER_FIELDS, PROTOCOL, SALE_FIELDS
from sync.hub.scope import add_scope, member_states, record_effects
from sync.hub.stock import record_issue
from sync.hub.scope import downstream as scoped_downstream
from sync.hub.hubchain import HUB_ACTOR, HubEntry, append_hub_entries, lock_hub_chain
from sync.hub.messages.events import record_events
from sync.hub.partitions import SALES_LOCK_KEY, keep_ahead, month_of, months_around
from sync.hub.ordering import claim_nonce, directory_changes, downstream, hold_ingest_order
from sync.hub.schema import (
    HUB_TERMINAL,
    audit,
    balances,
    card_ranges,
    cards,
    counters,
    enrolment_codes,
    entries,
    entry_time_flags,
    gift_cards,
    held_adjustments,
    members,
    nonces,
    rulesets,
    sale_lines,
    sales,
    settlements,
    stores,
    terminals,
)

ENROLMENT_CODE_TTL = timedelta(hours=24)
# An entry written this long after the hub received it, or this long before its
# terminal was first enrolled, has an implausible time (a till's clock far off, or
# reset to its factory date): listed by reconcile, never refused.
ENTRY_AHEAD_MAX = timedelta(seconds=signing.SKEW_MAX_S)
ENTRY_BEFORE_ENROLMENT_MAX = timedelta(days=365)
BATCH_ENTRIES_MAX = 5_000
DIRECTORY_ROWS_MAX = 5_000
DOWNSTREAM_ENTRIES_MAX = 5_000
RECONCILE_ROWS_MAX = 1_000  # rows of one list that reconcile prints (it says how many more there are)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def record(conn: Connection, at: datetime, actor: str, action: str, target: str, **detail: Any) -> None:
    """One row of the audit table, in the caller's transaction."""
    conn.execute(insert(audit).values(at=format_utc(at), actor=actor[:64], action=action, target=target[:64],
                                      detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str)))


PERSON_CHARS_MAX = 64  # characters of a name given with --by (entries.actor)
REASON_CHARS_MAX = 160  # characters of a --reason (it goes into entries.reason, 200, with a prefix)


def _person(by: str) -> str:
    by = (by or "").strip()
    if not 1 <= len(by) <= PERSON_CHARS_MAX:
        raise HubRefused(f"--by names who decides: 1 to {PERSON_CHARS_MAX} characters")
    return by


def _reason(text: str) -> str:
    text = (text or "").strip()
    if not 1 <= len(text) <= REASON_CHARS_MAX:
        raise HubRefused(f"--reason says why: 1 to {REASON_CHARS_MAX} characters")
    return text


def store_day(at: datetime) -> str:
    """The stores' date at a moment (their local time, ledger.timefmt.IRAN_OFFSET)."""
    return (at.astimezone(timezone.utc) + IRAN_OFFSET).date().isoformat()


def time_bounds(received: datetime, enrolled: datetime) -> tuple[str, str]:
    """(latest, earliest) plausible created_at of an entry received now from a terminal
    enrolled then, in the ledger's time text (which sorts as the time)."""
    return format_utc(received + ENTRY_AHEAD_MAX), format_utc(enrolled - ENTRY_BEFORE_ENROLMENT_MAX)


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    conn.execute(dialect_insert(conn, table).on_conflict_do_nothing(), rows)


_STORED_COLUMNS = ENTRY_FIELDS + ("received_at",)  # what _ingest inserts, in this order
_COPY_COLUMNS = ", ".join(_STORED_COLUMNS)


def _insert_entries(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """New entries. The caller holds the terminal's row lock and has checked that each
    follows the last stored seq, so none can be present: on PostgreSQL they go in by
    COPY straight into the table (a clash, only possible for a forged id, fails the
    whole batch through the unique index)."""
    if conn.dialect.name != "postgresql":
        try:  # a plain INSERT: an id taken by another entry fails the batch here too, never skipped
            conn.execute(insert(entries), [dict(zip(_STORED_COLUMNS, r)) for r in rows])
        except IntegrityError:
            raise HubRefused("an entry id of this batch is already taken by another entry", 409,
                             "entry_conflict") from None
        return
    import psycopg

    cur = conn.connection.driver_connection.cursor()
    try:
        with cur.copy(f"COPY entries ({_COPY_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.errors.UniqueViolation:
        raise HubRefused("an entry id of this batch is already taken by another entry", 409,
                         "entry_conflict") from None
    except psycopg.errors.DataError as exc:
        raise HubRefused(f"the database refused a value of the batch: {str(exc)[:200]}", 422,
                         "bad_payload") from None


_HASHED_VALUES = itemgetter(*HASHED_FIELDS)
_ENTRY_VALUES = itemgetter(*ENTRY_FIELDS)
_STORED_ENTRY = tuple(entries.c[f] for f in ENTRY_FIELDS)


def resend_differs(stored: tuple[Any, ...], sent: tuple[Any, ...]) -> list[str]:
    """The ENTRY_FIELDS in which a resent entry differs from the stored one (both in
    ENTRY_FIELDS order); empty for a true resend."""
    if stored == sent:
        return []
    return [f for f, a, b in zip(ENTRY_FIELDS, stored, sent) if a != b or type(a) is not type(b)]


def _entry_hash(entry: dict[str, Any]) -> str:
    """ledger.chain.entry_hash, byte for byte, for an entry whose fields are text, whole
    numbers or null (what _payload_problem lets through): orjson writes that list
    exactly as json.dumps(ensure_ascii=False, separators=(",", ":")) does, in a third
    of the time. Anything orjson will not write (a lone surrogate, an integer beyond
    64 bits) goes to the reference function, which decides as before."""
    try:
        return hashlib.sha256(orjson.dumps(_HASHED_VALUES(entry))).hexdigest()
    except (TypeError, KeyError):
        return entry_hash(entry)


def parse_body(body: bytes, *, strict: bool = False) -> dict[str, Any]:
    """A request body as a JSON object (HubRefused 400 if it is not one, whatever the
    bytes: never another exception). orjson first;
    what it refuses (NaN, lone surrogates, a byte-order mark...) the standard parser
    decides, so nothing json.loads takes is refused here. strict: the standard parser
    only."""
    data: Any = None
    if not strict:
        try:
            data = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:  # (also what nests deeper than orjson's 1,024 levels)
            strict = True
    if strict:
        try:
            data = json.loads(body or b"{}")
        except RecursionError:
            raise HubRefused("the body nests deeper than the hub reads", 400, "invalid_json") from None
        except (ValueError, TypeError):  # (UnicodeDecodeError is a ValueError)
            raise HubRefused("the body is not JSON", 400, "invalid_json") from None
    if not isinstance(data, dict):
        raise HubRefused("the body must be a JSON object", 400, "invalid_json")
    return data


def _without_nothing(answer: dict[str, Any], held_ruleset: Any) -> dict[str, Any]:
    """A protocol-2 answer without what says nothing: empty lists, `more` when false,
    and the loyalty table when the terminal already holds it (the client reads each
    as absent = none). A till polls every 30 s, 2,880 times a day, and most answers are
    empty: these were half of an empty answer's bytes (bench/chain.py)."""
    return {k: v for k, v in answer.items()
            if not ((type(v) is list and not v and k != "acked") or (k == "more" and v is False)
                    or (k == "ruleset" and (v is None or ("toml" not in v and v["hash"] == held_ruleset))))}


def dump_answer(answer: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(answer)
    except TypeError:  # a value orjson does not write (an integer beyond 64 bits)
        return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _limits(table: Any, fields: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    return tuple((f, table.c[f].type.length) for f in fields if getattr(table.c[f].type, "length", None))


# (payload key, fields, text limits): the same limits on SQLite (which does not enforce
# them) as on PostgreSQL, computed once
_SHAPES = (("entries", ENTRY_FIELDS, _limits(entries, ENTRY_FIELDS)),
           ("members", MEMBER_FIELDS, _limits(members, MEMBER_FIELDS)),
           ("cards", CARD_FIELDS, _limits(cards, CARD_FIELDS)),
           ("gift_cards", GIFT_FIELDS, _limits(gift_cards, GIFT_FIELDS)))
_SCALARS = (str, int, type(None))
RULESET_HASH_CHARS = 64


_SCALAR_TYPES = frozenset(_SCALARS)
_not_none = partial(is_not, None)
_FAST_SHAPES = tuple((key, itemgetter(*fields), tuple((itemgetter(f), limit) for f, limit in limits))
                     for key, fields, limits in _SHAPES)


def _plainly_well_formed(payload: dict[str, Any]) -> bool:
    """True only if _payload_problem would find nothing; the same checks, column by
    column with C-level map() over a whole batch instead of Python loops per row.
    False means: let _payload_problem look (and word the problem)."""
    for key in ("cursor", "directory_rev"):
        value = payload.get(key, 0)
        if type(value) is not int or value < 0:
            return False
    if not _own_after_ok(payload) or not _ruleset_hash_ok(payload):
        return False
    try:
        for key, values_of, limits in _FAST_SHAPES:
            rows = payload.get(key) or []
            if type(rows) is not list:
                return False
            if not rows:
                continue
            if set(map(type, rows)) != {dict}:
                return False
            if not set(map(type, chain.from_iterable(map(values_of, rows)))) <= _SCALAR_TYPES:
                return False
            for value_of, limit in limits:
                if max(map(len, filter(_not_none, map(value_of, rows))), default=0) > limit:
                    return False
    except (KeyError, TypeError):  # a missing field; len() of a number
        return False
    return True


def _payload_problem(payload: dict[str, Any]) -> str | None:
    if _plainly_well_formed(payload):
        return None
    return _payload_problem_row_by_row(payload)


def _own_after_ok(payload: dict[str, Any]) -> bool:
    value = payload.get("own_after")
    return value is None or (type(value) is int and value >= 0)


def _ruleset_hash_ok(payload: dict[str, Any]) -> bool:
    value = payload.get("ruleset_hash")
    return value is None or (type(value) is str and len(value) <= RULESET_HASH_CHARS)


def _payload_problem_row_by_row(payload: dict[str, Any]) -> str | None:
    for key in ("cursor", "directory_rev"):
        value = payload.get(key, 0)
        if type(value) is not int or value < 0:
            return f"{key} must be a whole number of at least 0"
    if not _own_after_ok(payload):
        return "own_after must be a whole number of at least 0, or null"
    if not _ruleset_hash_ok(payload):
        return f"ruleset_hash must be text of at most {RULESET_HASH_CHARS} characters, or null"
    for key, fields, limits in _SHAPES:
        rows = payload.get(key) or []
        if not isinstance(rows, list):
            return f"{key} must be a list of objects"
        for row in rows:
            if type(row) is not dict:
                return f"{key} must be a list of objects"
            try:
                values = [row[f] for f in fields]
            except KeyError as exc:
                return f"a row of {key} lacks {exc.args[0]}"
            if not all(type(v) in _SCALARS for v in values):  # bool, float, list...: refused
                return f"a row of {key} has a value that is neither text nor a whole number"
            for f, limit in limits:
                value = row[f]
                if value is None:
                    continue
                if type(value) is not str:
                    return f"{key}.{f} must be text"
                if len(value) > limit:
                    return f"{key}.{f} is longer than {limit} characters"
    return None


def add_to_balances(conn: Connection, deltas: dict[str, int]) -> None:
    """Add points to members' balances: one upsert for them all (sorted by member id,
    the lock order of ordering.py), refused if a balance would leave its bounds (the
    new balances come back from the upsert itself, so two requests at once cannot
    both pass a check made before)."""
    stmt = dialect_insert(conn, balances)
    stmt = stmt.on_conflict_do_update(index_elements=[balances.c.member_id],
                                      set_={"points": balances.c.points + stmt.excluded.points})
    after = conn.execute(stmt.returning(balances.c.member_id, balances.c.points),
                         [{"member_id": k, "points": deltas[k]} for k in sorted(deltas)]).all()
    for member_id, points in after:
        check_balance(member_id, int(points))


class Metrics:
    def __init__(self) -> None:
        self.ingested = 0
        self.batches = 0
        self.held = 0
        self.sales = 0
        self.refused: Counter[str] = Counter()


class Hub:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = _now,
                 auth_clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.auth_clock = auth_clock  # epoch seconds that request timestamps are checked against
        self.metrics = Metrics()
        self.message_events = True  # [messages] enabled: the sync writes the rows messages are made from
        self.card_stock_required = False  # [cards] stock_required: tills issue only their store's stock
        self._partition_months: set[str] = set()  # PostgreSQL: months whose sales partitions exist

    # -- terminals ----------------------------------------------------------------


    def hub_time(self) -> float:
        """The hub's clock as answers carry it (X-Hub-Time too): unix seconds, 3 decimals."""
        return round(self.auth_clock(), 3)
    def new_enrolment_code(self, store: str) -> str:
        store = store.strip()
        if not store or len(store) > 64:
            raise HubRefused("a store name is 1 to 64 characters")
        code = "-".join(secrets.token_hex(3).upper() for _ in range(3))
        at = self.clock()
        with self.engine.begin() as conn:
            _insert_ignore(conn, stores, [{"code": store, "created_at": format_utc(at)}])
            conn.execute(insert(enrolment_codes).values(code_hash=_hash_code(code), store=store,
                                                        created_at=format_utc(at),
                                                        expires_at=format_utc(at + ENROLMENT_CODE_TTL)))
        return code

    def enroll(self, code: str, terminal_id: str) -> tuple[str, str]:
        """Trade a one-time code for credentials; returns (store, secret).

        A revoked terminal may be enrolled again under its id (a till repaired, or its
        secret leaked): a new secret, no longer revoked, of the code's store; its chain
        and last seq stay, so it goes on from where the hub has it. Audited."""
        terminal_id = (terminal_id or "").strip()
        if not terminal_id or len(terminal_id) > 64:
            raise HubRefused("the terminal id must be 1 to 64 characters", 400, "invalid_input")
        if terminal_id.lower() == HUB_TERMINAL:
            raise HubRefused(f"the terminal id {terminal_id!r} is the hub's own; choose another", 409,
                             "reserved_terminal")
        at = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(enrolment_codes).where(enrolment_codes.c.code_hash == _hash_code(code))
                               .with_for_update()).one_or_none()
            if row is None or row.used_by is not None or row.expires_at < format_utc(at):
                raise HubRefused("the enrolment code is unknown, used or expired; ask for a new one "
                                 "(loyalty-hub terminals add)", 403, "bad_enrolment_code")
            known = conn.execute(select(terminals.c.store, terminals.c.revoked, terminals.c.last_seq)
                                 .where(terminals.c.id == terminal_id).with_for_update()).one_or_none()
            if known is not None and not known.revoked:
                raise HubRefused(f"terminal {terminal_id} is already enrolled; revoke it first (loyalty-hub "
                                 "terminals revoke) to enrol it again, or use another terminal id", 409,
                                 "terminal_exists")
            secret = secrets.token_urlsafe(32)
            if known is None:
                conn.execute(insert(terminals).values(id=terminal_id, store=row.store, secret=secret, revoked=False,
                                                      created_at=format_utc(at), last_seq=0, last_hash=""))
                record(conn, at, terminal_id, "terminal.enrol", terminal_id, store=row.store)
            else:
                conn.execute(update(terminals).where(terminals.c.id == terminal_id)
                             .values(store=row.store, secret=secret, revoked=False))
                record(conn, at, terminal_id, "terminal.reenrol", terminal_id, store=row.store,
                       previous_store=known.store, last_seq=int(known.last_seq))
            conn.execute(update(enrolment_codes).where(enrolment_codes.c.code_hash == row.code_hash)
                         .values(used_by=terminal_id))
            return row.store, secret

    def revoke(self, terminal_id: str, by: str = "loyalty-hub") -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(terminals).where(terminals.c.id == terminal_id,
                                                        terminals.c.id != HUB_TERMINAL).values(revoked=True))
            if done.rowcount == 0:
                raise HubRefused(f"no terminal {terminal_id}", 404, "unknown_terminal")
            record(conn, self.clock(), by, "terminal.revoke", terminal_id)

    def list_terminals(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) | {"secret": "***"} for r in conn.execute(
                select(terminals).where(terminals.c.id != HUB_TERMINAL).order_by(terminals.c.id))]

    # -- signed requests ------------------------------------------------------------

    def require_signature_headers(self, headers: dict[str, str]) -> tuple[str, str, str, str]:
        """(terminal, timestamp, nonce, signature) from lower-cased headers; 401 unsigned
        if one is missing (checked before a body is read)."""
        terminal = headers.get(signing.HEADER_TERMINAL.lower(), "")
        timestamp = headers.get(signing.HEADER_TIMESTAMP.lower(), "")
        nonce = headers.get(signing.HEADER_NONCE.lower(), "")
        signature = headers.get(signing.HEADER_SIGNATURE.lower(), "")
        if not (terminal and timestamp and nonce and signature):
            self.metrics.refused["unsigned"] += 1
            raise HubRefused("the request is not signed (X-Terminal, X-Timestamp, X-Nonce, X-Signature)",
                             401, "unsigned")
        return terminal, timestamp, nonce, signature

    def authenticate(self, headers: dict[str, str], method: str, path: str, body: bytes) -> str:
        """The terminal id of a genuine, fresh request; HubRefused (401/403) otherwise."""
        terminal, timestamp, nonce, signature = self.require_signature_headers(headers)
        now = self.auth_clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(terminals.c.secret, terminals.c.revoked)
                               .where(terminals.c.id == terminal)).one_or_none()
            if row is None or terminal == HUB_TERMINAL:  # nobody speaks for the hub's own chain
                self.metrics.refused["unknown_terminal"] += 1
                raise HubRefused("unknown terminal", 401, "unknown_terminal")
            problem = signing.check(row.secret, method, path, timestamp, nonce, body, signature, now)
            if problem is not None:
                reason = "stale" if "timestamp" in problem else "bad_signature"
                self.metrics.refused[reason] += 1
                # a clock off by more than SKEW_MAX_S: the hub's time, to sign with until it is fixed
                raise HubRefused(problem, 401, reason, {"hub_time": self.hub_time()} if reason == "stale" else None)
            if row.revoked:
                self.metrics.refused["revoked"] += 1
                raise HubRefused(f"terminal {terminal} is revoked", 403, "revoked")
            conn.execute(nonces.delete().where(nonces.c.seen_at < int(now) - 2 * signing.SKEW_MAX_S))
            if not claim_nonce(conn, terminal, nonce, int(now)):
                self.metrics.refused["replayed"] += 1
                raise HubRefused("this request was already received (a reused nonce)", 401, "replayed")
        return terminal

    # -- sync -------------------------------------------------------------------------

    def _next_rev(self, conn: Connection) -> int:
        row = conn.execute(update(counters).where(counters.c.name == "rev")
                           .values(value=counters.c.value + 1).returning(counters.c.value)).first()
        if row is None:
            conn.execute(insert(counters).values(name="rev", value=1))
            return 1
        return int(row[0])

    def _ingest(self, conn: Connection, term: Any, batch: list[dict[str, Any]],
                now: datetime) -> tuple[list[str], int, str]:
        """Store the batch's new entries; (ids acknowledged, last seq, last hash held
        after it). term: the terminal's row, locked by the caller."""
        terminal = term.id
        last_seq, last_hash = int(term.last_seq), term.last_hash
        received_at = format_utc(now)
        # entry times to list in reconcile (never refused: the entry is what the till did)
        future, early = time_bounds(now, parse_utc(term.created_at))
        flagged: list[dict[str, Any]] = []
        ids = [e["id"] for e in batch]
        # only a resend can hold entries the hub has: those with seq at or below the last one
        resent = [e["id"] for e in batch if isinstance(e["seq"], int) and e["seq"] <= last_seq]
        known = {r[0]: tuple(r) for r in conn.execute(select(*_STORED_ENTRY)
                                                       .where(entries.c.id.in_(resent)))} if resent else {}
        fresh: list[tuple[Any, ...]] = []
        fresh_entries: list[dict[str, Any]] = []
        deltas: dict[str, int] = {}
        for entry in batch:  # shape already checked by _payload_problem
            if entry["terminal_code"] != terminal:
                raise HubRefused(f"entry {entry['id']} belongs to terminal {entry['terminal_code']}, "
                                 f"not to {terminal}", 422, "foreign_entry")
            if not isinstance(entry["seq"], int) or not isinstance(entry["points"], int) \
                    or not isinstance(entry["amount"], int) or isinstance(entry["points"], bool):
                raise HubRefused(f"entry {entry['id']}: seq, points and amount must be integers", 422, "bad_entry")
            if entry["id"] in known:
                differ = resend_differs(known[entry["id"]], _ENTRY_VALUES(entry))
                if differ:  # every field, not only the hash: a hash is only what the sender claims
                    # with what the hub holds of this terminal: a till restored from a backup
                    # taken before its entries were renumbered (after an earlier restore)
                    # sends them at their old seqs, and takes its chain back from here
                    raise HubRefused(f"entry {entry['id']} was already received with other content "
                                     f"({', '.join(differ)} differ)", 409, "entry_conflict",
                                     {"last_seq": int(term.last_seq), "last_hash": term.last_hash})
                continue  # a resend: acknowledged again, counted once (judged when it first came)
            check_entry(entry)
            if entry["card_number"] is not None:
                check_card_number(PAYMENT_ONLY, entry["card_number"], f"entry {entry['id']}")
            if entry["gift_card_number"] is not None:
                check_gift_card_number(entry["gift_card_number"], f"entry {entry['id']}")
            if entry["seq"] != last_seq + 1:
                # what the hub holds (this request changes nothing): a terminal restored from an
                # older backup takes its own entries back from there (own_after)
                raise HubRefused(f"entry seq {entry['seq']} does not follow {last_seq} for terminal {terminal}; "
                                 f"the hub holds this terminal's entries up to seq {term.last_seq}: send the "
                                 "outbox in order, or take them back (own_after) if this terminal was restored "
                                 "from a backup", 409, "sequence_gap",
                                 {"last_seq": int(term.last_seq), "last_hash": term.last_hash})
            if entry["prev_hash"] != last_hash or _entry_hash(entry) != entry["hash"]:
                raise HubRefused(f"entry {entry['id']} (seq {entry['seq']}) breaks the terminal's hash chain",
                                 422, "chain_broken")
            fresh.append(_ENTRY_VALUES(entry) + (received_at,))  # no stray keys reach the insert
            fresh_entries.append(entry)
            last_seq, last_hash = entry["seq"], entry["hash"]
            created = entry["created_at"]
            if not early <= created <= future:  # (the ledger's time text sorts as the time)
                flagged.append({"entry_id": entry["id"], "terminal_code": terminal, "seq": entry["seq"],
                                "created_at": created, "received_at": received_at,
                                "flag": "future" if created > future else "before_enrolment"})
            if entry["member_id"] and entry["points"]:
                deltas[entry["member_id"]] = deltas.get(entry["member_id"], 0) + entry["points"]
        if fresh:
            self._check_references(conn, fresh_entries)
            today = store_day(now)
            limit = ADJUST_POINTS_PER_DAY_DEFAULT if term.adjust_points_per_day is None \
                else int(term.adjust_points_per_day)
            held, used = split_adjustments(fresh_entries, limit,
                                           int(term.adjust_used) if term.adjust_day == today else 0)
            hub_chain = lock_hub_chain(conn) if held else None  # before the ingest lock (ordering.py)
            if self.message_events:  # receipts, tier changes...: made into messages after the commit
                record_events(conn, received_at, entries=fresh_entries)
            hold_ingest_order(conn)  # until commit: ingest ids become visible in order
            _insert_entries(conn, fresh)
            conn.execute(update(terminals).where(terminals.c.id == terminal)
                         .values(last_seq=last_seq, last_hash=last_hash, adjust_day=today, adjust_used=used))
            if held:
                self._hold(conn, terminal, held, limit, now, hub_chain, deltas)
            if flagged:
                conn.execute(insert(entry_time_flags), flagged)
            if deltas:
                add_to_balances(conn, deltas)
            record_effects(conn, fresh_entries, term.store, received_at)
        self.metrics.ingested += len(fresh)
        return ids, last_seq, last_hash

    def _hold(self, conn: Connection, terminal: str, held: list[Any], limit: int, now: datetime,
              hub_chain: tuple[int, str] | None, deltas: dict[str, int]) -> None:
        """Adjustments past the terminal's daily limit: each is stored like any entry
        (the chain stays whole) and cancelled at once by an entry of the hub's own
        chain, so its points reach no balance, here or on any terminal (the origin
        included, once it takes the hub's entry downstream), until approved."""
        rows = append_hub_entries(conn, [HubEntry(
            e["member_id"], -e["points"], f"held: {terminal}#{e['seq']} adjusted {e['points']:+} points, above the "
            f"terminal's daily limit of {limit}; awaiting approval (loyalty-hub adjustments)", "hold", HUB_ACTOR)
            for e in held], now, hub_chain)
        at = format_utc(now)
        conn.execute(insert(held_adjustments), [
            {"entry_id": e["id"], "terminal_code": terminal, "seq": e["seq"], "member_id": e["member_id"],
             "points": e["points"], "reason": e["reason"], "actor": e["actor"], "held_at": at,
             "hold_entry_id": r["id"], "status": "held"} for e, r in zip(held, rows)])
        for r in rows:
            deltas[r["member_id"]] = deltas.get(r["member_id"], 0) + r["points"]
        self.metrics.held += len(rows)

    def _check_references(self, conn: Connection, fresh: list[dict[str, Any]]) -> None:
        """The members, cards and gift cards new entries name exist at the hub (this
        request's own are stored by now): one query each, only for what is named."""
        member_ids = {e["member_id"] for e in fresh} - {None}
        numbers = {e["card_number"] for e in fresh} - {None}
        gifts = {e["gift_card_number"] for e in fresh} - {None}
        members_held = set(conn.execute(select(members.c.id).where(members.c.id.in_(member_ids))).scalars()) \
            if member_ids else set()
        cards_held = dict(conn.execute(select(cards.c.number, cards.c.member_id)
                                       .where(cards.c.number.in_(numbers))).all()) if numbers else {}
        gifts_held = set(conn.execute(select(gift_cards.c.number).where(gift_cards.c.number.in_(gifts)))
                         .scalars()) if gifts else set()
        if numbers or not (member_ids <= members_held and gifts <= gifts_held):  # else all is there
            check_entry_references(fresh, members_held, gifts_held, cards_held)

    def _upsert_directory(self, conn: Connection, term: Any, payload: dict[str, Any], now: datetime) -> None:
        """Members, cards and gift cards of the request, as far as the terminal may write
        them (entitlement.py); each change audited. Rows are locked in key order."""
        terminal, store, at = term.id, term.store, format_utc(now)
        changes: list[dict[str, Any]] = []
        seen: set[str] = set()  # members this request shows at the terminal's store

        def audited(action: str, target: str, **detail: Any) -> None:
            changes.append({"at": at, "actor": terminal, "action": action, "target": target[:64],
                            "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True)})

        for raw in sorted(payload.get("members") or [], key=lambda r: r["id"]):
            row = {k: raw.get(k) for k in MEMBER_FIELDS}
            seen.add(row["id"])
            current = conn.execute(select(members).where(members.c.id == row["id"]).with_for_update()).one_or_none()
            changed = member_change(terminal, store, None if current is None else current._mapping, row)
            if changed is None:
                conn.execute(insert(members).values(**row, rev=self._next_rev(conn)))
                audited("member.enrol", row["id"], store=row["store_code"])
            elif changed:
                conn.execute(update(members).where(members.c.id == row["id"])
                             .values(**{k: row[k] for k in MEMBER_EDITABLE}, rev=self._next_rev(conn)))
                audited("member.change", row["id"], **{k: [getattr(current, k), row[k]] for k in changed})
        card_rows = sorted(({k: raw.get(k) for k in CARD_FIELDS} for raw in payload.get("cards") or []),
                           key=lambda r: r["number"])
        for row in card_rows:  # a payment card is refused before anything is looked up by it
            check_card_number(PAYMENT_ONLY, row["number"], "a card")
            if row["replaced_by"] is not None:
                check_card_number(PAYMENT_ONLY, row["replaced_by"], f"card {mask(row['number'])}: its replacement")
        seen.update(r["member_id"] for r in card_rows if r["member_id"] is not None)
        if card_rows:
            request_cards = {r["number"]: r for r in card_rows}
            named = set(request_cards) | {r["replaced_by"] for r in card_rows if r["replaced_by"] is not None}
            held = dict(conn.execute(select(cards.c.number, cards.c.member_id).where(cards.c.number.in_(named))).all())
            # a member's store never changes and members are never removed: read without locks
            stores_of = dict(conn.execute(select(members.c.id, members.c.store_code).where(
                members.c.id.in_({r["member_id"] for r in card_rows if r["member_id"] is not None}))).all())
            policy: CardPolicy | None = None  # read once, and only if a new card comes
            for row in card_rows:
                current = conn.execute(select(cards).where(cards.c.number == row["number"])
                                       .with_for_update()).one_or_none()
                what = card_change(terminal, store, None if current is None else current._mapping, row,
                                   stores_of.get(row["member_id"]), request_cards, held)
                if what == "issue":  # a number new to the hub: the programme's ranges too
                    policy = policy or self._card_policy(conn)
                    check_card_number(policy, row["number"], "a new card")
                    conn.execute(insert(cards).values(**row, rev=self._next_rev(conn)))
                    outside = record_issue(conn, row["number"], row["member_id"], terminal, store, at,
                                           self.card_stock_required, self._next_rev)
                    audited("card.issue", row["number"], member_id=row["member_id"], status=row["status"],
                            stock=outside or "from_stock")
                elif what == "status":
                    conn.execute(update(cards).where(cards.c.number == row["number"])
                                 .values(status=row["status"], replaced_by=row["replaced_by"],
                                         status_changed_at=row["status_changed_at"],
                                         status_reason=row["status_reason"], rev=self._next_rev(conn)))
                    audited("card.status", row["number"], member_id=current.member_id,  # type: ignore[union-attr]
                            status=[current.status, row["status"]],  # type: ignore[union-attr]
                            replaced_by=row["replaced_by"], reason=row["status_reason"])
        for raw in sorted(payload.get("gift_cards") or [], key=lambda r: r["number"]):
            row = {k: raw.get(k) for k in GIFT_FIELDS}
            check_gift_card_number(row["number"], "a gift card")
            if conn.execute(select(gift_cards.c.number).where(gift_cards.c.number == row["number"])).first() is None:
                conn.execute(insert(gift_cards).values(**row, rev=self._next_rev(conn)))
                audited("gift_card.issue", row["number"], status=row["status"])
        if changes:
            conn.execute(insert(audit), changes)
            if self.message_events:  # a welcome (or a verification code) after the commit
                record_events(conn, at, member_ids=[c["target"] for c in changes if c["action"] == "member.enrol"])
        return seen

    def _take_sales(self, conn: Connection, term: Any, rows: list[Any], now: datetime) -> set[str]:
        """Sales and refunds with their lines, for the back office: each once (a resend
        must be the same sale), only the terminal's own, for members the hub holds.
        Returns the months of the new ones (PostgreSQL: for their partitions)."""
        if not rows:
            return set()
        cards_ok: set[str] = set()
        for sale in rows:
            check_sale(term.id, sale, cards_ok)
        by_id = {s["id"]: s for s in rows}
        postgresql = conn.dialect.name == "postgresql"
        if postgresql:  # unique by (id, month) in a partitioned table: the id alone is checked here
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SALES_LOCK_KEY})")
        # PostgreSQL: the ids as one array parameter; an IN of 5,000 placeholders was parsed
        # by the driver afresh at every batch (a sixth of the sales' time)
        named = (sales.c.id == any_(bindparam("ids", list(by_id), type_=ARRAY(String(36))))) if postgresql \
            else sales.c.id.in_(list(by_id))
        stored = {r.id: r for r in conn.execute(select(sales).where(named))}
        wanted = {s["member_id"] for s in by_id.values()}
        held = set(conn.execute(select(members.c.id).where(members.c.id.in_(wanted))).scalars())
        if wanted - held:
            raise HubRefused(f"a sale names member {sorted(wanted - held)[0]}, whom the hub does not hold", 422,
                             "unknown_member")
        at = format_utc(now)
        fresh, lines = [], []
        for sid, sale in by_id.items():
            if sid in stored:
                differ = [k for k in SALE_FIELDS if getattr(stored[sid], k) != sale.get(k)]
                if differ:
                    raise HubRefused(f"sale {sid} was already received with other content ({', '.join(differ)} "
                                     "differ)", 409, "sale_conflict")
                continue
            fresh.append({**{k: sale.get(k) for k in SALE_FIELDS}, "store": term.store, "received_at": at})
            lines += [{**{k: line.get(k) for k in LINE_FIELDS}, "sale_id": sid, "created_at": sale["created_at"]}
                      for line in sale["lines"]]
        insert_new_rows(conn, sales, fresh)
        insert_new_rows(conn, sale_lines, lines)
        self.metrics.sales += len(fresh)
        return {m for m in (month_of(s["created_at"]) for s in fresh) if m} if postgresql else set()

    def _keep_partitions(self, now: datetime, months: set[str]) -> None:
        """PostgreSQL, after a sync's commit: this month's sales partitions and the next
        ones, once a month per process, and those of new sales stored in the default
        partition for want of theirs (partitions.py)."""
        wanted = (months & set(months_around(now, behind=1))) - self._partition_months
        if now.strftime("%Y-%m") in self._partition_months and not wanted:
            return
        if keep_ahead(self.engine, now, wanted):
            self._partition_months |= set(months_around(now)) | wanted

    def sync_body(self, terminal: str, body: bytes) -> dict[str, Any]:
        """Hub.sync on a request body as received. orjson reads an integer beyond 64
        bits as a float, which _payload_problem refuses; so a body it finds malformed is
        read again by the standard parser, and judged on that, as before."""
        payload = parse_body(body)
        problem = _payload_problem(payload)
        if problem is not None:
            payload = parse_body(body, strict=True)
            problem = _payload_problem(payload)
        return self._checked_sync(terminal, payload, problem)

    def sync(self, terminal: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One signed request: take the batch and directory rows, answer with what is new.
        A malformed body is refused (422) and changes nothing."""
        return self._checked_sync(terminal, payload, _payload_problem(payload))

    def _checked_sync(self, terminal: str, payload: dict[str, Any], problem: str | None) -> dict[str, Any]:
        """sync() once the payload's shape is checked (a 3 MB batch is checked once)."""
        if problem:
            raise HubRefused(problem, 422, "bad_payload")
        try:
            return self._sync(terminal, payload)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise HubRefused(f"the request does not have the shape of a sync batch: {type(exc).__name__}: "
                             f"{str(exc)[:200]}", 422, "bad_payload") from None
        except (DataError, IntegrityError) as exc:
            raise HubRefused(f"the database refused a value of the batch: {str(exc.orig)[:200]}", 422,
                             "bad_payload") from None

    def _sync(self, terminal: str, payload: dict[str, Any]) -> dict[str, Any]:
        batch = payload.get("entries") or []
        if not isinstance(batch, list) or len(batch) > BATCH_ENTRIES_MAX:
            raise HubRefused(f"a batch holds at most {BATCH_ENTRIES_MAX} entries", 413, "batch_too_large")
        for key in ("members", "cards", "gift_cards"):
            if len(payload.get(key) or []) > DIRECTORY_ROWS_MAX:
                raise HubRefused(f"at most {DIRECTORY_ROWS_MAX} {key} per request", 413, "batch_too_large")
        sales_rows = payload.get("sales") or []
        if not isinstance(sales_rows, list) or len(sales_rows) > SALES_PER_REQUEST_MAX:
            raise HubRefused(f"at most {SALES_PER_REQUEST_MAX} sales per request", 413, "batch_too_large")
        protocol = 1 if payload.get("protocol") is None else payload["protocol"]
        if type(protocol) is not int or protocol not in (1, PROTOCOL):
            raise HubRefused(f"this hub speaks sync protocol 1 and {PROTOCOL}, not {protocol!r}: upgrade the hub",
                             422, "bad_payload")
        own_after = payload.get("own_after")
        if own_after is not None and batch:
            raise HubRefused("a request that takes this terminal's own entries back (own_after) carries no "
                             "entries: send them once the terminal has its chain back", 422, "bad_payload")
        cursor = int(payload.get("cursor") or 0)
        directory_rev = int(payload.get("directory_rev") or 0)
        now = self.clock()
        at = format_utc(now)
        with self.engine.begin() as conn:
            # this terminal's row first: one request per terminal at a time, and the lock order of ordering.py
            term = conn.execute(select(terminals.c.id, terminals.c.store, terminals.c.created_at,
                                       terminals.c.last_seq, terminals.c.last_hash,
                                       terminals.c.adjust_points_per_day, terminals.c.adjust_day,
                                       terminals.c.adjust_used)
                                .where(terminals.c.id == terminal).with_for_update()).one()
            seen = self._upsert_directory(conn, term, payload, now)
            acked, last_seq, last_hash = self._ingest(conn, term, batch, now)
            sale_months = self._take_sales(conn, term, sales_rows, now)
            add_scope(conn, term.store, seen, at)  # after the ingest lock, as record_effects (scope.py)
            own = None
            if own_after is not None:  # a terminal taking its own entries back, after a restore
                own = conn.execute(select(*_STORED_ENTRY).where(entries.c.terminal_code == terminal,
                                                                 entries.c.seq > own_after)
                                   .order_by(entries.c.seq).limit(DOWNSTREAM_ENTRIES_MAX)).all()
            conn.execute(update(terminals).where(terminals.c.id == terminal).values(last_seen_at=at))
        if self.engine.dialect.name == "postgresql":
            self._keep_partitions(now, sale_months)
        # What goes down is read after the commit, in a transaction of its own: the
        # ingest lock and the directory's counter row (ordering.py) are held from the
        # batch's INSERT to its commit, and every other terminal's batch waited while
        # this answer was computed. Its reads need no lock: tops are read first and rows
        # up to them second, and sums are absolute. A hub dying here has committed the
        # batch and lost the answer, which the terminal sends again and is acked again.
        with self.engine.connect() as conn:
            if protocol == PROTOCOL:  # a chain's terminal: its scope, as sums (scope.py)
                down, directory = [], scoped_downstream(conn, terminal, term.store, cursor, directory_rev)
                new_cursor, new_rev = directory.pop("cursor"), directory.pop("directory_rev")
            else:  # the old protocol: every other terminal's entries and the whole directory
                down, new_cursor = downstream(conn, terminal, cursor, DOWNSTREAM_ENTRIES_MAX)
                directory, new_rev = directory_changes(conn, directory_rev)
            # the table's text only to a terminal that does not hold it yet: a sync every
            # few seconds over a shop's thin line would otherwise carry it every time
            ruleset = conn.execute(select(rulesets.c.version, rulesets.c.hash)
                                   .order_by(rulesets.c.version.desc()).limit(1)).first()
            toml = None
            if ruleset is not None and ruleset.hash != payload.get("ruleset_hash"):
                toml = conn.execute(select(rulesets.c.toml).where(rulesets.c.version == ruleset.version)).scalar()
            touched = {e.get("member_id") for e in batch if e.get("member_id")} if protocol == 1 else set()
            member_balances = dict(conn.execute(select(balances.c.member_id, balances.c.points)
                                                .where(balances.c.member_id.in_(touched))).all()) if touched else {}
        self.metrics.batches += 1
        answer = {
            "acked": acked,
            **({"entries": [{k: getattr(r, k) for k in ENTRY_FIELDS} for r in down]} if protocol == 1 else {}),
            "cursor": new_cursor,
            **directory,
            "directory_rev": new_rev,
            **({"balances": member_balances} if protocol == 1 else {}),
            "ruleset": None if ruleset is None else {"version": ruleset.version, "hash": ruleset.hash,
                                                     **({"toml": toml} if toml is not None else {})},
            "last_seq": last_seq,
            "last_hash": last_hash,
            "card_stock_required": self.card_stock_required,
            **({} if own is None else {"own_entries": [dict(zip(ENTRY_FIELDS, r)) for r in own]}),
            "hub_time": self.hub_time(),
            "protocol": protocol,
        }
        return _without_nothing(answer, payload.get("ruleset_hash")) if protocol == PROTOCOL else answer

    def lookup(self, terminal: str, query: str, member_id: str | None = None) -> dict[str, Any]:
        """A member by card number or mobile, for a terminal that does not hold them (a
        card presented outside its store's scope): the member, their cards and their
        sums for that terminal; the member is in the store's scope from then on, so their
        changes come down with the rest."""
        query = query.strip()
        if member_id is not None:  # a terminal taking its own entries back names their members
            where = members.c.id == member_id[:36]
            what = f"id {member_id[:36]}"
        elif looks_like_mobile(query):
            mobile = normalise_mobile(query)
            where = members.c.mobile == mobile
            what = f"mobile {mobile}"
        else:
            try:
                number = PAYMENT_ONLY.accept(query)
            except ValidationFailed as exc:
                raise HubRefused(str(exc), 422, getattr(exc, "code", "invalid_card_number")) from None
            where = members.c.id == select(cards.c.member_id).where(cards.c.number == number).scalar_subquery()
            what = f"card …{number[-4:]}"
        now = self.clock()
        with self.engine.begin() as conn:
            term = conn.execute(select(terminals.c.id, terminals.c.store).where(terminals.c.id == terminal)).one()
            found = conn.execute(select(members).where(where).limit(2)).all()
            if not found:
                raise HubRefused(f"no member with {what} in the chain", 404, "unknown_member")
            if len(found) > 1:
                raise HubRefused(f"the {what} belongs to more than one member: use the member's card", 409,
                                 "shared_mobile")
            member = found[0]
            add_scope(conn, term.store, [member.id], format_utc(now))
            member_cards = conn.execute(select(cards).where(cards.c.member_id == member.id)
                                        .order_by(cards.c.issued_at)).all()
            (state,) = member_states(conn, terminal, [member.id])
        return {"member": {k: getattr(member, k) for k in MEMBER_FIELDS},
                "cards": [{k: getattr(c, k) for k in CARD_FIELDS} for c in member_cards],
                "state": state, "protocol": PROTOCOL, "hub_time": self.hub_time()}

    # -- operations ---------------------------------------------------------------------

    def publish_ruleset(self, toml_text: str, source: str) -> tuple[int, str]:
        import tomllib

        from ledger.rules import parse_ruleset

        try:
            data = tomllib.loads(toml_text)
        except tomllib.TOMLDecodeError as exc:
            raise HubRefused(f"{source}: is not valid TOML: {exc}") from None
        ruleset = parse_ruleset(data, source)
        with self.engine.begin() as conn:
            row = conn.execute(insert(rulesets).values(hash=ruleset.hash, toml=toml_text,
                                                       published_at=format_utc(self.clock()))
                               .returning(rulesets.c.version)).one()
        return int(row[0]), ruleset.hash

    # -- manual adjustments held above a terminal's daily limit ---------------------------

    def set_adjust_limit(self, terminal_id: str, points: int, by: str) -> None:
        """A terminal's own daily limit of manual adjustment points (0: every one is held)."""
        if type(points) is not int or not 0 <= points <= ENTRY_POINTS_MAX:
            raise HubRefused(f"the daily limit is 0 to {ENTRY_POINTS_MAX:,} points")
        by = _person(by)
        with self.engine.begin() as conn:
            before = conn.execute(select(terminals.c.adjust_points_per_day).where(
                terminals.c.id == terminal_id, terminals.c.id != HUB_TERMINAL).with_for_update()).one_or_none()
            if before is None:
                raise HubRefused(f"no terminal {terminal_id}", 404, "unknown_terminal")
            conn.execute(update(terminals).where(terminals.c.id == terminal_id)
                         .values(adjust_points_per_day=points))
            record(conn, self.clock(), by, "terminal.adjust_limit", terminal_id,
                   before=before[0] if before[0] is not None else f"default {ADJUST_POINTS_PER_DAY_DEFAULT}",
                   after=points)

    def adjustments(self, everything: bool = False) -> list[dict[str, Any]]:
        """Held adjustments, oldest first; with `everything`, the decided ones too."""
        query = select(held_adjustments).order_by(held_adjustments.c.id)
        if not everything:
            query = query.where(held_adjustments.c.status == "held")
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def decide_adjustment(self, held_id: int, approve: bool, by: str, reason: str) -> dict[str, Any]:
        """Approve (the hub's chain gives the member the points) or reject (nothing more
        is written) a held adjustment; audited either way. The decided row."""
        by, reason = _person(by), _reason(reason)
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(held_adjustments).where(held_adjustments.c.id == held_id)
                               .with_for_update()).one_or_none()
            if row is None:
                raise HubRefused(f"no held adjustment {held_id} (loyalty-hub adjustments list)", 404, "unknown_hold")
            if row.status != "held":
                raise HubRefused(f"adjustment {held_id} was already {row.status} by {row.decided_by} at "
                                 f"{row.decided_at}", 409, "already_decided")
            release = None
            if approve:
                (release,) = append_hub_entries(conn, [HubEntry(
                    row.member_id, int(row.points), f"approved: {row.terminal_code}#{row.seq} adjusted "
                    f"{int(row.points):+} points (held #{held_id}): {reason}", "release", by)], now)
                add_to_balances(conn, {row.member_id: int(row.points)})
            status = "approved" if approve else "rejected"
            conn.execute(update(held_adjustments).where(held_adjustments.c.id == held_id).values(
                status=status, decided_by=by, decided_at=format_utc(now), decision_reason=reason,
                release_entry_id=release["id"] if release else None))
            record(conn, now, by, f"adjustment.{'approve' if approve else 'reject'}", str(held_id),
                   entry_id=row.entry_id, member_id=row.member_id, points=int(row.points), reason=reason,
                   release_entry_id=release["id"] if release else None)
            return dict(conn.execute(select(held_adjustments).where(held_adjustments.c.id == held_id)).one()._mapping)

    # -- the programme's member card ranges -------------------------------------------

    def _card_policy(self, conn: Connection) -> CardPolicy:
        rows = conn.execute(select(card_ranges).order_by(card_ranges.c.position)).all()
        return CardPolicy(tuple(CardRange(r.prefix, tuple(int(x) for x in r.lengths.split(",")), bool(r.luhn))
                                for r in rows))

    def card_policy(self) -> CardPolicy:
        with self.engine.connect() as conn:
            return self._card_policy(conn)

    def set_card_ranges(self, policy: CardPolicy, by: str) -> None:
        """Replace the member card ranges (none: only payment cards are refused). Cards
        the hub already holds are not checked again at sync; `loyalty-hub verify` lists
        those outside the new ranges."""
        with self.engine.begin() as conn:
            before = [range_text(r) for r in self._card_policy(conn).ranges]
            conn.execute(card_ranges.delete())
            if policy.ranges:
                conn.execute(insert(card_ranges), [
                    {"position": i, "prefix": r.prefix, "lengths": ",".join(map(str, r.lengths)), "luhn": r.luhn}
                    for i, r in enumerate(policy.ranges, 1)])
            record(conn, self.clock(), by, "cards.ranges", "card_ranges", before=before,
                   after=[range_text(r) for r in policy.ranges])

    def reconcile(self) -> list[dict[str, Any]]:
        """Members whose balance across every terminal went below zero (offline
        redemptions at two branches), with the entries that took it there, and
        `settled`: the decision to keep the debt, while the balance is still the one
        decided on (null otherwise)."""
        out = []
        with self.engine.connect() as conn:
            for member_id, points in conn.execute(select(balances.c.member_id, balances.c.points)
                                                  .where(balances.c.points < 0).order_by(balances.c.member_id)):
                rows = conn.execute(select(entries).where(and_(entries.c.member_id == member_id,
                                                               entries.c.points < 0))
                                    .order_by(entries.c.created_at)).all()
                last = conn.execute(select(settlements).where(settlements.c.member_id == member_id)
                                    .order_by(settlements.c.id.desc()).limit(1)).first()
                settled = None
                if last is not None and last.decision == "keep-debt" and int(last.balance) == int(points):
                    settled = {k: getattr(last, k) for k in ("decision", "decided_by", "decided_at", "reason")}
                out.append({"member_id": member_id, "balance": int(points), "settled": settled,
                            "debits": [{k: getattr(r, k) for k in ("terminal_code", "seq", "kind", "points",
                                                                     "receipt_ref", "created_at")} for r in rows]})
        return out

    def settle(self, member_id: str, write_off: bool, by: str, reason: str) -> dict[str, Any]:
        """Settle an overdrawn member with an entry of the hub's own chain, which every
        terminal and report then sees: a write-off brings the balance back to 0; keeping
        the debt writes a 0-point entry recording the decision. Audited; the settlement."""
        by, reason = _person(by), _reason(reason)
        decision = "write-off" if write_off else "keep-debt"
        now = self.clock()
        with self.engine.begin() as conn:
            if conn.execute(select(members.c.id).where(members.c.id == member_id)).first() is None:
                raise HubRefused(f"no member {member_id}", 404, "unknown_member")
            hub_chain = lock_hub_chain(conn)  # the lock order of ordering.py: hub chain, ingest, balances
            hold_ingest_order(conn)
            balance = int(conn.execute(select(balances.c.points).where(balances.c.member_id == member_id)
                                       .with_for_update()).scalar() or 0)
            if balance >= 0:
                raise HubRefused(f"member {member_id} is not overdrawn (balance {balance}); nothing to settle", 409,
                                 "not_overdrawn")
            if write_off and -balance > ENTRY_POINTS_MAX:
                raise HubRefused(f"member {member_id} owes {-balance} points, more than one entry may move "
                                 f"(ENTRY_POINTS_MAX, {ENTRY_POINTS_MAX:,})", 422, "limit_exceeded")
            points = -balance if write_off else 0
            text = (f"written off: a debt of {-balance} points" if write_off
                    else f"debt of {-balance} points kept") + f": {reason}"
            (row,) = append_hub_entries(conn, [HubEntry(member_id, points, text, decision, by)], now, hub_chain)
            if points:
                add_to_balances(conn, {member_id: points})
            settled = {"member_id": member_id, "decision": decision, "balance": balance, "entry_id": row["id"],
                       "decided_by": by, "reason": reason, "decided_at": format_utc(now)}
            conn.execute(insert(settlements).values(**settled))
            record(conn, now, by, f"settle.{decision}", member_id, balance=balance, points=points, reason=reason,
                   entry_id=row["id"])
            return settled

    def implausible_times(self, limit: int = RECONCILE_ROWS_MAX) -> tuple[list[dict[str, Any]], int]:
        """Entries whose time is implausible (written long after they reached the hub,
        or long before their terminal was enrolled): the first `limit` by terminal and
        seq, and how many there are in all."""
        with self.engine.connect() as conn:
            total = int(conn.execute(select(func.count()).select_from(entry_time_flags)).scalar_one())
            rows = conn.execute(select(entry_time_flags).order_by(entry_time_flags.c.terminal_code,
                                                                  entry_time_flags.c.seq).limit(limit)).all()
        return [dict(r._mapping) for r in rows], total

    def shared_mobiles(self) -> list[dict[str, Any]]:
        """Mobile numbers enrolled as more than one member (at branches offline at the time):
        each terminal keeps the member it enrolled and skips the other, so the two accounts
        stay apart until someone merges them; this lists them, with each one's balance."""
        out = []
        with self.engine.connect() as conn:
            shared = conn.execute(select(members.c.mobile).group_by(members.c.mobile)
                                  .having(func.count() > 1).order_by(members.c.mobile)).scalars().all()
            for mobile in shared:
                rows = conn.execute(
                    select(members.c.id, members.c.store_code, members.c.enrolled_at, members.c.enrolled_by,
                           func.coalesce(balances.c.points, 0).label("balance"))
                    .select_from(members.outerjoin(balances, balances.c.member_id == members.c.id))
                    .where(members.c.mobile == mobile).order_by(members.c.enrolled_at, members.c.id)).all()
                out.append({"mobile": mobile, "members": [
                    {"member_id": r.id, "store_code": r.store_code, "enrolled_at": r.enrolled_at,
                     "enrolled_by": r.enrolled_by, "balance": int(r.balance)} for r in rows]})
        return out

    def terminal_lag(self) -> dict[str, float]:
        now = self.clock()
        out = {}
        with self.engine.connect() as conn:
            for tid, seen in conn.execute(select(terminals.c.id, terminals.c.last_seen_at)
                                          .where(terminals.c.revoked.is_(False))):
                if seen:
                    out[tid] = (now - datetime.fromisoformat(seen)).total_seconds()
        return out
