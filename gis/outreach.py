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

The score is a weighted sum of the parts, each part scaled by the city's largest value of that
part: ``points_<part> = 100 × w_part / Σw × value / max(value)`` and ``score = Σ points``, from 0
to 100. With equal weights (the default), a place that has the most of all three scores 100; the
place with the most elderly living alone in the city gets 33.3 points for that part alone.
Scaling by the maximum keeps the parts comparable (people vs. register entries) while staying
readable: every point is a share of "the worst place in the city".
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.check import require

PARTS = ("elderly_alone", "uncovered_elderly", "unsupported")


def outreach_units(
    coverage: gpd.GeoDataFrame,
    gaps: gpd.GeoDataFrame,
    *,
    by: str = "key_code",
) -> pd.DataFrame:
    """The three parts of the outreach score per small area or per grid cell.

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
        One row per unit: the unit key (``key_code``, or ``cell_id``), ``district_code`` and the
        :data:`PARTS` (``unsupported`` is an integer count). Join geometry from the small areas or
        from :func:`gis.coverage.uncovered_cells` / :func:`gis.mesh.jis_mesh` cells.
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
    agg = {"elderly_alone": "sum", "uncovered_elderly": "sum"}
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
    return units.reset_index()[[*keys, *([] if by == "cell_id" else ["district_code"]), *PARTS]]


def outreach_priority(
    units: pd.DataFrame,
    *,
    weights: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Rank places for coordinator visits by a transparent score.

    Parameters
    ----------
    units
        A frame with the :data:`PARTS` columns (from :func:`outreach_units`, or any other
        units with those columns).
    weights
        Weight per part; default 1 each. A part with weight 0 is shown but does not score.

    Returns
    -------
    pandas.DataFrame
        ``units`` with ``points_<part>`` per part, ``score`` (0..100) and ``rank`` (1 = visit
        first; equal scores share a rank), sorted by rank (ties keep their input order).
    """
    weights = {p: 1.0 for p in PARTS} if weights is None else dict(weights)
    problems = [f"missing column {p!r}" for p in PARTS if p not in units.columns]
    problems += [f"unknown part {p!r}" for p in weights if p not in PARTS]
    problems += [f"weight of {p!r} should be >= 0, got {w!r}" for p, w in weights.items() if w < 0]
    total = sum(weights.get(p, 0.0) for p in PARTS)
    if not problems and total <= 0:
        problems.append("at least one weight should be > 0")
    if problems:
        raise ValueError("cannot rank outreach: " + "; ".join(problems))
    out = units.copy()
    score = np.zeros(len(out))
    for part in PARTS:
        value = pd.to_numeric(out[part], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        top = value.max() if len(value) else 0.0
        points = (100.0 * weights.get(part, 0.0) / total * value / top) if top > 0 else np.zeros(len(out))
        out[f"points_{part}"] = points
        score = score + points
    out["score"] = score
    out["rank"] = pd.Series(score).rank(method="min", ascending=False).astype(int).to_numpy()
    return out.sort_values("rank", kind="stable").reset_index(drop=True)


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
