"""Candidate salon sites (サロン候補地): the venues that would cover the most uncovered elderly.

This is the maximal covering location problem (MCLP, Church & ReVelle 1974): choose ``k``
candidate venues so that the population within walking distance of at least one of them is as
large as possible. Only people not yet covered by an existing salon count (the demand is the
uncovered pieces of :func:`gis.coverage.salon_coverage`).

Two solvers:

* ``"greedy"``: add, ``k`` times, the venue that covers the most still-uncovered people. Fast,
  and guaranteed to reach at least 63 % (1 - 1/e) of the optimum; usually much closer.
* ``"exact"``: the integer programme solved with CBC through :mod:`pulp`
  (maximise Σ w_i y_i subject to y_i ≤ Σ_{j covers i} x_j, Σ x_j = k, x binary, 0 ≤ y ≤ 1).
* ``"auto"`` (default): exact when the problem is small (:data:`EXACT_MAX_CANDIDATES` candidates
  that cover anyone and :data:`EXACT_MAX_PAIRS` demand-candidate pairs), greedy otherwise.

Either way each chosen site is reported with its *gain*: the people it adds over the sites ranked
before it (the chosen set is ordered greedily, so the first has the largest gain and the gains
add up to the total).
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse

from gis.check import require, same_crs
from gis.distance import walking_pairs
from gis.network import WalkNetwork
from gis.params import AnalysisParams

EXACT_MAX_CANDIDATES = 300
EXACT_MAX_PAIRS = 200_000

#: Words in a venue's name that mark a place where a salon can meet: community halls (福祉館,
#: 公民館, 集会所, 会館, 市民センター and its 分館, コミュニティセンター). Schools, parks and
#: hospitals are shelters or emergency sites but not salon rooms.
VENUE_PATTERN = (r"福祉館|公民館|集会所|集会場|会館|市民センター|分館|コミュニティ|ふれあいセンター"
                 r"|地区センター")


def candidate_venues(
    layers,
    *,
    name_pattern: str | Mapping[str, str | None] | None = VENUE_PATTERN,
    merge_m: float = 50.0,
) -> gpd.GeoDataFrame:
    """Pool candidate salon venues from several point layers, one row per place.

    Parameters
    ----------
    layers
        Mapping of source name -> point GeoDataFrame with a ``name`` column, e.g.
        ``{"shelters": shelters, "emergency_sites": sites, "halls": my_list}``, all in one CRS.
    name_pattern
        Regular expression a venue's name must contain (default :data:`VENUE_PATTERN`, community
        halls); ``None`` keeps every row (any supplied list of venues). A mapping gives one
        pattern (or ``None``) per source, e.g. every designated shelter but only the halls among
        the emergency sites (mostly parks); a source it does not name gets the default.
    merge_m
        Rows of the same name within this distance are one place (a school is both a shelter
        and an emergency site); the first listed is kept.

    Returns
    -------
    geopandas.GeoDataFrame
        ``venue_id`` (``"<source>:<row id or position>"``), ``name``, ``source`` and the point, in
        the layers' CRS; rows without a location are left out.
    """
    frames, crs = [], None
    problems = []
    for source, frame in dict(layers).items():
        if not isinstance(frame, gpd.GeoDataFrame):
            problems.append(f"{source!r} should be a GeoDataFrame, got {type(frame).__name__}")
            continue
        if "name" not in frame.columns:
            problems.append(f"{source!r} has no 'name' column")
            continue
        if crs is None:
            crs = frame.crs
        elif frame.crs != crs:
            problems.append(f"{source!r} should be in {crs}, got {frame.crs}")
            continue
        pattern = (name_pattern.get(source, VENUE_PATTERN) if isinstance(name_pattern, Mapping)
                   else name_pattern)
        id_col = next((c for c in frame.columns if c.endswith("_id")), None)
        ids = frame[id_col].astype(str).to_numpy() if id_col else np.arange(len(frame)).astype(str)
        part = pd.DataFrame({"venue_id": [f"{source}:{i}" for i in ids],
                             "name": frame["name"].astype(str).to_numpy(),
                             "source": source, "geometry": frame.geometry.to_numpy()})
        if pattern is not None:
            part = part[part["name"].str.contains(pattern, regex=True)]
        frames.append(part)
    if problems:
        raise ValueError("cannot pool candidate venues: " + "; ".join(problems))
    if not frames:
        return gpd.GeoDataFrame({"venue_id": [], "name": [], "source": []}, geometry=[], crs=crs)
    pool = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)
    pool = pool[~(pool.geometry.isna() | pool.geometry.is_empty)]
    keep = []
    for _, same in pool.groupby("name", sort=False):
        kept: list = []
        for idx, geom in same.geometry.items():
            if all(geom.distance(pool.geometry[k]) > merge_m for k in kept):
                kept.append(idx)
        keep.extend(kept)
    return pool.loc[sorted(keep)].reset_index(drop=True)


def site_salons(
    coverage: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    k: int,
    params: AnalysisParams | None = None,
    network: WalkNetwork | None = None,
    weight: str = "elderly",
    method: str = "auto",
) -> gpd.GeoDataFrame:
    """Choose up to ``k`` candidate venues that cover the most uncovered people.

    Parameters
    ----------
    coverage
        Output of :func:`gis.coverage.salon_coverage` (``x``, ``y``, ``covered`` and the ``weight`` column).
    candidates
        Candidate venues (points), e.g. community halls, shelters, emergency sites.
    k
        How many sites to choose.
    params
        Walking distance (``salon_walk_m``), detour factor.
    network
        Optional walking network.
    weight
        Population column to maximise (default ``"elderly"``, 65+; ``"age_75_plus"`` also works).
    method
        ``"auto"``, ``"greedy"`` or ``"exact"``.

    Returns
    -------
    geopandas.GeoDataFrame
        The chosen candidate rows (all their columns) in rank order, with ``rank`` (1..),
        ``gain`` (uncovered people it adds), ``cumulative_gain`` and ``method`` (the solver used).
        Fewer than ``k`` rows when no further venue would cover anyone new.
    """
    params = params or AnalysisParams()
    if method not in ("auto", "greedy", "exact"):
        raise ValueError(f"method should be 'auto', 'greedy' or 'exact', got {method!r}")
    if not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k should be a non-negative integer, got {k!r}")
    if not isinstance(weight, str) or weight not in getattr(coverage, "columns", ()):
        raise ValueError(f"coverage has no column {weight!r}")
    require("candidate sites", coverage=(coverage, ("x", "y", "covered")),
            candidates=(candidates, ()))
    same_crs("candidate sites", ("coverage", coverage), candidates=candidates)

    w_all = pd.to_numeric(coverage[weight], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    demand = np.flatnonzero(~coverage["covered"].to_numpy(dtype=bool) & (w_all > 0))
    pairs = walking_pairs(coverage[["x", "y"]].to_numpy(dtype=float)[demand], candidates.geometry,
                          max_m=params.salon_walk_m, detour_factor=params.detour_factor,
                          network=network)
    w = w_all[demand]
    useful = np.unique(pairs["destination"].to_numpy())
    cover = sparse.csc_matrix(
        (np.ones(len(pairs)), (pairs["origin"].to_numpy(), pairs["destination"].to_numpy())),
        shape=(len(demand), len(candidates)))
    if method == "auto":
        small = len(useful) <= EXACT_MAX_CANDIDATES and len(pairs) <= EXACT_MAX_PAIRS
        method = "exact" if small else "greedy"
    k = min(int(k), len(useful))
    if k == 0:
        chosen: list[int] = []
    elif method == "exact":
        chosen = _exact(cover, w, useful, k)
    else:
        chosen = list(useful)
    order, gains = _greedy(cover, w, chosen, k)

    out = candidates.iloc[order].copy()
    out["rank"] = np.arange(1, len(order) + 1)
    out["gain"] = gains
    out["cumulative_gain"] = np.cumsum(gains) if len(gains) else np.zeros(0)
    out["method"] = method
    return out


def _greedy(cover: sparse.csc_matrix, w: np.ndarray, allowed, k: int) -> tuple[list[int], list[float]]:
    """Greedy order among ``allowed`` candidates: up to ``k`` picks, each with a positive gain.

    Ties go to the candidate listed first.
    """
    allowed = np.asarray(sorted(allowed), dtype=int)
    left = w.copy()
    order: list[int] = []
    gains: list[float] = []
    sub = cover[:, allowed] if len(allowed) else None
    taken = np.zeros(len(allowed), dtype=bool)
    for _ in range(k):
        if sub is None:
            break
        gain = sub.T @ left
        gain[taken] = -1.0
        best = int(np.argmax(gain))
        if gain[best] <= 1e-12:
            break
        taken[best] = True
        order.append(int(allowed[best]))
        gains.append(float(gain[best]))
        rows = sub[:, best].nonzero()[0]
        left[rows] = 0.0
    return order, gains


def _exact(cover: sparse.csc_matrix, w: np.ndarray, useful: np.ndarray, k: int) -> list[int]:
    """The optimal set of ``k`` candidates (integer programme, CBC via pulp)."""
    import pulp

    problem = pulp.LpProblem("maximal_covering", pulp.LpMaximize)
    x = {int(j): pulp.LpVariable(f"x_{j}", cat="Binary") for j in useful}
    csr = cover.tocsr()
    rows = np.flatnonzero(np.diff(csr.indptr) > 0)
    y = {int(i): pulp.LpVariable(f"y_{i}", lowBound=0, upBound=1) for i in rows}
    problem += pulp.lpSum(float(w[i]) * y[i] for i in y)
    for i in y:
        covering = csr.indices[csr.indptr[i]:csr.indptr[i + 1]]
        problem += y[i] <= pulp.lpSum(x[int(j)] for j in covering)
    problem += pulp.lpSum(x.values()) == k
    status = problem.solve(pulp.PULP_CBC_CMD(msg=False))
    if pulp.LpStatus[status] != "Optimal":
        raise RuntimeError(f"the covering problem was not solved: {pulp.LpStatus[status]}")
    return [j for j, var in x.items() if var.value() is not None and var.value() > 0.5]
