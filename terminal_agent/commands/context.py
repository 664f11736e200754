"""What every command gets: the path named with --config, loaded on first use."""

from __future__ import annotations

import click

from terminal_agent.config import AgentConfig, load_config


class AgentContext:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._config: AgentConfig | None = None

    @property
    def config(self) -> AgentConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config


pass_ctx = click.make_pass_decorator(AgentContext)
