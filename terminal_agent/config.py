"""The agent's configuration: one TOML file, validated once at start into typed models.

Every field has a docstring; `config.example.toml` documents every key (a test checks).
Relative paths are taken relative to the directory of the config file.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from drivers.config import CardsConfig, ReaderConfig
from ledger.archive import RETENTION_DAYS_DEFAULT, RETENTION_DAYS_MAX, RETENTION_DAYS_MIN
from ledger.cardpolicy import payment_prefix_of
from terminal_agent.errors import ConfigError
from terminal_agent.slip import default_font

CONFIG_ENV = "LOYALTY_AGENT_CONFIG"
DEFAULT_CONFIG_NAME = "config.toml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(_Section):
    data_dir: str = "data"
    """Folder for the ledger, backups and the run lock (relative to the config file)."""
    store: str = Field(default="main", min_length=1, max_length=64)
    """This store's code, as the hub knows it."""
    terminal: str = Field(default="T1", min_length=1, max_length=64)
    """This terminal's local code; replaced by the hub's terminal id after enrolment."""
    locale: Literal["fa", "en"] = "fa"
    """Language of receipts and explanations: fa (Persian, Jalali dates) or en."""
    persian_digits: bool = True
    """Show Persian digits when locale is fa."""
    log_format: Literal["text", "json"] = "text"
    """Log lines as human-readable text or JSON lines."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written to the log."""


class LedgerSection(_Section):
    path: str = ""
    """SQLite ledger file; empty means <data_dir>/ledger.sqlite3."""
    busy_timeout_ms: int = Field(default=5000, ge=0, le=60_000)
    """How long a writer waits for the database lock before giving up."""
    retention_days: int = Field(default=RETENTION_DAYS_DEFAULT, ge=RETENTION_DAYS_MIN, le=RETENTION_DAYS_MAX)
    """Days own entries and sales stay at the till once the hub holds them; older ones are archived once a day
    (their sums kept). At least a year: tier windows and refunds look back that far."""


class BackupSection(_Section):
    dir: str = ""
    """Folder of rotating backups; empty means <data_dir>/backups."""
    interval_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    """Minutes between scheduled backups by the daemon; 0 turns the schedule off."""
    keep: int = Field(default=24, ge=1, le=10_000)
    """How many backup files to keep; the oldest are deleted first."""


class RulesSection(_Section):
    path: str = ""
    """Loyalty table (ruleset) TOML file; empty means the built-in default table."""


class ApiSection(_Section):
    host: str = "127.0.0.1"
    """Address the local POS API listens on; anything but loopback requires TLS."""
    port: int = Field(default=8765, ge=1, le=65535)
    """TCP port of the local POS API."""
    token: str = Field(default="", max_length=200)
    """Bearer token the POS sends; empty means one is generated into <data_dir>/api-token on first start."""
    tls_cert: str = ""
    """PEM certificate file; with tls_key, serves HTTPS (needed for a non-loopback host)."""
    tls_key: str = ""
    """PEM private key file for tls_cert."""

    @model_validator(mode="after")
    def _loopback_unless_tls(self) -> "ApiSection":
        if not _is_loopback(self.host) and not (self.tls_cert and self.tls_key):
            raise PydanticCustomError(
                "loopback_only",
                "the API may listen only on loopback (127.0.0.1 or ::1) unless tls_cert and tls_key are set",
                {"key": "host"},
            )
        if self.token and len(self.token) < 16:
            raise PydanticCustomError(
                "token_short", "must be at least 16 characters (or empty to generate one)", {"key": "token"}
            )
        return self


class SyncSection(_Section):
    hub_url: str = Field(default="", pattern=r"^(https?://[^\s]+)?$")
    """The central hub, e.g. https://hub.example.com; empty: this terminal does not sync."""
    interval_s: int = Field(default=10, ge=1, le=3600)
    """Seconds between syncs while the hub answers."""
    batch_size: int = Field(default=500, ge=1, le=5000)
    """Entries sent per request."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """How long one request to the hub may take."""
    backoff_max_s: int = Field(default=300, ge=1, le=3600)
    """Longest wait between tries while the hub is unreachable (exponential, with jitter)."""
    ca_bundle: str = ""
    """PEM file of the CAs that may sign the hub's certificate; empty: the system's."""
    offline_redeem_cap: int = Field(default=0, ge=0)
    """Most points one sale may redeem while the hub has not answered for offline_after_s; 0: no cap."""
    offline_after_s: int = Field(default=300, ge=1, le=86400)
    """Seconds without a successful sync after which the terminal counts as offline."""


class PrinterSection(_Section):
    device: str = ""
    """ESC/POS receipt printer's device file (e.g. /dev/usb/lp0) for points slips; empty: no printer."""
    width_px: int = Field(default=576, ge=200, le=1200)
    """Printable width in dots: 576 for 80 mm paper, 384 for 58 mm."""
    font: str = ""
    """TrueType font with Persian and Latin letters; empty: DejaVu Sans (Debian's fonts-dejavu-core)."""
    cut: bool = True
    """Cut the paper after each slip (printers without a cutter: false)."""

    @model_validator(mode="after")
    def _font_exists(self) -> "PrinterSection":
        if self.device and not self.font and default_font() is None:
            raise PydanticCustomError(
                "no_font", "no font with Persian letters found; install fonts-dejavu-core or set a TTF file here",
                {"key": "font"})
        return self


