"""Runs the configured card readers inside the daemon and feeds their events to the bus."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from terminal_agent.runtime import Runtime

log = logging.getLogger("terminal_agent.readers")


class RunningReaders:
    def __init__(self, tasks: list[asyncio.Task[Any]], readers: list[Any]) -> None:
        self.tasks = tasks
        self.readers = readers

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def start_readers(rt: Runtime, stop: asyncio.Event) -> RunningReaders:
    return RunningReaders([], [])
