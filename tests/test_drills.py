"""Drills and safety confirmation (訓練・安否確認): starting one, marks from phones (each once),
the dashboard's status, the report (PDF and CSV: time to confirm half and all, people not reached,
supporters who could not reach theirs, lessons), the public counts and the indicators, paper
marks, the web pages and API, the command line. On the session's demo (copied before writing).

Also the helpers the other drill and plan test modules share (:func:`gpkg_copy`, :func:`pg_copy`,
:func:`users`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import uuid
from pathlib import Path

import api_fixtures as fx
import pandas as pd
import pytest
from conftest import copy_store
from typer.testing import CliRunner

from karte import indicators
from karte.domain.access import SHAREABLE, Access, Level
from karte.domain.drills import MARKS, MarkStatus
from karte.domain.errors import AccessDenied, InputError, NotFoundError
from karte.render.drill_report import report_pdf
from karte.services import drills
from karte.store import GeoPackageStore

pytestmark = pytest.mark.slow  # over the session's demo build

#: The tables of this topic (emptied before a PostGIS test: the shared reset does not know them).
TABLES = ("evacuation_plans", "drills", "drill_marks", "drill_lessons", "disaster_modes")
OWN, OTHER = fx.OWN, fx.OTHER
T0 = dt.datetime(2026, 6, 7, 1, 0, tzinfo=dt.UTC)  # 10:00 JST, a Sunday drill in fiscal 2026


def users() -> dict[str, Access]:
    """One acting user per role (the district member's district is S05)."""
    return {"staff": Access("staff", Level.CITY_STAFF, route="test"),
            "coordinator": Access("csw", Level.COORDINATOR, route="test"),
            "member": Access("m5", Level.DISTRICT_MEMBER, OWN, route="test"),
            "other": Access("m6", Level.DISTRICT_MEMBER, OTHER, route="test"),
            "public": Access("anonymous", Level.PUBLIC, route="test")}


def gpkg_copy(demo, folder: Path) -> GeoPackageStore:
    """A private copy of the demo GeoPackage (for tests that write)."""
    folder.mkdir(parents=True, exist_ok=True)
    return GeoPackageStore(copy_store(demo[1] / "karte.gpkg", folder / "karte.gpkg"))


def pg_copy(request, demo):
    """The demo imported into this session's PostGIS database, this topic's tables emptied."""
    import psycopg
    from pg_fixtures import libpq, reset

    from karte.store.cli import import_store
    from karte.store.postgis import PostGISStore

    admin = request.getfixturevalue("pg_admin_url")
    reset(admin)
    with psycopg.connect(libpq(admin), autocommit=True) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"karte.{t}" for t in TABLES) + " RESTART IDENTITY")
    store = PostGISStore(request.getfixturevalue("pg_app_url"))
    import_store(demo[1] / "karte.gpkg", store)
    return store


def mark(person: str, status: str = "safe", *, at: dt.datetime, district: str = OWN,
         mid: str | None = None) -> dict:
    return {"id": mid or str(uuid.uuid4()), "person_id": person, "district": district, "status": status,
            "marked_at": at.isoformat()}


@pytest.fixture
def store(demo, tmp_path):
    return gpkg_copy(demo, tmp_path / "store")


@pytest.fixture
def drill(store):
    """A drill of S05 and S06 started at :data:`T0` by the coordinator."""
    return drills.start_drill(store, users()["coordinator"], [OWN, OTHER], name="令和8年度 安否確認訓練",
                              started_at=T0)


def roll_of(store, who: str, drill_row: dict, district: str = OWN) -> list[dict]:
    access = users()[who]
    return drills.roll(store, access, drills.drill_of(store, access, drill_row["drill_id"]), district)


# --- starting and ending ------------------------------------------------------------------------------

