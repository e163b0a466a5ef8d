"""The JSON, GeoJSON, CSV and PDF API over the demo store: answers, formats, errors, logging."""

from __future__ import annotations

import csv
import io
import json

import api_fixtures as fx
import pytest
from api_fixtures import OTHER, OWN

from karte.domain.access import SUPPRESSED

pytestmark = pytest.mark.slow  # over the session's demo build

api = fx.api  # the fixture


@pytest.fixture(scope="module")
def client(api):
    return api.client("anonymous")


@pytest.fixture(scope="module")
def store(api):
    return api.store


@pytest.fixture(scope="module")
def bearer(api):
    """role -> its Authorization header."""
    return {role: api.headers(role) for role in fx.ROLES}


def test_district_list_is_every_district_with_public_counts(client, demo):
    result, _ = demo
    r = client.get("/api/districts")
    assert r.status_code == 200
    rows = r.json()
    assert [row["code"] for row in rows] == sorted(result.kartes)
    own = next(row for row in rows if row["code"] == OWN)
    assert own["name"] == result.kartes[OWN]["district"]["name"]
    assert own["population"] == result.kartes[OWN]["base"][0]["value"]


def test_karte_json_public_has_no_personal_section(client, demo):
    r = client.get(f"/api/districts/{OWN}")
    assert r.status_code == 200
    karte = r.json()
    assert karte["district"]["code"] == OWN
    assert "personal" not in karte
    assert karte["viewer"]["level"] == "public"


def test_karte_json_for_member_has_the_consented_rows_and_is_logged(client, store, bearer):
    before = len(store.audit_log())
    r = client.get(f"/api/districts/{OWN}", headers=bearer["member"])
    assert r.status_code == 200
    personal = r.json()["personal"]
    reg = store.read("register", district=OWN)
    shareable = reg[reg["consent"].isin(["consented", "ordinance"])]
    coop = store.read("cooperators", district=OWN)
    assert sorted(p["person_id"] for p in personal["register"]) == sorted(shareable["person_id"])
    # the store writes the log rows of the reads it served, one per layer, as the member
    log = store.audit_log().iloc[before:]
    assert sorted(log[["actor", "level", "route", "action", "layer", "district", "rows"]]
                  .values.tolist()) == [
        ["member", "district_member", "web:karte", "read", "cooperators", OWN, len(coop)],
        ["member", "district_member", "web:karte", "read", "register", OWN, len(shareable)]]


def test_member_of_another_district_gets_no_personal_section(client, store, bearer):
    before = len(store.audit_log())
    r = client.get(f"/api/districts/{OTHER}", headers=bearer["member"])
    assert r.status_code == 200
    assert "personal" not in r.json()
    assert len(store.audit_log()) == before  # nothing personal was read


def test_city_staff_sees_unconsented_rows_too(client, store, bearer):
    r = client.get(f"/api/districts/{OWN}", headers=bearer["staff"])
    assert len(r.json()["personal"]["register"]) == len(store.read("register", district=OWN))


@pytest.mark.parametrize("url, status", [
    ("/api/districts/S99", 404),
    ("/api/districts/S05%27%20OR%201=1", 422),
    ("/api/districts/" + "S" * 40, 422),
    ("/api/districts/S05/layers/nope.geojson", 422),
    ("/api/districts/S99/layers/shelters.geojson", 404),
    ("/api/districts/S05/tables/nope.csv", 422),
    ("/districts/S05/sheet.pdf?edition=secret", 422),
    ("/districts/S05/sheet.pdf?paper=B5", 422),
    ("/districts/S99/sheet.pdf", 404),
    ("/no/such/route", 404),
])
def test_bad_requests_get_clear_errors_in_one_format(client, url, status):
    r = client.get(url)
    assert r.status_code == status
    body = r.json()
    assert set(body) >= {"status", "code", "message"}
    assert body["status"] == status
    assert "Traceback" not in r.text


def test_layers_geojson_are_wgs84_rounded_and_small(client):
    r = client.get(f"/api/districts/{OWN}/layers/small_areas.geojson")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["features"]
    points = _points(fc["features"][0]["geometry"]["coordinates"])
    assert all(140 < lon < 141.5 and 40.5 < lat < 41.2 for lon, lat in points)
    assert all(len(repr(v).split(".")[-1]) <= 6 for pt in points for v in pt)
    assert all(f["properties"]["district_code"] == OWN for f in fc["features"])
    assert len(r.content) < 200_000


