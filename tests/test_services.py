"""karte.services: what each user sees of a karte and of every layer, checked against the raw store.

:mod:`karte.services.kartes` and :mod:`karte.services.layers` over the demo store: small counts
suppressed for the public (:mod:`karte.services.suppression`), personal rows per level read from
the store as the viewer, the access-log row the store writes for each personal read, layers in
EPSG:6678 with a unique key, and web GeoJSON (:func:`karte.render.webmap.to_web_geojson`).
"""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from api_fixtures import OTHER, OWN, people_count_paths

from karte.domain.access import PUBLIC, SUPPRESSED, Access, Level
from karte.domain.errors import NotFoundError
from karte.domain.schema import Consent
from karte.render.webmap import to_web_geojson
from karte.services import suppression
from karte.services.kartes import district_codes, karte_view
from karte.services.layers import FEATURE_KEYS, PERSONAL, WEB_LAYERS, layer_view
from karte.store import GeoPackageStore

STAFF = Access(user="staff-t", level=Level.CITY_STAFF, route="test:services")
COORD = Access(user="coord-t", level=Level.COORDINATOR, route="test:services")
MEMBER = Access(user="member-t", level=Level.DISTRICT_MEMBER, district=OWN, route="test:services")


@pytest.fixture(scope="module")
def store(demo) -> GeoPackageStore:
    return GeoPackageStore(demo[1] / "karte.gpkg")


@pytest.fixture(scope="module")
def register(store):
    return store.read("register")


def shareable(frame):
    """Consented or deemed-consented rows, computed here from the consent column."""
    return frame[frame["consent"].isin([Consent.CONSENTED.value, Consent.ORDINANCE.value])]


def test_public_karte_suppresses_every_small_count_and_its_rate(store):
    hidden = 0
    for code in district_codes(store):
        staff = karte_view(store, code, STAFF, include_personal=False)
        public = karte_view(store, code, PUBLIC)
        assert "personal" not in public and public["viewer"]["personal"] is False
        for path in people_count_paths(staff):
            node = public
            for step in path:
                node = node[step]
            assert node == SUPPRESSED, (code, path)
            hidden += 1
            parent = public
            for step in path[:-1]:
                parent = parent[step]
            for rate in ("rate", "share_of_city"):
                if rate in parent and path[-1] in ("value", "count"):
                    assert parent[rate] is None, (code, path, rate)
    assert hidden > 20  # the demo has small counts (one community-support worker, …)


def test_public_karte_keeps_counts_above_the_threshold(store):
    staff = karte_view(store, OWN, STAFF, include_personal=False)
    public = karte_view(store, OWN, PUBLIC)
    assert public["register"]["total"] == staff["register"]["total"] > 2
    assert public["base"][0]["value"] == staff["base"][0]["value"] > 1000


def test_threshold_is_configurable(store):
    staff = karte_view(store, OWN, STAFF, include_personal=False)
    public5 = karte_view(store, OWN, PUBLIC, max_small=5)
    pairs = [(s["count"], p["count"]) for s, p in zip(staff["cooperators"]["by_role"],
                                                        public5["cooperators"]["by_role"], strict=True)]
    assert any(3 <= s <= 5 for s, _ in pairs) or any(3 <= s <= 5 for s, _ in
                                                      [(g["count"], 0) for g in staff["gaps"]])
    for s, p in pairs:
        assert p == (SUPPRESSED if 1 <= s <= 5 else s)
    assert public5["viewer"]["max_small"] == 5


def test_staff_see_every_row_others_the_shareable_rows_of_their_scope(store, register):
    s05 = register[register["district_code"] == OWN]
    staff = karte_view(store, OWN, STAFF)["personal"]
    coord = karte_view(store, OWN, COORD)["personal"]
    member = karte_view(store, OWN, MEMBER)["personal"]
    assert {p["person_id"] for p in staff["register"]} == set(s05["person_id"])
    assert {p["person_id"] for p in coord["register"]} == set(shareable(s05)["person_id"])
    assert {p["person_id"] for p in member["register"]} == set(shareable(s05)["person_id"])
    assert len(shareable(s05)) < len(s05)
    other = karte_view(store, OTHER, MEMBER)
    assert "personal" not in other and other["viewer"]["personal"] is False


def test_every_personal_read_is_logged_with_its_row_count(store, register):
    """The store writes the log row of the read it served (before the refactor karte.views wrote
    the GeoPackage's log rows): the viewer, their level, the route, the action, the row count."""
    before = len(store.audit_log())
    frame = layer_view(store, "register", MEMBER, district=OWN)
    log = store.audit_log().iloc[before:]
    expected = len(shareable(register[register["district_code"] == OWN]))
    assert len(frame) == expected
    assert log[["actor", "level", "route", "action", "layer", "district", "rows"]].values.tolist() == [
        ["member-t", "district_member", "test:services", "read", "register", OWN, expected]]
    # and the log holds no personal data
    assert not set(frame["name"]) & set(map(str, log.to_numpy().ravel()))


