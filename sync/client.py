"""The terminal's side of sync: send the outbox in batches, apply what the hub sends
back (other branches' entries, members, card changes, the loyalty table).

Outbox rows are deleted only in the transaction that applies the hub's answer to
them, so a lost answer means a resend, which the hub acknowledges without counting
twice. The till never waits for any of this: sync runs beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import ssl
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Connection

from ledger.db import Raw
from ledger.service import Ledger
from ledger.timefmt import format_utc, parse_utc
from sync import signing
from sync.errors import HubRefused, HubUnreachable, NotEnrolled
from sync.hub.service import CARD_FIELDS, ENTRY_FIELDS, GIFT_FIELDS, MEMBER_FIELDS, STATUS_RANK

log = logging.getLogger("sync.client")

CREDENTIALS_FILE = "hub.json"
SYNC_ROUNDS_MAX = 50  # requests in one sync_once; the rest waits for the next round
DIRECTORY_MARGIN = timedelta(seconds=5)  # resend a little: a row committed late is not missed
SYNC_PATH = "/v1/sync"


@dataclass(frozen=True)
class Credentials:
    hub_url: str
    terminal: str
    store: str
    secret: str


def tls_verify(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    """How to check the hub's certificate: against the given CA file, else the system's."""
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise HubUnreachable(f"cannot use the CA bundle {ca_bundle}: {exc}") from None


def credentials_path(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_FILE


def load_credentials(data_dir: Path) -> Credentials | None:
    path = credentials_path(data_dir)
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Credentials(data["hub_url"], data["terminal"], data["store"], data["secret"])


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".hub-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def enroll(hub_url: str, code: str, terminal: str, data_dir: Path, *, verify: Any = True,
           timeout_s: float = 10.0) -> Credentials:
    """Trade a one-time enrolment code for this terminal's credentials (stored 0600)."""
    hub_url = hub_url.rstrip("/")
    try:
        r = httpx.post(f"{hub_url}/v1/enroll", json={"code": code, "terminal": terminal}, timeout=timeout_s,
                       verify=verify)
    except httpx.HTTPError as exc:
        raise HubUnreachable(f"cannot reach the hub at {hub_url}: {exc}") from None
    if r.status_code != 200:
        raise HubRefused(_problem_text(r), r.status_code, _problem_code(r))
    data = r.json()
    creds = Credentials(hub_url, terminal, data["store"], data["secret"])
    _write_private(credentials_path(data_dir), json.dumps(creds.__dict__))
    return creds


def _problem_text(r: httpx.Response) -> str:
    try:
        return f"the hub refused ({r.status_code}): {r.json().get('detail', r.text[:200])}"
    except ValueError:
        return f"the hub answered {r.status_code}: {r.text[:200]}"


def _problem_code(r: httpx.Response) -> str:
    try:
        return str(r.json().get("code", ""))
    except ValueError:
        return ""


@dataclass
class SyncReport:
    sent: int = 0
    received: int = 0
    requests: int = 0
    backlog: int = 0


