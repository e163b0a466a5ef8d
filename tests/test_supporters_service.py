"""地域福祉サポーター, the service (karte.services.supporters) on the demo with its synthetic
supporters: matching with reasons, dispatch, activity and points, snow, counts, indicators."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import shapely
from conftest import copy_store

from karte import synthetic_supporters
from karte.domain.access import SUPPRESSED, Access, Level
from karte.domain.errors import AccessDenied, ConflictError, InputError, NotFoundError
from karte.domain.supporters import POINT_RULES, Activity, award, day_numbers
from karte.domain.supporters import Layer as L
from karte.services import supporters as service
from karte.store import GeoPackageStore

CSW = Access("csw", Level.COORDINATOR, route="test")
STAFF = Access("staff", Level.CITY_STAFF, route="test")
MEMBER = Access("member", Level.DISTRICT_MEMBER, district="S05", route="test")
PUBLIC = Access("anonymous", Level.PUBLIC, route="test")
WINTER_DAY = dt.date(2027, 1, 15)
SUMMER_DAY = dt.date(2026, 10, 15)



@pytest.fixture(autouse=True)
def _season_by_date(monkeypatch):
    """These tests pass their own dates (a winter day, a summer day): the season follows them."""
    monkeypatch.delenv("KARTE_WINTER", raising=False)

@pytest.fixture(scope="module")
def base(demo, tmp_path_factory):
    """The demo store with the topic's synthetic data (read only: tests that write copy it)."""
    path = tmp_path_factory.mktemp("supporters") / "karte.gpkg"
    copy_store(demo[1] / "karte.gpkg", path)
    synthetic_supporters.write_demo(GeoPackageStore(path), seed=2026)
    return path


@pytest.fixture
def store(base, tmp_path):
    return GeoPackageStore(copy_store(base, tmp_path / "karte.gpkg"))


@pytest.fixture(scope="module")
def shared(base):
    return GeoPackageStore(base)


# --- the demo data ------------------------------------------------------------------------------

def test_the_demo_has_supporters_requests_and_a_past_winter(shared):
    sups, reqs = shared.read(L.SUPPORTERS), shared.read(L.REQUESTS)
    assert len(sups) > 300 and len(reqs) > 200
    assert (sups["status"] == "registered").mean() > 0.7
    assert set(reqs["activity"]) >= {"snow", "rubbish", "shopping", "transport"}
    assert reqs["person_id"].notna().any() and reqs["person_id"].isna().any()  # register links and others
    acts = shared.read(L.ACTIVITIES)
    assert acts["winter"].any() and (~acts["winter"]).any()
    assert len(shared.read(L.SNOWFALLS)) >= 5
    book = shared.read(L.LEDGER)
    assert set(book["entry_kind"]) == {"earned", "redeemed", "reversal"}
    for _, rows in book.sort_values(["entry_on", "entry_id"]).groupby("supporter_id"):
        assert (rows["points"].cumsum() >= 0).all()  # nobody exchanged more than they had
    # the demo is deterministic
    again = synthetic_supporters.generate(shared.read("small_areas"), shared.read("register"),
                                          shared.read("cooperators"), seed=2026)
    assert again.supporters["name"].tolist() == sups["name"].tolist()
    assert again.ledger["points"].tolist() == book["points"].tolist()


def test_a_second_demo_build_keeps_the_append_only_ledger(store):
    before = store.read(L.LEDGER)
    service.record_snowfall(store, STAFF, fell_on=dt.date(2026, 11, 30), today=WINTER_DAY)
    synthetic_supporters.write_demo(store, seed=2026)
    after = store.read(L.LEDGER)
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))


# --- matching -----------------------------------------------------------------------------------

def test_winter_matches_snow_requests_and_summer_waits_for_them(shared):
    summer = service.match_requests(shared, CSW, winter=False, today=SUMMER_DAY)
    winter = service.match_requests(shared, CSW, winter=True, today=WINTER_DAY)
    assert all(s["activity"] != "snow" for s in summer.suggestions)
    assert any(w["activity"] == "snow" for w in summer.waiting)
    assert any(s["activity"] == "snow" for s in winter.suggestions)
    assert winter.counts["open"] > summer.counts["open"]
    for view in (summer, winter):
        assert view.counts["met"] + view.counts["unmet"] == view.counts["open"]


