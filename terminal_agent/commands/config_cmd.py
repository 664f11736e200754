"""`loyalty-agent config check`."""

from __future__ import annotations

import click

from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.config import load_config


@click.group("config")
def group() -> None:
    """Inspect and validate the configuration."""


@group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@pass_ctx
def check(actx: AgentContext, path: str | None) -> None:
    """Validate a config file (default: the one the agent would use) and print where things live."""
    cfg = load_config(path or actx.config_path)
    click.echo(f"{cfg.source}: ok")
    click.echo(f"  ledger:  {cfg.ledger_path}")
    click.echo(f"  backups: {cfg.backup_dir} (every {cfg.backup.interval_minutes} min, keep {cfg.backup.keep})")
    click.echo(f"  rules:   {cfg.rules_path or 'built-in default table'}")
    click.echo(f"  readers: {len(cfg.readers)}")
