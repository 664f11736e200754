"""Errors of the hub's messages to members (SMS).

    SyncError (sync.errors)
    └── MessagesError          anything of messaging that a command reports in one line
        ├── ConfigError        the hub's config file: names the file and the key (exit 2)
        ├── TemplateError      a template: names the template (and the placeholder)
        └── GatewayError       a gateway did not take a message; `retry` says whether to
                               try again (timeouts, 5xx, 429 with `retry_after_s`)

httpx errors become GatewayError where they enter (gateways.py); SQLAlchemy errors
stay the hub's (they are its database's).
"""

from __future__ import annotations

from sync.errors import SyncError


class MessagesError(SyncError):
    code = "messages_error"


class ConfigError(MessagesError):
    code = "config_error"
    exit_code = 2

    def __init__(self, file: str, key: str, message: str) -> None:
        super().__init__(f"{file}: {key}: {message}")
        self.file, self.key = file, key


class TemplateError(MessagesError):
    code = "template_error"


class GatewayError(MessagesError):
    """retry: worth another attempt later (the gateway was slow, busy or down);
    retry_after_s: how long the gateway asked us to wait (429 Retry-After);
    unknown: the request may have been taken before it failed (a timeout waiting for
    the answer, an answer we cannot read): a resend may be a duplicate."""

    code = "gateway_error"

    def __init__(self, reason: str, *, retry: bool, retry_after_s: float | None = None,
                 unknown: bool = False) -> None:
        super().__init__(reason)
        self.retry, self.retry_after_s, self.unknown = retry, retry_after_s, unknown