class _Spy:
    """The store, with every read recorded: (layer, district, access)."""

    def __init__(self, store):
        self._store = store
        self.reads: list[tuple] = []

    def read(self, layer, *, district=None, access=None):
        self.reads.append((str(layer), district, access))
        return self._store.read(layer, district=district, access=access)

    def read_records(self, layer, *, district=None, access=None):
        self.reads.append((str(layer), district, access))
        return self._store.read_records(layer, district=district, access=access)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.mark.parametrize("viewer", [STAFF, COORD, MEMBER], ids=lambda a: str(a.level))
def test_personal_rows_are_read_from_the_store_as_the_viewer(store, viewer):
    """No service shows personal rows it read as the store's trusted user (``access=None``: the
    snapshot's copy, for the analyses only): every personal read names the viewer."""
    from karte.domain.layers import PERSONAL_LAYERS
    from karte.services import pages
    from karte.snapshot import current

    current(store)  # the spy then shares the store's snapshot (same location and stamp)
    spy = _Spy(store)
    karte_view(spy, OWN, viewer)
    layer_view(spy, "register", viewer, district=OWN)
    layer_view(spy, "cooperators", viewer)
    pages.district_page(spy, OWN, viewer, max_small=2, basemap="none")
    personal = [r for r in spy.reads if r[0] in PERSONAL_LAYERS]
    assert len(personal) == 6  # karte 2, layers 2, page 2
    assert all(access == viewer for _, _, access in personal), personal
    assert {d for layer, d, _ in personal} <= {OWN, None}


def test_public_gets_no_personal_rows_and_no_log_entry(store):
    before = len(store.audit_log())
    for layer in sorted(PERSONAL):
        frame = layer_view(store, layer, PUBLIC)
        assert frame.empty and "name" in frame.columns
        assert frame.crs.to_epsg() == 6678
    assert len(store.audit_log()) == before


def test_member_layer_rows_stay_in_their_district(store):
    whole = layer_view(store, "register", MEMBER)
    assert set(whole["district_code"]) == {OWN}
    assert set(whole["consent"]) <= {"consented", "ordinance"}
    coop = layer_view(store, "cooperators", MEMBER)
    assert set(coop["district_code"]) == {OWN}


def test_register_rows_carry_their_gap_kinds(store):
    frame = layer_view(store, "register", STAFF, district=OWN)
    assert frame["gaps"].tolist() == [len(k.split(";")) if k else 0 for k in frame["gap_kinds"]]
    no_consent = frame["consent"].isin(["refused", "no_answer"])
    assert (frame["no_consent"] == no_consent).all()


@pytest.mark.parametrize("layer", sorted(WEB_LAYERS))
def test_layers_are_metric_with_a_unique_key_first(store, layer):
    frame = layer_view(store, layer, STAFF, district=OWN)
    key = FEATURE_KEYS[layer]
    assert isinstance(frame, gpd.GeoDataFrame) and frame.crs.to_epsg() == 6678
    assert frame.columns[0] == key and frame.columns[-1] == frame.geometry.name
    assert frame[key].is_unique and len(frame) > 0
    assert set(frame["district_code"].dropna()) <= {OWN}


def test_public_small_area_counts_are_suppressed(store):
    staff = layer_view(store, "small_areas", STAFF)
    public = layer_view(store, "small_areas", PUBLIC)
    small = shown = other = 0
    for col in ("population", "households", "elderly_alone", "disabled", "age_0_14"):
        for s, p in zip(staff[col], public[col], strict=True):
            if s is not None and s == s and 1 <= int(s) <= 2:
                assert p == SUPPRESSED
                small += 1
            elif s is not None and s == s:
                assert p in (int(s), SUPPRESSED)  # a larger count is hidden only as a complement
                shown += p == int(s)
                other += 1
    assert small > 0 and shown > 0.9 * other


def test_unknown_district_and_layer_are_not_found(store):
    with pytest.raises(NotFoundError, match="S99"):
        karte_view(store, "S99", PUBLIC)
    with pytest.raises(NotFoundError):
        layer_view(store, "shelters", PUBLIC, district="S99")
    with pytest.raises(NotFoundError):
        layer_view(store, "secret", STAFF)


