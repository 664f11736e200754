"""Progress of long work (exports, imports, card batches, a sync backlog, backups).

Work that takes more than a few seconds takes a ``Progress`` and calls ``advance``
as it goes; it never knows where the progress is shown. ``progress_for`` picks the
shape: a bar with counts and time left (rich) when the stream is a terminal, and
one summary line at the end when it is not, so a cron job's log stays clean.
``NO_PROGRESS`` is for callers (tests, the daemon) that want neither.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from collections.abc import Callable
from typing import IO, Protocol


class Progress(Protocol):
    """What long work reports to. ``total`` may be unknown (None) until it is."""

    def start(self, total: int | None = None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def set_total(self, total: int) -> None: ...

    def finish(self, summary: str = "") -> None: ...


class _Silent:
    def start(self, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass

    def finish(self, summary: str = "") -> None:
        pass


NO_PROGRESS: Progress = _Silent()

# work in several stages (check, then write) takes a factory and shows one bar a stage
ProgressFactory = Callable[[str], Progress]


def no_progress(label: str) -> Progress:
    """The factory that shows nothing."""
    return NO_PROGRESS


class SummaryLine:
    """Not a terminal: nothing while the work runs, one line when it ends."""

    def __init__(self, label: str, stream: IO[str]) -> None:
        self.label = label
        self.stream = stream
        self.done = 0
        self.total: int | None = None
        self.began = time.monotonic()

    def start(self, total: int | None = None) -> None:
        self.total = total
        self.began = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n

    def set_total(self, total: int) -> None:
        self.total = total

    def finish(self, summary: str = "") -> None:
        seconds = time.monotonic() - self.began
        tail = f": {summary}" if summary else ""
        print(f"{self.label}: {self.done:,} done in {seconds:.1f} s{tail}", file=self.stream, flush=True)


class Bar:
    """A terminal: a rich bar with counts, rate and time left."""

    def __init__(self, label: str, stream: IO[str]) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.label = label
        self.console = Console(file=stream)
        self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console,
                                transient=False)
        self.task = self.bar.add_task(label, total=None)
        self.done = 0
        self.began = time.monotonic()
        self.started = False

    def start(self, total: int | None = None) -> None:
        self.bar.update(self.task, total=total)
        if not self.started:
            self.bar.start()
            self.started = True
        self.began = time.monotonic()

    def advance(self, n: int = 1) -> None:
        if not self.started:
            self.start()
        self.done += n
        self.bar.advance(self.task, n)

    def set_total(self, total: int) -> None:
        self.bar.update(self.task, total=total)

    def finish(self, summary: str = "") -> None:
        if self.started:
            self.bar.stop()
        seconds = time.monotonic() - self.began
        tail = f": {summary}" if summary else ""
        self.console.print(f"{self.label}: {self.done:,} done in {seconds:.1f} s{tail}", highlight=False, markup=False)


def progress_for(label: str, stream: IO[str] | None = None, *, quiet: bool = False) -> Progress:
    """A bar on a terminal, a summary line elsewhere, nothing at all when ``quiet``."""
    if quiet:
        return NO_PROGRESS
    out = stream if stream is not None else sys.stderr
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return Bar(label, out)
    return SummaryLine(label, out)


class progress_of:
    """``with progress_of(p, total) as p:`` starts and always finishes (with the summary)."""

    def __init__(self, progress: Progress, total: int | None = None) -> None:
        self.progress = progress
        self.total = total
        self.summary = ""

    def __enter__(self) -> Progress:
        self.progress.start(self.total)
        return self.progress

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.progress.finish(self.summary if kind is None else "stopped by an error")
