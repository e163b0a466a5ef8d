"""Outreach priority (アウトリーチの優先度): where a coordinator should visit first.

Each place (a small area, or a grid cell within a district) gets three parts, each shown as its
own column so a coordinator can see *why* a place ranks high:

``elderly_alone``
    elderly people living alone (一人暮らし高齢者), apportioned from the small areas;
``uncovered_elderly``
    elderly (65+) people beyond walking distance of a salon (:mod:`gis.coverage`);
``unsupported``
    support-needers with no assigned supporter (:mod:`gis.gaps`, ``no_supporter``), counted
    whatever their consent (a count, never a list).

and the place's ``elderly`` (65+) population, the denominator of the rates.

Two scores, both from 0 to 100, both always computed and ranked:

**By count** (``score_count``, ``rank_count``): where the most people are. Each part is scaled by
the city's largest value of that part: ``100 × w_part / Σw × value / max(value)``, summed. With
equal weights (the default), a place that has the most of all three scores 100.

**By rate** (``score_rate``, ``rank_rate``, the default ``by``): where the largest *share* of the
elderly needs a visit, so a small village where most elderly live alone ranks above a large
suburb that has more of them only because it is large. Each part becomes a rate per elderly
person (``rate_<part>``), **shrunk towards the city's rate** so that a place with a handful of
elderly people cannot top the list by chance (empirical-Bayes style)::

    rate = (value + k × city_rate) / (elderly + k)        city_rate = Σ value / Σ elderly

with ``k = prior_elderly`` (default :data:`PRIOR_ELDERLY` = 50 people): a place with 5 elderly
people, all living alone, gets about 0.27 when the city's share is 0.2 (not 1.0); a place with
1,000 elderly keeps almost its own share. (With ``k = 0``, raw rates, a place with no elderly
person gets rate 0.) The rates are then scaled and weighted as the counts are:
``100 × w_part / Σw × rate / max(rate)``.

A place with none of the three parts (all 0) has nothing to visit for: it scores 0 by rate too
(shrinkage would otherwise give it the city's rates) and, like any place scoring 0, gets no rank
(``<NA>``): the highest rank never exceeds the number of places that need a visit.
``score``, ``rank`` and ``points_<part>`` are those of the chosen ``by`` (so the points always
add up to the score).
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.check import require

PARTS = ("elderly_alone", "uncovered_elderly", "unsupported")
#: The two orderings of :func:`outreach_priority` (``by``).
ORDERS = ("rate", "count")
#: The shrinkage of the rates, in elderly people (see the module docstring).
PRIOR_ELDERLY = 50.0


def outreach_units(
    coverage: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    *,
    by: str = "key_code",
) -> pd.DataFrame:
    """The three parts of the outreach score, and the elderly population, per small area or cell.

    Parameters
    ----------
    coverage
        Output of :func:`gis.coverage.salon_coverage` (pieces with ``cell_id``, ``key_code``,
        ``district_code``, ``elderly``, ``elderly_alone``, ``covered``).
    gaps
        Output of :func:`gis.gaps.evacuation_gaps` (``no_supporter``, point geometry,
        ``key_code`` when ranking small areas).
    by
        ``"key_code"`` (small areas: people without a location count in their small area) or
        ``"cell_id"`` (cells, one row per cell and district; people without a location cannot be
        placed in a cell and are left out).

    Returns
    -------
    pandas.DataFrame
        One row per unit: the unit key (``key_code``, or ``cell_id``), ``district_code``, the
        :data:`PARTS` (``unsupported`` is an integer count) and ``elderly`` (65+, apportioned).
        Join geometry from the small areas or from :func:`gis.coverage.uncovered_cells` /
        :func:`gis.mesh.jis_mesh` cells.
    """
    if by not in ("key_code", "cell_id"):
        raise ValueError(f"by should be 'key_code' or 'cell_id', got {by!r}")
    require("outreach units",
            coverage=(coverage, ("cell_id", "key_code", "district_code", "elderly", "elderly_alone",
                                 "covered")),
            gaps=(gaps, ("no_supporter", *(("key_code",) if by == "key_code" else ()))))
    keys = ["key_code"] if by == "key_code" else ["cell_id", "district_code"]
    frame = pd.DataFrame({k: coverage[k].to_numpy() for k in {*keys, "district_code"}})
    elderly = pd.to_numeric(coverage["elderly"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    frame["elderly_alone"] = pd.to_numeric(coverage["elderly_alone"], errors="coerce").fillna(0.0)
    frame["uncovered_elderly"] = np.where(coverage["covered"].to_numpy(dtype=bool), 0.0, elderly)
    frame["elderly"] = elderly
    agg = {"elderly_alone": "sum", "uncovered_elderly": "sum", "elderly": "sum"}
    if by == "key_code":
        agg["district_code"] = "first"
    units = frame.groupby(keys, sort=True).agg(agg)

    unsupported = gaps[gaps["no_supporter"].to_numpy(dtype=bool)]
    if by == "key_code":
        counts = unsupported.groupby("key_code").size()
    else:
        located = unsupported[~(unsupported.geometry.isna() | unsupported.geometry.is_empty)]
        hits = gpd.sjoin(located[[located.geometry.name]],
                         coverage[["cell_id", "district_code", coverage.geometry.name]],
                         predicate="intersects")
        # a person on a piece border goes to one piece only: the lowest cell, then district
        hits = hits.sort_values(["cell_id", "district_code"])
        hits = hits[~hits.index.duplicated(keep="first")]
        counts = hits.groupby(["cell_id", "district_code"]).size()
    units["unsupported"] = counts.reindex(units.index).fillna(0).astype(int)
    return units.reset_index()[[*keys, *([] if by == "cell_id" else ["district_code"]), *PARTS,
                                "elderly"]]


def outreach_priority(
    units: pd.DataFrame,
    *,
    by: str = "rate",
    weights: Mapping[str, float] | None = None,
    prior_elderly: float = PRIOR_ELDERLY,
) -> pd.DataFrame:
    """Rank places for coordinator visits by a transparent score, by rate and by count.

    Parameters
    ----------
    units
        A frame with the :data:`PARTS` columns and ``elderly`` (from :func:`outreach_units`, or
        any other units with those columns).
    by
        ``"rate"`` (default: shares of the elderly, shrunk towards the city's) or ``"count"``
        (people): which score is ``score`` and orders the output. Both are computed either way.
    weights
        Weight per part; default 1 each. A part with weight 0 is shown but does not score.
    prior_elderly
        ``k`` of the rates' shrinkage, in elderly people (>= 0; 0 means raw rates).

    Returns
    -------
    pandas.DataFrame
        ``units`` with ``rate_<part>`` (shrunk rate per elderly person), ``score_count`` and
        ``score_rate`` (0..100), ``rank_count`` and ``rank_rate`` (1 = visit first; equal scores
        share a rank; nullable, ``<NA>`` for a score of 0), and for the chosen ``by``:
        ``points_<part>`` (adding up to ``score``), ``score`` and ``rank``. Sorted by ``rank``
        (unranked last; ties keep their input order).
    """
    weights = {p: 1.0 for p in PARTS} if weights is None else dict(weights)
    problems = [f"missing column {p!r}" for p in (*PARTS, "elderly") if p not in units.columns]
    problems += [f"unknown part {p!r}" for p in weights if p not in PARTS]
    problems += [f"weight of {p!r} should be >= 0, got {w!r}" for p, w in weights.items() if w < 0]
    if by not in ORDERS:
        problems.append(f"by should be one of {ORDERS}, got {by!r}")
    if not prior_elderly >= 0:
        problems.append(f"prior_elderly should be >= 0, got {prior_elderly!r}")
    total = sum(weights.get(p, 0.0) for p in PARTS)
    if not problems and total <= 0:
        problems.append("at least one weight should be > 0")
    if problems:
        raise ValueError("cannot rank outreach: " + "; ".join(problems))
    out = units.copy()
    elderly = _numbers(out["elderly"])
    points: dict[str, dict[str, np.ndarray]] = {"count": {}, "rate": {}}
    nothing = np.logical_and.reduce([_numbers(out[p]) <= 0 for p in PARTS]) if len(out) else np.zeros(0, bool)
    for part in PARTS:
        value = _numbers(out[part])
        rate = np.where(nothing, 0.0, _shrunk_rate(value, elderly, prior_elderly))
        out[f"rate_{part}"] = rate
        for order, figure in (("count", value), ("rate", rate)):
            points[order][part] = _scaled(figure, weights.get(part, 0.0) / total)
    for order in ORDERS:
        score = sum(points[order].values(), np.zeros(len(out)))
        out[f"score_{order}"] = score
        out[f"rank_{order}"] = _ranks(score)
    for part in PARTS:
        out[f"points_{part}"] = points[by][part]
    out["score"] = out[f"score_{by}"]
    out["rank"] = out[f"rank_{by}"]
    order = out["rank"].astype("Float64").fillna(np.inf).to_numpy(dtype=float)
    return out.iloc[np.argsort(order, kind="stable")].reset_index(drop=True)


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").fillna(0.0).to_numpy(dtype=float)


def _shrunk_rate(value: np.ndarray, elderly: np.ndarray, k: float) -> np.ndarray:
    """``(value + k × city rate) / (elderly + k)``; 0 where ``elderly + k`` is 0."""
    city_elderly = elderly[elderly > 0].sum()
    city = value[elderly > 0].sum() / city_elderly if city_elderly > 0 else 0.0
    below = elderly + k
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (value + k * city) / below
    return np.where(below > 0, np.nan_to_num(rate, nan=0.0, posinf=0.0, neginf=0.0), 0.0)


def _scaled(figure: np.ndarray, share: float) -> np.ndarray:
    """``100 × share × figure / max(figure)`` (zeros when the maximum is not above 0)."""
    top = figure.max() if len(figure) else 0.0
    return 100.0 * share * figure / top if top > 0 else np.zeros(len(figure))


def _ranks(score: np.ndarray) -> pd.array:
    """1 = highest; equal scores share the lowest rank; a score of 0 (or less) gets no rank."""
    ranked = pd.Series(np.where(score > 0, score, np.nan)).rank(method="min", ascending=False)
    return pd.array(ranked.round().astype("Int64"), dtype="Int64")


def suppress_counts(frame: pd.DataFrame, columns, *, max_small: int = 2) -> pd.DataFrame:
    """For publication: counts from 1 to ``max_small`` become null (秘匿); 0 and larger stay.

    Fractional (apportioned) values are rounded before the test, so 2.4 people is suppressed too.
    Returns a copy; the columns become nullable floats.
    """
    out = frame.copy()
    for col in columns:
        value = pd.to_numeric(out[col], errors="coerce").astype("Float64")
        small = (value.round() >= 1) & (value.round() <= max_small)
        out[col] = value.mask(small.fillna(False))
    return out
