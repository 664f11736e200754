"""Each gateway against a real HTTP server on loopback that answers as the provider
would: OK, a timeout, 5xx, 429 with Retry-After, malformed JSON, a refusal."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, Callable

import pytest

from sync.hub.config import HubConfig, parse_hub_config
from sync.hub.messages.errors import GatewayError
from sync.hub.messages.gateways import Sms, build_gateway
from tests.messages.conftest import gateway_section
from tests.messages.fakegateway import Fake

SMS = Sms(7, "09120000001", "سلام، این یک آزمایش است", "receipt")


def _gateway(flavour: str, url: str, tmp_path: Path, **extra: Any):  # type: ignore[no-untyped-def]
    cfg: HubConfig = parse_hub_config({"gateways": {"g": gateway_section(flavour, url, **extra)},
                                       "messages": {"gateway": "g"}}, "t.toml", tmp_path)
    return build_gateway("g", cfg.gateways["g"], tmp_path)


def test_kavenegar_sends_with_localid_and_a_repeat_reaches_the_phone_once(
        fake_gateway: Callable[..., tuple[Fake, str]], tmp_path: Path) -> None:
    fake, url = fake_gateway("kavenegar")
    g = _gateway("kavenegar", url, tmp_path)
    first = g.send(SMS)
    again = g.send(SMS)
    assert first == again and first is not None and g.idempotent
    req = fake.requests[0]
    assert req["_path"] == f"/v1/{'k' * 20}/sms/send.json"
    assert (req["receptor"], req["message"], req["sender"], req["localid"]) == (SMS.mobile, SMS.text, "10004346", "7")
    assert len(fake.delivered) == 1
    g.close()


def test_kavenegar_codes_through_a_lookup_template(fake_gateway: Callable[..., tuple[Fake, str]],
                                                   tmp_path: Path) -> None:
    fake, url = fake_gateway("kavenegar")
    g = _gateway("kavenegar", url, tmp_path, verify_template="loyalty-code")
    g.send(Sms(8, "09120000001", "code 123456", "code", code="123456"))
    req = fake.requests[0]
    assert req["_path"].endswith("/verify/lookup.json")
    assert (req["receptor"], req["token"], req["template"]) == ("09120000001", "123456", "loyalty-code")


def test_smsir_sends_bulk_with_its_key_in_a_header(fake_gateway: Callable[..., tuple[Fake, str]],
                                                   tmp_path: Path) -> None:
    fake, url = fake_gateway("smsir")
    g = _gateway("smsir", url, tmp_path)
    assert g.send(SMS) == "1001"
    req = fake.requests[0]
    assert req["_path"] == "/v1/send/bulk" and req["_headers"]["x-api-key"] == "s" * 20
    assert (req["lineNumber"], req["messageText"], req["mobiles"]) == (30007732, SMS.text, [SMS.mobile])
    v = _gateway("smsir", url, tmp_path, verify_template_id=123)
    v.send(Sms(9, "09120000001", "code 123456", "code", code="123456"))
    assert fake.requests[1]["_path"] == "/v1/send/verify"
    assert fake.requests[1]["parameters"] == [{"name": "CODE", "value": "123456"}]
    assert fake.requests[1]["templateId"] == 123


def test_a_generic_http_gateway_fills_its_body_template(fake_gateway: Callable[..., tuple[Fake, str]],
                                                        tmp_path: Path) -> None:
    fake, url = fake_gateway("http")
    g = _gateway("http", url, tmp_path, idempotency_header="Idempotency-Key", auth_value="Bearer xyz",
                 body='{"to": {mobile}, "text": {text}, "ref": {id}, "kind": {kind}}')
    assert g.send(SMS) == "1001" and g.idempotent
    req = fake.requests[0]
    assert (req["to"], req["text"], req["ref"], req["kind"]) == (SMS.mobile, SMS.text, 7, "receipt")
    assert req["_headers"]["authorization"] == "Bearer xyz" and req["_headers"]["idempotency-key"] == "7"


@pytest.mark.parametrize("flavour", ["kavenegar", "smsir", "http"])
@pytest.mark.parametrize("mode, retry, unknown, after", [
    ("timeout", True, True, None),
    ("500", True, False, None),
    ("429", True, False, 2.0),
    ("malformed", True, True, None),
    ("refuse", False, False, None),
])
def test_failures_are_told_apart(fake_gateway: Callable[..., tuple[Fake, str]], tmp_path: Path, flavour: str,
                                 mode: str, retry: bool, unknown: bool, after: float | None) -> None:
    fake, url = fake_gateway(flavour, mode, hang_s=3.0)
    g = _gateway(flavour, url, tmp_path, timeout_s=0.5)
    with pytest.raises(GatewayError) as err:
        g.send(SMS)
    e = err.value
    assert (e.retry, e.unknown, e.retry_after_s) == (retry, unknown, after), str(e)
    assert "k" * 20 not in str(e) and "s" * 20 not in str(e)  # no URL, no key, in an error
    g.close()


def test_nobody_listening_is_a_retry_and_certainly_not_sent(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    g = _gateway("kavenegar", f"http://127.0.0.1:{port}", tmp_path)
    with pytest.raises(GatewayError) as err:
        g.send(SMS)
    assert err.value.retry and not err.value.unknown


def test_delivery_reports_and_replies_are_read_per_provider(tmp_path: Path) -> None:
    kave = _gateway("kavenegar", "http://127.0.0.1:9", tmp_path)
    assert [r.status for r in kave.reports({"messageid": "55", "status": "10"})] == ["delivered"]
    assert [r.status for r in kave.reports({"messageid": "55", "status": "11"})] == ["undelivered"]
    assert kave.reports({"messageid": "55", "status": "4"}) == []  # with the operator: not final
    smsir = _gateway("smsir", "http://127.0.0.1:9", tmp_path)
    assert [r.status for r in smsir.reports({"messageId": 9, "deliveryState": 1})] == ["delivered"]
    generic = _gateway("http", "http://127.0.0.1:9", tmp_path)
    assert [r.provider_id for r in generic.reports({"id": 3, "status": "DELIVRD"})] == ["3"]
    reply = kave.inbound({"from": "+98 912 000 0001", "message": "لغو", "to": "10004346"})
    assert reply is not None and reply.mobile == "09120000001" and reply.text == "لغو"
    assert kave.inbound({"message": "no sender"}) is None
