"""Individual evacuation plans (個別避難計画): who writes them, the register's plan status derived
from them everywhere a person is shown, the ranking of whom to plan for first, reviews due, the
route to the shelter (along a walking network when given), the printed A4 plan. On the session's
demo (copied before writing) and on tiny hand-built data."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import api_fixtures as fx
import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from test_drills import OTHER, OWN, gpkg_copy, users

from gis.network import walk_network
from karte.domain.access import SHAREABLE
from karte.domain.drills import PLANS
from karte.domain.errors import AccessDenied, ConflictError, InputError, NotFoundError
from karte.render.plan_pdf import plans_pdf
from karte.services import drills, kartes
from karte.services.personal import read_records, read_rows
from karte.snapshot import current

pytestmark = pytest.mark.slow  # over the session's demo build

TODAY = dt.date(2026, 11, 30)


@pytest.fixture
def store(demo, tmp_path):
    return gpkg_copy(demo, tmp_path / "store")


def people(store, status: str | None = None, *, district: str = OWN, shareable: bool = True) -> list[dict]:
    """Register rows of ``district`` as city staff read them (imported status ``status``)."""
    rows = read_records(store, "register", users()["staff"], district=district)
    return [r for r in rows if (status is None or r["plan_status"] == status)
            and (r["consent"] in SHAREABLE) == shareable]


def form(person: dict, **changes) -> dict:
    """A plan form as the page starts it for ``person``, with ``changes``."""
    return {**drills._defaults(person, today=TODAY), **changes}


# --- the status is derived from the plans --------------------------------------------------------------

def test_the_register_plan_status_is_what_the_plans_say_everywhere(store):
    member, staff, coordinator = users()["member"], users()["staff"], users()["coordinator"]
    person = people(store, "none")[0]
    pid = person["person_id"]
    before = current(store)
    by_plan = {r["key"]: r["count"] for r in before.kartes[OWN]["register"]["by_plan"]}
    no_plan = int(before.district_gaps.loc[OWN, "no_plan"])
    drills.save_plan(store, member, OWN, pid, form(person, status="done"), today=TODAY)
    snap = current(store)
    assert snap.stamp != before.stamp  # a plan written changes the build stamp: every process re-reads
    assert snap.plan_status_of(pid, "02201", "none") == "done"
    # the karte's counts moved one person from 未作成 to 作成済, the 未作成 gap lost them
    after = {r["key"]: r["count"] for r in snap.kartes[OWN]["register"]["by_plan"]}
    assert after["done"] == by_plan["done"] + 1 and after["none"] == by_plan["none"] - 1
    assert int(snap.district_gaps.loc[OWN, "no_plan"]) == no_plan - 1
    assert not snap.person_flag(pid)["no_plan"]
    # every view of the person: rows and records read as the viewer, the karte's personal section
    for viewer in (member, coordinator, staff):
        row = next(r for r in read_records(store, "register", viewer, district=OWN) if r["person_id"] == pid)
        assert row["plan_status"] == "done"
        frame = read_rows(store, "register", viewer, district=OWN)
        assert frame.loc[frame["person_id"] == pid, "plan_status"].item() == "done"
    section = kartes.karte_view(store, OWN, coordinator)["personal"]["register"]
    assert next(p for p in section if p["person_id"] == pid)["plan_ja"] == "作成済"
    # the invariant, whole city: a person with a plan has the plan's status, others the imported one
    imported = store.read("register").set_index("person_id")["plan_status"]
    plans = store.read(PLANS).set_index("person_id")["status"]
    for row in read_records(store, "register", staff):
        expected = plans.get(row["person_id"], imported[row["person_id"]])
        assert row["plan_status"] == expected, row["person_id"]
    # and the register itself is not written twice: the city's imported value stays
    assert imported[pid] == "none"


def test_a_plan_in_progress_keeps_the_gap(store):
    person = people(store, "done")[0]
    drills.save_plan(store, users()["coordinator"], OWN, person["person_id"],
                     form(person, status="in_progress"), today=TODAY)
    snap = current(store)
    assert snap.plan_status_of(person["person_id"], "02201") == "in_progress"
    assert snap.person_flag(person["person_id"])["no_plan"]


# --- who writes -----------------------------------------------------------------------------------------

def test_members_write_the_plans_of_their_district_only(store):
    member, coordinator, staff = users()["member"], users()["coordinator"], users()["staff"]
    other = people(store, district=OTHER)[0]
    with pytest.raises(AccessDenied):
        drills.save_plan(store, member, OTHER, other["person_id"], form(other), today=TODAY)
    with pytest.raises(NotFoundError):  # someone of another district, asked for as if of theirs
        drills.save_plan(store, member, OWN, other["person_id"], form(other), today=TODAY)
    hidden = people(store, shareable=False)[0]
    with pytest.raises(NotFoundError):  # an unconsented person: not on their register at all
        drills.plan_page(store, member, OWN, hidden["person_id"])
    with pytest.raises(NotFoundError):
        drills.save_plan(store, coordinator, OWN, hidden["person_id"], form(hidden), today=TODAY)
    page = drills.plan_page(store, staff, OWN, hidden["person_id"])
    assert page["can_edit"] and page["values"]["consent"] == hidden["consent"]
    drills.save_plan(store, staff, OWN, hidden["person_id"], form(hidden), today=TODAY)  # city staff may
    person = people(store)[0]
    with pytest.raises(InputError, match="同意のない計画は市職員"):
        drills.save_plan(store, coordinator, OWN, person["person_id"], form(person, consent="refused"),
                         today=TODAY)
    with pytest.raises(AccessDenied):
        drills.plan_page(store, users()["public"], OWN, person["person_id"])
    # the coordinator reads only the plans with a consent to share; the member likewise, own district
    assert {p["person_id"] for p in drills.plans(store, coordinator)} == set()
    assert {p["person_id"] for p in drills.plans(store, staff)} == {hidden["person_id"]}


def test_one_plan_per_person_and_no_silent_overwrite(store):
    member, coordinator = users()["member"], users()["coordinator"]
    person = people(store)[0]
    pid = person["person_id"]
    drills.save_plan(store, member, OWN, pid, form(person, emergency_name="長女 花子"), today=TODAY)
    with pytest.raises(ConflictError, match="先に作成"):
        drills.save_plan(store, coordinator, OWN, pid, form(person), today=TODAY)
    page = drills.plan_page(store, coordinator, OWN, pid)
    version = page["plan"]["version"]
    assert page["values"]["emergency_name"] == "長女 花子"
    drills.save_plan(store, coordinator, OWN, pid, {**page["values"], "reviewed_on": "2026-11-29"},
                     version=version, today=TODAY)
    with pytest.raises(ConflictError):  # saved from a page read before the coordinator's change
        drills.save_plan(store, member, OWN, pid, {**page["values"], "note": "古い画面から"},
                         version=version, today=TODAY)
    plan = drills.plan_page(store, member, OWN, pid)["plan"]
    assert plan["reviewed_on"] == "2026-11-29" and plan["review_due"] == "2027-11-29"  # a year on
    assert len(store.read(PLANS)) == 1


def test_every_problem_of_a_form_at_once(store):
    person = people(store)[0]
    bad = form(person, status="finished", means="flying", emergency_phone="call me", made_on="2099-01-01",
               review_due="いつか", shelter_id="X", needs="あ" * 600)
    with pytest.raises(InputError) as caught:
        drills.save_plan(store, users()["member"], OWN, person["person_id"], bad, today=TODAY)
    message = str(caught.value)
    for part in ("作成状況", "避難の方法", "電話", "未来", "日付", "避難先", "500文字"):
        assert part in message, part
    assert "あああ" not in message  # no value is echoed


# --- ranking, reviews -----------------------------------------------------------------------------------

def test_priority_ranks_hazard_need_household_and_supporter_with_reasons():
    base = {"district_code": OWN, "kana": "ア", "consent": "consented", "plan_status": "none", "x": 0.0,
            "y": 0.0, "supporter_ids": "C1", "elderly_only_household": False}
    rows = [
        {**base, "person_id": "A", "name": "甲", "care_level": "要介護4"},                 # 4
        {**base, "person_id": "B", "name": "乙", "x": 500.0, "elderly_only_household": True,
         "supporter_ids": ""},                                                             # 2 + 1
        {**base, "person_id": "C", "name": "丙", "x": 1000.0},  # in the flood area: 8
        {**base, "person_id": "D", "name": "丁", "plan_status": "done", "care_level": "要介護5"},
        {**base, "person_id": "E", "name": "戊", "mobility": "walk_with_help"},           # 1
    ]
    flood = gpd.GeoDataFrame(geometry=[shapely.box(900, -100, 1100, 100)], crs=6678)
    ranked = drills.priority(None, None, people=rows, hazards={"flood": flood})
    assert [r["person_id"] for r in ranked] == ["C", "A", "B", "E"]  # done plans are not listed
    reasons = {r["person_id"]: r["reasons"] for r in ranked}
    assert reasons["C"] == ["自宅が洪水浸水想定区域内"]
    assert reasons["B"] == ["高齢者のみの世帯（ひとり暮らしを含む）", "避難支援者が決まっていない"]
    assert reasons["A"][0].startswith("支援の必要が大きい（要介護4")
    assert reasons["E"][0].startswith("配慮が必要")
    assert [r["score"] for r in ranked] == [8, 4, 3, 1]  # hazard, condition, household, isolation


def test_a_hazard_layer_in_the_store_moves_people_at_home_in_it_first(store):
    member = users()["member"]
    last = drills.priority(store, member, district=OWN)[-1]
    area = gpd.GeoDataFrame(geometry=[shapely.Point(last["x"], last["y"]).buffer(30)], crs=6678).to_crs(4326)
    assert drills.import_hazard(store, "landslide", area) == 1
    ranked = drills.priority(store, member, district=OWN)
    hit = next(r for r in ranked if r["person_id"] == last["person_id"])
    assert "自宅が土砂災害警戒区域内" in hit["reasons"] and hit["score"] >= 8
    assert ranked[0]["person_id"] == last["person_id"]  # from last to first
    assert drills.district_plans(store, member, OWN, today=TODAY)["hazards"] == ["土砂災害警戒区域"]
    with pytest.raises(InputError):
        drills.import_hazard(store, "tsunami", area)


def test_plans_due_for_review_are_listed_overdue_first(store):
    member = users()["member"]
    a, b, c = people(store)[:3]
    drills.save_plan(store, member, OWN, a["person_id"], form(a, made_on="2025-10-01", review_due=""),
                     today=TODAY)
    drills.save_plan(store, member, OWN, b["person_id"],
                     form(b, made_on="2026-01-01", review_due="2026-12-20"), today=TODAY)
    drills.save_plan(store, member, OWN, c["person_id"], form(c, made_on="2026-11-01"), today=TODAY)
    due = drills.due_plans(store, member, district=OWN, today=TODAY)
    assert [(d["person_id"], d["overdue"]) for d in due] == [(a["person_id"], True), (b["person_id"], False)]
    assert due[0]["due"] == "2026-10-01"
    listed = drills.plans_listing(store, member, district=OWN, due=True, today=TODAY)
    assert [r["person_id"] for r in listed] == [a["person_id"], b["person_id"]]


# --- the route ------------------------------------------------------------------------------------------

def test_the_route_follows_the_walking_network_when_one_is_given(store):
    snap = current(store)
    shelter = snap.shelters.iloc[0]
    sx, sy = shelter.geometry.x, shelter.geometry.y
    person = {"x": sx - 400.0, "y": sy - 300.0}
    straight = drills.route_of(snap, person, shelter["shelter_id"])
    assert not straight["along_network"] and straight["metres"] == 500
    graph = nx.Graph(crs="EPSG:6678")  # an L: east along the bottom, then north to the shelter
    for i, (x, y) in enumerate([(sx - 400, sy - 300), (sx, sy - 300), (sx, sy)]):
        graph.add_node(i, x=float(x), y=float(y))
    graph.add_edge(0, 1, length=400.0)
    graph.add_edge(1, 2, length=300.0)
    routed = drills.route_of(snap, person, shelter["shelter_id"], network=walk_network(graph))
    assert routed["along_network"] and routed["metres"] == 700 and len(routed["coords"]) == 5
    assert np.allclose(routed["coords"][2], (sx, sy - 300))
    assert drills.route_of(snap, {"x": None, "y": None}, shelter["shelter_id"]) is None


# --- printing -------------------------------------------------------------------------------------------

def test_the_printed_plan_embeds_its_font_and_reads_as_text(store, tmp_path):
    member = users()["member"]
    chosen = people(store)[:2]
    for person in chosen:
        drills.save_plan(store, member, OWN, person["person_id"],
                         form(person, status="done", emergency_name="青森 花子", emergency_relation="長女",
                              emergency_phone="017-000-1234", route_note="県道を通る"), today=TODAY)
    prints = drills.plan_prints(store, member, OWN)
    data, pages = plans_pdf(prints)
    assert pages == len(prints) == 2
    pdf = tmp_path / "plans.pdf"
    pdf.write_bytes(data)
    text = fx.pdf_text(data)
    for person in chosen:
        assert person["name"] in text
    assert text.count("個別避難計画") >= 2 and "青森 花子（長女）" in text and "017-000-1234" in text
    assert "県道を通る" in text and "取扱注意" in text and "m5" in text
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    rows = fonts.splitlines()[2:]
    assert rows and all("IPAexGothic" in r and r.split()[-5:-3] == ["yes", "yes"] for r in rows)
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "plan")],
                   check=True)
    shots = Path("/tmp/shots")
    shots.mkdir(exist_ok=True)
    for png in tmp_path.glob("plan*.png"):
        (shots / f"evacplan-{png.name}").write_bytes(png.read_bytes())
    one, _ = plans_pdf(drills.plan_prints(store, member, OWN, person_id=chosen[0]["person_id"]))
    assert chosen[1]["name"] not in fx.pdf_text(one)
    with pytest.raises(NotFoundError):
        drills.plan_prints(store, member, OWN, person_id=people(store)[5]["person_id"])  # no plan yet
    empty, pages = plans_pdf([])
    assert pages == 1 and "印刷する個別避難計画はありません" in fx.pdf_text(empty)


# --- the web --------------------------------------------------------------------------------------------

def test_the_plan_pages(store, tmp_path):
    web = fx.make_api(store, tmp_path / "web", basemap="none")
    member = web.browser("member")
    page = member.get(f"/districts/{OWN}/drills")
    assert page.status_code == 200 and "優先して作る方" in page.text and "作成状況" in page.text
    person = people(store)[0]
    url = f"/districts/{OWN}/evacuation-plan?person={person['person_id']}"
    html = member.get(url).text
    assert "計画を作成する" in html and person["name"] in html
    token = fx.csrf_of(html)
    values = {k: v for k, v in form(person, status="done", emergency_phone="090-1234-5678").items() if v}
    values["supporter_ids"] = [s for s in (person.get("supporter_ids") or "").split(";") if s]
    assert member.post(url, data={**values, "csrf": "x"}).status_code == 403
    r = member.post(url, data={**values, "csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("saved=true")
    assert current(store).plan_status_of(person["person_id"], "02201") == "done"
    r = member.post(url, data={**values, "csrf": token, "emergency_phone": "call me"})
    assert r.status_code == 400 and "電話番号" in r.text
    r = member.post(url, data={**values, "csrf": token})  # a second first plan (a page opened before)
    assert r.status_code == 409 and "先に作成" in r.text
    pdf = member.get(f"/districts/{OWN}/evacuation-plans.pdf?person={person['person_id']}")
    assert pdf.status_code == 200 and person["name"] in fx.pdf_text(pdf.content)
    assert member.get(f"/districts/{OTHER}/evacuation-plans.pdf").status_code == 403
    assert web.browser("anonymous").get(url, follow_redirects=False).status_code == 303
