"""One storage test suite, run against the GeoPackage and the PostGIS store.

The PostGIS runs skip on a machine without ``KARTE_TEST_DATABASE_URL`` and fail in CI instead
(see ``pg_fixtures``). Frames are tiny and hand-built, with exact expected answers.
"""

from __future__ import annotations

import uuid

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon

from karte.domain.access import PUBLIC, Access, Level
from karte.domain.errors import StoreError
from karte.domain.layers import COOPERATOR_COLUMNS, REGISTER_COLUMNS, SERVICE_COLUMNS, Layer
from karte.store import GeoPackageStore

#: PostGIS fixtures and the CI guard (fails the session if a PostGIS test skipped with CI=true).
pytest_plugins = ["pg_fixtures"]
CRS = "EPSG:6678"
#: The municipality of the hand-built rows (Aomori city); a second one for cross-municipality cases.
CITY, OTHER_CITY = "02201", "02202"


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, tmp_path):
    """The same contract, both implementations."""
    if request.param == "gpkg":
        return GeoPackageStore(tmp_path / "karte.gpkg")
    return request.getfixturevalue("pg_store")


def square(x0, y0, size=100.0):
    return Polygon([(x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size)])


def districts() -> gpd.GeoDataFrame:
    """Two districts side by side: A = [0,100]x[0,100], B = [100,200]x[0,100] (B a multipolygon)."""
    return gpd.GeoDataFrame({"district_code": ["A", "B"], "district_name": ["（仮）甲", "乙"],
                             "small_areas": [1, 1]},
                            geometry=[square(0, 0), MultiPolygon([square(100, 0)])], crs=CRS)


def register() -> gpd.GeoDataFrame:
    """Six persons: every consent answer, two districts, one without a location."""
    rows = [
        ("P1", "A", "consented", (10, 10), True), ("P2", "A", "refused", (20, 20), False),
        ("P3", "A", "ordinance", (30, 30), False), ("P4", "B", "no_answer", (150, 50), True),
        ("P5", "B", "consented", (160, 50), False), ("P6", "B'x", "consented", None, False),
    ]
    data = {c: [None] * len(rows) for c in REGISTER_COLUMNS}
    data.update({
        "person_id": [r[0] for r in rows], "municipality_code": [CITY] * len(rows),
        "district_code": [r[1] for r in rows],
        "consent": [r[2] for r in rows], "name": [f"氏名{i}" for i in range(len(rows))],
        "kana": ["シメイ"] * len(rows), "address": ["青森市新町1-1"] * len(rows),
        "location_precision": ["exact"] * 5 + ["none"], "birth_date": ["1940-04-01"] * len(rows),
        "care_level": ["要介護1", None, "要支援2", None, "要介護5", None],
        "elderly_only_household": [r[4] for r in rows], "intractable_disease": [False] * len(rows),
        "infant": [False] * len(rows), "mobility": ["wheelchair"] * len(rows),
        "consent_date": ["2025-04-01", "2025-05-01", None, None, "2025-06-01", "2025-06-02"],
        "supporter_ids": ["C1;C2", "", None, "C3", "C1", None], "plan_status": ["done"] * len(rows),
        "key_code": ["022010010"] * len(rows),
    })
    geoms = [Point(*r[3]) if r[3] else None for r in rows]
    return gpd.GeoDataFrame(data, geometry=geoms, crs=CRS)


def cooperators() -> gpd.GeoDataFrame:
    data = {
        "cooperator_id": ["C1", "C2", "C3"], "municipality_code": [CITY] * 3,
        "role": ["welfare_commissioner", "fire_corps", "welfare_supporter"],
        "name": ["協力一", "協力二", "協力三"], "phone": ["017-000-0001", "090-0000-0002", None],
        "district_code": ["A", "A", "B"], "help_kinds": ["evacuation;snow", "evacuation", ""],
        "capacity": [2, 3, 1],
    }
    assert tuple(data) == COOPERATOR_COLUMNS
    return gpd.GeoDataFrame(data, geometry=[Point(5, 5), Point(100, 50), Point(199, 99)], crs=CRS)