def test_city_staff_and_coordinators_start_drills_members_do_not(store):
    u = users()
    with pytest.raises(AccessDenied):
        drills.start_drill(store, u["member"], [OWN], name="x")
    with pytest.raises(NotFoundError, match="S99"):
        drills.start_drill(store, u["staff"], ["S99"], name="x")
    with pytest.raises(InputError, match="名前"):
        drills.start_drill(store, u["staff"], [OWN], name="")
    row = drills.start_drill(store, u["staff"], [OWN, OTHER, OWN], name="避難誘導", kind="evacuation")
    assert row["drill_id"].startswith("DR") and row["districts"] == f"{OWN};{OTHER}"
    assert row["started_by"] == "staff" and not row["ended_at"]
    # a member sees the drills of their district only; drills read as the viewer are logged
    assert [d["drill_id"] for d in drills.drills_for(store, u["member"])] == [row["drill_id"]]
    solo = drills.start_drill(store, u["staff"], ["S01"], name="S01だけ")
    assert solo["drill_id"] not in {d["drill_id"] for d in drills.drills_for(store, u["member"])}
    with pytest.raises(NotFoundError):
        drills.drill_of(store, u["member"], solo["drill_id"])
    ended = drills.end_drill(store, u["coordinator"], row["drill_id"])
    assert ended["ended_by"] == "csw" and ended["ended_at"]
    with pytest.raises(AccessDenied):
        drills.end_drill(store, u["member"], solo["drill_id"])


def test_the_roll_is_the_shareable_register_of_the_district(store, drill):
    staff_roll = roll_of(store, "staff", drill)
    register = store.read("register")
    expected = register[(register["district_code"] == OWN) & register["consent"].isin(SHAREABLE)]
    assert {p["person_id"] for p in staff_roll} == set(expected["person_id"]) and len(staff_roll) > 20
    assert {p["person_id"] for p in roll_of(store, "member", drill)} == set(expected["person_id"])
    assert roll_of(store, "member", drill, OTHER) == []  # another district: nothing, not an error


# --- marks: each once ----------------------------------------------------------------------------------

def test_a_mark_sent_twice_is_stored_once(store, drill):
    people = roll_of(store, "member", drill)
    member = users()["member"]
    batch = [mark(p["person_id"], s.value, at=T0 + dt.timedelta(minutes=i))
             for i, (p, s) in enumerate(zip(people, list(MarkStatus), strict=False))]
    first = drills.record_marks(store, member, drill["drill_id"], batch, now=T0 + dt.timedelta(hours=1))
    assert sorted(first["received"]) == sorted(m["id"] for m in batch) and not first["duplicates"]
    again = drills.record_marks(store, member, drill["drill_id"], batch + batch[:2],
                                now=T0 + dt.timedelta(hours=1))
    assert again["received"] == []
    assert sorted(again["duplicates"]) == sorted(m["id"] for m in batch + batch[:2])
    stored = store.read(MARKS)
    assert len(stored) == len(batch) and set(stored["client_id"]) == {m["id"] for m in batch}
    assert set(stored["marked_by"]) == {"m5"}
    st = drills.status(store, member, drill["drill_id"], district=OWN, now=T0 + dt.timedelta(hours=1))
    counts = {c["key"]: c["count"] for c in st["counts"]}
    assert counts["safe"] == counts["evacuated"] == counts["absent"] == counts["needs_help"] == 1
    assert counts["unconfirmed"] == len(people) - 4  # the one marked 未確認 and those not marked
    assert st["confirmed"] == 3 and st["total"] == len(people) and st["elapsed_s"] == 3600
    assert st["unmarked"] == len(people) - 5 and st["marks"] == 5
    assert len(st["not_reached"]) == len(people) - 3
    assert {p["s"] for p in st["points"]} <= {s.value for s in MarkStatus}


