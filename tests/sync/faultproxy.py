"""A TCP proxy between agent and hub processes that misbehaves on purpose: it drops
requests, drops answers after the hub committed, delays, resets connections,
truncates answers and answers 503, at random (seeded) or on command. One request
per connection is assumed for the faults that act on answers (the agent's httpx
keeps connections alive, so the proxy closes each connection after one answer)."""

from __future__ import annotations

import asyncio
import random
import threading

FAULTS = ("drop_request", "drop_answer", "delay", "reset", "truncate", "error_503")
READ_CHUNK = 65536
HEADER_END = b"\r\n\r\n"


class FaultProxy:
    def __init__(self, listen_port: int, target_port: int, rate: float = 0.3, seed: int = 0) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self.rate = rate
        self.random = random.Random(seed)
        self.injected = {f: 0 for f in FAULTS}
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def start(self) -> "FaultProxy":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.listen_port)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    async def _read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(HEADER_END)
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length) if length else b""
        return head + body

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault = self.random.choice(FAULTS) if self.random.random() < self.rate else None
        if fault:
            self.injected[fault] += 1
        try:
            request = await self._read_request(reader)
            if fault == "drop_request":
                return
            if fault == "reset":
                writer.transport.abort()
                return
            if fault == "error_503":
                writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 5\r\nconnection: close\r\n\r\nfault")
                await writer.drain()
                return
            if fault == "delay":
                await asyncio.sleep(0.2)
            hub_reader, hub_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            hub_writer.write(request.replace(b"keep-alive", b"close"))
            await hub_writer.drain()
            answer = b""
            while True:
                chunk = await hub_reader.read(READ_CHUNK)
                if not chunk:
                    break
                answer += chunk
            hub_writer.close()
            if fault == "drop_answer":
                return  # the hub committed; the agent never hears
            if fault == "truncate":
                answer = answer[: max(len(answer) // 2, 1)]
            writer.write(answer)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError, ValueError):
            return
        finally:
            writer.close()