def test_every_suggestion_has_its_reasons_and_every_unmet_request_says_why(shared):
    view = service.match_requests(shared, CSW, winter=True, today=WINTER_DAY)
    assert view.suggestions and view.unmet
    for s in view.suggestions:
        assert s["reasons"][0].endswith("ができる")
        assert any(r.startswith("時間が重なる") for r in s["reasons"])
        assert any(r.startswith("徒歩") for r in s["reasons"])
        assert any(r.startswith("受け持ち") for r in s["reasons"])
    assert any(s["continuity"] and "以前にもこの方を担当（継続）" in s["reasons"] for s in view.suggestions)
    for u in view.unmet:
        assert u["reason"] in service.REASON_JA and u["reason_ja"] == service.REASON_JA[u["reason"]]
        assert u["detail_ja"]
    # where one more supporter would reach most unmet requests: a place per activity, gain >= 1
    assert view.recruit and all(r["gain"] >= 1 and r["place"] for r in view.recruit)
    unmet_kinds = {u["activity"] for u in view.unmet if u["reason"] != "no_location"}
    assert {r["activity"] for r in view.recruit} == unmet_kinds


def test_the_solver_beats_the_greedy_baseline_on_the_demo(shared):
    from gis.matching import greedy_match, match

    for winter, day in ((False, SUMMER_DAY), (True, WINTER_DAY)):
        inputs = service.match_inputs(shared, CSW, winter=winter, today=day)
        solved = match(inputs.requests, inputs.supporters, params=inputs.params)
        greedy = greedy_match(inputs.requests, inputs.supporters, params=inputs.params)
        same = match(inputs.requests, inputs.supporters, params=inputs.params, limit=greedy.met)
        assert solved.met >= greedy.met and same.met == greedy.met
        assert same.assignments["cost"].sum() <= greedy.assignments["cost"].sum() + 1e-6  # by construction
        assert same.total_distance_m < greedy.total_distance_m  # and measured: less walking


def test_a_district_match_uses_supporters_of_every_district(shared):
    view = service.match_requests(shared, CSW, district="S05", winter=True, today=WINTER_DAY)
    assert {s["district_code"] for s in view.suggestions} <= {"S05"}
    assert {u["district_code"] for u in view.unmet} <= {"S05"}
    others = {s["supporter_district"] for s in service.match_requests(
        shared, CSW, winter=True, today=WINTER_DAY).suggestions}
    assert len(others) > 1


def test_matching_is_for_coordinators_and_city_staff(shared):
    for who in (MEMBER, PUBLIC, Access("pref", Level.PREFECTURE)):
        with pytest.raises(AccessDenied):
            service.match_requests(shared, who)
    assert service.match_requests(shared, STAFF, district="S05", today=WINTER_DAY).counts["open"] > 0


def test_the_match_json_has_no_names_or_addresses(shared):
    view = service.match_requests(shared, CSW, district="S05", winter=True, today=WINTER_DAY)
    text = str(view.as_json())
    names = {s["requester_name"] for s in view.suggestions} | {s["supporter_name"] for s in view.suggestions}
    names |= {u["requester_name"] for u in view.unmet}
    assert names and not any(n and n in text for n in names)
    assert not any(s["address"] and s["address"] in text for s in view.suggestions)


# --- dispatch, activity, points -----------------------------------------------------------------

def _suggestion(store, activity: str, *, winter: bool):
    view = service.match_requests(store, CSW, winter=winter, today=WINTER_DAY if winter else SUMMER_DAY)
    return next(s for s in view.suggestions if s["activity"] == activity)


