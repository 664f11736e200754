"""Serial reader latency: frames parsed per second by the ASCII decoder, and the time
from the last byte of a swipe written to a PTY to the CardRead event delivered.

The floor, in the same run: a raw os.read round trip on the same kind of PTY pair
(socat), the least any driver could do. Last line: one JSON object.
Budget: p99 <= 5 ms from last byte to event.
usage: python bench/reader_latency.py [--swipes N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.cards import Deduper  # noqa: E402
from ledger.cardpolicy import CardPolicy, CardRange as Range  # noqa: E402
from drivers.config import SerialReaderConfig  # noqa: E402
from drivers.events import CardRead, ReaderStatus  # noqa: E402
from drivers.framing import AsciiDecoder, Msr605Decoder  # noqa: E402
from drivers.magstripe import encode_track  # noqa: E402
from drivers.serial_reader import SerialReader  # noqa: E402
from tests.drivers.serial_emulator import PtyReader, msr605_answer  # noqa: E402

DECODE_FRAMES = 20_000  # frames through each pure decoder
DISTINCT_FRAMES = 200  # different card numbers cycled through


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def frame(i: int) -> bytes:
    number = f"6395{i:012d}"
    return (encode_track(1, number) + "\r" + encode_track(2, number, "2912101")).encode() + b"\r\n"


def decode_rate(n: int = DECODE_FRAMES) -> float:
    frames = [frame(i) for i in range(DISTINCT_FRAMES)]
    d = AsciiDecoder()
    start = time.perf_counter()
    for i in range(n):
        d.feed(frames[i % DISTINCT_FRAMES])
    assert d.counters.swipes == n and d.counters.bad_frames == 0
    return n / (time.perf_counter() - start)


def msr605_decode_rate(n: int = DECODE_FRAMES) -> float:
    numbers = [f"6395{i:012d}" for i in range(DISTINCT_FRAMES)]
    answers = [msr605_answer(encode_track(1, x).encode(), encode_track(2, x).encode(), None) for x in numbers]
    d = Msr605Decoder()
    start = time.perf_counter()
    for i in range(n):
        d.feed(answers[i % DISTINCT_FRAMES])
    assert d.counters.swipes == n and d.counters.bad_frames == 0
    return n / (time.perf_counter() - start)


async def driver_latency(folder: Path, swipes: int) -> list[float]:
    pty = PtyReader(folder).plug()
    cfg = SerialReaderConfig(kind="serial", id="bench", port=str(pty.port))
    reader = SerialReader(cfg, CardPolicy((Range("6395", (16,), False),)), Deduper(timedelta(0)))
    times: list[float] = []
    stream = reader.events()
    try:
        while not isinstance(await stream.__anext__(), ReaderStatus):
            pass
        for i in range(swipes):
            data = frame(i + 1)
            t0 = time.perf_counter()
            pty.write(data)
            while True:
                event = await stream.__anext__()
                if isinstance(event, CardRead):
                    break
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        await reader.close()
        pty.unplug()
    return times


def floor_latency(folder: Path, swipes: int) -> list[float]:
    pty = PtyReader(folder).plug()
    host = os.open(pty.port, os.O_RDWR | os.O_NOCTTY)
    times = []
    try:
        for i in range(swipes):
            data = frame(i + 1)
            t0 = time.perf_counter()
            pty.write(data)
            got = b""
            while not got.endswith(b"\n"):
                select.select([host], [], [], 1.0)
                got += os.read(host, 4096)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(host)
        pty.unplug()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--swipes", type=int, default=500)
    n = parser.parse_args().swipes
    rate = decode_rate()
    msr_rate = msr605_decode_rate()
    with tempfile.TemporaryDirectory() as tmp:
        lat = asyncio.run(driver_latency(Path(tmp), n))
        floor = floor_latency(Path(tmp), n)
    print(f"decoder: ascii {rate:,.0f} frames/s, msr605 {msr_rate:,.0f} answers/s; swipe to event p50 {pct(lat, 0.5):.3f} ms, p99 {pct(lat, 0.99):.3f} ms; "
          f"raw PTY read p50 {pct(floor, 0.5):.3f} ms, p99 {pct(floor, 0.99):.3f} ms")
    print(json.dumps({"bench": "reader_latency", "frames_per_s": round(rate), "msr605_frames_per_s": round(msr_rate),
                      "p50_ms": round(pct(lat, 0.5), 3),
                      "p99_ms": round(pct(lat, 0.99), 3), "floor_p50_ms": round(pct(floor, 0.5), 3),
                      "floor_p99_ms": round(pct(floor, 0.99), 3), "budget_p99_ms": 5}))


if __name__ == "__main__":
    main()