def test_web_geojson_is_lonlat_rounded_and_simplified(store):
    frame = layer_view(store, "districts", PUBLIC)
    full = to_web_geojson(frame, tolerance_m=0, decimals=7)
    web = to_web_geojson(frame, tolerance_m=10, decimals=6, id_column="district_code")
    def vertices(fc):
        return sum(len(shapely.get_coordinates(shapely.from_geojson(json.dumps(f["geometry"]))))
                   for f in fc["features"])

    # the shipped boundaries are already generalised (e-Stat LOD): simplifying removes a few %
    assert vertices(web) < 0.97 * vertices(full)
    assert len(json.dumps(web)) < 0.97 * len(json.dumps(full))
    assert [f["id"] for f in web["features"]] == list(frame["district_code"])
    xs = [c for f in web["features"] for c in shapely.get_coordinates(shapely.from_geojson(
        json.dumps(f["geometry"]))).ravel()]
    assert all(round(x, 6) == x for x in xs)
    lon, lat = xs[0::2], xs[1::2]
    assert min(lon) > 140.4 and max(lon) < 141.1 and min(lat) > 40.5 and max(lat) < 41.1


def test_web_geojson_of_a_hand_built_square():
    square = gpd.GeoDataFrame({"k": ["a"], "n": [None]},
                              geometry=[shapely.box(0, 0, 100, 100)], crs="EPSG:6678")
    fc = to_web_geojson(square, id_column="k")
    feature = fc["features"][0]
    assert feature["id"] == "a" and feature["properties"] == {"k": "a", "n": None}
    # EPSG:6678's origin is 40°N 140°50'E
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == [pytest.approx(140.833333, abs=2e-6), pytest.approx(40.0, abs=2e-6)]


@pytest.mark.parametrize("layer", sorted(set(WEB_LAYERS) - PERSONAL))
def test_every_citywide_layer_becomes_web_geojson(store, layer):
    # the merged uncovered mesh pieces once made GEOS fail to snap them to the 6-decimal grid
    frame = layer_view(store, layer, PUBLIC)
    for tolerance in (0, 5):
        fc = to_web_geojson(frame, tolerance_m=tolerance, id_column=FEATURE_KEYS[layer])
        assert len(fc["features"]) == len(frame) > 0
        assert all(f["geometry"] is not None for f in fc["features"])


@pytest.mark.parametrize("layer", sorted(set(WEB_LAYERS) - PERSONAL))
def test_every_numeric_column_of_a_public_layer_is_suppressed_unless_declared_no_count(store, layer):
    staff = layer_view(store, layer, STAFF)
    public = layer_view(store, layer, PUBLIC)
    assert len(staff) == len(public)
    for col in staff.columns:
        numeric = pd.api.types.is_numeric_dtype(staff[col]) and not pd.api.types.is_bool_dtype(staff[col])
        if not numeric or col in suppression.NOT_COUNTS or col.endswith(("_rate", "share")):
            continue
        for s, p in zip(staff[col], public[col], strict=True):
            if pd.notna(s) and 1 <= round(float(s)) <= 2:
                assert p == SUPPRESSED, (layer, col, s, p)


def test_a_new_count_column_is_suppressed_by_default():
    frame = gpd.GeoDataFrame({"k": ["a", "b"], "newcount": [1, 7], "salons": [1, 1],
                              "newcount_rate": [0.1, 0.7]},
                             geometry=[shapely.Point(0, 0)] * 2, crs="EPSG:6678")
    suppression.RATE_OF["newcount_rate"] = "newcount"
    try:
        out = suppression.suppress_frame(frame, "test", 2)
    finally:
        del suppression.RATE_OF["newcount_rate"]
    assert out["newcount"].tolist() == [SUPPRESSED, 7]
    assert out["newcount_rate"].tolist() == [None, 0.7]
    assert out["salons"].tolist() == [1, 1]


def _hammer(store, rounds: int = 12, threads: int = 8) -> list[str]:
    """Personal reads (each appends to the access log in the GeoPackage) from many threads."""
    from concurrent.futures import ThreadPoolExecutor

    def work(i):
        access = [COORD, MEMBER, STAFF][i % 3]
        try:
            layer_view(store, ["register", "cooperators"][i % 2], access, district=OWN)
            karte_view(store, OWN, access)
            return ""
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(threads) as pool:
        return [e for e in pool.map(work, range(rounds * threads)) if e]


def test_concurrent_personal_reads_and_log_writes_do_not_fail(store):
    # GDAL reading the GeoPackage while SQLite commits a log row used to fail ("layer … is not
    # registered in gpkg_contents"): 198 of 490 coordinator pages under 16 connections
    before = len(store.audit_log())
    assert _hammer(store) == []
    assert len(store.audit_log()) - before == 12 * 8 * 3  # one layer read + the karte's two
