"""The matching engine (gis.matching): feasibility, one optimal assignment for all requests, the
reasons of the unmet, continuity, winter reach, network distances, and the recruiting places."""

from __future__ import annotations

import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from gis.crs import METRIC, WGS84
from gis.matching import (
    REASONS,
    MatchParams,
    availability,
    greedy_match,
    match,
    parse_windows,
    recruit_sites,
)
from gis.network import walk_network

STRAIGHT = MatchParams(detour_factor=1.0, max_m=2000.0, continuity_m=0.0)


def requests(rows, **extra):
    """rows: (request_id, (x, y) or None, kind) [+ days, windows, previous via ``extra`` lists]."""
    frame = gpd.GeoDataFrame(
        {"request_id": [r[0] for r in rows], "kind": [r[2] for r in rows], **extra},
        geometry=gpd.GeoSeries([shapely.Point(r[1]) if r[1] else None for r in rows], crs=METRIC))
    return frame


def supporters(rows, **extra):
    """rows: (supporter_id, (x, y), kinds, capacity, reach_m)."""
    return gpd.GeoDataFrame(
        {"supporter_id": [r[0] for r in rows], "kinds": [r[2] for r in rows],
         "capacity": [r[3] for r in rows], "reach_m": [r[4] for r in rows], **extra},
        geometry=gpd.GeoSeries([shapely.Point(r[1]) for r in rows], crs=METRIC))


def pairs(result):
    return dict(zip(result.assignments["request_id"], result.assignments["supporter_id"], strict=True))


def reasons(result):
    return dict(zip(result.unmet["request_id"], result.unmet["reason"], strict=True))


# --- availability -------------------------------------------------------------------------------

def test_windows_and_week_slots():
    assert parse_windows("09:00-12:00;13:30-15:00") == [(540, 720), (810, 900)]
    assert parse_windows("") == [] and parse_windows(None) == []
    for bad in ("12:00-09:00", "9-12", "25:00-26:00", "09:61-10:00"):
        with pytest.raises(ValueError):
            parse_windows(bad)
    week = availability([0, 2], [(540, 600)], slot_min=15)
    assert week.sum() == 2 * 4  # two days, four quarter hours
    assert week.reshape(7, -1)[0, 36:40].all() and not week.reshape(7, -1)[1].any()
    assert availability([], [], slot_min=30).all()  # no days, no hours: any time
    # a slot counts only when the window covers it wholly: 9:10-10:00 is three quarter hours
    assert availability([0], [(550, 600)], slot_min=15).sum() == 3


# --- feasibility and the reasons ----------------------------------------------------------------

def test_each_unmet_request_says_why():
    reqs = requests([("nowhere", None, "snow"), ("nokind", (0, 0), "childcare"),
                     ("notime", (0, 0), "shopping"),
                     ("far", (5000, 0), "snow"), ("full", (10, 0), "watching"), ("ok", (20, 0), "snow")],
                    windows=[[], [], [(1200, 1260)], [], [], []])
    sups = supporters([("a", (0, 0), "snow;shopping", 1, 800), ("b", (30, 0), "watching", 0, 800)],
                      windows=[[(540, 720)], []])
    out = match(reqs, sups, params=STRAIGHT)
    assert pairs(out) == {"ok": "a"}
    assert reasons(out) == {"nowhere": "no_location", "nokind": "no_kind", "notime": "no_time",
                            "far": "too_far", "full": "at_capacity"}
    assert set(reasons(out).values()) == set(REASONS)
    far = out.unmet.set_index("request_id").loc["far"]
    assert far["offering"] == 1 and far["in_time"] == 1 and far["near"] == 0 and np.isnan(far["nearest_m"])
    full = out.unmet.set_index("request_id").loc["full"]
    assert full["near"] == 1 and full["taken"] == 0  # b has no spare at all: full already


def test_at_capacity_counts_supporters_the_assignment_gave_to_others():
    reqs = requests([("r1", (0, 0), "snow"), ("r2", (1, 0), "snow")])
    sups = supporters([("a", (0, 5), "snow", 1, 300)])
    out = match(reqs, sups, params=STRAIGHT)
    assert out.met == 1
    unmet = out.unmet.iloc[0]
    assert unmet["reason"] == "at_capacity" and unmet["taken"] == 1 and unmet["nearest_m"] == pytest.approx(
        np.hypot(float(unmet["request_id"] == "r2"), 5.0))


