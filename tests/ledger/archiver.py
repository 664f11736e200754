"""A separate process that archives a ledger file in small batches: the kill -9 test
kills it at a random moment.

usage: python -m tests.ledger.archiver LEDGER_PATH NOW_ISO RETENTION_DAYS BATCH
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

from ledger.service import Ledger


def main() -> None:
    path, now, retention, batch = sys.argv[1:]
    at = datetime.fromisoformat(now)
    ledger = Ledger.open(Path(path), store="S1", terminal="T1", clock=lambda: at, busy_timeout_ms=30_000)
    print("start", flush=True)
    report = ledger.archive(at, int(retention), batch=int(batch))
    ledger.close()
    print("done", report.entries, report.sales, flush=True)


if __name__ == "__main__":
    main()
