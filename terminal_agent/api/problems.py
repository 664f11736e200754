"""Errors as RFC 9457 problem details, with a stable `code` per error type.

Bad input is always a 4xx with a message; only a bug or a broken disk is a 5xx.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger import errors as le
from ledger.users import AuthError, DuplicateUser, UnknownUser

log = logging.getLogger("terminal_agent.api")

PROBLEM_TYPE_BASE = "https://loyalty-agent.invalid/problems/"
INTERNAL_ERROR_DETAIL = "the agent failed on this request; the error is in the agent's log"

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (UnknownUser, 401),
    (AuthError, 401),
    (DuplicateUser, 409),
    (le.ValidationFailed, 422),
    (le.NotFound, 404),
    (le.Conflict, 409),
    (le.CardRefused, 409),
    (le.InsufficientPoints, 409),
    (le.InsufficientGiftBalance, 409),
    (le.RefundExceedsSale, 409),
    (le.DatabaseError, 503),
    (le.BackupError, 503),
    (le.IntegrityFailure, 500),
    (le.LedgerError, 500),
)


class ApiProblem(Exception):
    """An error raised by the API layer itself (auth, roles, missing headers)."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


def problem(status: int, code: str, detail: str, request: Request, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    return problem_at(status, code, detail, request.url.path, headers, **extra)


def problem_at(status: int, code: str, detail: str, path: str, headers: dict[str, str] | None = None,
               **extra: Any) -> JSONResponse:
    """A problem answer where there is no Request yet (the ASGI guard in front of the app)."""
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": code.replace("_", " "),
        "status": status,
        "detail": detail,
        "code": code,
        "instance": path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def status_for(exc: Exception) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, request, exc.headers)

    @app.exception_handler(le.LedgerError)
    async def _ledger(request: Request, exc: le.LedgerError) -> JSONResponse:
        return problem(status_for(exc), exc.code, str(exc), request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"), "message": err.get("msg", "")}
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return problem(422, "invalid_input", detail, request, errors=errors)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # A bug or the world's doing (disk, memory): the client gets a problem it can
        # show, never a plain-text 500 or a reset; the traceback goes to the log only.
        from terminal_agent.api.auth import redact_path

        log.error("internal error on %s %s", request.method, redact_path(request.url.path),
                  exc_info=(type(exc), exc, exc.__traceback__))
        return problem(500, "internal_error", INTERNAL_ERROR_DETAIL, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "no_such_endpoint", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail), request)
