"""Schemathesis fuzzes every operation of the OpenAPI document: no answer is a server error.

Each operation's request strategy (``APIOperation.as_strategy()``: paths, query strings, form
bodies drawn from the schema, valid and invalid) runs under Hypothesis with a bounded number of
examples, so the whole run stays well under a minute on the demo. (Schemathesis's own pytest
plugin does not run under pytest 9 yet, so the operations are driven directly.) Anonymous and
city-staff clients are both fuzzed: the personal paths run too. Every error answer must be in the
API's one error format.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from test_api_support import bearer, make_app

pytestmark = pytest.mark.slow

EXAMPLES = 12


@pytest.fixture(scope="module")
def fuzz(demo, tmp_path_factory):
    app = make_app(demo, tmp_path_factory.mktemp("fuzz"))
    with TestClient(app) as client:
        client.get("/api/districts")  # the cached analysis once, outside the examples
        staff = bearer(client, "city_staff")
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        yield operations, staff


def test_the_schema_has_the_api(fuzz):
    operations, _ = fuzz
    labels = {op.label for op in operations}
    assert {"GET /api/districts", "GET /api/districts/{code}", "GET /districts/{code}/sheet.pdf",
            "GET /ogc/collections/{collection_id}/items"} <= labels


@pytest.mark.parametrize("who", ["anonymous", "city_staff"])
def test_no_operation_answers_with_a_server_error(fuzz, who):
    operations, staff = fuzz
    headers = staff if who == "city_staff" else {}
    failures, statuses = [], []
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            response = case.call(headers=headers)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query}: {response.status_code}")
            elif response.status_code >= 400:
                body = response.json()
                if not {"status", "code", "message"} <= set(body):
                    failures.append(f"{case.method} {case.formatted_path}: error not in the format")

        run()
    assert not failures, "\n".join(failures[:20])
    assert len(statuses) >= 3 * len(operations)  # the fuzzing ran
    assert statuses.count(200) > len(operations) and any(400 <= s < 500 for s in statuses)
