"""`loyalty-agent backup now|list|restore`."""

from __future__ import annotations

from pathlib import Path

import click

from ledger import backup as backups
from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.runlock import RunLock


@click.group("backup")
def group() -> None:
    """Back up and restore the ledger."""


@group.command("now")
@pass_ctx
def now(actx: AgentContext) -> None:
    """Take a checked online backup into the backup folder now (safe while the agent runs)."""
    from ledger.progress import progress_for, progress_of

    cfg = actx.config
    with progress_of(progress_for("backup (pages)")) as bar:
        info = backups.backup_now(cfg.ledger_path, cfg.backup_dir, cfg.backup.keep, progress=bar)
    click.echo(f"backup written: {info.path} ({info.size_bytes} bytes, {info.entries} entries, verified)")


@group.command("list")
@pass_ctx
def list_(actx: AgentContext) -> None:
    """List the backups in the backup folder, oldest first."""
    for path in backups.list_backups(actx.config.backup_dir):
        click.echo(f"{path}  {path.stat().st_size} bytes")


@group.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def restore(actx: AgentContext, file: Path, yes: bool) -> None:
    """Replace the ledger with a verified backup FILE. Refused while the agent runs."""
    cfg = actx.config
    with RunLock(cfg.data_dir):
        if not yes:
            click.confirm(f"replace {cfg.ledger_path} with {file}?", abort=True)
        kept = backups.restore(file, cfg.ledger_path)
    click.echo(f"restored {cfg.ledger_path} from {file}")
    if kept:
        click.echo(f"the previous ledger was kept as {kept}")
