"""District definitions: the small-area -> district mapping table, and district polygon files.

Mapping CSV schema (UTF-8, header row; see ``docs/data-model.md``)::

    key_code,district_code,district_name
    02201055106,S01,（仮）小柳地区

Every small area must appear exactly once. Aomori's real 地区社協 list is not available, so the
shipped ``data/districts/aomori_standin_districts.csv`` is a *stand-in* built by
:func:`build_standin_mapping`; its district codes start with ``S`` and names with ``（仮）``.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import geopandas as gpd
import pandas as pd

from gis import crs
from gis.districts import contiguity_components, regionalize
from gis.geometry import repair_polygons
from karte.domain.errors import InputError, Problem, ValidationError

MAPPING_COLUMNS = ("key_code", "district_code", "district_name")
STANDIN_PREFIX = "（仮）"


def read_mapping(path: Path, small_areas: pd.DataFrame) -> pd.DataFrame:
    """Read and validate a mapping CSV against the small areas; raise with every problem."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"ファイルがありません: {path}")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"{path.name}: CSV として読めません ({exc})") from exc
    return validate_mapping(table, small_areas, source=path.name)


def validate_mapping(table: pd.DataFrame, small_areas: pd.DataFrame, *, source: str) -> pd.DataFrame:
    problems: list[Problem] = []
    missing = [c for c in MAPPING_COLUMNS if c not in table.columns]
    if missing:
        raise ValidationError([Problem(source, 1, c, "必要な列がありません", "required column missing")
                               for c in missing])
    table = table[list(MAPPING_COLUMNS)].apply(lambda s: s.str.strip())
    known = set(small_areas["key_code"])
    seen: dict[str, int] = {}
    names: dict[str, str] = {}
    for i, (key, code, name) in enumerate(table.itertuples(index=False), start=2):
        if key not in known:
            problems.append(Problem(source, i, "key_code", f"小地域 {key} は境界データにありません",
                                    "unknown small-area key code"))
        if key in seen:
            problems.append(Problem(source, i, "key_code",
                                    f"小地域 {key} が {seen[key]} 行目と重複しています",
                                    "small area mapped twice"))
        seen.setdefault(key, i)
        if not code:
            problems.append(Problem(source, i, "district_code", "地区コードが空です",
                                    "empty district code"))
        if not name:
            problems.append(Problem(source, i, "district_name", "地区名が空です", "empty name"))
        elif code and names.setdefault(code, name) != name:
            problems.append(Problem(source, i, "district_name",
                                    f"地区 {code} の名前が他の行と違います", "inconsistent name"))
    unmapped = sorted(known - set(seen))
    for key in unmapped:
        problems.append(Problem(source, None, "key_code", f"小地域 {key} がどの地区にも属していません",
                                "small area not mapped to any district"))
    if problems:
        raise ValidationError(problems)
    return table.reset_index(drop=True)


def write_mapping(mapping: pd.DataFrame, path: Path) -> None:
    mapping[list(MAPPING_COLUMNS)].sort_values(["district_code", "key_code"]).to_csv(
        path, index=False, encoding="utf-8", lineterminator="\n"
    )


def build_standin_mapping(
    small_areas: gpd.GeoDataFrame, *, threshold: float = 5500, seed: int = 20150
) -> pd.DataFrame:
    """Build the stand-in district mapping: contiguous regions of >= ``threshold`` people.

    Codes are ``S01``, ``S02``, … (north to south); each name is ``（仮）`` + the place name of the
    district's most populous small area + ``地区``, made unique.
    """
    labels = regionalize(small_areas, threshold=threshold, seed=seed)
    frame = pd.DataFrame({
        "key_code": small_areas["key_code"].to_numpy(),
        "label": labels.to_numpy(),
        "base": [place_base(n) for n in small_areas["name"]],
        "pop": pd.to_numeric(small_areas["population"], errors="coerce").fillna(0).to_numpy(),
    })
    names: dict[int, str] = {}
    used: set[str] = set()
    for label, grp in frame.groupby("label", sort=True):
        by_pop = grp.groupby("base")["pop"].sum().sort_values(ascending=False, kind="stable")
        base = next((b for b in by_pop.index if b not in used), f"第{label + 1}")
        used.add(base)
        names[label] = f"{STANDIN_PREFIX}{base}地区"
    frame["district_code"] = frame["label"].map(lambda n: f"S{n + 1:02d}")
    frame["district_name"] = frame["label"].map(names)
    return frame[list(MAPPING_COLUMNS)].sort_values(["district_code", "key_code"]).reset_index(drop=True)


