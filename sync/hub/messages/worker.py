"""The worker: events into messages (producer.py), and due messages to the gateway.

One round (`Worker.step`):
1. produce: waiting events become messages; once a day, birthdays and expiry warnings.
2. claim: due messages (and `sending` ones whose lease has passed) are locked and
   judged (decency.py) in one transaction: held ones get a later due time,
   suppressed ones their reason, and the rest become `sending` with their attempt
   number and a lease. That is committed before anything is sent.
3. send: each to its gateway, a few at once (`send_threads`), no transaction open.
4. record: sent (with the provider's id), queued again with exponential backoff
   (timeouts, 5xx, 429 with Retry-After honoured), or failed with the reason once
   `attempts_max` tries are spent or the gateway refused for good.

Never twice, as far as it can be: a message is made once per key; a worker killed
between the gateway taking a message and step 4 leaves it `sending`; after
`lease_s` another worker claims it again. A gateway that drops a repeat of the same
message id (Kavenegar's `localid`, an HTTP gateway's `idempotency_header`) makes
the resend harmless; for others the member may get it twice (`unknown_outcome =
"fail"` trades that for never resending: the message is recorded failed instead).
The same holds for a timeout after the request went out and for an answer that
cannot be read. Verification codes sent through Kavenegar's verify/lookup or
SMS.ir's verify API carry no idempotency key.
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, Engine, select

from ledger.timefmt import format_utc, parse_utc
from sync.hub.config import HubConfig
from sync.hub.messages import queue
from sync.hub.messages.decency import Facts, Hold, Policy, Send, Suppress, day_start, judge
from sync.hub.messages.errors import GatewayError
from sync.hub.messages.gateways import Gateway, Sms, build_gateway
from sync.hub.messages.producer import Producer
from sync.hub.schema import message_prefs, messages, verified_mobiles

log = logging.getLogger("sync.hub.messages")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Outcome:
    message_id: int
    attempt: int
    gateway: str
    provider_id: str | None = None
    error: GatewayError | None = None


def backoff(cfg: HubConfig, attempt: int, retry_after_s: float | None, rng: random.Random) -> timedelta:
    """Wait before try `attempt + 1`: backoff_s doubled each try, at most backoff_max_s,
    between half and all of it (jitter, so workers do not retry together); never less
    than a gateway's Retry-After."""
    w = cfg.worker
    wait = min(w.backoff_max_s, w.backoff_s * 2 ** (attempt - 1)) * (0.5 + rng.random() / 2)
    return timedelta(seconds=max(wait, retry_after_s or 0.0))


