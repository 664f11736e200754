"""`loyalty-agent users add|set-pin`: bootstrap till users while the agent is stopped.

The PIN is never an argument (the process list and shell history would show it): it is
asked for with a hidden prompt and a confirmation, or read as one line from standard
input when that is not a terminal (`printf '%s\\n' "$PIN" | loyalty-agent users add ...`).
"""

from __future__ import annotations

import sys

import click

from ledger.schema import ROLES
from ledger.service import Ledger
from ledger.users import add_user, set_pin
from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.ledgers import open_ledger
from terminal_agent.runlock import RunLock
from terminal_agent.runtime import pin_key


@click.group("users")
def group() -> None:
    """Till users (cashier, manager, admin) and their PINs."""


def _ledger(actx: AgentContext) -> Ledger:
    return open_ledger(actx.config)


def _read_pin() -> str:
    stdin = sys.stdin
    if not stdin.isatty():
        line = stdin.readline()
        if not line.strip():
            raise click.UsageError("no PIN on standard input (one line of digits)")
        return line.strip()
    return str(click.prompt("PIN", hide_input=True, confirmation_prompt=True))


@group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option("--actor", default="cli", show_default=True, help="Who is adding the user (for the audit log).")
@pass_ctx
def add(actx: AgentContext, username: str, role: str, actor: str) -> None:
    """Add a till user; asks for the PIN (4 to 12 digits; managers and admins at least 6).
    Run while the agent is stopped."""
    with RunLock(actx.config.data_dir):
        pin = _read_pin()
        key = pin_key(actx.config)
        led = _ledger(actx)
        try:
            add_user(led, username=username, role=role, pin=pin, actor=actor, pin_key=key)
        finally:
            led.close()
    click.echo(f"user {username} added as {role}")


@group.command("set-pin")
@click.argument("username")
@click.option("--actor", default="cli", show_default=True, help="Who is changing the PIN (for the audit log).")
@pass_ctx
def set_pin_(actx: AgentContext, username: str, actor: str) -> None:
    """Set a user's PIN (asked for, never an argument) and unlock them. Run while the agent is stopped."""
    with RunLock(actx.config.data_dir):
        pin = _read_pin()
        key = pin_key(actx.config)
        led = _ledger(actx)
        try:
            set_pin(led, username=username, pin=pin, actor=actor, pin_key=key)
        finally:
            led.close()
    click.echo(f"PIN of {username} changed")