def test_dispatch_then_a_weekly_activity_earns_points_and_the_request_goes_on(store, monkeypatch):
    monkeypatch.setenv("KARTE_WINTER", "off")
    s = _suggestion(store, "rubbish", winter=False)
    d = service.dispatch(store, CSW, request_id=s["request_id"], supporter_id=s["supporter_id"],
                         today=SUMMER_DAY)
    assert d["status"] == "active" and d["decided_by"] == "csw" and "ゴミ出しができる" in d["reasons"]
    assert store.read_row(L.REQUESTS, s["request_id"], access=CSW)["status"] == "dispatched"
    with pytest.raises(ConflictError):  # a second dispatch of the same request
        service.dispatch(store, CSW, request_id=s["request_id"], supporter_id=s["supporter_id"],
                         today=SUMMER_DAY)
    done = service.record_activity(store, CSW, dispatch_id=d["dispatch_id"], done_on=dt.date(2026, 10, 20),
                                   visits=1, today=SUMMER_DAY + dt.timedelta(days=30))
    rule = POINT_RULES[Activity.RUBBISH]
    assert done["entry"]["points"] == rule.points and done["entry"]["entry_kind"] == "earned"
    assert done["entry"]["activity_id"] == done["activity"]["activity_id"]
    assert done["entry"]["fiscal_year"] == 2026 and done["activity"]["winter"] is False
    assert done["request"]["status"] == "dispatched"  # weekly: it goes on
    row = next(r for r in service.requests(store, CSW, district=s["district_code"])
               if r["request_id"] == s["request_id"])
    days = day_numbers(row["weekdays"])
    due = next(dt.date(2026, 10, 20) + dt.timedelta(days=k) for k in range(1, 8)
               if (dt.date(2026, 10, 20) + dt.timedelta(days=k)).weekday() in days)
    assert row["last_done_on"] == "2026-10-20" and row["next_ja"].startswith(f"次回 {due.month}月{due.day}日")
    skipped = service.record_activity(store, CSW, dispatch_id=d["dispatch_id"], done_on=dt.date(2026, 10, 27),
                                      done=False, note="不在", today=SUMMER_DAY + dt.timedelta(days=30))
    assert skipped["entry"] is None and skipped["activity"]["done"] is False
    service.end_dispatch(store, CSW, dispatch_id=d["dispatch_id"], reason="転居")
    assert store.read_row(L.REQUESTS, s["request_id"], access=CSW)["status"] == "open"
    with pytest.raises(ConflictError):
        service.record_activity(store, CSW, dispatch_id=d["dispatch_id"], done_on=dt.date(2026, 10, 28),
                                today=SUMMER_DAY + dt.timedelta(days=30))


def test_a_one_off_request_closes_when_done(store, monkeypatch):
    monkeypatch.setenv("KARTE_WINTER", "off")
    view = service.match_requests(store, CSW, winter=False, today=SUMMER_DAY)
    s = next(x for x in view.suggestions if x["recurrence"] == "once")
    d = service.dispatch(store, CSW, request_id=s["request_id"], supporter_id=s["supporter_id"],
                         today=SUMMER_DAY)
    done = service.record_activity(store, CSW, dispatch_id=d["dispatch_id"], done_on=dt.date(2026, 10, 16),
                                   hours=1.2, visits=1, today=SUMMER_DAY + dt.timedelta(days=30))
    assert done["request"]["status"] == "closed" and done["request"]["closed_on"] == "2026-10-16"
    assert store.read_row(L.DISPATCHES, d["dispatch_id"], access=CSW)["status"] == "ended"
    expected = award(s["activity"], hours=1.2, visits=1, winter=False).points
    assert done["entry"]["points"] == expected


def test_winter_snow_clearing_earns_the_season_multiplier(store, monkeypatch):
    monkeypatch.setenv("KARTE_WINTER", "on")
    s = _suggestion(store, "snow", winter=True)
    d = service.dispatch(store, CSW, request_id=s["request_id"], supporter_id=s["supporter_id"],
                         today=WINTER_DAY)
    done = service.record_activity(store, CSW, dispatch_id=d["dispatch_id"], done_on=dt.date(2026, 12, 3),
                                   hours=1.0, today=WINTER_DAY)
    assert done["activity"]["winter"] is True
    assert done["entry"]["points"] == 150 and "冬期1.5" in done["entry"]["rule"]  # 100 pt/h × 1 h × 1.5
    assert done["request"]["status"] == "dispatched"  # every snowfall: it goes on


