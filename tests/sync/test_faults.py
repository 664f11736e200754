"""Under random network faults, three terminals selling and syncing end in an exact
state: every entry on the hub once, every balance equal on the hub and each terminal."""

from __future__ import annotations

import random

from sqlalchemy import func, select

from ledger.sales import post_sale
from ledger.schema import entries as local_entries
from ledger.verify import verify
from sync.errors import HubUnreachable
from sync.hub.schema import balances as hub_balances
from sync.hub.schema import entries as hub_entries
from sync.hub.service import Hub
from tests.conftest import sale
from tests.sync.faults import FAULTS, FaultyTransport

SALES = 10_000
SEED = 20261125


def test_random_faults_during_sales_at_three_terminals_end_exact(hub: Hub, hub_http, terminals) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(SEED)
    transports = {code: FaultyTransport(hub_http._transport, rate=0.35, seed=SEED + i)
                  for i, code in enumerate(("TA", "TB", "TC"))}
    tills = {code: terminals(code, transports[code]) for code in transports}
    a = tills["TA"]
    cards = []
    for i in range(6):
        m = a.ledger.enrol_member(name=f"m{i}", mobile=f"0912000{i:04d}", actor="mgr")
        cards.append(a.ledger.issue_card(member_id=m.id, number=f"6395{i:012d}", technology="magstripe",
                                         actor="mgr").number)
    while True:  # every terminal learns the members (through faults)
        try:
            for t in tills.values():
                t.client.sync_once()
            break
        except HubUnreachable:
            continue
    for n in range(SALES):
        till = tills[rng.choice(list(tills))]
        till.clock.advance(minutes=1)
        post_sale(till.ledger, sale(f"{till.code}-{n}", rng.choice(cards), rng.randrange(100_000, 5_000_000)))
        if rng.random() < 0.05:
            try:
                till.client.sync_once()
            except HubUnreachable:
                pass  # the network is down: the till goes on
    for transport in transports.values():
        transport.rate = 0.0  # the network is back for good
    for _ in range(2):
        for t in tills.values():
            t.client.sync_once()
    assert all(sum(tr.injected[f] for tr in transports.values()) > 0 for f in FAULTS)
    own = {}
    for t in tills.values():
        with t.ledger.read() as conn:
            own[t.code] = conn.execute(select(func.count()).select_from(local_entries)
                                       .where(local_entries.c.terminal_code == t.code)).scalar_one()
    assert own["TA"] > 6 and own["TB"] > 0 and own["TC"] > 0
    with hub.engine.connect() as conn:
        per_terminal = dict(conn.execute(select(hub_entries.c.terminal_code, func.count())
                                         .group_by(hub_entries.c.terminal_code)).all())
        hub_bal = dict(conn.execute(select(hub_balances.c.member_id, hub_balances.c.points)).all())
    assert per_terminal == own  # every entry once, none lost, none doubled
    for t in tills.values():
        with t.ledger.read() as conn:
            total = conn.execute(select(func.count()).select_from(local_entries)).scalar_one()
        assert total == own[t.code]  # each terminal holds its own entries; the others' come as sums
        for member_id, points in hub_bal.items():
            assert t.ledger.balance(member_id) == points
        assert verify(t.ledger.engine).ok
