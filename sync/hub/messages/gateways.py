"""Gateways: one interface (`Gateway.send`, and reading a gateway's delivery
reports and inbound messages), four kinds.

- `file`: each message appended to a file as a JSON line, or printed ("-"): the
  embedded default, and what tests and previews read.
- `http`: any provider, configured by URL, method, auth header and a JSON body
  template.
- `kavenegar` and `smsir`: the two Iranian providers' REST APIs.

The provider adapters were written from the providers' public documentation as
remembered, not checked against it at the time of writing (no network here):
Kavenegar's REST docs (kavenegar.com/rest.html: `/v1/{API-KEY}/sms/send.json` with
receptor, sender, message and localid; `/v1/{API-KEY}/verify/lookup.json` with
receptor, token and template; answers `{"return": {"status", "message"},
"entries": [...]}`; delivery callbacks `messageid` and `status`, 10 delivered) and
SMS.ir's v1 API (docs at sms.ir/rest-api: `POST /v1/send/bulk` with header
X-API-KEY and JSON {lineNumber, messageText, mobiles}; `POST /v1/send/verify` with
{mobile, templateId, parameters}; answers `{"status": 1, "message", "data"}`). Each
detail is one constant or one line below, so a wrong one is a one-line fix.

Every httpx error becomes a GatewayError here (the worker sees no other), and no
error text carries a URL (Kavenegar's holds the API key).
"""

from __future__ import annotations

import email.utils
import json
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from ledger.errors import InvalidMobile
from ledger.mobile import normalise_mobile
from sync.hub.config import FileGateway, GatewayConfig, HttpGateway, KavenegarGateway, SmsIrGateway
from sync.hub.messages.errors import GatewayError

RETRY_AFTER_S_MAX = 86_400.0


@dataclass(frozen=True)
class Sms:
    id: int  # our message id: the idempotency key where the provider takes one (Kavenegar's localid)
    mobile: str
    text: str
    kind: str
    code: str | None = None  # a verification code, for providers with code templates


@dataclass(frozen=True)
class Report:
    provider_id: str
    status: str  # delivered | undelivered
    detail: str


@dataclass(frozen=True)
class Inbound:
    mobile: str
    text: str


class Gateway:
    """What the worker and the webhooks need of a gateway."""

    name: str = ""
    # True: the gateway drops a second request for the same message id (the worker may
    # then resend a message whose first send's outcome is unknown without a duplicate)
    idempotent: bool = False

    def send(self, sms: Sms) -> str | None:
        """Hand the message over; the provider's message id (None if it gives none).
        GatewayError if it was not taken."""
        raise NotImplementedError

    def reports(self, data: dict[str, Any]) -> list[Report]:
        """Delivery reports in a webhook's fields (form, query or JSON)."""
        return []

    def inbound(self, data: dict[str, Any]) -> Inbound | None:
        """A member's reply in a webhook's fields."""
        return generic_inbound(data)

    def close(self) -> None:
        pass


def _first(data: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if data.get(k) not in (None, ""):
            return data[k]
    return None


def generic_inbound(data: dict[str, Any]) -> Inbound | None:
    sender = _first(data, "from", "sender", "mobile", "Mobile", "msisdn", "From")
    text = _first(data, "message", "text", "messageText", "body", "Message", "Text")
    if sender is None or text is None:
        return None
    try:
        return Inbound(normalise_mobile(str(sender)), str(text)[:500])
    except InvalidMobile:
        return None


def retry_after(r: httpx.Response) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), bounded; None if absent or unreadable."""
    value = r.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_S_MAX) if seconds == seconds else None


class HttpBase(Gateway):
    def __init__(self, name: str, timeout_s: float, transport: httpx.BaseTransport | None = None) -> None:
        self.name = name
        self.http = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request; GatewayError for what is not an answer, or is a 5xx or a 429."""
        try:
            r = self.http.request(method, url, **kwargs)
        except httpx.ConnectTimeout:
            raise GatewayError(f"{self.name}: timed out connecting", retry=True) from None
        except httpx.TimeoutException:
            raise GatewayError(f"{self.name}: timed out waiting for an answer", retry=True, unknown=True) from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol):
            raise GatewayError(f"{self.name}: cannot connect", retry=True) from None
        except httpx.HTTPError as exc:
            raise GatewayError(f"{self.name}: {type(exc).__name__}", retry=True, unknown=True) from None
        if r.status_code == 429:
            raise GatewayError(f"{self.name}: 429 too many requests", retry=True, retry_after_s=retry_after(r))
        if r.status_code >= 500:
            raise GatewayError(f"{self.name}: answered {r.status_code}", retry=True, retry_after_s=retry_after(r))
        return r

    def json_of(self, r: httpx.Response) -> Any:
        """The answer's JSON. An answer we cannot read may still mean the message was
        taken: the outcome is unknown."""
        try:
            return r.json()
        except ValueError:
            raise GatewayError(f"{self.name}: answered {r.status_code} with malformed JSON", retry=True,
                               unknown=True) from None


