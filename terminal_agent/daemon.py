"""`loyalty-agent run`: the process beside the till.

It owns the readers and the ledger; the POS, the TUI and the CLI's write commands
are its clients over the local API. On SIGTERM or SIGINT it stops taking new work,
lets the requests in flight commit, closes the readers and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from ledger import backup as backups
from ledger.cardpolicy import CardPolicy
from ledger.errors import BackupError, LedgerError
from sync.client import SyncClient, check_store, load_credentials, run_sync_loop, tls_verify
from sync.errors import NotEnrolled
from terminal_agent.api.app import create_app
from terminal_agent.config import AgentConfig
from terminal_agent.errors import AgentError
from terminal_agent.ledgers import open_ledger
from terminal_agent.logs import setup_logging
from terminal_agent.readers_runtime import start_readers
from terminal_agent.runlock import RunLock
from terminal_agent.runtime import Runtime, api_token, pin_key
from terminal_agent.api.server import LISTEN_BACKLOG_MAX, server_config
from terminal_agent.slip import SlipPrinter

log = logging.getLogger("terminal_agent.daemon")

SHUTDOWN_GRACE_S = 5
BACKUP_RETRY_S = 60.0
CHECKPOINT_INTERVAL_S = 2.0
ARCHIVE_FIRST_DELAY_S = 600.0  # not in the rush of a start: the first run ten minutes in
ARCHIVE_INTERVAL_S = 24 * 3600.0


def warn_ranges(policy: CardPolicy) -> None:
    """A member range holding a bank's prefix (6395 holds Shetab's 639599): said at start,
    since cards printed there would be refused at the till as bank cards."""
    for warning in policy.overlap_warnings():
        log.warning("[cards] %s", warning)


def _sync_client(rt: Runtime) -> SyncClient | None:
    cfg = rt.config
    if not cfg.sync.hub_url:
        return None
    creds = load_credentials(cfg.data_dir)
    if creds is None:
        log.warning("[sync] hub_url is set but this terminal is not enrolled: run `loyalty-agent enroll %s CODE`",
                    cfg.sync.hub_url)
        return None
    try:
        check_store(creds, cfg.agent.store)
    except NotEnrolled as exc:
        log.error("sync is off: %s", exc)
        return None
    verify = tls_verify(cfg.resolve(cfg.sync.ca_bundle) if cfg.sync.ca_bundle else None)
    creds = dataclasses.replace(creds, hub_url=cfg.sync.hub_url.rstrip("/"))  # the config says where the hub is
    client = SyncClient(rt.ledger, creds, batch_size=cfg.sync.batch_size, timeout_s=cfg.sync.timeout_s,
                        verify=verify)
    rt.status_sources["sync_hub"] = client.status
    rt.hub = client
    return client


async def _checkpoint_loop(rt: Runtime, stop: asyncio.Event) -> None:
    """Keep WAL checkpoints (and their fsync) off the till's commits."""
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=CHECKPOINT_INTERVAL_S)
        try:
            await asyncio.to_thread(rt.ledger.checkpoint)
        except LedgerError as exc:  # a busy database: the next round tries again
            log.warning("ledger checkpoint skipped: %s", exc)


async def _backup_loop(rt: Runtime, stop: asyncio.Event) -> None:
    cfg = rt.config
    interval_s = cfg.backup.interval_minutes * 60.0
    last: dict[str, Any] = {"last_backup": None, "last_error": None}
    rt.status_sources["backup"] = lambda: dict(last)
    if interval_s <= 0:
        return
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
            return
        except asyncio.TimeoutError:
            pass
        try:
            info = await asyncio.to_thread(backups.backup_now, cfg.ledger_path, cfg.backup_dir, cfg.backup.keep)
            last["last_backup"] = {"path": str(info.path), "entries": info.entries}
            log.info("backup written: %s (%d entries)", info.path.name, info.entries)
        except BackupError as exc:
            last["last_error"] = str(exc)
            log.error("scheduled backup failed: %s", exc)


