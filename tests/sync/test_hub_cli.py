"""The hub as a real process on loopback, on SQLite and on PostgreSQL, driven by its
own command line: two terminals enrol with one-time codes, sell through
ledger.sales.post_sale and sync; offline redemptions overdraw a member and
`loyalty-hub reconcile` lists both; a published table reaches a terminal; a revoked
terminal is refused; nothing secret is printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy

from ledger.sales import post_sale
from ledger.service import Ledger
from sync.client import SyncClient, enroll
from sync.errors import HubRefused
from sync.hub import schema as hub_schema
from tests.conftest import sale
from tests.e2e.agent_proc import free_port
from tests.sync.test_processes import HubProc

CLI_TIMEOUT_S = 60


def _hub_cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sync.hub", "--db", db, *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT_S)


@pytest.mark.slow
def test_two_terminals_through_a_real_hub_process_and_its_cli(hub_url: str, tmp_path: Path) -> None:
    proc = HubProc(tmp_path, free_port())
    proc.db = hub_url
    codes = [proc.cli("terminals", "add", "--store", "S1") for _ in range(2)]
    proc.start()
    base = f"http://127.0.0.1:{proc.port}"
    clients: dict[str, SyncClient] = {}
    try:
        for code, terminal in zip(codes, ("TA", "TB")):
            data_dir = tmp_path / terminal
            creds = enroll(base, code, terminal, data_dir)
            assert (data_dir / "hub.json").stat().st_mode & 0o777 == 0o600
            led = Ledger.open(data_dir / "ledger.sqlite3", store="S1", terminal=terminal)
            clients[terminal] = SyncClient(led, creds, batch_size=3)
        again = _hub_cli(hub_url, "terminals", "list")
        a, b = clients["TA"], clients["TB"]
        with pytest.raises(HubRefused) as used:  # a code works once
            enroll(base, codes[0], "TC", tmp_path / "TC")
        assert used.value.status == 403 and used.value.problem == "bad_enrolment_code"

        m = a.ledger.enrol_member(name="Sara", mobile="09120000001", actor="mgr")
        card = a.ledger.issue_card(member_id=m.id, number="6395000000000001", technology="magstripe", actor="mgr")
        a.ledger.adjust(member_id=m.id, points=900, reason="welcome gift", actor="mgr")
        for i in range(4):
            post_sale(a.ledger, sale(f"a{i}", card.number, 100_000))  # below a point: entries, no points
        report = a.sync_once()
        assert report.backlog == 0 and report.requests >= 2  # batches of 3
        b.sync_once()
        points = a.ledger.balance(m.id)
        assert b.ledger.balance(m.id) == points >= 1000
        # the network is down: both branches let the member spend most of the same points
        post_sale(a.ledger, sale("a-off", card.number, 2_000_000, redeem=points - 100))
        post_sale(b.ledger, sale("b-off", card.number, 2_000_000, redeem=points - 100))
        a.sync_once()
        b.sync_once()
        a.sync_once()
        assert a.ledger.balance(m.id) == b.ledger.balance(m.id) < 0

        listed = _hub_cli(hub_url, "reconcile", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)["overdrawn"]
        assert [r["member_id"] for r in rows] == [m.id] and rows[0]["balance"] == a.ledger.balance(m.id)
        assert sorted(d["terminal_code"] for d in rows[0]["debits"] if d["kind"] == "redeem") == ["TA", "TB"]
        text = _hub_cli(hub_url, "reconcile")
        assert "1 member(s) overdrawn" in text.stdout and "TA#" in text.stdout and "TB#" in text.stdout
        assert "0 mobile number(s) enrolled as more than one member" in text.stdout

        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        ingested = [ln for ln in metrics.splitlines() if ln.startswith("loyalty_hub_entries_ingested_total ")]
        assert ingested and int(ingested[0].split()[1]) > 0
        assert 'loyalty_hub_terminal_lag_seconds{terminal="TA"}' in metrics
        assert 'loyalty_hub_terminal_lag_seconds{terminal="TB"}' in metrics

        bad = tmp_path / "bad.toml"
        bad.write_text("[earn]\nrial_per_point = -5\n")
        refused = _hub_cli(hub_url, "rules", "publish", str(bad))
        assert refused.returncode != 0 and "error" in refused.stderr.lower() and "Traceback" not in refused.stderr
        good = tmp_path / "table.toml"
        good.write_text(Path("ledger/rules/default.toml").read_text(encoding="utf-8").replace(
            "rial_per_point = 10000            # 1 point", "rial_per_point = 5000            # 1 point"))
        published = _hub_cli(hub_url, "rules", "publish", str(good))
        assert published.returncode == 0 and "published version 1" in published.stdout, published.stderr
        a.sync_once()
        assert a.status()["ruleset_hash"] == a.ledger.ruleset.hash and a.ledger.ruleset.earn.rial_per_point == 5000

        revoked = _hub_cli(hub_url, "terminals", "revoke", "TB", "--by", "it-maryam")
        assert revoked.returncode == 0, revoked.stderr
        engine = sqlalchemy.create_engine(hub_url)
        try:
            with engine.connect() as conn:  # who revoked it is audited, named with --by
                who = conn.execute(sqlalchemy.select(hub_schema.audit.c.actor).where(
                    hub_schema.audit.c.action == "terminal.revoke", hub_schema.audit.c.target == "TB")).scalars().all()
        finally:
            engine.dispose()
        assert who == ["it-maryam"]
        with pytest.raises(HubRefused) as refused_sync:
            b.sync_once()
        assert refused_sync.value.status == 403 and refused_sync.value.problem == "revoked"
        assert "revoked" in (b.status()["last_error"] or "")
        listing = _hub_cli(hub_url, "terminals", "list").stdout
        assert "TA" in listing and "revoked" in listing
        for client in clients.values():  # the terminals' secrets never leave the hub's database
            assert client.creds.secret not in listing + again.stdout + metrics
        hub_log = proc.log.read_text()
        assert all(c.creds.secret not in hub_log for c in clients.values())
    finally:
        for client in clients.values():
            client.close()
            client.ledger.close()
        proc.stop()


def test_every_hub_command_has_help_and_is_in_the_readme() -> None:
    import click

    from sync.hub.cli import cli

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()

    def walk(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
        out = []
        for name, cmd in group.commands.items():
            out.append((f"{prefix}{name}", cmd))
            if isinstance(cmd, click.Group):
                out += walk(cmd, f"{prefix}{name} ")
        return out

    for name, cmd in walk(cli):
        assert cmd.help, f"`loyalty-hub {name}` has no help text"
        assert f"loyalty-hub {name}" in readme, f"`loyalty-hub {name}` is not in README.md"