def test_the_latest_mark_of_a_person_is_their_status(store, drill):
    person = roll_of(store, "member", drill)[0]["person_id"]
    member = users()["member"]
    marks = [mark(person, "absent", at=T0 + dt.timedelta(minutes=5)),
             mark(person, "safe", at=T0 + dt.timedelta(minutes=30)),
             mark(person, "needs_help", at=T0 + dt.timedelta(minutes=20))]  # sent late, made earlier
    drills.record_marks(store, member, drill["drill_id"], marks, now=T0 + dt.timedelta(hours=1))
    st = drills.status(store, member, drill["drill_id"], district=OWN, now=T0 + dt.timedelta(hours=1))
    assert {c["key"]: c["count"] for c in st["counts"]}["safe"] == 1
    assert person not in {p["person_id"] for p in st["not_reached"]}


def test_bad_marks_are_refused_with_a_reason_and_the_rest_kept(store, drill):
    people = roll_of(store, "member", drill)
    register = store.read("register")
    unconsented = (register["district_code"] == OWN) & ~register["consent"].isin(SHAREABLE)
    hidden = register[unconsented]["person_id"].iloc[0]
    other = roll_of(store, "coordinator", drill, OTHER)[0]["person_id"]
    now = T0 + dt.timedelta(hours=1)
    good = mark(people[0]["person_id"], at=T0 + dt.timedelta(minutes=1))
    sent = [good, {**mark(people[1]["person_id"], at=T0), "id": "not-a-uuid"},
            mark(people[1]["person_id"], "asleep", at=T0),
            mark(other, at=T0, district=OTHER),                           # another district
            mark(hidden, at=T0),                                          # not on the roll
            mark(people[2]["person_id"], at=T0 - dt.timedelta(hours=2)),  # before the drill
            mark(people[3]["person_id"], at=now + dt.timedelta(hours=1))]  # the device's clock is wrong
    result = drills.record_marks(store, users()["member"], drill["drill_id"], sent, now=now)
    assert result["received"] == [good["id"]]
    reasons = [r["reason"] for r in result["rejected"]]
    assert len(reasons) == 6
    assert any("番号" in r for r in reasons) and any("状態" in r for r in reasons)
    assert any("権限" in r for r in reasons) and any("名簿にいません" in r for r in reasons)
    assert sum("時刻" in r for r in reasons) == 2
    assert len(store.read(MARKS)) == 1


def test_marks_made_before_the_end_still_count_when_they_arrive_late(store, drill):
    people = roll_of(store, "member", drill)
    member = users()["member"]
    drills.end_drill(store, users()["coordinator"], drill["drill_id"], now=T0 + dt.timedelta(hours=2))
    late = drills.record_marks(store, member, drill["drill_id"],
                               [mark(people[0]["person_id"], at=T0 + dt.timedelta(hours=1)),
                                mark(people[1]["person_id"], at=T0 + dt.timedelta(hours=3))],
                               now=T0 + dt.timedelta(hours=4))
    assert len(late["received"]) == 1 and "終了後" in late["rejected"][0]["reason"]


# --- the report ---------------------------------------------------------------------------------------

def test_report_times_to_half_and_all_supporters_and_lessons(store, drill, tmp_path):
    member, coordinator = users()["member"], users()["coordinator"]
    people = roll_of(store, "member", drill)
    n = len(people)
    marks = [mark(p["person_id"], "safe" if i % 2 else "evacuated", at=T0 + dt.timedelta(minutes=i + 1))
             for i, p in enumerate(people)]
    drills.record_marks(store, member, drill["drill_id"], marks, now=T0 + dt.timedelta(hours=3))
    drills.add_lesson(store, member, drill["drill_id"], OWN, "車いすの方の避難に2人必要だった。", now=T0)
    rep = drills.report(store, coordinator, drill["drill_id"], now=T0 + dt.timedelta(hours=3))
    own = next(d for d in rep.districts if d.code == OWN)
    assert own.total == own.confirmed == n
    assert own.minutes_to_half == float((n + 1) // 2) and own.minutes_to_all == float(n)
    assert own.not_reached == [] and own.supporters_short == []
    assert own.lessons[0][1:] == ("m5", "車いすの方の避難に2人必要だった。")
    other = next(d for d in rep.districts if d.code == OTHER)
    assert other.confirmed == 0 and other.minutes_to_half is None and len(other.not_reached) == other.total
    # the supporters of the other district who could not reach theirs, with the names
    assigned = {s for p in roll_of(store, "coordinator", drill, OTHER) for s in p["supporter_ids"]}
    assert len(other.supporters_short) == len(assigned) > 0
    assert rep.participants == 1
    data, pages = report_pdf(rep)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(data)
    text = fx.pdf_text(data)
    assert "訓練報告書" in text and "全員確認まで" in text and "車いすの方の避難に2人必要だった" in text
    assert f"{float(n):g} 分" in text and pages >= 3
    assert _fonts_embedded(pdf)
    csv = drills.report_csv(rep).decode("utf-8-sig").splitlines()
    assert csv[0].split(",") == list(drills.REPORT_CSV_HEADER)
    assert len(csv) == 1 + own.total + other.total
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "2", str(pdf), str(tmp_path / "report")],
                   check=True)
    _keep_shots(tmp_path, "report")


