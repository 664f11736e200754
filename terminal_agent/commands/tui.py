"""`loyalty-agent tui`: the store manager's console."""

from __future__ import annotations

import click

from terminal_agent.commands.context import AgentContext, pass_ctx
from terminal_agent.endpoint import agent_endpoint


@click.command("tui")
@click.option("--user", "username", default="", help="Manager's user name (asked on screen otherwise).")
@pass_ctx
def tui(actx: AgentContext, username: str) -> None:
    """The store manager's console: enrol members, issue, replace and block cards, adjust
    points. Talks to the running agent (`loyalty-agent run`) as a manager's session."""
    from terminal_agent.tui.api import AgentApi
    from terminal_agent.tui.app import ManagerConsole

    where = agent_endpoint(actx.config)
    ManagerConsole(AgentApi(where.base_url, where.token, where.verify), actx.config.agent.locale, username).run()
