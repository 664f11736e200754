"""What the daemon's parts share while it runs: config, ledger, token, events, sessions."""

from __future__ import annotations

import concurrent.futures
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ledger.service import Ledger
from ledger.users import PIN_KEY_BYTES
from terminal_agent.config import AgentConfig
from terminal_agent.errors import AgentError
from terminal_agent.events import EventBus
from terminal_agent.sessions import SessionStore
from terminal_agent.slip import SlipPrinter

TOKEN_FILE = "api-token"
# The secret that keys PIN hashes (ledger.users): beside the token, never in the ledger,
# so a copied ledger file (or backup) alone cannot be used to guess PINs.
PIN_KEY_FILE = "pin-key"


def api_token(cfg: AgentConfig) -> str:
    """The configured token, else the one in <data_dir>/api-token, created (0600) if missing."""
    if cfg.api.token:
        return cfg.api.token
    path = cfg.data_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def pin_key(cfg: AgentConfig) -> bytes:
    """The 32 random bytes in <data_dir>/pin-key, created (0600) if missing."""
    path = cfg.data_dir / PIN_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it just now: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(PIN_KEY_BYTES))
                fh.flush()
                os.fsync(fh.fileno())  # a key lost to a power cut would lock every user out
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise AgentError(f"cannot read the PIN key {path}: {exc.strerror}") from None
    if len(key) != PIN_KEY_BYTES:
        raise AgentError(f"the PIN key {path} is damaged ({len(key)} bytes, not {PIN_KEY_BYTES}); restore it "
                         "from a copy, or remove it and set every user's PIN again (loyalty-agent users set-pin)")
    return key


@dataclass
class Runtime:
    config: AgentConfig
    ledger: Ledger
    token: str
    # The key of PIN hashes (pin_key above); None where nobody logs in (status).
    pin_key: bytes | None = None
    bus: EventBus = field(default_factory=EventBus)
    sessions: SessionStore = field(default_factory=SessionStore)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    # Parts that report into `status` (sync backlog, last backup) register here.
    status_sources: dict[str, Callable[[], Any]] = field(default_factory=dict)
    stopping: bool = False
    # The thread the API commits sales on (created on first use, shut down by the daemon).
    writer: concurrent.futures.ThreadPoolExecutor | None = None
    # The ESC/POS printer for points slips, if the config names one.
    printer: SlipPrinter | None = None
    # The hub's sync client, when this terminal syncs: members outside the store's scope
    # are looked up through it (terminal_agent.remote).
    hub: Any = None

    def attach_printer(self, printer: SlipPrinter | None) -> None:
        """The slip printer, reported in `status` like the other parts that register."""
        self.printer = printer
        if printer is not None:
            self.status_sources["printer"] = printer.status

    @property
    def ledger_path(self) -> Path:
        return self.config.ledger_path