def test_a_report_names_only_what_the_viewer_may_see(store, drill):
    rep = drills.report(store, users()["member"], drill["drill_id"])
    assert [d.code for d in rep.districts] == [OWN]
    with pytest.raises(AccessDenied):
        drills.report(store, users()["public"], drill["drill_id"])


def test_csv_cells_are_never_formulas():
    assert drills._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and drills._cell("山田") == "山田"


# --- public counts and indicators -----------------------------------------------------------------------

def test_public_counts_are_suppressed_when_small_and_indicators_count_the_year(store, drill):
    member = users()["member"]
    people = roll_of(store, "member", drill)
    drills.record_marks(store, member, drill["drill_id"], [mark(p["person_id"], at=T0) for p in people[:3]],
                        now=T0 + dt.timedelta(minutes=5))
    summary = drills.public_summary(store, max_small=2, year=2026)
    row = next(r for r in summary["districts"] if r["code"] == OWN)
    assert row["held"] == 1 and row["persons"] == len(people) and row["confirmed"] == 3
    assert row["share"] == round(3 / len(people), 3)
    small = drills.public_summary(store, max_small=3, year=2026)
    row = next(r for r in small["districts"] if r["code"] == OWN)
    assert row["confirmed"] == "秘匿" and row["share"] is None
    assert json.dumps(summary, ensure_ascii=False).count("name") == len(summary["districts"])  # no persons
    other = roll_of(store, "coordinator", drill, OTHER)
    assert drills.fiscal_year_counts(store, 2026, municipality="02201") == {
        "drills_held": 1, "drill_participants": 1 + 3, "drill_supporters": 1, "persons_confirmed": 3,
        "persons_not_reached": len(people) + len(other) - 3}
    assert drills.fiscal_year_counts(store, 2026, municipality="02201", district=OTHER) == {
        "drills_held": 1, "drill_participants": 0, "drill_supporters": 0, "persons_confirmed": 0,
        "persons_not_reached": len(other)}
    assert drills.fiscal_year_counts(store, 2025, municipality="02201")["drills_held"] == 0
    assert drills.fiscal_year_counts(store, 2026, municipality="01100")["drills_held"] == 0
    # the activity indicators count the same rows, for the municipality and for a district
    context = indicators.Context(store, "02201")
    source = {name: indicators.SOURCES[name].compute for name in
              ("drills_held", "drill_participants", "drill_confirmed", "drill_not_reached")}
    assert source["drills_held"](context, 2026, None) == 1.0
    assert source["drills_held"](context, 2026, OWN) == source["drills_held"](context, 2026, OTHER) == 1.0
    assert source["drills_held"](context, 2026, "S01") == 0.0
    assert source["drills_held"](context, 2025, None) == 0.0
    assert source["drill_participants"](context, 2026, OWN) == 4.0
    assert source["drill_confirmed"](context, 2026, None) == 3.0
    assert source["drill_not_reached"](context, 2026, OWN) == len(people) - 3
    assert indicators.SOURCES["drill_not_reached"].people and not indicators.SOURCES["drills_held"].people


