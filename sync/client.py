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
import math
import os
import random
import ssl
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import Connection

from ledger import hubsync
from ledger.rows import PROTOCOL
from ledger.db import Raw
from ledger.progress import NO_PROGRESS, Progress
from ledger.service import Ledger
from ledger.timefmt import format_utc, parse_utc
from sync import signing
from sync.errors import HubRefused, HubUnreachable, NotEnrolled

log = logging.getLogger("sync.client")

CREDENTIALS_FILE = "hub.json"
SYNC_ROUNDS_MAX = 50  # requests in one sync_once; the rest waits for the next round
# A batch the hub (or a proxy before it: nginx refuses bodies over 1 MB by default)
# refuses as too large (413) is sent again with half its rows, down to one row; the
# rows per request grow back, doubling, after this many answered requests.
ROWS_REGROW_AFTER = 16
SYNC_PATH = "/v1/sync"
LOOKUP_PATH = "/v1/lookup"
LOOKUP_TIMEOUT_S = 2.0  # a lookup happens while a customer waits at the till
HUB_TIME_HEADER = "X-Hub-Time"
HUB_TIME_MAX = 10**11  # seconds since 1970: anything beyond is not a clock
CLOCK_OFFSET_WARN_S = 60.0  # a terminal clock this far from the hub's is worth a word in the log
RECOVERY_LOOKUPS_MAX = 1_000  # members looked up by id in one recovery (the rest at the next sync)
RECOVERY_REQUESTS_MAX = 200  # pages of own entries taken back after a restore, 5,000 each


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
    return str(_problem(r).get("code", ""))


def _problem(r: httpx.Response) -> dict[str, Any]:
    try:
        data = r.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def hub_time(r: httpx.Response) -> float | None:
    """The hub's clock as its answer states it (X-Hub-Time), if it is a sane number."""
    try:
        value = float(r.headers.get(HUB_TIME_HEADER, ""))
    except ValueError:
        return None
    return value if math.isfinite(value) and 0 < value < HUB_TIME_MAX else None


@dataclass
class SyncReport:
    sent: int = 0
    received: int = 0
    requests: int = 0
    backlog: int = 0


def check_store(creds: Credentials, store: str) -> None:
    """The store the config names must be the one the terminal was enrolled for: the
    hub refuses members enrolled for another store."""
    if creds.store != store:
        raise NotEnrolled(f"this terminal was enrolled for store {creds.store!r} but [agent] store is {store!r}; "
                          f"set [agent] store = \"{creds.store}\" or enrol again with a code for {store!r}")


