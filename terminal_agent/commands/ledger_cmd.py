"""`loyalty-agent ledger verify` and `ledger archive`."""

from __future__ import annotations

import sys
from typing import Any

import click

from ledger import db
from ledger.errors import IntegrityFailure
from ledger.verify import verify as verify_ledger
from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.ledgers import card_policy


@click.group("ledger")
def group() -> None:
    """Check the offline ledger, and archive what the hub holds past the retention."""


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
        archived = f" (and {report.entries_archived} archived, as sums)" if report.entries_archived else ""
        click.echo(f"{target}: ok: {report.entries_checked} entries{archived} on {report.terminals} terminal(s), "
                   f"{report.members} balances match")
        return
    for problem in report.problems:
        click.echo(f"BAD: {problem}", err=True)
    click.echo(f"{target}: {len(report.problems)} problem(s); the first bad entry is named above", err=True)
    sys.exit(1)


@group.command("archive")
@click.option("--dry-run", is_flag=True, help="Only count what would be archived; change nothing.")
@click.option("--actor", default="cli", show_default=True, help="Who runs it (for the audit log).")
@pass_ctx
def archive(actx: AgentContext, dry_run: bool, actor: str) -> None:
    """Archive own entries and sales the hub holds that are older than [ledger] retention_days, now (the
    agent does it once a day by itself); prints the counts. Run while the agent is stopped (--dry-run: any time)."""
    from terminal_agent.ledgers import open_ledger
    from terminal_agent.runlock import RunLock

    cfg = actx.config
    if dry_run:
        report = _archive(open_ledger(cfg), cfg.ledger.retention_days, True, actor)
    else:
        with RunLock(cfg.data_dir):
            report = _archive(open_ledger(cfg), cfg.ledger.retention_days, False, actor)
    verb = "would archive" if dry_run else "archived"
    click.echo(f"{cfg.ledger_path}: {verb} {report.entries} entries, {report.sales} sales and refunds "
               f"({report.lines} lines) made before {report.cutoff[:10]} (kept {report.retention_days} days); "
               f"{report.keys_dropped} archived sale keys past their own retention "
               f"{'would be ' if dry_run else ''}dropped")
    for terminal, seq in sorted(report.checkpoints.items()):
        click.echo(f"  terminal {terminal}: archived up to seq {seq}")


def _archive(led: Any, retention_days: int, dry_run: bool, actor: str) -> Any:
    try:
        return led.archive(retention_days=retention_days, dry_run=dry_run, actor=actor)
    finally:
        led.close()