class FileOut(Gateway):
    def __init__(self, name: str, path: Path | None) -> None:
        self.name, self.path = name, path
        self._lock = threading.Lock()

    def send(self, sms: Sms) -> str | None:
        line = json.dumps({"id": sms.id, "mobile": sms.mobile, "kind": sms.kind, "text": sms.text,
                           "at": time.time()}, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                if self.path is None:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                else:
                    with self.path.open("a", encoding="utf-8") as fh:
                        fh.write(line)
            except OSError as exc:
                raise GatewayError(f"{self.name}: cannot write {self.path}: {exc.strerror}", retry=True) from None
        return f"file-{sms.id}"


class Kavenegar(HttpBase):
    idempotent = True  # localid: Kavenegar answers a repeat with the first message instead of sending again
    DELIVERED = frozenset({"10"})
    UNDELIVERED = frozenset({"6", "11", "13", "14", "100"})  # failed, undelivered, cancelled, blocked, unknown id
    RETRY_STATUSES = frozenset({409})  # "the server could not answer": try again

    def __init__(self, name: str, cfg: KavenegarGateway, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(name, cfg.timeout_s, transport)
        self.cfg, self.key = cfg, cfg.secret("api_key")

    def send(self, sms: Sms) -> str | None:
        base = f"{self.cfg.url.rstrip('/')}/{self.key}"
        if sms.code and self.cfg.verify_template:
            url, data = f"{base}/verify/lookup.json", {"receptor": sms.mobile, "token": sms.code,
                                                        "template": self.cfg.verify_template}
        else:
            url, data = f"{base}/sms/send.json", {"receptor": sms.mobile, "message": sms.text, "localid": str(sms.id)}
            if self.cfg.sender:
                data["sender"] = self.cfg.sender
        answer = self.json_of(self.call("POST", url, data=data))
        ret = answer.get("return") if isinstance(answer, dict) else None
        if not isinstance(ret, dict):
            raise GatewayError(f"{self.name}: the answer has no 'return'", retry=True, unknown=True)
        status = ret.get("status")
        if status != 200:
            text = f"{self.name}: {status} {str(ret.get('message', ''))[:100]}"
            raise GatewayError(text, retry=status in self.RETRY_STATUSES)
        entries = answer.get("entries") or []
        first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
        return str(first["messageid"]) if first.get("messageid") is not None else None

    def reports(self, data: dict[str, Any]) -> list[Report]:
        provider_id, status = _first(data, "messageid", "messageId"), str(_first(data, "status") or "")
        if provider_id is None or status not in self.DELIVERED | self.UNDELIVERED:
            return []  # in the operator's queue, sent to the operator...: not final
        return [Report(str(provider_id), "delivered" if status in self.DELIVERED else "undelivered",
                       f"kavenegar status {status}")]


class SmsIr(HttpBase):
    DELIVERED = frozenset({"1"})
    UNDELIVERED = frozenset({"2", "4", "6", "7"})  # not delivered, not reached the operator, failed, blacklisted

    def __init__(self, name: str, cfg: SmsIrGateway, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(name, cfg.timeout_s, transport)
        self.cfg, self.key = cfg, cfg.secret("api_key")

    def send(self, sms: Sms) -> str | None:
        headers = {"X-API-KEY": self.key, "Accept": "application/json"}
        base = self.cfg.url.rstrip("/")
        if sms.code and self.cfg.verify_template_id:
            body: dict[str, Any] = {"mobile": sms.mobile, "templateId": self.cfg.verify_template_id,
                                    "parameters": [{"name": "CODE", "value": sms.code}]}
            url = f"{base}/send/verify"
        else:
            line = self.cfg.line_number
            body = {"lineNumber": int(line) if line.isdigit() else line, "messageText": sms.text,
                    "mobiles": [sms.mobile], "sendDateTime": None}
            url = f"{base}/send/bulk"
        answer = self.json_of(self.call("POST", url, json=body, headers=headers))
        if not isinstance(answer, dict) or "status" not in answer:
            raise GatewayError(f"{self.name}: the answer has no 'status'", retry=True, unknown=True)
        if answer["status"] != 1:
            raise GatewayError(f"{self.name}: {answer['status']} {str(answer.get('message', ''))[:100]}", retry=False)
        data = answer.get("data") or {}
        ids = data.get("messageIds") or ([data["messageId"]] if data.get("messageId") is not None else [])
        return str(ids[0]) if ids else None

    def reports(self, data: dict[str, Any]) -> list[Report]:
        provider_id = _first(data, "messageId", "messageid", "MessageId")
        state = str(_first(data, "deliveryState", "status", "DeliveryState") or "")
        if provider_id is None or state not in self.DELIVERED | self.UNDELIVERED:
            return []
        return [Report(str(provider_id), "delivered" if state in self.DELIVERED else "undelivered",
                       f"sms.ir deliveryState {state}")]


def _dotted(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


class GenericHttp(HttpBase):
    def __init__(self, name: str, cfg: HttpGateway, transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(name, cfg.timeout_s, transport)
        self.cfg = cfg
        self.idempotent = bool(cfg.idempotency_header)
        auth = cfg.secret("auth_value")
        self.headers = {cfg.auth_header: auth} if auth else {}

    def body(self, sms: Sms) -> str:
        out = self.cfg.body
        for key, value in (("mobile", sms.mobile), ("text", sms.text), ("id", sms.id), ("kind", sms.kind)):
            out = out.replace("{" + key + "}", json.dumps(value, ensure_ascii=False))
        return out

    def send(self, sms: Sms) -> str | None:
        headers = dict(self.headers)
        if self.cfg.idempotency_header:
            headers[self.cfg.idempotency_header] = str(sms.id)
        if self.cfg.method == "GET":
            r = self.call("GET", self.cfg.url, headers=headers,
                          params={"mobile": sms.mobile, "text": sms.text, "id": str(sms.id)})
        else:
            headers["Content-Type"] = "application/json"
            r = self.call(self.cfg.method, self.cfg.url, headers=headers, content=self.body(sms).encode())
        if r.status_code >= 400:
            raise GatewayError(f"{self.name}: answered {r.status_code}", retry=False)
        if not self.cfg.id_field:
            return None
        found = _dotted(self.json_of(r), self.cfg.id_field)
        return None if found is None else str(found)

    def reports(self, data: dict[str, Any]) -> list[Report]:
        provider_id = _dotted(data, self.cfg.report_id_field)
        status = _dotted(data, self.cfg.report_status_field)
        if provider_id is None or status is None:
            return []
        delivered = str(status) in self.cfg.delivered_values
        return [Report(str(provider_id), "delivered" if delivered else "undelivered", f"status {status}"[:200])]


def build_gateway(name: str, cfg: GatewayConfig, base_dir: Path,
                  transport: httpx.BaseTransport | None = None) -> Gateway:
    if isinstance(cfg, FileGateway):
        path = None if cfg.path == "-" else (Path(cfg.path) if Path(cfg.path).is_absolute() else base_dir / cfg.path)
        return FileOut(name, path)
    if isinstance(cfg, KavenegarGateway):
        return Kavenegar(name, cfg, transport)
    if isinstance(cfg, SmsIrGateway):
        return SmsIr(name, cfg, transport)
    return GenericHttp(name, cfg, transport)
