"""Long work shows a bar on a terminal and one summary line elsewhere (cron logs stay clean)."""

from __future__ import annotations

import io
import re

from ledger.progress import NO_PROGRESS, Bar, SummaryLine, progress_for, progress_of


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gets_one_summary_line() -> None:
    out = io.StringIO()
    p = progress_for("export", out)
    assert isinstance(p, SummaryLine)
    with progress_of(p, 1000) as bar:
        for _ in range(10):
            bar.advance(100)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("export: 1,000 done in ")


def test_a_terminal_gets_a_bar_with_counts() -> None:
    out = Tty()
    p = progress_for("import", out)
    assert isinstance(p, Bar)
    with progress_of(p, 50) as bar:
        bar.advance(50)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    assert "50/50" in text and "import: 50 done in " in text


def test_an_error_is_said_in_the_summary_and_quiet_says_nothing() -> None:
    out = io.StringIO()
    try:
        with progress_of(progress_for("backup", out), 3) as bar:
            bar.advance()
            raise OSError("disk full")
    except OSError:
        pass
    assert out.getvalue().strip().endswith("stopped by an error")
    assert progress_for("x", out, quiet=True) is NO_PROGRESS
