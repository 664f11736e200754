"""The local POS API: FastAPI over the ledger. Thin: each route validates, calls the
ledger, and shapes the answer. Ledger calls block on SQLite, so routes are plain
`def` and run in the server's thread pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger import audit, history
from ledger.sales import post_sale, quote, refund, sale_result
from ledger.types import RefundLine, RefundRequest, SaleLine, SaleRequest
from ledger.users import AuthError, User, UserInfo, add_user, authenticate, list_users, set_disabled, set_pin
from sync.client import offline
from terminal_agent import __version__, receipt
from terminal_agent.api import models as m
from terminal_agent.api.auth import Auth, audit_refusal, manager, require_token, session_user
from terminal_agent.api.guard import Guard
from terminal_agent.api.limits import ClientFailureLimiter, TooManyAttempts
from terminal_agent.api.problems import ApiProblem, install
from terminal_agent.events import BusClosed, End
from terminal_agent.remote import ensure_member
from terminal_agent.runtime import Runtime
from terminal_agent.sessions import SessionsFull
from terminal_agent.slip import PrinterError
from terminal_agent.status import agent_status

API_PREFIX = "/v1"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
DOCS_PATH = f"{API_PREFIX}/docs"
SSE_KEEPALIVE_S = 15.0


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


def _lines(items: list[m.LineIn]) -> tuple[SaleLine, ...]:
    return tuple(SaleLine(**item.model_dump()) for item in items)


def _member_json(member: Any) -> dict[str, Any]:
    return {
        "id": member.id, "name": member.name, "mobile": member.mobile, "tier": member.tier,
        "balance": member.balance, "segment": member.segment,
        "birth_date": member.birth_date.isoformat() if member.birth_date else None,
        "cards": [{"number": c.number, "status": c.status, "technology": c.technology} for c in member.cards],
    }


def _plan_json(plan: Any) -> dict[str, Any]:
    return {
        "earned_points": plan.earned_points,
        "max_redeem_points": plan.max_redeem_points,
        "max_redeem_rial": plan.max_redeem_rial,
        "redeem_points": plan.redeem_points,
        "redeem_rial": plan.redeem_rial,
        "new_tier": plan.new_tier,
        "awards": [a.__dict__ for a in plan.awards],
        "offers": list(plan.suggestions),
        "ruleset_hash": plan.ruleset_hash,
    }


WRITER_THREADS = 1  # SQLite has one writer; more threads would only queue on its lock


def _writer(request: Request) -> concurrent.futures.ThreadPoolExecutor:
    rt = _rt(request)
    if rt.writer is None:
        rt.writer = concurrent.futures.ThreadPoolExecutor(WRITER_THREADS, thread_name_prefix="ledger-writer")
    return rt.writer


class _Answered:
    """Outermost: Starlette's error middleware answers an unexpected exception with the
    problem from problems.py (which logs its traceback) and then raises it again for
    the server to log; that second, bare traceback is not wanted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception:
            if scope["type"] != "http":
                raise


class AgentApi(FastAPI):
    def build_middleware_stack(self) -> ASGIApp:
        return _Answered(super().build_middleware_stack())


