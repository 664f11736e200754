"""A magnetic stripe reader on a socat PTY pair: the driver opens `port`, the test
writes the reader's bytes into the other end. Killing socat is an unplug.

    socat -d -d pty,raw,echo=0,link=<port> pty,raw,echo=0,link=<device>

Msr605Device plays an MSR206/605/606 on the device end: it listens for the driver's
`ESC a` (reset), `ESC e` (communication test, answered `ESC y`) and `ESC r` (ISO
read) and answers a swipe only when armed, as the real reader does. It can start
deaf (`listening=False`: powered off, or not yet listening; commands are lost until
`listen()`), and `power_cycle()` makes it forget a pending read (replugged, or it
flushed its input).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

LINK_TIMEOUT_S = 10.0  # socat creates its links in milliseconds; this is for a loaded CI machine
COMMAND_POLL_S = 0.02  # how often the MSR605 emulator looks at its stop flag


def need_socat() -> str:
    path = shutil.which("socat")
    if path is None:
        pytest.skip("socat is not installed (Debian package: socat)")
    return path


class PtyReader:
    def __init__(self, folder: Path) -> None:
        self.port = folder / "reader-host"  # what the driver opens
        self.device = folder / "reader-device"  # where the emulated reader writes
        self.proc: subprocess.Popen[bytes] | None = None
        self.fd: int | None = None

    def plug(self) -> "PtyReader":
        socat = need_socat()
        for link in (self.port, self.device):
            link.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [socat, "-d", "-d", f"pty,raw,echo=0,link={self.port}", f"pty,raw,echo=0,link={self.device}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + LINK_TIMEOUT_S
        while not (self.port.exists() and self.device.exists()):
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not create the PTY pair")
            time.sleep(0.01)
        self.fd = os.open(self.device, os.O_RDWR | os.O_NOCTTY)
        return self

    def unplug(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        os.write(self.fd, data)

    def write_split(self, data: bytes, *at: int, gap_s: float = 0.002) -> None:
        """`data` in pieces cut at the given offsets, with a pause between them."""
        cuts = [0, *at, len(data)]
        for a, b in zip(cuts, cuts[1:]):
            self.write(data[a:b])
            time.sleep(gap_s)

    def write_bytewise(self, data: bytes, gap_s: float = 0.0005) -> None:
        for i in range(len(data)):
            self.write(data[i:i + 1])
            if gap_s:
                time.sleep(gap_s)

    def read_host_bytes(self, n: int, timeout_s: float = 5.0) -> bytes:
        """What the driver sent to the reader (commands of the MSR605 protocol)."""
        assert self.fd is not None
        os.set_blocking(self.fd, False)
        got = b""
        deadline = time.monotonic() + timeout_s
        while len(got) < n and time.monotonic() < deadline:
            try:
                got += os.read(self.fd, n - len(got))
            except BlockingIOError:
                time.sleep(0.005)
        os.set_blocking(self.fd, True)
        return got


def msr605_answer(*tracks: bytes | None, status: bytes = b"0") -> bytes:
    """An MSR605 answer to ESC r: track data with sentinels, None for an empty track."""
    body = b""
    for number, data in enumerate(tracks, start=1):
        body += b"\x1b" + bytes([number]) + (data if data is not None else b"\x1b+")
    return b"\x1bs" + body + b"?\x1c\x1b" + status


def noise(n: int, seed: int = 7) -> bytes:
    """Line noise that opens no frame: no sentinels, STX, ETX, CR or LF."""
    forbidden = set(b"%;+?\x02\x03\r\n")
    out, x = bytearray(), seed
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        if (x >> 16) & 0xFF not in forbidden:
            out.append((x >> 16) & 0xFF)
    return bytes(out)


class Msr605Device:
    """An MSR605 on the device end of the PTY: commands in, answers out when armed."""

    def __init__(self, pty: PtyReader, listening: bool = True) -> None:
        self.pty = pty
        self.commands: list[bytes] = []  # commands the reader heard and carried out
        self.lost: list[bytes] = []  # commands sent while it was not listening
        self._listening = threading.Event()
        if listening:
            self._listening.set()
        self._lost_read = threading.Event()
        self._armed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def start(self) -> "Msr605Device":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _listen(self) -> None:
        pending = b""
        while not self._stop.is_set():
            fd = self.pty.fd
            if fd is None:
                return
            try:
                ready, _, _ = select.select([fd], [], [], COMMAND_POLL_S)
                if not ready:
                    continue
                pending += os.read(fd, 64)
            except OSError:
                return  # unplugged
            while len(pending) >= 2:
                if pending[0] != 0x1B:
                    pending = pending[1:]
                    continue
                command, pending = pending[:2], pending[2:]
                if not self._listening.is_set():
                    self.lost.append(command)
                    if command == b"\x1br":
                        self._lost_read.set()
                    continue
                self.commands.append(command)
                if command == b"\x1ba":
                    self._armed.clear()  # reset: no read pending
                elif command == b"\x1be":
                    self.pty.write(b"\x1by")  # communication test: "I am here"
                elif command == b"\x1br":
                    self._armed.set()

    def listen(self) -> None:
        """The reader is powered and listening from now on."""
        self._listening.set()

    def power_cycle(self) -> None:
        """The reader restarted (replugged, or it flushed its input): a pending read is forgotten."""
        self._armed.clear()

    def wait_lost_read(self, timeout_s: float = 5.0) -> bool:
        """Until the driver sent an ISO read (ESC r) that this deaf reader lost."""
        return self._lost_read.wait(timeout_s)

    def wait_armed(self, timeout_s: float = 5.0) -> bool:
        return self._armed.wait(timeout_s)

    def swipe(self, answer: bytes, timeout_s: float = 5.0) -> None:
        """Answer the pending read command with `answer` (see msr605_answer)."""
        if not self._armed.wait(timeout_s):
            raise AssertionError(f"the driver never sent ESC r (commands so far: {self.commands})")
        self._armed.clear()
        self.pty.write(answer)
