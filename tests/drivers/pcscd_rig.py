"""A real pcscd with the vpcd virtual reader, for the PC/SC tests.

Starts `pcscd --foreground` (Debian package pcscd) as root; pcscd loads the vpcd
driver of Debian's vsmartcard-vpcd from its entry in /etc/reader.conf.d/, which
gives the reader "Virtual PCD 00 00" and the TCP port 35963 a virtual card
(tests/drivers/vcard.py) connects to. Skips, naming the missing Debian package,
when either is not installed.

Only one pcscd can own /run/pcscd/pcscd.comm. A pcscd this rig did not start is
never killed by name: the tests skip and say how to stop it, unless
PCSCD_RIG_TAKE_OVER=1 allows the rig to stop exactly those pids (e.g. in a
throw-away CI container where the package's postinst started one).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PCSCD_CANDIDATES = ("/usr/sbin/pcscd", "/usr/bin/pcscd", "/usr/local/sbin/pcscd")
READER_CONF_DIR = Path("/etc/reader.conf.d")
VPCD_DRIVER_DIRS = (Path("/usr/lib/pcsc/drivers"), Path("/usr/local/lib/pcsc/drivers"))
READER_NAME = "Virtual PCD"
VPCD_READER = f"{READER_NAME} 00 00"  # the first slot of the vpcd driver
START_TIMEOUT_S = 15.0  # pcscd up and the vpcd reader listed
STOP_TIMEOUT_S = 10.0  # SIGTERM, then SIGKILL
CARD_STATE_TIMEOUT_S = 10.0  # pcscd seeing a virtual card arrive or leave
STATE_WAIT_MS = 200  # one SCardGetStatusChange while waiting for a card state
TAKE_OVER_ENV = "PCSCD_RIG_TAKE_OVER"


def _pcscd_binary() -> str | None:
    found = shutil.which("pcscd")
    return found or next((p for p in PCSCD_CANDIDATES if Path(p).exists()), None)


def _vpcd_driver() -> Path | None:
    """The vpcd driver library, from its reader.conf.d entry's LIBPATH or the driver folders."""
    if READER_CONF_DIR.is_dir():
        for conf in sorted(READER_CONF_DIR.iterdir()):
            try:
                lines = conf.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                words = line.split()
                if len(words) == 2 and words[0] == "LIBPATH" and "vpcd" in words[1] and Path(words[1]).exists():
                    return Path(words[1])
    for folder in VPCD_DRIVER_DIRS:
        if folder.is_dir():
            for lib in folder.rglob("libifdvpcd.so*"):
                return lib
    return None


def _other_pcscd_pids() -> list[int]:
    """Live pcscd processes (a zombie holds no socket and is not in the way)."""
    out = subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True, text=True).stdout
    live = []
    for pid in map(int, out.split()):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            live.append(pid)
    return live


def need_stack() -> str:
    """The pcscd binary, or a skip naming what is missing."""
    pcscd = _pcscd_binary()
    if pcscd is None:
        pytest.skip("pcscd is not installed (Debian package: pcscd)")
    if _vpcd_driver() is None:
        pytest.skip("the vpcd virtual reader driver libifdvpcd.so is not installed (Debian package: vsmartcard-vpcd)")
    if not any("vpcd" in p.read_text(errors="replace") for p in READER_CONF_DIR.glob("*") if p.is_file()):
        pytest.skip(f"no vpcd entry in {READER_CONF_DIR} (Debian package: vsmartcard-vpcd)")
    try:
        import smartcard  # noqa: F401
    except ImportError:
        pytest.skip("pyscard is not installed (it builds from source with libpcsclite-dev and swig)")
    if os.geteuid() != 0:
        pytest.skip("pcscd for the tests needs root (it owns /run/pcscd)")
    return pcscd


class Pcscd:
    """One pcscd process of ours; start() and stop() may be called again (a restart)."""

    def __init__(self) -> None:
        self.binary = need_stack()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = Path(tempfile.mkstemp(prefix="pcscd-rig-", suffix=".log")[1])

    def _clear_others(self) -> None:
        others = _other_pcscd_pids()
        if not others:
            return
        if os.environ.get(TAKE_OVER_ENV) != "1":
            pytest.skip(f"another pcscd is running (pids {others}); stop it (systemctl stop pcscd.socket "
                        f"pcscd.service) or set {TAKE_OVER_ENV}=1 to let the tests stop it")
        for pid in others:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _other_pcscd_pids():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the other pcscd {others} would not stop")
            time.sleep(0.05)

    def start(self) -> "Pcscd":
        if self.proc is not None:
            return self
        self._clear_others()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([self.binary, "--foreground", "--error"], stdout=log, stderr=log)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        from smartcard.scard import (SCARD_S_SUCCESS, SCARD_SCOPE_USER, SCardEstablishContext, SCardListReaders,
                                     SCardReleaseContext)

        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self.proc.returncode}: {self.log_tail()}")
            rc, ctx = SCardEstablishContext(SCARD_SCOPE_USER)
            if rc == SCARD_S_SUCCESS:
                rc, readers = SCardListReaders(ctx, [])
                SCardReleaseContext(ctx)
                if rc == SCARD_S_SUCCESS and any(READER_NAME in r for r in readers):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"pcscd did not show the vpcd reader in time: {self.log_tail()}")

    def wait_card(self, present: bool, reader: str = VPCD_READER) -> None:
        """Until pcscd itself sees a card in (or out of) the reader: how a test knows a
        card left before the next is put down, without guessing with a sleep."""
        from smartcard import scard

        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rc != scard.SCARD_S_SUCCESS:
            raise RuntimeError("pcscd is not running")
        try:
            state = scard.SCARD_STATE_UNAWARE
            deadline = time.monotonic() + CARD_STATE_TIMEOUT_S
            while time.monotonic() < deadline:
                rc, states = scard.SCardGetStatusChange(ctx, STATE_WAIT_MS, [(reader, state)])
                if rc == scard.SCARD_S_SUCCESS:
                    state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                    if bool(state & scard.SCARD_STATE_PRESENT) == present:
                        return
                elif rc != scard.SCARD_E_TIMEOUT:
                    time.sleep(0.05)
            raise RuntimeError(f"pcscd did not see the card {'arrive' if present else 'leave'} in time")
        finally:
            scard.SCardReleaseContext(ctx)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="module")
def pcscd() -> Iterator[Pcscd]:
    """pcscd with the vpcd reader for the tests of one module; stopped afterwards."""
    daemon = Pcscd().start()
    try:
        yield daemon
    finally:
        daemon.stop()
        daemon.log_path.unlink(missing_ok=True)
