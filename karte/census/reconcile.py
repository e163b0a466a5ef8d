"""City totals that say how they relate to the official census figure (公表値).

karte counts a city's people as the sum of its small areas (町丁・字). That sum can fall short of
the official census total: e-Stat conceals (秘匿) the figures of very small areas and adds them to
a neighbour (合算先, ``HTKSAKI``); a source that carries no figure for a concealed area and no
merge target (the 2015 統計LOD the shipped data comes from) loses those people; and the census
may list people under a code that has no polygon in the boundary file. Printing such a sum as
"the city's population" without a word makes a reader who knows the official figure distrust
everything else.

This module compares the two and explains the difference, per municipality and census year:

* people of concealed areas whose merge target is known are already counted in that target (the
  census does so); the karte says in which district they are counted;
* what remains between karte's sum and the official figure is shown as 「秘匿・不詳」 with its
  reason, never dropped silently;
* the official figures ship in ``data/census/official_totals.csv`` with their source; a census
  imported with ``karte census import`` brings its own city rows (``HYOSYO = 1``).

:func:`sources_blocks` gives the dicts a build puts in each karte's ``sources`` block;
:func:`store_sources` reads what it needs from a store. Pure pandas: no geometry, no store writes.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from karte.domain.layers import MUNICIPALITY
from karte.settings import REPO_DATA
from karte.store.base import Store

#: The label of the people and households the census counts but no small area of karte holds.
GAP_LABEL = "秘匿・不詳"
#: The census year of the shipped small areas (e-Stat 統計LOD, 平成27年国勢調査).
SHIPPED_YEAR = 2015
#: Official totals shipped with karte, with their source (``data/README.md``).
OFFICIAL_TOTALS = REPO_DATA / "census" / "official_totals.csv"
#: Store layers written by ``karte census import`` (not in the layer registry yet; see
#: ``docs/census.md``): the small areas of every census held, and one summary row per year.
CENSUS_AREAS = "census_areas"
CENSUS_YEARS = "census_years"

_ERA = ((2019, "令和"), (1989, "平成"), (1926, "昭和"))


def census_label(year: int) -> str:
    """2015 -> 平成27年国勢調査, 2020 -> 令和2年国勢調査."""
    for start, era in _ERA:
        if year >= start:
            n = year - start + 1
            return f"{era}{'元' if n == 1 else n}年国勢調査"
    return f"{year}年国勢調査"


@dataclass(frozen=True)
class OfficialTotal:
    """An official census total of one municipality and year, with where it comes from.

    ``households`` is None where no official figure could be had; ``verified_here`` says whether
    the figure was checked against its source by whoever shipped it (offline, it was not).
    """

    municipality_code: str
    municipality_name: str
    year: int
    population: int | None
    households: int | None
    source: str
    as_published_by: str = ""
    verified_here: bool = False
    note: str = ""


def official_totals(path: Path = OFFICIAL_TOTALS) -> dict[tuple[str, int], OfficialTotal]:
    """The shipped official totals, keyed by (municipality code, census year)."""
    out: dict[tuple[str, int], OfficialTotal] = {}
    with Path(path).open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            total = OfficialTotal(
                municipality_code=row["municipality_code"].strip(),
                municipality_name=row["municipality_name"].strip(),
                year=int(row["census_year"]),
                population=_opt_int(row["population"]),
                households=_opt_int(row["households"]),
                source=row["source"].strip(),
                as_published_by=row.get("as_published_by", "").strip(),
                verified_here=row.get("verified_here", "").strip().lower() in ("yes", "true", "1"),
                note=row.get("note", "").strip(),
            )
            out[(total.municipality_code, total.year)] = total
    return out


@dataclass(frozen=True)
class Reconciliation:
    """karte's city total against the official one, for one municipality and census year.

    ``population``/``households`` are what karte counts (the sum of the small areas, concealed
    areas' people included where the census put them into a merge target). ``merged_areas`` of
    the ``concealed_areas`` have a known merge target; ``unplaced_population`` are people the
    census lists under a code without a small-area polygon (known from an imported census only).
    """

    municipality_code: str
    municipality_name: str
    year: int
    population: int
    households: int
    official: OfficialTotal | None
    concealed_areas: int = 0
    merged_areas: int = 0
    concealed_names: tuple[str, ...] = ()
    unplaced_population: int = 0
    unplaced_households: int = 0

    @property
    def gap_population(self) -> int | None:
        """Official minus counted people (None without an official figure)."""
        if self.official is None or self.official.population is None:
            return None
        return self.official.population - self.population

    @property
    def gap_households(self) -> int | None:
        if self.official is None or self.official.households is None:
            return None
        return self.official.households - self.households

    @property
    def balanced(self) -> bool:
        """Counted plus the labelled 「秘匿・不詳」 amount equals the official figure: always true
        when the gap is not negative (the gap *is* the labelled amount); a negative gap (karte
        counts more people than the census) is an inconsistency to look into."""
        gap = self.gap_population
        return gap is None or gap >= 0

    def reason_ja(self) -> str:
        """Why karte's total differs from the official one, in a sentence or two."""
        gap = self.gap_population
        if gap is None:
            return (f"{census_label(self.year)}の公表値が手元にないため、市の合計 {self.population:,} 人"
                    "（小地域の合計）を照合できていません。")
        if gap == 0:
            merged = (f"秘匿された {self.merged_areas} の小地域の人口は合算先の小地域に含めて数えています。"
                      if self.merged_areas else "")
            return f"小地域の合計は公表値と一致します。{merged}"
        if gap < 0:
            return (f"小地域の合計が公表値を {-gap:,} 人上回っています。境界データと統計表の年次・市町村が"
                    "合っているか確かめてください。")
        parts = []
        examples = "、".join(self.concealed_names[:3])
        unmerged = self.concealed_areas - self.merged_areas
        if self.unplaced_population:
            parts.append(f"境界データに区域のない小地域コードの人口 {self.unplaced_population:,} 人")
        rest = gap - self.unplaced_population
        if unmerged and rest > 0:
            parts.append(
                f"数値が秘匿（X）または合算され、合算先が示されていない {unmerged} の小地域"
                f"（{examples} など）の人口 {rest:,} 人")
        elif rest > 0:
            parts.append(f"内訳の分からない {rest:,} 人")
        text = "、".join(parts) if parts else f"{gap:,} 人"
        return (f"公表値との差 {gap:,} 人は「{GAP_LABEL}」です: {text}。"
                "どの小地域・地区にも割り当てず、市の合計の注記として示します。")

    def as_dict(self) -> dict:
        """The JSON-ready block for a karte's ``sources`` (see :func:`sources_blocks`)."""
        official = self.official
        return {
            "kind": "census",
            "year": self.year,
            "label": census_label(self.year),
            "municipality": {"code": self.municipality_code, "name": self.municipality_name},
            "population": {"karte": self.population,
                           "official": official.population if official else None,
                           "gap": self.gap_population, "gap_label": GAP_LABEL},
            "households": {"karte": self.households,
                           "official": official.households if official else None,
                           "gap": self.gap_households, "gap_label": GAP_LABEL},
            "concealed_areas": self.concealed_areas,
            "merged_areas": self.merged_areas,
            "unplaced_population": self.unplaced_population,
            "reason": self.reason_ja(),
            "note": self.note_ja(),
            "source": official.source if official else None,
            "as_published_by": official.as_published_by if official else None,
            "verified": bool(official.verified_here) if official else False,
            "balanced": self.balanced,
        }

    def note_ja(self) -> str:
        """The one line a page prints under a city total."""
        head = f"市の合計 {self.population:,} 人は小地域の合計です（{census_label(self.year)}）。"
        gap = self.gap_population
        if gap is None:
            return head + "公表値とは照合できていません。"
        official = self.official.population  # type: ignore[union-attr]
        if gap == 0:
            return head + f"公表値 {official:,} 人と一致します。"
        if gap > 0:
            return head + f"公表値は {official:,} 人で、差の {gap:,} 人は「{GAP_LABEL}」です。"
        return head + f"公表値 {official:,} 人を {-gap:,} 人上回っています（要確認）。"

    def lines_ja(self) -> list[tuple[str, int | None]]:
        """The city total as rows to print: the small areas' sum, 「秘匿・不詳」, the official figure."""
        gap = self.gap_population
        rows: list[tuple[str, int | None]] = [("小地域の合計（カルテの市の値）", self.population)]
        if gap is not None and gap > 0:
            rows.append((GAP_LABEL, gap))
        rows.append((f"公表値（{census_label(self.year)}）",
                     self.official.population if self.official else None))
        return rows


@dataclass
class SourcesBlocks:
    """What a build puts into each karte's ``sources`` block: one city block per municipality
    (:meth:`Reconciliation.as_dict`) and one note per district (:func:`district_notes`)."""

    year: int
    cities: dict[str, Reconciliation] = field(default_factory=dict)
    districts: dict[str, dict] = field(default_factory=dict)

    def for_karte(self, municipality: str | None, district: str) -> dict:
        """The ``sources["census"]`` dict of one karte: the city block plus the district's note."""
        city = self.cities.get(municipality) if municipality else None
        if city is None and len(self.cities) == 1:
            city = next(iter(self.cities.values()))
        block = city.as_dict() if city is not None else {"kind": "census", "year": self.year,
                                                         "label": census_label(self.year)}
        block["district"] = self.districts.get(district, _empty_note())
        return block

    def attach(self, kartes: Mapping[str, dict]) -> None:
        """Give every karte its ``sources["census_total"]`` (a new ``sources`` dict per karte: the
        build's block is one object shared by all of them)."""
        for code, karte in kartes.items():
            municipality = (karte["district"].get("municipality") or {}).get("code")
            karte["sources"] = {**(karte.get("sources") or {}),
                                "census_total": self.for_karte(municipality, code)}


def reconcile(small_areas: pd.DataFrame, *, year: int,
              official: Mapping[tuple[str, int], OfficialTotal] | None = None,
              unplaced: Mapping[str, tuple[int, int]] | None = None) -> dict[str, Reconciliation]:
    """Compare the small areas' sums with the official totals, per municipality.

    Parameters
    ----------
    small_areas
        ``key_code``, ``population``, ``households`` (null where concealed), ``concealed``;
        optionally ``municipality_code``, ``name``, ``fullname`` and ``merged_into`` (the merge
        target's KEY_CODE, from an imported census).
    year
        The census year of these small areas.
    official
        Official totals by (municipality, year); default: the shipped file.
    unplaced
        People and households per municipality that the census lists without a polygon.
    """
    official = official_totals() if official is None else official
    unplaced = unplaced or {}
    frame = _with_municipality(small_areas)
    out: dict[str, Reconciliation] = {}
    for code, part in frame.groupby(MUNICIPALITY, sort=True):
        concealed = part["concealed"].astype(bool) if "concealed" in part.columns \
            else part["population"].isna()
        merged = part.get("merged_into")
        merged_mask = (merged.notna() & (merged.astype(str).str.len() > 0)) if merged is not None \
            else pd.Series(False, index=part.index)
        names = tuple(str(n) for n in part.loc[concealed & ~merged_mask, "name"]) \
            if "name" in part.columns else ()
        pop_unplaced, hh_unplaced = unplaced.get(code, (0, 0))
        out[code] = Reconciliation(
            municipality_code=code,
            municipality_name=_municipality_name(part, code, official),
            year=year,
            population=int(pd.to_numeric(part["population"], errors="coerce").fillna(0).sum()),
            households=int(pd.to_numeric(part["households"], errors="coerce").fillna(0).sum()),
            official=official.get((code, year)),
            concealed_areas=int(concealed.sum()),
            merged_areas=int((concealed & merged_mask).sum()),
            concealed_names=names,
            unplaced_population=int(pop_unplaced),
            unplaced_households=int(hh_unplaced),
        )
    return out


def district_notes(small_areas: pd.DataFrame) -> dict[str, dict]:
    """Per district: its concealed small areas, and where their people are counted.

    ``small_areas`` needs ``key_code``, ``district_code``, ``concealed`` and ``name``; with
    ``merged_into`` (an imported census) each concealed area's people are counted in its merge
    target, possibly in another district: the note names both sides so nobody moves unseen.
    """
    frame = small_areas
    concealed = frame["concealed"].astype(bool) if "concealed" in frame.columns \
        else frame["population"].isna()
    district_of = dict(zip(frame["key_code"].astype(str), frame["district_code"], strict=True))
    name_of = dict(zip(frame["key_code"].astype(str), frame.get("name", frame["key_code"]), strict=True))
    notes: dict[str, dict] = {}
    merged = frame["merged_into"] if "merged_into" in frame.columns else pd.Series(None, index=frame.index)
    for key, district, target in zip(frame.loc[concealed, "key_code"].astype(str),
                                     frame.loc[concealed, "district_code"], merged[concealed], strict=True):
        note = notes.setdefault(str(district), _empty_note())
        note["concealed_areas"] += 1
        note["concealed_names"].append(str(name_of.get(key, key)))
        target = None if target is None or (isinstance(target, float) and pd.isna(target)) or target == "" \
            else str(target)
        if target is None:
            note["not_counted"].append(str(name_of.get(key, key)))
            continue
        where = district_of.get(target)
        entry = {"area": str(name_of.get(key, key)), "key_code": key,
                 "target": str(name_of.get(target, target)), "target_key_code": target,
                 "target_district": where}
        if where != district:
            note["counted_elsewhere"].append(entry)
            notes.setdefault(str(where), _empty_note())["counted_here_from"].append(
                {**entry, "from_district": district})
    for note in notes.values():
        note["text"] = _note_text(note)
    return notes


def sources_blocks(small_areas: pd.DataFrame, *, year: int,
                   official: Mapping[tuple[str, int], OfficialTotal] | None = None,
                   unplaced: Mapping[str, tuple[int, int]] | None = None) -> SourcesBlocks:
    """The ``sources`` blocks of one build: city reconciliation and district notes."""
    cities = reconcile(small_areas, year=year, official=official, unplaced=unplaced)
    notes = district_notes(small_areas) if "district_code" in small_areas.columns else {}
    return SourcesBlocks(year=year, cities=cities, districts=notes)


def store_sources(store: Store, small_areas: pd.DataFrame) -> SourcesBlocks:
    """:func:`sources_blocks` for the small areas of a build on ``store``: the census year, merge
    targets, unplaced people and official totals of an imported census come from the store's
    :data:`CENSUS_YEARS` and :data:`CENSUS_AREAS` layers; without them the small areas are the
    shipped 2015 ones, checked against the shipped official totals."""
    layers = set(store.layers())
    years = store.read(CENSUS_YEARS) if CENSUS_YEARS in layers else None
    areas = store.read(CENSUS_AREAS) if CENSUS_AREAS in layers and years is not None else None
    return frames_sources(small_areas, census_years=years, census_areas=areas)


def frames_sources(small_areas: pd.DataFrame, *, census_years: pd.DataFrame | None = None,
                   census_areas: pd.DataFrame | None = None) -> SourcesBlocks:
    """:func:`store_sources` from layers already read (``karte.importing.refresh.reassemble``
    has the layers, not the store)."""
    if census_years is None or not len(census_years):
        return sources_blocks(small_areas, year=SHIPPED_YEAR)
    latest = census_years.sort_values("year").iloc[-1]
    year = int(latest["year"])
    official = official_totals()
    official.update(_official_from_years(census_years))
    frame = small_areas
    if census_areas is not None and len(census_areas):
        areas = census_areas[census_areas["year"].astype(int) == year]
        merged = dict(zip(areas["key_code"].astype(str), areas["merged_into"], strict=True))
        frame = small_areas.assign(merged_into=small_areas["key_code"].astype(str).map(merged))
    unplaced = {str(k): (int(p), int(h)) for k, p, h in _unplaced_rows(latest)}
    return sources_blocks(frame, year=year, official=official, unplaced=unplaced)


def _official_from_years(years: pd.DataFrame) -> dict[tuple[str, int], OfficialTotal]:
    """Official totals an imported census brought (its city rows), stored per year as JSON."""
    out: dict[tuple[str, int], OfficialTotal] = {}
    for text in years.get("official_json", pd.Series(dtype=object)).dropna():
        for item in json.loads(text):
            total = OfficialTotal(**item)
            out[(total.municipality_code, total.year)] = total
    return out


def _unplaced_rows(row: pd.Series):
    text = row.get("unplaced_json")
    if not isinstance(text, str) or not text:
        return []
    return [(k, v[0], v[1]) for k, v in json.loads(text).items()]


def _empty_note() -> dict:
    return {"concealed_areas": 0, "concealed_names": [], "not_counted": [], "counted_elsewhere": [],
            "counted_here_from": [], "text": ""}


def _note_text(note: dict) -> str:
    parts = []
    if note["not_counted"]:
        names = "、".join(note["not_counted"][:3]) + (" など" if len(note["not_counted"]) > 3 else "")
        parts.append(f"この地区の {len(note['not_counted'])} の小地域（{names}）は数値が秘匿され"
                     f"合算先も分からないため、人口に含まれていません（市の注記「{GAP_LABEL}」に含まれます）。")
    for e in note["counted_elsewhere"]:
        parts.append(f"{e['area']} は秘匿のため、その人口は地区 {e['target_district']} の {e['target']}"
                     "（合算先）に含めて数えています。")
    for e in note["counted_here_from"]:
        parts.append(f"{e['target']} の人口には、地区 {e['from_district']} の {e['area']}（秘匿）の人口が"
                     "含まれています。")
    return "".join(parts)


def _with_municipality(small_areas: pd.DataFrame) -> pd.DataFrame:
    if MUNICIPALITY in small_areas.columns:
        return small_areas
    return small_areas.assign(**{MUNICIPALITY: small_areas["key_code"].astype(str).str.slice(0, 5)})


def _municipality_name(part: pd.DataFrame, code: str,
                       official: Mapping[tuple[str, int], OfficialTotal]) -> str:
    if "fullname" in part.columns:
        for full in part["fullname"]:
            if isinstance(full, str) and full.count("/") >= 2:
                return full.split("/")[1]
    for (c, _y), total in official.items():
        if c == code:
            return total.municipality_name
    return code


def _opt_int(text: str | None) -> int | None:
    text = (text or "").strip().replace(",", "")
    return int(text) if text else None
