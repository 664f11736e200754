"""Errors of the rules engine.

    RulesError
    └── InvalidRuleset   the loyalty table file is unreadable or a rule in it is wrong;
                         the message names the file, the rule and the key
"""

from __future__ import annotations


class RulesError(Exception):
    code = "rules_error"
    exit_code = 2


class InvalidRuleset(RulesError):
    code = "invalid_ruleset"

    def __init__(self, source: str, where: str, message: str) -> None:
        self.source = source
        self.where = where
        super().__init__(f"{source}: {where}: {message}" if where else f"{source}: {message}")