def build_standin_mappings(
    small_areas: gpd.GeoDataFrame, municipality_names: dict[str, str], *,
    threshold: float = 5500, seed: int = 20150,
) -> pd.DataFrame:
    """Stand-in districts for every municipality in ``small_areas`` (the prefecture demo).

    Per municipality, each connected piece (an island, an exclave) with at least twice
    ``threshold`` people and three small areas is split by :func:`build_standin_mapping`; a
    smaller piece is one district of its own. Codes run ``S01``, ``S02``… within each municipality;
    a municipality of one district is ``（仮）<name>地区``, a piece without a place name
    ``（仮）<name><n>地区``. Returns ``municipality_code`` + :data:`MAPPING_COLUMNS`.
    """
    out = []
    for muni, areas in small_areas.groupby("municipality_code", sort=True):
        areas = areas.reset_index(drop=True)
        name = municipality_names.get(muni, muni)
        pop = pd.to_numeric(areas["population"], errors="coerce").fillna(0)
        pieces = contiguity_components(areas)
        order = sorted(pieces.unique(), key=lambda c: -pop[pieces == c].sum())
        districts: list[pd.DataFrame] = []
        for piece in order:
            inside = (pieces == piece).to_numpy()
            sub = areas[inside].reset_index(drop=True)
            if pop[inside].sum() >= 2 * threshold and len(sub) >= 3:
                split = build_standin_mapping(sub, threshold=threshold, seed=seed)
                districts.extend(grp for _code, grp in split.groupby("district_code", sort=True))
            else:
                districts.append(pd.DataFrame({"key_code": sub["key_code"], "district_name": None}))
        frames = []
        for n, grp in enumerate(districts, start=1):
            label = grp["district_name"].iloc[0] or f"{STANDIN_PREFIX}{name}{n}地区"
            frames.append(pd.DataFrame({"key_code": grp["key_code"].to_numpy(),
                                        "district_code": f"S{n:02d}", "district_name": label}))
        mapping = pd.concat(frames, ignore_index=True)
        if len(districts) == 1:
            mapping["district_name"] = f"{STANDIN_PREFIX}{name}地区"
        mapping.insert(0, "municipality_code", muni)
        out.append(mapping)
    return pd.concat(out, ignore_index=True)


def place_base(name: str) -> str:
    """The place part of a small-area name: 小柳６丁目 -> 小柳, 大字後潟字平野 -> 後潟, 字野辺地 -> 野辺地."""
    text = unicodedata.normalize("NFKC", str(name))
    text = re.sub(r"^(浪岡)?大?字", r"\1", text)
    text = text.split("字")[0] or text
    text = re.sub(r"[0-9一二三四五六七八九十]+丁目$", "", text)
    return text or str(name)


def read_district_polygons(path: Path, *, code: str, name: str) -> gpd.GeoDataFrame:
    """Read district polygons given directly (GeoJSON, GeoPackage, Shapefile, zipped Shapefile).

    ``code`` and ``name`` name the attribute columns holding the district code and name.
    Returns ``district_code``, ``district_name`` and repaired MultiPolygons in EPSG:6678.
    """
    import pyogrio

    path = Path(path)
    if not path.exists():
        raise InputError(f"ファイルがありません: {path}")
    try:
        raw = pyogrio.read_dataframe(path)
    except Exception as exc:
        raise InputError(f"{path.name}: 地理データとして読めません ({exc})") from exc
    problems = [Problem(path.name, 1, c, "必要な列がありません", "required column missing")
                for c in (code, name) if c not in raw.columns]
    if raw.crs is None:
        problems.append(Problem(path.name, None, None, "座標参照系 (CRS) がありません", "no CRS"))
    if problems:
        raise ValidationError(problems)
    out = gpd.GeoDataFrame(
        {"district_code": raw[code].astype(str), "district_name": raw[name].astype(str)},
        geometry=raw.geometry, crs=raw.crs,
    ).to_crs(crs.METRIC)
    dup = out["district_code"].duplicated(keep=False)
    if dup.any():
        raise ValidationError([Problem(path.name, int(i) + 1, code, "地区コードが重複しています",
                                       "duplicate district code") for i in dup[dup].index])
    out, _ = repair_polygons(out)
    return out
