"""Errors of the terminal agent shell.

    AgentError
    ├── ConfigError        a config file, key or value is wrong (exit status 2)
    └── AlreadyRunning     another agent holds the data directory's lock
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent itself raises."""

    exit_code = 1


class ConfigError(AgentError):
    """A config file, key or value is wrong; the message names the file and the key."""

    exit_code = 2

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(f"{where}{message}")


class AlreadyRunning(AgentError):
    """The data directory is locked by another running agent."""