def test_an_infeasible_pair_is_not_dispatched(store):
    view = service.match_requests(store, CSW, winter=True, today=WINTER_DAY)
    s = next(x for x in view.suggestions if x["activity"] == "snow")
    sups = store.read(L.SUPPORTERS)
    wrong = sups[(sups["status"] == "registered") & ~sups["activities"].str.contains("snow")].iloc[0]
    with pytest.raises(InputError, match="派遣できません"):
        service.dispatch(store, CSW, request_id=s["request_id"], supporter_id=wrong["supporter_id"],
                         today=WINTER_DAY)
    assert store.read_row(L.REQUESTS, s["request_id"], access=CSW)["status"] == "open"
    with pytest.raises(AccessDenied):
        service.dispatch(store, MEMBER, request_id=s["request_id"], supporter_id=s["supporter_id"])


def test_balance_is_the_sum_of_the_entries(shared):
    book = service.ledger(shared, CSW)
    assert len(book) > 100
    frame = pd.DataFrame(book)
    for sid, rows in frame.groupby("supporter_id"):
        assert service.balance(service.ledger(shared, CSW, supporter_id=sid)) == int(rows["points"].sum())
    assert service.balance(book) == int(shared.read(L.LEDGER)["points"].sum())


def test_a_correction_is_a_reversing_entry(store):
    book = pd.DataFrame(service.ledger(store, CSW))
    earned = book[book["entry_kind"] == "earned"].iloc[3]
    sid = earned["supporter_id"]
    before = service.balance(service.ledger(store, CSW, supporter_id=sid))
    rev = service.reverse_entry(store, STAFF, entry_id=earned["entry_id"], note="重複", today=SUMMER_DAY)
    assert rev["entry_kind"] == "reversal" and rev["points"] == -int(earned["points"])
    assert rev["reverses"] == earned["entry_id"] and rev["recorded_by"] == "staff"
    after = service.ledger(store, CSW, supporter_id=sid)
    assert service.balance(after) == before - int(earned["points"])
    original = next(e for e in after if e["entry_id"] == earned["entry_id"])
    assert original["points"] == earned["points"] and original["entry_kind"] == "earned"  # unchanged
    with pytest.raises(ConflictError):
        service.reverse_entry(store, STAFF, entry_id=earned["entry_id"], note="again")
    with pytest.raises(InputError):
        service.reverse_entry(store, STAFF, entry_id=rev["entry_id"], note="undo the undo")
    with pytest.raises(InputError):
        service.reverse_entry(store, STAFF, entry_id=earned["entry_id"], note=" ")


def test_the_store_refuses_to_change_an_entry(store):
    entry = store.read_row(L.LEDGER, "PT000001", access=CSW)
    for who in (CSW, STAFF):
        with pytest.raises(AccessDenied):
            store.update_row(L.LEDGER, "PT000001", {"points": 1}, version=entry["version"], access=who)
    assert store.read_row(L.LEDGER, "PT000001", access=CSW)["points"] == entry["points"]


def test_redeeming_needs_the_balance(store):
    book = pd.DataFrame(service.ledger(store, CSW))
    sid = book.groupby("supporter_id")["points"].sum().idxmax()
    have = service.balance(service.ledger(store, CSW, supporter_id=sid))
    with pytest.raises(InputError, match="残高"):
        service.redeem_points(store, CSW, supporter_id=sid, points=have + 1)
    entry = service.redeem_points(store, CSW, supporter_id=sid, points=100, note="商品券", today=SUMMER_DAY)
    assert entry["points"] == -100 and entry["entry_kind"] == "redeemed"
    assert service.balance(service.ledger(store, CSW, supporter_id=sid)) == have - 100


def test_the_statement_adds_up(shared):
    book = pd.DataFrame(service.ledger(shared, CSW))
    both = book.groupby("supporter_id")["fiscal_year"].nunique()
    sid = both[both > 1].index[0]
    data = service.statement(shared, CSW, supporter_id=sid, fiscal_year=2026, today=SUMMER_DAY)
    mine = book[book["supporter_id"] == sid]
    assert data.opening == int(mine.loc[mine["fiscal_year"] < 2026, "points"].sum()) > 0
    assert data.closing == data.opening + sum(data.totals.values()) == int(mine["points"].sum())
    running = data.opening
    for line in data.lines:
        running += line["points"]
        assert line["balance"] == running
    assert running == data.closing


# --- snow ---------------------------------------------------------------------------------------

