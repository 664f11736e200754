"""Runs the configured card readers inside the daemon and feeds their events to the bus.

Each reader runs in its own task. A reader whose event stream ends or fails is
reported and started again after a backoff, so one bad reader never stops the
daemon, the API or the other readers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from drivers.base import Reader, next_backoff
from drivers.cards import Deduper
from drivers.events import CardRead, CardRefused, ReaderStatus
from ledger.cardpolicy import CardPolicy
from terminal_agent.runtime import Runtime

log = logging.getLogger("terminal_agent.readers")
READER_RESTART_BACKOFF_MAX_S = 30.0


def build_reader(rc: Any, rt: Runtime, policy: CardPolicy, dedupe: timedelta) -> Reader:
    """A driver object for one [[readers]] entry (drivers are imported only when configured)."""
    deduper = Deduper(dedupe)
    if rc.kind == "simulated":
        from drivers.simulated import SimulatedReader

        source = rt.config.resolve(rc.source) if rc.source else rt.config.data_dir / f"{rc.id}.sock"
        return SimulatedReader(rc.id, source, policy, deduper)
    if rc.kind == "serial":
        from drivers.serial_reader import SerialReader

        return SerialReader(rc, policy, deduper)  # type: ignore[no-any-return]
    if rc.kind == "wedge":
        from drivers.wedge import WedgeReader

        return WedgeReader(rc, policy, deduper)
    from drivers.pcsc_reader import PcscReader

    return PcscReader(rc, policy, deduper)  # type: ignore[no-any-return]


class RunningReaders:
    def __init__(self, tasks: list[asyncio.Task[Any]], readers: list[Reader]) -> None:
        self.tasks = tasks
        self.readers = readers

    async def close(self) -> None:
        for reader in self.readers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.close(), timeout=2.0)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _publish(rt: Runtime, event: Any) -> None:
    rt.bus.publish(event.to_event())
    if isinstance(event, CardRead):
        log.info("card read on %s: %s", event.reader_id, event.masked)
    elif isinstance(event, CardRefused):
        log.warning("card refused on %s: %s", event.reader_id, event.reason)
    elif isinstance(event, ReaderStatus):
        log.info("reader %s %s: %s", event.reader_id, event.state, event.detail)


async def _run(rt: Runtime, slots: list[Reader], i: int, rebuild: Any, stop: asyncio.Event) -> None:
    reader = slots[i]
    backoff = 0.0
    while not stop.is_set():
        try:
            async for event in reader.events():
                backoff = 0.0
                _publish(rt, event)
            detail = "event stream ended"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a driver bug must not take the till down: report and restart
            detail = f"{type(exc).__name__}: {exc}"
            log.exception("reader %s failed", reader.reader_id)
        if stop.is_set():
            break
        _publish(rt, ReaderStatus(reader.reader_id, reader.kind, "error", detail, datetime.now(timezone.utc)))
        with contextlib.suppress(Exception):
            await reader.close()
        backoff = min(next_backoff(backoff) * 2, READER_RESTART_BACKOFF_MAX_S)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        reader = slots[i] = rebuild()  # the slot is what close() will close


async def start_readers(rt: Runtime, stop: asyncio.Event) -> RunningReaders:
    cfg = rt.config
    policy = rt.ledger.card_policy  # the very policy the API and the ledger apply
    dedupe = timedelta(milliseconds=cfg.cards.dedupe_window_ms)
    readers: list[Reader] = []
    tasks: list[asyncio.Task[Any]] = []
    for rc in cfg.readers:
        def rebuild(rc: Any = rc) -> Reader:
            return build_reader(rc, rt, policy, dedupe)

        try:
            reader = rebuild()
        except Exception as exc:  # e.g. pyscard missing: the till still works by typed number
            log.error("reader %s (%s) cannot start: %s", rc.id, rc.kind, exc)
            _publish(rt, ReaderStatus(rc.id, rc.kind, "error", str(exc), datetime.now(timezone.utc)))
            continue
        readers.append(reader)
        tasks.append(asyncio.create_task(_run(rt, readers, len(readers) - 1, rebuild, stop), name=f"reader-{rc.id}"))
    return RunningReaders(tasks, readers)
