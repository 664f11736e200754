"""Attacks on the hub and mistakes made against it, each performed for real on SQLite
and PostgreSQL: what a signed terminal of one store, an unauthenticated client or a
careless operator could do, and what the hub does about it."""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path

import pytest

from sync import signing
from tests.attacks.forge import Forger, Till, card_row, gift_row, hub_balance, member_row, now_text
from tests.e2e.agent_proc import free_port
from tests.sync.test_processes import HubProc

ATTACK_BYTES = 200 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
RSS_GROWTH_MAX_KB = 80 * 1024  # the sync limit is 32 MB; reading 200 MB whole costs 400 MB
SOCKET_TIMEOUT_S = 30.0


def _kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for process {pid}")


def _chunked_upload(port: int, path: str, headers: dict[str, str]) -> tuple[int, int]:
    """POST `ATTACK_BYTES` in chunks without a length; stop sending as soon as the
    server answers. (status, bytes sent before the answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n" \
           "Content-Type: application/json\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    piece = b"%x\r\n" % CHUNK_BYTES + b" " * CHUNK_BYTES + b"\r\n"
    sent = 0
    try:
        while sent < ATTACK_BYTES:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the end
            sock.sendall(piece)
            sent += CHUNK_BYTES
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = b""
    deadline = time.monotonic() + SOCKET_TIMEOUT_S
    while b"\r\n" not in answer and time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    sock.close()
    return int(answer.split(b" ", 2)[1]), sent


@pytest.mark.slow
def test_a_chunked_200_mb_body_is_refused_at_the_limit_without_being_read(hub_url: str, tmp_path: Path) -> None:
    proc = HubProc(tmp_path, free_port())
    proc.db = hub_url
    code = proc.cli("terminals", "add", "--store", "S1")
    proc.start()
    try:
        import httpx

        secret = httpx.post(f"http://127.0.0.1:{proc.port}/v1/enroll", json={"code": code, "terminal": "T1"},
                            timeout=10).json()["secret"]
        assert proc.proc is not None
        pid = proc.proc.pid
        before = _kb(pid, "VmRSS")
        signed = signing.signed_headers("T1", secret, "POST", "/v1/sync", b"")  # present, but not for this body
        status, sent = _chunked_upload(proc.port, "/v1/sync", signed)
        assert status == 413 and sent < ATTACK_BYTES
        status, sent = _chunked_upload(proc.port, "/v1/enroll", {})
        assert status == 413 and sent < ATTACK_BYTES
        grown = _kb(pid, "VmHWM") - before
        assert grown < RSS_GROWTH_MAX_KB, f"the hub grew by {grown // 1024} MB"
        assert httpx.get(f"http://127.0.0.1:{proc.port}/v1/health", timeout=10).status_code == 200
    finally:
        proc.stop()


DEEP = 1_000


@pytest.mark.parametrize("body", [
    b'{"code": ' + b"[" * DEEP + b"]" * DEEP + b', "terminal": "T1"}',  # parsed, then str() of it recursed
    b'{"terminal": "T1", "code": ' + b"[" * 2 * DEEP + b"}",  # deeper than orjson reads: json.loads recursed
    b"[" * DEEP + b"]" * DEEP,
    b'{"code": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",  # past the enrolment's size limit
])
def test_json_nested_1000_deep_to_enroll_is_a_4xx_problem_not_a_500(hub_http, body: bytes) -> None:  # type: ignore[no-untyped-def]
    r = hub_http.post("/v1/enroll", content=body, headers={"content-type": "application/json"})
    assert r.status_code in (400, 413), r.text
    assert r.json()["code"] in ("invalid_json", "invalid_input", "too_large")


def test_json_nested_1000_deep_to_a_signed_sync_is_a_4xx_problem(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    secret = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"}).json()["secret"]
    for body in (b'{"entries": ' + b"[" * DEEP + b"]" * DEEP + b"}", b'{"entries": ' + b"[" * 100 * DEEP + b"}"):
        r = hub_http.post("/v1/sync", content=body, headers=signing.signed_headers("T1", secret, "POST", "/v1/sync",
                                                                                     body))
        assert 400 <= r.status_code < 500 and r.json()["code"] in ("invalid_json", "bad_payload"), r.text


def _count(hub, table) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    with hub.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize("field, value", [("points", 1_000_000), ("member_id", "m-other"), ("reason", "edited"),
                                          ("created_at", "2026-01-01T00:00:00.000000Z"), ("kind", "bonus")])
def test_a_known_entry_resent_with_altered_content_and_its_original_hash_is_refused(
        hub, hub_http, field: str, value: object) -> None:  # type: ignore[no-untyped-def]
    from sync.hub.schema import entries

    t = Forger(hub, hub_http, "T1", "S1")
    first = [t.entry(), t.entry()]
    assert t.send(entries=first).status_code == 200
    altered = dict(first[1], **{field: value})  # the original hash kept
    r = t.post({"entries": [first[0], altered]})
    assert r.status_code == 409 and r.json()["code"] == "entry_conflict" and field in r.json()["detail"]
    assert t.post({"entries": first}).status_code == 200  # the true resend still passes
    with hub.engine.connect() as conn:
        from sqlalchemy import select

        stored = conn.execute(select(entries.c[field]).where(entries.c.id == first[1]["id"])).scalar_one()
    assert stored == first[1][field] and _count(hub, entries) == 2


def test_an_entry_id_taken_by_another_terminals_entry_is_refused_not_skipped(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    from sync.hub.schema import entries

    a, b = Forger(hub, hub_http, "TA", "S1"), Forger(hub, hub_http, "TB", "S1")
    taken = a.entry()
    assert a.send(entries=[taken]).status_code == 200
    r = b.send(entries=[b.entry(id=taken["id"])])
    assert r.status_code == 409 and r.json()["code"] == "entry_conflict"
    assert _count(hub, entries) == 1 and hub.list_terminals()[1]["last_seq"] == 0


def test_points_and_amounts_beyond_the_bounds_are_refused_and_change_nothing(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    from sync.hub.entitlement import BALANCE_POINTS_MAX, ENTRY_AMOUNT_MAX, ENTRY_POINTS_MAX
    from sync.hub.schema import balances, entries

    t = Forger(hub, hub_http, "T1", "S1")
    members = [member_row("m1", "S1")]
    assert t.send(members=members).status_code == 200
    for fields, limit in (({"points": ENTRY_POINTS_MAX + 1}, "ENTRY_POINTS_MAX"),
                          ({"kind": "redeem", "points": -ENTRY_POINTS_MAX - 1}, "ENTRY_POINTS_MAX"),
                          ({"amount": ENTRY_AMOUNT_MAX + 1}, "ENTRY_AMOUNT_MAX"),
                          ({"points": 2**63 - 1}, "ENTRY_POINTS_MAX")):
        r = t.send(entries=[t.entry(member_id="m1", **({"kind": "earn"} | fields))])
        assert r.status_code == 422 and r.json()["code"] == "limit_exceeded" and limit in r.json()["detail"], r.text
    # 1,001 entries at the bound take the balance past BALANCE_POINTS_MAX: the whole batch is refused
    many = [t.entry(member_id="m1", kind="earn", points=ENTRY_POINTS_MAX, amount=0) for _ in range(1001)]
    r = t.send(entries=many)
    assert r.status_code == 422 and r.json()["code"] == "limit_exceeded" and "BALANCE_POINTS_MAX" in r.json()["detail"]
    assert _count(hub, entries) == 0 and _count(hub, balances) == 0
    assert t.send(entries=many[:1000]).status_code == 200  # exactly at the bound: taken
    with hub.engine.connect() as conn:
        from sqlalchemy import select

        assert conn.execute(select(balances.c.points)).scalar_one() == BALANCE_POINTS_MAX


def test_a_revoked_terminal_is_enrolled_again_with_a_fresh_code_and_keeps_its_chain(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from sync.hub.schema import audit

    t = Forger(hub, hub_http, "T1", "S1")
    assert t.send(entries=[t.entry(), t.entry()]).status_code == 200
    hub.revoke("T1")
    assert t.send(entries=[]).json()["code"] == "revoked"
    old_secret = t.secret
    again = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"})
    assert again.status_code == 200, again.text
    t.secret = again.json()["secret"]
    assert t.secret != old_secret
    assert t.send(entries=[t.entry()]).status_code == 200  # seq 3 follows the kept chain
    listed = hub.list_terminals()
    assert [(x["id"], x["revoked"], x["last_seq"]) for x in listed] == [("T1", False, 3)]
    t.secret = old_secret  # the leaked secret is worthless now
    assert t.post({"entries": []}).json()["code"] == "bad_signature"
    with hub.engine.connect() as conn:
        actions = conn.execute(select(audit.c.action).where(audit.c.target == "T1").order_by(audit.c.id)).scalars()
        assert list(actions) == ["terminal.enrol", "terminal.revoke", "terminal.reenrol"]
    taken = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"})
    assert taken.status_code == 409 and taken.json()["code"] == "terminal_exists"  # not while it is active


def test_nobody_enrols_as_or_speaks_for_the_hubs_own_chain(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    for name in ("hub", "HUB", " Hub "):
        r = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": name})
        assert r.status_code == 409 and r.json()["code"] == "reserved_terminal", r.text
    body = b'{"entries": []}'
    for secret in ("", "!"):
        r = hub_http.post("/v1/sync", content=body,
                          headers=signing.signed_headers("hub", secret, "POST", "/v1/sync", body))
        assert r.status_code == 401 and r.json()["code"] == "unknown_terminal"
    assert hub.list_terminals() == []


CLOCK_OFF_S = 400  # beyond signing.SKEW_MAX_S


@pytest.mark.parametrize("off", [CLOCK_OFF_S, -CLOCK_OFF_S])
def test_a_terminal_clock_400_s_off_is_told_the_hubs_time_and_syncs_by_it(hub, hub_http, off: int) -> None:  # type: ignore[no-untyped-def]
    t = Forger(hub, hub_http, "T1", "S1")
    r = t.post({"entries": []}, now=time.time() + off)
    assert r.status_code == 401 and r.json()["code"] == "stale"
    told = r.json()["hub_time"]
    assert isinstance(told, float) and abs(told - time.time()) < 60
    assert abs(float(r.headers["x-hub-time"]) - told) < 60
    offset = told - (time.time() + off)  # what the terminal learns: how far its clock is off
    ok = t.post({"entries": [t.entry()]}, now=time.time() + off + offset)
    assert ok.status_code == 200, ok.text
    assert isinstance(ok.json()["hub_time"], float) and abs(ok.json()["hub_time"] - time.time()) < 60


def test_entries_written_in_the_future_or_before_enrolment_are_stored_and_listed(hub, hub_http, hub_url) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner
    from sqlalchemy import select

    from sync.hub.cli import cli
    from sync.hub.schema import entries

    t = Forger(hub, hub_http, "T1", "S1")
    ahead, reset, fine = (t.entry(created_at=now_text(hours=2)), t.entry(created_at="2000-01-01T00:00:00.000000Z"),
                          t.entry(created_at=now_text(seconds=200)))
    assert t.send(entries=[ahead, reset, fine]).status_code == 200  # stored: the till did write them
    with hub.engine.connect() as conn:
        received = dict(conn.execute(select(entries.c.id, entries.c.received_at)).all())
    assert len(received) == 3 and all(received.values())
    listed = CliRunner().invoke(cli, ["--db", hub_url, "reconcile", "--json"])
    assert listed.exit_code == 0, listed.output
    flags = json.loads(listed.output)["implausible_times"]
    assert [(f["entry_id"], f["flag"]) for f in flags] == [(ahead["id"], "future"), (reset["id"], "before_enrolment")]
    assert flags[0]["received_at"] == received[ahead["id"]]
    text = CliRunner().invoke(cli, ["--db", hub_url, "reconcile"]).output
    assert "T1#1" in text and "T1#2" in text and "T1#3" not in text and "2 entr(ies) with an implausible time" in text


def test_a_terminal_restored_from_an_older_backup_takes_its_own_entries_back(hub, hub_http, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sync.hub import service

    t = Forger(hub, hub_http, "T1", "S1")
    sent = [t.entry(reason=f"e{i}") for i in range(5)]
    ok = t.send(entries=sent)
    assert (ok.json()["last_seq"], ok.json()["last_hash"]) == (5, sent[-1]["hash"])
    t.seq, t.last_hash = 2, sent[1]["hash"]  # the backup was taken after seq 2; seq 3.. are lost on the till
    gap = t.send(entries=[t.entry(reason="written after the restore")])
    assert gap.status_code == 409 and gap.json()["code"] == "sequence_gap"
    assert (gap.json()["last_seq"], gap.json()["last_hash"]) == (5, sent[-1]["hash"])
    both = t.post({"own_after": 2, "entries": [t.entry()]})
    assert both.status_code == 422 and "own_after" in both.json()["detail"]
    monkeypatch.setattr(service, "DOWNSTREAM_ENTRIES_MAX", 2)  # taken back in pages
    page = t.post({"own_after": 2})
    assert page.status_code == 200 and page.json()["own_entries"] == sent[2:4]
    page = t.post({"own_after": 4})
    assert page.json()["own_entries"] == sent[4:] and page.json()["last_seq"] == 5
    assert t.post({"own_after": 5}).json()["own_entries"] == []
    assert "own_entries" not in t.post({}).json()
    t.seq, t.last_hash = 5, sent[-1]["hash"]  # the terminal has its chain back, and goes on
    assert t.send(entries=[t.entry()]).json()["last_seq"] == 6
    assert t.post({"own_after": -1}).status_code == 422


VISA = "4111111111111111"  # a test Visa number: Luhn-valid, 16 digits
SHETAB = "6037991234567893"  # Shetab (Iranian bank) prefix 603799, Luhn-valid


def _luhn_digit(body: str) -> str:
    from ledger.cardpolicy import luhn_ok

    return next(d for d in "0123456789" if luhn_ok(body + d))


def test_a_bank_card_number_from_a_terminal_with_an_old_config_is_refused_masked_and_never_stored(
        hub, hub_http, hub_url, caplog) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select, text

    from ledger.cardpolicy import payment_network
    from sync.hub.schema import cards, gift_cards

    assert payment_network(VISA) == "Visa" and payment_network(SHETAB) == "Shetab"
    t = Forger(hub, hub_http, "T1", "S1")
    assert t.send(members=[member_row("m1", "S1")], cards=[card_row("6395000000000001", "m1")]).status_code == 200
    attempts = [
        {"cards": [card_row(VISA, "m1")]},
        {"cards": [card_row(SHETAB, "m1")]},
        {"cards": [card_row("6395000000000001", "m1", status="replaced", replaced_by=VISA)]},
        {"gift_cards": [gift_row(VISA)]},
        {"entries": [t.entry(member_id="m1", kind="earn", points=5, amount=100, card_number=VISA)]},
        {"entries": [t.entry(kind="gift_load", amount=100, gift_card_number=SHETAB)]},
    ]
    for payload in attempts:
        r = t.send(**payload)
        assert r.status_code == 422 and r.json()["code"] == "bank_card", r.text
        assert VISA not in r.text and SHETAB not in r.text
        assert ("411111******1111" in r.text) or ("603799******7893" in r.text)
    with hub.engine.connect() as conn:
        assert conn.execute(select(cards.c.number)).scalars().all() == ["6395000000000001"]
        assert conn.execute(select(gift_cards.c.number)).scalars().all() == []
        dump = " ".join(str(v) for table in ("entries", "audit", "cards", "gift_cards")
                        for row in conn.execute(text(f"SELECT * FROM {table}")) for v in row)
    assert VISA not in dump and SHETAB not in dump
    assert VISA not in caplog.text and SHETAB not in caplog.text


def test_head_office_sets_the_card_ranges_and_the_hub_applies_them(hub, hub_http, hub_url) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from sync.hub.cli import cli

    run = CliRunner()
    shown = run.invoke(cli, ["--db", hub_url, "cards", "ranges"])
    assert shown.exit_code == 0 and "no member card ranges set" in shown.output
    t = Forger(hub, hub_http, "T1", "S1")
    assert t.send(members=[member_row("m1", "S1")], cards=[card_row("5550001", "m1")]).status_code == 200  # any
    refused = run.invoke(cli, ["--db", hub_url, "cards", "ranges", "set", "4111:16"])
    assert refused.exit_code == 1 and "Visa" in refused.output
    done = run.invoke(cli, ["--db", hub_url, "cards", "ranges", "set", "6395:16", "77:10,12:luhn", "--by", "hq"])
    assert done.exit_code == 0, done.output
    assert run.invoke(cli, ["--db", hub_url, "cards", "ranges"]).output.split() == ["6395:16", "77:10,12:luhn"]
    good_77 = "77" + "1234567"
    good_77 += _luhn_digit(good_77)
    bad_77 = good_77[:-1] + str((int(good_77[-1]) + 1) % 10)
    ok = t.send(cards=[card_row("6395000000000002", "m1"), card_row(good_77, "m1")])
    assert ok.status_code == 200, ok.text
    for number in ("5550002", bad_77, "639500000000003"):
        r = t.send(cards=[card_row(number, "m1")])
        assert r.status_code == 422 and r.json()["code"] == "card_out_of_range", r.text
    # a card the hub held before the ranges were set is not refused for it: blocking it still works
    blocked = t.send(cards=[card_row("5550001", "m1", status="blocked", status_changed_at=now_text())])
    assert blocked.status_code == 200, blocked.text
    assert run.invoke(cli, ["--db", hub_url, "cards", "ranges", "clear"]).exit_code == 0
    assert t.send(cards=[card_row("5550003", "m1")]).status_code == 200


def _audit(hub, enrolments: bool = False) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from sync.hub.schema import audit

    query = select(audit.c.actor, audit.c.action, audit.c.target).order_by(audit.c.id)
    if not enrolments:
        query = query.where(audit.c.action.not_in(["terminal.enrol", "terminal.reenrol"]))
    with hub.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


def _stores(hub, hub_http):  # type: ignore[no-untyped-def]
    """TA of store S1 with member m1 (card C1) and m2 (card C2); TB of store S2."""
    ta, tb = Forger(hub, hub_http, "TA", "S1"), Forger(hub, hub_http, "TB", "S2")
    r = ta.send(members=[member_row("m1", "S1"), member_row("m2", "S1", mobile="09120000002")],
                cards=[card_row(C1, "m1"), card_row(C2, "m2")])
    assert r.status_code == 200, r.text
    return ta, tb


C1, C2, C9 = "6395000000000001", "6395000000000002", "6395000000000009"


def test_a_terminal_writes_entries_only_for_members_and_cards_the_hub_knows(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    from sync.hub.schema import balances, entries

    ta, tb = _stores(hub, hub_http)
    for fields, code in (({"member_id": "nobody"}, "unknown_member"),
                         ({"kind": "gift_load", "points": 0, "amount": 5, "gift_card_number": "GIFT0001"}, "unknown_gift_card"),
                         ({"member_id": "m1", "card_number": C9}, "unknown_card"),
                         ({"member_id": "m1", "card_number": C2}, "card_mismatch")):
        r = tb.send(entries=[tb.entry(**({"kind": "earn", "points": 1_000_000} | fields))])
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert _count(hub, entries) == 0 and _count(hub, balances) == 0
    # what the same request enrols or issues, it may write entries for
    ok = tb.send(members=[member_row("m3", "S2")], gift_cards=[gift_row("GIFT0001")],
                 entries=[tb.entry(member_id="m3", kind="bonus", points=50),
                          tb.entry(kind="gift_load", amount=5, gift_card_number="GIFT0001"),
                          tb.entry(member_id="m1", card_number=C1, kind="earn", points=10, amount=100_000)])
    assert ok.status_code == 200, ok.text  # a visiting member of S1 earns at S2's till


@pytest.mark.parametrize("fields", [
    {"kind": "gift", "points": 0}, {"kind": "earn", "points": -5}, {"kind": "bonus", "points": -1},
    {"kind": "redeem", "points": 5}, {"kind": "expire", "points": 1}, {"kind": "gift_load", "points": 7},
    {"kind": "gift_spend", "amount": 9, "points": 0}, {"kind": "tier", "points": 3}, {"kind": "earn", "amount": -1},
])
def test_entry_kinds_and_signs_that_make_no_sense_are_refused(hub, hub_http, fields: dict) -> None:  # type: ignore[no-untyped-def]
    t = Forger(hub, hub_http, "T1", "S1")
    assert t.send(members=[member_row("m1", "S1")]).status_code == 200
    r = t.send(entries=[t.entry(member_id="m1", **fields)])
    assert r.status_code == 422 and r.json()["code"] == "bad_entry", r.text


def test_a_terminal_of_s2_cannot_enrol_for_s1_nor_rewrite_an_s1_members_name_and_mobile(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from sync.hub.schema import members

    ta, tb = _stores(hub, hub_http)
    r = tb.send(members=[member_row("m9", "S1")])
    assert r.status_code == 403 and r.json()["code"] == "not_entitled" and "m9" in r.json()["detail"]
    hijack = member_row("m1", "S1", name="Mallory", mobile="09359999999")
    r = tb.send(members=[hijack], entries=[tb.entry()])
    assert r.status_code == 403 and r.json()["code"] == "not_entitled" and "m1" in r.json()["detail"]
    assert "name, mobile" in r.json()["detail"]
    with hub.engine.connect() as conn:
        assert conn.execute(select(members.c.name, members.c.mobile).where(members.c.id == "m1")).one() == \
            ("Sara", "09120000001")
    assert tb.send(members=[member_row("m1", "S1")]).status_code == 200  # an unchanged copy: nothing to refuse
    assert ta.send(members=[member_row("m1", "S1", name="Sara K.")]).status_code == 200  # its own store may
    assert ("TA", "member.change", "m1") in _audit(hub) and not [a for a in _audit(hub) if a[0] == "TB"]


def test_a_terminal_of_s2_cannot_issue_move_or_unblock_s1s_cards_but_may_block_or_replace_them(hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from sync.hub.schema import cards

    ta, tb = _stores(hub, hub_http)

    def card(number: str) -> tuple[str, str, str | None]:
        with hub.engine.connect() as conn:
            return tuple(conn.execute(select(cards.c.member_id, cards.c.status, cards.c.replaced_by)
                                      .where(cards.c.number == number)).one())  # type: ignore[return-value]

    for payload in ({"cards": [card_row(C9, "m1")]},  # a second card for S1's member
                    {"cards": [card_row(C1, "m2")]},  # m1's card moved to m2
                    {"cards": [card_row(C1, "m1", status="replaced", replaced_by=C2, status_changed_at=now_text())]},
                    {"cards": [card_row(C1, "m1", status="replaced", replaced_by=C9, status_changed_at=now_text()),
                               card_row(C9, "m2")]}):  # "replaced" by a card of another member
        r = tb.send(**payload)
        assert r.status_code == 403 and r.json()["code"] == "not_entitled", (payload, r.text)
    assert card(C1) == ("m1", "active", None) and card(C2) == ("m2", "active", None)
    # what a branch really does for a visiting customer: block the card, then replace it
    assert tb.send(cards=[card_row(C1, "m1", status="blocked", status_changed_at=now_text())]).status_code == 200
    assert tb.send(cards=[card_row(C1, "m1", status="active", status_changed_at=now_text(seconds=5))]).status_code == 200
    assert card(C1)[1] == "blocked"  # "active" never wins over a block
    r = tb.send(cards=[card_row(C1, "m1", status="replaced", replaced_by=C9, status_changed_at=now_text()),
                       card_row(C9, "m1")])
    assert r.status_code == 200, r.text
    assert card(C1) == ("m1", "replaced", C9) and card(C9) == ("m1", "active", None)
    trail = [a for a in _audit(hub) if a[0] == "TB"]
    assert trail == [("TB", "card.status", C1), ("TB", "card.status", C1), ("TB", "card.issue", C9)]


def test_a_terminal_of_s2_adding_1_000_000_points_to_an_s1_member_is_held_and_spreads_nowhere(
        hub, hub_http, hub_url, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from ledger.verify import verify
    from sync.hub.cli import cli
    from sync.hub.entitlement import ADJUST_POINTS_PER_DAY_DEFAULT

    ta, tb = Till(tmp_path, hub, hub_http, "TA", "S1"), Till(tmp_path, hub, hub_http, "TB", "S2")
    try:
        m = ta.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
        ta.client.sync_once()
        tb.client.sync_once()
        assert tb.client.lookup("09120000001") == m.id  # S1's member shows up at S2: looked up, in scope now
        start = ta.ledger.balance(m.id)
        assert tb.ledger.balance(m.id) == start == hub_balance(hub, m.id)
        tb.ledger.adjust(member_id=m.id, points=900, reason="goodwill", actor="tb-mgr")  # within the limit
        tb.ledger.adjust(member_id=m.id, points=1_000_000, reason="gift", actor="mallory")
        assert 1_000_000 > ADJUST_POINTS_PER_DAY_DEFAULT
        tb.client.sync_once()  # acknowledged: the chain stays whole
        assert tb.client.status()["backlog"] == 0
        ta.client.sync_once()
        tb.client.sync_once()
        for balance in (hub_balance(hub, m.id), ta.ledger.balance(m.id), tb.ledger.balance(m.id)):
            assert balance == start + 900  # not even back at the origin
        for till in (ta, tb):
            assert verify(till.ledger.engine).ok  # the hub's chain checks like any terminal's
        run = CliRunner()
        listed = run.invoke(cli, ["--db", hub_url, "adjustments", "list", "--json"])
        (held,) = json.loads(listed.output)
        assert (held["terminal_code"], held["points"], held["actor"], held["status"]) == ("TB", 1_000_000, "mallory",
                                                                                        "held")
        approved = run.invoke(cli, ["--db", hub_url, "adjustments", "approve", str(held["id"]), "--by", "hq-anna",
                                    "--reason", "confirmed with the customer"])
        assert approved.exit_code == 0, approved.output
        again = run.invoke(cli, ["--db", hub_url, "adjustments", "reject", str(held["id"]), "--by", "x",
                                 "--reason", "y"])
        assert again.exit_code == 1 and "already approved by hq-anna" in again.output
        ta.client.sync_once()
        tb.client.sync_once()
        for balance in (hub_balance(hub, m.id), ta.ledger.balance(m.id), tb.ledger.balance(m.id)):
            assert balance == start + 900 + 1_000_000
        # a terminal whose limit is 0: every adjustment is held; a rejection writes nothing more
        assert run.invoke(cli, ["--db", hub_url, "terminals", "limit", "TB", "--adjust-points-per-day", "0",
                                "--by", "hq-anna"]).exit_code == 0
        tb.ledger.adjust(member_id=m.id, points=-50, reason="typo", actor="tb-mgr")
        tb.client.sync_once()
        (held,) = json.loads(run.invoke(cli, ["--db", hub_url, "adjustments", "list", "--json"]).output)
        assert held["points"] == -50
        rejected = run.invoke(cli, ["--db", hub_url, "adjustments", "reject", str(held["id"]), "--by", "hq-anna",
                                    "--reason", "not agreed"])
        assert rejected.exit_code == 0, rejected.output
        ta.client.sync_once()
        tb.client.sync_once()
        assert ta.ledger.balance(m.id) == tb.ledger.balance(m.id) == hub_balance(hub, m.id) == start + 1_000_900
        actions = [a[1] for a in _audit(hub) if a[0] == "hq-anna"]
        assert actions == ["adjustment.approve", "terminal.adjust_limit", "adjustment.reject"]
        assert "2 adjustment(s) held" not in run.invoke(cli, ["--db", hub_url, "adjustments", "list"]).output
    finally:
        ta.close()
        tb.close()