def test_too_far_tells_the_nearest_distance_within_the_search():
    reqs = requests([("r", (0, 0), "snow")])
    sups = supporters([("a", (600, 0), "snow", 1, 300), ("b", (900, 0), "snow", 1, 300)])
    why = match(reqs, sups, params=STRAIGHT).unmet.iloc[0]
    assert why["reason"] == "too_far" and why["nearest_m"] == pytest.approx(600)


def test_days_and_hours_must_overlap_by_the_minimum():
    # request Tue 10:00-10:45; a: Tue 10:30-12:00 (15 min), b: Mon all day, c: Tue 09:00-11:00 (45 min)
    reqs = requests([("r", (0, 0), "watching")], days=[[1]], windows=[[(600, 645)]])
    sups = supporters([("a", (1, 0), "watching", 1, 500), ("b", (2, 0), "watching", 1, 500),
                       ("c", (300, 0), "watching", 1, 500)],
                      days=[[1], [0], [1]], windows=[[(630, 720)], [], [(540, 660)]])
    out = match(reqs, sups, params=STRAIGHT)
    assert pairs(out) == {"r": "c"}  # the nearest two do not overlap 30 minutes
    assert out.assignments.iloc[0]["overlap_min"] == 45


def test_unavailable_supporters_are_out_of_season():
    reqs = requests([("r", (0, 0), "watching")])
    sups = supporters([("summer", (1, 0), "watching", 1, 500)], available=[False])
    out = match(reqs, sups, params=STRAIGHT)
    assert out.met == 0 and reasons(out) == {"r": "no_time"}


def test_reach_is_the_supporters_own_and_scales_by_kind():
    reqs = requests([("walk", (0, 0), "snow"), ("drive", (0, 10), "transport")])
    sups = supporters([("a", (400, 0), "snow;transport", 2, 500)])
    summer = match(reqs, sups, params=STRAIGHT)
    assert pairs(summer) == {"walk": "a", "drive": "a"}
    winter = MatchParams(detour_factor=1.0, max_m=2000, continuity_m=0, reach_scale=(("snow", 0.7),))
    out = match(reqs, sups, params=winter)
    assert pairs(out) == {"drive": "a"} and reasons(out) == {"walk": "too_far"}  # 400 > 500 × 0.7


# --- the assignment -----------------------------------------------------------------------------

def test_meets_the_most_requests_not_the_nearest_first():
    # X (0,0), Y (100,0); a (60,0), b (250,0), reach 200: greedy in order gives X->a, then Y->b
    # (150); Y first would take a and leave X without anybody: the solver never does that
    reqs = requests([("Y", (100, 0), "snow"), ("X", (0, 0), "snow")])
    sups = supporters([("a", (60, 0), "snow", 1, 200), ("b", (250, 0), "snow", 1, 200)])
    out = match(reqs, sups, params=STRAIGHT)
    assert pairs(out) == {"X": "a", "Y": "b"}
    greedy = greedy_match(reqs, sups, params=STRAIGHT)
    assert greedy.met == 1 and pairs(greedy) == {"Y": "a"}
    assert out.solver == "assignment" and greedy.solver == "greedy"


def test_least_total_distance_among_full_assignments():
    # one by one X->a (20), Y->b (80) = 100; the optimum X->b (50), Y->a (10) = 60
    reqs = requests([("X", (0, 0), "snow"), ("Y", (30, 0), "snow")])
    sups = supporters([("a", (20, 0), "snow", 1, 500), ("b", (-50, 0), "snow", 1, 500)])
    out = match(reqs, sups, params=STRAIGHT)
    assert pairs(out) == {"X": "b", "Y": "a"} and out.total_distance_m == pytest.approx(60)
    assert greedy_match(reqs, sups, params=STRAIGHT).total_distance_m == pytest.approx(100)


def test_capacity_is_respected_and_load_counts():
    reqs = requests([(f"r{i}", (i, 0), "snow") for i in range(4)])
    sups = supporters([("a", (0, 1), "snow", 3, 500)], load=[1])
    out = match(reqs, sups, params=STRAIGHT)
    assert out.met == 2 and set(out.assignments["spare"]) == {0}
    assert (out.assignments["load"] == 1).all() and (out.assignments["capacity"] == 3).all()
    assert set(reasons(out).values()) == {"at_capacity"}


