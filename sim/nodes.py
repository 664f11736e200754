"""The simulated machines: the hub (a real Hub on a SQLite file or PostgreSQL, reached
through its FastAPI app or directly) and the terminals (a real Ledger on a real SQLite
file with a real SyncClient whose transport is the simulated network). A crash closes
a node's engine abruptly and leaves its files; a restart opens them again the way the
daemon and `loyalty-hub serve` do."""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.from_thread
import httpx
from sqlalchemy import event

from ledger import db as ledger_db
from ledger.service import Ledger
from sync.client import Credentials, SyncClient
from sync.errors import HubRefused
from sync.hub.app import create_hub_app
from sync.hub.db import create_hub_engine, upgrade
from sync.hub.service import Hub, dump_answer
from sim.clock import NodeClock
from sim.net import Link

if TYPE_CHECKING:
    from sim.core import Simulation

HUB_URL = "http://hub.sim"

_TEMPLATES: dict[str, Path] = {}  # "ledger" / "hub" -> a file migrated to the newest schema


def new_file(kind: str, path: Path) -> None:
    """Put a new, empty node file at `path`: a copy of a file the project's own
    migrations (ledger.db.upgrade, sync.hub.db.upgrade) brought to the newest schema,
    once per process. Migrating a new SQLite file costs about 0.3 s, a dozen times a
    seed; a copy costs a millisecond, and Ledger.open / `loyalty-hub serve` then find
    it at head, as they find any file they made before."""
    template = _TEMPLATES.get(kind)
    if template is None or not template.exists():
        folder = Path(tempfile.mkdtemp(prefix="sim-templates-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / f"{kind}.sqlite3"
        engine = (ledger_db.create_ledger_engine(template) if kind == "ledger"
                  else create_hub_engine(f"sqlite:///{template}"))
        if kind == "ledger":
            ledger_db.upgrade(engine)
        else:
            upgrade(engine)
        engine.dispose()
        con = sqlite3.connect(template)  # everything in the main file: the copy needs no -wal
        try:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
        _TEMPLATES[kind] = template
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)


class SimCrash(Exception):
    """The process died here: raised inside a transaction, so nothing of it commits."""


class HubNode:
    def __init__(self, sim: "Simulation", url: str, via: str) -> None:
        self.sim = sim
        self.url = url
        self.via = via  # "app": through the FastAPI app (ASGI); "hub": Hub.authenticate + Hub.sync_body
        self.clock = NodeClock(sim.world)
        self.up = False
        self.engine: Any = None
        self.hub: Hub | None = None
        self.app: Any = None
        self.down_until = -1
        self._crash_in: int | None = None

    def start(self) -> None:
        if self.engine is None:
            # one engine for the node's life: a crash disposes of its connections (what a
            # dying process loses), and the engine keeps only its cache of compiled
            # statements, which a restarted process would compile again to the same text
            self.engine = create_hub_engine(self.url)
            event.listen(self.engine, "before_cursor_execute", self._statement)
        upgrade(self.engine)  # as `loyalty-hub serve` does on start
        self.hub = Hub(self.engine, clock=self.clock, auth_clock=self.clock.epoch)
        self.app = None
        if self.via == "app":
            self.app = create_hub_app(self.hub)
            # one event loop for the app's life, in its own thread (as a server has one)
            self._portal_cm = anyio.from_thread.start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
            self._transport = httpx.ASGITransport(app=self.app)
        self.up = True

    def _stop_app(self) -> None:
        if self.app is not None:
            self._portal_cm.__exit__(None, None, None)
            self.app = None

    def crash(self) -> None:
        self.up = False
        self.hub = None
        self._stop_app()
        self.engine.dispose()

    def close(self) -> None:
        self._stop_app()
        if self.engine is not None:
            self.engine.dispose()

    def _statement(self, *_: Any) -> None:
        if self._crash_in is not None:
            self._crash_in -= 1
            if self._crash_in <= 0:
                self._crash_in = None
                raise SimCrash("the hub died in the middle of a transaction")

    def handle(self, request: httpx.Request, terminal: str) -> httpx.Response:
        sim = self.sim
        if not self.up:
            raise httpx.ConnectError("sim: the hub is down", request=request)
        if sim.rng.random() < sim.p_hub_crash_in_request:
            self._crash_in = sim.rng.randint(1, 24)
        try:
            return self._call_app(request) if self.app is not None else self._call_hub(request)
        except SimCrash:
            sim.log(f"hub: dies in the middle of a request from {terminal}; restarts at the next step")
            self.crash()
            self.down_until = sim.step + 1
            raise httpx.RemoteProtocolError("sim: the hub died", request=request) from None
        finally:
            self._crash_in = None

    def _call_app(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            answer = await self._transport.handle_async_request(request)
            content = await answer.aread()
            return httpx.Response(answer.status_code, headers=answer.headers, content=content, request=request)

        return self._portal.call(call)

    def _call_hub(self, request: httpx.Request) -> httpx.Response:
        """What app.py's /v1/sync does, without HTTP: authenticate, sync, answer."""
        assert self.hub is not None
        body = request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            terminal = self.hub.authenticate(headers, request.method, request.url.path, body)
            content = dump_answer(self.hub.sync_body(terminal, body))
        except HubRefused as exc:
            return httpx.Response(exc.status or 400, json={"code": exc.problem, "detail": str(exc)}, request=request)
        return httpx.Response(200, content=content, headers={"content-type": "application/json"}, request=request)


class TerminalNode:
    def __init__(self, sim: "Simulation", code: str, store: str, folder: Path, batch_size: int) -> None:
        self.sim = sim
        self.code = code
        self.store = store
        self.folder = folder
        self.path = folder / "ledger.sqlite3"
        self.backups = folder / "backups"
        self.batch_size = batch_size
        self.clock = NodeClock(sim.world)
        self.link = Link(sim, code)
        self.creds: Credentials | None = None
        self.ledger: Ledger | None = None
        self.client: SyncClient | None = None
        self.engine: Any = None  # kept across crashes for its compiled statements only (see HubNode.start)
        self._reader: sqlite3.Connection | None = None  # the workload's and the auditor's reads
        self.up = False
        self.down_until = -1
        self.restarts = 0
        self._crash_after: int | None = None  # armed: die at this SQL statement of the operation
        self._statements = 0
        self.crash_fired = False
        self.seq_at_crash: int | None = None  # the seq before an operation it died in

    def start(self) -> None:
        # as the daemon opens it (Ledger.open: engine, upgrade, Ledger): the configured
        # table (here the built-in one), its own clock
        if self.engine is None:
            self.engine = ledger_db.create_ledger_engine(self.path)
            event.listen(self.engine, "checkout", self._checkout)
        ledger_db.upgrade(self.engine)
        self.ledger = Ledger(self.engine, store=self.store, terminal=self.code, clock=self.clock)
        self._reader = sqlite3.connect(self.path, isolation_level=None)  # autocommit: each read sees what committed
        assert self.creds is not None
        self.client = SyncClient(self.ledger, self.creds, batch_size=self.batch_size, transport=self.link,
                                 wall_clock=self.clock.epoch)
        self.up = True

    def crash(self) -> None:
        """Dies: connections dropped, nothing flushed beyond what was committed."""
        self.up = False
        if self.client is not None:
            self.client.close()
        if self.ledger is not None:
            self.ledger.engine.dispose()
        if self._reader is not None:
            self._reader.close()
        self.client = None
        self.ledger = None
        self._reader = None

    # -- dying in the middle of an operation -------------------------------------------

    def arm_crash(self, statements: int) -> None:
        """Die at the start of the operation's n-th SQL statement (BEGIN and COMMIT count):
        counted by statement, not by SQLite VM steps, since a fresh connection's schema
        load would make those differ from run to run."""
        self._crash_after = statements
        self._statements = 0
        self.crash_fired = False

    def disarm(self) -> None:
        self._crash_after = None

    def _checkout(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        if self._crash_after is None:
            dbapi_conn.set_trace_callback(None)
            dbapi_conn.set_progress_handler(None, 0)
            return

        def count(sql: str) -> None:
            if "sqlite_master" not in sql and "sqlite_schema" not in sql:
                self._statements += 1

        def die() -> int:
            if self.crash_fired or self._crash_after is None or self._statements < self._crash_after:
                return 0
            self.crash_fired = True
            return 1  # SQLite abandons the statement; the transaction never commits

        dbapi_conn.set_trace_callback(count)
        dbapi_conn.set_progress_handler(die, 1)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A read of this terminal's file, for the workload's choices and the auditor."""
        assert self._reader is not None
        return self._reader.execute(query, params).fetchall()
