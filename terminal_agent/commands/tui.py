"""`loyalty-agent tui`: the console (manager's tasks, or the cashier's till)."""

from __future__ import annotations

import click

from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.endpoint import agent_endpoint


@click.command("tui")
@click.option("--user", "username", default="", help="User name (asked on screen otherwise).")
@pass_ctx
def tui(actx: AgentContext, username: str) -> None:
    """The console: a manager enrols members, issues, replaces and blocks cards, adjusts
    points, sees a member's history, runs gift cards, users (admin) and the audit log; a
    cashier sells, redeems, refunds and takes gift cards. Talks to the running agent
    (`loyalty-agent run`) under the user's session."""
    from terminal_agent.tui.api import AgentApi
    from terminal_agent.tui.app import build_console

    cfg = actx.config
    where = agent_endpoint(cfg)
    build_console(AgentApi(where.base_url, where.token, where.verify), cfg.agent.locale, cfg.agent.persian_digits,
                  cfg.console.bidi, username).run()
