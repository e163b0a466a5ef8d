"""Households of concern and safety-net meetings through the service, on both stores.

The chain 気づき → つなぐ → 共有 → 支援 as the service records it (each write as the acting user,
each read as the viewer, both in the access log), a meeting's counts in its fiscal year (what the
activity indicators read), the register changed by a confirmed supporter (and the gap it closes),
district members' evacuation decisions waiting for a coordinator, two people deciding at once
(nothing lost: both kept, or one told), unconsented register entries never shown below city staff
(issue 16 item 9), the public counts suppressed when small, and the printed meeting sheet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import subprocess
import threading

import pytest
from test_care_support import (
    COORD,
    COORD2,
    MEMBER,
    OTHER,
    OTHER_MEMBER,
    OWN,
    PREFECTURE,
    PUBLIC_USER,
    STAFF,
    TODAY,
    concern_form,
    consented,
    cooperators,
    empty_care_tables,
    gpkg_copy,
    meeting_form,
    new_case,
    postgis_demo,
    unconsented,
)

from karte import snapshot
from karte.domain.access import SUPPRESSED
from karte.domain.care import LAYERS as CARE_LAYERS
from karte.domain.care import CareLayer, japanese_date
from karte.domain.errors import AccessDenied, ConflictError, NotFoundError
from karte.domain.layers import LAYERS, MUNICIPALITY, PERSONAL_LAYERS, RECORD_LAYERS, split_list
from karte.services import care
from karte.services.kartes import gap_rows

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow  # over the session's demo build


@pytest.fixture(params=["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)])
def store(request, demo, tmp_path):
    """The demo on a GeoPackage copy, or imported into this session's PostGIS database."""
    if request.param == "gpkg":
        yield gpkg_copy(demo, tmp_path)
        snapshot.clear()
        return
    admin, app = request.getfixturevalue("pg_admin_url"), request.getfixturevalue("pg_app_url")
    pg = postgis_demo(demo, admin, app)
    yield pg
    pg.close()
    empty_care_tables(admin)  # the shared reset of pg_fixtures does not know the care tables
    snapshot.clear()


def _log(store, actor: str):
    log = store.audit_log()
    return log[log["actor"] == actor]


# --- the registry -----------------------------------------------------------------------------------

def test_the_care_layers_are_personal_record_layers_of_a_municipality_and_a_district():
    assert {str(s.name) for s in CARE_LAYERS} == {str(layer) for layer in CareLayer}
    for entry in CARE_LAYERS:
        assert entry.name in PERSONAL_LAYERS and entry.name in RECORD_LAYERS and LAYERS[entry.name] is entry
        assert {MUNICIPALITY, "district_code"} <= set(entry.column_names)
        assert entry.district_column == "district_code"
        assert set(entry.writers) == set(entry.updaters) == {"city_staff", "coordinator", "district_member"}
    assert LAYERS[CareLayer.CONCERNS].geometry == "Point"


def test_dates_are_shown_in_the_era_with_the_western_date():
    assert japanese_date("2027-02-10") == "令和9年2月10日（2027-02-10）"
    assert japanese_date("2019-05-01") == "令和元年5月1日（2019-05-01）"
    assert japanese_date("2019-04-30", short=True) == "H31.4.30（2019-04-30）"
    assert japanese_date(None) == "" and japanese_date("?") == "?"


# --- the chain, read and written as the users -------------------------------------------------------------

