"""The attack tests use the API's served-app fixtures as they are."""

from tests.api.conftest import agent_url, client, manager_headers, runtime  # noqa: F401
