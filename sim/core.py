"""The simulation: world setup, the step loop, healing and quiescence, the result."""

from __future__ import annotations

import logging
import random
import shutil
import sqlite3
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sim.audit import Auditor, Violation
from sim.clock import WorldTime
from sim.defects import KNOWN_DEFECTS
from sim.nodes import HUB_URL, HubNode, TerminalNode, new_file
from sim.workload import Workload
from sync.client import Credentials
from sync.errors import HubRefused, HubUnreachable

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HISTORY = 30  # events shown with a violation
QUIESCE_ROUNDS_MAX = 60
P_RTC_RESET = 0.15  # a terminal that restarts with its clock behind


def default_tmp() -> Path | None:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else None  # SQLite on tmpfs: crashes are simulated, fsync buys nothing here


@dataclass
class SimResult:
    seed: int
    steps: int
    terminals: int
    stores: int
    ok: bool
    violation: Violation | None = None
    known_seen: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    seconds: float = 0.0
    folder: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def replay_command(self) -> str:
        o = self.options
        extra = "".join(f" --allow {a}" for a in o.get("allow", ()))
        extra += " --pg" if o.get("pg") else ""
        extra += f" --via {o['via']}" if o.get("via", "app") != "app" else ""
        return (f"python -m sim --seed {self.seed} --steps {self.steps} --terminals {self.terminals} "
                f"--stores {self.stores}{extra}")

    def report(self) -> str:
        if self.ok:
            seen = ", ".join(f"{d}@{s}" for d, (s, _, _) in sorted(self.known_seen.items()))
            return (f"seed {self.seed}: ok ({self.steps} steps, {self.terminals} terminals, {self.stores} stores, "
                    f"{self.seconds:.1f}s){' known defects seen: ' + seen if seen else ''}")
        v = self.violation
        assert v is not None
        step = "final audit" if v.step > self.steps else f"step {v.step}"
        lines = [f"VIOLATION seed {self.seed} at {step}: {v.invariant}", f"  {v.message}"]
        if v.defect:
            d = KNOWN_DEFECTS.get(v.defect)
            lines.append(f"  known defect {v.defect}{': ' + d.diagnosis if d else ''} "
                         f"(--allow {v.defect} goes past it)")
        if self.error:
            lines.append(self.error.rstrip())
        lines.append(f"  last {min(HISTORY, len(self.events))} events:")
        lines += [f"    {e}" for e in self.events[-HISTORY:]]
        lines.append(f"  files kept in {self.folder}")
        lines.append(f"  replay: {self.replay_command()}")
        return "\n".join(lines)