def test_noticing_connecting_sharing_supporting_as_the_acting_users(store):
    case = new_case(store, MEMBER)
    assert case["concern_id"] == "CN000001" and case["updated_by"] == MEMBER.user
    assert case[MUNICIPALITY] == "02201" and case["status"] == "open"
    form = {"concern_id": case["concern_id"], "referred_on": "2026-11-21", "to_kind": "csw",
            "to_name": "CSW 工藤",
            "from_role": "welfare_commissioner"}
    referral = care.record_referral(store, MEMBER, OWN, form, today=TODAY)
    v = care.set_referral_status(store, COORD, OWN, {"referral_id": referral["referral_id"],
                                                     "status": "accepted",
                                                     "version": str(referral["version"])}, today=TODAY)
    with pytest.raises(care.FormError, match="変えられません"):  # 受理 -> 依頼中 is no step
        care.set_referral_status(store, COORD, OWN, {"referral_id": referral["referral_id"], "status": "open",
                                                     "version": str(v)}, today=TODAY)
    with pytest.raises(ConflictError):  # the page's version is stale
        care.set_referral_status(store, MEMBER, OWN, {"referral_id": referral["referral_id"],
                                                      "status": "closed",
                                                      "version": str(referral["version"])}, today=TODAY)
    result = care.record_meeting(store, MEMBER, OWN, meeting_form({case["concern_id"]: {
        "watch_who": "山田 弘", "watch_freq": "weekly", "snow_who": "町会の有志",
        "responsible": "民生委員 高橋",
        "next_review": "2026-12-20", "note": "月1回は顔を見る"}}), today=TODAY)
    assert result.meeting["participants"] == 7 and result.meeting["households"] == 1
    assert [d["kind"] for d in result.decisions] == ["shared", "watching", "snow", "responsible"]
    action = care.record_action(store, COORD, OWN, {"concern_id": case["concern_id"],
                                                    "acted_on": "2026-11-28",
                                                    "kind": "visit", "actor_role": "csw", "note": "訪問した",
                                                    "next_review": "2026-12-10"}, today=TODAY)
    assert action["updated_by"] == COORD.user

    [seen] = care.case_list(store, MEMBER, district=OWN, today=TODAY)
    assert seen["responsible"] == "民生委員 高橋"
    assert seen["next_review"] == "2026-12-10"  # recorded last: the visit's, though earlier
    assert seen["last_visit"] == "2026-11-28" and seen["last_meeting"] == "2026-11-25"
    assert "見守り: 山田 弘（週1回）" in seen["roles"] and not seen["overdue"]
    assert care.case_list(store, COORD, today=dt.date(2026, 12, 11))[0]["overdue"]

    stale = store.read_row(CareLayer.CONCERNS, case["concern_id"], access=MEMBER)["version"]
    care.close_case(store, MEMBER, OWN, {"concern_id": case["concern_id"], "version": str(stale),
                                         "close_reason": "connected", "closed_on": "2026-11-29"}, today=TODAY)
    with pytest.raises(ConflictError):  # closed meanwhile: the second is told, nothing written
        care.close_case(store, COORD, OWN, {"concern_id": case["concern_id"], "version": str(stale),
                                            "close_reason": "solved", "closed_on": "2026-11-30"}, today=TODAY)
    row = store.read_row(CareLayer.CONCERNS, case["concern_id"], access=COORD)
    assert (row["status"], row["close_reason"], row["updated_by"]) == ("closed", "connected", MEMBER.user)
    with pytest.raises(care.FormError, match="終了しています"):
        care.record_action(store, MEMBER, OWN, {"concern_id": case["concern_id"], "acted_on": "2026-11-30",
                                                "kind": "phone"}, today=TODAY)

    writes = _log(store, MEMBER.user)
    writes = writes[writes["action"] != "read"]
    assert writes[["level", "route", "action", "layer", "district", "rows"]].values.tolist() == [
        ["district_member", "test:care", "append", "care_concerns", OWN, 1],
        ["district_member", "test:care", "append", "care_referrals", OWN, 1],
        ["district_member", "test:care", "append", "care_meetings", OWN, 1],
        ["district_member", "test:care", "append", "care_decisions", OWN, 4],
        ["district_member", "test:care", "update", "care_concerns", OWN, 1]]
    reads = _log(store, COORD.user)
    assert {"care_concerns", "care_decisions", "care_actions"} <= set(reads.loc[reads["action"] == "read",
                                                                                "layer"])


def test_a_form_with_problems_lists_all_of_them_and_writes_nothing(store):
    bad = concern_form(noticed_on="2027-13-01", kinds=[], urgency="urgent", lat="99", lon="140.7")
    with pytest.raises(care.FormError) as info:
        care.record_concern(store, MEMBER, OWN, bad, today=TODAY)
    problems = "\n".join(info.value.problems)
    for text in ("気づいた日", "気になること", "緊急度", "緯度"):
        assert text in problems
    with pytest.raises(care.FormError, match="未来"):
        care.record_concern(store, MEMBER, OWN, concern_form(noticed_on="2026-12-01"), today=TODAY)
    with pytest.raises(care.FormError, match="区域の外"):  # a point in another district
        care.record_concern(store, MEMBER, OWN, concern_form(lat="40.90", lon="140.60"), today=TODAY)
    assert CareLayer.CONCERNS not in store.layers() or store.read_records(CareLayer.CONCERNS) == []


