"""Attacks on the hub run on SQLite and on PostgreSQL, with the sync tests' fixtures."""

from tests.sync.conftest import hub, hub_http, hub_url, terminals  # noqa: F401
