"""Fuzzing the OpenAPI document with schemathesis: no generated request gets a server error.

Every operation of ``/api/openapi.json`` is called with requests generated from its schema
(valid and invalid path and query values, strange strings, huge numbers) as the anonymous visitor
and as city staff, a bounded number of examples each so the run stays under a minute. The check
is schemathesis' ``not_a_server_error``: any 5xx fails, whatever the input.
"""

from __future__ import annotations

import api_fixtures as fx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

api = fx.api  # the fixture

#: Examples per operation and role (about 20 operations).
EXAMPLES = 25


@pytest.fixture(scope="module")
def schema(api):
    from karte.snapshot import current

    current(api.store).coverage()  # the build snapshot, computed once here, not inside an example
    return schemathesis.openapi.from_asgi("/api/openapi.json", api.app)


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("role", ["anonymous", "staff"])
def test_no_generated_request_gets_a_server_error(api, schema, role):
    headers = dict(api.client(role).headers)
    auth = {"Authorization": headers["authorization"]} if "authorization" in headers else {}
    operations = _operations(schema)
    assert len(operations) >= 15
    called = 0
    for operation in operations:
        if operation.method.upper() == "POST" and operation.path == "/api/token":
            continue  # each example would hash a password (argon2 is slow by design): see below

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case):
            nonlocal called
            response = case.call(headers=auth)
            called += 1
            # raises (with the request to reproduce it) on a 5xx
            case.validate_response(response, checks=[not_a_server_error])

        run()
    assert called >= len(operations) * 5


def test_token_endpoint_survives_fuzzed_credentials(api, schema):
    """POST /api/token with generated form fields: a 4xx, never a 5xx (few examples: argon2)."""
    operation = next(op for op in _operations(schema)
                     if op.method.upper() == "POST" and op.path == "/api/token")

    @settings(max_examples=8, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code in (200, 401, 422)

    run()
