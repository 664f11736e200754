from tests.api.conftest import agent_url, client, manager_headers, runtime  # noqa: F401  (the API tests' fixtures)