def test_continuity_prefers_the_supporter_who_helped_before():
    reqs = requests([("r", (0, 0), "snow")], previous=[{"far"}])
    sups = supporters([("near", (100, 0), "snow", 1, 800), ("far", (350, 0), "snow", 1, 800)])
    assert pairs(match(reqs, sups, params=STRAIGHT)) == {"r": "near"}
    keep = MatchParams(detour_factor=1.0, max_m=2000, continuity_m=300.0)
    out = match(reqs, sups, params=keep)
    assert pairs(out) == {"r": "far"} and out.assignments.iloc[0]["continuity"]
    # text ids joined by the separator work too
    joined = requests([("r", (0, 0), "snow")], previous=["x;far"])
    assert pairs(match(joined, sups, params=keep)) == {"r": "far"}


def test_network_distances_replace_the_straight_line():
    # request at (0,0), supporter at (100,0), but the only path goes round: 0,0 -> 0,300 ->
    # 100,300 -> 100,0 (700 m)
    graph = nx.Graph(crs=METRIC)
    for node, (x, y) in {1: (0, 0), 2: (0, 300), 3: (100, 300), 4: (100, 0)}.items():
        graph.add_node(node, x=x, y=y)
    graph.add_edges_from([(1, 2), (2, 3), (3, 4)])
    network = walk_network(graph)
    reqs = requests([("r", (0, 0), "snow")])
    sups = supporters([("a", (100, 0), "snow", 1, 500)])
    assert match(reqs, sups, params=STRAIGHT).met == 1
    out = match(reqs, sups, params=STRAIGHT, network=network)
    assert out.met == 0 and out.unmet.iloc[0]["reason"] == "too_far"
    assert out.unmet.iloc[0]["nearest_m"] == pytest.approx(700)


def test_candidates_list_every_feasible_pair_cheapest_first():
    reqs = requests([("r", (0, 0), "snow")])
    sups = supporters([("a", (300, 0), "snow", 1, 500), ("b", (100, 0), "snow", 1, 500),
                       ("c", (50, 0), "watching", 1, 500)])
    out = match(reqs, sups, params=STRAIGHT)
    assert out.candidates["supporter_id"].tolist() == ["b", "a"]


def test_inputs_are_checked():
    reqs = requests([("r", (0, 0), "snow")])
    sups = supporters([("a", (1, 0), "snow", 1, 500)])
    with pytest.raises(ValueError, match="lacks the columns"):
        match(reqs.drop(columns="kind"), sups)
    with pytest.raises(ValueError, match="CRS"):
        match(reqs, sups.to_crs(WGS84))
    with pytest.raises(ValueError, match="metric"):
        match(reqs.to_crs(WGS84), sups.to_crs(WGS84))
    with pytest.raises(ValueError, match="slot_min"):
        MatchParams(slot_min=7)


@pytest.mark.parametrize("seed", range(12))
def test_the_assignment_is_optimal_against_an_integer_programme(seed):
    """Random small instances: the same number met and the same least total cost as a minimum-cost
    flow solved independently (networkx), and never fewer met or a longer total than greedy."""
    rng = np.random.default_rng(seed)
    n_r, n_s = int(rng.integers(3, 12)), int(rng.integers(2, 7))
    kinds = ["snow", "watching"]
    reqs = requests([(f"r{i}", tuple(rng.uniform(0, 800, 2)), kinds[rng.integers(2)]) for i in range(n_r)],
                    previous=[{f"s{rng.integers(n_s)}"} if rng.random() < 0.3 else set() for _ in range(n_r)])
    sups = supporters([(f"s{j}", tuple(rng.uniform(0, 800, 2)), ";".join(kinds[: rng.integers(1, 3)]),
                        int(rng.integers(1, 3)), float(rng.integers(2, 8) * 50)) for j in range(n_s)])
    params = MatchParams(detour_factor=1.3, max_m=2000, continuity_m=100.0)
    out = match(reqs, sups, params=params)
    flow_met, flow_cost = _flow(out.candidates, sups)
    assert out.met == flow_met
    assert out.assignments["cost"].sum() == pytest.approx(flow_cost, abs=1e-6)
    greedy = greedy_match(reqs, sups, params=params)
    assert out.met >= greedy.met
    if out.met == greedy.met:
        assert out.assignments["cost"].sum() <= greedy.assignments["cost"].sum() + 1e-6
    # held to the greedy's count: as many met, never a larger total (the like-for-like comparison)
    same = match(reqs, sups, params=params, limit=greedy.met)
    assert same.met == greedy.met
    assert same.assignments["cost"].sum() <= greedy.assignments["cost"].sum() + 1e-6
    for k in range(out.met + 2):  # and the least total among assignments of that size (the flow)
        held = match(reqs, sups, params=params, limit=k)
        assert held.met == min(k, out.met)
        assert held.assignments["cost"].sum() == pytest.approx(_flow(out.candidates, sups, k)[1], abs=1e-6)
    used = out.assignments["supporter_id"].value_counts()
    assert (used <= sups.set_index("supporter_id").loc[used.index, "capacity"]).all()
    assert out.assignments["request_id"].is_unique
    assert set(out.assignments["request_id"]) | set(out.unmet["request_id"]) == set(reqs["request_id"])