async def _archive_loop(rt: Runtime, stop: asyncio.Event, first_delay_s: float = ARCHIVE_FIRST_DELAY_S,
                        interval_s: float = ARCHIVE_INTERVAL_S) -> None:
    """Once a day, off the till's path: archive what the hub holds past the retention
    (ledger.archive), a short transaction per batch, so sales go on in between."""
    last: dict[str, Any] = {"last_archive": None, "last_error": None}
    rt.status_sources["archive"] = lambda: dict(last)
    delay = first_delay_s
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        except asyncio.TimeoutError:
            pass
        delay = interval_s
        try:
            report = await asyncio.to_thread(rt.ledger.archive, retention_days=rt.config.ledger.retention_days,
                                             stop=stop.is_set)
            last["last_archive"] = report.to_json()
            last["last_error"] = None
            log.info("archived %d entries and %d sales made before %s", report.entries, report.sales,
                     report.cutoff[:10])
        except LedgerError as exc:  # a busy or broken ledger: said, and tried again tomorrow
            last["last_error"] = str(exc)
            log.error("scheduled archive failed: %s", exc)


def _bind(cfg: AgentConfig) -> socket.socket:
    """Bind the API socket ourselves: a port in use is a clear error, not uvicorn's exit."""
    family = socket.AF_INET6 if ":" in cfg.api.host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and without it Nagle's algorithm adds 40 ms to every keep-alive request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((cfg.api.host, cfg.api.port))
    except OSError as exc:
        sock.close()
        raise AgentError(f"cannot listen on {cfg.api.host}:{cfg.api.port} ({exc.strerror}); "
                         f"is another program using it? change api.port in {cfg.source}") from None
    sock.listen(LISTEN_BACKLOG_MAX)
    sock.setblocking(False)
    return sock


async def serve(cfg: AgentConfig, *, on_ready: Callable[[Runtime], Awaitable[None] | None] | None = None) -> None:
    """Run until SIGTERM/SIGINT. The caller holds nothing; we take the run lock here."""
    setup_logging(cfg.agent.log_format, cfg.agent.log_level)
    with RunLock(cfg.data_dir):
        ledger = open_ledger(cfg)
        rt = Runtime(config=cfg, ledger=ledger, token=api_token(cfg), pin_key=pin_key(cfg))
        rt.attach_printer(SlipPrinter.from_config(cfg))
        loop = asyncio.get_running_loop()
        rt.bus.bind(loop)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = uvicorn.Server(server_config(
            create_app(rt), host=cfg.api.host, port=cfg.api.port, timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            ssl_certfile=str(cfg.resolve(cfg.api.tls_cert)) if cfg.api.tls_cert else None,
            ssl_keyfile=str(cfg.resolve(cfg.api.tls_key)) if cfg.api.tls_key else None,
        ))
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours, above
        sock = _bind(cfg)
        readers = await start_readers(rt, stop)
        tasks = [asyncio.create_task(_backup_loop(rt, stop), name="backup"),
                 asyncio.create_task(_checkpoint_loop(rt, stop), name="checkpoint"),
                 asyncio.create_task(_archive_loop(rt, stop), name="archive")]
        sync_client = _sync_client(rt)
        if sync_client is not None:
            tasks.append(asyncio.create_task(
                run_sync_loop(sync_client, cfg.sync.interval_s, cfg.sync.backoff_max_s, stop), name="sync"))
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="api")
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()  # re-raise why it could not start
            return
        warn_ranges(rt.ledger.card_policy)
        scheme = "https" if cfg.api.tls_cert else "http"
        log.info("loyalty agent ready: %s://%s:%d (store %s, terminal %s)", scheme, cfg.api.host, cfg.api.port,
                 cfg.agent.store, cfg.agent.terminal)
        if on_ready is not None:
            maybe = on_ready(rt)
            if maybe is not None:
                await maybe
        await stop.wait()
        log.info("stopping: finishing requests in flight")
        rt.stopping = True
        # every event stream ends now (not at the end of the shutdown grace, cancelled
        # with a traceback), so the server's wait for requests in flight is short
        rt.bus.close()
        server.should_exit = True
        await serving
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await readers.close()
        if rt.writer is not None:
            rt.writer.shutdown(wait=True)  # commits in flight finish before the ledger closes
        if sync_client is not None:
            sync_client.close()
        if rt.printer is not None:
            rt.printer.close()
        ledger.close()
        log.info("stopped")
