"""`loyalty-agent ledger verify`."""

from __future__ import annotations

import sys

import click

from ledger import db
from ledger.errors import IntegrityFailure
from ledger.verify import verify as verify_ledger
from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.ledgers import card_policy


@click.group("ledger")
def group() -> None:
    """Check the offline ledger."""


@group.command("verify")
@click.option("--file", "path", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Ledger file to check (default: the configured ledger).")
@pass_ctx
def verify(actx: AgentContext, path: str | None) -> None:
    """Recompute every balance from the entries and check the hash chain; exit 1 at the first bad entry."""
    from pathlib import Path

    target = Path(path) if path else actx.config.ledger_path
    engine = db.create_ledger_engine(target, read_only=True)
    try:
        if not db.has_schema(engine):
            raise IntegrityFailure(f"{target} is not a loyalty ledger (no schema)")
        report = verify_ledger(engine, card_policy(actx.config))
    finally:
        engine.dispose()
    if report.ok:
        click.echo(f"{target}: ok: {report.entries_checked} entries on {report.terminals} terminal(s), "
                   f"{report.members} balances match")
        return
    for problem in report.problems:
        click.echo(f"BAD: {problem}", err=True)
    click.echo(f"{target}: {len(report.problems)} problem(s); the first bad entry is named above", err=True)
    sys.exit(1)
