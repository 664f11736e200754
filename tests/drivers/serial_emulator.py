"""A magnetic stripe reader on a socat PTY pair: the driver opens `port`, the test
writes the reader's bytes into the other end. Killing socat is an unplug."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

LINK_TIMEOUT_S = 10.0


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
