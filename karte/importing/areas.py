"""The area kinds: small-area statistics (plain tables and e-Stat CSVs) and district definitions
(boundary files, or a small-area -> district table).

Both change the base layers rather than add points: statistics update columns of ``small_areas``
for the areas the file lists; districts replace ``districts`` and ``district_map`` and move every
small area and point to its new district.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from gis import crs
from gis.districts import dissolve_districts
from gis.geometry import repair_polygons
from karte.agebands import CONCEALED_MARKS, NONE_MARKS, read_estat_age_table
from karte.domain.errors import InputError, ValidationError
from karte.domain.schema import AGE_BANDS
from karte.importing.encoding import CP932, UTF8, detect_encoding
from karte.importing.headers import ESTAT_IGNORED, match_headers
from karte.importing.points import locate_with_tolerance
from karte.importing.rows import Findings, iter_rows
from karte.importing.tables import RawTable
from karte.importing.values import clean_name, parse_code, parse_int

STAT_FIELDS = ("population", "households", *AGE_BANDS, "elderly_alone", "disabled")
GEO_SUFFIXES = (".geojson", ".json", ".gpkg", ".zip", ".shp")
_ESTAT_CODE = re.compile(r"^T\d{9}$")   # e-Stat table cell codes: T000849001
_AGE_LABEL = re.compile(r"^総数\d+(~\d+歳|歳以上)$")


# --- small-area statistics -----------------------------------------------------------------

@dataclass
class StatsUpdate:
    """New values per small area (only the columns the file has) and what that implies."""

    values: pd.DataFrame                     # index key_code, columns among STAT_FIELDS
    real_age: set[str] = field(default_factory=set)   # key_codes whose four age bands are real
    skipped_aggregates: int = 0


def is_estat(table: RawTable) -> bool:
    """e-Stat small-area CSV: row 1 holds codes with ``KEY_CODE``, row 2 the Japanese labels."""
    if len(table.rows) < 2:
        return False
    codes = [str(c).strip() for c in table.rows[0][1]]
    return "KEY_CODE" in codes and ("HYOSYO" in codes or any(_ESTAT_CODE.match(c) for c in codes))


def read_stats(table: RawTable, path: Path, small_areas: pd.DataFrame, findings: Findings) -> StatsUpdate:
    """Read a statistics table keyed by KEY_CODE; concealed cells (``*``, ``-``, ``X``) become null."""
    estat = is_estat(table)
    if estat:
        table = _estat_header(table)
    match, rows = iter_rows(table, "stats", findings, ignore=ESTAT_IGNORED)
    if estat:
        _summarise_unknown(findings, match)
    known = set(small_areas["key_code"].astype(str))
    records: dict[str, dict] = {}
    first: dict[str, int] = {}
    skipped = 0
    fields = [f for f in STAT_FIELDS if match is not None and f in match.fields]
    for row in rows:
        key = row.parse("key_code", parse_code, required=True)
        if not key:
            continue
        if key not in known:
            if estat and (len(key) <= 5 or any(k.startswith(key) for k in known)):
                skipped += 1   # e-Stat's city and 大字 total rows
                continue
            row.error("key_code", "この小地域コード (KEY_CODE) は青森市の小地域にありません",
                      "unknown small-area KEY_CODE")
            continue
        if key in first:
            row.error("key_code", f"小地域コードが {first[key]} 行目と重複しています", "duplicate KEY_CODE")
            continue
        first[key] = row.number
        records[key] = {f: row.parse(f, _count) for f in fields}
    values = pd.DataFrame.from_dict(records, orient="index", columns=fields)
    real_age: set[str] = set()
    if all(b in fields for b in AGE_BANDS):
        real_age = set(values.index)
    elif estat and match is not None and any(_AGE_LABEL.match(_nfkc(h)) for h in table.rows[0][1]):
        bands = _estat_age_bands(path, findings)
        if bands is not None:
            bands = bands[bands.index.isin(records)]
            values = values.join(bands, how="left") if len(values.columns) else bands.reindex(values.index)
            real_age = set(values.index)
    values = values.astype("Int64")
    values.index.name = "key_code"
    if match is not None and not fields and not real_age:
        findings.error(match.row, None, "統計の列 (人口・世帯数・年齢区分など) がありません",
                       "no statistics columns")
    return StatsUpdate(values, real_age, skipped)


def _count(text: str) -> int | None:
    s = unicodedata.normalize("NFKC", text).strip()
    if s in NONE_MARKS:
        return 0
    if s in CONCEALED_MARKS:
        return None
    return parse_int(s)


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", str(text)).replace("〜", "~").replace(" ", "")


def _estat_header(table: RawTable) -> RawTable:
    """Merge e-Stat's two header rows into one (the label where there is one, else the code)."""
    (n1, codes), (_n2, labels) = table.rows[0], table.rows[1]
    width = max(len(codes), len(labels))
    codes = [*codes, *[""] * (width - len(codes))]
    labels = [*labels, *[""] * (width - len(labels))]
    header = [c if c.strip() in ("KEY_CODE", *ESTAT_IGNORED) or not lab.strip() else lab
              for c, lab in zip(codes, labels, strict=True)]
    return RawTable(table.source, [(n1, header), *table.rows[2:]], table.encoding, table.sheet)


