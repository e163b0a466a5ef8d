"""Offline geocoding of Aomori city addresses to a town (町丁・字) point.

The shipped Geolonia town points (``data/towns/aomori_city_town_points_geolonia.json``, CC BY 4.0)
give one representative point per town (大字・町丁目) and per 小字. An address is normalised
(:func:`normalise_address`: NFKC, dash variants, ヶ/ヵ -> ケ, 一丁目 -> 1丁目, 大字 dropped, the
prefecture and city dropped) and matched to the longest town name it starts with, then to a 小字
after it; ``新町1-3-7`` is read as 新町1丁目. The row is placed at that point with precision
``town``. An address that matches no town is a problem for that row: it is never placed at the
city centre.

A finer geocoder (jageocoder with an installed dictionary) is used first when present
(:func:`default_geocoder`); it is optional, and the town geocoder is the fallback.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from karte.domain.schema import LocationPrecision
from karte.importing.values import ValueProblem
from karte.settings import REPO_DATA

TOWN_POINTS = REPO_DATA / "towns" / "aomori_city_town_points_geolonia.json"
CITY = "青森市"
#: Addresses a :class:`TownGeocoder` keeps the answer of (one import's worth: they repeat).
MAX_CACHED = 65_536
PREFECTURE = "青森県"

_KANJI_DIGITS = {"〇": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_DASHES = re.compile(r"[‐‑‒–—―−ｰー－]")
_SPACES = re.compile(r"[\s\u3000]+")
_DIGIT_DASH = re.compile(r"(?<=\d)[ー－−‐―ｰ](?=\d)")
_KANJI_NUMBER = re.compile(r"([〇一二三四五六七八九十]+)(丁目|番地|番|号)")
_BANCHI = re.compile(r"(\d+)(?:番地?の?|の)(\d+)号?")
_BANCHI_END = re.compile(r"(\d+)番地?$")
_PREFECTURES = re.compile(r"^(北海道|東京都|京都府|大阪府|\S{2,3}県)")
_OTHER_CITY = re.compile(r"^(\S{1,5}?市|\S{1,4}?郡)")


@dataclass(frozen=True)
class GeocodeResult:
    """Where an address is: WGS84 longitude/latitude, how precisely, and the town matched."""

    lon: float
    lat: float
    precision: LocationPrecision
    town: str


class Geocoder(Protocol):
    def geocode(self, address: str) -> GeocodeResult:
        """Locate ``address`` or raise :class:`~karte.importing.values.ValueProblem`."""


def kanji_number(text: str) -> int | None:
    """一 -> 1, 十二 -> 12, 二十三 -> 23 (the numerals of 丁目 and 番地); None for a run of
    numerals that is no number written this way (十十, 二三十): the address keeps it as written."""
    try:
        if "十" not in text:
            return int("".join(str(_KANJI_DIGITS[c]) for c in text))
        tens, _, ones = text.partition("十")
        return (_KANJI_DIGITS[tens] if tens else 1) * 10 + (_KANJI_DIGITS[ones] if ones else 0)
    except KeyError:
        return None


def _numeral(m: re.Match) -> str:
    number = kanji_number(m.group(1))
    return m.group(0) if number is None else f"{number}{m.group(2)}"


def normalise_address(address: str) -> str:
    """The stored form of an address: NFKC, spaces removed, every dash variant as ``-``.

    ``青森市新町１丁目３－７`` -> ``青森市新町1丁目3-7``. Used for display and storage.
    """
    s = unicodedata.normalize("NFKC", str(address))
    s = _SPACES.sub("", s)
    # a long-vowel mark between digits is a dash (3ー7); elsewhere (ハイツ) it is part of a name
    s = _DIGIT_DASH.sub("-", s)
    return _DASHES.sub(_dash, s)


def _dash(m: re.Match) -> str:
    return "-" if m.group() not in "ーｰ" else m.group()


def match_key(address: str) -> str:
    """The comparable form used to match towns: :func:`normalise_address`, then kanji numerals
    before 丁目/番地/番/号 as digits, ヶ/ヵ as ケ, 大字 dropped, 青森県/青森市 dropped."""
    return _match_key(normalise_address(address))


def _match_key(s: str) -> str:
    """:func:`match_key` of an address already normalised (:func:`normalise_address`)."""
    # each rewrite runs only on a text holding the characters its pattern needs (most do not)
    if "丁目" in s or "番" in s or "号" in s:
        s = _KANJI_NUMBER.sub(_numeral, s)
    s = s.replace("ヶ", "ケ").replace("ヵ", "ケ")
    s = s.removeprefix(PREFECTURE).removeprefix(CITY)
    if "番" in s or "の" in s:
        s = _BANCHI.sub(r"\1-\2", s)      # 3番地7 / 3番7号 / 3番地の7 / 3の7 -> 3-7
    if s.endswith(("番", "番地")):        # no newline is left for $ to stop before
        s = _BANCHI_END.sub(r"\1", s)      # 12番地 -> 12
    return s.replace("大字", "")


class TownGeocoder:
    """Match addresses to the shipped town points (see the module doc)."""

    def __init__(self, points: list[dict]):
        self.towns: dict[str, tuple[float, float, str]] = {}
        self.koaza: dict[str, dict[str, tuple[float, float, str]]] = {}
        for p in points:
            town, koaza = str(p["town"]), str(p.get("koaza") or "")
            label = town + (f"字{koaza}" if koaza else "")
            point = (float(p["lng"]), float(p["lat"]), label)
            for key in _variants(match_key(town)):
                if koaza:
                    self.koaza.setdefault(key, {})
                    for k in _variants(match_key(koaza)):
                        self.koaza[key][k] = point
                else:
                    self.towns[key] = point
        for key in self.koaza:  # a town given only by its 小字 rows still matches
            if key not in self.towns:
                first = next(iter(self.koaza[key].values()))
                self.towns[key] = (first[0], first[1], key)
        # first character -> the lengths of the town names starting with it, longest first
        lengths: dict[str, set[int]] = {}
        for k in self.towns:
            lengths.setdefault(k[:1], set()).add(len(k))
        self._lengths = {c: sorted(ns, reverse=True) for c, ns in lengths.items()}
        # each town's 小字 names, longest first (the first a rest starts with wins)
        self._koaza_order = {town: sorted(names, key=len, reverse=True) for town, names in self.koaza.items()}
        # address -> the result, or the problem's (ja, en): an address is geocoded once
        self._cache: dict[str, GeocodeResult | tuple[str, str]] = {}

    @classmethod
    def from_file(cls, path: Path = TOWN_POINTS) -> TownGeocoder:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def geocode(self, address: str) -> GeocodeResult:
        """Locate ``address`` (see the module doc), once per distinct address text. The answers
        are kept by this geocoder only (one per import): addresses are personal data, and no
        module-level cache holds them for the life of a server."""
        found = self._cache.get(address)
        if found is None:
            try:
                found = self._geocode(address)
            except ValueProblem as exc:
                found = (exc.ja, exc.en)
            if len(self._cache) >= MAX_CACHED:  # a long-lived geocoder stays bounded
                self._cache.clear()
            self._cache[address] = found
        if isinstance(found, tuple):
            raise ValueProblem(*found)
        return found

    def _geocode(self, address: str) -> GeocodeResult:
        normal = normalise_address(address)
        key = _match_key(normal)
        if not key:
            raise ValueProblem("住所が空です", "empty address")
        _check_city(normal)
        chome = _CHOME_DASH.sub(r"\1\2丁目", key, count=1) if "-" in key else key
        found = self._town(key)
        other = self._town(chome) if chome != key else None
        if other is not None and (found is None or len(other[0]) > len(found[0])):
            found = other                  # the longer town name (the first of equal ones)
        if found is None or _CHOME.match(found[1]):
            raise ValueProblem("住所の町名 (町丁・字) が青森市の町名一覧に見つかりません。"
                               "町名と丁目を確認してください",
                               "address matches no town of Aomori city")
        town_key, rest = found
        lon, lat, label = self.towns[town_key]
        rest = rest.removeprefix("字")
        for k in self._koaza_order.get(town_key, ()):
            if rest.startswith(k):
                lon, lat, label = self.koaza[town_key][k]
                break
        return GeocodeResult(lon, lat, LocationPrecision.TOWN, label)

    def _town(self, key: str) -> tuple[str, str] | None:
        """The longest town name ``key`` starts with, and the rest of ``key``."""
        for n in self._lengths.get(key[:1], ()):
            if n <= len(key) and key[:n] in self.towns:
                return key[:n], key[n:]
        return None


_CHOME_DASH = re.compile(r"^(\D+?)(\d+)-")   # 新町1-3-7 -> 新町1丁目3-7
_CHOME = re.compile(r"^\d+丁目")               # a 丁目 the town does not have


def _variants(key: str) -> set[str]:
    """ケ is also written が or ヶ (自由ケ丘 / 自由が丘)."""
    return {key, key.replace("ケ", "が"), key.replace("ケ", "ガ")}


def _check_city(address: str) -> None:
    """Refuse an address of another prefecture, city or county (青森市 may be left out)."""
    m = _PREFECTURES.match(address)
    if m and m.group(1) != PREFECTURE:
        raise ValueProblem(f"青森市以外の住所です ({m.group(1)})", "address outside Aomori city")
    s = address.removeprefix(PREFECTURE)
    m = _OTHER_CITY.match(s)
    if m and m.group(1) != CITY:
        raise ValueProblem(f"青森市以外の住所です ({m.group(1)})", "address outside Aomori city")


class JageocoderGeocoder:
    """jageocoder (with an installed address dictionary), falling back to the town geocoder.

    A jageocoder answer at 街区・地番 level (7) or finer is ``exact``; anything coarser falls back
    to the town points, so the town matching rules stay the same with or without it.
    """

    def __init__(self, module, fallback: TownGeocoder):
        self.module = module
        self.fallback = fallback

    def geocode(self, address: str) -> GeocodeResult:
        town = self.fallback.geocode(address)  # validates the town (and the city) first
        query = normalise_address(address)
        if not query.startswith(PREFECTURE):
            query = PREFECTURE + (query if query.startswith(CITY) else CITY + query)
        try:
            answer = self.module.search(query)
        except Exception:  # jageocoder failing on one address must not fail the import
            return town
        for cand in (answer or {}).get("candidates", []):
            if int(cand.get("level", 0)) >= 7:
                return GeocodeResult(float(cand["x"]), float(cand["y"]), LocationPrecision.EXACT,
                                     town.town)
        return town


def default_geocoder() -> Geocoder:
    """jageocoder when it and a dictionary are installed, else the shipped town points."""
    town = TownGeocoder.from_file()
    try:
        import jageocoder  # optional
    except ImportError:
        return town
    try:
        jageocoder.init(mode="r")
    except Exception:  # no dictionary installed
        return town
    return JageocoderGeocoder(jageocoder, town)