def test_drill_counts_follow_the_latest_mark_once_per_device_id_and_the_japanese_fiscal_year():
    register = pd.DataFrame({"person_id": ["a", "b", "c", "d"], "district_code": ["S1", "S1", "S1", "S2"],
                             "consent": ["consented", "ordinance", "refused", "consented"]})
    held = pd.DataFrame({"drill_id": ["D1", "D2", "D3"], "district_code": ["S1", "S1", "S2"],
                         "districts": ["S1;S2", "S1", "S2"],
                         # D2 starts on 1 April in Japan (31 March in UTC): fiscal 2027
                         "started_at": ["2026-06-07T01:00:00+00:00", "2027-03-31T16:00:00+00:00",
                                        "2027-03-31T14:00:00+00:00"]})
    marks = pd.DataFrame({
        "mark_id": ["MK1", "MK2", "MK3", "MK4", "MK5", "MK6"],
        "drill_id": ["D1", "D1", "D1", "D1", "D1", "D1"],
        "district_code": ["S1", "S1", "S1", "S1", "S1", "S2"],
        "person_id": ["a", "a", "b", "b", "c", "d"],
        "status": ["absent", "safe", "safe", "safe", "evacuated", "unconfirmed"],
        "marked_at": ["10:00", "10:05", "10:01", "10:01", "10:02", "10:03"],
        "received_at": ["x"] * 6, "marked_by": ["u1", "u1", "u2", "u2", "u2", "u3"],
        # MK4 is MK3 sent again (written twice by two servers): one mark
        "client_id": ["i1", "i2", "i3", "i3", "i5", "i6"]})
    got = indicators.drill_counts(held, marks, register, 2026)
    # D1 and D3 (23:00 JST on 31 March 2027, fiscal 2026); c (unconsented) joins D1's people by
    # being marked (a disaster-mode roll); d was marked 未確認: not reached, in D1 and (unmarked) in D3
    assert got == {"drills_held": 2, "drill_supporters": 3, "persons_confirmed": 3,
                   "persons_not_reached": 2, "drill_participants": 3 + 3}
    assert indicators.drill_counts(held, marks, register, 2026, "S1")["persons_not_reached"] == 0
    assert indicators.drill_counts(held, marks, register, 2027)["drills_held"] == 1
    empty = indicators.drill_counts(held.iloc[0:0], marks.iloc[0:0], register, 2026)
    assert set(empty.values()) == {0}


# --- paper marks from the copies (karte.services.copies.DrillRecords) ------------------------------------

def test_paper_ticks_enter_the_drill_once(store, drill):
    from karte.services.copies import PaperMark

    member = users()["member"]
    people = roll_of(store, "member", drill)
    at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    fresh = drills.start_drill(store, users()["coordinator"], [OWN], name="紙の訓練")
    ticks = [PaperMark("C000001", p["person_id"], OWN, tick, at, "m5")
             for p, tick in zip(people[:4], ("confirmed", "arrived", "confirmed", "arrived"), strict=True)]
    open_now = {d["drill_id"] for d in drills.open_drills(store, member, OWN)}
    assert open_now == {fresh["drill_id"], drill["drill_id"]}
    assert drills.record_paper_marks(store, member, fresh["drill_id"], ticks) == 4
    assert drills.record_paper_marks(store, member, fresh["drill_id"], ticks) == 0  # entered again
    st = drills.status(store, member, fresh["drill_id"], district=OWN)
    counts = {c["key"]: c["count"] for c in st["counts"]}
    assert counts["safe"] == 2 and counts["evacuated"] == 2


# --- the web --------------------------------------------------------------------------------------------

@pytest.fixture
def web(store, tmp_path):
    return fx.make_api(store, tmp_path / "web", basemap="none")