class Worker:
    def __init__(self, engine: Engine, cfg: HubConfig, gateways: dict[str, Gateway] | None = None,
                 clock: Callable[[], datetime] = _now, rng: random.Random | None = None) -> None:
        self.engine, self.cfg, self.clock = engine, cfg, clock
        self.gateways = gateways if gateways is not None else {
            name: build_gateway(name, cfg.gateways[name], cfg.resolve("."))
            for name in {cfg.messages.gateway, cfg.code_gateway_name()}}
        self.producer = Producer(engine, cfg)
        self.rng = rng or random.Random()
        self.pool = ThreadPoolExecutor(cfg.worker.send_threads, thread_name_prefix="sms-send")
        self.counts: Counter[str] = Counter()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        for gateway in self.gateways.values():
            gateway.close()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one round -----------------------------------------------------------------------

    def step(self) -> int:
        """One round; how much was done (0: nothing waits)."""
        now = self.clock()
        done = self.producer.produce(now)
        done += self.producer.daily(now)
        return done + self.send_due()

    def run(self, stop: threading.Event, until_idle: bool = False) -> None:
        while not stop.is_set():
            try:
                did = self.step()
            except Exception as exc:  # a database that went away: logged, tried again after a pause
                log.error("messages worker round failed: %s: %s", type(exc).__name__, str(exc)[:300])
                did = 0
            if did == 0:
                if until_idle:
                    return
                stop.wait(self.cfg.worker.poll_s)

    # -- claim and judge ------------------------------------------------------------------

    def policy(self, kind: str, store: str | None) -> Policy:
        start, end = self.cfg.quiet(store)
        return Policy(start, end, self.cfg.offset(store), self.cfg.messages.daily_limit, self.cfg.max_age(kind))

    def _facts(self, conn: Connection, rows: list[Any], now: datetime) -> dict[int, Facts]:
        mobiles = sorted({r.mobile for r in rows})
        prefs = {(m, k) for m, k in conn.execute(select(message_prefs.c.mobile, message_prefs.c.kind).where(
            message_prefs.c.mobile.in_(mobiles), message_prefs.c.choice == "out"))}
        verified: set[str] = set(mobiles)
        if self.cfg.verification.required:
            verified = set(conn.execute(select(verified_mobiles.c.mobile).where(
                verified_mobiles.c.mobile.in_(mobiles))).scalars())
        since = min(day_start(now, self.policy(r.kind, r.store)) for r in rows)
        sent = conn.execute(select(messages.c.mobile, messages.c.sent_at).where(
            messages.c.mobile.in_(mobiles), messages.c.status.in_(queue.ACTIVE), messages.c.kind != "code",
            messages.c.sent_at >= format_utc(since), messages.c.id.not_in([r.id for r in rows]))).all()
        out = {}
        for r in rows:
            start = format_utc(day_start(now, self.policy(r.kind, r.store)))
            out[r.id] = Facts(opted_out=(r.mobile, r.kind) in prefs or (r.mobile, "all") in prefs,
                              unverified=r.mobile not in verified,
                              sent_today=sum(1 for m, at in sent if m == r.mobile and at >= start))
        return out

    def claim(self, now: datetime) -> list[tuple[Sms, int, str]]:
        """Lock and judge due messages; the ones to send now, marked `sending`."""
        w = self.cfg.worker
        to_send: list[tuple[Sms, int, str]] = []
        with self.engine.begin() as conn:
            rows = queue.claim(conn, now, w.batch)
            if not rows:
                return []
            facts = self._facts(conn, rows, now)
            codes = self._codes([r for r in rows if r.kind == "code"])
            extra: Counter[str] = Counter()  # sends decided in this batch, per mobile
            for r in rows:
                gateway = self.cfg.code_gateway_name() if r.kind == "code" else self.cfg.messages.gateway
                if r.status == "sending":  # its worker stopped mid-send (killed, or past its lease)
                    if r.attempts >= w.attempts_max:
                        queue.set_state(conn, r.id, now, "failed",
                                        f"outcome unknown: the worker stopped while sending, {r.attempts} times")
                        continue
                    if not self.gateways[gateway].idempotent and w.unknown_outcome == "fail":
                        queue.set_state(conn, r.id, now, "failed", "outcome unknown: the worker stopped while "
                                        "sending; not resent (worker.unknown_outcome = fail)")
                        continue
                f = facts[r.id]
                f = Facts(f.opted_out, f.unverified, f.sent_today + extra[r.mobile])
                decision = judge(r.kind, parse_utc(r.occurred_at), now, self.policy(r.kind, r.store), f)
                if isinstance(decision, Suppress):
                    queue.set_state(conn, r.id, now, "suppressed", decision.reason)
                elif isinstance(decision, Hold):
                    queue.set_state(conn, r.id, now, "queued", decision.reason, due_at=format_utc(decision.until))
                else:
                    assert isinstance(decision, Send)
                    extra[r.mobile] += 1
                    to_send.append((Sms(r.id, r.mobile, r.body, r.kind, codes.get(r.id)), int(r.attempts) + 1,
                                    gateway))
            queue.start_sending(conn, [(sms.id, attempt, gateway) for sms, attempt, gateway in to_send], now,
                                timedelta(seconds=w.lease_s))
        return to_send

    def _codes(self, rows: list[Any]) -> dict[int, str]:
        """The code in each code message, for gateways with code templates: the one run
        of exactly `digits` digits 0-9 in its body (codes are always written 0-9)."""
        pattern = re.compile(rf"(?<![0-9])[0-9]{{{self.cfg.verification.digits}}}(?![0-9])")
        return {r.id: found.group() for r in rows if (found := pattern.search(r.body))}

    # -- send and record --------------------------------------------------------------------

    def _send(self, item: tuple[Sms, int, str]) -> Outcome:
        sms, attempt, gateway = item
        try:
            provider_id = self.gateways[gateway].send(sms)
        except GatewayError as exc:
            return Outcome(sms.id, attempt, gateway, error=exc)
        except Exception as exc:  # a bug in a gateway: recorded, never a lost message
            log.error("gateway %s failed on message %s: %s: %s", gateway, sms.id, type(exc).__name__, exc)
            return Outcome(sms.id, attempt, gateway, error=GatewayError(f"{gateway}: {type(exc).__name__}",
                                                                        retry=True, unknown=True))
        return Outcome(sms.id, attempt, gateway, provider_id=provider_id)

    def send_due(self) -> int:
        now = self.clock()
        items = self.claim(now)
        if not items:
            return 0
        outcomes = list(self.pool.map(self._send, items))
        self.record(outcomes)
        return len(items)

    def record(self, outcomes: list[Outcome]) -> None:
        w = self.cfg.worker
        now = self.clock()
        with self.engine.begin() as conn:
            sent = [(o.message_id, o.attempt, o.gateway, o.provider_id) for o in outcomes if o.error is None]
            kept = queue.record_sent(conn, sent, now)
            self.counts["sent"] += kept
            self.counts["stale"] += len(sent) - kept  # another worker had taken them over (past the lease)
            for o in outcomes:
                if o.error is None:
                    continue
                err = o.error
                if not err.retry:
                    queue.record_failed(conn, o.message_id, o.attempt, f"refused: {err}", now)
                    self.counts["failed"] += 1
                elif o.attempt >= w.attempts_max:
                    queue.record_failed(conn, o.message_id, o.attempt, f"{o.attempt} tries; last: {err}", now)
                    self.counts["failed"] += 1
                elif err.unknown and not self.gateways[o.gateway].idempotent and w.unknown_outcome == "fail":
                    queue.record_failed(conn, o.message_id, o.attempt, f"outcome unknown, not resent: {err}", now)
                    self.counts["failed"] += 1
                else:
                    due = now + backoff(self.cfg, o.attempt, err.retry_after_s, self.rng)
                    queue.record_retry(conn, o.message_id, o.attempt, due, str(err))
                    self.counts["retried"] += 1