def test_personal_layer_needs_login_and_own_district(client, bearer):
    assert client.get(f"/api/districts/{OWN}/layers/register.geojson").status_code == 401
    assert client.get(f"/api/districts/{OWN}/layers/register.geojson",
                      headers=bearer["public"]).status_code == 403
    member = bearer["member"]
    assert client.get(f"/api/districts/{OTHER}/layers/register.geojson", headers=member).status_code == 403
    r = client.get(f"/api/districts/{OWN}/layers/register.geojson", headers=member)
    assert r.status_code == 200
    assert {f["properties"]["consent"] for f in r.json()["features"]} <= {"consented", "ordinance"}


def test_city_layer_of_districts_has_the_overview_measures(client, demo):
    result, _ = demo
    fc = client.get("/api/layers/districts.geojson").json()
    assert len(fc["features"]) == len(result.kartes)
    props = fc["features"][0]["properties"]
    assert {"uncovered_share", "gap_rate", "elderly_rate"} <= set(props)


def test_csv_tables(client, demo, bearer):
    result, _ = demo
    r = client.get(f"/api/districts/{OWN}/tables/base.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0]["項目コード"] == "population"  # Japanese headers (karte.importing.export)
    assert int(rows[0]["地区の値"]) == result.kartes[OWN]["base"][0]["value"]
    services = list(csv.DictReader(io.StringIO(
        client.get(f"/api/districts/{OWN}/tables/services.csv").content.decode("utf-8-sig"))))
    assert len(services) == len(result.kartes[OWN]["services"])
    assert client.get(f"/api/districts/{OWN}/tables/register.csv").status_code in (401, 403)
    staff = client.get(f"/api/districts/{OWN}/tables/cooperators.csv", headers=bearer["staff"])
    assert staff.status_code == 200 and "電話番号" in staff.text and "phone" not in staff.text


def test_small_counts_are_suppressed_for_the_public_in_the_csv(client, demo, bearer):
    result, _ = demo
    small = [(code, table, section, item["key"])
             for code, karte in result.kartes.items()
             for table, block in (("register_summary", "register"), ("cooperator_summary", "cooperators"))
             for section, items in karte[block].items() if isinstance(items, list)
             for item in items if 1 <= item["count"] <= 2]
    assert small, "the demo has small counts (else this test proves nothing)"
    for code, table, section, key in small[:10]:
        text = client.get(f"/api/districts/{code}/tables/{table}.csv").content.decode("utf-8-sig")
        shown = {(r["区分"], r["項目コード"]): r["人数"] for r in csv.DictReader(io.StringIO(text))}
        assert shown[(section, key)] == SUPPRESSED
        staff = client.get(f"/api/districts/{code}/tables/{table}.csv", headers=bearer["staff"])
        shown = {(r["区分"], r["項目コード"]): r["人数"]
                 for r in csv.DictReader(io.StringIO(staff.content.decode("utf-8-sig")))}
        assert shown[(section, key)] in ("1", "2")


def test_sheet_pdf_public_and_personal_editions(client, store, bearer):
    before = len(store.audit_log())
    r = client.get(f"/districts/{OWN}/sheet.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert client.get(f"/districts/{OWN}/sheet.pdf?edition=confidential").status_code == 403
    assert client.get(f"/districts/{OTHER}/sheet.pdf?edition=confidential",
                      headers=bearer["member"]).status_code == 403
    assert len(store.audit_log()) == before  # the public sheet and the refusals read nothing personal
    r = client.get(f"/districts/{OWN}/sheet.pdf?edition=drill&paper=A3", headers=bearer["member"])
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert r.headers["cache-control"] == "private, no-store"
    log = store.audit_log().iloc[before:]
    assert set(log["layer"]) >= {"register", "cooperators"} and set(log["actor"]) == {"member"}
    reads = log[log["action"] == "read"]
    assert set(reads["layer"]) == {"register", "cooperators"}  # the rest: the copy it recorded
    assert set(log.loc[log["action"] != "read", "layer"]) <= {"copies"}
    assert set(log["level"]) == {"district_member"} and set(log["route"]) == {"web:sheet_pdf"}


def test_openapi_document_and_offline_docs_page(client):
    spec = client.get("/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert "/api/districts/{code}" in spec["paths"]
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/api/districts/{code}" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def test_json_is_valid_utf8_json_with_japanese(client):
    r = client.get(f"/api/districts/{OWN}")
    assert "地区" in json.dumps(r.json(), ensure_ascii=False)


def _points(coords):
    if isinstance(coords[0], float | int):
        return [coords]
    return [p for c in coords for p in _points(c)]
