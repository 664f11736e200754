"""`loyalty-agent enroll` and `loyalty-agent sync status|now`."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import click

from sync.errors import NotEnrolled
from terminal_agent.commands.context import AgentContext, pass_ctx


def _verify(actx: AgentContext) -> Any:
    from sync.client import tls_verify

    cfg = actx.config
    return tls_verify(cfg.resolve(cfg.sync.ca_bundle) if cfg.sync.ca_bundle else None)


def open_client(actx: AgentContext):  # type: ignore[no-untyped-def]
    from sync.client import SyncClient, check_store, load_credentials
    from terminal_agent.ledgers import open_ledger

    cfg = actx.config
    creds = load_credentials(cfg.data_dir)
    if creds is None:
        raise NotEnrolled("this terminal is not enrolled with a hub; run `loyalty-agent enroll HUB_URL CODE` "
                          "with a code from `loyalty-hub terminals add`")
    check_store(creds, cfg.agent.store)
    if cfg.sync.hub_url:  # the config says where the hub is; the credentials say who we are
        creds = dataclasses.replace(creds, hub_url=cfg.sync.hub_url.rstrip("/"))
    led = open_ledger(cfg)
    try:
        return SyncClient(led, creds, batch_size=cfg.sync.batch_size, timeout_s=cfg.sync.timeout_s,
                          verify=_verify(actx))
    except Exception:
        led.close()
        raise


@click.command("enroll")
@click.argument("hub_url")
@click.argument("code")
@pass_ctx
def enroll(actx: AgentContext, hub_url: str, code: str) -> None:
    """Enrol this terminal with the hub at HUB_URL using a one-time CODE."""
    from sync.client import credentials_path, enroll as do_enroll

    cfg = actx.config
    creds = do_enroll(hub_url, code, cfg.agent.terminal, cfg.data_dir, verify=_verify(actx),
                      timeout_s=cfg.sync.timeout_s)
    click.echo(f"enrolled terminal {creds.terminal} of store {creds.store} with {creds.hub_url}; "
               f"credentials in {credentials_path(cfg.data_dir)} (mode 0600)")
    if not cfg.sync.hub_url:
        click.echo(f'set [sync] hub_url = "{creds.hub_url}" in {cfg.source} so the agent syncs', err=True)


@click.group("sync")
def group() -> None:
    """Sync with the central hub."""


@group.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def status(actx: AgentContext, as_json: bool) -> None:
    """Backlog, the age of the oldest unsent entry, last success and last error."""
    client = open_client(actx)
    try:
        data = client.status()
    finally:
        client.ledger.close()
        client.close()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    age = data["oldest_unsent_age_s"]
    click.echo(f"hub:          {data['hub_url']} (terminal {data['terminal']})")
    click.echo(f"backlog:      {data['backlog']} entries" + (f", oldest {age:.0f} s old" if age is not None else ""))
    click.echo(f"last success: {data['last_success_at'] or 'never'}")
    click.echo(f"last error:   {data['last_error'] or 'none'}")


@group.command("now")
@pass_ctx
def now(actx: AgentContext) -> None:
    """Send everything pending and take what other branches did, now."""
    from ledger.progress import progress_for, progress_of

    client = open_client(actx)
    try:
        backlog = client.unsent_entries()
        # a bar only for a backlog of more than one batch: a routine sync is one line
        with progress_of(progress_for("sending entries", quiet=backlog <= client.batch_size), backlog) as bar:
            report = client.sync_once(progress=bar)
    finally:
        client.ledger.close()
        client.close()
    click.echo(f"sent {report.sent} entries, received {report.received} in {report.requests} request(s); "
               f"backlog {report.backlog}")