class SyncClient:
    def __init__(self, ledger: Ledger, creds: Credentials, *, batch_size: int = 500, timeout_s: float = 10.0,
                 verify: Any = True, transport: httpx.BaseTransport | None = None,
                 sign_clock: Any = None) -> None:
        if ledger.terminal != creds.terminal:
            raise NotEnrolled(f"this ledger's terminal is {ledger.terminal} but the hub credentials are for "
                              f"{creds.terminal}; enrol this terminal again")
        self.ledger = ledger
        self.creds = creds
        self.batch_size = batch_size
        self.http = httpx.Client(base_url=creds.hub_url, timeout=timeout_s, verify=verify, transport=transport)
        self._batch_end = -1  # outbox id of the last entry _payload took
        self.sign_clock = sign_clock  # () -> epoch seconds for request timestamps; None: time.time()

    def close(self) -> None:
        self.http.close()

    # -- state ------------------------------------------------------------------------

    def _state(self, conn: Connection) -> dict[str, Any]:
        # the row is created by migration 0005: reading it needs no write transaction
        row = Raw(conn).one("SELECT hub_cursor, directory_since, directory_rev, last_success_at, "
                            "last_attempt_at, last_error, ruleset_hash FROM sync_state WHERE id = 1")
        keys = ("hub_cursor", "directory_since", "directory_rev", "last_success_at", "last_attempt_at",
                "last_error", "ruleset_hash")
        return dict(zip(keys, row))

    def status(self) -> dict[str, Any]:
        with self.ledger.read() as conn:
            state = self._state(conn)
            raw = Raw(conn)
            backlog, oldest = raw.one("SELECT count(*), min(created_at) FROM outbox")
        now = self.ledger.clock()
        return {
            "hub_url": self.creds.hub_url, "terminal": self.creds.terminal, "backlog": int(backlog),
            "oldest_unsent_age_s": round((now - parse_utc(oldest)).total_seconds(), 1) if oldest else None,
            "last_success_at": state["last_success_at"], "last_attempt_at": state["last_attempt_at"],
            "last_error": state["last_error"], "ruleset_hash": state["ruleset_hash"],
        }

    # -- one request -----------------------------------------------------------------------

    _ENTRY_COLUMNS = ", ".join(f"e.{c}" for c in ENTRY_FIELDS)

    def _outbox_rows(self, raw: Raw, after_id: int) -> list[tuple[Any, ...]]:
        """(outbox id, entry fields...) of the next batch, in outbox order."""
        return raw.all(f"SELECT o.id, {self._ENTRY_COLUMNS} FROM outbox o JOIN entries e ON e.id = o.entry_id "
                       "WHERE o.id > ? ORDER BY o.id LIMIT ?", (after_id, self.batch_size))

    def _read_ahead(self, after_id: int) -> list[tuple[Any, ...]]:
        """The batch after `after_id`, read while the hub works on the current one."""
        with self.ledger.read() as conn:
            return self._outbox_rows(Raw(conn), after_id)

    def _payload(self, ahead: list[tuple[Any, ...]] | None = None,
                 follows: tuple[int, dict[str, Any], str] | None = None) -> tuple[dict[str, Any], str]:
        """The next request (and in self._batch_end the outbox id of its last entry).

        follows: (outbox id of its last entry, answer, watermark) of a batch the hub has
        answered but whose answer is not applied yet: this batch starts after it, and
        carries the cursor, rev and directory watermark that applying it will store.
        ahead: rows read ahead; used only if they are still exactly what reading now
        would give (the same outbox rows; entries never change)."""
        with self.ledger.write("preparing a sync batch") as conn:
            state = self._state(conn)
            raw = Raw(conn)
            after_id, since = -1, state["directory_since"]
            cursor, directory_rev = state["hub_cursor"], state["directory_rev"]
            if follows is not None:
                after_id, answer, since = follows
                cursor, directory_rev = int(answer.get("cursor") or 0), int(answer.get("directory_rev") or 0)
            rows = None
            if ahead:
                head = raw.all("SELECT id, entry_id FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                               (after_id, self.batch_size))
                if head == [r[:2] for r in ahead]:
                    rows = ahead
            if rows is None:
                rows = self._outbox_rows(raw, after_id)
            watermark = format_utc(self.ledger.clock() - DIRECTORY_MARGIN)
            payload = {
                "entries": [dict(zip(ENTRY_FIELDS, r[1:])) for r in rows],
                "members": [dict(zip(MEMBER_FIELDS, r)) for r in raw.all(
                    f"SELECT {', '.join(MEMBER_FIELDS)} FROM members WHERE enrolled_at > ?", (since,))],
                "cards": [dict(zip(CARD_FIELDS, r)) for r in raw.all(
                    f"SELECT {', '.join(CARD_FIELDS)} FROM cards WHERE issued_at > ? OR status_changed_at > ?",
                    (since, since))],
                "gift_cards": [dict(zip(GIFT_FIELDS, r)) for r in raw.all(
                    f"SELECT {', '.join(GIFT_FIELDS)} FROM gift_cards WHERE issued_at > ?", (since,))],
                "cursor": cursor,
                "directory_rev": directory_rev,
                # the loyalty table this terminal holds: the hub sends its text only if it differs
                "ruleset_hash": state["ruleset_hash"],
            }
        self._batch_end = rows[-1][0] if rows else after_id
        return payload, watermark

    def _send(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            body = orjson.dumps(payload)
        except TypeError:  # a value orjson does not write (an integer beyond 64 bits)
            body = json.dumps(payload, separators=(",", ":")).encode()
        headers = signing.signed_headers(self.creds.terminal, self.creds.secret, "POST", SYNC_PATH, body,
                                         now=None if self.sign_clock is None else self.sign_clock())
        headers["Content-Type"] = "application/json"
        try:
            r = self.http.post(SYNC_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise HubUnreachable(f"the hub at {self.creds.hub_url} did not answer: {type(exc).__name__}") from None
        if r.status_code >= 500:
            raise HubUnreachable(f"the hub answered {r.status_code}; trying again later")
        if r.status_code != 200:
            raise HubRefused(_problem_text(r), r.status_code, _problem_code(r))
        try:
            answer = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            try:
                answer = json.loads(r.content)
            except ValueError:
                raise HubUnreachable("the hub's answer was cut off or is not JSON") from None
        if not isinstance(answer, dict) or "acked" not in answer:
            raise HubUnreachable("the hub's answer is incomplete")
        return answer

    def _apply(self, answer: dict[str, Any], watermark: str) -> int:
        """Everything the answer says, in one transaction; returns foreign entries applied."""
        applied = 0
        with self.ledger.write("applying the hub's answer") as conn:
            raw = Raw(conn)
            acked = [str(x) for x in answer.get("acked") or []]
            if acked:  # one statement for the whole batch (SQLite's json_each), not one per id
                raw.run("DELETE FROM outbox WHERE entry_id IN (SELECT value FROM json_each(?))", (json.dumps(acked),))
            for m in answer.get("members") or []:
                if raw.one_or_none("SELECT 1 FROM members WHERE id = ?", (m["id"],)) is None:
                    if raw.one_or_none("SELECT 1 FROM members WHERE mobile = ?", (m["mobile"],)) is not None:
                        # taken whole, entries and card included; `loyalty-hub reconcile` lists the pair
                        log.warning("member %s from the hub shares a mobile number with another member; "
                                    "they are listed by the hub for a merge", m["id"])
                    referrer = m["referrer_id"]
                    if referrer and raw.one_or_none("SELECT 1 FROM members WHERE id = ?", (referrer,)) is None:
                        referrer = None
                    raw.run(f"INSERT INTO members ({', '.join(MEMBER_FIELDS)}) VALUES "
                            f"({', '.join('?' for _ in MEMBER_FIELDS)})",
                            tuple(referrer if k == "referrer_id" else m[k] for k in MEMBER_FIELDS))
                    raw.run("INSERT INTO balances (member_id, points) VALUES (?, 0)", (m["id"],))
            hub_cards = answer.get("cards") or []
            for c in hub_cards:  # new cards first, so a replacement can point at them
                if raw.one_or_none("SELECT 1 FROM cards WHERE number = ?", (c["number"],)) is None and \
                        raw.one_or_none("SELECT 1 FROM members WHERE id = ?", (c["member_id"],)) is not None:
                    raw.run(f"INSERT INTO cards ({', '.join(CARD_FIELDS)}) VALUES "
                            f"({', '.join('?' for _ in CARD_FIELDS)})",
                            tuple(None if k == "replaced_by" else c[k] for k in CARD_FIELDS))
            for c in hub_cards:
                local = raw.one_or_none("SELECT status, replaced_by FROM cards WHERE number = ?", (c["number"],))
                if local is None:
                    continue
                if STATUS_RANK.get(c["status"], 0) > STATUS_RANK.get(local[0], 0) or \
                        (c["replaced_by"] and local[1] is None and c["status"] == "replaced"):
                    target = c["replaced_by"]
                    if target and raw.one_or_none("SELECT 1 FROM cards WHERE number = ?", (target,)) is None:
                        target = None
                    raw.run("UPDATE cards SET status = ?, replaced_by = ?, status_changed_at = ?, status_reason = ? "
                            "WHERE number = ?", (c["status"], target, c["status_changed_at"], c["status_reason"],
                                                 c["number"]))
            for g in answer.get("gift_cards") or []:
                if raw.one_or_none("SELECT 1 FROM gift_cards WHERE number = ?", (g["number"],)) is None:
                    raw.run("INSERT INTO gift_cards (number, status, balance, issued_at, issued_by) "
                            "VALUES (?, ?, 0, ?, ?)", (g["number"], g["status"], g["issued_at"], g["issued_by"]))
            for e in answer.get("entries") or []:
                if e["terminal_code"] == self.ledger.terminal:
                    continue
                if raw.one_or_none("SELECT 1 FROM entries WHERE id = ?", (e["id"],)) is not None:
                    continue
                raw.run(f"INSERT INTO entries ({', '.join(ENTRY_FIELDS)}) VALUES "
                        f"({', '.join('?' for _ in ENTRY_FIELDS)})", tuple(e[k] for k in ENTRY_FIELDS))
                if e["member_id"] and e["points"]:
                    raw.run("UPDATE balances SET points = points + ? WHERE member_id = ?", (e["points"], e["member_id"]))
                if e["gift_card_number"] and e["amount"] and e["kind"] in ("gift_load", "gift_spend"):
                    raw.run("UPDATE gift_cards SET balance = balance + ? WHERE number = ?",
                            (e["amount"], e["gift_card_number"]))
                applied += 1
            ruleset = answer.get("ruleset")
            state = self._state(conn)
            if ruleset and ruleset.get("hash") != state["ruleset_hash"] and ruleset.get("toml"):
                self._take_ruleset(conn, ruleset)
            raw.run("UPDATE sync_state SET hub_cursor = ?, directory_rev = ?, directory_since = ?, "
                    "last_success_at = ?, last_attempt_at = ?, last_error = NULL WHERE id = 1",
                    (int(answer.get("cursor") or 0), int(answer.get("directory_rev") or 0), watermark,
                     format_utc(self.ledger.clock()), format_utc(self.ledger.clock())))
        return applied

    def _take_ruleset(self, conn: Connection, ruleset: dict[str, Any]) -> None:
        import tomllib

        from ledger.rules import parse_ruleset
        from ledger.rules.errors import RulesError

        try:
            parsed = parse_ruleset(tomllib.loads(ruleset["toml"]), f"hub ruleset version {ruleset['version']}")
        except (RulesError, tomllib.TOMLDecodeError) as exc:
            log.error("the hub's loyalty table was not taken: %s", exc)
            return
        Raw(conn).run("UPDATE sync_state SET ruleset_hash = ?, ruleset_toml = ? WHERE id = 1",
                      (ruleset["hash"], ruleset["toml"]))
        self.ledger.ruleset = parsed
        self.ledger._sync_tiers(conn)
        log.info("loyalty table version %s (%s) taken from the hub", ruleset["version"], parsed.hash[:12])

    def _failed(self, message: str) -> None:
        with self.ledger.write("recording a sync failure") as conn:
            Raw(conn).run("UPDATE sync_state SET last_attempt_at = ?, last_error = ? WHERE id = 1",
                          (format_utc(self.ledger.clock()), message[:500]))

    def sync_once(self) -> SyncReport:
        """Send everything pending and take everything new, in batches.

        A backlog of full batches is pipelined on two worker threads, with requests
        still one at a time and in outbox order: while the hub works on batch N the
        rows of N+1 are read, and N+1 goes out as soon as N is answered, while N's
        answer is applied. Answers are applied strictly in order; if applying one
        fails, nothing after it is applied (what the hub took meanwhile is acknowledged
        again on the resend, counted once)."""
        report = SyncReport()
        pool: ThreadPoolExecutor | None = None
        sending: Future[dict[str, Any]] | None = None  # the request for `payload`, if already sent
        try:
            payload, watermark = self._payload()
            for round_ in range(1, SYNC_ROUNDS_MAX + 1):
                full = len(payload["entries"]) == self.batch_size
                ahead: Future[list[tuple[Any, ...]]] | None = None
                if full and round_ < SYNC_ROUNDS_MAX:
                    pool = pool or ThreadPoolExecutor(2, thread_name_prefix="sync-pipeline")
                    ahead = pool.submit(self._read_ahead, self._batch_end)
                answer = sending.result() if sending is not None else self._send(payload)
                sending = None
                after: tuple[dict[str, Any], str] | None = None
                if ahead is not None and pool is not None:
                    after = self._payload(_result_or_none(ahead), (self._batch_end, answer, watermark))
                    sending = pool.submit(self._send, after[0])
                try:
                    report.received += self._apply(answer, watermark)
                except BaseException:
                    if sending is not None:  # let the request in flight end; its answer is not applied
                        _result_or_none(sending)
                        sending = None
                    raise
                report.sent += len(answer.get("acked") or [])
                report.requests += 1
                if after is not None:
                    payload, watermark = after
                    continue
                more_down = len(answer.get("entries") or []) > 0
                if (not full and not more_down) or round_ == SYNC_ROUNDS_MAX:
                    break
                payload, watermark = self._payload()
        except (HubUnreachable, HubRefused) as exc:
            self._failed(str(exc))
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        with self.ledger.read() as conn:
            report.backlog = int(Raw(conn).scalar("SELECT count(*) FROM outbox"))
        return report


def _result_or_none(future: Future[Any]) -> Any:
    try:
        return future.result()
    except Exception as exc:
        log.debug("sync pipeline: %s", exc)
        return None


def offline(ledger: Ledger, after_s: int) -> bool:
    """Whether the hub has not answered for `after_s` seconds (or never has)."""
    with ledger.read() as conn:
        row = Raw(conn).one_or_none("SELECT last_success_at FROM sync_state WHERE id = 1")
    if row is None or row[0] is None:
        return True
    return ledger.clock() - parse_utc(row[0]) > timedelta(seconds=after_s)


async def run_sync_loop(client: SyncClient, interval_s: float, backoff_max_s: float, stop: asyncio.Event) -> None:
    """Sync every interval; while the hub is unreachable, back off exponentially with
    jitter up to backoff_max_s, and resume by itself when it answers again."""
    failures = 0
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(client.sync_once)
            if failures:
                log.info("the hub answers again: %d entries sent, %d received", report.sent, report.received)
            failures = 0
            wait = interval_s
        except HubUnreachable as exc:
            failures += 1
            wait = min(backoff_max_s, interval_s * 2 ** min(failures, 16)) * random.uniform(0.5, 1.0)
            log.warning("sync: %s; next try in %.0f s", exc, wait)
        except HubRefused as exc:
            failures += 1
            wait = backoff_max_s
            log.error("sync refused: %s", exc)
        except Exception:  # a bug must not stop the till; it is logged and retried
            failures += 1
            wait = backoff_max_s
            log.exception("sync failed")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)
