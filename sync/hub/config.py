"""The hub's configuration: one TOML file (`loyalty-hub --config hub.toml`, or
$LOYALTY_HUB_CONFIG), validated once at start into typed models; with no file, the
embedded defaults (SQLite, messages written to a file by the console gateway).

Every field has a docstring; `hub.example.toml` documents every key (a test checks).
An error names the file and the key in one line; a secret's value is never echoed.
Gateway secrets may be given in the file or, better, named by `*_env` keys and read
from the environment. Relative paths are taken from the config file's folder.
"""

from __future__ import annotations

import json
import os
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sync.hub.messages.errors import ConfigError, TemplateError
from sync.hub.messages.templates import KINDS, Templates, built_in, parse_templates
from sync.hub.messages.text import parse_offset

CONFIG_ENV = "LOYALTY_HUB_CONFIG"
_SECRET_WORDS = ("token", "secret", "key", "password", "auth")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _clock_time(value: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise PydanticCustomError("clock_time", "must be a time of day like 21:00") from None


class HubSection(_Section):
    db: str = ""
    """Database URL (sqlite:///file or postgresql+psycopg://user@host/db); empty: --db, $LOYALTY_HUB_DB or
    sqlite:///hub.sqlite3. --db and $LOYALTY_HUB_DB win over it."""


class CardsSection(_Section):
    stock_required: bool = False
    """The chain's choice: true lets a till issue (or replace with) only a pre-printed card of its store's stock
    (`loyalty-hub cards stock assign`); false: any number in the card ranges, as before."""


class MaxAges(_Section):
    """Minutes after what a message is about happened beyond which it is not sent
    (a receipt delivered the next morning is dropped)."""

    code: int = Field(default=10, ge=1)
    """Verification codes (a code is useless once expired)."""
    welcome: int = Field(default=2880, ge=1)
    """Welcome, from the member's arrival at the hub."""
    receipt: int = Field(default=180, ge=1)
    """Purchase receipts, from the sale."""
    tier: int = Field(default=1440, ge=1)
    """Tier changes."""
    birthday: int = Field(default=720, ge=1)
    """Birthday greetings, from the morning's job."""
    expiry: int = Field(default=4320, ge=1)
    """Warnings before points expire."""
    offer: int = Field(default=1440, ge=1)
    """Offers met."""
    gift_load: int = Field(default=180, ge=1)
    """Gift card loads."""
    gift_spend: int = Field(default=180, ge=1)
    """Gift card spends."""
    campaign: int = Field(default=4320, ge=1)
    """Campaign messages, from the time they were due."""


class MessagesSection(_Section):
    enabled: bool = True
    """false: the sync writes no message events and `messages worker` refuses to start."""
    gateway: str = "console"
    """The gateway (a [gateways.NAME] table) messages go through."""
    code_gateway: str = ""
    """Verification codes through another gateway (a [gateways.NAME]); empty: the same as `gateway`."""
    locale: Literal["fa", "en"] = "fa"
    """Language of messages (per store below)."""
    calendar: Literal["jalali", "gregorian"] = "jalali"
    """Dates in messages, and which birthday is greeted."""
    currency: Literal["toman", "rial"] = "toman"
    """Money in messages: Toman (a tenth of a Rial, as shops write it) or Rial."""
    persian_digits: bool = True
    """Persian digits in Persian messages (codes stay 0-9)."""
    price_per_part_rial: int = Field(default=0, ge=0)
    """What one SMS part costs, in Rial: previews and campaigns show the cost."""
    templates: str = ""
    """TOML file of templates (hub.example.toml's neighbour templates.example.toml); empty: the built-in ones."""
    optout_footer_fa: str = Field(default="لغو۱۱", max_length=40)
    """Line added to Persian marketing messages (birthday, expiry, offer, campaign); empty: none."""
    optout_footer_en: str = Field(default="Stop: 11", max_length=40)
    """The same for English messages."""
    optout_words: list[str] = ["لغو", "11", "stop", "off", "انصراف"]
    """A reply that is one of these (any digits, any case) opts its sender out of every message but codes."""
    utc_offset: str = "+03:30"
    """The stores' time zone (Iran); per store below."""
    quiet_start: str = "21:00"
    """Local time from which no message is sent but verification codes ..."""
    quiet_end: str = "08:00"
    """... until this time; a message due in between waits until then (or is dropped if too old by then)."""
    daily_limit: int = Field(default=3, ge=0)
    """Messages a mobile number receives in a local day, codes not counted; the rest wait a day. 0: no limit."""
    max_age_minutes: MaxAges = MaxAges()
    """Per kind of message: minutes after what it is about happened beyond which it is not sent."""

    @field_validator("utc_offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        try:
            parse_offset(value)
        except ValueError:
            raise PydanticCustomError("offset", "must be an offset like +03:30") from None
        return value

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _clock(cls, value: str) -> str:
        _clock_time(value)
        return value


class WorkerSection(_Section):
    poll_s: float = Field(default=0.5, gt=0, le=60)
    """Seconds a worker waits when it found nothing to do."""
    batch: int = Field(default=50, ge=1, le=1000)
    """Messages one worker claims at a time."""
    send_threads: int = Field(default=4, ge=1, le=64)
    """Messages one worker hands to the gateway at once."""
    lease_s: int = Field(default=120, ge=1, le=3600)
    """Seconds a claimed message is a worker's; a worker killed mid-send leaves it to another after this."""
    attempts_max: int = Field(default=6, ge=1, le=50)
    """Tries of one message before it is recorded failed."""
    backoff_s: float = Field(default=5.0, gt=0, le=3600)
    """Wait before the second try; doubled each try (with jitter) ..."""
    backoff_max_s: float = Field(default=900.0, gt=0, le=86400)
    """... up to this (a gateway's Retry-After is honoured beyond it)."""
    receipt_settle_s: float = Field(default=2.0, ge=0, le=600)
    """Seconds a sale's entries that ended a sync batch wait for the rest of the sale (a batch may split one)."""
    unknown_outcome: Literal["resend", "fail"] = "resend"
    """A send whose outcome is unknown (a worker killed mid-send, a timeout after sending) on a gateway with no
    idempotency key: resend (a member may get it twice) or fail (a member may get none)."""


ReceiptMode = Literal["off", "opt-in", "on"]


class TriggersSection(_Section):
    welcome: bool = True
    """A welcome when a new member reaches the hub (after verification, if required)."""
    receipt: ReceiptMode = "opt-in"
    """Purchase receipts: off, opt-in (only members who asked: `loyalty-hub messages optin`) or on (every member
    who has not opted out)."""
    tier: bool = True
    """A word when a member's tier changes."""
    birthday: bool = True
    """A greeting on the member's birthday (in messages.calendar)."""
    expiry: bool = True
    """A warning before points expire ..."""
    expiry_days: int = Field(default=14, ge=1, le=365)
    """... this many days before."""
    offer: bool = False
    """A message when a sale's points came from an offer ..."""
    offer_rules: list[str] = []
    """... of these rule ids; empty: every offer of the newest published loyalty table."""
    gift: bool = True
    """Gift card load and spend, to the mobile registered for the card (`messages gift-contact`)."""


class StoreTriggers(_Section):
    """A store's own choices; a key left out follows [triggers]."""

    welcome: bool | None = None
    """As [triggers] welcome, for this store."""
    receipt: ReceiptMode | None = None
    """As [triggers] receipt, for this store."""
    tier: bool | None = None
    """As [triggers] tier, for this store."""
    birthday: bool | None = None
    """As [triggers] birthday, for members of this store."""
    expiry: bool | None = None
    """As [triggers] expiry, for members of this store."""
    offer: bool | None = None
    """As [triggers] offer, for this store."""
    gift: bool | None = None
    """As [triggers] gift, for this store."""


class StoreSection(_Section):
    name: str = Field(default="", max_length=60)
    """The store's name in messages ({store}); empty: its code."""
    locale: Literal["fa", "en"] | None = None
    """Language of this store's messages; empty: messages.locale."""
    utc_offset: str | None = None
    """This store's time zone; empty: messages.utc_offset."""
    quiet_start: str | None = None
    """This store's quiet hours; empty: messages.quiet_start."""
    quiet_end: str | None = None
    """... and messages.quiet_end."""
    triggers: StoreTriggers = StoreTriggers()
    """The store's own triggers (a key left out follows [triggers])."""

    @field_validator("utc_offset")
    @classmethod
    def _offset(cls, value: str | None) -> str | None:
        return value if value is None else MessagesSection._offset(value)

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        return value if value is None else MessagesSection._clock(value)


class VerificationSection(_Section):
    required: bool = False
    """The chain's choice: true sends new members a code and nothing else until their mobile is confirmed."""
    digits: int = Field(default=6, ge=5, le=6)
    """Digits of a code."""
    ttl_s: int = Field(default=300, ge=60, le=3600)
    """Seconds a code asked for at the till is valid."""
    arrival_ttl_s: int = Field(default=86400, ge=60, le=604800)
    """Seconds a code sent when an unverified member reaches the hub is valid (the member replies with it, or
    gives it at the next visit)."""
    attempts_max: int = Field(default=5, ge=1, le=20)
    """Wrong codes before a code is void."""
    per_mobile_per_hour: int = Field(default=3, ge=1, le=100)
    """Codes one mobile number may be sent in an hour."""


class _Gateway(_Section):
    webhook_token: SecretStr = SecretStr("")
    """Secret the gateway's delivery reports and inbound messages carry (?token= or X-Webhook-Token); empty:
    no webhooks for it."""
    webhook_token_env: str = ""
    """Environment variable holding webhook_token instead."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """How long one request to the gateway may take."""

    def secret(self, name: str) -> str:
        """A secret of this gateway: the value in the file, else its *_env variable's."""
        value: SecretStr = getattr(self, name)
        if value.get_secret_value():
            return value.get_secret_value()
        env = getattr(self, f"{name}_env", "")
        return os.environ.get(env, "") if env else ""

    @model_validator(mode="after")
    def _env_present(self) -> "_Gateway":
        for name in type(self).model_fields:
            if name.endswith("_env") and getattr(self, name) and not os.environ.get(getattr(self, name)):
                raise PydanticCustomError("env_missing", "environment variable {var} is not set",
                                          {"key": name, "var": getattr(self, name)})
        return self


class FileGateway(_Gateway):
    kind: Literal["file"]
    """What the gateway is: file, http, kavenegar or smsir."""
    path: str = "messages-sent.jsonl"
    """File each message is appended to as one JSON line; "-": standard output (the console)."""


class HttpGateway(_Gateway):
    kind: Literal["http"]
    """What the gateway is."""
    url: str = Field(pattern=r"^https?://\S+$")
    """Where to send each message."""
    method: Literal["POST", "PUT", "GET"] = "POST"
    """HTTP method."""
    auth_header: str = "Authorization"
    """Header carrying auth_value ..."""
    auth_value: SecretStr = SecretStr("")
    """... e.g. "Bearer xyz"; empty: no header."""
    auth_value_env: str = ""
    """Environment variable holding auth_value instead."""
    body: str = '{"to": {mobile}, "text": {text}, "ref": {id}}'
    """JSON body; {mobile}, {text}, {id} and {kind} become JSON values. With GET: query parameters mobile,text,id."""
    id_field: str = ""
    """Dotted path of the provider's message id in its JSON answer (e.g. data.id); empty: not read."""
    idempotency_header: str = ""
    """Header carrying our message id, for a provider that drops a repeat (e.g. Idempotency-Key); empty: none."""
    report_id_field: str = "id"
    """Delivery reports: the field with the provider's message id ..."""
    report_status_field: str = "status"
    """... the field with its state ..."""
    delivered_values: list[str] = ["delivered", "DELIVRD"]
    """... and the states meaning delivered (anything else is not delivered)."""

    @field_validator("body")
    @classmethod
    def _json_body(cls, value: str) -> str:
        sample = value
        for key in ("mobile", "text", "id", "kind"):
            sample = sample.replace("{" + key + "}", '"x"')
        try:
            json.loads(sample)
        except ValueError:
            raise PydanticCustomError("body_json", "must be JSON once {mobile}, {text}, {id} and {kind} are put in "
                                      "(write them bare: they become JSON values)") from None
        return value


class KavenegarGateway(_Gateway):
    kind: Literal["kavenegar"]
    """What the gateway is."""
    api_key: SecretStr = SecretStr("")
    """Kavenegar API key (it is part of every URL: keep logs of proxies private)."""
    api_key_env: str = ""
    """Environment variable holding api_key instead."""
    sender: str = ""
    """Sender line number; empty: the account's default line."""
    url: str = "https://api.kavenegar.com/v1"
    """API base."""
    verify_template: str = ""
    """A Kavenegar verify/lookup template for codes ({token} is the code); empty: codes go as plain SMS."""


class SmsIrGateway(_Gateway):
    kind: Literal["smsir"]
    """What the gateway is."""
    api_key: SecretStr = SecretStr("")
    """SMS.ir API key (header X-API-KEY)."""
    api_key_env: str = ""
    """Environment variable holding api_key instead."""
    line_number: str = ""
    """Sender line number."""
    url: str = "https://api.sms.ir/v1"
    """API base."""
    verify_template_id: int = Field(default=0, ge=0)
    """An SMS.ir verify template for codes (parameter CODE); 0: codes go as plain SMS."""


GatewayConfig = Annotated[FileGateway | HttpGateway | KavenegarGateway | SmsIrGateway, Field(discriminator="kind")]


class HubConfig(_Section):
    hub: HubSection = HubSection()
    cards: CardsSection = CardsSection()
    messages: MessagesSection = MessagesSection()
    worker: WorkerSection = WorkerSection()
    triggers: TriggersSection = TriggersSection()
    verification: VerificationSection = VerificationSection()
    stores: dict[str, StoreSection] = {}
    gateways: dict[str, GatewayConfig] = {"console": FileGateway(kind="file")}

    source: str = Field(default="<defaults>", exclude=True)
    base_dir: str = Field(default=".", exclude=True)
    # the templates, loaded and checked with the file (not a key of it)
    loaded_templates: Any = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _gateways_named(self) -> "HubConfig":
        for key in ("gateway", "code_gateway"):
            name = getattr(self.messages, key)
            if name and name not in self.gateways:
                raise PydanticCustomError("no_gateway", "no [gateways.{name}] table",
                                          {"key": f"messages.{key}", "name": name})
        return self

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def templates(self) -> Templates:
        return self.loaded_templates if self.loaded_templates is not None else built_in()

    def store(self, code: str | None) -> StoreSection:
        return self.stores.get(code or "", StoreSection())

    def store_name(self, code: str | None) -> str:
        return self.store(code).name or (code or "")

    def locale(self, store: str | None) -> str:
        return self.store(store).locale or self.messages.locale

    def offset(self, store: str | None) -> timedelta:
        return parse_offset(self.store(store).utc_offset or self.messages.utc_offset)

    def quiet(self, store: str | None) -> tuple[time, time]:
        s = self.store(store)
        m = self.messages
        return _clock_time(s.quiet_start or m.quiet_start), _clock_time(s.quiet_end or m.quiet_end)

    def trigger(self, store: str | None, name: str) -> Any:
        """A trigger's setting for a store: its own, else the chain's."""
        own = getattr(self.store(store).triggers, name)
        return own if own is not None else getattr(self.triggers, name)

    def max_age(self, kind: str) -> timedelta:
        return timedelta(minutes=getattr(self.messages.max_age_minutes, kind))

    def code_gateway_name(self) -> str:
        return self.messages.code_gateway or self.messages.gateway


assert set(MaxAges.model_fields) == set(KINDS)  # every kind has a max age


_UNION_TAGS = frozenset({"file", "http", "kavenegar", "smsir"})


def _key_of(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc if x not in _UNION_TAGS)


def _first_error(file: str, exc: ValidationError) -> ConfigError:
    err = exc.errors(include_url=False)[0]
    ctx = err.get("ctx") or {}
    loc = tuple(err["loc"])
    if "key" in ctx:  # a check across fields names the field it is about
        loc = (*loc, ctx["key"])
    key = _key_of(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        return ConfigError(file, key, "unknown key (check the spelling against hub.example.toml)")
    if kind == "missing":
        return ConfigError(file, key, "required key is missing")
    message = err["msg"]
    secret = any(word in key.rpartition(".")[2] for word in _SECRET_WORDS) and not key.endswith("_env")
    if "input" in err and kind not in ("model_type", "union_tag_invalid") and "key" not in ctx and not secret:
        message = f"{message} (got {err['input']!r})"
    return ConfigError(file, key, message)


def parse_hub_config(data: dict[str, Any], source: str, base_dir: Path) -> HubConfig:
    """Validate an already-parsed TOML document, and load its templates."""
    try:
        cfg = HubConfig.model_validate(data)
    except ValidationError as exc:
        raise _first_error(source, exc) from None
    cfg = cfg.model_copy(update={"source": source, "base_dir": str(base_dir)})
    if cfg.messages.templates:
        path = cfg.resolve(cfg.messages.templates)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(source, "messages.templates", f"cannot read {path}: {exc}") from None
        try:
            templates = parse_templates(text, str(path))
        except TemplateError as exc:
            raise ConfigError(source, "messages.templates", str(exc)) from None
        cfg = cfg.model_copy(update={"loaded_templates": templates})
    return cfg


def load_hub_config(path: str | os.PathLike[str] | None = None) -> HubConfig:
    """The config named (or by $LOYALTY_HUB_CONFIG); with none, the embedded defaults."""
    chosen = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if chosen is None:
        return HubConfig(base_dir=str(Path.cwd()))
    name = str(chosen)
    try:
        data = tomllib.loads(Path(chosen).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(name, "-", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(name, "-", f"cannot read it: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(name, "-", f"is not valid TOML: {exc}") from None
    return parse_hub_config(data, name, Path(chosen).resolve().parent)