def test_a_household_is_placed_by_its_address_the_map_or_its_register_entry(store):
    person = consented(store)[0]
    linked = new_case(store, MEMBER, household="名簿の方", person_id=person["person_id"])
    assert linked["person_id"] == person["person_id"] and linked["key_code"] == person["key_code"]
    assert linked["geometry"].distance(store.read_row("register", person["person_id"],
                                                      access=STAFF)["geometry"]) < 1
    by_address = new_case(store, MEMBER, household="住所の方", address=person["address"])
    assert by_address["location_precision"] in ("town", "exact") and by_address["key_code"]
    helper = cooperators(store)[0]
    named = new_case(store, MEMBER, household="協力者が気づいた方", noticed_by_name=helper["name"],
                     noticed_by_role="welfare_commissioner")
    assert named["noticed_by_cooperator_id"] == helper["cooperator_id"]
    nowhere = new_case(store, MEMBER, household="場所の分からない方")
    assert nowhere["location_precision"] == "none" and nowhere.get("geometry") is None
    with pytest.raises(care.FormError, match="名簿"):  # another district's entry, or an unconsented one
        new_case(store, MEMBER, person_id=consented(store, OTHER)[0]["person_id"])
    with pytest.raises(care.FormError, match="名簿"):
        new_case(store, MEMBER, person_id=unconsented(store)[0]["person_id"])


# --- who sees what ---------------------------------------------------------------------------------------

def test_members_read_and_write_their_own_district_only_and_the_public_nothing(store):
    own = new_case(store, MEMBER)
    other = new_case(store, OTHER_MEMBER, district=OTHER, household="隣の地区の世帯")
    with pytest.raises(AccessDenied):
        care.record_concern(store, MEMBER, OTHER, concern_form(), today=TODAY)
    with pytest.raises(AccessDenied):  # the store refuses it too (PostGIS: row-level security)
        store.append_rows(CareLayer.CONCERNS, [{"district_code": OTHER, "household": "x"}], access=MEMBER)
    with pytest.raises(AccessDenied):
        care.read_care(store, MEMBER, district=OTHER)
    assert [c["concern_id"] for c in care.read_care(store, MEMBER).concerns] == [own["concern_id"]]
    with pytest.raises(NotFoundError):  # another district's case by its id: not found, not named
        care.record_action(store, MEMBER, OWN, {"concern_id": other["concern_id"], "acted_on": "2026-11-30",
                                                "kind": "visit"}, today=TODAY)
    assert {c["concern_id"] for c in care.read_care(store, COORD).concerns} == {own["concern_id"],
                                                                                 other["concern_id"]}
    for outsider in (PUBLIC_USER, PREFECTURE):
        with pytest.raises(AccessDenied):
            care.read_care(store, outsider)
        assert store.read(CareLayer.CONCERNS, access=outsider).empty
    with pytest.raises(AccessDenied):
        care.overview_page(store, MEMBER, today=TODAY)


def test_no_output_below_city_staff_carries_an_unconsented_persons_id(store):
    hidden = unconsented(store)[0]
    supporter = cooperators(store)[0]["cooperator_id"]
    case = new_case(store, STAFF, household="同意のない方の世帯", person_id=hidden["person_id"])
    care.record_meeting(store, STAFF, OWN, meeting_form({case["concern_id"]: {
        "evac_person": hidden["person_id"], "evac_supporter": supporter, "watch_who": "山田"}}), today=TODAY)
    pid = hidden["person_id"]
    assert case.get("geometry") is None and case["address"] is None  # nothing copied from the entry
    staff_cases = care.case_list(store, STAFF, district=OWN, today=TODAY)
    assert staff_cases[0]["person_id"] == pid  # city staff: the link and the decision
    assert any("避難支援" in d for d in care.meeting_list(store, STAFF)[0]["discussed"][0]["decisions"])
    for viewer in (COORD, MEMBER):
        outputs = [care.case_list(store, viewer, today=TODAY), care.meeting_list(store, viewer),
                   care.ledger_table(store, viewer, "concerns"), care.ledger_table(store, viewer, "meetings"),
                   [dataclasses.asdict(care.read_care(store, viewer, district=OWN))["decisions"]]]
        text = json.dumps(outputs, ensure_ascii=False, default=str)
        assert pid not in text and hidden["name"] not in text, viewer.level
        assert str(hidden["address"]).removeprefix("青森県青森市") not in text
        decisions = care.meeting_list(store, viewer)[0]["discussed"][0]["decisions"]
        assert not any("避難支援" in d for d in decisions) and any("見守り" in d for d in decisions)
        page = care.district_care_page(store, OWN, viewer, basemap=_basemap(), today=TODAY)
        assert pid not in json.dumps(page, ensure_ascii=False, default=str)
    overview = care.overview_page(store, COORD, today=TODAY)
    assert pid not in json.dumps(overview, ensure_ascii=False, default=str)


