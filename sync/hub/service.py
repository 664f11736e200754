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
from sqlalchemy import Connection, Engine, and_, func, insert, select, update
from sqlalchemy.exc import DataError, IntegrityError

from ledger.chain import HASHED_FIELDS, entry_hash
from ledger.timefmt import format_utc
from sync import signing
from sync.errors import HubRefused
from sync.hub.db import dialect_insert
from sync.hub.ordering import claim_nonce, directory_changes, downstream, hold_ingest_order
from sync.hub.schema import (
    balances,
    cards,
    counters,
    enrolment_codes,
    entries,
    gift_cards,
    members,
    nonces,
    rulesets,
    stores,
    terminals,
)

ENROLMENT_CODE_TTL = timedelta(hours=24)
BATCH_ENTRIES_MAX = 5_000
DIRECTORY_ROWS_MAX = 5_000
DOWNSTREAM_ENTRIES_MAX = 5_000
ENTRY_FIELDS = ("id", "terminal_code", "seq", "member_id", "card_number", "gift_card_number", "kind", "points",
                "amount", "sale_id", "receipt_ref", "rule_id", "reason", "actor", "ruleset_hash", "created_at",
                "prev_hash", "hash")
MEMBER_FIELDS = ("id", "name", "mobile", "birth_date", "referrer_id", "tier", "segment", "enrolled_at",
                 "enrolled_by", "store_code")
CARD_FIELDS = ("number", "member_id", "technology", "status", "replaced_by", "issued_at", "issued_by",
               "status_changed_at", "status_reason")
GIFT_FIELDS = ("number", "status", "issued_at", "issued_by")
# When two branches changed a card, the more final status wins.
STATUS_RANK = {"active": 0, "lost": 1, "blocked": 1, "replaced": 2}


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def _insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    conn.execute(dialect_insert(conn, table).on_conflict_do_nothing(), rows)


_COPY_COLUMNS = ", ".join(ENTRY_FIELDS)


