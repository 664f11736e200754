"""A real HTTP server on loopback standing in for an SMS gateway (Kavenegar, SMS.ir
or a generic one), in a thread. Each request is answered by the next scripted mode
(then `default`): ok, timeout (no answer for `hang_s`), 500, 429 (with
Retry-After), malformed (taken, but 200 with broken JSON), hold (taken at once,
answered only once released: a worker killed then never learns it was taken),
refuse (a provider's own refusal).

It records what it received, and what a phone would have received: Kavenegar drops a
repeat of a `localid` it has seen (its documented behaviour); the others deliver
every request they accept.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class Fake:
    def __init__(self, flavour: str = "kavenegar", default: str = "ok", hang_s: float = 5.0,
                 retry_after: str = "2") -> None:
        self.flavour, self.default, self.hang_s, self.retry_after = flavour, default, hang_s, retry_after
        self.script: list[str] = []
        self.requests: list[dict[str, Any]] = []  # every request, as parsed
        self.delivered: list[dict[str, Any]] = []  # what phones received
        self.localids: dict[str, int] = {}
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.next_id = 1000

    def mode(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else self.default

    def fields(self, handler: BaseHTTPRequestHandler, body: bytes) -> dict[str, Any]:
        url = urlsplit(handler.path)
        data: dict[str, Any] = dict(parse_qsl(url.query))
        ctype = handler.headers.get("Content-Type", "")
        if body and "json" in ctype:
            data |= json.loads(body)
        elif body:
            data |= dict(parse_qsl(body.decode()))
        data["_path"] = url.path
        data["_headers"] = {k.lower(): v for k, v in handler.headers.items()}
        return data

    def accept(self, data: dict[str, Any]) -> tuple[int, Any]:
        """(status, JSON) of a message taken."""
        with self.lock:
            if self.flavour == "kavenegar":
                localid = data.get("localid")
                if localid in self.localids:  # a repeat: the first message's answer, nothing sent
                    return 200, self._kavenegar(data, self.localids[localid])
                self.next_id += 1
                if localid:
                    self.localids[localid] = self.next_id
                self.delivered.append({"mobile": data.get("receptor"), "text": data.get("message") or data.get("token"),
                                       "ref": localid})
                return 200, self._kavenegar(data, self.next_id)
            self.next_id += 1
            if self.flavour == "smsir":
                mobile = (data.get("mobiles") or [data.get("mobile")])[0]
                self.delivered.append({"mobile": mobile, "text": data.get("messageText") or data.get("parameters"),
                                       "ref": None})
                return 200, {"status": 1, "message": "موفق", "data": {"packId": "p", "messageIds": [self.next_id],
                                                                      "messageId": self.next_id, "cost": 1}}
            self.delivered.append({"mobile": data.get("to"), "text": data.get("text"), "ref": data.get("ref")})
            return 200, {"id": self.next_id}

    @staticmethod
    def _kavenegar(data: dict[str, Any], message_id: int) -> dict[str, Any]:
        return {"return": {"status": 200, "message": "تایید شد"},
                "entries": [{"messageid": message_id, "message": data.get("message"), "status": 1,
                             "statustext": "در صف ارسال", "sender": "10004346", "receptor": data.get("receptor"),
                             "date": int(time.time()), "cost": 120}]}

    def refusal(self) -> tuple[int, Any]:
        if self.flavour == "kavenegar":
            return 411, {"return": {"status": 411, "message": "گیرنده نامعتبر است"}, "entries": None}
        if self.flavour == "smsir":
            return 200, {"status": 0, "message": "invalid line", "data": None}
        return 400, {"error": "bad request"}

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = 64 * 1024  # the answer in one write (flushed after each request), and no Nagle
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = fake.fields(self, self.rfile.read(length) if length else b"")
                mode = fake.mode()
                with fake.lock:
                    fake.requests.append(data | {"_mode": mode})
                if mode == "timeout":
                    time.sleep(fake.hang_s)
                    return
                if mode == "hold":  # taken at once, answered only when released (or never)
                    status, body = fake.accept(data)
                    fake.release.wait(60)
                    self._answer(status, json.dumps(body, ensure_ascii=False).encode())
                elif mode == "500":
                    self._answer(500, b'{"error": "internal"}')
                elif mode == "429":
                    self._answer(429, b'{"error": "slow down"}', {"Retry-After": fake.retry_after})
                elif mode == "malformed":
                    fake.accept(data)  # taken, but the answer is cut off
                    self._answer(200, b'{"return": {"status": 200, "entr')
                elif mode == "refuse":
                    status, body = fake.refusal()
                    self._answer(status, json.dumps(body).encode())
                else:
                    status, body = fake.accept(data)
                    self._answer(status, json.dumps(body, ensure_ascii=False).encode())

            do_GET = do_POST = do_PUT = _handle

        return Handler


@contextmanager
def serving(fake: Fake) -> Iterator[str]:
    """The fake on a free loopback port in a thread; its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()
