"""Matching help wanted with help offered: one optimal assignment for all open requests at once.

Each request (a place, the kind of help, when it is wanted) is matched to at most one supporter
(a home point, the kinds of help they give, when they can, how far they will go, how many
requests they can take). A pair is **feasible** when

* the supporter offers the request's kind,
* their availability overlaps the request's time windows by at least ``min_overlap_min``
  minutes in the week (weekdays × hours, in slots of ``slot_min`` minutes; a request or
  supporter without days or hours is available every day / all day), and the supporter is
  available at all now (``available``: the caller's season rule),
* the walking distance (:mod:`gis.distance`: straight line × detour factor, or along a walking
  network when one is given) is within the supporter's reach (``reach_m``),
* the supporter has spare capacity (``capacity`` minus ``load``, the requests they already have).

Among feasible pairs the assignment is solved exactly, for every open request of a district or
the whole city together: **as many requests as possible are met first**, then the total cost is
least, where the cost of a pair is its walking distance less ``continuity_m`` when the supporter
helped this requester before (the same face at the door is worth a few hundred metres). It is
the assignment problem on capacity-expanded columns (a supporter with spare ``k`` is ``k``
columns), solved by :func:`scipy.optimize.linear_sum_assignment` with a penalty for infeasible
cells larger than any total of feasible costs, so the count comes first; each connected group of
requests and supporters (they do not interact) is solved on its own, which keeps a city small.
A greedy loop (each request in turn takes its nearest free supporter) can leave requests unmet
that the assignment meets, and make the total longer: :func:`greedy_match` is that baseline, kept
for comparison (``bench/matching.py``).

Where no supporter fits, :func:`match` says why, checking in this order: the request has no
place (``no_location``); nobody offers that kind (``no_kind``); nobody who offers it is
available at that time (``no_time``); nobody who offers it at that time lives near enough
(``too_far``); everyone near enough who could is at capacity, already or because the assignment
gave them to other requests (``at_capacity``). :func:`recruit_sites` then shows where one more
supporter would serve most unmet requests (a maximal-coverage choice, :func:`gis.siting.site_salons`).

Vocabularies stay with the caller: kinds, days and ids are whatever the caller's data uses
(days as integers 0..6, hours as minutes after midnight; :func:`parse_windows` reads the
``"09:00-12:00;13:00-15:00"`` form).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from gis.distance import point_xy, walking_pairs
from gis.network import WalkNetwork
from gis.params import AnalysisParams
from gis.siting import site_salons

#: Why a request is unmet, in the order they are checked.
REASONS = ("no_location", "no_kind", "no_time", "too_far", "at_capacity")
MINUTES_PER_DAY = 1440
#: Above this many cells a group is solved as a minimum-cost flow instead (same optimum, less memory).
DENSE_LIMIT = 20_000_000


@dataclass(frozen=True)
class MatchParams:
    """Parameters of :func:`match`.

    Attributes
    ----------
    detour_factor
        Walking distance ÷ straight-line distance without a network (as :class:`gis.params.AnalysisParams`).
    max_m
        Pairs are searched up to this walking distance: a supporter's reach (capped at it)
        decides which are feasible, and the others say how far the nearest supporter of an
        unmet request lives. A supporter without a reach gets this one.
    min_overlap_min
        Minutes per week the supporter's and the request's times must share.
    continuity_m
        A supporter who helped this requester before counts as this many metres nearer.
    slot_min
        The time grid of availability, minutes (a divisor of 1440).
    reach_scale
        ``(kind, factor)`` pairs: a supporter's reach is multiplied by ``factor`` for requests of
        that kind (winter: walking in snow shortens it, driving does not); kinds not listed: 1.
    """

    detour_factor: float = 1.3
    max_m: float = 3000.0
    min_overlap_min: int = 30
    continuity_m: float = 300.0
    slot_min: int = 15
    reach_scale: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        problems = []
        if not self.detour_factor >= 1:
            problems.append(f"detour_factor should be >= 1, got {self.detour_factor!r}")
        if not self.max_m > 0:
            problems.append(f"max_m should be > 0, got {self.max_m!r}")
        if self.min_overlap_min < 0:
            problems.append(f"min_overlap_min should be >= 0, got {self.min_overlap_min!r}")
        if self.continuity_m < 0:
            problems.append(f"continuity_m should be >= 0, got {self.continuity_m!r}")
        if self.slot_min <= 0 or MINUTES_PER_DAY % self.slot_min:
            problems.append(f"slot_min should divide 1440, got {self.slot_min!r}")
        if any(not factor > 0 for _, factor in self.reach_scale):
            problems.append(f"reach_scale factors should be > 0, got {self.reach_scale!r}")
        if problems:
            raise ValueError("invalid match parameters: " + "; ".join(problems))


@dataclass
class MatchResult:
    """What :func:`match` (or :func:`greedy_match`) found.

    Attributes
    ----------
    assignments
        One row per met request: ``request_id``, ``supporter_id``, ``distance_m``, ``overlap_min``
        (shared minutes per week), ``continuity`` (helped this requester before), ``cost``, and
        the supporter's ``capacity``, ``load`` (before this match) and ``spare`` (after it).
    unmet
        One row per request without a supporter: ``request_id``, ``reason`` (:data:`REASONS`),
        ``offering`` (located supporters who offer the kind), ``in_time`` (of those, available
        at the request's times), ``near`` (of those, within their reach), ``nearest_m`` (walking
        distance to the nearest of the ``in_time`` ones, searched up to ``max_m``; NaN if none)
        and ``taken`` (near ones with spare capacity that the assignment gave to other requests).
    candidates
        Every feasible pair (``request_id``, ``supporter_id``, ``distance_m``, ``overlap_min``,
        ``continuity``, ``cost``), cheapest first per request: the alternatives a coordinator
        may choose instead.
    solver
        ``"assignment"`` or ``"greedy"``.
    seconds
        Wall time of the call.
    """

    assignments: pd.DataFrame
    unmet: pd.DataFrame
    candidates: pd.DataFrame
    solver: str
    seconds: float = 0.0

    @property
    def met(self) -> int:
        return len(self.assignments)

    @property
    def total_distance_m(self) -> float:
        return float(self.assignments["distance_m"].sum()) if len(self.assignments) else 0.0


# --- availability --------------------------------------------------------------------------------

def parse_windows(text, *, separator: str = ";") -> list[tuple[int, int]]:
    """``"09:00-12:00;13:30-15:00"`` -> ``[(540, 720), (810, 900)]``; empty -> ``[]`` (all day).

    Raises ``ValueError`` for a window that is not ``H:MM-H:MM`` or ends before it starts.
    """
    out = []
    if text is None or (isinstance(text, float) and text != text):
        return out
    for part in (p.strip() for p in str(text).split(separator)):
        if not part:
            continue
        try:
            a, b = part.split("-")
            (h1, m1), (h2, m2) = (map(int, x.split(":")) for x in (a, b))
        except ValueError:
            raise ValueError(f"not a time window H:MM-H:MM: {part!r}") from None
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if not (0 <= m1 < 60 and 0 <= m2 < 60 and 0 <= start < end <= MINUTES_PER_DAY):
            raise ValueError(f"impossible time window: {part!r}")
        out.append((start, end))
    return out


def availability(days, windows, *, slot_min: int = 15) -> np.ndarray:
    """The week as a boolean mask of ``7 × 1440 / slot_min`` slots: the ``days`` (0 = Monday;
    empty: every day) × the ``windows`` (minutes; empty: all day). A slot counts when the window
    covers it wholly (9:10-10:00 in 15-minute slots is 9:15-10:00)."""
    per_day = MINUTES_PER_DAY // slot_min
    day = np.zeros(per_day, dtype=bool)
    for start, end in (windows or [(0, MINUTES_PER_DAY)]):
        day[-(-int(start) // slot_min):int(end) // slot_min] = True
    week = np.zeros((7, per_day), dtype=bool)
    for d in (sorted(set(days)) if days else range(7)):
        week[int(d)] = day
    return week.ravel()


def _masks(frame: pd.DataFrame, slot_min: int) -> np.ndarray:
    days = frame["days"] if "days" in frame.columns else [None] * len(frame)
    windows = frame["windows"] if "windows" in frame.columns else [None] * len(frame)
    if len(frame) == 0:
        return np.zeros((0, 7 * MINUTES_PER_DAY // slot_min), dtype=bool)
    return np.vstack([availability(_seq(d), _seq(w), slot_min=slot_min)
                      for d, w in zip(days, windows, strict=True)])


def _seq(value) -> list:
    if value is None or (isinstance(value, float) and value != value):
        return []
    return list(value)


def _id_set(value, separator: str) -> frozenset[str]:
    if value is None or (isinstance(value, float) and value != value):
        return frozenset()
    if isinstance(value, str):
        return frozenset(v.strip() for v in value.split(separator) if v.strip())
    return frozenset(str(v) for v in value)


# --- the match -----------------------------------------------------------------------------------

def match(
    requests: gpd.GeoDataFrame,
    supporters: gpd.GeoDataFrame,
    *,
    params: MatchParams | None = None,
    network: WalkNetwork | None = None,
    separator: str = ";",
    limit: int | None = None,
) -> MatchResult:
    """Assign supporters to requests: most requests met, then least total cost (see the module).

    Parameters
    ----------
    requests
        Points, with ``request_id``, ``kind``; optional ``days`` (iterable of 0..6), ``windows``
        (list of ``(start, end)`` minutes) and ``previous`` (ids of supporters who helped this
        requester before: a set, or text joined by ``separator``).
    supporters
        Points, with ``supporter_id``, ``kinds`` (a set, or text joined by ``separator``),
        ``capacity`` (how many requests at once; missing: none) and optional ``load`` (requests
        they have now, default 0), ``reach_m`` (how far they go; missing: ``params.max_m``),
        ``days``, ``windows``, ``available`` (bool, default True: e.g. off-season is False).
    params
        :class:`MatchParams`.
    network
        A walking network (:func:`gis.network.walk_network`), or None for straight line × detour.
    limit
        Meet at most this many requests: the least total cost among the assignments of that size
        (to compare with a baseline at the number it met); default: as many as possible.

    Returns
    -------
    MatchResult
    """
    t0 = time.perf_counter()
    params = params or MatchParams()
    prepared = _prepare(requests, supporters, params=params, network=network, separator=separator)
    if limit is None:
        chosen = _solve(prepared.feasible, prepared.spare, len(prepared.rid), len(prepared.sid))
    else:
        chosen = _solve_at_most(prepared.feasible, prepared.spare, int(limit))
    result = _result(prepared, chosen, "assignment")
    result.seconds = time.perf_counter() - t0
    return result


def greedy_match(
    requests: gpd.GeoDataFrame,
    supporters: gpd.GeoDataFrame,
    *,
    params: MatchParams | None = None,
    network: WalkNetwork | None = None,
    separator: str = ";",
) -> MatchResult:
    """The baseline: requests in the order given, each taking its nearest feasible supporter with
    spare capacity left (the same feasibility as :func:`match`, nearest by walking distance)."""
    t0 = time.perf_counter()
    params = params or MatchParams()
    prepared = _prepare(requests, supporters, params=params, network=network, separator=separator)
    pairs = prepared.feasible.sort_values(["origin", "distance_m", "destination"], kind="stable")
    left = prepared.spare.copy()
    chosen = []
    for _, group in pairs.groupby("origin", sort=True):
        for j, row in zip(group["destination"].to_numpy(), group.index, strict=True):
            if left[j] > 0:
                left[j] -= 1
                chosen.append(row)
                break
    result = _result(prepared, pairs.loc[chosen], "greedy")
    result.seconds = time.perf_counter() - t0
    return result


@dataclass
class _Prepared:
    rid: np.ndarray
    sid: np.ndarray
    r_ok: np.ndarray
    kind_code: np.ndarray          # per request, -1: a kind nobody offers
    scale: np.ndarray              # per request: the reach multiplier of its kind
    offers: np.ndarray             # (supporters, kinds) bool
    r_mask: np.ndarray
    s_mask: np.ndarray
    available: np.ndarray
    s_ok: np.ndarray
    reach: np.ndarray
    capacity: np.ndarray
    load: np.ndarray
    spare: np.ndarray
    pairs: pd.DataFrame            # every located pair within max_m: origin, destination, distance_m
    feasible: pd.DataFrame         # + overlap_min, continuity, cost
    params: MatchParams


def _prepare(requests, supporters, *, params: MatchParams, network, separator: str) -> _Prepared:
    _check(requests, supporters)
    rid = requests["request_id"].astype(str).to_numpy()
    sid = supporters["supporter_id"].astype(str).to_numpy()
    rxy, r_ok = point_xy(requests.geometry)
    sxy, s_ok = point_xy(supporters.geometry)
    kinds_of = [_id_set(v, separator) for v in supporters["kinds"]]
    vocabulary = sorted(set().union(*kinds_of)) if kinds_of else []
    code = {k: i for i, k in enumerate(vocabulary)}
    offers = np.zeros((len(sid), len(vocabulary)), dtype=bool)
    for j, kinds in enumerate(kinds_of):
        offers[j, [code[k] for k in kinds]] = True
    kind_code = np.array([code.get(str(k), -1) for k in requests["kind"]], dtype=int)
    factors = dict(params.reach_scale)
    scale = np.array([float(factors.get(str(k), 1.0)) for k in requests["kind"]], dtype=float)

    capacity = pd.to_numeric(supporters["capacity"], errors="coerce").fillna(0).to_numpy(dtype=float)
    load = (pd.to_numeric(supporters["load"], errors="coerce").fillna(0).to_numpy(dtype=float)
            if "load" in supporters.columns else np.zeros(len(sid)))
    spare = np.maximum(capacity - load, 0).astype(int)
    reach = (pd.to_numeric(supporters["reach_m"], errors="coerce").fillna(params.max_m).to_numpy(dtype=float)
             if "reach_m" in supporters.columns else np.full(len(sid), params.max_m))
    reach = np.minimum(reach, params.max_m)
    available = (supporters["available"].fillna(False).to_numpy(dtype=bool)
                 if "available" in supporters.columns else np.ones(len(sid), dtype=bool))
    r_mask = _masks(requests, params.slot_min)
    s_mask = _masks(supporters, params.slot_min)

    # every pair up to max_m: a supporter's reach decides feasibility, the rest tells an unmet
    # request how far the nearest one lives
    pairs = walking_pairs(rxy, sxy, max_m=params.max_m, detour_factor=params.detour_factor, network=network)
    o, d = pairs["origin"].to_numpy(), pairs["destination"].to_numpy()
    dist = pairs["distance_m"].to_numpy()
    ok = (dist <= reach[d] * scale[o] + 1e-6) & (kind_code[o] >= 0)
    ok[ok] &= offers[d[ok], kind_code[o[ok]]]
    ok &= available[d] & (spare[d] > 0)
    overlap = np.zeros(len(pairs), dtype=float)
    idx = np.flatnonzero(ok)
    for chunk in np.array_split(idx, max(1, len(idx) // 20_000 + 1)):
        overlap[chunk] = (r_mask[o[chunk]] & s_mask[d[chunk]]).sum(axis=1) * params.slot_min
    ok &= overlap >= max(params.min_overlap_min, 1e-9)
    previous = ([_id_set(v, separator) for v in requests["previous"]] if "previous" in requests.columns
                else [frozenset()] * len(rid))
    feasible = pairs[ok].copy()
    feasible["overlap_min"] = overlap[ok]
    feasible["continuity"] = [sid[j] in previous[i]
                              for i, j in zip(feasible["origin"], feasible["destination"], strict=True)]
    feasible["cost"] = feasible["distance_m"] - params.continuity_m * feasible["continuity"].astype(float)
    feasible = feasible.reset_index(drop=True)
    return _Prepared(rid, sid, r_ok, kind_code, scale, offers, r_mask, s_mask, available, s_ok, reach,
                     capacity, load, spare, pairs, feasible, params)


def _check(requests, supporters) -> None:
    problems = []
    for name, frame, needed in (("requests", requests, ("request_id", "kind")),
                                ("supporters", supporters, ("supporter_id", "kinds", "capacity"))):
        if not isinstance(frame, gpd.GeoDataFrame):
            problems.append(f"{name!r} should be a GeoDataFrame, got {type(frame).__name__}")
            continue
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            problems.append(f"{name!r} lacks the columns {missing}")
    if not problems and requests.crs != supporters.crs:
        problems.append(f"'supporters' should be in the CRS of the requests ({requests.crs}), "
                        f"got {supporters.crs}")
    if not problems and requests.crs is not None and requests.crs.is_geographic:
        problems.append(f"the points should be in a metric CRS, got {requests.crs}")
    if problems:
        raise ValueError("cannot match: " + "; ".join(problems))


# --- the solver ----------------------------------------------------------------------------------

def _solve(feasible: pd.DataFrame, spare: np.ndarray, n_requests: int, n_supporters: int) -> pd.DataFrame:
    """The chosen rows of ``feasible``: most requests, then least total cost; group by group."""
    if feasible.empty:
        return feasible
    o = feasible["origin"].to_numpy()
    d = feasible["destination"].to_numpy()
    graph = sparse.coo_matrix((np.ones(len(o)), (o, n_requests + d)),
                              shape=(n_requests + n_supporters,) * 2)
    _, label = connected_components(graph, directed=False)
    chosen = []
    for _, group in feasible.groupby(label[o], sort=True):
        chosen.append(_solve_group(group, spare))
    return pd.concat(chosen).sort_index()


def _solve_group(group: pd.DataFrame, spare: np.ndarray) -> pd.DataFrame:
    rows, r_index = np.unique(group["origin"].to_numpy(), return_inverse=True)
    cols, c_index = np.unique(group["destination"].to_numpy(), return_inverse=True)
    # a supporter needs no more columns than the requests that could use them
    wanted = np.bincount(c_index, minlength=len(cols))
    copies = np.minimum(spare[cols], wanted)
    start = np.concatenate([[0], np.cumsum(copies)[:-1]])
    width = int(copies.sum())
    if len(rows) * width > DENSE_LIMIT:
        return _flow_group(group, spare)
    cost = group["cost"].to_numpy(dtype=float)
    shifted = cost - min(0.0, float(cost.min()))          # >= 0
    big = (len(rows) + 1) * (float(shifted.max()) + 1.0)   # more than any total of feasible costs
    matrix = np.full((len(rows), width), big)
    for k in range(int(copies.max())):
        has = copies[c_index] > k
        matrix[r_index[has], start[c_index[has]] + k] = shifted[has]
    picked_r, picked_c = linear_sum_assignment(matrix)
    real = matrix[picked_r, picked_c] < big
    picked_r, picked_c = picked_r[real], picked_c[real]
    column_owner = np.repeat(np.arange(len(cols)), copies)
    want = set(zip(rows[picked_r].tolist(), cols[column_owner[picked_c]].tolist(), strict=True))
    keep = [(r, c) in want
            for r, c in zip(group["origin"].tolist(), group["destination"].tolist(), strict=True)]
    out = group[np.asarray(keep, dtype=bool)]
    return out[~out["origin"].duplicated()]


def _solve_at_most(feasible: pd.DataFrame, spare: np.ndarray, limit: int) -> pd.DataFrame:
    """At most ``limit`` requests met, least total cost: one assignment over every request with a
    fit, with ``rows - limit`` free "skip" columns, so exactly that many rows go unmet (the budget
    is shared by all groups, so they are solved together)."""
    if feasible.empty or limit <= 0:
        return feasible.iloc[0:0]
    rows, r_index = np.unique(feasible["origin"].to_numpy(), return_inverse=True)
    cols, c_index = np.unique(feasible["destination"].to_numpy(), return_inverse=True)
    copies = np.minimum(spare[cols], np.bincount(c_index, minlength=len(cols)))
    start = np.concatenate([[0], np.cumsum(copies)[:-1]])
    skips = max(0, len(rows) - limit)
    width = int(copies.sum()) + skips
    cost = feasible["cost"].to_numpy(dtype=float)
    shifted = cost - min(0.0, float(cost.min()))
    big = (len(rows) + 1) * (float(shifted.max()) + 1.0)
    matrix = np.full((len(rows), width), big)
    matrix[:, width - skips:] = 0.0
    for k in range(int(copies.max())):
        has = copies[c_index] > k
        matrix[r_index[has], start[c_index[has]] + k] = shifted[has]
    picked_r, picked_c = linear_sum_assignment(matrix)
    real = (picked_c < width - skips) & (matrix[picked_r, picked_c] < big)
    owner = np.repeat(np.arange(len(cols)), copies)
    want = set(zip(rows[picked_r[real]].tolist(), cols[owner[picked_c[real]]].tolist(), strict=True))
    keep = [(r, c) in want
            for r, c in zip(feasible["origin"].tolist(), feasible["destination"].tolist(), strict=True)]
    out = feasible[np.asarray(keep, dtype=bool)]
    return out[~out["origin"].duplicated()]


def _flow_group(group: pd.DataFrame, spare: np.ndarray) -> pd.DataFrame:
    """The same optimum as a minimum-cost flow (for a group too large for a dense matrix)."""
    cost = group["cost"].to_numpy(dtype=float)
    shift = -min(0.0, float(cost.min()))
    graph = nx.DiGraph()
    for r in pd.unique(group["origin"]):
        graph.add_edge("source", ("r", int(r)), capacity=1, weight=0)
    for s in pd.unique(group["destination"]):
        graph.add_edge(("s", int(s)), "sink", capacity=int(spare[s]), weight=0)
    for (r, s), c in zip(group[["origin", "destination"]].itertuples(index=False), cost, strict=True):
        graph.add_edge(("r", int(r)), ("s", int(s)), capacity=1, weight=round((c + shift) * 10))
    flow = nx.max_flow_min_cost(graph, "source", "sink")
    used = [flow[("r", int(r))][("s", int(s))] > 0
            for r, s in group[["origin", "destination"]].itertuples(index=False)]
    return group[np.asarray(used, dtype=bool)]


# --- the answer ----------------------------------------------------------------------------------

def _result(p: _Prepared, chosen: pd.DataFrame, solver: str) -> MatchResult:
    used = np.bincount(chosen["destination"].to_numpy(dtype=int), minlength=len(p.sid)) if len(chosen) else \
        np.zeros(len(p.sid), dtype=int)
    assignments = pd.DataFrame({
        "request_id": p.rid[chosen["origin"].to_numpy(dtype=int)],
        "supporter_id": p.sid[chosen["destination"].to_numpy(dtype=int)],
        "distance_m": chosen["distance_m"].to_numpy(dtype=float),
        "overlap_min": chosen["overlap_min"].to_numpy(dtype=float),
        "continuity": chosen["continuity"].to_numpy(dtype=bool),
        "cost": chosen["cost"].to_numpy(dtype=float),
        "capacity": p.capacity[chosen["destination"].to_numpy(dtype=int)].astype(int),
        "load": p.load[chosen["destination"].to_numpy(dtype=int)].astype(int),
        "spare": (p.spare - used)[chosen["destination"].to_numpy(dtype=int)],
    }).sort_values("request_id").reset_index(drop=True)
    met = np.zeros(len(p.rid), dtype=bool)
    met[chosen["origin"].to_numpy(dtype=int)] = True
    unmet = _reasons(p, np.flatnonzero(~met), used)
    feas = p.feasible
    candidates = pd.DataFrame({
        "request_id": p.rid[feas["origin"].to_numpy(dtype=int)],
        "supporter_id": p.sid[feas["destination"].to_numpy(dtype=int)],
        "distance_m": feas["distance_m"].to_numpy(dtype=float),
        "overlap_min": feas["overlap_min"].to_numpy(dtype=float),
        "continuity": feas["continuity"].to_numpy(dtype=bool),
        "cost": feas["cost"].to_numpy(dtype=float),
    }).sort_values(["request_id", "cost", "supporter_id"]).reset_index(drop=True)
    return MatchResult(assignments, unmet, candidates, solver)


def _reasons(p: _Prepared, open_rows: np.ndarray, used: np.ndarray) -> pd.DataFrame:
    """Why each unmet request is unmet (the first failing test of :data:`REASONS`), vectorised:
    the time test is made once per distinct (availability, kind) of the unmet requests."""
    columns = ["request_id", "reason", "offering", "in_time", "near", "nearest_m", "taken"]
    n = len(open_rows)
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c in ("request_id", "reason") else float)
                             for c in columns})
    kinds = p.kind_code[open_rows]
    packed = np.packbits(p.r_mask[open_rows], axis=1)
    keys = np.column_stack([packed, (kinds + 1).astype(np.uint8)[:, None]]) if len(packed) else packed
    combos, combo_of = np.unique(keys, axis=0, return_inverse=True)
    combo_of = np.asarray(combo_of).ravel()
    offering = np.zeros((len(combos), len(p.sid)), dtype=bool)
    in_time = np.zeros((len(combos), len(p.sid)), dtype=bool)
    for c in range(len(combos)):
        first = open_rows[np.flatnonzero(combo_of == c)[0]]
        k = p.kind_code[first]
        if k < 0:
            continue
        offering[c] = p.offers[:, k] & p.s_ok
        overlap = (p.s_mask & p.r_mask[first]).sum(axis=1) * p.params.slot_min
        in_time[c] = offering[c] & p.available & (overlap >= max(p.params.min_overlap_min, 1e-9))
    slot = np.full(len(p.rid), -1)
    slot[open_rows] = np.arange(n)
    pairs = p.pairs
    o = pairs["origin"].to_numpy(dtype=int)
    mine = slot[o] >= 0
    o, d = slot[o[mine]], pairs["destination"].to_numpy(dtype=int)[mine]
    dist = pairs["distance_m"].to_numpy(dtype=float)[mine]
    timely = in_time[combo_of[o], d]
    near = timely & (dist <= p.reach[d] * p.scale[open_rows[o]] + 1e-6)
    nearest = np.full(n, np.inf)
    np.minimum.at(nearest, o[timely], dist[timely])
    near_count = np.bincount(o[near], minlength=n)
    taken = np.bincount(o[near & (p.spare[d] > 0)], minlength=n)
    offering_count = offering.sum(axis=1)[combo_of]
    in_time_count = in_time.sum(axis=1)[combo_of]
    reason = np.select([offering_count == 0, in_time_count == 0, near_count == 0],
                       ["no_kind", "no_time", "too_far"], default="at_capacity")
    located = p.r_ok[open_rows]
    frame = pd.DataFrame({
        "request_id": p.rid[open_rows],
        "reason": np.where(located, reason, "no_location"),
        "offering": np.where(located, offering_count, 0),
        "in_time": np.where(located, in_time_count, 0),
        "near": np.where(located, near_count, 0),
        "nearest_m": np.where(located & np.isfinite(nearest), nearest, np.nan),
        "taken": np.where(located, taken, 0),
    }, columns=columns)
    return frame.sort_values("request_id").reset_index(drop=True)


# --- recruiting ----------------------------------------------------------------------------------

def recruit_sites(
    unmet: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    reach_m: float,
    k: int = 3,
    detour_factor: float = 1.3,
    network: WalkNetwork | None = None,
    method: str = "auto",
) -> gpd.GeoDataFrame:
    """Where recruiting one more supporter would serve most unmet requests.

    The maximal covering choice of :func:`gis.siting.site_salons` with the unmet requests as the
    demand (one each) and ``candidates`` (e.g. small-area points, where a recruit could live) as
    the sites: up to ``k`` places, each with ``gain`` (unmet requests within ``reach_m`` walking
    of it that the places ranked before it do not reach), ``cumulative_gain`` and ``rank``.

    Parameters
    ----------
    unmet
        Points of the unmet requests (rows without a location are ignored).
    candidates
        Candidate home points, any columns (kept in the result).
    reach_m
        How far a recruit would walk (the typical supporter's reach).
    """
    if unmet.crs != candidates.crs:
        raise ValueError(f"'candidates' should be in the CRS of the unmet requests ({unmet.crs}), "
                         f"got {candidates.crs}")
    xy, ok = point_xy(unmet.geometry)
    demand = pd.DataFrame({"x": xy[ok, 0], "y": xy[ok, 1], "covered": False, "requests": 1.0})
    if demand.empty or candidates.empty or k <= 0:
        out = candidates.iloc[0:0].copy()
        for column in ("rank", "gain", "cumulative_gain"):
            out[column] = pd.Series(dtype=float)
        out["method"] = pd.Series(dtype=object)
        return out
    demand = gpd.GeoDataFrame(demand, geometry=gpd.points_from_xy(demand["x"], demand["y"]), crs=unmet.crs)
    params = AnalysisParams(walk_m=reach_m, detour_factor=detour_factor, winter=False)
    return site_salons(demand, candidates, k=k, params=params, network=network, weight="requests",
                       method=method)

