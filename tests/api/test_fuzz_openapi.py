"""schemathesis against the published OpenAPI: no generated input gives a 5xx.

Drives schemathesis' strategies with hypothesis directly (its pytest plugin lags
pytest releases); every operation but the endless SSE stream is covered.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.users import authenticate
from terminal_agent.api.app import create_app
from terminal_agent.runtime import Runtime
from tests.api.conftest import TOKEN

EXAMPLES_PER_OPERATION = 30


def _operations(runtime: Runtime) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", create_app(runtime))
    ops = [result.ok() for result in schema.get_all_operations()]
    return [op for op in ops if op.path != "/v1/events"]


def test_every_operation_is_fuzzed(runtime: Runtime) -> None:
    paths = {(op.method.upper(), op.path) for op in _operations(runtime)}
    assert ("POST", "/v1/sales") in paths and ("POST", "/v1/members") in paths and len(paths) >= 14


@pytest.mark.slow
def test_no_generated_input_gives_a_server_error(runtime: Runtime) -> None:
    session = runtime.sessions.open(authenticate(runtime.ledger, username="mina", pin="654321", pin_key=runtime.pin_key))
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Session": session}
    for op in _operations(runtime):

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(), keep_session=st.booleans())
        def check(case: Any, keep_session: bool) -> None:
            response = case.call(headers=headers if keep_session else {"Authorization": f"Bearer {TOKEN}"})
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text}"

        check()
