"""Cross-check the analysis layer against brute force on the whole synthetic Aomori demo.

Each check recomputes an answer the slow, obvious way (every distance of a full matrix, plain
loops, a different solver) and compares it with the fast functions of ``gis``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from gis.coverage import active_salons, coverage_by_district, salon_coverage
from gis.gaps import evacuation_gaps, gaps_by_district, needs_care, supporter_load
from gis.mesh import jis_mesh, population_surface
from gis.params import AnalysisParams
from gis.suggest import suggest_supporters
from karte.domain.schema import VOCABULARY

pytestmark = pytest.mark.slow

PARAMS = AnalysisParams()


def split_list(value) -> list[str]:
    """The ids of a list column (``supporter_ids``, ``help_kinds``), the plain way."""
    if value is None or value != value or value == "":
        return []
    return [v for v in str(value).split(VOCABULARY.list_separator) if v]


@pytest.fixture(scope="module")
def coverage(demo_layers, demo_surface):
    return salon_coverage(demo_surface, demo_layers["services"], vocab=VOCABULARY, params=PARAMS)


@pytest.fixture(scope="module")
def gaps(demo_layers):
    return evacuation_gaps(demo_layers["register"], demo_layers["cooperators"], demo_layers["shelters"],
                           demo_layers["emergency_sites"], vocab=VOCABULARY, params=PARAMS)


def brute_nearest(xy: np.ndarray, targets: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Straight-line distance to the nearest target, from a full distance matrix (chunked)."""
    out = np.empty(len(xy))
    for start in range(0, len(xy), chunk):
        block = xy[start:start + chunk]
        d = np.hypot(block[:, None, 0] - targets[None, :, 0], block[:, None, 1] - targets[None, :, 1])
        out[start:start + chunk] = d.min(axis=1)
    return out


def coords(frame) -> np.ndarray:
    return np.column_stack([frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()])


def test_surface_conserves_the_city_population(demo_layers, coverage):
    small = demo_layers["small_areas"]
    assert coverage["population"].sum() == pytest.approx(float(small["population"].sum()), rel=1e-9)
    elderly = (small["age_65_74"] + small["age_75_plus"]).sum()
    assert coverage["elderly"].sum() == pytest.approx(float(elderly), rel=1e-9)


def test_coverage_matches_a_full_distance_matrix(demo_layers, coverage):
    salons = active_salons(demo_layers["services"], vocab=VOCABULARY,
                           min_per_month=PARAMS.min_salon_per_month)
    # bimonthly and quarterly salons are left out
    assert 0 < len(salons) < (demo_layers["services"]["kind"] == "salon").sum()
    brute = brute_nearest(coverage[["x", "y"]].to_numpy(), coords(salons)) * PARAMS.detour_factor
    assert np.allclose(coverage["salon_m"].to_numpy(), brute, atol=1e-6)
    assert (coverage["covered"].to_numpy() == (brute <= PARAMS.salon_walk_m)).all()


def test_district_shares_match_a_plain_loop(demo_layers, coverage):
    table = coverage_by_district(coverage, districts=demo_layers["districts"])
    for code, rows in coverage.groupby("district_code"):
        elderly = rows["elderly"].fillna(0)
        covered = elderly[rows["covered"]].sum()
        assert table.loc[code, "covered_elderly"] == pytest.approx(covered)
        if elderly.sum() > 0:
            assert table.loc[code, "coverage_elderly"] == pytest.approx(covered / elderly.sum())
    city = coverage.loc[coverage["covered"], "elderly"].sum() / coverage["elderly"].sum()
    assert table["city_coverage_elderly"].iloc[0] == pytest.approx(city)
    assert set(table.index) == set(demo_layers["districts"]["district_code"])


def test_supporter_distances_match_brute_force(demo_layers, gaps):
    reg, coop = demo_layers["register"], demo_layers["cooperators"]
    where = dict(zip(coop["cooperator_id"], coords(coop), strict=True))
    xy = coords(reg)
    nearest, far = [], []
    for i, ids in enumerate(reg["supporter_ids"]):
        d = [np.hypot(*(xy[i] - where[c])) * PARAMS.detour_factor for c in split_list(ids) if c in where]
        nearest.append(min(d) if d else np.nan)
        far.append(bool(d) and all(v > PARAMS.supporter_max_m for v in d))
    assert np.allclose(gaps["supporter_m"].to_numpy(), nearest, equal_nan=True)
    assert gaps["supporter_far"].tolist() == far
    assert gaps["no_supporter"].tolist() == [np.isnan(v) for v in nearest]
    assert 0 < gaps["supporter_far"].sum() < len(gaps)