def _basemap():
    from karte.render.webmap import Basemap

    return Basemap.named("none")


# --- a meeting in the indicators, and in the register -----------------------------------------------------

def test_a_meeting_counts_in_its_fiscal_year(store):
    case = new_case(store, MEMBER)
    late = dt.date(2027, 4, 2)
    care.record_meeting(store, MEMBER, OWN, meeting_form({case["concern_id"]: {"watch_who": "山田"}},
                                                         held_on="2027-03-31", households_other="2"),
                                                         today=late)
    care.record_meeting(store, COORD, OWN, meeting_form({}, held_on="2027-04-01", attendees_csw="",
                                                        attendees_neighbourhood_staff="3",
                                                        attendees_welfare_commissioner="1", participants="6"),
                        today=late)
    r6 = care.fiscal_year_counts(store, 2026, municipality="02201")
    r7 = care.fiscal_year_counts(store, 2027, municipality="02201")
    assert r6 == {"meetings_held": 1, "participants": 7, "households_discussed": 3, "cases_opened": 1,
                  "cases_closed": 0}
    assert r7 == {"meetings_held": 1, "participants": 6, "households_discussed": 0, "cases_opened": 0,
                  "cases_closed": 0}
    assert care.fiscal_year_counts(store, 2026, municipality="01100")["meetings_held"] == 0
    # the activity indicators count the same rows (the municipality, and the district)
    from karte import indicators

    context = indicators.Context(store, "02201")
    source = indicators.SOURCES["safety_net_meetings"].compute
    assert source(context, 2026, None) == source(context, 2026, OWN) == 1.0
    assert source(context, 2026, OTHER) == 0.0
    assert indicators.SOURCES["safety_net_participants"].compute(context, 2026, None) == 7.0
    assert indicators.SOURCES["concerns_noticed"].compute(context, 2026, OWN) == 1.0
    assert [m["held_on"] for m in care.meeting_list(store, COORD, year=2026)] == ["2027-03-31"]
    with pytest.raises(care.FormError, match="参加者数"):
        care.record_meeting(store, MEMBER, OWN, meeting_form({}, participants="3"), today=TODAY)


def test_a_supporter_confirmed_at_a_meeting_closes_the_persons_gap(store):
    person = consented(store, supported=False)[0]
    helper = next(c for c in cooperators(store) if "evacuation" in split_list(c.get("help_kinds")))
    before_flag = snapshot.current(store).person_flag(person["person_id"])
    before = {g["key"]: g["count"] for g in gap_rows(snapshot.current(store), OWN)}
    assert before_flag["no_supporter"]
    case = new_case(store, COORD, household="支援者のいない方", person_id=person["person_id"])
    result = care.record_meeting(store, COORD, OWN, meeting_form({case["concern_id"]: {
        "evac_supporter": helper["name"]}}), today=TODAY)  # a name typed on a tablet
    assert result.applied == 1 and result.decisions[-1]["register_status"] == "applied"
    row = store.read_row("register", person["person_id"], access=STAFF)
    assert split_list(row["supporter_ids"]) == [helper["cooperator_id"]] and row["updated_by"] == COORD.user
    after = {g["key"]: g["count"] for g in gap_rows(snapshot.current(store), OWN)}
    assert after["no_supporter"] == before["no_supporter"] - 1
    assert not snapshot.current(store).person_flag(person["person_id"])["no_supporter"]
    # changed: the old supporter goes, the new one comes
    other = next(c for c in cooperators(store) if c["cooperator_id"] != helper["cooperator_id"])
    care.record_meeting(store, COORD, OWN, meeting_form({case["concern_id"]: {
        "evac_supporter": other["cooperator_id"], "evac_action": "changed",
        "evac_replaces": helper["cooperator_id"]}}), today=TODAY)
    assert split_list(store.read_row("register", person["person_id"], access=STAFF)["supporter_ids"]) == [
        other["cooperator_id"]]
    log = _log(store, COORD.user)
    assert len(log[(log["layer"] == "register") & (log["action"] == "update")]) == 2


