from tests.api.conftest import agent_url, runtime  # noqa: F401  (fixtures shared with the API tests)