def _insert_entries(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """New entries. The caller holds the terminal's row lock and has checked that each
    follows the last stored seq, so none can be present: on PostgreSQL they go in by
    COPY straight into the table (a clash, only possible for a forged id, fails the
    whole batch through the unique index)."""
    if conn.dialect.name != "postgresql":
        _insert_ignore(conn, entries, [dict(zip(ENTRY_FIELDS, r)) for r in rows])
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
    """A request body as a JSON object (HubRefused 400 if it is not one). orjson first;
    what it refuses (NaN, lone surrogates, a byte-order mark...) the standard parser
    decides, so nothing json.loads takes is refused here. strict: the standard parser
    only."""
    data: Any = None
    if not strict:
        try:
            data = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            strict = True
    if strict:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise HubRefused("the body is not JSON", 400, "invalid_json") from None
    if not isinstance(data, dict):
        raise HubRefused("the body must be a JSON object", 400, "invalid_json")
    return data


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
    if not _ruleset_hash_ok(payload):
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


def _ruleset_hash_ok(payload: dict[str, Any]) -> bool:
    value = payload.get("ruleset_hash")
    return value is None or (type(value) is str and len(value) <= RULESET_HASH_CHARS)


def _payload_problem_row_by_row(payload: dict[str, Any]) -> str | None:
    for key in ("cursor", "directory_rev"):
        value = payload.get(key, 0)
        if type(value) is not int or value < 0:
            return f"{key} must be a whole number of at least 0"
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


class Metrics:
    def __init__(self) -> None:
        self.ingested = 0
        self.batches = 0
        self.refused: Counter[str] = Counter()


class Hub:
    def __init__(self, engine: Engine, clock: Callable[[], datetime] = _now,
                 auth_clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self.auth_clock = auth_clock  # epoch seconds that request timestamps are checked against
        self.metrics = Metrics()

    # -- terminals ----------------------------------------------------------------

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
        """Trade a one-time code for credentials; returns (store, secret)."""
        terminal_id = (terminal_id or "").strip()
        if not terminal_id or len(terminal_id) > 64:
            raise HubRefused("the terminal id must be 1 to 64 characters", 400, "invalid_input")
        at = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(enrolment_codes).where(enrolment_codes.c.code_hash == _hash_code(code))
                               .with_for_update()).one_or_none()
            if row is None or row.used_by is not None or row.expires_at < format_utc(at):
                raise HubRefused("the enrolment code is unknown, used or expired; ask for a new one "
                                 "(loyalty-hub terminals add)", 403, "bad_enrolment_code")
            if conn.execute(select(terminals.c.id).where(terminals.c.id == terminal_id)).first() is not None:
                raise HubRefused(f"terminal {terminal_id} is already enrolled; revoke it first or use another "
                                 "terminal id", 409, "terminal_exists")
            secret = secrets.token_urlsafe(32)
            conn.execute(insert(terminals).values(id=terminal_id, store=row.store, secret=secret, revoked=False,
                                                  created_at=format_utc(at), last_seq=0, last_hash=""))
            conn.execute(update(enrolment_codes).where(enrolment_codes.c.code_hash == row.code_hash)
                         .values(used_by=terminal_id))
            return row.store, secret

    def revoke(self, terminal_id: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(terminals).where(terminals.c.id == terminal_id).values(revoked=True))
            if done.rowcount == 0:
                raise HubRefused(f"no terminal {terminal_id}", 404, "unknown_terminal")

    def list_terminals(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) | {"secret": "***"} for r in conn.execute(select(terminals).order_by(terminals.c.id))]

    # -- signed requests ------------------------------------------------------------

    def authenticate(self, headers: dict[str, str], method: str, path: str, body: bytes) -> str:
        """The terminal id of a genuine, fresh request; HubRefused (401/403) otherwise."""
        terminal = headers.get(signing.HEADER_TERMINAL.lower(), "")
        timestamp = headers.get(signing.HEADER_TIMESTAMP.lower(), "")
        nonce = headers.get(signing.HEADER_NONCE.lower(), "")
        signature = headers.get(signing.HEADER_SIGNATURE.lower(), "")
        if not (terminal and timestamp and nonce and signature):
            self.metrics.refused["unsigned"] += 1
            raise HubRefused("the request is not signed (X-Terminal, X-Timestamp, X-Nonce, X-Signature)",
                             401, "unsigned")
        now = self.auth_clock()
        with self.engine.begin() as conn:
            row = conn.execute(select(terminals.c.secret, terminals.c.revoked)
                               .where(terminals.c.id == terminal)).one_or_none()
            if row is None:
                self.metrics.refused["unknown_terminal"] += 1
                raise HubRefused("unknown terminal", 401, "unknown_terminal")
            problem = signing.check(row.secret, method, path, timestamp, nonce, body, signature, now)
            if problem is not None:
                reason = "stale" if "timestamp" in problem else "bad_signature"
                self.metrics.refused[reason] += 1
                raise HubRefused(problem, 401, reason)
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

    def _ingest(self, conn: Connection, terminal: str, batch: list[dict[str, Any]]) -> list[str]:
        term = conn.execute(select(terminals.c.last_seq, terminals.c.last_hash)
                            .where(terminals.c.id == terminal).with_for_update()).one()
        last_seq, last_hash = int(term.last_seq), term.last_hash
        ids = [e["id"] for e in batch]
        # only a resend can hold entries the hub has: those with seq at or below the last one
        resent = [e["id"] for e in batch if isinstance(e["seq"], int) and e["seq"] <= last_seq]
        known = {r.id: r for r in conn.execute(select(entries.c.id, entries.c.seq, entries.c.hash)
                                                .where(entries.c.id.in_(resent)))} if resent else {}
        fresh: list[tuple[Any, ...]] = []
        deltas: dict[str, int] = {}
        for entry in batch:  # shape already checked by _payload_problem
            if entry["terminal_code"] != terminal:
                raise HubRefused(f"entry {entry['id']} belongs to terminal {entry['terminal_code']}, "
                                 f"not to {terminal}", 422, "foreign_entry")
            if not isinstance(entry["seq"], int) or not isinstance(entry["points"], int) \
                    or not isinstance(entry["amount"], int) or isinstance(entry["points"], bool):
                raise HubRefused(f"entry {entry['id']}: seq, points and amount must be integers", 422, "bad_entry")
            if entry["id"] in known:
                if known[entry["id"]].hash != entry["hash"]:
                    raise HubRefused(f"entry {entry['id']} was already received with other content", 409,
                                     "entry_conflict")
                continue  # a resend: acknowledged again, counted once
            if entry["seq"] != last_seq + 1:
                raise HubRefused(f"entry seq {entry['seq']} does not follow {last_seq} for terminal {terminal}; "
                                 "send the outbox in order", 409, "sequence_gap")
            if entry["prev_hash"] != last_hash or _entry_hash(entry) != entry["hash"]:
                raise HubRefused(f"entry {entry['id']} (seq {entry['seq']}) breaks the terminal's hash chain",
                                 422, "chain_broken")
            fresh.append(_ENTRY_VALUES(entry))  # no stray keys reach the insert
            last_seq, last_hash = entry["seq"], entry["hash"]
            if entry["member_id"] and entry["points"]:
                deltas[entry["member_id"]] = deltas.get(entry["member_id"], 0) + entry["points"]
        if fresh:
            hold_ingest_order(conn)  # until commit: ingest ids become visible in order
            _insert_entries(conn, fresh)
            conn.execute(update(terminals).where(terminals.c.id == terminal)
                         .values(last_seq=last_seq, last_hash=last_hash))
            if deltas:  # one pipelined upsert, not a round trip per member
                stmt = dialect_insert(conn, balances)
                conn.execute(stmt.on_conflict_do_update(
                    index_elements=[balances.c.member_id],
                    set_={"points": balances.c.points + stmt.excluded.points}),
                    [{"member_id": k, "points": deltas[k]} for k in sorted(deltas)])
        self.metrics.ingested += len(fresh)
        return ids

    def _upsert_directory(self, conn: Connection, payload: dict[str, Any]) -> None:
        for raw in sorted(payload.get("members") or [], key=lambda r: r["id"]):
            row = {k: raw.get(k) for k in MEMBER_FIELDS}
            current = conn.execute(select(members).where(members.c.id == row["id"]).with_for_update()).one_or_none()
            if current is None:
                conn.execute(insert(members).values(**row, rev=self._next_rev(conn)))
            elif any(getattr(current, k) != row[k] for k in ("name", "mobile", "birth_date", "segment")):
                conn.execute(update(members).where(members.c.id == row["id"])
                             .values(**{k: row[k] for k in ("name", "mobile", "birth_date", "segment")},
                                     rev=self._next_rev(conn)))
        for raw in sorted(payload.get("cards") or [], key=lambda r: r["number"]):
            row = {k: raw.get(k) for k in CARD_FIELDS}
            current = conn.execute(select(cards).where(cards.c.number == row["number"]).with_for_update()).one_or_none()
            if current is None:
                conn.execute(insert(cards).values(**row, rev=self._next_rev(conn)))
                continue
            mine, theirs = STATUS_RANK.get(current.status, 0), STATUS_RANK.get(row["status"], 0)
            newer = (row["status_changed_at"] or "") > (current.status_changed_at or "")
            if theirs > mine or (theirs == mine and newer and row["status"] != current.status):
                conn.execute(update(cards).where(cards.c.number == row["number"])
                             .values(status=row["status"], replaced_by=row["replaced_by"],
                                     status_changed_at=row["status_changed_at"], status_reason=row["status_reason"],
                                     rev=self._next_rev(conn)))
        for raw in payload.get("gift_cards") or []:
            row = {k: raw.get(k) for k in GIFT_FIELDS}
            if conn.execute(select(gift_cards.c.number).where(gift_cards.c.number == row["number"])).first() is None:
                conn.execute(insert(gift_cards).values(**row, rev=self._next_rev(conn)))

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
        cursor = int(payload.get("cursor") or 0)
        directory_rev = int(payload.get("directory_rev") or 0)
        at = format_utc(self.clock())
        with self.engine.begin() as conn:
            # this terminal's row first: one request per terminal at a time, and the lock order of ordering.py
            conn.execute(select(terminals.c.id).where(terminals.c.id == terminal).with_for_update())
            self._upsert_directory(conn, payload)
            acked = self._ingest(conn, terminal, batch)
            conn.execute(update(terminals).where(terminals.c.id == terminal).values(last_seen_at=at))
            down, new_cursor = downstream(conn, terminal, cursor, DOWNSTREAM_ENTRIES_MAX)
            directory, new_rev = directory_changes(conn, directory_rev)
            # the table's text only to a terminal that does not hold it yet: a sync every
            # few seconds over a shop's thin line would otherwise carry it every time
            ruleset = conn.execute(select(rulesets.c.version, rulesets.c.hash)
                                   .order_by(rulesets.c.version.desc()).limit(1)).first()
            toml = None
            if ruleset is not None and ruleset.hash != payload.get("ruleset_hash"):
                toml = conn.execute(select(rulesets.c.toml).where(rulesets.c.version == ruleset.version)).scalar()
            touched = {e.get("member_id") for e in batch if e.get("member_id")}
            member_balances = dict(conn.execute(select(balances.c.member_id, balances.c.points)
                                                .where(balances.c.member_id.in_(touched))).all()) if touched else {}
        self.metrics.batches += 1
        return {
            "acked": acked,
            "entries": [{k: getattr(r, k) for k in ENTRY_FIELDS} for r in down],
            "cursor": new_cursor,
            **directory,
            "directory_rev": new_rev,
            "balances": member_balances,
            "ruleset": None if ruleset is None else {"version": ruleset.version, "hash": ruleset.hash,
                                                     **({"toml": toml} if toml is not None else {})},
        }

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

    def reconcile(self) -> list[dict[str, Any]]:
        """Members whose balance across every terminal went below zero (offline
        redemptions at two branches), with the entries that took it there."""
        out = []
        with self.engine.connect() as conn:
            for member_id, points in conn.execute(select(balances.c.member_id, balances.c.points)
                                                  .where(balances.c.points < 0).order_by(balances.c.member_id)):
                rows = conn.execute(select(entries).where(and_(entries.c.member_id == member_id,
                                                               entries.c.points < 0))
                                    .order_by(entries.c.created_at)).all()
                out.append({"member_id": member_id, "balance": int(points),
                            "debits": [{k: getattr(r, k) for k in ("terminal_code", "seq", "kind", "points",
                                                                     "receipt_ref", "created_at")} for r in rows]})
        return out

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