class Simulation:
    def __init__(self, seed: int, steps: int, *, terminals: int | None = None, stores: int | None = None,
                 pg: bool = False, allow: tuple[str, ...] = (), via: str = "app", tmp: Path | None = None,
                 corrupt_at: int | None = None, keep: bool = False) -> None:
        self.seed = seed
        self.steps = steps
        self.rng = random.Random(seed)
        n = self.rng.randint(2, 8)  # drawn even when given, so that giving it changes nothing else
        s = self.rng.randint(2, min(4, n))
        self.n_terminals = terminals or n
        self.n_stores = min(stores or s, self.n_terminals)
        start = datetime(2026, 2, 20, 6, 0, tzinfo=timezone.utc) + timedelta(
            days=self.rng.randint(0, 150), minutes=self.rng.randint(0, 900))
        self.world = WorldTime(start)
        self.step = 0
        self.events: list[str] = []
        self.pg = pg
        self.allow = allow
        self.via = via
        self.corrupt_at = corrupt_at
        self.keep = keep
        self.p_hub_crash_in_request = 0.01
        self.healed = False  # from the heal on: no more faults or crashes
        self.folder = Path(tempfile.mkdtemp(prefix=f"sim-{seed}-", dir=tmp or default_tmp()))
        self.auditor = Auditor(self, allow)
        self.workload = Workload(self)
        self.terminals: list[TerminalNode] = []
        self.hub: HubNode = None  # type: ignore[assignment]
        self._pg_schema: str | None = None

    # -- the event log --------------------------------------------------------------------------------

    def log(self, text: str) -> None:
        self.events.append(f"{self.step:>4} {text.replace(str(self.folder), '<run>')}")

    def terminal(self, code: str) -> TerminalNode:
        return next(t for t in self.terminals if t.code == code)

    # -- setting up and tearing down -------------------------------------------------------------------

    def _hub_url(self) -> str:
        if not self.pg:
            return f"sqlite:///{self.folder / 'hub.sqlite3'}"
        from sqlalchemy import create_engine, text

        self._pg_schema = f"sim_{self.seed}_{uuid.uuid4().hex[:8]}"  # a fresh schema; its name steers nothing
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self._pg_schema}"'))
        admin.dispose()
        return f"{PG_URL}?options=-csearch_path%3D{self._pg_schema}"

    def setup(self) -> None:
        if not self.pg:
            new_file("hub", self.folder / "hub.sqlite3")
        self.hub = HubNode(self, self._hub_url(), self.via)
        self.hub.start()
        for i in range(self.n_terminals):
            code, store = f"T{i + 1}", f"S{i % self.n_stores + 1}"
            t = TerminalNode(self, code, store, self.folder / code, self.rng.choice((5, 50, 500)))
            new_file("ledger", t.path)
            assert self.hub.hub is not None
            enrolment = self.hub.hub.new_enrolment_code(store)
            got_store, secret = self.hub.hub.enroll(enrolment, code)
            t.creds = Credentials(HUB_URL, code, got_store, secret)
            t.clock.set_offset(timedelta(seconds=self.rng.randint(-60, 60)))
            self.start_terminal(t)
            self.terminals.append(t)
        self.log(f"world: {self.n_terminals} terminals in {self.n_stores} stores, hub on "
                 f"{'PostgreSQL' if self.pg else 'SQLite'} via {self.via}, start {self.world.now:%Y-%m-%d %H:%M} UTC, "
                 f"batches {[t.batch_size for t in self.terminals]}")

    def close(self, ok: bool) -> None:
        for t in self.terminals:
            if t.up:
                t.crash()
        if self.hub is not None:
            self.hub.close()
        if self._pg_schema:
            from sqlalchemy import create_engine, text

            admin = create_engine(PG_URL)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self._pg_schema}" CASCADE'))
            admin.dispose()
        if ok and not self.keep:
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- nodes dying and coming back -------------------------------------------------------------------

    def start_terminal(self, t: TerminalNode) -> None:
        t.start()

    def crash_terminal(self, t: TerminalNode, mid_operation: bool = False, quiet: bool = False) -> None:
        t.crash()
        if quiet:
            return
        t.down_until = self.step + self.rng.randint(0, 4)
        self.log(f"{t.code}: dies{' in the middle of the operation' if mid_operation else ''}; "
                 f"back at step {t.down_until}")

    def after_crash_in_operation(self, t: TerminalNode) -> None:
        """An operation cut off before its commit left nothing: the seq is where it was
        and the file verifies."""
        if t.seq_at_crash is None:
            return
        before, t.seq_at_crash = t.seq_at_crash, None
        now = self.workload.seq_of(t)
        self.log(f"{t.code}: the interrupted operation left {now - before} entries")
        if now != before:
            self.auditor.violation("interrupted_leaves_nothing", f"{t.code}: an operation interrupted before its "
                                   f"commit left {now - before} entries")
        self.auditor.verify_terminal(t)

    def restart_due(self) -> None:
        for t in self.terminals:
            if not t.up and self.step >= t.down_until:
                t.restarts += 1
                rtc = ""
                if self.rng.random() < P_RTC_RESET:  # the real-time clock lost its time with the power
                    back = timedelta(hours=self.rng.choice((1, 26, 24 * 30, 24 * 365)))
                    t.clock.step(-back)
                    rtc = f" with its clock {back} behind until NTP corrects it"
                self.start_terminal(t)
                self.log(f"{t.code}: restarts{rtc}")
                self.after_crash_in_operation(t)
        if not self.hub.up and self.step >= self.hub.down_until:
            self.hub.start()
            self.log("hub: restarts")

    # -- the run ----------------------------------------------------------------------------------------

    def corrupt(self) -> None:
        """Self-test of the auditor: change a balance behind the ledger's back."""
        t = next((t for t in self.terminals if t.up and t.sql("SELECT 1 FROM balances LIMIT 1")), self.terminals[0])
        con = sqlite3.connect(t.path)
        try:
            con.execute("UPDATE balances SET points = points + 7 WHERE member_id = "
                        "(SELECT member_id FROM balances ORDER BY member_id LIMIT 1)")
            changed = con.total_changes
            con.commit()
        finally:
            con.close()
        self.log(f"self-test: {t.code}'s file edited behind the ledger ({changed} balance rows)")

    def heal(self) -> None:
        """The network mends, clocks agree, every node runs again."""
        self.log("heal: links mended, clocks corrected, nodes restarted")
        self.p_hub_crash_in_request = 0.0
        self.healed = True
        for t in self.terminals:
            t.link.fault_rate = 0.0
            t.link.partitioned_until = -1
        if not self.hub.up:
            self.hub.start()
        for t in self.terminals:
            t.link.deliver_parked(everything=True)
        self.hub.clock.set_offset(timedelta(0))
        for t in self.terminals:
            t.clock.set_offset(timedelta(0))
            if not t.up:
                t.restarts += 1
                self.start_terminal(t)
                self.after_crash_in_operation(t)
        self.workload.pending.clear()

    def quiesce(self) -> None:
        """Sync every terminal, round after round, until two rounds in a row move nothing."""
        quiet_rounds = 0
        for round_ in range(1, QUIESCE_ROUNDS_MAX + 1):
            self.world.advance(timedelta(seconds=30))
            quiet = True
            for t in self.terminals:
                if t.code in self.auditor.model.stuck:
                    continue
                assert t.client is not None
                try:
                    report = t.client.sync_once()
                except HubRefused as exc:
                    self.log(f"{t.code} sync (quiescence) -> refused {exc.status} {exc.problem}")
                    self.auditor.after_sync_refused(t, exc.problem or "", str(exc))
                    continue
                except HubUnreachable as exc:
                    self.auditor.violation("sync_quiesces", f"{t.code}: the hub is unreachable on a healed "
                                           f"network: {exc}")
                    continue
                if report.sent or report.received or report.backlog:
                    quiet = False
                self.auditor.after_sync_ok(t)
            quiet_rounds = quiet_rounds + 1 if quiet else 0
            if quiet_rounds >= 2 and round_ >= 3:
                self.log(f"quiescence after {round_} rounds")
                return
        self.auditor.violation("sync_quiesces", f"still moving after {QUIESCE_ROUNDS_MAX} rounds of sync")

    def run(self) -> SimResult:
        began = time.perf_counter()
        result = SimResult(self.seed, self.steps, self.n_terminals, self.n_stores, ok=False, folder=str(self.folder),
                           options={"allow": self.allow, "pg": self.pg, "via": self.via})
        try:
            self.setup()
            for self.step in range(1, self.steps + 1):
                self.restart_due()
                for t in self.terminals:
                    if self.hub.up:
                        t.link.deliver_parked()
                touched = self.workload.step()
                if self.corrupt_at == self.step:
                    self.corrupt()
                self.auditor.after_step(touched)
            self.step = self.steps + 1
            self.heal()
            self.quiesce()
            self.auditor.final()
            result.ok = True
        except Violation as v:
            result.violation = v
        except Exception as exc:  # the project (or the simulator) raised what it should not
            result.violation = Violation("unclean_error", f"{type(exc).__name__}: {str(exc)[:300]}", self.step)
            result.error = "  " + "  ".join(traceback.format_exc(limit=8).splitlines(True)[-16:])
        finally:
            result.known_seen = dict(self.auditor.model.known_seen)
            result.events = list(self.events)
            result.seconds = time.perf_counter() - began
            self.close(result.ok)
        return result


def run_seed(seed: int, steps: int, **options: Any) -> SimResult:
    # The code under test logs its warnings; the event log says what happened. The
    # process's logging is put back afterwards: a test run goes on after a seed.
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        return Simulation(seed, steps, **options).run()
    finally:
        logging.disable(before)
