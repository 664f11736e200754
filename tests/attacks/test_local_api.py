"""Attacks on the local POS API, each performed for real: raw sockets against a real
uvicorn server on loopback (the agent_url fixture) or against a real daemon process,
and the real SQLite ledger. Each test is named after what it tries."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ledger.schema import audit_log
from ledger.service import Ledger
from ledger.types import LINES_PER_SALE_MAX
from ledger.users import AUTH_FAILED_MESSAGE, PIN_FAILURES_MAX, AuthError, User, add_user, authenticate
from terminal_agent.api.app import create_app
from terminal_agent.api.guard import API_BODY_BYTES_MAX
from terminal_agent.api.limits import PIN_FAILURES_PER_CLIENT_PER_MINUTE_MAX
from terminal_agent.api.server import CONNECTIONS_MAX, HEADER_READ_TIMEOUT_S
from terminal_agent.daemon import SHUTDOWN_GRACE_S
from terminal_agent.runtime import Runtime, pin_key
from terminal_agent.sessions import SESSIONS_MAX
from tests.api.conftest import MANAGER_PIN, TOKEN
from tests.e2e.agent_proc import Agent, free_port, write_config

ANSWER_WAIT_S = 10.0


# -- helpers -------------------------------------------------------------------------
def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=ANSWER_WAIT_S)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP answer (the body by Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _audited(ledger: Ledger, action: str) -> list[Any]:
    with ledger.engine.connect() as conn:
        return conn.execute(select(audit_log).where(audit_log.c.action == action)).all()


# -- 1. the body is not read before the token and its size are checked ------------------
def test_a_50_mb_body_without_the_token_is_refused_before_it_is_sent(agent_url: str) -> None:
    with _connect(_port(agent_url)) as sock:
        sock.sendall(b"POST /v1/sales HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 52428800\r\n\r\n")  # and not one byte of the body
        status, headers, body = _answer(sock)
    assert status == 401 and json.loads(body)["code"] == "missing_token"
    assert headers["content-type"].startswith("application/problem+json") and headers["connection"] == "close"


def test_a_50_mb_body_with_the_token_is_refused_from_its_content_length(agent_url: str) -> None:
    with _connect(_port(agent_url)) as sock:
        sock.sendall(f"POST /v1/sales HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n".encode())
        status, _, body = _answer(sock)
    assert status == 413 and json.loads(body)["code"] == "body_too_large"


def test_an_endless_chunked_body_is_cut_off_at_the_limit(agent_url: str) -> None:
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    reset = False
    with _connect(_port(agent_url)) as sock:
        sock.sendall(f"POST /v1/sales HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                     "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            try:
                while sent < 50 * 1024 * 1024 and not sel.select(timeout=0):
                    sock.sendall(frame)
                    sent += len(chunk)
            except (ConnectionResetError, BrokenPipeError):
                # the server answered and closed while bytes were still coming: its
                # kernel resets a connection closed with unread data, which can reach
                # us before we saw the answer (seen on a loaded machine)
                reset = True
        try:
            status, _, body = _answer(sock)
        except (ConnectionResetError, BrokenPipeError):
            status, body = 0, b""
    assert sent < 50 * 1024 * 1024  # cut off long before the client had sent it all
    if status or not reset:
        assert status == 413 and json.loads(body)["code"] == "body_too_large"


def test_the_largest_valid_sale_still_fits_the_body_limit(client: TestClient) -> None:
    persian = "ب" * 64
    line = {"sku": persian, "name": "ن" * 200, "category": persian, "quantity": 10**6, "unit_price": 10**12}
    sale = {"idempotency_key": "k" * 128, "card_number": "6395000000000101", "receipt_ref": "r" * 64,
            "redeem_points": 10**12, "locale": "en", "lines": [dict(line) for _ in range(LINES_PER_SALE_MAX)]}
    raw = json.dumps(sale).encode()  # \uXXXX escapes: the longest spelling of it
    assert len(raw) <= API_BODY_BYTES_MAX
    r = client.post("/v1/sales", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code != 413, r.text


def test_the_documents_and_health_need_no_token_but_unknown_paths_do(client: TestClient) -> None:
    bare = {"Authorization": ""}
    for path in ("/v1/health", "/v1/openapi.json", "/v1/docs"):
        assert client.get(path, headers=bare).status_code == 200, path
    assert client.get("/v1/no-such-thing", headers=bare).status_code == 401


# -- 2. idle connections ---------------------------------------------------------------
def _prepare_agent(tmp_path: Path) -> Agent:
    port = free_port()
    cfg = write_config(tmp_path, port)
    led = Ledger.open(tmp_path / "data" / "ledger.sqlite3", store="S1", terminal="T1")
    m = led.enrol_member(name="E2E", mobile="09351234567", actor="test")
    led.issue_card(member_id=m.id, number="6395000000000999", technology="magstripe", actor="test")
    led.close()
    return Agent(cfg, port)


def _sale(key: str) -> dict[str, Any]:
    return {"idempotency_key": key, "card_number": "6395000000000999", "receipt_ref": f"R{key}",
            "lines": [{"sku": "A", "name": "Tea", "category": "grocery", "quantity": 1, "unit_price": 1_000_000}]}


def _wait_all_closed(socks: list[socket.socket], timeout_s: float) -> list[socket.socket]:
    """The sockets still open after timeout_s (closed: EOF or reset)."""
    open_ = set(socks)
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        while open_ and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(4096)  # type: ignore[union-attr]
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    open_.discard(s)  # type: ignore[arg-type]
    return list(open_)


@pytest.mark.slow
def test_1100_connections_that_send_nothing_are_closed_and_the_till_still_sells(tmp_path: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1400:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    agent = _prepare_agent(tmp_path).start(fd_limit=1024)  # a common default on tills
    idle: list[socket.socket] = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection(("127.0.0.1", agent.port), timeout=ANSWER_WAIT_S))
        last_opened = time.monotonic()
        with agent.client() as c:  # while all of them are open
            r = c.post("/v1/sales", json=_sale("k1"))
            assert r.status_code == 200, r.text
        still_open = _wait_all_closed(idle, HEADER_READ_TIMEOUT_S + 10 - (time.monotonic() - last_opened))
        assert not still_open, f"{len(still_open)} idle connections were never closed"
        with agent.client() as c:
            assert c.post("/v1/sales", json=_sale("k2")).status_code == 200
    finally:
        for s in idle:
            s.close()
        assert agent.stop() == 0
    log = agent.log.read_text()
    # ~1000 connections were closed to make room: the log says so a few times, not 1000
    assert log.count("\n") < 100, log[-3000:]
    assert "held back" in log and "Traceback" not in log


def test_a_request_head_sent_a_byte_at_a_time_is_cut_off(agent_url: str) -> None:
    head = b"GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    with _connect(_port(agent_url)) as sock:
        started = time.monotonic()
        sock.settimeout(0.5)
        closed_after = None
        for byte in head:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None and closed_after < HEADER_READ_TIMEOUT_S + 5


def test_connections_past_the_maximum_make_room_by_closing_the_oldest_idle(agent_url: str) -> None:
    port = _port(agent_url)
    idle = [_connect(port) for _ in range(CONNECTIONS_MAX + 20)]
    try:
        with httpx.Client(base_url=agent_url, timeout=ANSWER_WAIT_S) as c:
            assert c.get("/v1/health").status_code == 200
        assert len(_wait_all_closed(idle[:20], 2.0)) == 0  # the oldest gave their places
    finally:
        for s in idle:
            s.close()


# -- 3. user names cannot be told from the answers or the time they take ------------------
def test_unknown_user_wrong_pin_and_locked_user_get_the_same_answer(client: TestClient, runtime: Runtime) -> None:
    for _ in range(PIN_FAILURES_MAX):  # lock mina (from elsewhere)
        with pytest.raises(AuthError):
            authenticate(runtime.ledger, username="mina", pin="000000", pin_key=runtime.pin_key)  # type: ignore[arg-type]
    answers = [client.post("/v1/sessions", json=body) for body in (
        {"username": "nobody", "pin": "1111"},  # no such user
        {"username": "reza", "pin": "2222"},  # wrong PIN
        {"username": "mina", "pin": MANAGER_PIN},  # right PIN, locked user
    )]
    shapes = {(r.status_code, r.json()["code"], r.json()["detail"], r.json()["title"]) for r in answers}
    assert shapes == {(401, "auth_failed", AUTH_FAILED_MESSAGE, "auth failed")}
    # the audit log keeps the truth
    assert [row.target for row in _audited(runtime.ledger, "user.login_unknown")] == ["nobody"]
    assert [row.target for row in _audited(runtime.ledger, "user.login_locked")] == ["mina"]


def test_an_unknown_user_takes_as_long_as_a_wrong_pin(runtime: Runtime) -> None:
    """The defect was timing (3 ms for an unknown user, 31 ms for a wrong PIN): both are
    measured here, alike, and compared with a wide margin."""
    def median_s(username: str) -> float:
        times = []
        for _ in range(9):
            started = time.perf_counter()
            with pytest.raises(AuthError):
                authenticate(runtime.ledger, username=username, pin="999999", pin_key=runtime.pin_key)  # type: ignore[arg-type]
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    wrong_pin, unknown = median_s("reza"), median_s("nobody")
    assert unknown > 0.5 * wrong_pin, (unknown, wrong_pin)


# -- 4. sessions -------------------------------------------------------------------------
def test_cashier_logins_cannot_evict_a_managers_session(client: TestClient, runtime: Runtime) -> None:
    manager = client.post("/v1/sessions", json={"username": "mina", "pin": MANAGER_PIN}).json()["session"]
    for i in range(SESSIONS_MAX + 10):
        add_user(runtime.ledger, username=f"c{i}", role="cashier", pin="1234", actor="test",
                 pin_key=runtime.pin_key)  # type: ignore[arg-type]
        runtime.sessions.open(User(f"c{i}", "cashier"))  # as POST /v1/sessions does, without the PIN work
    r = client.post("/v1/members", json={"name": "Leila", "mobile": "09121112233"}, headers={"X-Session": manager})
    assert r.status_code == 201, r.text


def test_when_every_session_is_a_managers_a_cashier_is_told_503(client: TestClient, runtime: Runtime) -> None:
    for i in range(SESSIONS_MAX):
        runtime.sessions.open(User(f"m{i}", "manager"))
    r = client.post("/v1/sessions", json={"username": "reza", "pin": "1111"})
    assert r.status_code == 503 and r.json()["code"] == "too_many_sessions"


# -- 5. the PIN check holds no transaction -------------------------------------------------
def test_a_sale_can_commit_while_a_pin_is_being_checked(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from ledger import users

    real = users._HASHER
    writable: list[bool] = []

    class Probe:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def verify(self, stored: str, pin: str) -> bool:
            other = sqlite3.connect(runtime.ledger_path, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")  # what a sale's commit needs
                other.execute("ROLLBACK")
                writable.append(True)
            except sqlite3.OperationalError:
                writable.append(False)
            finally:
                other.close()
            return real.verify(stored, pin)

    monkeypatch.setattr(users, "_HASHER", Probe())
    for username, pin in (("mina", MANAGER_PIN), ("reza", "0000"), ("nobody", "0000")):
        try:
            authenticate(runtime.ledger, username=username, pin=pin, pin_key=runtime.pin_key)  # type: ignore[arg-type]
        except AuthError:
            pass
    assert writable == [True, True, True]


def test_concurrent_wrong_pins_are_all_counted(runtime: Runtime) -> None:
    barrier = threading.Barrier(PIN_FAILURES_MAX)

    def wrong() -> None:
        barrier.wait()
        with pytest.raises(AuthError):
            authenticate(runtime.ledger, username="reza", pin="9999", pin_key=runtime.pin_key)  # type: ignore[arg-type]

    threads = [threading.Thread(target=wrong) for _ in range(PIN_FAILURES_MAX)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failures = sorted(json.loads(row.detail)["failures"] for row in _audited(runtime.ledger, "user.pin_failed"))
    assert failures == list(range(1, PIN_FAILURES_MAX + 1))
    with pytest.raises(AuthError):  # and so reza is locked: the right PIN is refused
        authenticate(runtime.ledger, username="reza", pin="1111", pin_key=runtime.pin_key)  # type: ignore[arg-type]


# -- 6. one client cannot lock every user ----------------------------------------------------
def test_one_client_guessing_pins_is_stopped_before_it_locks_anyone(client: TestClient, runtime: Runtime) -> None:
    for i in range(PIN_FAILURES_PER_CLIENT_PER_MINUTE_MAX):
        user = ("mina", "reza")[i % 2]
        assert client.post("/v1/sessions", json={"username": user, "pin": "000000"}).status_code == 401
    for user in ("mina", "reza", "nobody"):
        r = client.post("/v1/sessions", json={"username": user, "pin": "000000"})
        assert r.status_code == 429 and r.json()["code"] == "too_many_attempts"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert len(_audited(runtime.ledger, "user.pin_failed")) == PIN_FAILURES_PER_CLIENT_PER_MINUTE_MAX
    # the users are not locked: the till (another client) logs in
    with TestClient(create_app(runtime), headers={"Authorization": f"Bearer {TOKEN}"},
                    client=("10.0.0.7", 50000)) as till:
        assert till.post("/v1/sessions", json={"username": "mina", "pin": MANAGER_PIN}).status_code == 200


# -- 8. stopping with an event stream open ---------------------------------------------------
def _stop_seconds(agent: Agent) -> tuple[float, int]:
    assert agent.proc is not None
    started = time.monotonic()
    agent.proc.send_signal(signal.SIGTERM)
    code = agent.proc.wait(timeout=SHUTDOWN_GRACE_S * 4)
    return time.monotonic() - started, code


@pytest.mark.slow
def test_sigterm_with_an_event_stream_open_exits_at_once_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    baseline = _prepare_agent(tmp_path / "a").start()
    without_stream_s, code = _stop_seconds(baseline)
    assert code == 0

    (tmp_path / "b").mkdir()
    agent = _prepare_agent(tmp_path / "b").start()
    got: list[str] = []

    def listen() -> None:
        with agent.client() as c, c.stream("GET", "/v1/events", timeout=30) as stream:
            for line in stream.iter_lines():
                got.append(line)

    listener = threading.Thread(target=listen)
    listener.start()
    deadline = time.monotonic() + ANSWER_WAIT_S
    while ": connected" not in got:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with_stream_s, code = _stop_seconds(agent)
    listener.join(timeout=10)
    log = agent.log.read_text()
    assert code == 0
    assert with_stream_s < without_stream_s + SHUTDOWN_GRACE_S / 2, (with_stream_s, without_stream_s)
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert ": the agent is stopping" in got


# -- 11. a bug is a JSON problem, not a plain-text 500 ------------------------------------------
def test_an_unexpected_error_in_a_route_is_a_json_problem_500(agent_url: str, runtime: Runtime,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    def broken(query: str) -> None:
        raise OverflowError("int too large to convert; secret internals")

    monkeypatch.setattr(runtime.ledger, "find_member", broken)
    with caplog.at_level("ERROR"):
        r = httpx.get(f"{agent_url}/v1/members/lookup", params={"q": "09121112233"},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=ANSWER_WAIT_S)
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "internal_error" and "secret internals" not in r.text
    logged = [rec for rec in caplog.records if rec.exc_info and rec.exc_info[0] is OverflowError]
    assert len(logged) == 1  # once, with its traceback, in the log only


# -- 12. a copied ledger does not give away PINs ----------------------------------------------
def test_a_copied_ledger_alone_does_not_verify_a_pin(runtime: Runtime, tmp_path: Path) -> None:
    import sqlite3

    copy = tmp_path / "stolen.sqlite3"
    with sqlite3.connect(runtime.ledger_path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)  # the ledger and its WAL, as a thief would copy them
    stolen = Ledger.open(copy, store="S1", terminal="T1")
    try:
        with pytest.raises(AuthError):
            authenticate(stolen, username="mina", pin=MANAGER_PIN, pin_key=b"\0" * 32)  # without the real key
        assert authenticate(stolen, username="mina", pin=MANAGER_PIN, pin_key=runtime.pin_key).role == "manager"  # type: ignore[arg-type]
    finally:
        stolen.close()
    assert pin_key(runtime.config) == runtime.pin_key and (runtime.config.data_dir / "pin-key").stat().st_mode & 0o777 == 0o600
