"""Readers for the shipped real data: small areas, shelters, emergency sites.

Each reader validates what it reads, collects every problem, and raises one
:class:`~karte.domain.errors.ValidationError` naming file, row and column; on success it returns a clean
GeoDataFrame in :data:`gis.crs.METRIC`.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from gis import crs
from gis.geometry import repair_polygons
from karte.domain.errors import InputError, Problem, ValidationError
from karte.domain.schema import HAZARDS

#: e-Stat LOD small-area id, e.g. http://data.e-stat.go.jp/lod/smallArea/g00200521/2015/S02201055106
_SMALL_AREA_ID = re.compile(r"/S(\d{9}|\d{11})$")


def _read(path: Path, **kwargs) -> gpd.GeoDataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"ファイルがありません: {path}")
    try:
        return pyogrio.read_dataframe(path, **kwargs)
    except Exception as exc:  # pyogrio raises several kinds; all mean "not a readable layer"
        raise InputError(f"{path.name}: 地理データとして読めません ({exc})") from exc


def read_small_areas(path: Path) -> gpd.GeoDataFrame:
    """Read e-Stat LOD small areas (町丁・字) and clean them.

    * ``key_code``: the census KEY_CODE derived from the feature id (municipality code + S_AREA);
    * ``municipality_code``: its first five digits (the municipality's JIS code);
    * ``population`` and ``households``: integers (nullable); concealed (秘匿) areas stay null and get
      ``concealed = True`` — never 0;
    * invalid (self-intersecting) polygons are repaired; all geometries become MultiPolygons;
    * reprojected to EPSG:6678.

    The number of repaired geometries is kept in ``gdf.attrs["repaired"]``.
    """
    path = Path(path)
    raw = _read(path, fid_as_index=False)
    problems: list[Problem] = []
    if "id" not in raw.columns:
        raise InputError(f"{path.name}: 地物 id がありません (expected e-Stat LOD feature ids)")
    key_codes = []
    for i, fid in enumerate(raw["id"].astype(str)):
        m = _SMALL_AREA_ID.search(fid)
        if not m:
            problems.append(Problem(path.name, i + 1, "id", f"小地域IDの形式が違います: {fid[-40:]}",
                                    "feature id is not an e-Stat small-area URI"))
        key_codes.append(m.group(1) if m else None)
    out = gpd.GeoDataFrame(
        {
            "key_code": key_codes,
            "municipality_code": [k[:5] if k else None for k in key_codes],
            "name": raw.get("label"),
            "fullname": raw.get("fullname"),
        },
        geometry=raw.geometry,
        crs=raw.crs or crs.WGS84,
    )
    for col in ("population", "households"):
        values = raw[col] if col in raw.columns else pd.Series([None] * len(raw))
        parsed = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & (values.astype(str).str.strip() != "") & (
            parsed.isna() | (parsed < 0) | (parsed % 1 != 0)
        )
        for i in bad[bad].index:
            problems.append(Problem(path.name, int(i) + 1, col, "0以上の整数ではありません",
                                    "not a non-negative integer"))
        out[col] = parsed.astype("Int64")
    out["concealed"] = out["population"].isna()
    dup = out["key_code"].duplicated(keep=False) & out["key_code"].notna()
    for i in dup[dup].index:
        problems.append(Problem(path.name, int(i) + 1, "id", f"KEY_CODE {out.at[i, 'key_code']} が重複",
                                "duplicate KEY_CODE"))
    if problems:
        raise ValidationError(problems)
    out = out.to_crs(crs.METRIC)
    out, repaired = repair_polygons(out)
    out.attrs["repaired"] = repaired
    return out.sort_values("key_code").reset_index(drop=True)


def read_shelters(path: Path) -> gpd.GeoDataFrame:
    """Read GSI designated shelters (指定避難所). Rows with 受入対象者 are welfare shelters."""
    raw = _read(Path(path))
    _require(Path(path), raw, ["共通ID", "施設・場所名", "住所", "受入対象者"])
    accepts = raw["受入対象者"].fillna("").astype(str).str.strip()
    out = gpd.GeoDataFrame(
        {
            "shelter_id": raw["共通ID"].astype(str),
            "name": raw["施設・場所名"].astype(str),
            "address": raw["住所"].astype(str),
            "welfare": accepts != "",
            "accepts": accepts.where(accepts != "", None),
            "note": raw.get("備考"),
        },
        geometry=raw.geometry,
        crs=raw.crs or crs.WGS84,
    )
    return out.to_crs(crs.METRIC)


def read_emergency_sites(path: Path) -> gpd.GeoDataFrame:
    """Read GSI emergency evacuation sites (指定緊急避難場所) with one boolean per hazard."""
    raw = _read(Path(path))
    _require(Path(path), raw, ["共通ID", "施設・場所名", "住所", *HAZARDS.values()])
    data = {
        "site_id": raw["共通ID"].astype(str),
        "name": raw["施設・場所名"].astype(str),
        "address": raw["住所"].astype(str),
    }
    for eng, ja in HAZARDS.items():
        data[f"hazard_{eng}"] = raw[ja].fillna("").astype(str).str.strip() == "1"
    data["note"] = raw.get("備考")
    out = gpd.GeoDataFrame(data, geometry=raw.geometry, crs=raw.crs or crs.WGS84)
    return out.to_crs(crs.METRIC)


def _require(path: Path, df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValidationError(
            [Problem(path.name, None, c, "必要な列がありません", "required column missing")
             for c in missing]
        )
