"""計画・指標 and the trend on the web (issue 12), over a private copy of the demo store: the pages
for every role, edits by city staff and coordinators only (CSRF, audited, optimistic), the public's
suppressed counts, the report PDF (fonts embedded, text extractable), the export, the honest dates
on the city and district pages."""

from __future__ import annotations

import re
import subprocess

import api_fixtures as fx
import pytest
from api_fixtures import OWN, ROLES

from karte.domain.access import SUPPRESSED
from karte.domain.history import HistoryLayer

pytestmark = pytest.mark.slow  # over the session's demo build

CENSUS_LINE = "人口・世帯: 国勢調査 2015年（平成27年）10月1日現在"


@pytest.fixture(scope="module")
def web(demo, tmp_path_factory) -> fx.Api:
    folder = tmp_path_factory.mktemp("history-web")
    return fx.make_api(fx.copy_demo(demo, folder), folder, basemap="none")


@pytest.fixture(scope="module")
def tight(demo, tmp_path_factory) -> fx.Api:
    """The app with a high suppression threshold: most of a district's counts are small for it."""
    folder = tmp_path_factory.mktemp("history-tight")
    return fx.make_api(fx.copy_demo(demo, folder), folder, basemap="none", suppress_max=150)


@pytest.mark.parametrize("role", ROLES)
def test_the_plan_page_for_every_role(web, role):
    page = web.browser(role).get("/plan")
    assert page.status_code == 200
    html = page.text
    assert "計画・指標" in html and "（仮称）青森市地域福祉計画" in html and CENSUS_LINE in html
    assert 'role="img"' in html and "<title id=" in html and "<desc id=" in html  # charts with text
    for mark in ("◆", "○", "★", "◎", "□", "■"):
        assert mark in html
    assert "検討及び協議" in html and "見直し実施" in html and "評価（成果と課題）" in html
    assert "デモ用の合成" in html
    editor = role in ("coordinator", "staff")
    assert ('action="/plan/marks"' in html) == editor and ('action="/plan/values"' in html) == editor
    district = web.browser(role).get(f"/districts/{OWN}/plan")
    assert district.status_code == 200 and "この地区の値" in district.text
    assert 'action="/plan/marks"' not in district.text


def test_the_menu_and_the_district_page_link_to_the_plan_pages(web):
    city = web.browser("anonymous").get("/").text
    assert 'href="/plan"' in city and "計画・指標" in city
    district = web.browser("anonymous").get(f"/districts/{OWN}").text
    assert f'href="/districts/{OWN}/plan"' in district


def test_the_census_year_and_the_trend_on_the_city_and_district_pages(web):
    city = web.browser("anonymous").get("/").text
    district = web.browser("anonymous").get(f"/districts/{OWN}").text
    for html in (city, district):
        assert CENSUS_LINE in html and "出典と基準日" in html
        assert "データ 2026-10-01" not in html
    assert "推移（市全体との比較）" in district and "高齢者の見通し（推計）" in district
    assert district.count('class="chart"') >= 4 and "合成" in district
    assert "市全体の推移" in city


