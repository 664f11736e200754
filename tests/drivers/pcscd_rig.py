"""A real pcscd with the vpcd virtual reader, for the PC/SC tests.

Starts `pcscd --foreground` (Debian package pcscd) with the vpcd driver of Debian's
vsmartcard-vpcd; stops any pcscd already running first, since only one may own the
socket. Skips with the missing package's name when either is not installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
READER_NAME = "Virtual PCD"
START_TIMEOUT_S = 15.0


def need_stack() -> str:
    pcscd = shutil.which("pcscd") or ("/usr/sbin/pcscd" if Path("/usr/sbin/pcscd").exists() else None)
    if pcscd is None:
        pytest.skip("pcscd is not installed (Debian package: pcscd)")
    if not VPCD_DRIVER.exists() or not VPCD_CONF.exists():
        pytest.skip("the vpcd virtual reader is not installed (Debian package: vsmartcard-vpcd)")
    try:
        import smartcard  # noqa: F401
    except ImportError:
        pytest.skip("pyscard is not installed (it builds from source with libpcsclite-dev and swig)")
    if os.geteuid() != 0:
        pytest.skip("pcscd for the tests needs root (it owns /run/pcscd)")
    return pcscd


class Pcscd:
    def __init__(self) -> None:
        self.binary = need_stack()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Pcscd":
        subprocess.run(["pkill", "-x", "pcscd"], check=False)
        deadline = time.monotonic() + START_TIMEOUT_S
        while subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True).returncode == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("another pcscd would not stop")
            time.sleep(0.05)
        self.proc = subprocess.Popen([self.binary, "--foreground", "--error"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        from smartcard.scard import (SCARD_S_SUCCESS, SCARD_SCOPE_USER, SCardEstablishContext, SCardListReaders,
                                     SCardReleaseContext)

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            rc, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
            if rc == SCARD_S_SUCCESS:
                rc, readers = SCardListReaders(ctx, [])
                SCardReleaseContext(ctx)
                if rc == SCARD_S_SUCCESS and any(READER_NAME in r for r in readers):
                    return
            time.sleep(0.1)
        raise RuntimeError("pcscd did not show the vpcd reader in time")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
