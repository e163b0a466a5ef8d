"""The access rules on personal data, in one place."""

from __future__ import annotations

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
