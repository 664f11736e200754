"""Terminals syncing at the same moment (the hub answers each request on its own
thread, and on PostgreSQL several workers share the database): no terminal may miss
a balance change or a directory change committed by another request while it was answered."""

from __future__ import annotations

import random
import threading

from sqlalchemy import func, select

from ledger.sales import post_sale
from ledger.schema import cards as local_cards
from ledger.schema import entries as local_entries
from sync.hub.schema import balances as hub_balances
from sync.hub.schema import entries as hub_entries
from sync.hub.service import Hub
from tests.conftest import sale
from tests.sync.hubtransport import HubTransport

TERMINALS = ("TA", "TB", "TC", "TD")
ROUNDS = 25
SALES_PER_ROUND = 2


def test_terminals_syncing_at_once_miss_nothing(hub: Hub, terminals) -> None:  # type: ignore[no-untyped-def]
    transport = HubTransport(hub)
    tills = {code: terminals(code, transport) for code in TERMINALS}
    a = tills["TA"]
    cards = []
    for i in range(4):
        m = a.ledger.enrol_member(name=f"m{i}", mobile=f"0912000{i:04d}", actor="mgr")
        cards.append(a.ledger.issue_card(member_id=m.id, number=f"6395{i:012d}", technology="magstripe",
                                         actor="mgr").number)
    for t in tills.values():
        t.client.sync_once()
    errors: list[BaseException] = []
    start = threading.Barrier(len(tills))

    def work(code: str) -> None:
        till, rng = tills[code], random.Random(code)
        try:
            start.wait(timeout=30)
            for r in range(ROUNDS):
                for s in range(SALES_PER_ROUND):
                    till.clock.advance(minutes=1)
                    post_sale(till.ledger, sale(f"{code}-{r}-{s}", rng.choice(cards), rng.randrange(100_000, 900_000)))
                if code == "TB" and r == ROUNDS // 2:  # a directory change while everyone syncs
                    m = till.ledger.enrol_member(name="late", mobile="09129999999", actor="mgr")
                    till.ledger.issue_card(member_id=m.id, number="6395999999999999", technology="magstripe",
                                           actor="mgr")
                till.client.sync_once()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(code,)) for code in tills]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    for _ in range(2):  # quiet now: everyone takes what is left
        for t in tills.values():
            t.client.sync_once()
    with hub.engine.connect() as conn:
        on_hub = dict(conn.execute(select(hub_entries.c.terminal_code, func.count())
                                   .group_by(hub_entries.c.terminal_code)).all())
        hub_bal = dict(conn.execute(select(hub_balances.c.member_id, hub_balances.c.points)).all())
    for t in tills.values():
        # each till holds its own entries; what the others did comes as sums (protocol 2)
        with t.ledger.read() as conn:
            held = conn.execute(select(func.count()).select_from(local_entries)).scalar_one()
            late = conn.execute(select(local_cards.c.number).where(local_cards.c.number == "6395999999999999")).first()
        assert held == on_hub[t.code], f"{t.code} holds {held} entries, the hub {on_hub[t.code]} of it"
        assert late is not None, f"{t.code} never learnt the card enrolled at TB"
        for member_id, points in hub_bal.items():
            assert t.ledger.balance(member_id) == points


def test_two_copies_of_one_request_at_once_pass_exactly_once(hub: Hub, hub_http) -> None:  # type: ignore[no-untyped-def]
    import json

    import httpx

    from sync import signing

    secret = hub_http.post("/v1/enroll", json={"code": hub.new_enrolment_code("S1"), "terminal": "T1"}).json()["secret"]
    transport = HubTransport(hub)
    for _ in range(10):
        body = json.dumps({"entries": []}).encode()
        headers = signing.signed_headers("T1", secret, "POST", "/v1/sync", body)
        gate = threading.Barrier(2)
        codes: list[int] = []

        def send() -> None:
            gate.wait(timeout=10)
            request = httpx.Request("POST", "http://hub.test/v1/sync", content=body, headers=headers)
            codes.append(transport.handle_request(request).status_code)

        threads = [threading.Thread(target=send) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=30)
        assert sorted(codes) == [200, 401], codes  # never both, never a 500