class ConsoleSection(_Section):
    bidi: Literal["reorder", "terminal"] = "reorder"
    """Persian on the console (`loyalty-agent tui`): "reorder" joins the letters and puts them right to left
    for terminals without bidi support (tmux, the Linux console, Windows Terminal); "terminal" leaves that to
    a terminal that does its own bidi (mlterm, Konsole with bidi on), so nothing is reversed twice."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AgentConfig(_Section):
    agent: AgentSection = AgentSection()
    ledger: LedgerSection = LedgerSection()
    backup: BackupSection = BackupSection()
    rules: RulesSection = RulesSection()
    api: ApiSection = ApiSection()
    sync: SyncSection = SyncSection()
    printer: PrinterSection = PrinterSection()
    console: ConsoleSection = ConsoleSection()
    cards: CardsConfig = CardsConfig()
    readers: list[ReaderConfig] = []

    # Set by load_config, not read from the file.
    source: str = Field(default="<defaults>", exclude=True)
    base_dir: str = Field(default=".", exclude=True)

    def resolve(self, path: str) -> Path:
        """A path from the config, taken relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.agent.data_dir)

    @property
    def ledger_path(self) -> Path:
        return self.resolve(self.ledger.path) if self.ledger.path else self.data_dir / "ledger.sqlite3"

    @property
    def backup_dir(self) -> Path:
        return self.resolve(self.backup.dir) if self.backup.dir else self.data_dir / "backups"

    @property
    def printer_font(self) -> str:
        return str(self.resolve(self.printer.font)) if self.printer.font else (default_font() or "")

    @property
    def rules_path(self) -> Path | None:
        return self.resolve(self.rules.path) if self.rules.path else None


# Discriminator values of tagged unions appear in pydantic's error locations; a person
# thinks of `readers[0].port`, not `readers[0].serial.port`.
_UNION_TAGS = frozenset({"simulated", "serial", "pcsc", "keyboard"})
# Values of these keys are never echoed back in an error message.
_SECRET_WORDS = ("token", "secret", "key", "pin", "password")


def _key_of(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts)


def _first_error(file: str, exc: ValidationError) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(x for x in err["loc"] if x not in _UNION_TAGS)
    ctx = err.get("ctx") or {}
    if "key" in ctx:  # a check across fields names the field it is about
        loc = (*loc, ctx["key"])
    key = _key_of(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        return ConfigError(file, key, "unknown key (check the spelling against config.example.toml)")
    if kind == "missing":
        return ConfigError(file, key, "required key is missing")
    message = err["msg"]
    secret = any(word in key for word in _SECRET_WORDS)
    if "input" in err and kind != "model_type" and "key" not in ctx and not secret:
        message = f"{message} (got {err['input']!r})"
    return ConfigError(file, key, message)


def parse_config(data: dict[str, Any], source: str, base_dir: Path) -> AgentConfig:
    """Validate an already-parsed TOML document."""
    try:
        cfg = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise _first_error(source, exc) from None
    cfg = cfg.model_copy(update={"source": source, "base_dir": str(base_dir)})
    if cfg.printer.device and cfg.printer.font and not cfg.resolve(cfg.printer.font).is_file():
        raise ConfigError(source, "printer.font", f"no such font file: {cfg.resolve(cfg.printer.font)}")
    for i, r in enumerate(cfg.cards.ranges):
        network = payment_prefix_of(r.prefix)
        if network is not None:
            raise ConfigError(source, f"cards.ranges[{i}].prefix",
                              f"{r.prefix} is where {network} cards are numbered; a member range there would "
                              "take bank cards for member cards (choose a prefix outside the payment networks)")
    _check_tls(cfg, source)
    return cfg


def _check_tls(cfg: AgentConfig, source: str) -> None:
    """The API's certificate and key exist, can be read and load as a pair: said now, in
    one line, not as a traceback when `run` starts serving."""
    api = cfg.api
    if not (api.tls_cert or api.tls_key):
        return
    if not (api.tls_cert and api.tls_key):
        missing = "api.tls_key" if api.tls_cert else "api.tls_cert"
        raise ConfigError(source, missing, "tls_cert and tls_key are set together (a PEM certificate and its key)")
    for key, value in (("api.tls_cert", api.tls_cert), ("api.tls_key", api.tls_key)):
        path = cfg.resolve(value)
        if not path.is_file():
            raise ConfigError(source, key, f"no such file: {path}")
        if not os.access(path, os.R_OK):
            raise ConfigError(source, key, f"cannot read {path} (permissions)")
    cert, key_file = cfg.resolve(api.tls_cert), cfg.resolve(api.tls_key)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key_file)
    except ssl.SSLError as exc:
        raise ConfigError(source, "api.tls_key", f"{cert} and {key_file} do not load as a PEM certificate and its "
                                                 f"private key ({exc.reason or exc})") from None
    except OSError as exc:
        raise ConfigError(source, "api.tls_cert", f"cannot read {cert} or {key_file}: {exc.strerror}") from None


def default_config_path() -> Path | None:
    """The config file to use when none is named: $LOYALTY_AGENT_CONFIG, else ./config.toml if present."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.exists() else None


def load_config(path: str | os.PathLike[str] | None = None) -> AgentConfig:
    """Read and validate the config; with no file at all, the embedded defaults."""
    chosen = Path(path) if path is not None else default_config_path()
    if chosen is None:
        return AgentConfig(base_dir=str(Path.cwd()))
    name = str(chosen)
    try:
        raw = chosen.read_bytes()
    except FileNotFoundError:
        raise ConfigError(name, "", "file not found") from None
    except OSError as exc:
        raise ConfigError(name, "", f"cannot read file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(name, "", "file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "", f"not valid TOML: {exc}") from None
    return parse_config(data, name, chosen.resolve().parent)
