"""Which loyalty table a ledger applies. One decision for the daemon and every command:

1. the table the hub published last, as this terminal took it (kept in `sync_state`,
   so a restart never forgets what the hub said);
2. else the table the config names;
3. else the built-in default.
"""

from __future__ import annotations

import logging
import tomllib
from typing import Any

from sqlalchemy import Engine

from ledger.db import Raw, translate_db_errors
from ledger.rules import Ruleset, default_ruleset, parse_ruleset
from ledger.rules.errors import RulesError

log = logging.getLogger("ledger.rules")


def parse_hub_ruleset(toml_text: str, label: str) -> Ruleset:
    """A table as the hub sent it (RulesError or a TOML error if it is not one)."""
    return parse_ruleset(tomllib.loads(toml_text), label)


def hub_ruleset(conn: Any) -> Ruleset | None:
    """The hub's table this ledger took, or None if it never took one (or cannot read
    it any more: then the caller falls back, and says so)."""
    row = Raw(conn).one_or_none("SELECT ruleset_hash, ruleset_toml FROM sync_state WHERE id = 1")
    if row is None or not row[1]:
        return None
    try:
        return parse_hub_ruleset(row[1], f"the hub's loyalty table {str(row[0])[:12]}")
    except (RulesError, tomllib.TOMLDecodeError) as exc:
        log.error("the hub's loyalty table kept in the ledger cannot be read (%s); using the configured one", exc)
        return None


def effective_ruleset(engine: Engine, configured: Ruleset | None) -> Ruleset:
    with translate_db_errors("reading the loyalty table"), engine.connect() as conn:
        taken = hub_ruleset(conn)
    if taken is not None:
        return taken
    return configured if configured is not None else default_ruleset()
