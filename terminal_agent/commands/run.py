"""`loyalty-agent run` and `loyalty-agent status`."""

from __future__ import annotations

import asyncio
import json

import click
import httpx

from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.config import load_config
from terminal_agent.endpoint import agent_endpoint
from terminal_agent.errors import AlreadyRunning
from terminal_agent.ledgers import open_ledger
from terminal_agent.runlock import RunLock

STATUS_TIMEOUT_S = 3.0


@click.command("run")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Config file (overrides the global --config).")
@pass_ctx
def run(actx: AgentContext, config_path: str | None) -> None:
    """Run the agent: readers, ledger, local POS API, backups and sync, until SIGTERM or Ctrl-C."""
    from terminal_agent.daemon import serve

    cfg = load_config(config_path) if config_path else actx.config
    asyncio.run(serve(cfg))


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@pass_ctx
def status(actx: AgentContext, as_json: bool) -> None:
    """Readers, last card read, ledger size, sync backlog and last backup of the running agent."""
    where = agent_endpoint(actx.config)
    try:
        answer = httpx.get(f"{where.base_url}/v1/status", headers={"Authorization": f"Bearer {where.token}"},
                           timeout=STATUS_TIMEOUT_S, verify=where.verify)
        answer.raise_for_status()
        data = answer.json()
        data["running"] = True
    except httpx.HTTPError as exc:
        data = _offline_status(actx, str(exc))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(f"agent:    {'running' if data['running'] else 'not running'}")
    if "ledger" in data:
        led = data["ledger"]
        click.echo(f"ledger:   {led['path']} ({led['bytes']} bytes, {led['entries']} entries, {led['members']} members)")
    click.echo(f"sync:     backlog {data.get('sync', {}).get('backlog', '?')} entries")
    stock = data.get("card_stock")
    if stock:
        only = " (only these may be issued)" if stock.get("required") else ""
        click.echo(f"stock:    {stock.get('in_stock', 0)} pre-printed cards to issue{only}")
    for reader in data.get("readers", []):
        click.echo(f"reader:   {reader.get('reader_id')}: {reader.get('state')} {reader.get('detail', '')}")
    last = data.get("last_card")
    click.echo(f"last card: {last.get('masked')} at {last.get('at')}" if last else "last card: none yet")
    backup = data.get("backup") or {}
    click.echo(f"backup:   {(backup.get('last_backup') or {}).get('path', 'none this run')}")
    printer = data.get("printer")
    if printer:
        outcome = f"last error: {printer['last_error']}" if printer["last_error"] else \
            f"last slip {printer['last_printed_at'] or 'none this run'}"
        click.echo(f"printer:  {printer['device']}: {outcome}, {printer['pending']} waiting")


def _offline_status(actx: AgentContext, why: str) -> dict:  # type: ignore[type-arg]
    cfg = actx.config
    data: dict = {"running": False, "why": why}  # type: ignore[type-arg]
    lock = RunLock(cfg.data_dir)
    if not cfg.ledger_path.exists():
        return data
    from terminal_agent.runtime import Runtime
    from terminal_agent.status import agent_status

    try:
        lock.acquire()
    except AlreadyRunning:
        data.update(running=True, why=f"the agent (pid {lock.holder()}) runs but its API did not answer: {why}")
        return data
    try:
        led = open_ledger(cfg)
        try:
            data.update(agent_status(Runtime(config=cfg, ledger=led, token="")))
        finally:
            led.close()
    finally:
        lock.release()
    return data