def test_pages_per_role(web, store, drill):
    anonymous, public = web.browser("anonymous"), web.browser("public")
    member, coordinator = web.browser("member"), web.browser("coordinator")
    did = drill["drill_id"]
    r = anonymous.get("/drills")
    assert r.status_code == 200 and "訓練" in r.text and "訓練を始める" not in r.text
    assert anonymous.get(f"/districts/{OWN}/drills", follow_redirects=False).status_code == 303
    assert public.get(f"/districts/{OWN}/drills", headers={"accept": "text/html"}).status_code == 403
    assert member.get(f"/districts/{OTHER}/drills", headers={"accept": "text/html"}).status_code == 403
    assert member.get(f"/districts/{OTHER}/drills/dashboard?drill={did}").status_code == 403
    page = coordinator.get("/drills").text
    assert "訓練を始める" in page and did in page and "災害時モードを開始する" not in page
    assert "災害時モードを開始する" in web.browser("staff").get("/drills").text
    mark_page = member.get(f"/districts/{OWN}/drills/mark?drill={did}")
    assert mark_page.status_code == 200 and "/static/drill-mark.js" in mark_page.text
    names = {p["name"] for p in roll_of(store, "member", drill)}
    assert all(name in mark_page.text for name in names)
    register = store.read("register")
    hidden = register[(register["district_code"] == OWN) & ~register["consent"].isin(SHAREABLE)]
    assert len(hidden) and not any(f'"{pid}"' in mark_page.text for pid in hidden["person_id"])
    assert all(f'data-person="{p["person_id"]}"' in mark_page.text for p in roll_of(store, "member", drill))
    dash = member.get(f"/districts/{OWN}/drills/dashboard?drill={did}")
    assert dash.status_code == 200 and "/static/drill-dashboard.js" in dash.text
    assert member.get(f"/districts/{OWN}/drills/dashboard").status_code == 422  # no drill given


def test_the_marks_api_checks_csrf_for_browsers_and_not_for_tokens(web, store, drill):
    did = drill["drill_id"]
    person = roll_of(store, "member", drill)[0]["person_id"]
    now = dt.datetime.now(dt.UTC)
    drills.end_drill(store, users()["coordinator"], did, now=now + dt.timedelta(minutes=1))
    fresh = drills.start_drill(store, users()["coordinator"], [OWN], name="今", started_at=now)
    body = {"drill": fresh["drill_id"], "marks": [mark(person, at=now)]}
    browser = web.browser("member")
    assert browser.post("/api/drills/marks", json=body).status_code == 403  # no token
    page = browser.get(f"/districts/{OWN}/drills/mark?drill={fresh['drill_id']}").text
    config = json.loads(re.search(r'id="drill-config">(.*?)</script>', page, re.S).group(1))
    r = browser.post("/api/drills/marks", json=body, headers={"X-CSRF-Token": config["csrf"]})
    assert r.status_code == 200 and r.json()["received"] == [body["marks"][0]["id"]]
    r = web.client("member").post("/api/drills/marks", json=body)  # bearer token: no CSRF needed
    assert r.status_code == 200 and r.json()["duplicates"] == [body["marks"][0]["id"]]
    assert web.client("anonymous").post("/api/drills/marks", json=body).status_code in (401, 403)
    assert web.client("public").post("/api/drills/marks", json=body).status_code == 403
    status = web.client("member").get(f"/api/districts/{OWN}/drills/status?drill={fresh['drill_id']}")
    assert status.status_code == 200 and status.json()["confirmed"] == 1
    other = web.client("member").get(f"/api/districts/{OTHER}/drills/status?drill={did}")
    assert other.status_code == 403