def _summarise_unknown(findings: Findings, match) -> None:
    """e-Stat tables carry dozens of columns we do not use: one note instead of one each."""
    if match is None or not match.unknown:
        return
    unknown = set(match.unknown)
    findings.warnings = [w for w in findings.warnings if not (w.row == match.row and w.column in unknown)]
    findings.warn(match.row, None,
                  f"e-Stat 表の {len(unknown)} 列は使いません (5歳階級は年齢区分に集計します)",
                  f"{len(unknown)} e-Stat columns not used (5-year age columns are summed into bands)")


def _estat_age_bands(path: Path, findings: Findings) -> pd.DataFrame | None:
    try:
        return read_estat_age_table(path)
    except ValidationError as exc:
        findings.problems.extend(exc.problems)
    except InputError as exc:
        findings.error(None, None, str(exc), "e-Stat age table unreadable")
    return None


def apply_stats(small_areas: gpd.GeoDataFrame, update: StatsUpdate) -> gpd.GeoDataFrame:
    """A copy of ``small_areas`` with the update's values written in."""
    out = small_areas.copy()
    idx = out.reset_index(drop=True).index
    pos = pd.Series(idx, index=out["key_code"].astype(str).to_numpy())
    rows = pos.reindex(update.values.index).to_numpy()
    for col in update.values.columns:
        current = out[col].astype("Int64") if col in out.columns else pd.Series(pd.NA, index=out.index,
                                                                                 dtype="Int64")
        current = current.reset_index(drop=True)
        current.iloc[rows] = update.values[col].to_numpy()
        out[col] = current.to_numpy()
    if "population" in update.values.columns:
        out["concealed"] = pd.array(out["population"], dtype="Int64").isna()
    if update.real_age and "synthetic_age" in out.columns:
        flags = out["synthetic_age"].astype(bool).to_numpy().copy()
        flags[rows[[k in update.real_age for k in update.values.index]]] = False
        out["synthetic_age"] = flags
    return out


# --- districts -----------------------------------------------------------------------------

def is_geo_file(path: Path) -> bool:
    return path.suffix.lower() in GEO_SUFFIXES


