"""Who may call what: the POS's bearer token for every route but health, and a manager
(or admin) session for the manager operations. Refusals are audited, within a bound."""

from __future__ import annotations

import hmac
import re
import logging
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Header, Request

from ledger.service import Ledger
from ledger.users import User
from ledger.writer import audit
from terminal_agent.api.problems import ApiProblem

log = logging.getLogger("terminal_agent.api")

MANAGER_ROLES = ("manager", "admin")
# A flood of bad tokens must not flood the audit log; the log line still counts them.
AUDITED_REFUSALS_PER_MINUTE_MAX = 30
_refusals: list[float] = []


_DIGIT_RUN = re.compile(r"\d{6,}")


def redact_path(path: str) -> str:
    """A request path fit for a log or the audit log: card numbers (even a bank card
    typed by mistake) appear masked, keeping the last four digits."""
    return _DIGIT_RUN.sub(lambda m: "*" * (len(m.group()) - 4) + m.group()[-4:], path)


def _audit_refusal(ledger: Ledger, request: Request, actor: str, action: str, detail: str) -> None:
    now = time.monotonic()
    _refusals[:] = [t for t in _refusals if now - t < 60.0]
    path = redact_path(request.url.path)
    log.warning("refused %s %s: %s", request.method, path, detail)
    if len(_refusals) >= AUDITED_REFUSALS_PER_MINUTE_MAX:
        return
    _refusals.append(now)
    with ledger.write("auditing a refusal") as conn:
        audit(conn, at=ledger.clock(), actor=actor, action=action, target=path[:64], detail=detail)


# The checks are async on purpose: FastAPI runs a plain `def` dependency on a worker
# thread, and two thread hops cost more than the checks themselves.
async def require_token(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
    rt = request.app.state.runtime
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        _audit_refusal(rt.ledger, request, "anonymous", "api.no_token", "no bearer token")
        raise ApiProblem(401, "missing_token", "send the POS token as 'Authorization: Bearer <token>'",
                         {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), rt.token.encode()):
        _audit_refusal(rt.ledger, request, "anonymous", "api.bad_token", "wrong bearer token")
        raise ApiProblem(401, "bad_token", "the bearer token is wrong", {"WWW-Authenticate": "Bearer"})


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


async def manager(request: Request, authorization: Annotated[str | None, Header()] = None,
                  x_session: Annotated[str | None, Header()] = None) -> Auth:
    await require_token(request, authorization)
    rt = request.app.state.runtime
    user = await session_user(request, x_session)
    if user is None:
        raise ApiProblem(401, "session_required", "a manager must open a session (user and PIN) first")
    if user.role not in MANAGER_ROLES:
        _audit_refusal(rt.ledger, request, user.username, "api.forbidden", f"role {user.role} is not a manager")
        raise ApiProblem(403, "forbidden", f"user {user.username} is a {user.role}; this needs a manager")
    return Auth(user, rt.ledger)