def create_app(runtime: Runtime) -> FastAPI:
    app = AgentApi(
        title="Loyalty terminal agent: local POS API",
        version=__version__,
        openapi_url=OPENAPI_PATH,
        docs_url=DOCS_PATH,
        swagger_ui_oauth2_redirect_url=f"{DOCS_PATH}/oauth2-redirect",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.pin_limiter = ClientFailureLimiter()
    install(app)
    # in front of routing, inside the error middleware: token and body size are checked
    # before any byte of the body is read
    app.add_middleware(Guard, runtime=runtime, open_paths=(
        f"{API_PREFIX}/health", OPENAPI_PATH, DOCS_PATH, f"{DOCS_PATH}/oauth2-redirect"))
    token = [Depends(require_token)]

    @app.get(f"{API_PREFIX}/health", tags=["ops"])
    def health(request: Request) -> dict[str, Any]:
        rt = _rt(request)
        return {"status": "stopping" if rt.stopping else "ok", "version": __version__,
                "terminal": rt.ledger.terminal, "store": rt.ledger.store}

    @app.get(f"{API_PREFIX}/status", tags=["ops"], dependencies=token)
    def status(request: Request) -> dict[str, Any]:
        return agent_status(_rt(request))

    @app.get(f"{API_PREFIX}/events", tags=["cards"], dependencies=token)
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: each reader's state, then `card`, `card_refused` and `reader`
        events. A stream ends (with a comment line saying why) when it falls
        SUBSCRIBER_QUEUE_EVENTS_MAX events behind, when a newer stream takes the place of
        this one (the oldest) past SUBSCRIBERS_MAX, or when the agent stops."""
        rt = _rt(request)
        rt.bus.bind_if_unbound(asyncio.get_running_loop())

        async def body() -> AsyncIterator[bytes]:
            # subscribed here, where the finally below is sure to run: a stream whose
            # client left before it began never registers a queue that nobody drains
            try:
                subscription = rt.bus.subscribe()
            except BusClosed as exc:
                yield f": {exc}\n\n".encode()
                return
            pending = asyncio.ensure_future(subscription.next())
            try:
                yield b": connected\n\n"
                # a POS that connects late still learns each reader's state at once
                for state in list(rt.bus.readers.values()):
                    yield f"event: reader\ndata: {json.dumps(state, ensure_ascii=False)}\n\n".encode()
                while True:
                    done, _ = await asyncio.wait({pending}, timeout=SSE_KEEPALIVE_S)
                    if not done:
                        yield b": keep-alive\n\n"
                        continue
                    event = pending.result()
                    if isinstance(event, End):
                        yield f": {event.reason}\n\n".encode()
                        return
                    yield f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()
                    pending = asyncio.ensure_future(subscription.next())
            finally:
                # plain calls, no await: a client that hung up cancels this generator, and
                # under its cancelled scope any await here would be cut short again
                pending.cancel()
                subscription.close()

        return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.get(f"{API_PREFIX}/cards/last", tags=["cards"], dependencies=token)
    def last_card(request: Request) -> dict[str, Any]:
        return {"card": _rt(request).bus.last_card}

    @app.get(f"{API_PREFIX}/members/lookup", tags=["members"], dependencies=token)
    async def lookup(request: Request, q: Annotated[str, Query(min_length=4, max_length=40,
                                                                description="card number or mobile")]) -> dict[str, Any]:
        rt = _rt(request)
        await ensure_member(rt, q)
        return _member_json(await asyncio.to_thread(rt.ledger.find_member, q))

    @app.post(f"{API_PREFIX}/quote", tags=["sales"], dependencies=token)
    async def quote_(request: Request, body: m.QuoteIn) -> dict[str, Any]:
        rt = _rt(request)
        await ensure_member(rt, body.card_number)
        plan = await asyncio.to_thread(quote, rt.ledger, body.card_number, _lines(body.lines), body.redeem_points)
        return JSONResponse(_plan_json(plan))  # type: ignore[return-value]

    @app.post(f"{API_PREFIX}/sales", tags=["sales"], dependencies=token)
    async def sale(request: Request, body: m.SaleIn,
                   user: Annotated[User | None, Depends(session_user)]) -> dict[str, Any]:
        rt = _rt(request)
        cap = rt.config.sync.offline_redeem_cap
        if cap and body.redeem_points > cap and rt.config.sync.hub_url and \
                offline(rt.ledger, rt.config.sync.offline_after_s):
            raise ApiProblem(409, "offline_redeem_cap",
                             f"the hub has not been reached lately: at most {cap} points may be redeemed per sale "
                             "until it is")
        await ensure_member(rt, body.card_number)
        req = SaleRequest(idempotency_key=body.idempotency_key, card_number=body.card_number,
                          receipt_ref=body.receipt_ref, lines=_lines(body.lines), redeem_points=body.redeem_points,
                          actor=user.username if user else "pos")
        # the commit runs on the ledger's own writer thread: the event loop (card events,
        # other requests) never waits for the disk, and one thread is all SQLite can use
        result = await asyncio.get_running_loop().run_in_executor(_writer(request), post_sale, rt.ledger, req)
        locale = body.locale or rt.config.agent.locale
        # a JSONResponse skips FastAPI's generic encoder: a third of a sale's time otherwise
        return JSONResponse({**result.to_json(), "replayed": result.replayed,  # type: ignore[return-value]
                             "receipt": receipt.sale_lines(result, locale, rt.config.agent.persian_digits,
                                                                     rt.ledger.ruleset.tiers)})

    @app.post(f"{API_PREFIX}/sales/{{sale_id}}/slip", tags=["sales"], dependencies=token)
    async def print_slip(request: Request, sale_id: Annotated[str, Path(min_length=1, max_length=36)],
                         body: m.SlipIn | None = None) -> dict[str, Any]:
        """Print the points slip of a committed sale on the configured ESC/POS printer."""
        rt = _rt(request)
        if rt.printer is None:
            raise ApiProblem(409, "no_printer", "no receipt printer is configured (printer.device in the config)")
        result = sale_result(rt.ledger, sale_id)
        locale = (body.locale if body else None) or rt.config.agent.locale
        try:
            sent = await rt.printer.print_lines(
                receipt.sale_lines(result, locale, rt.config.agent.persian_digits, rt.ledger.ruleset.tiers), locale)
        except PrinterError as exc:
            raise ApiProblem(exc.status, exc.code, str(exc)) from None
        return {"sale_id": sale_id, "printed": True, "bytes": sent}

    @app.post(f"{API_PREFIX}/refunds", tags=["sales"], dependencies=token)
    def refund_(request: Request, body: m.RefundIn,
                user: Annotated[User | None, Depends(session_user)]) -> dict[str, Any]:
        rt = _rt(request)
        lines = None if body.lines is None else tuple(RefundLine(x.line_no, x.quantity) for x in body.lines)
        result = refund(rt.ledger, RefundRequest(body.idempotency_key, body.sale_id, lines,
                                                 actor=user.username if user else "pos"))
        return {**result.to_json(), "replayed": result.replayed,
                "receipt": receipt.refund_lines(result, rt.config.agent.locale, rt.config.agent.persian_digits)}

    @app.post(f"{API_PREFIX}/sessions", tags=["users"], dependencies=token)
    def open_session(request: Request, body: m.SessionIn) -> dict[str, Any]:
        """Open a till user's session. Every failure (no such user, wrong PIN, locked user)
        is the same 401 `auth_failed`; a client with too many wrong PINs in a minute gets
        429 `too_many_attempts` (with Retry-After), without counting against any user."""
        rt = _rt(request)
        if rt.pin_key is None:
            raise ApiProblem(503, "no_pin_key", "this agent was started without its PIN key; nobody can log in")
        try:
            attempt = request.app.state.pin_limiter.begin(request.client.host if request.client else "?")
        except TooManyAttempts as exc:
            raise ApiProblem(429, "too_many_attempts", str(exc), {"Retry-After": str(exc.retry_after_s)}) from None
        try:
            user = authenticate(rt.ledger, username=body.username, pin=body.pin, pin_key=rt.pin_key)
        except AuthError:
            raise  # the attempt stays counted against this client
        except BaseException:
            attempt.forget()  # not a wrong PIN (the disk, a bug): not the client's failure
            raise
        attempt.forget()
        try:
            session = rt.sessions.open(user)
        except SessionsFull as exc:
            raise ApiProblem(503, "too_many_sessions", str(exc)) from None
        return {"session": session, "username": user.username, "role": user.role}

    @app.delete(f"{API_PREFIX}/sessions", tags=["users"], dependencies=token)
    def close_session(request: Request, x_session: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        return {"closed": bool(x_session) and _rt(request).sessions.close(x_session or "")}

    @app.get(f"{API_PREFIX}/gift-cards/{{number}}", tags=["gift cards"], dependencies=token)
    def gift_balance(request: Request, number: Annotated[str, Path(min_length=4, max_length=32)]) -> dict[str, Any]:
        """A gift card's balance (Rial), for the till."""
        return {"number": number, "balance": _rt(request).ledger.gift_balance(number)}

    @app.post(f"{API_PREFIX}/gift-cards/{{number}}/spend", tags=["gift cards"], dependencies=token)
    def gift_spend(request: Request, number: Annotated[str, Path(min_length=4, max_length=32)],
                   body: m.GiftSpendIn, user: Annotated[User | None, Depends(session_user)]) -> dict[str, Any]:
        """Pay with a gift card at the till: the POS token is enough; an X-Session names
        the cashier in the audit log (else the actor is "pos")."""
        return {"number": number, "balance": _rt(request).ledger.gift_spend(
            number=number, amount=body.amount, receipt_ref=body.receipt_ref,
            actor=user.username if user else "pos")}

    @app.get(f"{API_PREFIX}/tiers", tags=["members"], dependencies=token)
    def tiers_(request: Request) -> dict[str, Any]:
        """The loyalty table's tiers, lowest first, with their names in both languages."""
        ruleset = _rt(request).ledger.ruleset
        return {"basis": ruleset.tier_policy.basis, "window_days": ruleset.tier_policy.window_days,
                "tiers": [{"id": t.id, "name_en": t.name_en, "name_fa": t.name_fa, "threshold": t.threshold}
                          for t in ruleset.tiers]}

    @app.get(f"{API_PREFIX}/sales/by-receipt/{{receipt_ref}}", tags=["sales"], dependencies=token)
    def sale_by_receipt(request: Request,
                        receipt_ref: Annotated[str, Path(min_length=1, max_length=64)]) -> dict[str, Any]:
        """The sales with this receipt reference (newest first, at most 10), each with its
        lines and what is left to refund of each: how a till finds the sale to refund."""
        return {"sales": history.sales_by_receipt(_rt(request).ledger, receipt_ref)}

    _manager_routes(app)
    _admin_routes(app)
    return app


Manager = Annotated[Auth, Depends(manager)]


def _manager_routes(app: FastAPI) -> None:
    @app.post(f"{API_PREFIX}/members", tags=["manager"], status_code=201)
    def enrol(body: m.EnrolIn, auth: Manager) -> dict[str, Any]:
        member = auth.ledger.enrol_member(name=body.name, mobile=body.mobile, birth_date=body.birth_date,
                                          referrer=body.referrer, actor=auth.user.username)
        return _member_json(member)

    @app.post(f"{API_PREFIX}/members/{{member_id}}/cards", tags=["manager"], status_code=201)
    def issue(member_id: str, body: m.CardIn, auth: Manager) -> dict[str, Any]:
        card = auth.ledger.issue_card(member_id=member_id, number=body.number, technology=body.technology,
                                      actor=auth.user.username)
        return {"number": card.number, "member_id": card.member_id, "status": card.status}

    @app.post(f"{API_PREFIX}/cards/{{number}}/replace", tags=["manager"])
    def replace(number: str, body: m.ReplaceIn, auth: Manager) -> dict[str, Any]:
        card = auth.ledger.replace_card(old_number=number, new_number=body.new_number, reason=body.reason,
                                        actor=auth.user.username)
        return {"number": card.number, "member_id": card.member_id, "status": card.status,
                "balance": auth.ledger.balance(card.member_id)}

    @app.post(f"{API_PREFIX}/cards/{{number}}/block", tags=["manager"])
    def block(number: str, body: m.BlockIn, auth: Manager) -> dict[str, Any]:
        card = auth.ledger.block_card(number=number, reason=body.reason, lost=body.lost, actor=auth.user.username)
        return {"number": card.number, "status": card.status}

    @app.post(f"{API_PREFIX}/members/{{member_id}}/adjustments", tags=["manager"])
    def adjust(member_id: str, body: m.AdjustIn, auth: Manager) -> dict[str, Any]:
        balance = auth.ledger.adjust(member_id=member_id, points=body.points, reason=body.reason,
                                     actor=auth.user.username)
        return {"member_id": member_id, "balance": balance}

    @app.post(f"{API_PREFIX}/gift-cards", tags=["manager"], status_code=201)
    def gift_issue(body: m.GiftIssueIn, auth: Manager) -> dict[str, Any]:
        balance = auth.ledger.gift_issue(number=body.number, amount=body.amount, actor=auth.user.username)
        return {"number": body.number, "balance": balance}

    @app.get(f"{API_PREFIX}/members/{{member_id}}/history", tags=["manager"])
    def member_history(member_id: Annotated[str, Path(min_length=1, max_length=36)], auth: Manager,
                       limit: Annotated[int, Query(ge=1, le=history.HISTORY_ITEMS_MAX)] = 100) -> dict[str, Any]:
        """The member's entries and point-less sales, newest first, each with the balance
        after it and, for a sale's points, the explanations it had at the till; and where
        the member stands in the tier window."""
        items = history.member_history(auth.ledger, member_id, limit)
        progress = history.tier_progress(auth.ledger, member_id)
        return {"member_id": member_id, "items": [i.to_json() for i in items], "progress": progress.__dict__}

    @app.get(f"{API_PREFIX}/audit", tags=["manager"])
    def audit_log_(auth: Manager, actor: Annotated[str | None, Query(max_length=64)] = None,
                   action: Annotated[str | None, Query(max_length=64)] = None,
                   since: Annotated[datetime | None, Query(description="ISO time, inclusive")] = None,
                   until: Annotated[datetime | None, Query(description="ISO time, exclusive")] = None,
                   before_id: Annotated[int | None, Query(ge=1)] = None,
                   limit: Annotated[int, Query(ge=1, le=audit.AUDIT_ROWS_MAX)] = 100) -> dict[str, Any]:
        """The audit log, newest first: by actor, by action (or its family: `card`), by time."""
        for name, value in (("since", since), ("until", until)):
            if value is not None and value.tzinfo is None:
                raise ApiProblem(422, "invalid_input", f"{name}: give the time with its offset, e.g. +03:30")
        rows = audit.audit_rows(auth.ledger, actor=actor or None, action=action or None, since=since, until=until,
                                before_id=before_id, limit=limit)
        return {"rows": [r.to_json() for r in rows]}

    @app.post(f"{API_PREFIX}/gift-cards/{{number}}/load", tags=["manager"])
    def gift_load(number: str, body: m.GiftAmountIn, auth: Manager) -> dict[str, Any]:
        return {"number": number,
                "balance": auth.ledger.gift_load(number=number, amount=body.amount, actor=auth.user.username)}

    @app.post(f"{API_PREFIX}/members/verification", tags=["manager"])
    def verification_start(request: Request, body: m.VerificationIn, auth: Manager) -> dict[str, Any]:
        """Ask the hub to text a code to a member's mobile (at enrolment). `status`: sent, verified (confirmed
        before) or offline (the hub did not answer: the member stays unverified, and the hub sends a code itself
        once this terminal has synced the member)."""
        from sync import verification

        creds, verify = _hub_link(request)
        return _verified(verification.start(creds, body.mobile, body.member_id, verify=verify))

    @app.post(f"{API_PREFIX}/members/verification/check", tags=["manager"])
    def verification_check(request: Request, body: m.VerificationCheckIn, auth: Manager) -> dict[str, Any]:
        """Check the code the member read back: `verified`, or a problem (wrong_code with attempts_left,
        code_expired, too_many_attempts, no_code); `status: offline` if the hub did not answer."""
        from sync import verification

        creds, verify = _hub_link(request)
        return _verified(verification.check(creds, body.mobile, body.code, verify=verify))


def _hub_link(request: Request) -> tuple[Any, Any]:
    """This terminal's hub credentials and TLS check; 409 if it is not enrolled."""
    from sync.client import load_credentials, tls_verify

    cfg = _rt(request).config
    creds = load_credentials(cfg.data_dir)
    if creds is None or not cfg.sync.hub_url:
        raise ApiProblem(409, "not_enrolled", "this terminal is not enrolled with a hub (loyalty-agent enroll, and "
                                              "[sync] hub_url); verification codes come from the hub")
    return creds, tls_verify(cfg.resolve(cfg.sync.ca_bundle) if cfg.sync.ca_bundle else None)


def _verified(answer: Any) -> dict[str, Any]:
    if answer.status == "refused":  # the hub's refusal; its own auth troubles are not the POS's (502)
        status = answer.http_status if answer.http_status not in (401, 403) else 502
        raise ApiProblem(status, answer.problem or "hub_refused", answer.detail)
    return answer.to_json()  # type: ignore[no-any-return]


async def admin(request: Request, auth: Manager) -> Auth:
    """An admin's session: users are an admin's business, not a manager's."""
    if auth.user.role != "admin":
        await asyncio.to_thread(audit_refusal, auth.ledger, request.method, request.url.path, auth.user.username,
                                "api.forbidden", f"role {auth.user.role} is not an admin")
        raise ApiProblem(403, "forbidden", f"user {auth.user.username} is a {auth.user.role}; this needs an admin")
    return auth


Admin = Annotated[Auth, Depends(admin)]
Username = Annotated[str, Path(min_length=1, max_length=64)]


def _user_json(user: UserInfo) -> dict[str, Any]:
    return {"username": user.username, "role": user.role, "created_at": user.created_at.isoformat(),
            "disabled": user.disabled_at is not None,
            "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
            "locked_until": user.locked_until.isoformat() if user.locked_until else None}


def _close_sessions_of(rt: Runtime, username: str) -> int:
    """End a disabled user's open sessions at once (they would otherwise last until idle)."""
    return rt.sessions.close_user(username)


def _admin_routes(app: FastAPI) -> None:
    def pin_key_of(request: Request) -> bytes:
        key = _rt(request).pin_key
        if key is None:
            raise ApiProblem(503, "no_pin_key", "this agent was started without its PIN key")
        return key

    @app.get(f"{API_PREFIX}/users", tags=["admin"])
    def users_(auth: Admin) -> dict[str, Any]:
        """Every till user (never a PIN or its hash)."""
        return {"users": [_user_json(u) for u in list_users(auth.ledger)]}

    @app.post(f"{API_PREFIX}/users", tags=["admin"], status_code=201)
    def user_add(request: Request, body: m.UserIn, auth: Admin) -> dict[str, Any]:
        """Add a till user with a PIN (4 to 12 digits; managers and admins 6 or more). Audited."""
        add_user(auth.ledger, username=body.username, role=body.role, pin=body.pin, actor=auth.user.username,
                 pin_key=pin_key_of(request))
        return next(_user_json(u) for u in list_users(auth.ledger) if u.username == body.username)

    @app.put(f"{API_PREFIX}/users/{{username}}/pin", tags=["admin"])
    def user_pin(request: Request, username: Username, body: m.PinIn, auth: Admin) -> dict[str, Any]:
        """Set a user's new PIN and unlock them. Audited (never the PIN)."""
        set_pin(auth.ledger, username=username, pin=body.pin, actor=auth.user.username, pin_key=pin_key_of(request))
        return {"username": username, "pin_changed": True}

    @app.post(f"{API_PREFIX}/users/{{username}}/disable", tags=["admin"])
    def user_disable(request: Request, username: Username, auth: Admin) -> dict[str, Any]:
        """The user can no longer log in; their open sessions end now. Audited."""
        user = set_disabled(auth.ledger, username=username, disabled=True, actor=auth.user.username)
        return {**_user_json(user), "sessions_closed": _close_sessions_of(_rt(request), username)}

    @app.post(f"{API_PREFIX}/users/{{username}}/enable", tags=["admin"])
    def user_enable(username: Username, auth: Admin) -> dict[str, Any]:
        """A disabled user may log in again. Audited."""
        return _user_json(set_disabled(auth.ledger, username=username, disabled=False, actor=auth.user.username))
