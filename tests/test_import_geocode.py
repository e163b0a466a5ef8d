"""Offline geocoding to the shipped town points; the finer geocoder is optional."""

from __future__ import annotations

import pytest
from test_import_support import GEOCODER

from karte.domain.schema import LocationPrecision
from karte.importing.geocode import JageocoderGeocoder, default_geocoder, match_key, normalise_address
from karte.importing.values import ValueProblem


@pytest.mark.parametrize(("address", "town"), [
    ("青森県青森市新町１丁目３－７", "新町一丁目"),
    ("青森市新町一丁目3番7号", "新町一丁目"),
    ("青森市新町1丁目3番地7", "新町一丁目"),
    ("新町1-3-7", "新町一丁目"),
    ("新町１ー３ー７", "新町一丁目"),
    ("青森市 新町 二丁目 5", "新町二丁目"),
    ("青森市自由ヶ丘一丁目5", "自由ケ丘一丁目"),
    ("青森市自由が丘2丁目5-1", "自由ケ丘二丁目"),
    ("青森市浜田1-2-3", "浜田一丁目"),          # 浜田1丁目, not 大字浜田
    ("青森市大字浜田字豊田12", "大字浜田字豊田"),
    ("青森市浜田字豊田12", "大字浜田字豊田"),
    ("青森市大字三内字丸山", "大字三内字丸山"),
    ("青森市三内丸山5", "大字三内字丸山"),
    ("青森市浪岡大字浪岡字稲村101", "浪岡大字浪岡字稲村"),
    ("青森市第二問屋町二丁目", "第二問屋町二丁目"),
])
def test_addresses_match_their_town(address, town):
    hit = GEOCODER.geocode(address)
    assert hit.town == town
    assert hit.precision == LocationPrecision.TOWN


def test_town_point_is_the_shipped_point():
    hit = GEOCODER.geocode("青森市新町一丁目3-7")
    assert (hit.lon, hit.lat) == (140.737099, 40.827154)


@pytest.mark.parametrize(("address", "message"), [
    ("青森市浜田9丁目1", "見つかりません"),     # 浜田 has no 9丁目: not 大字浜田
    ("青森市存在しない町1-2", "見つかりません"),
    ("青森市新町十十丁目1", "見つかりません"),  # no number: a problem of its row, not a crash
    ("青森市新町二三十番地", "見つかりません"),
    ("弘前市本町1", "青森市以外"),
    ("青森県弘前市本町1", "青森市以外"),
    ("東京都新宿区西新宿2-8-1", "青森市以外"),
    ("", "空"),
])
def test_unmatched_addresses_are_problems_not_the_city_centre(address, message):
    with pytest.raises(ValueProblem) as info:
        GEOCODER.geocode(address)
    assert message in info.value.ja


def test_normal_forms():
    assert normalise_address("青森市　新町１丁目３－７") == "青森市新町1丁目3-7"
    assert normalise_address("コーポ青森1ー2") == "コーポ青森1-2"   # ー kept inside words
    assert match_key("青森県青森市大字三内字丸山") == "三内字丸山"
    assert match_key("新町一丁目三番七号") == "新町1丁目3-7"


class FakeJageocoder:
    """Stands in for jageocoder with a dictionary: answers at 番 level (7) for 新町."""

    def __init__(self):
        self.queries = []

    def search(self, query):
        self.queries.append(query)
        if "新町" in query:
            return {"matched": query, "candidates": [{"x": 140.7375, "y": 40.8270, "level": 7}]}
        return {"matched": "", "candidates": [{"x": 140.0, "y": 40.0, "level": 5}]}


def test_finer_geocoder_is_used_when_present():
    fake = FakeJageocoder()
    geocoder = JageocoderGeocoder(fake, GEOCODER)
    hit = geocoder.geocode("新町1-3-7")
    assert (hit.lon, hit.lat, hit.precision) == (140.7375, 40.8270, LocationPrecision.EXACT)
    assert fake.queries == ["青森県青森市新町1-3-7"]
    coarse = geocoder.geocode("青森市浜田1-2-3")       # only town level: the town point
    assert coarse.precision == LocationPrecision.TOWN and coarse.town == "浜田一丁目"
    with pytest.raises(ValueProblem):
        geocoder.geocode("青森市存在しない町1")


def test_default_geocoder_works_without_jageocoder():
    import importlib.util

    geocoder = default_geocoder()
    if importlib.util.find_spec("jageocoder") is None:
        assert type(geocoder).__name__ == "TownGeocoder"
    assert geocoder.geocode("青森市本町1-2-3").town == "本町一丁目"