def read_district_polygons(path: Path, findings: Findings, *,
                           layer: str | None = None) -> gpd.GeoDataFrame | None:
    """District polygons from GeoJSON, GeoPackage (``layer``: which one), a Shapefile, or a zipped
    Shapefile (its ``.prj`` is required; its ``.cpg`` names the attribute encoding, else the
    encoding is detected as for CSV). Returns district_code, district_name, MultiPolygons (EPSG:6678)."""
    source = path.name
    kwargs: dict = {}
    target: str | Path = path
    if path.suffix.lower() == ".zip":
        target, kwargs = _zipped_shapefile(path, findings)
        if target is None:
            return None
    elif path.suffix.lower() == ".shp":
        kwargs = _shapefile_encoding(path, findings)
    if layer is not None:
        kwargs["layer"] = layer
    try:
        raw = pyogrio.read_dataframe(target, **kwargs)
    except Exception as exc:  # pyogrio raises several kinds; all mean "not a readable layer"
        raise InputError(f"{source}: 地理データとして読めません ({type(exc).__name__})") from exc
    if raw.crs is None:
        findings.error(None, None, "座標参照系 (CRS) がありません (.prj を付けてください)", "no CRS")
        return None
    header = [str(c) for c in raw.columns if c != raw.geometry.name]
    match = match_headers("districts", header, row=1, source=source, problems=findings.problems,
                          warnings=findings.warnings, ignore=("key_code", "KEY_CODE"))
    if any(f not in match.fields for f in ("district_code", "district_name")):
        return None
    codes, names, geoms = [], [], []
    first: dict[str, int] = {}
    for i, (code_raw, name_raw, geom) in enumerate(zip(raw[header[match.fields["district_code"]]],
                                                       raw[header[match.fields["district_name"]]],
                                                       raw.geometry, strict=True), start=1):
        code = parse_code(str(code_raw)) if code_raw is not None and not pd.isna(code_raw) else ""
        name = clean_name(str(name_raw)) if name_raw is not None and not pd.isna(name_raw) else ""
        column_code = match.names["district_code"]
        if not code:
            findings.error(i, column_code, "地区コードが空です (地物の番号を行として数えています)",
                           "empty district code (row = feature number)")
        elif code in first:
            findings.error(i, column_code, f"地区コード {code} が {first[code]} 番目の地物と重複しています",
                           "duplicate district code")
        else:
            first[code] = i
        if not name:
            findings.error(i, match.names["district_name"], "地区名が空です", "empty district name")
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            findings.error(i, None, "ポリゴンではありません (地区の区域が必要です)", "not a polygon")
        codes.append(code)
        names.append(name)
        geoms.append(geom)
    if findings.problems:
        return None
    out = gpd.GeoDataFrame({"district_code": codes, "district_name": names},
                           geometry=gpd.GeoSeries(geoms, crs=raw.crs)).to_crs(crs.METRIC)
    out, _ = repair_polygons(out)
    return out.sort_values("district_code").reset_index(drop=True)


def _zipped_shapefile(path: Path, findings: Findings) -> tuple[str | None, dict]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            shps = [n for n in names if n.lower().endswith(".shp")]
            if len(shps) != 1:
                findings.error(None, None,
                               f"ZIP の中の Shapefile (.shp) が {len(shps)} 個です (1 個にしてください)",
                               "zip must hold exactly one .shp")
                return None, {}
            stem = shps[0][:-4]
            have = {n.lower(): n for n in names}
            for ext in (".dbf", ".shx", ".prj"):
                if (stem + ext).lower() not in have:
                    findings.error(None, None, f"ZIP に {Path(stem).name}{ext} がありません",
                                   f"{ext} missing")
            if findings.problems:
                return None, {}
            kwargs: dict = {}
            if (stem + ".cpg").lower() in have:
                kwargs["encoding"] = _cpg_encoding(zf.read(have[(stem + ".cpg").lower()]), path.name)
            else:
                dbf = zf.read(have[(stem + ".dbf").lower()])
                kwargs["encoding"] = _dbf_encoding(dbf, path.name, findings)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{path.name}: ZIP ファイルとして読めません") from exc
    return f"/vsizip/{path}/{shps[0]}", kwargs


def _shapefile_encoding(path: Path, findings: Findings) -> dict:
    if path.with_suffix(".cpg").exists():
        return {"encoding": _cpg_encoding(path.with_suffix(".cpg").read_bytes(), path.name)}
    dbf = path.with_suffix(".dbf")
    if not dbf.exists():
        raise InputError(f"{path.name}: {dbf.name} がありません")
    return {"encoding": _dbf_encoding(dbf.read_bytes(), path.name, findings)}


_CPG = {"utf8": UTF8, "utf-8": UTF8, "65001": UTF8, "cp932": CP932, "932": CP932, "sjis": CP932,
        "shift_jis": CP932, "shift-jis": CP932, "ms932": CP932, "windows-31j": CP932}


