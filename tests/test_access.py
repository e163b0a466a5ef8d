"""The access rules on personal data, in one place."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from karte.domain.access import PUBLIC, SUPPRESSED, Access, Level
from karte.services.suppression import small

REGISTER = pd.DataFrame({
    "person_id": ["a", "b", "c", "d", "e"],
    "district_code": ["S01", "S01", "S01", "S02", "S02"],
    "consent": ["consented", "refused", "ordinance", "no_answer", "consented"],
})


@pytest.mark.parametrize(("access", "expected"), [
    (Access("staff", Level.CITY_STAFF), {"a", "b", "c", "d", "e"}),
    (Access("csw", Level.COORDINATOR), {"a", "c", "e"}),
    (Access("member", Level.DISTRICT_MEMBER, "S01"), {"a", "c"}),
    (Access("member", Level.DISTRICT_MEMBER, "S02"), {"e"}),
    (PUBLIC, set()),
])
def test_filter_register_by_level(access, expected):
    assert set(access.filter_register(REGISTER)["person_id"]) == expected


def test_district_member_needs_a_district():
    with pytest.raises(ValueError):
        Access("x", Level.DISTRICT_MEMBER)


def test_district_rows_visibility():
    member = Access("m", Level.DISTRICT_MEMBER, "S01")
    assert member.may_see_district_rows("S01") and not member.may_see_district_rows("S02")
    assert not PUBLIC.may_see_district_rows("S01")
    assert Access("c", Level.COORDINATOR).may_see_district_rows("S02")


@pytest.mark.parametrize(("count", "public", "staff"), [
    (0, 0, 0), (1, SUPPRESSED, 1), (2, SUPPRESSED, 2), (3, 3, 3), (None, None, None),
])
def test_small_counts_suppressed_for_public_only(count, public, staff):
    assert small(count, 2) == public
    assert small(count, 0) == staff  # what non-public viewers get: nothing hidden
    assert small(3, 3) == SUPPRESSED


# --- disaster mode (災害対策基本法 第49条の11第3項) -------------------------------------------------

PLANS = pd.DataFrame({
    "plan_id": ["EP1", "EP2", "EP3"], "person_id": ["a", "b", "d"],
    "district_code": ["S01", "S01", "S02"], "consent": ["consented", "refused", "no_answer"],
    "municipality_code": ["02201", "02201", "02201"],
})


@pytest.mark.parametrize(("access", "register", "plans"), [
    # outside disaster mode: the consent rule for everyone below city staff
    (Access("member", Level.DISTRICT_MEMBER, "S01"), {"a", "c"}, {"EP1"}),
    (Access("csw", Level.COORDINATOR), {"a", "c", "e"}, {"EP1"}),
    (Access("staff", Level.CITY_STAFF), {"a", "b", "c", "d", "e"}, {"EP1", "EP2", "EP3"}),
    # S01 in disaster mode: its members see its unconsented entries and plans, nothing more
    (Access("member", Level.DISTRICT_MEMBER, "S01", disaster={"S01"}), {"a", "b", "c"}, {"EP1", "EP2"}),
    (Access("member", Level.DISTRICT_MEMBER, "S02", disaster={"S01"}), {"e"}, set()),
    (Access("csw", Level.COORDINATOR, disaster={"S01"}), {"a", "c", "e"}, {"EP1"}),
    (Access("member", Level.DISTRICT_MEMBER, "S02", disaster={"S01", "S02"}), {"d", "e"}, {"EP3"}),
])
def test_disaster_mode_lifts_consent_for_the_districts_members_only(access, register, plans):
    assert set(access.filter_rows("register", REGISTER)["person_id"]) == register
    assert set(access.filter_register(REGISTER)["person_id"]) == register
    assert set(access.filter_rows("evacuation_plans", PLANS)["plan_id"]) == plans
    rows = REGISTER.assign(municipality_code="02201").to_dict("records")
    assert {r["person_id"] for r in rows if access.may_see_row("register", r)} == register
    plan_rows = PLANS.to_dict("records")
    assert {r["plan_id"] for r in plan_rows if access.may_see_row("evacuation_plans", r)} == plans
    # the list form a page uses: the same rules, and never another municipality's row
    elsewhere = [{**r, "municipality_code": "02202"} for r in rows]
    assert {r["person_id"] for r in access.visible("register", rows + elsewhere)} == register
    assert {r["plan_id"] for r in access.visible("evacuation_plans", plan_rows)} == plans


def test_every_read_in_disaster_mode_is_marked_in_the_route():
    plain = Access("m", Level.DISTRICT_MEMBER, "S01", route="web:district_page")
    assert plain.route == "web:district_page" and not plain.consent_lifted
    on = Access("m", Level.DISTRICT_MEMBER, "S01", route="web:district_page", disaster={"S05"})
    assert on.route == "web:district_page+disaster" and not on.consent_lifted  # another district's mode
    again = dataclasses.replace(on, route=f"{on.route}:locate")
    assert again.route == "web:district_page+disaster:locate"  # marked once
    assert Access("m", Level.DISTRICT_MEMBER, "S05", disaster={"S05"}).consent_lifted


def test_the_public_never_carries_a_disaster_mode():
    public = Access("anonymous", Level.PUBLIC, disaster={"S01"})
    assert public.disaster == frozenset() and public.route == "store"
    assert len(public.filter_rows("register", REGISTER)) == 0


def test_a_plan_without_a_consent_column_is_not_shareable():
    member = Access("member", Level.DISTRICT_MEMBER, "S01")
    assert len(member.filter_rows("evacuation_plans", PLANS.drop(columns="consent"))) == 0