def services() -> gpd.GeoDataFrame:
    data = {c: [f"{c}-{i}" for i in range(2)] for c in SERVICE_COLUMNS}
    data["district_code"] = ["A", "B"]
    data["municipality_code"] = [CITY, CITY]
    return gpd.GeoDataFrame(data, geometry=[Point(50, 50), Point(250, 50)], crs=CRS)


def meta() -> pd.DataFrame:
    return pd.DataFrame({"key": ["data_date", "fiscal_year"], "value": ["2026-03-31", "2025"]})


def odd_layer() -> gpd.GeoDataFrame:
    """A layer the schema does not know, with every kind of column and nulls."""
    return gpd.GeoDataFrame({
        "district_code": ["A", "B", "A"], "text": ["一", None, "'quoted'"], "count": [1, 2, 3],
        "maybe": [1.5, np.nan, -2.25], "flag": [True, False, True],
        "big": np.array([2**40, -(2**40), 0], dtype="int64"),
    }, geometry=[Point(1, 2), None, Point(3, 4)], crs=CRS)


def decisions() -> pd.DataFrame:
    """Outreach decisions (``karte.outreach``): personal, by the person's district; D3 was
    decided by city staff for a person who refused consent."""
    return pd.DataFrame({
        "decision_id": ["D000001", "D000002", "D000003"], "person_id": ["P1", "P5", "P2"],
        "cooperator_id": ["C1", "C3", "C2"], "municipality_code": [CITY] * 3,
        "district_code": ["A", "B", "A"],
        "decision": ["confirmed", "rejected", "confirmed"], "distance_m": [120.0, 80.5, 300.25],
        "decided_by": ["csw", "csw", "staff"],
        "decided_at": ["2026-11-01T09:00:00+00:00", "2026-11-02T10:30:00+00:00",
                       "2026-11-03T11:00:00+00:00"],
    })


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Every row, column and geometry equal (exact coordinates); GeoPackage and PostGIS agree on
    dtypes too, except for empty frames."""
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_dtype=len(a) > 0, check_exact=True)


def all_layers():
    return {"districts": districts(), "register": register(), "cooperators": cooperators(),
            "services": services(), "meta": meta(), "pts": odd_layer()}


def test_empty_store(store):
    assert not store.exists()
    assert store.layers() == []
    assert store.meta() == {}


def test_every_layer_round_trips(store):
    layers = all_layers()
    store.write(layers)
    assert store.exists()
    assert set(store.layers()) == set(layers)
    for name, frame in layers.items():
        got = store.read(name)
        expected = frame
        if name == "districts":  # polygons come back as multipolygons from both stores
            expected = frame.set_geometry(frame.geometry.apply(
                lambda g: g if isinstance(g, MultiPolygon) else MultiPolygon([g])))
        assert_same(got, pd.DataFrame(expected) if not isinstance(got, gpd.GeoDataFrame) else expected)
        assert type(got) is type(frame)
        if isinstance(got, gpd.GeoDataFrame):
            assert got.crs == CRS


def test_district_filter_escapes_quotes(store):
    store.write({"register": register(), "pts": odd_layer()})
    assert list(store.read("register", district="A")["person_id"]) == ["P1", "P2", "P3"]
    assert list(store.read("register", district="B'x")["person_id"]) == ["P6"]
    assert store.read("register", district="nowhere").empty
    assert list(store.read("pts", district="A")["count"]) == [1, 3]


def test_missing_layer_is_a_store_error(store):
    store.write({"meta": meta()})
    with pytest.raises(StoreError, match="missing"):
        store.read("missing")


def test_write_replaces_only_the_named_layers(store):
    store.write(all_layers())
    store.write({"register": register().iloc[:2], "meta": meta().iloc[:1]})
    assert len(store.read("register")) == 2
    assert store.meta() == {"data_date": "2026-03-31"}
    assert len(store.read("cooperators")) == 3
    assert_same(store.read("pts"), odd_layer())


def test_columns_can_change_between_writes(store):
    store.write({"services": services()})
    changed = services().drop(columns=["contact"]).assign(location_precision=["exact", "town"],
                                                         rating=[4, 5])
    store.write({"services": changed})
    geometry_last = [*[c for c in changed.columns if c != "geometry"], "geometry"]  # as both stores
    assert_same(store.read("services"), changed[geometry_last])


def test_empty_layer_keeps_its_columns(store):
    store.write({"register": register().iloc[0:0], "meta": meta().iloc[0:0]})
    assert store.read("register").empty
    assert list(store.read("register").columns) == [*REGISTER_COLUMNS, "geometry"]
    assert list(store.read("meta").columns) == ["key", "value"]


def test_attribute_frame_in_a_spatial_layer(store):
    frame = pd.DataFrame(register().drop(columns="geometry"))
    store.write({"register": frame})
    got = store.read("register")
    assert not isinstance(got, gpd.GeoDataFrame)
    assert_same(got, frame)


ACCESS_MATRIX = [
    # access, register rows seen, cooperator rows seen
    (Access("staff", Level.CITY_STAFF), {"P1", "P2", "P3", "P4", "P5", "P6"}, {"C1", "C2", "C3"}),
    (Access("csw", Level.COORDINATOR), {"P1", "P3", "P5", "P6"}, {"C1", "C2", "C3"}),
    (Access("member-a", Level.DISTRICT_MEMBER, "A"), {"P1", "P3"}, {"C1", "C2"}),
    (Access("member-b", Level.DISTRICT_MEMBER, "B"), {"P5"}, {"C3"}),
    (PUBLIC, set(), set()),
]
ACCESS_IDS = [a.level.value + (f"-{a.district}" if a.district else "") for a, _, _ in ACCESS_MATRIX]
#: The decisions (:func:`decisions`) each access of :data:`ACCESS_MATRIX` sees, by its id.
DECISIONS_SEEN = {"city_staff": {"D000001", "D000002", "D000003"},
                  "coordinator": {"D000001", "D000002", "D000003"},
                  "district_member-A": {"D000001", "D000003"}, "district_member-B": {"D000002"},
                  "public": set()}


def decisions_seen(access: Access) -> set[str]:
    return DECISIONS_SEEN[access.level.value + (f"-{access.district}" if access.district else "")]


@pytest.mark.parametrize(("access", "persons", "helpers"), ACCESS_MATRIX,
                         ids=ACCESS_IDS)
def test_each_level_reads_exactly_its_rows(store, access, persons, helpers):
    store.write(all_layers())
    reg = store.read("register", access=access)
    assert set(reg["person_id"]) == persons
    assert list(reg.columns) == list(register().columns)
    assert set(store.read("cooperators", access=access)["cooperator_id"]) == helpers
    assert len(store.read("services", access=access)) == 2  # not personal: everyone
    if access.level == Level.DISTRICT_MEMBER:  # another district's filter finds nothing
        assert store.read("register", district="B" if access.district == "A" else "A", access=access).empty


@pytest.mark.parametrize("access", [a for a, _, _ in ACCESS_MATRIX], ids=ACCESS_IDS)
def test_each_level_reads_exactly_its_decisions(store, access):
    """The outreach decisions are personal: the same rows from both stores (GeoPackage:
    ``Access.filter_rows``; PostGIS: row-level security), never another district's to a member."""
    store.write({"register": register(), Layer.DECISIONS: decisions()})
    got = store.read(Layer.DECISIONS, access=access)
    assert set(got["decision_id"]) == decisions_seen(access)
    assert list(got.columns) == list(decisions().columns)
    if access.level == Level.DISTRICT_MEMBER:
        other = "B" if access.district == "A" else "A"
        assert store.read(Layer.DECISIONS, district=other, access=access).empty
    assert_same(store.read(Layer.DECISIONS), decisions())  # the trusted pipeline reads every row