def _flow(candidates: pd.DataFrame, sups, limit: int | None = None) -> tuple[int, float]:
    """Most met (at most ``limit``), then least cost, by networkx's max_flow_min_cost (integer costs
    in mm; the limit is the capacity of one edge in front of the source)."""
    graph = nx.DiGraph()
    if limit is not None:
        graph.add_edge("start", "src", capacity=int(limit), weight=0)
    capacity = dict(zip(sups["supporter_id"], sups["capacity"], strict=True))
    shift = -min(0.0, float(candidates["cost"].min())) if len(candidates) else 0.0
    for r, s, c in candidates[["request_id", "supporter_id", "cost"]].itertuples(index=False):
        graph.add_edge("src", ("r", r), capacity=1, weight=0)
        graph.add_edge(("r", r), ("s", s), capacity=1, weight=round((c + shift) * 1000))
        graph.add_edge(("s", s), "sink", capacity=int(capacity[s]), weight=0)
    if not len(candidates) or limit == 0:
        return 0, 0.0
    flow = nx.max_flow_min_cost(graph, "src" if limit is None else "start", "sink")
    met, cost = 0, 0.0
    for r, s, c in candidates[["request_id", "supporter_id", "cost"]].itertuples(index=False):
        if flow[("r", r)][("s", s)]:
            met += 1
            cost += c
    return met, cost


# --- recruiting ---------------------------------------------------------------------------------

def test_recruit_where_one_more_supporter_reaches_most_unmet():
    unmet = gpd.GeoDataFrame(geometry=[shapely.Point(x, 0) for x in (0, 50, 100, 2000)], crs=METRIC)
    places = gpd.GeoDataFrame({"place": ["west", "middle", "east"]},
                              geometry=[shapely.Point(-500, 0), shapely.Point(50, 10),
                                        shapely.Point(2000, 10)],
                              crs=METRIC)
    best = recruit_sites(unmet, places, reach_m=200, k=1, detour_factor=1.0)
    assert best["place"].tolist() == ["middle"] and best["gain"].tolist() == [3]
    two = recruit_sites(unmet, places, reach_m=200, k=2, detour_factor=1.0)
    assert two["place"].tolist() == ["middle", "east"] and two["cumulative_gain"].tolist() == [3, 4]
    assert recruit_sites(unmet.iloc[0:0], places, reach_m=200).empty


def test_many_requests_at_once_are_all_accounted_for_and_beat_greedy():
    rng = np.random.default_rng(7)
    kinds = ["snow", "watching", "shopping", "rubbish"]
    reqs = requests([(f"r{i}", tuple(rng.uniform(0, 8000, 2)), kinds[i % 4]) for i in range(600)],
                    windows=[[(540, 720)] if i % 3 else [] for i in range(600)])
    sups = supporters([(f"s{j}", tuple(rng.uniform(0, 8000, 2)), ";".join(itertools.islice(
        itertools.cycle(kinds), j % 4, j % 4 + 2)), int(rng.integers(1, 4)), 800.0) for j in range(500)])
    out = match(reqs, sups, params=MatchParams())
    assert out.met + len(out.unmet) == 600
    assert out.met >= greedy_match(reqs, sups, params=MatchParams()).met
