"""Attacks on the hub and mistakes made against it, each performed for real on SQLite
and PostgreSQL: what a signed terminal of one store, an unauthenticated client or a
careless operator could do, and what the hub does about it."""

from __future__ import annotations

import select
import socket
import time
from pathlib import Path

import pytest

from sync import signing
from tests.e2e.agent_proc import free_port
from tests.sync.test_processes import HubProc

ATTACK_BYTES = 200 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
RSS_GROWTH_MAX_KB = 80 * 1024  # the sync limit is 32 MB; reading 200 MB whole costs 400 MB
SOCKET_TIMEOUT_S = 30.0


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def _chunked_upload(port: int, path: str, headers: dict[str, str]) -> tuple[int, int]:
    """POST `ATTACK_BYTES` in chunks without a length; stop sending as soon as the
    server answers. (status, bytes sent before the answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n" \
           "Content-Type: application/json\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    piece = b"%x\r\n" % CHUNK_BYTES + b" " * CHUNK_BYTES + b"\r\n"
    sent = 0
    try:
        while sent < ATTACK_BYTES:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the end
            sock.sendall(piece)
            sent += CHUNK_BYTES
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    deadline = time.monotonic() + SOCKET_TIMEOUT_S
    while b"\r\n" not in answer and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    sock.close()
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.slow
def test_a_chunked_200_mb_body_is_refused_at_the_limit_without_being_read(hub_url: str, tmp_path: Path) -> None:
    proc = HubProc(tmp_path, free_port())
    proc.db = hub_url
    code = proc.cli("terminals", "add", "--store", "S1")
    proc.start()
    try:
        import httpx

        secret = httpx.post(f"http://127.0.0.1:{proc.port}/v1/enroll", json={"code": code, "terminal": "T1"},
                            timeout=10).json()["secret"]
        assert proc.proc is not None
        pid = proc.proc.pid
        before = _kb(pid, "VmRSS")
        signed = signing.signed_headers("T1", secret, "POST", "/v1/sync", b"")  # present, but not for this body
        status, sent = _chunked_upload(proc.port, "/v1/sync", signed)
        assert status == 413 and sent < ATTACK_BYTES
        status, sent = _chunked_upload(proc.port, "/v1/enroll", {})
        assert status == 413 and sent < ATTACK_BYTES
        grown = _kb(pid, "VmHWM") - before
        assert grown < RSS_GROWTH_MAX_KB, f"the hub grew by {grown // 1024} MB"
        assert httpx.get(f"http://127.0.0.1:{proc.port}/v1/health", timeout=10).status_code == 200
    finally:
        proc.stop()


DEEP = 1_000


@pytest.mark.parametrize("body", [
    b'{"code": ' + b"[" * DEEP + b"]" * DEEP + b', "terminal": "T1"}',  # parsed, then str() of it recursed
    b'{"terminal": "T1", "code": ' + b"[" * 2 * DEEP + b"}",  # deeper than orjson reads: json.loads recursed
    b"[" * DEEP + b"]" * DEEP,
    b'{"code": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",  # past the enrolment's size limit
])
def test_json_nested_1000_deep_to_enroll_is_a_4xx_problem_not_a_500(hub_http, body: bytes) -> None:  # type: ignore[no-untyped-def]
    r = hub_http.post("/v1/enroll", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 413), r.text
    assert r.json()["code"] in ("invalid_json", "invalid_input", "too_large")


def test_json_nested_1000_deep_to_a_signed_sync_is_a_4xx_problem(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    secret = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"}).json()["secret"]
    for body in (b'{"entries": ' + b"[" * DEEP + b"]" * DEEP + b"}", b'{"entries": ' + b"[" * 100 * DEEP + b"}"):
        r = hub_http.post("/v1/sync", content=body, headers=signing.signed_headers("T1", secret, "POST", "/v1/sync",
                                                                                     body))
        assert 400 <= r.status_code < 500 and r.json()["code"] in ("invalid_json", "bad_payload"), r.text
