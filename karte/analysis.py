"""The city-wide analyses behind every karte view, page and sheet: salon coverage, uncovered
cells, evacuation-support gaps, supporter load; and the analysis parameters in force (the snow
season, :func:`current_params`).

This module is the one place where karte calls :mod:`gis` for them, handing it karte's
vocabularies (:data:`karte.domain.schema.VOCABULARY`); the build snapshot
(:mod:`karte.snapshot`) runs them once per build and everything else takes its results. Coverage
is computed per group of districts (each group's own population surface against every salon of
the city, so a salon on a border covers both sides), which lets a batch spread the work over
worker processes; the city's figure is the sum over the groups.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import re
from dataclasses import dataclass, replace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

import gis.gaps
from gis.coverage import active_salons, salon_coverage
from gis.geometry import polygonal
from gis.mesh import jis_mesh, population_surface
from gis.params import AnalysisParams
from karte.domain.errors import InputError
from karte.domain.gaps import ANALYSED
from karte.domain.schema import VOCABULARY
from karte.settings import Settings, get_settings

#: Uncovered cells with fewer elderly people than this are not drawn (mountain and paddy cells
#: where the area-weighted surface puts a fraction of a person).
MIN_CELL_ELDERLY = 0.5


@dataclass
class Coverage:
    """Salon coverage of one district (elderly 65+ and 75+) and its uncovered cells."""

    code: str
    elderly: float = 0.0
    covered_elderly: float = 0.0
    age_75_plus: float = 0.0
    covered_75_plus: float = 0.0
    #: how many mesh cells have uncovered elderly people (at least MIN_CELL_ELDERLY) ...
    cells: int = 0
    #: ... and those cells' uncovered parts merged into one (multi)polygon, EPSG:6678
    area: object | None = None

    @property
    def uncovered_elderly(self) -> float:
        return self.elderly - self.covered_elderly

    @property
    def uncovered_75_plus(self) -> float:
        return self.age_75_plus - self.covered_75_plus


# --- the snow season -----------------------------------------------------------------------------

#: Japan Standard Time: the season turns at midnight in Aomori, not in UTC.
JST = dt.timezone(dt.timedelta(hours=9), "JST")
_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")
#: ``KARTE_WINTER`` words: by date, forced on, forced off.
WINTER_MODES = {"auto": None, "on": True, "off": False}


@dataclass(frozen=True)
class Season:
    """Which season's walking distances are in force, and why (for the note pages and sheets
    print beside the coverage figures).

    Attributes
    ----------
    winter
        The snow season (積雪期) is in force: the winter walking radius is used.
    forced
        ``KARTE_WINTER`` is ``on`` or ``off`` (not by date).
    start, end
        The configured season, ``(month, day)`` each (``KARTE_WINTER_START`` / ``_END``).
    today
        The date (JST) the season was decided for.
    """

    winter: bool
    forced: bool
    start: tuple[int, int]
    end: tuple[int, int]
    today: dt.date

    @property
    def period_ja(self) -> str:
        """``12月1日〜3月31日``."""
        return f"{self.start[0]}月{self.start[1]}日〜{self.end[0]}月{self.end[1]}日"

    @property
    def label_ja(self) -> str:
        """``冬期（積雪期）`` or ``通常期``."""
        return "冬期（積雪期）" if self.winter else "通常期"

    @property
    def why_ja(self) -> str:
        """Why this season: the setting, or the date within / outside the configured period."""
        if self.forced:
            return f"設定（KARTE_WINTER={'on' if self.winter else 'off'}）による"
        inside = "内" if self.winter else "外"
        return f"{self.today.month}月{self.today.day}日は積雪期（{self.period_ja}）の期間{inside}"


def season(today: dt.date | None = None, *, settings: Settings | None = None) -> Season:
    """The season in force on ``today`` (default: today in JST) by the settings' snow season
    (``KARTE_WINTER_START``, ``KARTE_WINTER_END``, month-day, the period may run over the new
    year) unless ``KARTE_WINTER`` forces it ``on`` or ``off``.

    Raises :class:`~karte.domain.errors.InputError` for a setting that is not understood (a
    misconfigured season must be said, not silently ignored).
    """
    settings = settings or get_settings()
    today = today or dt.datetime.now(JST).date()
    mode = str(settings.winter).strip().lower()
    if mode not in WINTER_MODES:
        raise InputError(f"KARTE_WINTER は {' / '.join(WINTER_MODES)} のいずれかです（{settings.winter!r}）")
    start = _month_day(settings.winter_start, "KARTE_WINTER_START")
    end = _month_day(settings.winter_end, "KARTE_WINTER_END")
    forced = WINTER_MODES[mode]
    if forced is not None:
        return Season(forced, True, start, end, today)
    md = (today.month, today.day)
    inside = start <= md <= end if start <= end else (md >= start or md <= end)
    return Season(inside, False, start, end, today)


def _month_day(text: str, name: str) -> tuple[int, int]:
    m = _MONTH_DAY.match(str(text).strip())
    if m:
        month, day = int(m.group(1)), int(m.group(2))
        try:
            dt.date(2024, month, day)  # a leap year: 02-29 is a valid season bound
            return month, day
        except ValueError:
            pass
    raise InputError(f"{name} は月-日（例 12-01）で指定してください（{text!r}）")


def current_params(today: dt.date | None = None, *, settings: Settings | None = None) -> AnalysisParams:
    """The analysis parameters in force now: the winter walking distances inside the snow season
    (:func:`season`). The build snapshot is computed with them and computed again when they
    change (:func:`karte.snapshot.current`), so every page and sheet switches on the first
    request of the season's first day."""
    if settings is not None:
        return AnalysisParams(winter=season(today, settings=settings).winter)
    day = today or dt.datetime.now(JST).date()
    env = tuple(os.environ.get(f"KARTE_{n}") for n in ("WINTER", "WINTER_START", "WINTER_END"))
    return _params_on(day, env)


