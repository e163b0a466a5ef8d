"""Cross-check the analysis layer against PostGIS on the whole synthetic Aomori demo.

An independent method: the points go into temporary PostGIS tables and the database answers
with ``ST_DWithin`` / ``ST_Distance`` (GEOS inside PostgreSQL, a GiST index), with no code from
``gis`` in the loop. Coverage (which pieces are within the walk of a monthly salon, summer and
winter, and the per-district covered elderly), supporter distances and the "too far" flags, and
the distance of every supporter suggestion must agree.
"""

from __future__ import annotations

import numpy as np
import pytest

from gis.coverage import active_salons, coverage_by_district, salon_coverage
from gis.gaps import assigned_supporters, evacuation_gaps
from gis.params import AnalysisParams
from gis.suggest import suggest_supporters
from karte.domain.schema import VOCABULARY

pytest_plugins = ["pg_fixtures"]
pytestmark = [pytest.mark.postgis, pytest.mark.slow]

PARAMS = AnalysisParams()


def load_points(conn, table: str, xy: np.ndarray) -> None:
    """A temporary point table (id = position) with a GiST index; rows without a location are left out."""
    conn.execute(f"CREATE TEMP TABLE {table} (id integer PRIMARY KEY, x float8, y float8)")
    with conn.cursor().copy(f"COPY {table} (id, x, y) FROM STDIN") as copy:
        for i, (x, y) in enumerate(xy):
            if np.isfinite(x) and np.isfinite(y):
                copy.write_row((i, float(x), float(y)))
    conn.execute(f"ALTER TABLE {table} ADD COLUMN geom geometry(Point, 6678)")
    conn.execute(f"UPDATE {table} SET geom = ST_SetSRID(ST_MakePoint(x, y), 6678)")
    conn.execute(f"CREATE INDEX ON {table} USING gist (geom)")
    conn.execute(f"ANALYZE {table}")


def coords(frame) -> np.ndarray:
    located = ~(frame.geometry.isna() | frame.geometry.is_empty)
    out = np.full((len(frame), 2), np.nan)
    out[located.to_numpy(), 0] = frame.geometry[located].x.to_numpy()
    out[located.to_numpy(), 1] = frame.geometry[located].y.to_numpy()
    return out


def test_coverage_agrees_with_st_dwithin(pg_admin, demo_layers, demo_surface):
    salons = active_salons(demo_layers["services"], vocab=VOCABULARY,
                           min_per_month=PARAMS.min_salon_per_month)
    load_points(pg_admin, "xc_pieces", demo_surface[["x", "y"]].to_numpy())
    load_points(pg_admin, "xc_salons", coords(salons))
    for params in (PARAMS, AnalysisParams(winter=True)):
        cov = salon_coverage(demo_surface, demo_layers["services"], vocab=VOCABULARY, params=params)
        radius = params.salon_walk_m / params.detour_factor
        rows = pg_admin.execute(
            "SELECT p.id FROM xc_pieces p WHERE EXISTS "
            "(SELECT 1 FROM xc_salons s WHERE ST_DWithin(p.geom, s.geom, %s))", (radius,)).fetchall()
        by_db = np.zeros(len(demo_surface), dtype=bool)
        by_db[[r[0] for r in rows]] = True
        ours = cov["covered"].to_numpy()
        differ = np.flatnonzero(by_db != ours)
        # only a piece exactly on the limit (rounding) may differ
        assert np.all(np.abs(cov["salon_m"].to_numpy()[differ] - params.salon_walk_m) < 1e-6)
        assert 1000 < ours.sum() < len(ours)

        # per-district covered elderly, summed by the database
        elderly = demo_surface["elderly"].fillna(0).to_numpy()
        codes = demo_surface["district_code"].to_numpy()
        table = coverage_by_district(cov)
        for code in ("S01", "S14", "S19", "S38"):
            mask = (codes == code) & by_db
            assert table.loc[code, "covered_elderly"] == pytest.approx(elderly[mask].sum(), rel=1e-9)


def test_supporter_distances_agree_with_st_distance(pg_admin, demo_layers):
    reg, coop = demo_layers["register"], demo_layers["cooperators"]
    gaps = evacuation_gaps(reg, coop, demo_layers["shelters"], demo_layers["emergency_sites"],
                           vocab=VOCABULARY, params=PARAMS)
    load_points(pg_admin, "xc_register", coords(reg))
    load_points(pg_admin, "xc_coop", coords(coop))
    pairs = assigned_supporters(reg, vocab=VOCABULARY)
    position = {c: i for i, c in enumerate(coop["cooperator_id"])}
    pairs = pairs[pairs["cooperator_id"].isin(position)]
    pg_admin.execute("CREATE TEMP TABLE xc_pairs (r integer, c integer)")
    with pg_admin.cursor().copy("COPY xc_pairs (r, c) FROM STDIN") as copy:
        for r, c in zip(pairs["row"], pairs["cooperator_id"].map(position), strict=True):
            copy.write_row((int(r), int(c)))
    rows = pg_admin.execute(
        "SELECT a.r, MIN(ST_Distance(r.geom, c.geom)), bool_and(NOT ST_DWithin(r.geom, c.geom, %s)) "
        "FROM xc_pairs a JOIN xc_register r ON r.id = a.r JOIN xc_coop c ON c.id = a.c GROUP BY a.r",
        (PARAMS.supporter_max_m / PARAMS.detour_factor,)).fetchall()
    assert len(rows) > 1000
    nearest = np.full(len(reg), np.nan)
    far = np.zeros(len(reg), dtype=bool)
    for r, d, all_far in rows:
        nearest[r] = d * PARAMS.detour_factor
        far[r] = all_far
    located = np.isfinite(coords(reg)[:, 0])
    assert np.allclose(gaps["supporter_m"].to_numpy()[located], nearest[located], equal_nan=True)
    assert (gaps["supporter_far"].to_numpy() == far).all()
    assert 0 < far.sum() < len(reg)


def test_suggestion_distances_agree_with_st_distance(pg_admin, demo_layers):
    reg, coop = demo_layers["register"], demo_layers["cooperators"]
    out = suggest_supporters(reg, coop, vocab=VOCABULARY, params=PARAMS)
    assert len(out) > 50
    p = {pid: i for i, pid in enumerate(reg["person_id"])}
    c = {cid: i for i, cid in enumerate(coop["cooperator_id"])}
    load_points(pg_admin, "xs_register", coords(reg))
    load_points(pg_admin, "xs_coop", coords(coop))
    pg_admin.execute("CREATE TEMP TABLE xs_sugg (k integer, r integer, c integer)")
    with pg_admin.cursor().copy("COPY xs_sugg (k, r, c) FROM STDIN") as copy:
        for k, (pid, cid) in enumerate(zip(out["person_id"], out["cooperator_id"], strict=True)):
            copy.write_row((k, p[pid], c[cid]))
    rows = pg_admin.execute(
        "SELECT s.k, ST_Distance(r.geom, c.geom), ST_DWithin(r.geom, c.geom, %s) FROM xs_sugg s "
        "JOIN xs_register r ON r.id = s.r JOIN xs_coop c ON c.id = s.c ORDER BY s.k",
        (PARAMS.suggest_m / PARAMS.detour_factor + 1e-6,)).fetchall()
    assert len(rows) == len(out)
    assert np.allclose([d * PARAMS.detour_factor for _, d, _ in rows], out["distance_m"].to_numpy())
    assert all(within for _, _, within in rows)
