"""Salon coverage (サロンの徒歩圏カバー率): who lives within walking distance of a salon.

A piece of the population surface (:func:`gis.mesh.population_surface`) is *covered* when the
walking distance from its population point to the nearest counting salon is at most
:attr:`gis.params.AnalysisParams.salon_walk_m` (500 m, 350 m in winter). All salons of the city
count for every piece, whatever district either is in: a salon on a district border covers both
sides, and a district with no salon of its own can still be covered from its neighbour's.

A salon counts when its ``kind`` is ``"salon"`` and it meets at least ``min_salon_per_month``
times a month (the caller's :attr:`gis.vocab.Vocabulary.frequency_per_month` turns the
``frequency`` word into sessions a month). Coverage is reported for the elderly (65+) and the
75+; concealed (秘匿) small areas have no figures and add nothing to either side of the share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd

from gis.check import require, same_crs
from gis.distance import nearest_walking
from gis.params import AnalysisParams
from gis.vocab import Vocabulary

if TYPE_CHECKING:  # the network (networkx) is the caller's: never imported for the type alone
    from gis.network import WalkNetwork

#: (population column of the surface, suffix of the output columns)
GROUPS = (("elderly", "elderly"), ("age_75_plus", "75_plus"))


def active_salons(
    services: pd.DataFrame,
    *,
    vocab: Vocabulary,
    min_per_month: float = 1.0,
) -> pd.DataFrame:
    """The salons that count: ``kind == "salon"`` held at least ``min_per_month`` times a month.

    A salon with no ``frequency`` does not count (its schedule is unknown). A frequency word
    not in ``vocab.frequency_per_month`` is an error: every unknown word is listed.

    Parameters
    ----------
    services
        The services layer (``kind``, ``frequency``).
    vocab
        The caller's vocabularies (:class:`gis.vocab.Vocabulary`); its ``frequency_per_month``
        turns a ``frequency`` word into sessions per month.
    min_per_month
        Minimum sessions per month.
    """
    frequency_per_month = vocab.frequency_per_month
    missing = [c for c in ("kind", "frequency") if c not in services.columns]
    if missing:
        raise ValueError(f"services should have the columns {missing}")
    salons = services[services["kind"] == "salon"]
    freq = salons["frequency"]
    unknown = sorted({str(f) for f in freq.dropna() if f not in frequency_per_month})
    if unknown:
        raise ValueError(f"unknown salon frequency {unknown}; expected one of "
                         f"{sorted(frequency_per_month)}")
    per_month = freq.map(lambda f: frequency_per_month.get(f, np.nan)).astype(float)
    return salons[per_month.fillna(-1.0).to_numpy() >= min_per_month]


def salon_coverage(
    surface: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame,
    *,
    vocab: Vocabulary,
    params: AnalysisParams | None = None,
    network: WalkNetwork | None = None,
) -> gpd.GeoDataFrame:
    """Mark each piece of the population surface covered or not by a salon.

    Parameters
    ----------
    surface
        Pieces from :func:`gis.mesh.population_surface` (needs ``x``, ``y``).
    services
        The services layer with point geometry; the counting salons are picked by
        :func:`active_salons` with ``params.min_salon_per_month``.
    vocab
        The caller's vocabularies (:class:`gis.vocab.Vocabulary`): salon frequency words.
    params
        Analysis parameters (walking distance, winter, detour factor).
    network
        Optional walking network; straight line × detour factor without one.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy of ``surface`` with ``salon_id`` (nearest counting salon's ``service_id``, or
        None), ``salon_m`` (walking distance to it; inf when there is none) and ``covered``.
    """
    params = params or AnalysisParams()
    require("salon coverage", surface=(surface, ("x", "y")),
            services=(services, ("kind", "frequency")))
    same_crs("salon coverage", ("surface", surface), services=services)
    salons = active_salons(services, vocab=vocab, min_per_month=params.min_salon_per_month)
    nearest = nearest_walking(surface[["x", "y"]].to_numpy(dtype=float), salons.geometry,
                              detour_factor=params.detour_factor, network=network)
    out = surface.copy()
    ids = (salons["service_id"] if "service_id" in salons.columns
           else pd.Series(np.arange(len(salons)))).to_numpy(dtype=object)
    j = nearest["nearest"].to_numpy()
    out["salon_id"] = [ids[k] if k >= 0 else None for k in j]
    out["salon_m"] = nearest["distance_m"].to_numpy()
    out["covered"] = out["salon_m"].to_numpy() <= params.salon_walk_m + 1e-6
    return out


def coverage_by_district(
    coverage: pd.DataFrame,
    *,
    districts: pd.DataFrame | None = None,
    salons: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per district: elderly and 75+ people covered and not, the shares, and the city's beside.

    Parameters
    ----------
    coverage
        Output of :func:`salon_coverage` (needs ``district_code``, ``elderly``,
        ``age_75_plus``, ``covered``).
    districts
        Optional districts (``district_code``): every district gets a row, also one with no
        pieces; otherwise only the districts present in ``coverage``.
    salons
        Optional counting salons (:func:`active_salons`) with ``district_code``: adds ``salons``,
        how many are in each district.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``district_code``. For each group ``g`` in (``elderly`` = 65+, ``75_plus``):
        the group total (``elderly`` / ``age_75_plus``), ``covered_g``, ``uncovered_g``,
        ``coverage_g`` (covered ÷ total; NaN when the district has no one in the group) and
        ``city_coverage_g`` (the same share for the whole city). Plus ``salons`` when given.
    """
    require("coverage by district",
            coverage=(coverage, ("district_code", "covered", *(c for c, _ in GROUPS))))
    frame = pd.DataFrame({"district_code": coverage["district_code"].to_numpy(),
                          "covered": coverage["covered"].to_numpy(dtype=bool)})
    out_cols = {}
    city = {}
    for col, suffix in GROUPS:
        values = pd.to_numeric(coverage[col], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        frame[col] = values
        frame[f"covered_{suffix}"] = np.where(frame["covered"], values, 0.0)
        city[suffix] = (frame[f"covered_{suffix}"].sum(), values.sum())
    grouped = frame.groupby("district_code", sort=True)
    sums = grouped[[c for c, _ in GROUPS] + [f"covered_{s}" for _, s in GROUPS]].sum()
    if districts is not None:
        codes = pd.Index(pd.unique(districts["district_code"]), name="district_code")
        sums = sums.reindex(codes.union(sums.index, sort=True)).fillna(0.0)
    for col, suffix in GROUPS:
        total, covered = sums[col], sums[f"covered_{suffix}"]
        out_cols[col] = total
        out_cols[f"covered_{suffix}"] = covered
        out_cols[f"uncovered_{suffix}"] = total - covered
        out_cols[f"coverage_{suffix}"] = (covered / total.where(total > 0)).astype(float)
        c_cov, c_tot = city[suffix]
        out_cols[f"city_coverage_{suffix}"] = c_cov / c_tot if c_tot > 0 else np.nan
    out = pd.DataFrame(out_cols, index=sums.index)
    if salons is not None:
        counts = salons.groupby("district_code").size()
        out["salons"] = counts.reindex(out.index).fillna(0).astype(int)
    out.index.name = "district_code"
    return out


def uncovered_cells(coverage: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The map layer of uncovered cells: uncovered pieces with elderly people, per cell and district.

    Pieces of one cell in the same district are merged; a cell split by a district border keeps
    one row per district, so each district's map shows exactly its own part.

    Returns
    -------
    geopandas.GeoDataFrame
        ``cell_id``, ``district_code``, ``elderly``, ``age_75_plus`` (uncovered people, floats)
        and ``salon_m`` (walking distance to the nearest counting salon, the smallest over the
        merged pieces), sorted by uncovered elderly, most first.
    """
    require("uncovered cells", coverage=(coverage, ("cell_id", "district_code", "covered", "elderly",
                                                     "age_75_plus", "salon_m")))
    elderly = pd.to_numeric(coverage["elderly"], errors="coerce").fillna(0.0)
    rows = coverage[(~coverage["covered"].astype(bool)) & (elderly > 0)]
    keys = ["cell_id", "district_code"]
    if rows.empty:
        return gpd.GeoDataFrame({**{k: [] for k in keys}, "elderly": [], "age_75_plus": [],
                                 "salon_m": []}, geometry=[], crs=coverage.crs)
    parts = rows[[*keys, "elderly", "age_75_plus", "salon_m", rows.geometry.name]].copy()
    parts["elderly"] = pd.to_numeric(parts["elderly"], errors="coerce").fillna(0.0)
    parts["age_75_plus"] = pd.to_numeric(parts["age_75_plus"], errors="coerce").fillna(0.0)
    out = parts.dissolve(by=keys, aggfunc={"elderly": "sum", "age_75_plus": "sum",
                                           "salon_m": "min"}).reset_index()
    return out.sort_values(["elderly", "cell_id"], ascending=[False, True]).reset_index(drop=True)
