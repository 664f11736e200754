"""The loyalty terminal agent: the daemon, local API, CLI and TUI (composition root)."""

__version__ = "0.1.0"
