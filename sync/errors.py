"""Errors of sync and the hub.

    SyncError
    ├── HubUnreachable     the hub did not answer (network, TLS, timeout); retried with backoff
    ├── HubRefused         the hub answered with a refusal (auth, enrolment, a bad batch)
    ├── NotEnrolled        this terminal has no hub credentials yet (`loyalty-agent enroll`)
    ├── HubError           the hub's own problems (config, database, an unknown terminal)
    ├── ImportRefused      a members workbook the hub will not import (nothing was written)
    └── ReportRefused      a back-office report asked for something that is not there
"""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    code = "sync_error"
    exit_code = 1


class HubUnreachable(SyncError):
    code = "hub_unreachable"


class HubRefused(SyncError):
    """status: the HTTP status; problem: the stable problem code; fields: what the
    problem body carries beside them (e.g. the hub's time with a `stale`)."""

    code = "hub_refused"

    def __init__(self, message: str, status: int = 0, problem: str = "", fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.problem, self.fields = status, problem, dict(fields or {})


class NotEnrolled(SyncError):
    code = "not_enrolled"


class HubError(SyncError):
    code = "hub_error"


class ImportRefused(SyncError):
    """`loyalty-hub members import`: the file, or rows of it, cannot be imported; the
    hub is unchanged. errors_path: the error workbook listing each bad row, if written."""

    code = "import_refused"

    def __init__(self, message: str, errors_path: object = None) -> None:
        super().__init__(message)
        self.errors_path = errors_path


class ReportRefused(SyncError):
    """A report's filter names no store, tier or segment, or the file cannot be written."""

    code = "report_refused"
    exit_code = 2