def test_overload_matches_counting_by_hand(demo_layers, gaps):
    reg, coop = demo_layers["register"], demo_layers["cooperators"]
    counts: dict[str, int] = {}
    for ids in reg["supporter_ids"]:
        for c in set(split_list(ids)):
            counts[c] = counts.get(c, 0) + 1
    capacity = dict(zip(coop["cooperator_id"], coop["capacity"], strict=True))
    over = {c for c, n in counts.items() if c in capacity and n > capacity[c]}
    expected = [bool(ids := [c for c in split_list(s) if c in capacity]) and all(c in over for c in ids)
                for s in reg["supporter_ids"]]
    assert gaps["supporter_overloaded"].tolist() == expected


def test_shelter_distances_match_brute_force(demo_layers, gaps):
    reg = demo_layers["register"]
    care = needs_care(reg, vocab=VOCABULARY).to_numpy()
    welfare = demo_layers["shelters"][demo_layers["shelters"]["welfare"].astype(bool)]
    emergency = demo_layers["emergency_sites"]
    sites = emergency[emergency[f"hazard_{PARAMS.hazard}"].astype(bool)]
    xy = coords(reg)
    brute = np.where(care, brute_nearest(xy, coords(welfare)), brute_nearest(xy, coords(sites)))
    brute = brute * PARAMS.detour_factor
    assert np.allclose(gaps["shelter_m"].to_numpy(), brute)
    reach = np.where(care, PARAMS.welfare_m, PARAMS.site_walk_m)
    assert gaps["no_shelter"].tolist() == (brute > reach).tolist()


def test_district_gap_counts_match_a_plain_loop(demo_layers, gaps):
    table = gaps_by_district(gaps, districts=demo_layers["districts"])
    reg = demo_layers["register"]
    for code, rows in reg.groupby("district_code"):
        shareable = rows["consent"].isin(["consented", "ordinance"])
        assert table.loc[code, "persons"] == len(rows)
        assert table.loc[code, "no_consent"] == (~shareable).sum()
        assert table.loc[code, "no_plan"] == (rows["plan_status"] != "done").sum()
    assert table["at_risk"].sum() == gaps["at_risk"].sum()


def test_suggestions_are_feasible_and_optimal(demo_layers):
    reg, coop = demo_layers["register"], demo_layers["cooperators"]
    out = suggest_supporters(reg, coop, vocab=VOCABULARY, params=PARAMS)
    load = supporter_load(reg, coop, vocab=VOCABULARY)
    assert len(out) > 0
    # feasible: willing, within spare capacity, within distance, only people without a supporter
    used = out["cooperator_id"].value_counts()
    assert (used <= load.loc[used.index, "spare"]).all()
    assert load.loc[used.index, "willing"].all()
    assert (out["distance_m"] <= PARAMS.suggest_m + 1e-6).all()
    assert out["person_id"].is_unique
    by_id = reg.set_index("person_id")
    known = set(coop["cooperator_id"])
    assert all(not [c for c in split_list(s) if c in known]
               for s in by_id.loc[out["person_id"], "supporter_ids"])
    where = coop.set_index("cooperator_id").geometry
    brute = [by_id.geometry[p].distance(where[c]) * PARAMS.detour_factor
             for p, c in zip(out["person_id"], out["cooperator_id"], strict=True)]
    assert np.allclose(out["distance_m"].to_numpy(), brute)

    # optimal: the same number served and the same total distance as a different exact solver
    # (linear_sum_assignment on capacity-expanded columns, a big penalty for infeasible pairs)
    known_ids = reg["supporter_ids"].map(lambda s: any(c in known for c in split_list(s)))
    people = reg[~known_ids.to_numpy()]
    helpers = load[load["willing"] & (load["spare"].fillna(0) > 0)]
    columns = np.repeat(helpers.index.to_numpy(), helpers["spare"].astype(int).to_numpy())
    hxy = coords(coop.set_index("cooperator_id").loc[columns])
    pxy = coords(people)
    d = np.hypot(pxy[:, None, 0] - hxy[None, :, 0], pxy[:, None, 1] - hxy[None, :, 1])
    d = d * PARAMS.detour_factor
    big = 1e9
    cost = np.where(d <= PARAMS.suggest_m, d, big)
    rows, cols = linear_sum_assignment(cost)
    feasible = cost[rows, cols] < big
    assert feasible.sum() == len(out)
    # flow costs are rounded to 0.1 m per suggestion
    assert out["distance_m"].sum() == pytest.approx(cost[rows, cols][feasible].sum(), abs=0.05 * len(out))


def test_coverage_by_district_equals_per_district_runs(demo_layers, coverage):
    """Running each district on its own (with every salon of the city) gives the same answer."""
    table = coverage_by_district(coverage)
    small = demo_layers["small_areas"]
    cells = jis_mesh(small, level=PARAMS.mesh_level)
    for code in ["S01", "S20", "S42"]:
        own = small[small["district_code"] == code]
        assert not own.empty
        part = salon_coverage(population_surface(own, cells), demo_layers["services"], vocab=VOCABULARY,
                              params=PARAMS)
        share = part.loc[part["covered"], "elderly"].sum() / part["elderly"].sum()
        assert table.loc[code, "coverage_elderly"] == pytest.approx(share)