def test_editors_change_a_mark_with_csrf_and_the_store_logs_it(web):
    client = web.browser("coordinator")
    html = client.get("/plan").text
    token = fx.csrf_of(html)
    item = re.search(r'id="item-(A\d+)"', html).group(1)
    r = client.post(
        "/plan/marks",
        data={
            "csrf": token,
            "plan": "（仮称）青森市地域福祉計画",
            "item_id": item,
            "fiscal_year": "2026",
            "marks": "〇☆",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303 and "saved=mark" in r.headers["location"]
    marks = web.store.read_full(HistoryLayer.PLAN_MARKS)
    row = marks[(marks["item_id"] == item) & (marks["fiscal_year"] == 2026)].iloc[0]
    assert row["marks"] == "○★" and row["updated_by"] == "coordinator"
    log = web.store.audit_log()
    assert (
        (log["actor"] == "coordinator") & (log["layer"] == "plan_marks") & (log["action"] == "update")
    ).any()
    stale = client.post(
        "/plan/marks",
        data={
            "csrf": token,
            "plan": "（仮称）青森市地域福祉計画",
            "item_id": item,
            "fiscal_year": "2026",
            "marks": "○",
            "version": "1",
        },
        follow_redirects=False,
    )
    assert stale.status_code == 409  # someone saved since that version was read
    bad = client.post(
        "/plan/marks",
        data={
            "csrf": token,
            "plan": "（仮称）青森市地域福祉計画",
            "item_id": item,
            "fiscal_year": "2026",
            "marks": "済",
        },
        follow_redirects=False,
    )
    assert bad.status_code == 400 and "凡例にありません" in bad.text


def test_only_editors_write_and_never_without_the_token(web):
    member = web.browser("member")
    token = fx.csrf_of(member.get("/plan").text)
    form = {"csrf": token, "key": "outreach_lectures", "fiscal_year": "2026", "kind": "value", "value": "40"}
    assert member.post("/plan/values", data=form, follow_redirects=False).status_code == 403
    staff = web.browser("staff")
    assert (
        staff.post("/plan/values", data={**form, "csrf": "wrong"}, follow_redirects=False).status_code == 403
    )
    anonymous = web.browser("anonymous")
    assert anonymous.post("/plan/values", data=form, follow_redirects=False).status_code == 403
    form["csrf"] = fx.csrf_of(staff.get("/plan").text)
    assert staff.post("/plan/values", data=form, follow_redirects=False).status_code == 303
    values = web.store.read("indicator_values")
    hit = values[
        (values["indicator_key"] == "outreach_lectures")
        & (values["fiscal_year"] == 2026)
        & (values["kind"] == "value")
    ]
    assert list(hit["value"]) == [40.0]
    evaluation = {
        "csrf": form["csrf"],
        "plan": "（仮称）青森市地域福祉計画",
        "goal_no": "2",
        "fiscal_year": "2026",
        "kind": "external",
        "achievements": "サポーターの登録が進んだ\n研修を2回開いた",
        "issues": "",
        "evaluator": "外部評価委員会",
    }
    assert staff.post("/plan/evaluations", data=evaluation, follow_redirects=False).status_code == 303
    page = staff.get("/plan").text
    assert "サポーターの登録が進んだ" in page and "研修を2回開いた" in page and "外部評価委員会" in page


def test_the_public_gets_small_counts_suppressed_in_history_and_indicators(tight):
    public = tight.client("anonymous").get(f"/api/districts/{OWN}/history").json()
    staff = tight.client("staff").get(f"/api/districts/{OWN}/history").json()
    last_public, last_staff = public["years"][-1]["district"], staff["years"][-1]["district"]
    assert isinstance(last_staff["with_supporter"], int) and 1 <= last_staff["with_supporter"] <= 150
    assert last_public["with_supporter"] == SUPPRESSED and last_public["with_supporter_rate"] is None
    assert last_public["salons"] == last_staff["salons"]  # places, not people
    items = tight.client("anonymous").get("/api/indicators", params={"district": OWN}).json()["indicators"]
    people = [i for i in items if i["people"]]
    assert people and all(
        v["value"] in (SUPPRESSED, None) or v["value"] > 150 for i in people for v in i["values"]
    )


def test_the_progress_report_pdf_embeds_its_font_and_says_its_sources(web, tmp_path):
    for url in ("/plan/report.pdf?year=2026", f"/districts/{OWN}/plan/report.pdf?year=2026"):
        r = web.browser("anonymous").get(url)
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        path = tmp_path / "report.pdf"
        path.write_bytes(r.content)
        fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
        rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
        assert rows and all(row[-5:-3] == ["yes", "yes"] for row in rows), fonts  # embedded, subset
        assert all("IPAexGothic" in row[0] for row in rows)
        text = subprocess.run(
            ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
        ).stdout
        for words in (
            "活動指標と目標",
            "計画の年次表",
            "評価",
            "カルテの推移",
            "出典と基準日",
            "国勢調査 2015年（平成27年）",
            "サロンの実施か所数",
        ):
            assert words in text, words
    assert "〓" not in text  # every character of the marks and the legend has a glyph


def test_the_plan_exports_as_excel_and_csv(web):
    from karte.history_plan import parse_rows
    from karte.importing.rows import Findings
    from karte.importing.tables import parse_csv

    r = web.browser("anonymous").get("/plan/export.csv")
    assert r.status_code == 200 and r.content.startswith("\ufeff".encode())
    table = parse_csv(r.content, source="plan.csv")
    findings = Findings("plan.csv")
    plan = parse_rows(table.rows, findings, this_year=2026)
    assert not findings.problems and plan.name == "（仮称）青森市地域福祉計画" and len(plan.items) == 15
    xlsx = web.browser("anonymous").get("/plan/export.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
