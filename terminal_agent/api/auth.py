"""Who may call what: the POS's bearer token for every route but health and the API's
documents, and a manager (or admin) session for the manager operations. Refusals are
audited, within a bound.

The token is checked twice: first by the ASGI guard in front of the app (guard.py),
before any byte of the body is read; then again by the routes' dependency below, which
is also what puts the bearer scheme into the OpenAPI document.
"""

from __future__ import annotations

import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.service import Ledger
from ledger.users import User
from ledger.writer import audit
from terminal_agent.api.problems import ApiProblem

log = logging.getLogger("terminal_agent.api")

MANAGER_ROLES = ("manager", "admin")
# A flood of bad tokens must not flood the audit log; the log line still counts them
# (and the log's own repeat filter bounds the lines).
AUDITED_REFUSALS_PER_MINUTE_MAX = 30
_refusals: list[float] = []
_refusals_lock = threading.Lock()

_DIGIT_RUN = re.compile(r"\d{6,}")
_bearer = HTTPBearer(auto_error=False, description="The POS token: `api.token`, or `<data_dir>/api-token`.")


def redact_path(path: str) -> str:
    """A request path fit for a log or the audit log: card numbers (even a bank card
    typed by mistake) appear masked, keeping the last four digits."""
    return _DIGIT_RUN.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], path)


def audit_refusal(ledger: Ledger, method: str, path: str, actor: str, action: str, detail: str) -> None:
    """Log a refusal, and audit it unless AUDITED_REFUSALS_PER_MINUTE_MAX were audited
    in the last minute. Writes to the ledger: call it off the event loop."""
    now = time.monotonic()
    path = redact_path(path)
    log.warning("refused %s %s: %s", method, path, detail)
    with _refusals_lock:
        _refusals[:] = [t for t in _refusals if now - t < 60.0]
        if len(_refusals) >= AUDITED_REFUSALS_PER_MINUTE_MAX:
            return
        _refusals.append(now)
    with ledger.write("auditing a refusal") as conn:
        audit(conn, at=ledger.clock(), actor=actor, action=action, target=path[:64], detail=detail)


def token_problem(authorization: str | None, token: str) -> ApiProblem | None:
    """Why an Authorization header value does not carry the POS token, or None if it does."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return ApiProblem(401, "missing_token", "send the POS token as 'Authorization: Bearer <token>'",
                          {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return ApiProblem(401, "bad_token", "the bearer token is wrong", {"WWW-Authenticate": "Bearer"})
    return None


# The checks are async on purpose: FastAPI runs a plain `def` dependency on a worker
# thread, and two thread hops cost more than the checks themselves.
async def require_token(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    given = f"Bearer {credentials.credentials}" if credentials else None
    refusal = token_problem(given, request.app.state.runtime.token)
    if refusal is not None:  # only if the guard is not in front (it refused and audited already)
        raise refusal


async def session_user(request: Request, x_session: Annotated[str | None, Header()] = None) -> User | None:
    """The till user of an open session, if the request names one."""
    if not x_session:
        return None
    user = request.app.state.runtime.sessions.get(x_session)
    if user is None:
        raise ApiProblem(401, "bad_session", "the session is unknown or expired; open a new one with user and PIN")
    return user  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Auth:
    user: User
    ledger: Ledger


async def manager(request: Request, _token: Annotated[None, Depends(require_token)],
                  x_session: Annotated[str | None, Header()] = None) -> Auth:
    rt = request.app.state.runtime
    user = await session_user(request, x_session)
    if user is None:
        raise ApiProblem(401, "session_required", "a manager must open a session (user and PIN) first")
    if user.role not in MANAGER_ROLES:
        audit_refusal(rt.ledger, request.method, request.url.path, user.username, "api.forbidden",
                      f"role {user.role} is not a manager")
        raise ApiProblem(403, "forbidden", f"user {user.username} is a {user.role}; this needs a manager")
    return Auth(user, rt.ledger)
