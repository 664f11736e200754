"""The one way the agent opens its ledger from the config: the daemon and every
command use it, so each applies the same card policy, the same effective loyalty
table (the hub's, once taken: ledger.rulesource) and the same private files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledger.cardpolicy import CardPolicy
from ledger.service import Ledger
from terminal_agent.config import AgentConfig
from terminal_agent.datadir import secure


def card_policy(cfg: AgentConfig) -> CardPolicy:
    return CardPolicy.from_config(cfg.cards)


def configured_ruleset(cfg: AgentConfig) -> Any:
    """The table the config names, or None for the built-in one (the hub's wins over both)."""
    from ledger.rules import load_ruleset

    return load_ruleset(cfg.rules_path) if cfg.rules_path else None


def open_ledger(cfg: AgentConfig, *, path: Path | None = None, **kwargs: Any) -> Ledger:
    secure(cfg.data_dir, path or cfg.ledger_path, cfg.backup_dir)
    return Ledger.open(path or cfg.ledger_path, store=cfg.agent.store, terminal=cfg.agent.terminal,
                       ruleset=configured_ruleset(cfg), busy_timeout_ms=cfg.ledger.busy_timeout_ms,
                       card_policy=card_policy(cfg), **kwargs)