def test_a_district_members_evacuation_decision_waits_for_a_coordinator(store):
    person = consented(store, supported=False)[0]
    helper = cooperators(store)[0]
    case = new_case(store, MEMBER, person_id=person["person_id"])
    result = care.record_meeting(store, MEMBER, OWN, meeting_form({case["concern_id"]: {
        "evac_supporter": helper["cooperator_id"]}}), today=TODAY)
    assert (result.applied, result.pending) == (0, 1)
    assert not split_list(store.read_row("register", person["person_id"], access=STAFF)["supporter_ids"])
    page = care.district_care_page(store, OWN, MEMBER, basemap=_basemap(), today=TODAY)
    assert page["flags"]["pending"] == 1 and not page["planner"]
    overview = care.overview_page(store, COORD, today=TODAY)
    [waiting] = overview["pending"]
    assert waiting["person"] == person["name"] and waiting["by"] == MEMBER.user
    with pytest.raises(AccessDenied):
        care.decide_pending(store, MEMBER, {"decision_id": waiting["decision_id"], "approve": "1"})
    done = care.decide_pending(store, COORD, {"decision_id": waiting["decision_id"], "approve": "1"})
    assert done["register_status"] == "applied"
    assert split_list(store.read_row("register", person["person_id"], access=STAFF)["supporter_ids"]) == [
        helper["cooperator_id"]]
    with pytest.raises(ConflictError):  # applied already: the second coordinator is told
        care.decide_pending(store, COORD2, {"decision_id": waiting["decision_id"], "approve": "0"})
    assert care.overview_page(store, COORD, today=TODAY)["pending"] == []


# --- two people at the same moment -------------------------------------------------------------------------