@functools.lru_cache(maxsize=32)
def _params_on(day: dt.date, env: tuple) -> AnalysisParams:
    """:func:`current_params` for ``day`` and the ``KARTE_WINTER*`` values ``env`` (the key only):
    every request asks, and a ``Settings`` read from the environment costs milliseconds."""
    return AnalysisParams(winter=season(day).winter)


def season_note(params: AnalysisParams, current: Season | None = None) -> dict:
    """What a page or sheet prints beside coverage figures computed with ``params``: which
    season's distances they use and why.

    Returns
    -------
    dict
        ``winter`` (bool), ``label`` (冬期（積雪期） / 通常期), ``salon_walk_m`` and
        ``site_walk_m`` (metres, as used), ``normal_salon_walk_m`` and ``normal_site_walk_m``,
        ``why`` (the setting or the date; empty when ``current`` is not given) and ``text``,
        one sentence in Japanese, e.g. 「冬期（積雪期）の徒歩圏で集計しています: サロンまで 350 m
        （通常 500 m）、避難場所まで 700 m（通常 1,000 m）。12月15日は積雪期（12月1日〜3月31日）の期間内。」
    """
    normal = replace(params, winter=False)
    label = "冬期（積雪期）" if params.winter else "通常期"
    salon, site = params.salon_walk_m, params.site_walk_m
    if params.winter:
        text = (f"{label}の徒歩圏で集計しています: "
                f"サロンまで {salon:,.0f} m（通常 {normal.salon_walk_m:,.0f} m）、"
                f"避難場所まで {site:,.0f} m（通常 {normal.site_walk_m:,.0f} m）。")
    else:
        text = f"{label}の徒歩圏で集計しています: サロンまで {salon:,.0f} m、避難場所まで {site:,.0f} m。"
    why = current.why_ja if current is not None else ""
    if why:
        text += f"{why}。"
    return {"winter": params.winter, "label": label, "salon_walk_m": salon, "site_walk_m": site,
            "normal_salon_walk_m": normal.salon_walk_m, "normal_site_walk_m": normal.site_walk_m,
            "why": why, "text": text}


def counting_salons(services: pd.DataFrame, params: AnalysisParams) -> pd.DataFrame:
    """Salons that count for coverage (held at least ``params.min_salon_per_month``)."""
    return active_salons(services, vocab=VOCABULARY, min_per_month=params.min_salon_per_month)


def catchment_radius(params: AnalysisParams) -> float:
    """Straight-line radius of a salon's walking catchment (500 m ÷ 1.3 ≈ 385 m), metres."""
    return params.salon_walk_m / params.detour_factor


