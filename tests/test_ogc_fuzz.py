"""schemathesis with every check on the OGC API and the vector tiles: 0 failures.

Both documents are fuzzed: the OGC API's own (``/ogc/api``, OpenAPI 3.0, what GDAL and QGIS
read) and the app's (``/api/openapi.json``, its ``/ogc`` and ``/tiles`` paths), as the anonymous
visitor and as city staff, with data valid by the document (every answer must then be a 2xx: a
document that promised more than the server accepts fails ``positive_data_acceptance``) and with
invalid data (every answer must be a 4xx: ``negative_data_rejection``); status codes, media
types, headers and bodies must match the document, and no other method is answered.

One value needs more than JSON Schema: ``filter`` is ``format: cql2``. Here it is generated from
a CQL2 grammar over what every collection has (``district_code``, the geometry), the way
schemathesis is told about a format it cannot know; the filter semantics themselves are tested
against an independent evaluator in ``test_ogc_filter.py``.
"""

from __future__ import annotations

import api_fixtures as fx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

api = fx.api  # the fixture

#: Examples per operation, mode and role (about 40 operations per document).
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_text = st.text(alphabet="S0123456789aあ地区' %_", max_size=6)
_num = st.integers(-200_000, 200_000).map(str)
_point = st.tuples(_num, _num).map(" ".join)
_leaf = st.one_of(
    st.tuples(st.sampled_from(["=", "<>", "<", ">="]), _text)
    .map(lambda t: f"district_code {t[0]} {_quoted(t[1])}"),
    _text.map(lambda t: f"district_code LIKE {_quoted(t)}"),
    st.lists(_text, min_size=1, max_size=3).map(lambda v: f"district_code IN ({', '.join(map(_quoted, v))})"),
    st.just("district_code IS NULL"), st.sampled_from(["TRUE", "FALSE"]),
    _text.map(lambda t: f"CASEI(district_code) = CASEI({_quoted(t)})"),
    st.tuples(st.sampled_from(["S_INTERSECTS", "S_WITHIN", "S_DISJOINT", "S_CONTAINS"]),
              _num, _num, _num, _num)
    .map(lambda t: f"{t[0]}(geometry, BBOX({t[1]}, {t[2]}, {t[3]}, {t[4]}))"),
    _point.map(lambda p: f"S_INTERSECTS(geometry, POINT({p}))"),
    st.tuples(_point, _point, _point)
    .map(lambda p: f"S_INTERSECTS(geometry, POLYGON(({p[0]}, {p[1]}, {p[2]}, {p[0]})))"),
)
CQL2 = st.recursive(_leaf, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
    inner.map(lambda e: f"NOT ({e})")), max_leaves=4)
schemathesis.openapi.format("cql2", CQL2)


@pytest.fixture(scope="module")
def documents(api):
    from karte.snapshot import current

    current(api.store).coverage()  # the build snapshot, computed once here, not inside an example
    ogc = schemathesis.openapi.from_asgi("/ogc/api", api.app)
    app = schemathesis.openapi.from_asgi("/api/openapi.json", api.app).include(path_regex=r"^/(ogc|tiles)")
    return {"ogc": ogc, "app": app}


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(api, schema, role: str) -> int:
    headers = dict(api.client(role).headers)
    auth = {"Authorization": headers["authorization"]} if "authorization" in headers else {}
    called = 0
    for operation in _operations(schema):
        for mode, examples in EXAMPLES.items():
            @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                nonlocal called
                response = case.call(headers=auth)
                called += 1
                case.validate_response(response, headers=auth)  # every check schemathesis has

            run()
    return called


@pytest.mark.parametrize("role", ["anonymous", "staff"])
def test_schemathesis_all_checks_on_the_ogc_document(api, documents, role):
    operations = _operations(documents["ogc"])
    # landing, conformance, collections; 5 per collection (schemathesis leaves out /api, the
    # document it was read from)
    assert len(operations) == 3 + 5 * 7
    assert _fuzz(api, documents["ogc"], role) >= len(operations) * 10


@pytest.mark.parametrize("role", ["anonymous", "staff"])
def test_schemathesis_all_checks_on_the_app_document(api, documents, role):
    operations = _operations(documents["app"])
    paths = {op.path for op in operations}
    assert "/tiles/{layer}/{z}/{x}/{y}.mvt" in paths and "/ogc/collections/small_areas/items" in paths
    assert _fuzz(api, documents["app"], role) >= len(operations) * 10
