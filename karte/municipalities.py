"""Which municipality a row belongs to: every layer carries ``municipality_code`` (JIS code).

The census small areas say it themselves (the first five digits of the KEY_CODE); everything else
takes the municipality of the small area it lies in: districts by their small areas, points
(shelters, the register, cooperators, services) by location, and, for a row without a location,
by its small area's key code or its district.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from gis.overlay import locate_points
from karte.domain.layers import MUNICIPALITY


def of_key_codes(key_codes: pd.Series) -> pd.Series:
    """The municipality code of e-Stat KEY_CODEs (their first five digits; None for a missing one)."""
    text = key_codes.astype("string")
    return text.str.slice(0, 5).where(text.str.len() >= 5).astype(object).where(text.notna(), None)


def names(small_areas: pd.DataFrame) -> dict[str, str]:
    """Municipality code -> name (``青森市``, ``野辺地町``), from the small areas' full names
    (``青森県/青森市/小柳６丁目``, ``青森県/上北郡/野辺地町/字新田``: a town or village comes after
    its 郡)."""
    out: dict[str, str] = {}
    if "fullname" not in small_areas.columns:
        return out
    for code, full in zip(small_areas[MUNICIPALITY], small_areas["fullname"], strict=True):
        if code and code not in out and isinstance(full, str):
            out_name = name_of(full)
            if out_name:
                out[code] = out_name
    return out


def name_of(fullname: str) -> str | None:
    """The municipality in an e-Stat full name: ``青森県/上北郡/野辺地町/字新田`` -> ``野辺地町``."""
    parts = fullname.split("/")
    if len(parts) < 3:
        return None
    return parts[2] if parts[1].endswith("郡") and len(parts) >= 4 else parts[1]


def of_districts(districts: pd.DataFrame, small_areas: pd.DataFrame) -> pd.Series:
    """Each district's municipality: the one most of its small areas belong to."""
    pairs = small_areas[["district_code", MUNICIPALITY]].dropna()
    majority = pairs.groupby("district_code")[MUNICIPALITY].agg(lambda s: s.mode().iloc[0])
    return districts["district_code"].map(majority).astype(object).where(
        districts["district_code"].map(majority).notna(), None)


def stamp(frame: pd.DataFrame, small_areas: gpd.GeoDataFrame, *,
          districts: pd.DataFrame | None = None) -> pd.DataFrame:
    """``frame`` with ``municipality_code`` filled where it is missing: by location in the small
    areas, else by its ``key_code``, else by its district's (``districts`` with their code)."""
    out = frame.copy()
    current = (out[MUNICIPALITY] if MUNICIPALITY in out.columns
               else pd.Series([None] * len(out), index=out.index, dtype=object))
    found = current.astype(object).where(current.notna(), None)
    if isinstance(out, gpd.GeoDataFrame) and len(out) and out.geometry.name in out.columns:
        located = locate_points(out.to_crs(small_areas.crs), small_areas, MUNICIPALITY)
        found = found.where(found.notna(), pd.Series(located.to_numpy(), index=out.index))
    if "key_code" in out.columns:
        found = found.where(found.notna(), of_key_codes(out["key_code"]))
    if districts is not None and "district_code" in out.columns and MUNICIPALITY in districts.columns:
        by_district = dict(zip(districts["district_code"], districts[MUNICIPALITY], strict=True))
        found = found.where(found.notna(), out["district_code"].map(by_district))
    values = found.astype(object).where(found.notna(), None)
    if MUNICIPALITY in out.columns:
        out[MUNICIPALITY] = values
    else:  # right after the key, as the layer registry lists the columns
        out.insert(1 if len(out.columns) else 0, MUNICIPALITY, values.to_numpy())
    return out
