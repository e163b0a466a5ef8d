"""CQL2 filters evaluated in memory (``karte.services.ogc_filter``), on hand-built tables.

* Against an independent implementation: the ``cql2`` package's own per-item evaluator
  (``Expr.matches``), on generated expressions (hypothesis) over every operator the conformance
  document lists, wherever that evaluator can answer (it has no nulls).
* Three-valued logic: a comparison with a missing value is unknown, and so is its negation.
* Suppressed counts: the answer to any filter or sort is the same whether the hidden count is 1
  or 2, so no query can tell them apart; and ``= '秘匿'`` finds exactly the hidden ones.
* Guards: a filter nested too deeply, too long or not CQL2 is a 400 (``InputError``), never a
  crash of the parser (which overflows its stack on a few thousand nested brackets).
"""

from __future__ import annotations

import json
import string

import cql2
import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from karte.domain.access import SUPPRESSED
from karte.domain.errors import InputError
from karte.services import ogc, ogc_filter
from karte.services.suppression import suppress_frame

N = 40
RNG = np.random.default_rng(7)
NAMES = [None if i % 9 == 4 else f"{'AaBb'[i % 4]}{string.ascii_lowercase[i % 26]}{i}" for i in range(N)]
CODES = [f"S{(i % 5) + 1:02d}" for i in range(N)]
COUNTS = [None if i % 11 == 3 else int(v) for i, v in enumerate(RNG.integers(0, 60, N))]
RATES = [round(float(v), 3) for v in RNG.random(N)]
FLAGS = [bool(i % 3 == 0) for i in range(N)]
POINTS = [shapely.Point(i % 8, i // 8) for i in range(N)]


def _table() -> ogc_filter.Table:
    def col(name, kind, values):
        null = np.array([v is None for v in values])
        if kind == "string":
            return ogc_filter.Column(name, kind, null, text=np.array(values, dtype=object))
        if kind == "boolean":
            return ogc_filter.Column(name, kind, null, flag=np.array([bool(v) for v in values]))
        return ogc_filter.Column(name, kind, null, num=np.array([np.nan if v is None else v for v in values],
                                                                dtype=float))

    columns = {"name": col("name", "string", NAMES), "code": col("code", "string", CODES),
               "n": col("n", "integer", COUNTS), "r": col("r", "number", RATES),
               "flag": col("flag", "boolean", FLAGS)}
    geoms = np.array(POINTS, dtype=object)
    return ogc_filter.Table(n=N, columns=columns, geometry=geoms, tree=shapely.STRtree(geoms))


TABLE = _table()


def run(text: str) -> set[int]:
    tree = ogc_filter.parse(text)
    return set(np.flatnonzero(ogc_filter.evaluate(tree, TABLE, literal_geometry=lambda g: g)).tolist())


def item(i: int) -> dict:
    return {"name": NAMES[i], "code": CODES[i], "n": COUNTS[i], "r": RATES[i], "flag": FLAGS[i],
            "geometry": json.loads(shapely.to_geojson(POINTS[i]))}


# --- expressions (hypothesis) -------------------------------------------------------------------

def _quoted(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


words = st.text(alphabet="AaBbcd%_' ", min_size=0, max_size=4)
number = st.integers(-5, 65)
comparison = st.one_of(
    st.tuples(st.sampled_from(["n", "r"]), st.sampled_from(["=", "<>", "<", "<=", ">", ">="]), number)
    .map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    st.tuples(st.sampled_from(["name", "code"]), st.sampled_from(["=", "<>", "<", ">="]),
              st.sampled_from(["S01", "S03", "Ab1", "b", ""]))
    .map(lambda t: f"{t[0]} {t[1]} {_quoted(t[2])}"),
    st.tuples(st.sampled_from(["name", "code"]), words).map(lambda t: f"{t[0]} LIKE {_quoted(t[1])}"),
    st.tuples(st.sampled_from(["name"]), words).map(lambda t: f"CASEI({t[0]}) LIKE CASEI({_quoted(t[1])})"),
    st.tuples(number, number).map(lambda t: f"n BETWEEN {min(t)} AND {max(t)}"),
    st.lists(number, min_size=1, max_size=4).map(lambda v: f"n IN ({', '.join(map(str, v))})"),
    st.lists(st.sampled_from(["S01", "S02", "S05", "x"]), min_size=1, max_size=3)
    .map(lambda v: f"code IN ({', '.join(map(_quoted, v))})"),
    st.sampled_from(["flag = TRUE", "flag = FALSE", "flag <> TRUE", "n = r", "n > r", "name = code"]),
    st.tuples(st.integers(0, 8), st.integers(0, 5), st.integers(1, 4), st.integers(1, 3)).map(
        lambda t: f"S_INTERSECTS(geometry, BBOX({t[0]}, {t[1]}, {t[0] + t[2]}, {t[1] + t[3]}))"),
    st.tuples(st.integers(0, 8), st.integers(0, 5))
    .map(lambda t: f"S_INTERSECTS(geometry, POINT({t[0]} {t[1]}))"),
    st.tuples(st.integers(-1, 6), st.integers(-1, 4), st.integers(1, 5)).map(
        lambda t: f"S_WITHIN(geometry, POLYGON(({t[0]} {t[1]}, {t[0] + t[2]} {t[1]}, "
                  f"{t[0] + t[2]} {t[1] + t[2]}, {t[0]} {t[1]}))) "),
    st.tuples(st.integers(-1, 6), st.integers(-1, 4), st.integers(1, 5)).map(
        lambda t: f"S_DISJOINT(geometry, BBOX({t[0]}, {t[1]}, {t[0] + t[2]}, {t[1] + t[2]}))"),
)
expression = st.recursive(comparison, lambda inner: st.one_of(
    st.tuples(inner, st.sampled_from(["AND", "OR"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
    inner.map(lambda e: f"NOT ({e})")), max_leaves=5)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(expression)
def test_evaluation_matches_the_cql2_reference(text):
    mine = run(text)
    reference = cql2.parse_text(text)
    names = ogc_filter.properties_of(reference.to_json())
    checked = 0
    for i in range(N):
        if any(item(i).get(n) is None for n in names):
            continue  # the reference cannot say (it has no nulls): see the three-valued tests
        assert (i in mine) == reference.matches(item(i)), (text, i, item(i))
        checked += 1
    assert checked >= N // 2


def test_json_and_text_encodings_select_the_same():
    for text in ("n > 20 AND code IN ('S01', 'S02')", "name LIKE 'A%' OR NOT (flag = TRUE)",
                 "S_INTERSECTS(geometry, BBOX(1, 1, 3, 2))", "n BETWEEN 5 AND 30"):
        as_json = json.dumps(cql2.parse_text(text).to_json())
        assert run(as_json) == run(text)
        assert run(text)  # something matched: the comparison has teeth


# --- three-valued logic -------------------------------------------------------------------------

def test_a_missing_value_is_unknown_and_so_is_its_negation():
    missing = {i for i, v in enumerate(COUNTS) if v is None}
    assert missing
    for text in ("n = 10", "n < 100", "n >= 0", "n BETWEEN 0 AND 100", "n IN (1, 2, 3)"):
        assert not run(text) & missing
        assert not run(f"NOT ({text})") & missing
        assert run(text) | run(f"NOT ({text})") == set(range(N)) - missing
    assert run("n IS NULL") == missing
    assert run("NOT (n IS NULL)") == set(range(N)) - missing
    named_missing = {i for i, v in enumerate(NAMES) if v is None}
    assert not run("name LIKE '%'") & named_missing


def test_or_with_a_true_side_is_true_even_when_the_other_is_unknown():
    missing = {i for i, v in enumerate(COUNTS) if v is None}
    assert missing <= run("n > 5 OR code <> 'nothing'")


# --- suppressed counts: a filter never tells the hidden value -------------------------------------

def _hidden_collection(hidden_value: int) -> ogc.Built:
    """Small areas where area 2 and 5 have a hidden count (1 or 2), the others shown."""
    counts = [0, 7, hidden_value, 12, 3, hidden_value, None, 40]
    frame = gpd.GeoDataFrame({
        "key_code": [f"k{i}" for i in range(8)], "name": [f"町{i}" for i in range(8)],
        "district_code": ["S01"] * 4 + ["S02"] * 4, "elderly_alone": counts,
        "population": [100 + i for i in range(8)],
    }, geometry=[shapely.box(i, 0, i + 1, 1) for i in range(8)], crs="EPSG:6678")
    public = suppress_frame(frame, "small_areas", 2)
    assert (public["elderly_alone"] == SUPPRESSED).sum() == 2
    return ogc.build_collection(ogc.COLLECTIONS["small_areas"], public, 2)


LEAK_PROBES = ("elderly_alone = 1", "elderly_alone = 2", "elderly_alone < 2", "elderly_alone <= 1",
               "elderly_alone > 1", "elderly_alone <> 1", "elderly_alone BETWEEN 1 AND 1",
               "elderly_alone BETWEEN 2 AND 2", "elderly_alone IN (1)", "elderly_alone IN (2, 40)",
               "NOT (elderly_alone = 1)", "NOT (elderly_alone <> 2)", "elderly_alone = '1'",
               "elderly_alone = '2'", "elderly_alone LIKE '1%'", "elderly_alone LIKE '2'",
               "elderly_alone IS NULL", "elderly_alone = population", "elderly_alone < population",
               "NOT (elderly_alone < 3) OR elderly_alone = 0", "elderly_alone >= 0")


def test_no_filter_or_sort_tells_a_hidden_count_of_one_from_two():
    one, two = _hidden_collection(1), _hidden_collection(2)
    assert one.props_json == two.props_json  # what is shown is the same…
    for text in LEAK_PROBES:
        tree = ogc_filter.parse(text)
        a = ogc_filter.evaluate(tree, one.table, literal_geometry=lambda g: g)
        b = ogc_filter.evaluate(tree, two.table, literal_geometry=lambda g: g)
        assert (a == b).all(), text  # …and so is every answer
        assert not a[[2, 5]].any(), text  # a hidden count is never matched by its value
    for desc in (False, True):
        q = ogc.ItemsQuery(sortby=(("elderly_alone", desc),))
        assert (ogc.select(None, one, q, None, 2) == ogc.select(None, two, q, None, 2)).all()


def test_hidden_counts_are_unknown_to_numbers_and_text_to_text():
    built = _hidden_collection(1)

    def sel(text):
        tree = ogc_filter.parse(text)
        return set(np.flatnonzero(ogc_filter.evaluate(tree, built.table, literal_geometry=lambda g: g)))

    assert sel(f"elderly_alone = '{SUPPRESSED}'") == {2, 5}
    assert sel("elderly_alone >= 0") == {0, 1, 3, 4, 7}
    assert sel("elderly_alone > 10") == {3, 7}
    assert sel("elderly_alone IS NULL") == {6}
    assert sel("NOT (elderly_alone > 10)") == {0, 1, 4}


# --- guards -------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "(" * 3000 + "n = 1" + ")" * 3000,
    '{"op": "not", "args": [' * 3000 + '{"op": "=", "args": [{"property": "n"}, 1]}' + "]}" * 3000,
    '{"op": "not", "args": [' * 200 + '{"op": "=", "args": [{"property": "n"}, 1]}' + "]}" * 200,
    "n = " + "1" * (ogc_filter.MAX_FILTER_CHARS + 5),
    "n >", "", "   ", "{not json", '{"op": "=", "args": []}', "n = NULL",
])
def test_bad_filters_are_input_errors_not_crashes(text):
    with pytest.raises(InputError):
        tree = ogc_filter.parse(text)
        ogc_filter.evaluate(tree, TABLE, literal_geometry=lambda g: g)


@pytest.mark.parametrize("text", [
    "name > 3", "n = 'abc'", "flag < TRUE", "n LIKE 'a%'", "T_AFTER(n, TIMESTAMP('2020-01-01T00:00:00Z'))",
    "A_CONTAINS(code, ('a'))", "n + 1 > 2", "geometry = 1", "S_INTERSECTS(n, POINT(0 0))", "nope = 1",
])
def test_unsupported_or_mistyped_filters_are_400_with_a_reason(text):
    with pytest.raises(InputError) as raised:
        run(text)
    assert " / " in str(raised.value)  # Japanese / English


def test_filter_lang_names():
    assert ogc_filter.parse("n = 1", "cql-text") == ogc_filter.parse("n = 1", "cql2-text")
    with pytest.raises(InputError):
        ogc_filter.parse("n = 1", "ecql")