def test_after_a_snowfall_the_snow_requests_not_cleared_are_listed(store, monkeypatch):
    monkeypatch.setenv("KARTE_WINTER", "on")
    today = dt.date(2026, 12, 10)
    page = service.snow_page(store, CSW, district="S05", today=today)
    assert page["after_snowfall"] == [] and not page["this_winter"]  # only last winter's snowfalls
    assert all(s["winter_reach_m"] == round(float(s["reach_m"]) * 0.7) for s in page["supporters"])
    service.record_snowfall(store, CSW, fell_on=dt.date(2026, 12, 8), depth_cm=25, today=today)
    page = service.snow_page(store, CSW, district="S05", today=today)
    assert page["this_winter"] and page["last_snowfall"]["fell_on"] == "2026-12-08"
    snow = {r["request_id"] for r in page["requests"] if r["status"] in ("open", "dispatched")}
    assert {r["request_id"] for r in page["after_snowfall"]} == snow and snow
    s = page["snow_suggestions"][0]
    d = service.dispatch(store, CSW, request_id=s["request_id"], supporter_id=s["supporter_id"], today=today)
    service.record_activity(store, CSW, dispatch_id=d["dispatch_id"], done_on=dt.date(2026, 12, 9), hours=1,
                            today=today)
    page = service.snow_page(store, CSW, district="S05", today=today)
    assert s["request_id"] not in {r["request_id"] for r in page["after_snowfall"]}
    with pytest.raises(InputError):
        service.record_snowfall(store, CSW, fell_on=dt.date(2026, 12, 11), today=today)


# --- who sees what ------------------------------------------------------------------------------

def test_district_members_see_their_own_district_only(shared):
    assert {r["district_code"] for r in service.supporters(shared, MEMBER)} == {"S05"}
    assert {r["district_code"] for r in service.requests(shared, MEMBER)} == {"S05"}
    with pytest.raises(AccessDenied):
        service.requests(shared, MEMBER, district="S06")
    for fn in (service.supporters, service.requests):
        with pytest.raises(AccessDenied):
            fn(shared, PUBLIC)
    page = service.supporters_page(shared, MEMBER, district="S06", max_small=2)
    assert page["district"] == "S05" and "match" not in page


def test_public_counts_are_suppressed_and_add_up(shared):
    public = service.public_counts(shared, PUBLIC, max_small=2, today=SUMMER_DAY)
    staff = service.public_counts(shared, STAFF, max_small=2, today=SUMMER_DAY)
    assert public["suppressed"] and not staff["suppressed"]
    sups = shared.read(L.SUPPORTERS)
    assert staff["city"]["supporters"] == int((sups["status"] == "registered").sum())
    assert sum(r["supporters"] for r in staff["rows"]) == staff["city"]["supporters"]
    hidden = 0
    for p, s in zip(public["rows"], staff["rows"], strict=True):
        for key, value in s.items():
            if isinstance(value, int) and 1 <= value <= 2:
                assert p[key] == SUPPRESSED
                hidden += 1
            elif key != "district_name":
                assert p[key] == value
    assert hidden > 0
    labels = {v for r in public["rows"] for v in (r["district_name"], r["district_code"])}
    assert not any(isinstance(v, str) and v != SUPPRESSED and v not in labels
                   for r in public["rows"] for v in r.values())


def test_fiscal_year_counts_for_the_indicators(shared):
    got = service.fiscal_year_counts(shared, 2025, municipality="02201")
    acts = shared.read(L.ACTIVITIES)
    in_year = acts[(acts["done_on"] >= "2025-04-01") & (acts["done_on"] <= "2026-03-31") & acts["done"]]
    assert got["activities"] == len(in_year) > 0
    assert got["snow_activities"] == int((in_year["activity"] == "snow").sum()) > 0
    book = shared.read(L.LEDGER)
    year = book[book["fiscal_year"] == 2025]
    assert got["points"] == int(year.loc[year["entry_kind"].isin(["earned", "reversal"]), "points"].sum())
    assert got["points_redeemed"] == -int(year.loc[year["entry_kind"] == "redeemed", "points"].sum())
    assert set(got) >= {"supporters_registered", "activities", "points"}
    assert all(isinstance(v, int) for v in got.values())
    later = service.fiscal_year_counts(shared, 2026, municipality="02201")
    assert later["supporters_registered"] >= got["supporters_registered"]
    assert service.fiscal_year_counts(shared, 2026, municipality="99999") == dict.fromkeys(later, 0)
    # the activity indicators count the same rows, for the municipality or one district
    from karte import indicators

    context = indicators.Context(shared, "02201")
    assert indicators.SOURCES["supporter_activities"].compute(context, 2025, None) == got["activities"]
    assert indicators.SOURCES["volunteer_points"].compute(context, 2025, None) == got["points"]
    by_district = [indicators.SOURCES["supporter_activities"].compute(context, 2025, code)
                   for code in sorted(set(acts["district_code"].dropna()))]
    assert sum(by_district) == got["activities"]


