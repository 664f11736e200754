"""A Progress that remembers what long work told it (tests of the wiring)."""

from __future__ import annotations


class Recorder:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0
        self.advances = 0
        self.finished: str | None = None

    def start(self, total: int | None = None) -> None:
        self.total = total

    def advance(self, n: int = 1) -> None:
        self.done += n
        self.advances += 1

    def set_total(self, total: int) -> None:
        self.total = total

    def finish(self, summary: str = "") -> None:
        self.finished = summary