def analyse_coverage(
    small_areas: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame,
    codes: list[str],
    *,
    params: AnalysisParams,
) -> dict[str, Coverage]:
    """Salon coverage and uncovered cells of the districts ``codes``.

    Parameters
    ----------
    small_areas
        All small areas (``district_code`` and the age bands), EPSG:6678.
    services
        All services: every counting salon of the city is a destination.
    codes
        The districts to analyse (one population surface for all of them).
    """
    out = {code: Coverage(code) for code in codes}
    areas = small_areas[small_areas["district_code"].isin(codes)]
    # small areas with no elderly person (forest, industry, concealed figures) add nothing to
    # either side of the coverage share: leaving them out saves a third of the mesh, same result
    elderly = sum(pd.to_numeric(areas[c], errors="coerce").fillna(0) for c in ("age_65_74",
                                                                               "age_75_plus"))
    areas = areas[elderly.to_numpy() > 0]
    if areas.empty:
        return out
    cells = jis_mesh(areas, level=params.mesh_level)
    surface = population_surface(areas, cells)
    covered = salon_coverage(surface, services, vocab=VOCABULARY, params=params)
    frame = pd.DataFrame({
        "district_code": covered["district_code"].to_numpy(),
        "covered": covered["covered"].to_numpy(dtype=bool),
        "elderly": pd.to_numeric(covered["elderly"], errors="coerce").fillna(0.0).to_numpy(),
        "age_75_plus": pd.to_numeric(covered["age_75_plus"], errors="coerce").fillna(0.0).to_numpy(),
    })
    for code, group in frame.groupby("district_code"):
        cov = out[code]
        cov.elderly = float(group["elderly"].sum())
        cov.covered_elderly = float(group.loc[group["covered"], "elderly"].sum())
        cov.age_75_plus = float(group["age_75_plus"].sum())
        cov.covered_75_plus = float(group.loc[group["covered"], "age_75_plus"].sum())
    # The uncovered cells of gis.coverage.uncovered_cells (uncovered pieces with elderly people,
    # per cell and district), selected here by their per-cell sums and merged straight into one
    # shape per district: the map draws the merged shape, and uncovered_cells' per-cell
    # dissolve costs 0.8 s on a rural group of districts (20 000 cells) for nothing we print.
    pieces = frame.assign(cell_id=covered["cell_id"].to_numpy())
    pieces = pieces[~pieces["covered"] & (pieces["elderly"] > 0)]
    per_cell = pieces.groupby(["district_code", "cell_id"])["elderly"].transform("sum")
    shown = pieces[per_cell.to_numpy() >= MIN_CELL_ELDERLY]
    geoms = covered.geometry.values
    for code, group in shown.groupby("district_code"):
        out[code].area = polygonal([shapely.union_all(geoms[group.index.to_numpy()])])[0]
        out[code].cells = int(group["cell_id"].nunique())
    return out


#: Districts analysed together: one mesh per group of neighbours.
ANALYSIS_GROUP = 4


def district_groups(districts: gpd.GeoDataFrame, codes: list[str]) -> list[list[str]]:
    """``codes`` in groups of neighbours (sorted west to east, so each group's mesh is compact),
    largest area first: the work of a group grows with its area, and handing out the big ones
    first keeps parallel workers busy to the end. Coverage does not depend on the grouping."""
    frame = districts.set_index("district_code")
    points = frame.geometry.representative_point()
    area = frame.geometry.area
    order = sorted(codes, key=lambda c: (points[c].x, points[c].y) if c in points.index else (0, 0))
    n = max(1, math.ceil(len(order) / ANALYSIS_GROUP))
    groups = [order[i * len(order) // n:(i + 1) * len(order) // n] for i in range(n)]
    return sorted(groups, key=lambda g: -sum(area.get(c, 0.0) for c in g))




def city_coverage(coverages: list[Coverage]) -> dict[str, float | None]:
    """The city's uncovered shares (elderly, 75+) from every district's coverage, summed in the
    order of the district codes (float sums depend on their order: the analyses' groups finish
    in any order, and every caller must print the same figure to the last bit)."""
    coverages = sorted(coverages, key=lambda c: c.code)
    elderly = sum(c.elderly for c in coverages)
    old = sum(c.age_75_plus for c in coverages)
    return {
        "uncovered_elderly": sum(c.uncovered_elderly for c in coverages),
        "uncovered_elderly_share": (sum(c.uncovered_elderly for c in coverages) / elderly
                                    if elderly else None),
        "uncovered_75_plus": sum(c.uncovered_75_plus for c in coverages),
        "uncovered_75_plus_share": (sum(c.uncovered_75_plus for c in coverages) / old
                                    if old else None),
    }


def evacuation_gaps(
    register: gpd.GeoDataFrame,
    cooperators: gpd.GeoDataFrame,
    shelters: gpd.GeoDataFrame,
    emergency_sites: gpd.GeoDataFrame,
    districts: pd.DataFrame,
    *,
    params: AnalysisParams,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Gaps of every support-needer, their counts per district (plus a ``"city"`` row), and each
    supporter's load.

    Returns
    -------
    (per_person, per_district, load)
        ``per_person`` is indexed like ``register`` (one boolean per gap kind; personal data);
        ``per_district`` holds counts only; ``load`` is indexed by ``cooperator_id``.
    """
    per_person = gis.gaps.evacuation_gaps(register, cooperators, shelters, emergency_sites,
                                          vocab=VOCABULARY, params=params, at_risk_kinds=ANALYSED)
    per_district = gis.gaps.gaps_by_district(per_person, districts=districts)
    counts = [c for c in per_district.columns if not c.startswith("rate_")]
    city = per_district[counts].sum()
    persons = city["persons"]
    for kind in counts[1:]:
        city[f"rate_{kind}"] = city[kind] / persons if persons else np.nan
    per_district.loc["city"] = city
    return per_person, per_district, gis.gaps.supporter_load(register, cooperators, vocab=VOCABULARY)