def test_personal_reads_are_logged_by_the_store_with_the_real_user(store):
    store.write({"register": register(), Layer.DECISIONS: decisions()})
    for access, layer, seen in (
            (Access(f"csw-{uuid.uuid4()}", Level.COORDINATOR, route="api:outreach"), Layer.DECISIONS, 3),
            (Access(f"m-{uuid.uuid4()}", Level.DISTRICT_MEMBER, "A", route="api:karte"), "register", 2)):
        assert len(store.read(layer, access=access)) == seen
        log = store.audit_log()
        mine = log[log["actor"] == access.user]
        assert list(zip(mine["route"], mine["action"], mine["layer"], mine["rows"], mine["level"],
                        strict=True)) == [(access.route, "read", layer, seen, access.level.value)]
    before = len(store.audit_log())
    store.read("register")  # the trusted pipeline: no access, no log row
    assert len(store.audit_log()) == before


def test_audit_log_appends(store):
    alice, bob = f"alice-{uuid.uuid4()}", f"bob-{uuid.uuid4()}"  # the PostGIS log is never emptied
    store.write({"meta": meta()})
    store.audit(access=Access(alice, Level.COORDINATOR, route="cli:show"), layer="register",
                district="A", rows=3)
    store.audit(access=Access(bob, Level.CITY_STAFF, route="cli:show"), layer="register",
                district=None, rows=0, action="export")
    log = store.audit_log()
    mine = log[log["actor"].isin([alice, bob])]
    assert list(mine.columns) == ["at", "actor", "level", "route", "action", "layer", "district", "rows"]
    assert list(mine["actor"]) == [alice, bob]
    assert list(mine["level"]) == ["coordinator", "city_staff"]
    assert list(mine["action"]) == ["read", "export"]
    assert list(mine["rows"]) == [3, 0]
    assert list(mine["route"]) == ["cli:show", "cli:show"]
    assert mine["district"].iloc[0] == "A" and pd.isna(mine["district"].iloc[1])
    assert mine["at"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$").all()


def test_export_import_round_trip(store, tmp_path):
    from karte.store.cli import export_store, import_store

    store.write({**all_layers(), Layer.DECISIONS: decisions()})
    before = {name: store.read(name) for name in store.layers()}
    out = export_store(store, tmp_path / "export.gpkg")
    store.write({"register": register().iloc[:1], "pts": meta(), Layer.DECISIONS: decisions().iloc[:1]})
    import_store(out, store)
    for name, frame in before.items():
        assert_same(store.read(name), frame)


def test_locate_points_in_polygons(store):
    pts = gpd.GeoDataFrame({"service_id": list("abcde"), "district_code": [None] * 5},
                           geometry=[Point(50, 50), Point(150, 50), Point(100, 50), Point(500, 500), None],
                           crs=CRS)
    store.write({"districts": districts(), "services": pts})
    # inside A, inside B, on the shared border (lowest code), outside, no location
    assert list(store.locate("services")) == ["A", "B", "A", None, None]


def test_the_access_log_is_never_a_layer(store, tmp_path):
    from karte.store.cli import export_store

    store.write({"districts": districts()})       # no attribute layer: GDAL would list any table
    actor = f"log-{uuid.uuid4()}"
    store.audit(access=Access(actor, Level.CITY_STAFF, route="cli:show"), layer="register",
                district="A", rows=2)
    assert store.layers() == ["districts"]
    out = export_store(store, tmp_path / "export.gpkg")
    assert GeoPackageStore(out).layers() == ["districts"]
    if isinstance(store, GeoPackageStore):         # nor can a write replace the log
        with pytest.raises(StoreError, match="karte_audit"):
            store.write({"karte_audit": meta()})
    log = store.audit_log()
    assert list(log.loc[log["actor"] == actor, "rows"]) == [2]