def _at_once(*calls):
    """Run the calls in threads released together; (results, errors) in call order."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # the test inspects it
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results, errors


def test_two_users_deciding_on_one_household_at_once_both_are_kept(store):
    case = new_case(store, MEMBER)
    cid = case["concern_id"]
    a = meeting_form({cid: {"watch_who": "山田", "next_review": "2026-12-10"}})
    b = meeting_form({cid: {"watch_who": "佐藤", "next_review": "2026-12-24"}}, place="支所")
    _, errors = _at_once(lambda: care.record_meeting(store, MEMBER, OWN, a, today=TODAY),
                               lambda: care.record_meeting(store, COORD, OWN, b, today=TODAY))
    assert errors == [None, None]
    stored = care.read_care(store, STAFF, district=OWN)
    watchers = {d["who_name"] for d in stored.decisions if d["kind"] == "watching"}
    assert len(stored.meetings) == 2 and watchers == {
        "山田", "佐藤"}
    # someone who opened the form before both is told, and their decisions are kept as well
    late = care.record_meeting(store, STAFF, OWN, meeting_form({cid: {"watch_who": "高橋", "seen": ""}}),
                               today=TODAY)
    assert len(late.notices) == 1 and MEMBER.user in late.notices[0] and COORD.user in late.notices[0]
    marker = late.decisions[-1]["decision_id"]
    quiet = care.record_meeting(store, STAFF, OWN, meeting_form({cid: {"note": "変化なし", "seen": marker}}),
                                today=TODAY)
    assert quiet.notices == []
    assert len(care.read_care(store, STAFF, district=OWN).meetings) == 4


def test_two_closes_of_one_case_at_once_one_wins_and_the_other_is_told(store):
    case = new_case(store, MEMBER)
    version = str(store.read_row(CareLayer.CONCERNS, case["concern_id"], access=MEMBER)["version"])

    def close(access, reason):
        return lambda: care.close_case(store, access, OWN, {"concern_id": case["concern_id"],
                                                            "version": version,
                                                            "close_reason": reason,
                                                            "closed_on": "2026-11-30"},
                                       today=TODAY)

    _, errors = _at_once(close(MEMBER, "solved"), close(COORD, "moved"))
    assert sum(e is None for e in errors) == 1
    loser = next(e for e in errors if e is not None)
    assert isinstance(loser, ConflictError) and "他の利用者が先に" in str(loser)
    winner = MEMBER if errors[0] is None else COORD
    row = store.read_row(CareLayer.CONCERNS, case["concern_id"], access=STAFF)
    assert row["updated_by"] == winner.user
    assert row["close_reason"] == ("solved" if winner is MEMBER else "moved")


def test_two_supporters_confirmed_for_one_person_at_once_are_both_in_the_register(store):
    person = consented(store, supported=False)[0]
    first, second = cooperators(store)[:2]
    case = new_case(store, COORD, person_id=person["person_id"])
    cid = case["concern_id"]
    _, errors = _at_once(
        lambda: care.record_meeting(store, COORD, OWN,
                                    meeting_form({cid: {"evac_supporter": first["cooperator_id"]}}),
                                    today=TODAY),
        lambda: care.record_meeting(store, STAFF, OWN,
                                    meeting_form({cid: {"evac_supporter": second["cooperator_id"]}}),
                                    today=TODAY))
    assert errors == [None, None]
    ids = split_list(store.read_row("register", person["person_id"], access=STAFF)["supporter_ids"])
    assert sorted(ids) == sorted([first["cooperator_id"], second["cooperator_id"]])


# --- counts for everyone ----------------------------------------------------------------------------------

def test_the_public_counts_are_suppressed_when_small(store):
    new_case(store, MEMBER)
    new_case(store, OTHER_MEMBER, district=OTHER, household="B", kinds=["poverty"])
    for i in range(3):
        new_case(store, OTHER_MEMBER, district=OTHER, household=f"C{i}", kinds=["poverty"])
    care.record_meeting(store, MEMBER, OWN, meeting_form({}), today=TODAY)
    public = care.public_summary(store, PUBLIC_USER, max_small=2, today=TODAY)
    staff = care.public_summary(store, STAFF, max_small=2, today=TODAY)
    by = {d["code"]: d for d in public["districts"]}
    assert by[OWN]["open"] == SUPPRESSED and by[OWN]["open_isolation"] == SUPPRESSED
    assert by[OTHER]["open"] == 4 and by[OTHER]["open_poverty"] == 4 and by[OTHER]["open_isolation"] == 0
    assert by[OWN]["meetings"] == 1 and by[OWN]["participants"] == 7  # events, and 7 > 2
    assert public["city"]["open"] == SUPPRESSED  # else 5 - 4 gives S05's 1 away
    assert public["city"]["meetings"] == 1
    assert {d["code"]: d for d in staff["districts"]}[OWN]["open"] == 1 and staff["city"]["open"] == 5
    assert public["suppressed_up_to"] == 2 and staff["suppressed_up_to"] is None
    assert "角の山田さん宅" not in json.dumps(public, ensure_ascii=False)  # counts only


# --- the printed meeting sheet -----------------------------------------------------------------------------

def test_the_meeting_sheet_lists_the_households_to_review_and_is_confidential(store):
    first = new_case(store, MEMBER, household="角の山田さん宅", next_review="2026-11-25")
    new_case(store, MEMBER, household="坂の上の佐々木さん宅", urgency="low")
    care.record_meeting(store, MEMBER, OWN, meeting_form({first["concern_id"]: {
        "watch_who": "山田 弘", "watch_freq": "weekly", "note": "週1回声かけ", "next_review": "2026-11-28"}}),
        today=TODAY)
    pdf = care.meeting_sheet_pdf(store, OWN, COORD, today=TODAY)
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    flat = re.sub(r"\s+", "", text)
    for words in ("取扱注意", "地域セーフティネット会議", "記録用紙", "角の山田さん宅",
                  "坂の上の佐々木さん宅",
                  "見守り:山田弘（週1回）", "今日の決定", "新たに気づいた世帯", "印刷者care-coord"):
        assert words in flat, words
    assert flat.index("角の山田さん宅") < flat.index("坂の上の佐々木さん宅")  # overdue and urgent first
    assert "過ぎています" in flat
    fonts = subprocess.run(["pdffonts", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    listed = [line for line in fonts.splitlines()[2:] if line.strip()]
    assert "IPAexGothic" in fonts and all(" yes yes " in line for line in listed)  # embedded, subset
    for outsider in (OTHER_MEMBER, PUBLIC_USER):
        with pytest.raises(AccessDenied):
            care.meeting_sheet_pdf(store, OWN, outsider, today=TODAY)
    log = _log(store, COORD.user)
    assert {"care_concerns", "care_decisions"} <= set(log.loc[log["route"] == "test:care", "layer"])
