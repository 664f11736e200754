"""`loyalty-agent db upgrade`."""

from __future__ import annotations

import click

from ledger import db
from terminal_agent.commands.context import AgentContext, pass_ctx


@click.group("db")
def group() -> None:
    """The ledger database's schema."""


@group.command("upgrade")
@pass_ctx
def upgrade(actx: AgentContext) -> None:
    """Apply any pending schema migrations to the ledger (the agent also does this on start)."""
    cfg = actx.config
    engine = db.create_ledger_engine(cfg.ledger_path, busy_timeout_ms=cfg.ledger.busy_timeout_ms)
    try:
        before = db.current_revision(engine)
        after = db.upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"{cfg.ledger_path}: already at revision {after}")
    else:
        click.echo(f"{cfg.ledger_path}: upgraded from {before or 'empty'} to {after}")