def _cpg_encoding(data: bytes, source: str) -> str:
    """The encoding a .cpg names (GDAL does not recode every name, e.g. CP932, itself)."""
    name = data.decode("ascii", errors="replace").strip().lower()
    if name not in _CPG:
        raise InputError(f"{source}: .cpg の文字コード {name[:20]} には対応していません (UTF-8 か CP932)")
    return _CPG[name]


def _dbf_encoding(data: bytes, source: str, findings: Findings) -> str:
    """The text encoding of a DBF without a .cpg: its records decoded as UTF-8 or CP932."""
    header_len = int.from_bytes(data[8:10], "little") if len(data) >= 10 else 0
    enc = detect_encoding(data[header_len:].rstrip(b"\x1a"), source=source)
    name = "CP932" if enc == CP932 else "UTF-8"
    findings.warn(None, None, f".cpg がないため属性の文字コードを {name} と判定しました",
                  "no .cpg: attribute encoding detected")
    return CP932 if enc == CP932 else UTF8


def district_layers(districts: gpd.GeoDataFrame, small_areas: gpd.GeoDataFrame | None) -> tuple:
    """From district polygons: (districts with a ``small_areas`` count, small areas with their new
    ``district_code`` by representative point, the district_map table)."""
    if small_areas is None:
        out = districts.copy()
        out["small_areas"] = 0
        return out, None, None
    small = small_areas.copy()
    pts = small.set_geometry(small.geometry.representative_point())
    small["district_code"] = locate_with_tolerance(pts, districts, "district_code").to_numpy()
    mapping = small[["key_code", "district_code"]].merge(
        districts[["district_code", "district_name"]], on="district_code", how="left")
    out = districts.copy()
    out["small_areas"] = small["district_code"].value_counts().reindex(out["district_code"]).fillna(0) \
        .astype(int).to_numpy()
    return out, small, pd.DataFrame(mapping)


def districts_from_mapping(mapping: pd.DataFrame, small_areas: gpd.GeoDataFrame) -> tuple:
    """From a validated key_code -> district table: (districts, small areas, district_map)."""
    small = small_areas.drop(columns=["district_code"], errors="ignore").merge(
        mapping[["key_code", "district_code"]], on="key_code", how="left")
    small = gpd.GeoDataFrame(small, geometry=small_areas.geometry.name, crs=small_areas.crs)
    return dissolve_districts(small, mapping), small, mapping.reset_index(drop=True)


def read_mapping_table(table: RawTable, small_areas: pd.DataFrame, findings: Findings) -> pd.DataFrame | None:
    """A key_code -> district_code, district_name table (CSV or xlsx), checked like
    :func:`karte.districts.validate_mapping` but with the file's own row numbers."""
    match, rows = iter_rows(table, "districts", findings)
    if match is None:
        return None
    if "key_code" not in match.fields:
        findings.error(match.row, "KEY_CODE", "小地域コード (KEY_CODE) の列がありません",
                       "key_code column missing")
        return None
    known = set(small_areas["key_code"].astype(str))
    first: dict[str, int] = {}
    names: dict[str, str] = {}
    records = []
    for row in rows:
        key = row.parse("key_code", parse_code, required=True)
        code = row.parse("district_code", parse_code, required=True)
        name = row.parse("district_name", clean_name, required=True)
        if key and key not in known:
            row.error("key_code", "この小地域コード (KEY_CODE) は青森市の小地域にありません",
                      "unknown small-area KEY_CODE")
        elif key in first:
            row.error("key_code", f"小地域コードが {first[key]} 行目と重複しています",
                      "small area mapped twice")
        elif key:
            first[key] = row.number
        if code and name and names.setdefault(code, name) != name:
            row.error("district_name", f"地区 {code} の名前が他の行と違います", "inconsistent district name")
        records.append({"key_code": key, "district_code": code, "district_name": name})
    missing = sorted(known - set(first))
    if missing:
        findings.error(None, "KEY_CODE", f"{len(missing)} の小地域がどの地区にも割り当てられていません "
                       f"(例: {', '.join(missing[:3])})", "small areas not mapped to any district")
    return pd.DataFrame.from_records(records, columns=["key_code", "district_code", "district_name"])