class SyncClient:
    def __init__(self, ledger: Ledger, creds: Credentials, *, batch_size: int = 500, timeout_s: float = 10.0,
                 verify: Any = True, transport: httpx.BaseTransport | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        if ledger.terminal != creds.terminal:
            raise NotEnrolled(f"this ledger's terminal is {ledger.terminal} but the hub credentials are for "
                              f"{creds.terminal}; enrol this terminal again")
        self.ledger = ledger
        self.creds = creds
        self.batch_size = batch_size
        self._rows_cap: int | None = None  # outbox rows per request below batch_size: after a 413, until regrown
        self._answered_at_cap = 0
        self.timeout_s = timeout_s
        self.http = httpx.Client(base_url=creds.hub_url, timeout=timeout_s, verify=verify, transport=transport)
        self._batch_rows = 0  # outbox rows the last _payload took
        self.wall_clock = wall_clock
        # the hub's clock minus ours, measured on every answer: requests are signed in the
        # hub's time, so a terminal whose clock is off still syncs (as cloud SDKs do)
        self.clock_offset_s: float | None = None

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
            "clock_offset_s": None if self.clock_offset_s is None else round(self.clock_offset_s, 3),
        }

    # -- one request -----------------------------------------------------------------------

    def _read_ahead(self, after_id: int) -> list[tuple[Any, ...]]:
        """The batch after `after_id`, read while the hub works on the current one."""
        with self.ledger.read() as conn:
            return hubsync.outbox_rows(Raw(conn), after_id, self._rows_now())

    def _payload(self, ahead: list[tuple[Any, ...]] | None = None,
                 follows: tuple[int, dict[str, Any]] | None = None) -> tuple[dict[str, Any], int]:
        """The next request, and the outbox id of its last row (the batch's end).

        follows: (end of a batch the hub has answered but whose answer is not applied
        yet, that answer): this batch starts after it, and carries the cursor and rev
        that applying it will store. ahead: rows read ahead; used only if they are still
        exactly what reading now would give (the same outbox rows; entries never change)."""
        with self.ledger.write("preparing a sync batch") as conn:
            state = self._state(conn)
            raw = Raw(conn)
            after_id = -1
            cursor, directory_rev = state["hub_cursor"], state["directory_rev"]
            if follows is not None:
                after_id, answer = follows
                cursor, directory_rev = int(answer.get("cursor") or 0), int(answer.get("directory_rev") or 0)
            rows = None
            if ahead and hubsync.outbox_head(raw, after_id, self._rows_now()) == [r[:3] for r in ahead]:
                rows = ahead
            if rows is None:
                rows = hubsync.outbox_rows(raw, after_id, self._rows_now())
            payload = {
                **hubsync.batch_rows(raw, rows),
                "cursor": cursor,
                "directory_rev": directory_rev,
                # the loyalty table this terminal holds: the hub sends its text only if it differs
                "ruleset_hash": state["ruleset_hash"],
                "protocol": PROTOCOL,
            }
        self._batch_rows = len(rows)
        return payload, (rows[-1][0] if rows else after_id)

    def _send(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            body = orjson.dumps(payload)
        except TypeError:  # a value orjson does not write (an integer beyond 64 bits)
            body = json.dumps(payload, separators=(",", ":")).encode()
        r = self._post(body)
        if r.status_code >= 500:
            raise HubUnreachable(f"the hub answered {r.status_code}; trying again later")
        if r.status_code != 200:
            problem = _problem(r)
            raise HubRefused(_problem_text(r), r.status_code, str(problem.get("code", "")), problem)
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

    def _post(self, body: bytes, path: str = SYNC_PATH, timeout_s: float | None = None) -> httpx.Response:
        """POST a signed body; a refusal as stale (our clock, not the request, was wrong)
        is signed again once with the hub's time just learnt from the refusal."""
        for attempt in range(2):
            now = self.wall_clock()
            headers = signing.signed_headers(self.creds.terminal, self.creds.secret, "POST", path, body,
                                             now=now + (self.clock_offset_s or 0.0))
            headers["Content-Type"] = "application/json"
            try:
                r = self.http.post(path, content=body, headers=headers,
                                   **({"timeout": timeout_s} if timeout_s is not None else {}))
            except httpx.HTTPError as exc:
                raise HubUnreachable(f"the hub at {self.creds.hub_url} did not answer: {type(exc).__name__}") from None
            self._measure(r, now, self.wall_clock())
            if attempt == 0 and r.status_code == 401 and _problem_code(r) == "stale" and \
                    self.clock_offset_s is not None:
                continue
            return r
        return r

    def _measure(self, r: httpx.Response, sent: float, received: float) -> None:
        at_hub = hub_time(r)
        if at_hub is None:
            return
        offset = at_hub - (sent + received) / 2  # the hub stamped it about halfway
        if abs(offset) > CLOCK_OFFSET_WARN_S and (self.clock_offset_s is None or
                                                   abs(offset - self.clock_offset_s) > CLOCK_OFFSET_WARN_S):
            log.warning("this terminal's clock is %.0f s %s the hub's; requests are signed in the hub's time "
                        "(set the clock right: entries are stamped with it)", abs(offset),
                        "behind" if offset > 0 else "ahead of")
        self.clock_offset_s = offset

    def _apply(self, answer: dict[str, Any], batch_end: int) -> int:
        """Everything the answer says, in one transaction; returns foreign entries applied.
        batch_end: the outbox id of the request's last row (its directory rows were taken
        with its entries, or the hub would have refused the whole request)."""
        with self.ledger.write("applying the hub's answer") as conn:
            raw = Raw(conn)
            hubsync.acknowledged(raw, [str(x) for x in answer.get("acked") or []], batch_end)
            applied = self._take_down(raw, answer)
            ruleset = answer.get("ruleset")
            state = self._state(conn)
            if ruleset and ruleset.get("hash") != state["ruleset_hash"] and ruleset.get("toml"):
                self._take_ruleset(conn, ruleset)
            raw.run("UPDATE sync_state SET hub_cursor = ?, directory_rev = ?, "
                    "last_success_at = ?, last_attempt_at = ?, last_error = NULL WHERE id = 1",
                    (int(answer.get("cursor") or 0), int(answer.get("directory_rev") or 0),
                     format_utc(self.ledger.clock()), format_utc(self.ledger.clock())))
        return applied

    def _take_down(self, raw: Raw, answer: dict[str, Any]) -> int:
        """The directory and what other branches did, as the answer's protocol says;
        returns how many members' sums (or other terminals' entries) were taken."""
        chain = answer.get("protocol") == PROTOCOL
        if not chain and hubsync.protocol(raw) == PROTOCOL:
            raise HubRefused("the hub speaks only the old sync protocol (every branch's entries) and this ledger "
                             "keeps other branches as sums: upgrade the hub", 0, "hub_too_old")
        if chain and hubsync.protocol(raw) != PROTOCOL:
            removed = hubsync.compact(raw)
            log.info("sync protocol %d: %d entries of other terminals are kept as sums from now on", PROTOCOL,
                     removed)
        hubsync.take_members(raw, answer.get("members") or [])
        policy = self.ledger.card_policy
        hubsync.take_cards(raw, answer.get("cards") or [], policy)
        hubsync.take_gift_cards(raw, answer.get("gift_cards") or [], policy)
        if not chain:
            return hubsync.take_entries(raw, answer.get("entries") or [], self.ledger.terminal, policy)
        hubsync.take_blocklist(raw, answer.get("blocklist") or [], policy)
        hubsync.take_card_stock(raw, answer.get("card_stock") or [], policy)
        hubsync.take_card_stock_required(raw, answer.get("card_stock_required"))
        states = answer.get("member_states") or []
        hubsync.take_member_states(raw, states, {t.id: i for i, t in enumerate(self.ledger.ruleset.tiers)})
        hubsync.take_gift_states(raw, answer.get("gift_states") or [])
        return len(states)

    def _take_ruleset(self, conn: Connection, ruleset: dict[str, Any]) -> None:
        import tomllib

        from ledger.rules.errors import RulesError
        from ledger.rulesource import parse_hub_ruleset

        try:
            parsed = parse_hub_ruleset(ruleset["toml"], f"hub ruleset version {ruleset['version']}")
        except (RulesError, tomllib.TOMLDecodeError) as exc:
            log.error("the hub's loyalty table was not taken: %s", exc)
            return
        if parsed.hash != ruleset.get("hash"):
            log.error("the hub's loyalty table version %s was not taken: its text hashes to %s, not %s",
                      ruleset["version"], parsed.hash[:12], str(ruleset.get("hash"))[:12])
            return
        self.ledger.adopt_ruleset(conn, parsed, ruleset["toml"])
        log.info("loyalty table version %s (%s) taken from the hub", ruleset["version"], parsed.hash[:12])

    def _failed(self, message: str) -> None:
        with self.ledger.write("recording a sync failure") as conn:
            Raw(conn).run("UPDATE sync_state SET last_attempt_at = ?, last_error = ? WHERE id = 1",
                          (format_utc(self.ledger.clock()), message[:500]))

    def lookup(self, query: str, timeout_s: float = LOOKUP_TIMEOUT_S, member_id: str | None = None) -> str:
        """Ask the hub for a member this till does not hold (or holds stale), by card or
        mobile, within a short timeout (a customer is waiting); take them into the ledger
        and return their id. HubUnreachable when the hub does not answer in time,
        HubRefused (404 unknown_member...) when it has no such member."""
        r = self._post(orjson.dumps({"q": query} if member_id is None else {"member_id": member_id}), LOOKUP_PATH,
                       timeout_s)
        if r.status_code >= 500:
            raise HubUnreachable(f"the hub answered {r.status_code}")
        if r.status_code != 200:
            problem = _problem(r)
            raise HubRefused(_problem_text(r), r.status_code, str(problem.get("code", "")), problem)
        try:
            answer = orjson.loads(r.content)
            member, member_cards, state = answer["member"], answer["cards"], answer["state"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise HubUnreachable("the hub's answer to a lookup is incomplete") from None
        with self.ledger.write("taking a member from the hub") as conn:
            raw = Raw(conn)
            hubsync.take_members(raw, [member])
            hubsync.take_cards(raw, member_cards, self.ledger.card_policy)
            hubsync.take_member_states(raw, [state], {t.id: i for i, t in enumerate(self.ledger.ruleset.tiers)})
        return str(member["id"])

    def _recover(self, hub_last: Any) -> bool:
        """The hub holds entries of this terminal that this ledger does not (hub_last,
        the hub's last seq of it, is beyond what this ledger knows the hub has): it was
        restored from an older backup. Take them back from the hub and renumber what the
        till wrote since after them (ledger.hubsync.take_own_entries); then sync goes on.
        False if that is not what happened (the hub is behind us, or said nothing)."""
        if type(hub_last) is not int:
            return False
        with self.ledger.read() as conn:
            after = hubsync.acked_seq(Raw(conn), self.ledger.terminal)
        if hub_last <= after:
            return False  # the hub lacks entries we hold: an operator's matter (a hub restored)
        log.warning("the hub holds this terminal's entries up to seq %d, this ledger up to %d (restored from an "
                    "older backup?): taking them back from the hub", hub_last, after)
        theirs: list[dict[str, Any]] = []
        for _ in range(RECOVERY_REQUESTS_MAX):
            with self.ledger.read() as conn:
                state = self._state(conn)
            answer = self._send({"entries": [], "members": [], "cards": [], "gift_cards": [],
                                 "cursor": state["hub_cursor"], "directory_rev": state["directory_rev"],
                                 "ruleset_hash": state["ruleset_hash"], "own_after": after + len(theirs),
                                 "protocol": PROTOCOL})
            page = answer.get("own_entries") or []
            with self.ledger.write("taking the directory from the hub") as conn:
                raw = Raw(conn)  # members and cards the restore lost come back first: the entries name them
                # the directory, and sums (absolute: taking them early is safe); not other
                # terminals' entries, whose cursor is not moved here
                self._take_down(raw, {**answer, "entries": []})
                raw.run("UPDATE sync_state SET directory_rev = ? WHERE id = 1",
                        (int(answer.get("directory_rev") or 0),))
            theirs += page
            if not page or theirs[-1]["seq"] >= hub_last:
                break
        with self.ledger.read() as conn:  # members of those entries the restore lost and no directory brings
            held = set(Raw(conn).column("SELECT id FROM members"))
        for member_id in sorted({e["member_id"] for e in theirs if e["member_id"]} - held)[:RECOVERY_LOOKUPS_MAX]:
            self.lookup("", self.timeout_s, member_id=member_id)
        with self.ledger.write("taking this terminal's entries back from the hub") as conn:
            taken, renumbered = hubsync.take_own_entries(Raw(conn), self.ledger.terminal, after, theirs)
        log.warning("took %d of this terminal's entries back from the hub; %d written here since were renumbered "
                    "after them", taken, renumbered)
        return True

    def unsent_entries(self) -> int:
        """Entries waiting in the outbox (what `sync_once` reports progress in)."""
        with self.ledger.read() as conn:
            return int(Raw(conn).scalar("SELECT count(*) FROM outbox WHERE kind = 'entry'"))

    def sync_once(self, recovering: bool = False, progress: Progress = NO_PROGRESS) -> SyncReport:
        """Send everything pending and take everything new, in batches.

        A backlog of full batches is pipelined on two worker threads, with requests
        still one at a time and in outbox order: while the hub works on batch N the
        rows of N+1 are read, and N+1 goes out as soon as N is answered, while N's
        answer is applied. Answers are applied strictly in order; if applying one
        fails, nothing after it is applied (what the hub took meanwhile is acknowledged
        again on the resend, counted once). progress: told the entries the hub acknowledges."""
        report = SyncReport()
        hub_last_seq: Any = None  # what the last answer says the hub holds of this terminal
        pool: ThreadPoolExecutor | None = None
        sending: Future[dict[str, Any]] | None = None  # the request for `payload`, if already sent
        try:
            payload, batch_end = self._payload()
            for round_ in range(1, SYNC_ROUNDS_MAX + 1):
                full = self._batch_rows == self._rows_now()
                ahead: Future[list[tuple[Any, ...]]] | None = None
                if full and round_ < SYNC_ROUNDS_MAX:
                    pool = pool or ThreadPoolExecutor(2, thread_name_prefix="sync-pipeline")
                    ahead = pool.submit(self._read_ahead, batch_end)
                answer = sending.result() if sending is not None else self._send(payload)
                sending = None
                after: tuple[dict[str, Any], int] | None = None
                if ahead is not None and pool is not None:
                    after = self._payload(_result_or_none(ahead), (batch_end, answer))
                    sending = pool.submit(self._send, after[0])
                try:
                    report.received += self._apply(answer, batch_end)
                except BaseException:
                    if sending is not None:  # let the request in flight end; its answer is not applied
                        _result_or_none(sending)
                        sending = None
                    raise
                report.sent += len(answer.get("acked") or [])
                progress.advance(len(answer.get("acked") or []))
                report.requests += 1
                self._regrow()
                hub_last_seq = answer.get("last_seq")
                if after is not None:
                    payload, batch_end = after
                    continue
                more_down = bool(answer.get("entries") or answer.get("more"))
                if (not full and not more_down) or round_ == SYNC_ROUNDS_MAX:
                    break
                payload, batch_end = self._payload()
        except HubRefused as exc:
            if pool is not None:
                pool.shutdown(wait=True)
                pool = None
            # a restored till: the hub holds more of its chain (a gap), or holds its entries
            # at other seqs (renumbered after an earlier restore, then lost to this one)
            if exc.problem in ("sequence_gap", "entry_conflict") and not recovering and \
                    self._recover(exc.fields.get("last_seq")):
                return self.sync_once(recovering=True, progress=progress)
            if exc.status == 413 and self._shrink():  # what was answered before it stays counted
                rest = self.sync_once(recovering=recovering, progress=progress)
                rest.sent, rest.received = rest.sent + report.sent, rest.received + report.received
                rest.requests += report.requests
                return rest
            if exc.status == 413:
                exc = HubRefused(f"{exc} (the hub refuses even one outbox row as too large: raise the body limit "
                                 "of the hub, or of the proxy before it)", exc.status, exc.problem, exc.fields)
            self._failed(str(exc))
            raise exc from None
        except HubUnreachable as exc:
            self._failed(str(exc))
            raise
        finally:
            if pool is not None:
                pool.shutdown(wait=True)
        # a restore with nothing sent since meets no sequence_gap: every answer says what
        # the hub holds of this terminal, and more than this ledger has means the same
        if not recovering and self._recover(hub_last_seq):
            return self.sync_once(recovering=True, progress=progress)
        with self.ledger.read() as conn:
            report.backlog = int(Raw(conn).scalar("SELECT count(*) FROM outbox"))
        return report


    def _shrink(self) -> bool:
        """Half the rows of the batch refused as too large, for the requests after it;
        False when it held one row (the refusal then stands). Each halving sends the
        refused rows again, so a 5,000-row batch is retried at most 13 times."""
        rows = min(self._rows_now(), self._batch_rows)
        if rows <= 1:
            return False
        self._rows_cap, self._answered_at_cap = rows // 2, 0
        log.warning("the hub refused a batch of %d outbox rows as too large; sending %d at a time", rows,
                    self._rows_cap)
        return True

    def _rows_now(self) -> int:
        return self.batch_size if self._rows_cap is None else min(self._rows_cap, self.batch_size)

    def _regrow(self) -> None:
        if self._rows_cap is None:
            return
        self._answered_at_cap += 1
        if self._answered_at_cap >= ROWS_REGROW_AFTER:
            grown = self._rows_cap * 2
            self._rows_cap, self._answered_at_cap = (None if grown >= self.batch_size else grown), 0


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
