"""The role x route leak matrix for the routes of years (issue 12), with the detectors of
:mod:`test_api_matrix`: every GET route of 計画・指標 (pages, JSON, PDF, exports) for every role
answers below 500, shows no personal row, and gives the public no count of people from 1 to 2
that city staff get; every POST refuses an anonymous request without a token. Over HTTP on the
GeoPackage store; on the PostGIS store (the demo imported, its history and plan layers with it) the
same services every route calls, as every role. (The whole app's matrix runs the same checks over
every route.)"""

from __future__ import annotations

from urllib.parse import quote

import api_fixtures as fx
import pytest
from api_fixtures import OTHER, OWN, ROLES
from test_api_matrix import _csv_ints, _forbidden, _leaks, _parsed, _small_counts, data  # noqa: F401

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow

PLAN = quote("（仮称）青森市地域福祉計画")
URLS = ["/plan", f"/plan?plan={PLAN}", f"/districts/{OWN}/plan", f"/districts/{OTHER}/plan",
        "/plan/report.pdf", "/plan/report.pdf?year=2025", f"/districts/{OWN}/plan/report.pdf",
        f"/districts/{OTHER}/plan/report.pdf", "/plan/export.xlsx", f"/plan/export.csv?plan={PLAN}",
        "/api/history", f"/api/districts/{OWN}/history", f"/api/districts/{OTHER}/history", "/api/indicators",
        f"/api/indicators?district={OWN}", "/api/indicators?year=2024", f"/districts/{OWN}", "/"]
POSTS = ["/plan/marks", "/plan/values", "/plan/evaluations"]


@pytest.fixture(scope="module")
def web(demo, tmp_path_factory) -> fx.Api:
    folder = tmp_path_factory.mktemp("history-matrix")
    return fx.make_api(fx.copy_demo(demo, folder), folder)


def test_every_route_of_years_for_every_role(web, data):  # noqa: F811 - the matrix's fixture
    headers = {role: web.headers(role) for role in ROLES}
    client = web.client("anonymous")
    forbidden = {role: _forbidden(web, role, data) for role in ROLES}
    assert forbidden["anonymous"]["ids"]  # the detector has something to find
    failures, checked = [], 0
    for url in URLS:
        staff = client.get(url, headers=headers["staff"])
        assert staff.status_code == 200, (url, staff.text[:200])
        for role in ROLES:
            r = client.get(url, headers=headers[role])
            assert r.status_code < 500, (role, url, r.text[:200])
            if r.status_code >= 300:
                continue
            checked += 1
            failures += [f"{role} {url}: {leak}" for leak in _leaks(fx.body_text(r), forbidden[role])]
            if role in ("anonymous", "public"):
                pub, ref = _parsed(r), _parsed(staff)
                if isinstance(pub, list) and pub and isinstance(pub[0], dict) and "csv" in url:
                    pub, ref = _csv_ints(pub), _csv_ints(ref)
                if pub is not None:
                    failures += [f"{role} {url}: small count at {p}" for p in _small_counts(pub, ref)]
    assert checked == len(URLS) * len(ROLES)
    assert not failures, "\n".join(failures[:40])
    for path in POSTS:
        r = client.post(path, data={}, follow_redirects=False)
        assert r.status_code in (400, 401, 403, 422), (path, r.status_code)


@pytest.mark.postgis
def test_the_services_of_years_on_postgis_for_every_role(demo, pg_admin_url, pg_app_url, tmp_path):
    import json

    from pg_fixtures import reset

    from karte import snapshot
    from karte.render.report import progress_report_pdf
    from karte.services import history as years
    from karte.store import GeoPackageStore
    from karte.store.cli import import_store
    from karte.store.postgis import PostGISStore

    reset(pg_admin_url)
    store = PostGISStore(pg_app_url)
    try:
        import_store(demo[1] / "karte.gpkg", store)  # the demo's history and plan layers too
        snapshot.clear()
        gpkg = GeoPackageStore(demo[1] / "karte.gpkg")
        api = fx.Api(app=None, store=store, folder=tmp_path)
        frames = (store.read("register"), store.read("cooperators"), "")
        for role in ROLES:
            access = api.access(role)
            answers = {
                "trend": years.trend(store, OWN, access, municipality="02201"),
                "city": years.trend(store, None, access, municipality="02201"),
                "indicators": years.indicator_list(store, access, municipality="02201", district=OTHER),
                "plan": years.plan_view(store, access, municipality="02201"),
            }
            text = json.dumps(answers, ensure_ascii=False, default=str)
            assert not _leaks(text, _forbidden(api, role, frames)), role
            data = years.report_data(store, access, municipality="02201", year=2026)
            assert progress_report_pdf(data)[:4] == b"%PDF"
            if role in ("anonymous", "public"):
                staff = years.trend(store, OWN, api.access("staff"), municipality="02201")
                assert not _small_counts(answers["trend"], staff)
        same = years.plan_view(store, api.access("staff"), municipality="02201")
        other = years.plan_view(gpkg, api.access("staff"), municipality="02201")
        # the same plan; row versions are each store's own counters (PostGIS: one sequence)
        assert _without_versions(same["goals"]) == _without_versions(other["goals"])
    finally:
        store.close()
        snapshot.clear()


def _without_versions(value):
    if isinstance(value, dict):
        return {k: _without_versions(v) for k, v in value.items() if k != "version"}
    if isinstance(value, list):
        return [_without_versions(v) for v in value]
    return value
