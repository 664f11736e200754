"""`loyalty-agent`: the command line. Thin: each command calls the library and prints.

Errors of our packages become one line on stderr and an exit status; no traceback
reaches a user (a bug still shows one, since that is what a bug report needs).
"""

from __future__ import annotations

from typing import Any

import click

from terminal_agent import __version__
from terminal_agent.commands.context import AgentContext
from terminal_agent.errors import AgentError


def _user_errors() -> tuple[type[Exception], ...]:
    """Base exceptions of each package: these are the world's doing, not a bug."""
    from ledger.errors import LedgerError

    errors: list[type[Exception]] = [AgentError, LedgerError]
    try:
        from ledger.rules.errors import RulesError

        errors.append(RulesError)
    except ImportError:  # pragma: no cover - while the package is being written
        pass
    try:
        from drivers.errors import DriverError

        errors.append(DriverError)
    except ImportError:  # pragma: no cover
        pass
    from sync.errors import SyncError

    errors.append(SyncError)
    return tuple(errors)


class UserError(click.ClickException):
    """One of our packages' errors, shown as one line with the package's exit status."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exit_code = int(getattr(exc, "exit_code", 1))

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class AgentGroup(click.Group):
    """Turns our packages' errors into UserError wherever a subcommand raises them."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _user_errors() as exc:
            raise UserError(exc) from None


@click.group(cls=AgentGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: $LOYALTY_AGENT_CONFIG, else ./config.toml, else built-in defaults).",
)
@click.version_option(__version__, prog_name="loyalty-agent")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Loyalty terminal agent: reads members' cards, applies the points rules, keeps the offline ledger."""
    ctx.obj = AgentContext(config_path)


def _register() -> None:
    from terminal_agent.commands import backup, config_cmd, db, demo, ledger_cmd, run, users

    for module in (config_cmd, db, ledger_cmd, backup, demo, users):
        cli.add_command(module.group)
    cli.add_command(run.run)
    cli.add_command(run.status)
    from terminal_agent.commands import tui

    cli.add_command(tui.tui)
    from terminal_agent.commands import sync_cmd

    cli.add_command(sync_cmd.group)
    cli.add_command(sync_cmd.enroll)
    for optional in ("rules", "readers", "report"):
        try:
            module: Any = __import__(f"terminal_agent.commands.{optional}", fromlist=["group"])
        except ImportError:  # pragma: no cover - while the package is being written
            continue
        cli.add_command(module.group)


_register()


def main(argv: list[str] | None = None) -> None:
    from terminal_agent.datadir import private_umask

    private_umask()  # ledgers, backups, keys and logs this process writes are its user's alone
    cli.main(args=argv, prog_name="loyalty-agent")


if __name__ == "__main__":  # pragma: no cover
    main()
