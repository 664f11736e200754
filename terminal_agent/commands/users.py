"""`loyalty-agent users add|set-pin`: bootstrap till users while the agent is stopped."""

from __future__ import annotations

import click

from ledger.schema import ROLES
from ledger.service import Ledger
from terminal_agent.ledgers import open_ledger
from ledger.users import add_user, set_pin
from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.runlock import RunLock


@click.group("users")
def group() -> None:
    """Till users (cashier, manager, admin) and their PINs."""


def _ledger(actx: AgentContext) -> Ledger:
    return open_ledger(actx.config)


@group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True, help="4 to 12 digits.")
@click.option("--actor", default="cli", show_default=True, help="Who is adding the user (for the audit log).")
@pass_ctx
def add(actx: AgentContext, username: str, role: str, pin: str, actor: str) -> None:
    """Add a till user. Run while the agent is stopped."""
    with RunLock(actx.config.data_dir):
        led = _ledger(actx)
        try:
            add_user(led, username=username, role=role, pin=pin, actor=actor)
        finally:
            led.close()
    click.echo(f"user {username} added as {role}")


@group.command("set-pin")
@click.argument("username")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True, help="4 to 12 digits.")
@click.option("--actor", default="cli", show_default=True, help="Who is changing the PIN (for the audit log).")
@pass_ctx
def set_pin_(actx: AgentContext, username: str, pin: str, actor: str) -> None:
    """Set a user's PIN and unlock them. Run while the agent is stopped."""
    with RunLock(actx.config.data_dir):
        led = _ledger(actx)
        try:
            set_pin(led, username=username, pin=pin, actor=actor)
        finally:
            led.close()
    click.echo(f"PIN of {username} changed")
