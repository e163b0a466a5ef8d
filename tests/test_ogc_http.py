"""OGC API - Features over HTTP (the app's routes on the demo store): what GIS staff ask of it.

Each conformance class the server declares is backed by the tests :data:`BACKED_BY` names
(checked by :func:`test_every_declared_conformance_class_is_backed_by_a_test`).
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import api_fixtures as fx
import numpy as np
import pytest
import shapely

from karte.domain.access import PUBLIC, SUPPRESSED
from karte.services import ogc
from karte.services.layers import layer_view

api = fx.api  # the fixture

ZONE_X = ogc.STORAGE_CRS
ITEMS = "/ogc/collections/{}/items"

#: conformance class -> tests (this module's, or ``module::test``) that show it is implemented.
BACKED_BY = {
    "ogcapi-features-1/1.0/conf/core": ["test_landing_page_and_conformance",
                                        "test_paging_walks_every_feature_once",
                                        "test_bad_requests_are_400_in_japanese_and_english",
                                        "test_single_feature_and_unknown_ones",
                                        "test_datetime_matches_no_feature_of_a_collection_without_time",
                                        "test_ogc_service::test_encoded_once_per_build"],
    "ogcapi-features-1/1.0/conf/oas30": ["test_the_ogc_openapi_document_describes_each_collection",
                                         "test_ogc_fuzz::test_schemathesis_all_checks_on_the_ogc_document"],
    "ogcapi-features-1/1.0/conf/geojson": ["test_items_are_geojson_with_ids_and_links",
                                           "test_ogc_service::test_every_collection_holds_only_its_declared_type_"
                                           "valid_and_oriented"],
    "ogcapi-features-2/1.0/conf/crs": ["test_crs_answers_in_zone_x_metres_with_content_crs",
                                       "test_bbox_crs_selects_the_same_features_as_crs84",
                                       "test_ogc_service::test_coordinates_in_another_crs_are_the_storage_geometry_"
                                       "transformed",
                                       "test_ogc_service::test_every_crs_in_the_metadata_is_answered_and_the_rest_"
                                       "refused"],
    "ogcapi-features-3/1.0/conf/queryables": ["test_queryables_are_a_json_schema_of_what_is_served"],
    "ogcapi-features-3/1.0/conf/queryables-query-parameters": ["test_district_code_parameter_returns_exactly_"
                                                               "that_district"],
    "ogcapi-features-3/1.0/conf/filter": ["test_filter_population_matches_the_store"],
    "ogcapi-features-3/1.0/conf/features-filter": ["test_filter_population_matches_the_store",
                                                   "test_filters_on_suppressed_counts_reveal_nothing"],
    "cql2/1.0/conf/cql2-text": ["test_filter_population_matches_the_store",
                                "test_ogc_filter::test_evaluation_matches_the_cql2_reference"],
    "cql2/1.0/conf/cql2-json": ["test_cql2_json_filter_equals_the_text_one",
                                "test_ogc_filter::test_json_and_text_encodings_select_the_same"],
    "cql2/1.0/conf/basic-cql2": ["test_ogc_filter::test_evaluation_matches_the_cql2_reference",
                                 "test_ogc_filter::test_a_missing_value_is_unknown_and_so_is_its_negation"],
    "cql2/1.0/conf/advanced-comparison-operators": ["test_like_in_between_over_http",
                                                    "test_ogc_filter::test_evaluation_matches_the_cql2_reference"],
    "cql2/1.0/conf/case-insensitive-comparison": [
        "test_ogc_filter::test_evaluation_matches_the_cql2_reference"],
    "cql2/1.0/conf/property-property": ["test_ogc_filter::test_evaluation_matches_the_cql2_reference"],
    "cql2/1.0/conf/basic-spatial-functions": ["test_spatial_filters_with_point_box_and_polygon"],
    "cql2/1.0/conf/basic-spatial-functions-plus": ["test_spatial_filters_with_point_box_and_polygon"],
    "cql2/1.0/conf/spatial-functions": ["test_spatial_filters_with_point_box_and_polygon",
                                        "test_ogc_filter::test_evaluation_matches_the_cql2_reference"],
    "ogcapi-features-8/1.0/conf/sorting": ["test_sortby_and_sortables"],
    "ogcapi-records-1/1.0/conf/sorting": ["test_sortby_and_sortables"],
}


def get(api, url, role="anonymous", **kw):
    return api.client(role).get(url, **kw)


def features(api, cid, role="anonymous", **params) -> dict:
    r = get(api, ITEMS.format(cid), role, params={"limit": "10000", **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_every_declared_conformance_class_is_backed_by_a_test(api):
    declared = get(api, "/ogc/conformance").json()["conformsTo"]
    assert declared == list(ogc.CONFORMANCE)
    assert {c.removeprefix("http://www.opengis.net/spec/") for c in declared} == set(BACKED_BY)
    here = Path(__file__).parent
    for tests in BACKED_BY.values():
        for name in tests:
            module, _, test = name.rpartition("::")
            source = here / f"{module or Path(__file__).stem}.py"
            tree = ast.parse(source.read_text())
            defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert test in defined, name


def test_landing_page_and_conformance(api):
    landing = get(api, "/ogc").json()
    rels = {link["rel"]: link for link in landing["links"]}
    assert rels["service-desc"]["href"] == "http://testserver/ogc/api"
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["conformance"]["href"].endswith("/ogc/conformance")
    assert rels["data"]["href"].endswith("/collections")
    declared = get(api, "/ogc/conformance").json()["conformsTo"]
    for short in ("features-1/1.0/conf/core", "features-1/1.0/conf/oas30", "features-1/1.0/conf/geojson",
                  "features-2/1.0/conf/crs", "features-3/1.0/conf/queryables", "features-3/1.0/conf/filter",
                  "features-3/1.0/conf/features-filter", "cql2/1.0/conf/cql2-text", "cql2/1.0/conf/cql2-json",
                  "conf/sorting"):
        assert any(c.endswith(short) for c in declared), short
    listed = get(api, "/ogc/collections").json()
    assert [c["id"] for c in listed["collections"]] == list(ogc.COLLECTIONS)


def test_links_are_built_on_an_allowed_host_only(api):
    """Every link comes from one helper on ``api.deps.public_base_url``: an allowed host of the
    request is kept, any other ``Host`` header never reaches a link."""
    client = api.client("anonymous")
    body = client.get(ITEMS.format("districts"), headers={"host": "127.0.0.1:8123"},
                      params={"limit": "2"}).json()
    assert {urlsplit(link["href"]).netloc for link in body["links"]} == {"127.0.0.1:8123"}
    forged = client.get(ITEMS.format("districts"), headers={"host": "evil.example"}, params={"limit": "2"})
    assert forged.status_code == 400 and "evil.example" not in forged.text


def test_items_are_geojson_with_ids_and_links(api):
    r = get(api, ITEMS.format("shelters"), params={"limit": "5"})
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == f"<{ogc.CRS84}>"
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["numberReturned"] == 5
    assert body["numberMatched"] == len(layer_view(api.store, "shelters", PUBLIC))
    assert all(f["type"] == "Feature" and f["id"] == f["properties"]["shelter_id"] for f in body["features"])
    assert {link["rel"] for link in body["links"]} == {"self", "collection", "next"}


def test_paging_walks_every_feature_once(api):
    seen, url, pages = [], ITEMS.format("small_areas") + "?limit=100&district_code=S03", 0
    client = api.client("anonymous")
    while url:
        body = client.get(url).json()
        seen += [f["id"] for f in body["features"]]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else None
        pages += 1
    expected = layer_view(api.store, "small_areas", PUBLIC)
    assert seen == list(expected[expected["district_code"] == "S03"]["key_code"])
    assert pages == -(-len(seen) // 100)
    back = client.get(ITEMS.format("small_areas") + "?limit=2&offset=4").json()
    prev = next(link["href"] for link in back["links"] if link["rel"] == "prev")
    assert dict(parse_qsl(urlsplit(prev).query))["offset"] == "2"


def test_district_code_parameter_returns_exactly_that_district(api):
    body = features(api, "small_areas", district_code="S01")
    frame = layer_view(api.store, "small_areas", PUBLIC)
    assert [f["id"] for f in body["features"]] == list(frame[frame["district_code"] == "S01"]["key_code"])
    assert body["numberMatched"] == (frame["district_code"] == "S01").sum() < len(frame)
    assert features(api, "shelters", welfare="true")["numberMatched"] == int(
        layer_view(api.store, "shelters", PUBLIC)["welfare"].sum())


def test_filter_population_matches_the_store(api):
    raw = api.store.read("small_areas")
    expected = int((raw["population"].astype(float) > 1000).sum())
    assert 0 < expected < len(raw)
    for role in ("anonymous", "staff"):
        assert features(api, "small_areas", role, filter="population>1000")["numberMatched"] == expected
    code = raw[raw["population"].astype(float) > 1000]["district_code"].mode()[0]
    both = features(api, "small_areas", filter=f"population > 1000 AND district_code = '{code}'")
    assert {f["properties"]["district_code"] for f in both["features"]} == {code}
    assert all(f["properties"]["population"] > 1000 for f in both["features"])


def test_cql2_json_filter_equals_the_text_one(api):
    text = features(api, "small_areas", filter="population > 1000 AND district_code IN ('S01', 'S02')")
    tree = {"op": "and", "args": [{"op": ">", "args": [{"property": "population"}, 1000]},
                                  {"op": "in", "args": [{"property": "district_code"}, ["S01", "S02"]]}]}
    as_json = features(api, "small_areas", filter=json.dumps(tree), **{"filter-lang": "cql2-json"})
    assert [f["id"] for f in as_json["features"]] == [f["id"] for f in text["features"]] != []


def test_like_in_between_over_http(api):
    frame = layer_view(api.store, "small_areas", PUBLIC)
    pop = frame["population"].astype(float)
    between = features(api, "small_areas", filter="population BETWEEN 500 AND 800")["numberMatched"]
    assert between == int(((pop >= 500) & (pop <= 800)).sum()) > 0
    first = frame["name"].iloc[0][0]
    like = features(api, "small_areas", filter=f"name LIKE '{first}%'")["numberMatched"]
    assert like == int(frame["name"].str.startswith(first).sum()) > 0
    inside = features(api, "small_areas", filter="district_code IN ('S01','S02','S03')")["numberMatched"]
    assert inside == int(frame["district_code"].isin(["S01", "S02", "S03"]).sum())


def test_spatial_filters_with_point_box_and_polygon(api):
    shelters = layer_view(api.store, "shelters", PUBLIC).to_crs("EPSG:4326")
    box = shapely.box(140.70, 40.80, 140.75, 40.85)
    expected = set(shelters[shelters.intersects(box)]["shelter_id"])
    assert 0 < len(expected) < len(shelters)
    by_box = features(api, "shelters", filter="S_INTERSECTS(geometry, BBOX(140.70, 40.80, 140.75, 40.85))")
    polygon = "POLYGON((140.70 40.80, 140.75 40.80, 140.75 40.85, 140.70 40.85, 140.70 40.80))"
    by_polygon = features(api, "shelters", filter=f"S_WITHIN(geometry, {polygon})")
    assert {f["id"] for f in by_box["features"]} == expected == {f["id"] for f in by_polygon["features"]}
    areas = layer_view(api.store, "small_areas", PUBLIC).to_crs("EPSG:4326")
    point = shapely.Point(140.74, 40.82)
    hit = features(api, "small_areas", filter="S_INTERSECTS(geometry, POINT(140.74 40.82))")
    assert {f["id"] for f in hit["features"]} == set(areas[areas.intersects(point)]["key_code"]) != set()
    # the same polygon written in zone X (northing, easting), with filter-crs
    to_x = ogc.reproject(np.array([shapely.from_wkt(polygon)]), "OGC:CRS84", "EPSG:6678")[0]
    wkt = shapely.to_wkt(shapely.transform(to_x, lambda c: c[:, ::-1]), rounding_precision=3)
    in_x = features(api, "shelters", filter=f"S_WITHIN(geometry, {wkt})", **{"filter-crs": ZONE_X})
    assert {f["id"] for f in in_x["features"]} == expected


def test_crs_answers_in_zone_x_metres_with_content_crs(api):
    r = get(api, ITEMS.format("small_areas"), params={"crs": ZONE_X, "limit": "3"})
    assert r.status_code == 200 and r.headers["content-crs"] == f"<{ZONE_X}>"
    ring = r.json()["features"][0]["geometry"]["coordinates"][0][0]
    frame = layer_view(api.store, "small_areas", PUBLIC)
    minx, miny, maxx, maxy = frame.geometry.iloc[0].bounds  # storage: x = easting, y = northing
    for northing, easting in ring:
        assert miny - 1e-3 <= northing <= maxy + 1e-3 and minx - 1e-3 <= easting <= maxx + 1e-3
    one = get(api, f"/ogc/collections/small_areas/items/{frame['key_code'].iloc[0]}", params={"crs": ZONE_X})
    assert one.headers["content-crs"] == f"<{ZONE_X}>" and one.json()["geometry"]["coordinates"][0][0] == ring


def test_bbox_crs_selects_the_same_features_as_crs84(api):
    frame = layer_view(api.store, "shelters", PUBLIC)
    x0, y0, x1, y1 = -5000.0, 95000.0, 5000.0, 105000.0  # easting, northing in zone X
    expected = set(frame[frame.intersects(shapely.box(x0, y0, x1, y1))]["shelter_id"])
    assert 0 < len(expected) < len(frame)
    # zone X's axis order is northing, easting
    body = features(api, "shelters", bbox=f"{y0},{x0},{y1},{x1}", **{"bbox-crs": ZONE_X})
    assert {f["id"] for f in body["features"]} == expected
    lat_lon = features(api, "shelters", bbox="40.80,140.70,40.85,140.75",
                       **{"bbox-crs": ogc.EPSG_URI + "4326"})
    lon_lat = features(api, "shelters", bbox="140.70,40.80,140.75,40.85")
    assert {f["id"] for f in lat_lon["features"]} == {f["id"] for f in lon_lat["features"]} != set()
    assert features(api, "shelters", bbox="140.75,40.85,140.70,40.80")["numberMatched"] == 0  # south > north


def test_datetime_matches_no_feature_of_a_collection_without_time(api):
    assert features(api, "shelters", datetime="2024-01-01T00:00:00Z")["numberMatched"] == 0
    assert features(api, "shelters", datetime="../2030-01-01")["numberMatched"] == 0
    assert get(api, ITEMS.format("shelters"), params={"datetime": "yesterday"}).status_code == 400


def test_sortby_and_sortables(api):
    body = features(api, "small_areas", role="staff", sortby="-population,key_code")
    pops = [f["properties"]["population"] for f in body["features"]]
    present = [p for p in pops if p is not None]
    assert present == sorted(present, reverse=True) and pops[:len(present)] == present  # missing last
    names = [f["properties"]["name"] for f in features(api, "small_areas", sortby="+name")["features"]]
    assert names == sorted(names)
    sortables = get(api, "/ogc/collections/small_areas/sortables")
    assert sortables.headers["content-type"] == "application/schema+json"
    assert "population" in sortables.json()["properties"] and "geometry" not in sortables.json()["properties"]
    assert get(api, ITEMS.format("small_areas"), params={"sortby": "geometry"}).status_code == 400


def test_properties_selects_what_is_returned(api):
    body = features(api, "shelters", properties="name,welfare", limit="3")
    assert all(list(f["properties"]) == ["name", "welfare"] for f in body["features"])
    assert all(f["properties"] == {} for f in features(api, "shelters", properties="", limit="2")["features"])


def test_queryables_are_a_json_schema_of_what_is_served(api):
    r = get(api, "/ogc/collections/small_areas/queryables")
    assert r.status_code == 200 and r.headers["content-type"] == "application/schema+json"
    schema = r.json()
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["geometry"]["format"] == "geometry-multipolygon"
    assert props["population"]["type"] == "integer" and props["population"]["title"] == "人口"
    assert props["elderly_alone"]["type"] == "string"  # some values are 秘匿 for the public
    staff = get(api, "/ogc/collections/small_areas/queryables", "staff").json()["properties"]
    assert staff["elderly_alone"]["type"] == "integer"
    declared = [p.name for p in ogc.COLLECTIONS["small_areas"].properties]
    assert [p for p in props if p != "geometry"] == declared
    points = get(api, "/ogc/collections/shelters/queryables").json()["properties"]
    assert points["geometry"]["format"] == "geometry-point" and points["welfare"]["type"] == "boolean"


def test_filters_on_suppressed_counts_reveal_nothing(api):
    staff = {f["id"]: f["properties"]["elderly_alone"]
             for f in features(api, "small_areas", "staff")["features"]}
    small = {k for k, v in staff.items() if v in (1, 2)}
    assert small
    hidden = {f["id"] for f in
              features(api, "small_areas", filter=f"elderly_alone = '{SUPPRESSED}'")["features"]}
    assert small <= hidden  # every small count is hidden (and what would give one away)
    for text in ("elderly_alone = 1", "elderly_alone = 2", "elderly_alone < 3",
                 "elderly_alone BETWEEN 1 AND 2", "elderly_alone IN (1, 2)", "NOT (elderly_alone > 2)",
                 "elderly_alone = '1'", "elderly_alone >= 0", "NOT (elderly_alone >= 0)"):
        public = {f["id"] for f in features(api, "small_areas", filter=text)["features"]}
        assert not public & hidden, text
    assert features(api, "small_areas", elderly_alone="1")["numberMatched"] == 0
    # staff see the numbers
    ones = features(api, "small_areas", "staff", filter="elderly_alone = 1")["features"]
    assert {f["id"] for f in ones} == {k for k, v in staff.items() if v == 1}


@pytest.mark.parametrize(("params", "needle"), [
    ({"foo": "1"}, "unknown parameter foo"),
    ({"district": "S01"}, "unknown parameter district"),
    ({"crs": "EPSG:6678"}, "unsupported CRS"),
    ({"bbox-crs": ogc.EPSG_URI + "3857", "bbox": "0,0,1,1"}, "unsupported CRS"),
    ({"filter": "nope > 1"}, "unknown property nope"),
    ({"filter": "population >"}, "not a CQL2"),
    ({"filter": "population > 1", "filter-lang": "ecql"}, "filter-lang"),
    ({"sortby": "nope"}, "unknown sortby property"),
    ({"properties": "name,nope"}, "unknown property nope"),
    ({"limit": "0"}, "limit"), ({"limit": "10001"}, "limit"), ({"offset": "-1"}, "offset"),
    ({"bbox": "1,2,3"}, "bbox"), ({"population": "many"}, "population"), ({"concealed": "yes"}, "concealed"),
])
def test_bad_requests_are_400_in_japanese_and_english(api, params, needle):
    r = get(api, ITEMS.format("small_areas"), params=params)
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert needle in message and re.search(r"[ぁ-んァ-ン一-龥]", message), message
    twice = api.client("anonymous").get(ITEMS.format("small_areas") + "?limit=1&limit=2")
    assert twice.status_code == 400 and "twice" in twice.json()["message"]


def test_single_feature_and_unknown_ones(api):
    r = get(api, "/ogc/collections/districts/items/S05", params={"properties": "district_name"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert body["id"] == "S05" and list(body["properties"]) == ["district_name"]
    assert {link["rel"] for link in body["links"]} == {"self", "collection"}
    assert get(api, "/ogc/collections/districts/items/S99").status_code == 404
    assert get(api, "/ogc/collections/register/items").status_code == 404
    assert get(api, "/ogc/collections/districts/items/S05", params={"bbox": "1,2,3,4"}).status_code == 400


def test_gzip_answer_is_the_same_document(api):
    client = api.client("anonymous")
    url = ITEMS.format("small_areas") + "?limit=50"
    packed = client.get(url, headers={"accept-encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    plain = client.get(url, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    a, b = packed.json(), plain.json()
    a.pop("timeStamp"), b.pop("timeStamp")
    assert a == b
    assert gzip.decompress(gzip.compress(plain.content)) == plain.content


def test_the_ogc_openapi_document_describes_each_collection(api):
    doc = get(api, "/ogc/api").json()
    assert doc["openapi"] == "3.0.3" and doc["servers"] == [{"url": "http://testserver/ogc"}]
    for cid, spec in ogc.COLLECTIONS.items():
        op = doc["paths"][f"/collections/{cid}/items"]["get"]
        names = {p["name"] for p in op["parameters"]}
        assert {"limit", "bbox", "crs", "bbox-crs", "filter", "filter-lang", "sortby", "datetime"} <= names
        assert {p.name for p in spec.properties} <= names
        lang = next(p for p in op["parameters"] if p["name"] == "filter-lang")
        assert "cql-text" in lang["schema"]["enum"]  # how GDAL's OAPIF driver knows it may send filters
    app_doc = get(api, "/api/openapi.json").json()
    assert "/ogc/collections/small_areas/items" in app_doc["paths"]