def test_evacuation_unmatched_explains_s01(shared):
    found = service.evacuation_unmatched(shared, CSW, district="S01")
    assert found["counts"] and sum(found["counts"].values()) >= len(found["persons"]) > 0
    assert found["text"].startswith("支援者の候補がいない要支援者")
    assert all(p["district_code"] == "S01" and p["detail_ja"] for p in found["persons"])
    staff = service.evacuation_unmatched(shared, STAFF, district="S01")
    assert sum(staff["counts"].values()) >= sum(found["counts"].values())  # staff: every entry
    with pytest.raises(AccessDenied):
        service.evacuation_unmatched(shared, MEMBER)


def test_saving_a_supporter_checks_the_values_and_versions(store):
    point = shapely.Point(-8000, 91800)
    row = service.save_supporter(store, CSW, {"name": "新人 太郎", "activities": "snow;watching",
                                              "hours": "07:00-09:00", "season": "winter", "reach_m": 600.0,
                                              "capacity": 2}, point=point)
    assert row["supporter_id"].startswith("SP") and row["status"] == "applied" and row["district_code"]
    assert row["menu_kinds"] == "watching;evacuation_snow" and row["updated_by"] == "csw"
    changed = service.save_supporter(store, CSW, {**{k: row[k] for k in service.SUPPORTER_FIELDS},
                                                  "status": "registered", "registered_on": "2026-12-01"},
                                     supporter_id=row["supporter_id"], version=row["version"])
    assert changed["status"] == "registered" and changed["status_since"]
    with pytest.raises(ConflictError):  # the old version
        service.save_supporter(store, CSW, {**{k: row[k] for k in service.SUPPORTER_FIELDS}, "notes": "x"},
                               supporter_id=row["supporter_id"], version=row["version"])
    bad_values = ({"activities": "knitting"}, {"hours": "12:00-09:00"},
                  {"season": "non_winter", "activities": "snow"})
    for bad in bad_values:
        with pytest.raises(InputError):
            service.save_supporter(store, CSW, {"name": "x", "activities": "watching", **bad}, point=point)
    with pytest.raises(NotFoundError):
        service.supporter_detail(store, CSW, supporter_id="SP999999")



def test_a_store_without_the_topic_answers_not_found(tmp_path):
    empty = GeoPackageStore(tmp_path / "empty.gpkg")
    with pytest.raises(NotFoundError, match="SP000001"):
        service.supporter_detail(empty, CSW, supporter_id="SP000001")
    with pytest.raises(NotFoundError):
        service.statement(empty, CSW, supporter_id="SP000001", fiscal_year=2026)
    assert service.ledger(empty, CSW) == []
    assert service.fiscal_year_counts(empty, 2026, municipality="02201") == {
        "supporters_registered": 0, "supporters_new": 0, "requests_received": 0, "requests_dispatched": 0,
        "activities": 0, "activity_hours": 0, "snow_activities": 0, "points": 0, "points_redeemed": 0}


def test_a_cooperator_registers_with_their_roster_entry(store):
    coops = store.read("cooperators")
    coop = coops[coops["role"] == "welfare_supporter"].iloc[0]
    row = service.save_supporter(store, STAFF, {"cooperator_id": coop["cooperator_id"], "activities": "snow"})
    assert row["name"] == coop["name"] and row["phone"] == coop["phone"]
    assert row["district_code"] == coop["district_code"] and row["geometry"].distance(coop.geometry) < 0.01
    with pytest.raises(InputError, match="共助協力者の名簿"):
        service.save_supporter(store, STAFF, {"cooperator_id": "C99999", "activities": "snow"})
    with pytest.raises(InputError, match="住所"):
        service.save_supporter(store, STAFF, {"name": "どこにも", "activities": "snow"})
