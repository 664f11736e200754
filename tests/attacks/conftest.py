"""The attack tests use the API's served-app fixtures and the sync tests' hub
fixtures (SQLite and PostgreSQL) as they are."""

from tests.api.conftest import agent_url, client, manager_headers, runtime  # noqa: F401
from tests.sync.conftest import hub, hub_http, hub_url, terminals  # noqa: F401