def test_starting_and_ending_a_drill_through_the_forms(web, store):
    coordinator = web.browser("coordinator")
    token = fx.csrf_of(coordinator.get("/drills").text)
    r = coordinator.post("/drills/start", data={"csrf": token, "name": "フォームの訓練", "kind": "evacuation",
                                                "districts": [OWN]}, follow_redirects=False)
    assert r.status_code == 303
    (row,) = drills.drills_for(store, users()["staff"])
    assert (row["name"], row["kind"], row["started_by"]) == ("フォームの訓練", "evacuation", "coordinator")
    ending = {"csrf": token, "drill": row["drill_id"]}
    assert coordinator.post("/drills/end", data={**ending, "csrf": "wrong"}).status_code == 403
    r = coordinator.post("/drills/end", data=ending, follow_redirects=False)
    assert r.status_code == 303 and drills.drills_for(store, users()["staff"])[0]["ended_by"] == "coordinator"
    member = web.browser("member")
    token = fx.csrf_of(member.get("/drills").text)
    form = {"csrf": token, "name": "x", "kind": "evacuation", "districts": [OWN]}
    r = member.post("/drills/start", data=form, headers={"accept": "text/html"})
    assert r.status_code == 403


def test_report_files_on_the_web(web, drill):
    r = web.client("coordinator").get(f"/drills/report.pdf?drill={drill['drill_id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert "訓練報告書" in fx.pdf_text(r.content)
    r = web.client("member").get(f"/drills/report.csv?drill={drill['drill_id']}")
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    lines = r.content.decode("utf-8-sig").splitlines()[1:]
    assert lines and all(line.split(",")[0].endswith(f"（{OWN}）") for line in lines)  # the member's only
    assert web.client("public").get(f"/drills/report.pdf?drill={drill['drill_id']}").status_code == 403
    assert web.client("anonymous").get(f"/drills/report.pdf?drill={drill['drill_id']}").status_code == 401


# --- the command line -------------------------------------------------------------------------------

def test_the_commands(store, tmp_path):
    from karte.cli import app

    runner = CliRunner()
    path = str(store.location)
    res = runner.invoke(app, ["drill", "start", OWN, OTHER, "--name", "CLIの訓練", "--store", path])
    assert res.exit_code == 0, res.output
    drill_id = re.search(r"DR\d{6}", res.output).group(0)
    res = runner.invoke(app, ["drill", "status", drill_id, "--json", "--store", path])
    assert res.exit_code == 0, res.output
    states = json.loads(res.stdout)
    assert [s["district"] for s in states] == [OWN, OTHER] and states[0]["confirmed"] == 0
    assert "points" not in states[0]
    res = runner.invoke(app, ["drill", "report", drill_id, "--out", str(tmp_path / "out"), "--store", path])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / f"{drill_id}-report.pdf").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "out" / f"{drill_id}-report.csv").is_file()
    res = runner.invoke(app, ["drill", "end", drill_id, "--store", path])
    assert res.exit_code == 0 and "終えました" in res.output
    res = runner.invoke(app, ["drill", "start", "S99", "--name", "x", "--store", path])
    assert res.exit_code == 1 and "S99" in res.output
    res = runner.invoke(app, ["disaster", "start", OWN, "--hours", "2", "--reason", "大雨", "--store", path])
    assert res.exit_code == 0 and "災害時モードを開始しました" in res.output, res.output
    res = runner.invoke(app, ["disaster", "status", "--json", "--store", path])
    assert [r["district_code"] for r in json.loads(res.stdout) if r["active"]] == [OWN]
    res = runner.invoke(app, ["disaster", "stop", "--store", path])
    assert res.exit_code == 0 and OWN in res.output
    res = runner.invoke(app, ["disaster", "stop", "--store", path])
    assert "ありません" in res.output


# --- helpers ------------------------------------------------------------------------------------------

def _fonts_embedded(pdf: Path) -> bool:
    done = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    rows = done.stdout.splitlines()[2:]
    return bool(rows) and all("IPAexGothic" in r and r.split()[-5:-3] == ["yes", "yes"] for r in rows)


def _keep_shots(folder: Path, prefix: str) -> None:
    shots = Path("/tmp/shots")
    shots.mkdir(exist_ok=True)
    for png in folder.glob(f"{prefix}*.png"):
        (shots / f"drills-{png.name}").write_bytes(png.read_bytes())
