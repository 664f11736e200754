"""Campaigns: a dry run shows recipients, the first messages and the cost; a campaign
is queued (now or at a time), listed and cancelled; its results compare purchases of
the messaged members with a control group drawn at random with a seed. Through the
command line too, with every messages command."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from ledger.timefmt import format_utc
from sync.hub.cli import cli
from sync.hub.config import HubConfig
from sync.hub.messages import campaigns
from sync.hub.messages.worker import Worker
from sync.hub.schema import balances, entries, members, messages
from sync.hub.service import Hub
from tests.messages.conftest import Clock, sent_file

MEMBERS = 20


def seed_members(hub: Hub) -> list[str]:
    ids = [f"m{i:02d}" for i in range(MEMBERS)]
    with hub.engine.begin() as conn:
        conn.execute(insert(members), [
            {"id": i, "name": f"Member {i}", "mobile": f"0912000{n:04d}", "birth_date": None, "referrer_id": None,
             "tier": "bronze", "segment": "vip" if n < 10 else None, "enrolled_at": "2026-01-01T00:00:00.000000Z",
             "enrolled_by": "test", "store_code": "S1" if n % 2 else "S2", "rev": n + 1}
            for n, i in enumerate(ids)])
        conn.execute(insert(balances), [{"member_id": i, "points": 100 * n} for n, i in enumerate(ids)])
    return ids


def bought(hub: Hub, member_id: str, at: Any, amount: int, n: int) -> None:
    with hub.engine.begin() as conn:
        conn.execute(insert(entries).values(
            id=f"e-{member_id}-{n}", terminal_code="T1", seq=10_000 + n, member_id=member_id, kind="earn",
            points=amount // 10_000, amount=amount, sale_id=f"s-{member_id}-{n}", actor="t", ruleset_hash="-" * 64,
            created_at=format_utc(at), prev_hash="", hash=f"h{n}"))


def test_the_control_group_is_drawn_with_its_seed() -> None:
    ids = [f"m{i}" for i in range(100)]
    to, control = campaigns.split(ids, 10, seed=7)
    assert len(control) == 10 and len(to) == 90 and not set(to) & set(control)
    assert campaigns.split(list(reversed(ids)), 10, seed=7) == (to, control)  # the same draw
    assert campaigns.split(ids, 10, seed=8)[1] != control
    assert campaigns.split(ids, 0, seed=7) == (sorted(ids), [])


def test_a_dry_run_then_a_scheduled_campaign_cancelled(
        hub: Hub, make_config: Callable[..., HubConfig], clock: Clock) -> None:
    seed_members(hub)
    cfg = make_config({"messages": {"price_per_part_rial": 1_200}})
    draft = campaigns.Draft("campaign", "vip", None, None, clock() + timedelta(days=1), 10, 42)
    plan = campaigns.plan(hub.engine, cfg, draft)
    assert (plan["recipients"], plan["control"]) == (9, 1)
    assert len(plan["first"]) == 3 and plan["first"][0].endswith("لغو۱۱")
    assert plan["cost_rial"] == plan["parts"] * 1_200 and plan["parts"] >= 9
    with hub.engine.connect() as conn:
        assert conn.execute(select(messages)).first() is None  # a plan queues nothing
    made = campaigns.create(hub.engine, cfg, draft, "tester", clock())
    with Worker(hub.engine, cfg, clock=clock) as worker:
        assert worker.send_due() == 0  # due tomorrow
    (listed,) = campaigns.listing(hub.engine)
    assert listed["messages"] == {"queued": 9} and listed["status"] == "scheduled"
    assert campaigns.cancel(hub.engine, made["id"], "tester", clock()) == 9
    with pytest.raises(Exception, match="already cancelled"):
        campaigns.cancel(hub.engine, made["id"], "tester", clock())
    assert campaigns.listing(hub.engine)[0]["messages"] == {"cancelled": 9}


def test_results_compare_the_messaged_with_the_control_group(
        hub: Hub, make_config: Callable[..., HubConfig], clock: Clock, tmp_path: Path) -> None:
    seed_members(hub)
    cfg = make_config()
    from sync.hub.messages.messaging import Messaging

    d = campaigns.Draft("campaign", None, None, "S1", clock(), 20, 3)  # 10 members of S1: 8 messaged, 2 held out
    made = campaigns.create(hub.engine, cfg, d, "tester", clock())
    with hub.engine.connect() as conn:
        messaged = list(conn.execute(select(messages.c.member_id).where(messages.c.campaign_id == made["id"])
                                     .order_by(messages.c.member_id)).scalars())
    control = sorted({f"m{i:02d}" for i in range(1, MEMBERS, 2)} - set(messaged))
    Messaging(hub.engine, cfg).choose(messaged[0], "all", "out")
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.step()
    for n, member in enumerate(messaged[1:4]):
        bought(hub, member, clock() + timedelta(days=2), 1_000_000, n)
    bought(hub, control[0], clock() + timedelta(days=3), 500_000, 9)
    bought(hub, messaged[5], clock() + timedelta(days=30), 9_000_000, 10)  # after the window
    rows = {r["group"]: r for r in campaigns.results(hub.engine, made["id"], days=14)}
    m, c = rows["messaged"], rows["control"]
    assert (m["members"], m["sent"], m["opted_out"], m["buyers"], m["sales"], m["amount_rial"]) == \
        (8, 7, 1, 3, 3, 3_000_000)
    assert (c["members"], c["sent"], c["buyers"], c["amount_rial"], c["buyer_share"]) == (2, 0, 1, 500_000, 0.5)
    assert len(sent_file(tmp_path)) == 7


def test_every_messages_and_campaign_command(hub_url: str, hub: Hub, tmp_path: Path) -> None:
    seed_members(hub)
    config = tmp_path / "hub.toml"
    config.write_text('[messages]\ngateway = "out"\nprice_per_part_rial = 1000\nquiet_start = "00:00"\n'
                      'quiet_end = "00:00"\n[gateways.out]\nkind = "file"\npath = "sent.jsonl"\n')
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(cli, ["--db", hub_url, "--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result

    preview = run("messages", "preview", "receipt", "--locale", "en", "--member", "m03")
    assert "Dear Member m03" in preview.output and "1 part(s), 1,000 Rial" in preview.output
    assert "opted out" in run("messages", "optout", "m01", "--kind", "campaign").output
    assert "opted in" in run("messages", "optin", "09120000005").output
    assert "09129990000" in run("messages", "gift-contact", "7777000012345", "09129990000").output
    dry = run("campaign", "send", "--template", "campaign", "--store", "S1", "--dry-run", "--seed", "1")
    assert "dry run: would queue 9 message(s)" in dry.output and "seed 1" in dry.output
    sent = run("campaign", "send", "--template", "campaign", "--store", "S1", "--seed", "1", "--by", "tester")
    assert "campaign 1: queued 9" in sent.output
    run("messages", "worker", "--until-idle")
    listed = run("messages", "list", "--json")
    states = sorted(r["status"] for r in json.loads(listed.output))
    assert states.count("sent") + states.count("suppressed") == 9 and "suppressed" in states  # m01 opted out
    assert "sent" in run("campaign", "list").output
    results = json.loads(run("campaign", "results", "1", "--json").output)
    assert [r["group"] for r in results] == ["messaged", "control"]
    later = run("campaign", "send", "--template", "campaign", "--segment", "vip", "--at", "2099-01-01 10:00")
    assert "campaign 2: queued" in later.output and "2099-01-01T06:30" in later.output  # 10:00 in Tehran
    assert "cancelled" in run("campaign", "cancel", "2").output
    bad = runner.invoke(cli, ["--db", hub_url, "--config", str(config), "campaign", "send", "--template", "receipt"])
    assert bad.exit_code == 1 and "kind campaign" in bad.output


def test_the_back_office_workbook_shows_each_campaigns_results(
        hub: Hub, make_config: Callable[..., HubConfig], clock: Clock, tmp_path: Path) -> None:
    import openpyxl

    from ledger.reports.days import Days
    from sync.hub.reports.export import export
    from sync.hub.reports.queries import Filters

    seed_members(hub)
    cfg = make_config()
    made = campaigns.create(hub.engine, cfg, campaigns.Draft("campaign", None, None, "S1", clock(), 20, 3),
                            "tester", clock())
    chain = campaigns.create(hub.engine, cfg, campaigns.Draft("campaign", "vip", None, None, clock(), 0, 1),
                             "tester", clock())
    with Worker(hub.engine, cfg, clock=clock) as worker:
        worker.step()
    with hub.engine.connect() as conn:
        messaged = list(conn.execute(select(messages.c.member_id).where(messages.c.campaign_id == made["id"])
                                     .order_by(messages.c.member_id)).scalars())
    for n, member in enumerate(messaged[:3]):
        bought(hub, member, clock() + timedelta(days=2), 1_000_000, n)
    day = clock().date()
    out = tmp_path / "campaigns.xlsx"
    written = export(hub.engine, out, Filters(Days(day, day)), locale="en", now=clock() + timedelta(days=20),
                     sheets=("campaigns",))
    ws = openpyxl.load_workbook(out)["Campaigns"]
    rows = [r for r in ws.iter_rows(min_row=3, values_only=True) if any(v is not None for v in r)]
    assert written == {"campaigns": 4} and len(rows) == 4
    expected = [r for c in (made, chain) for r in campaigns.results(hub.engine, c["id"], days=14)]
    for row, want in zip(rows, expected):
        assert row[0] == want["campaign_id"] and row[5] == {"messaged": "messaged", "control": "control (held out)"}[
            want["group"]]
        assert row[6:14] == (want["members"], want["sent"], want["delivered"], want["undelivered"], want["failed"],
                             want["opted_out"], want["suppressed"], want["cancelled"])
        assert row[15:18] == (want["buyers"], want["sales"], want["amount_rial"])
        assert row[18] == pytest.approx(want["buyer_share"])
    assert rows[0][3] == "S1" and rows[2][3] == "vip" and rows[0][4] == "scheduled"
    assert (rows[0][15], rows[0][17]) == (3, 3_000_000) and rows[0][7] == len(messaged)

    # a store filter keeps its stores' campaigns and the chain-wide one; another period, none
    from sync.hub.schema import stores

    with hub.engine.begin() as conn:
        conn.execute(insert(stores), [{"code": s, "created_at": "2026-01-01T00:00:00.000000Z"} for s in ("S1", "S2")])
    export(hub.engine, out, Filters(Days(day, day), stores=("S2",)), locale="fa", now=clock(), sheets=("campaigns",))
    assert {r[0] for r in openpyxl.load_workbook(out)["کمپین‌ها"].iter_rows(min_row=3, values_only=True)
            if r[0] is not None} == {chain["id"]}
    later = day + timedelta(days=40)
    assert export(hub.engine, out, Filters(Days(later, later)), locale="en", now=clock() + timedelta(days=41),
                  sheets=("campaigns",)) == {"campaigns": 0}
