"""e-Stat's census downloads as they come: the 小地域 boundary Shapefile and the 小地域集計 tables.

What e-Stat (統計地理情報システム) publishes per census, and what this module reads:

* **境界データ (boundaries)**: one Shapefile per municipality (``r2ka02201.shp`` for 2020, inside
  ``A002005212020DDSWC02201.zip``), JGD2011 longitude/latitude, attributes in CP932:
  ``KEY_CODE`` (municipality code + ``S_AREA``, 9 or 11 digits), ``PREF``, ``CITY``, ``S_AREA``,
  ``PREF_NAME``, ``CITY_NAME``, ``S_NAME``, ``KIGO_E`` (``E1``, ``E2``…: one area drawn as several
  polygons), ``HCODE`` (8101 町丁・字等, 8154 水面調査区), ``AREA``, ``JINKO``, ``SETAI`` and more.
  Read with pyogrio (GDAL) into a scratch frame; polygons of one KEY_CODE are dissolved.
* **小地域集計 (tables)**: CSV text (``tblT001081C02.txt``…, also inside a zip), CP932, two header
  rows: codes (``KEY_CODE, HYOSYO, CITYNAME, NAME, HTKSYORI, HTKSAKI, GASSAN, T001081001…``) and
  Japanese labels. ``HYOSYO`` is the level (1 = the municipality, 2 = 大字・町, 3 = 丁目・字…);
  a concealed area (秘匿) has ``HTKSAKI`` = the KEY_CODE of the area its figures were added to
  (合算先), which lists it in ``GASSAN``. Cells: ``-`` none (0), ``X`` concealed, ``*``/``***``
  merged away.

Tables are recognised by their content (codes and labels), not their file names: population and
households (人口総数, 世帯総数), age (総数０～４歳…, 総数６５歳以上, 総数７５歳以上) and, where a
table has it, single elderly households (高齢単身世帯).

Every reader collects every problem with file, row and column (:class:`Problem`); nothing here
writes anything.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from gis import crs
from gis.geometry import repair_polygons
from karte.agebands import CONCEALED_MARKS, NONE_MARKS
from karte.domain.errors import InputError, Problem
from karte.domain.schema import AGE_BANDS

#: The attribute columns of e-Stat's boundary Shapefile that karte needs.
BOUNDARY_REQUIRED = ("KEY_CODE", "PREF", "CITY", "S_AREA", "S_NAME", "HCODE")
#: Further attributes e-Stat ships and karte reads when present.
BOUNDARY_OPTIONAL = ("PREF_NAME", "CITY_NAME", "KIGO_E", "AREA", "JINKO", "SETAI")
HCODE_TOWN = "8101"    # 町丁・字等
HCODE_WATER = "8154"   # 水面調査区 (water survey area: nobody lives there)
#: The leading columns of every 小地域集計 table, in this order.
TABLE_HEAD = ("KEY_CODE", "HYOSYO", "CITYNAME", "NAME", "HTKSYORI", "HTKSAKI", "GASSAN")

_TABLE_CODE = re.compile(r"^(T\d{6})(\d{3})$")
_RANGE = re.compile(r"^総数(\d+)~(\d+)歳$")
_OPEN = re.compile(r"^総数(\d+)歳以上$")
_DIGITS = re.compile(r"^\d+$")


@dataclass
class Downloads:
    """The files found in a download folder: the boundary source and the tables by kind."""

    boundary: Path | None = None
    boundary_member: str | None = None          # the .shp inside a zip
    tables: dict[str, EstatTable] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


@dataclass
class EstatTable:
    """One 小地域集計 table, checked: its id (``T001081``), kind, source name, encoding, header
    (codes and labels) and rows (file row number, cells)."""

    source: str
    table_id: str
    kind: str
    encoding: str
    codes: list[str]
    labels: list[str]
    rows: list[tuple[int, list[str]]]

    def column(self, code: str) -> int:
        return self.codes.index(code)


# --- the folder --------------------------------------------------------------------------------

def find_downloads(directory: Path, problems: list[Problem]) -> Downloads:
    """Sort the files of ``directory`` (and of zips in it) into the boundary and the tables.

    Appends a problem for a missing or doubled boundary, unreadable tables and tables of the same
    kind given twice; files of other kinds are listed in ``ignored``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"フォルダがありません: {directory}")
    found = Downloads()
    boundaries: list[tuple[Path, str | None]] = []
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        suffix = path.suffix.lower()
        if suffix == ".shp":
            boundaries.append((path, None))
        elif suffix == ".zip":
            _sort_zip(path, boundaries, found, problems)
        elif suffix in (".txt", ".csv"):
            _add_table(path.name, path.read_bytes(), found, problems)
        elif suffix not in (".dbf", ".shx", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".xml", ".py", ".md"):
            found.ignored.append(path.name)
    shp_stems = {p.stem.lower() for p, member in boundaries if member is None}
    # a folder holding both the zip and what was unzipped from it: read the unzipped files
    boundaries = [(p, m) for p, m in boundaries
                  if m is None or Path(m).stem.lower() not in shp_stems]
    if not boundaries:
        problems.append(Problem(directory.name, None, None,
                                "境界データ（小地域の Shapefile .shp またはその ZIP）がありません",
                                "no boundary Shapefile"))
    elif len(boundaries) > 1:
        names = "、".join(m or p.name for p, m in boundaries)
        problems.append(Problem(directory.name, None, None,
                                f"境界データが {len(boundaries)} つあります（{names}）。1 つにしてください",
                                "more than one boundary Shapefile"))
    else:
        found.boundary, found.boundary_member = boundaries[0]
    return found


def _sort_zip(path: Path, boundaries: list, found: Downloads, problems: list[Problem]) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            shps = [n for n in names if n.lower().endswith(".shp")]
            for shp in shps:
                boundaries.append((path, shp))
            for name in names:
                if name.lower().endswith((".txt", ".csv")):
                    _add_table(f"{path.name}/{Path(name).name}", zf.read(name), found, problems)
    except zipfile.BadZipFile:
        problems.append(Problem(path.name, None, None, "ZIP ファイルとして読めません", "bad zip"))


def _add_table(source: str, data: bytes, found: Downloads, problems: list[Problem]) -> None:
    table = read_table(source, data, problems)
    if table is None:
        return
    if table.kind == "other":
        found.ignored.append(f"{source}（{table.table_id}: 使わない表）")
        return
    if table.kind in found.tables:
        problems.append(Problem(source, None, None,
                                f"同じ種類の表が 2 つあります（{found.tables[table.kind].source} と）",
                                "two tables of the same kind"))
        return
    found.tables[table.kind] = table


# --- tables ------------------------------------------------------------------------------------

def read_table(source: str, data: bytes, problems: list[Problem]) -> EstatTable | None:
    """Read one 小地域集計 table (CP932 or UTF-8): check its two header rows and the shape and
    marks of every row; return None (with the problems appended) when it cannot be used."""
    text, encoding = _decode(source, data, problems)
    if text is None:
        return None
    rows = list(_csv_rows(text))
    if len(rows) < 3:
        problems.append(Problem(source, None, None, "e-Stat の表（見出し 2 行とデータ）ではありません",
                                "not an e-Stat table: fewer than three rows"))
        return None
    codes = [c.strip() for c in rows[0]]
    labels = [_norm(c) for c in rows[1]]
    start = len(problems)
    for j, want in enumerate(TABLE_HEAD):
        got = codes[j] if j < len(codes) else ""
        if got != want:
            problems.append(Problem(source, 1, want,
                                    f"{j + 1} 列目の見出しが「{got}」です（「{want}」のはずです）",
                                    f"header column {j + 1} should be {want}"))
    if len(problems) > start:
        return None
    cells = codes[len(TABLE_HEAD):]
    ids = set()
    for j, code in enumerate(cells, start=len(TABLE_HEAD)):
        m = _TABLE_CODE.match(code)
        if not m:
            problems.append(Problem(source, 1, code or f"{j + 1}列目",
                                    "表の列コード（T と 9 桁の数字）ではありません", "not a table cell code"))
            continue
        ids.add(m.group(1))
        if j >= len(labels) or not labels[j]:
            problems.append(Problem(source, 2, code, "2 行目の項目名が空です", "empty label"))
    if len(ids) > 1:
        problems.append(Problem(source, 1, None,
                                f"表の列コードが複数の表にまたがっています（{'、'.join(sorted(ids))}）",
                                "codes of several tables"))
    if len(set(codes)) != len(codes):
        problems.append(Problem(source, 1, None,
                                "見出しの列コードが重複しています", "duplicate header codes"))
    if len(problems) > start or not ids:
        return None
    width = len(codes)
    body: list[tuple[int, list[str]]] = []
    for number, row in enumerate(rows[2:], start=3):
        if not any(c.strip() for c in row):
            continue
        if len(row) != width:
            problems.append(Problem(source, number, None, f"列の数が {len(row)} です（見出しは {width} 列）",
                                    "row length differs from the header"))
            continue
        body.append((number, [c.strip() for c in row]))
    table = EstatTable(source, next(iter(ids)), "other", encoding, codes, labels, body)
    table.kind = _kind(table)
    if table.kind != "other":
        _check_rows(table, problems)
    return table


def _kind(table: EstatTable) -> str:
    labels = set(table.labels[len(TABLE_HEAD):])
    if "人口総数" in labels and "世帯総数" in labels:
        return "population"
    if any(_RANGE.match(lab) for lab in labels) and any(lab.startswith("総数") for lab in labels):
        return "age"
    if _elderly_alone_column(table) is not None:
        return "elderly_alone"
    return "other"


def _check_rows(table: EstatTable, problems: list[Problem]) -> None:
    """Every row: KEY_CODE, level, concealment fields and the value cells."""
    src = table.source
    seen: dict[str, int] = {}
    for number, row in table.rows:
        key, level, _city, _name, htk, target, merged = row[:len(TABLE_HEAD)]
        if not _DIGITS.match(key) or len(key) not in (5, 7, 9, 11):
            problems.append(Problem(src, number, "KEY_CODE", f"地域コード「{key[:16]}」の形式が違います",
                                    "KEY_CODE is not 5, 9 or 11 digits"))
        elif key in seen:
            problems.append(Problem(src, number, "KEY_CODE",
                                    f"地域コード {key} が {seen[key]} 行目と重複しています",
                                    "duplicate KEY_CODE"))
        else:
            seen[key] = number
        if not _DIGITS.match(level):
            problems.append(Problem(src, number, "HYOSYO", f"表章単位「{level[:8]}」が数字ではありません",
                                    "HYOSYO is not a number"))
        if htk not in ("0", "1", "2", ""):
            problems.append(Problem(src, number, "HTKSYORI",
                                    f"秘匿処理「{htk[:8]}」は 0・1・2 のいずれかです",
                                    "HTKSYORI must be 0, 1 or 2"))
        if target and not _DIGITS.match(target):
            problems.append(Problem(src, number, "HTKSAKI",
                                    f"秘匿先「{target[:16]}」が地域コードではありません",
                                    "HTKSAKI is not a KEY_CODE"))
        if merged and not all(_DIGITS.match(m) for m in split_codes(merged)):
            problems.append(Problem(src, number, "GASSAN", "合算地域の地域コードが読めません",
                                    "GASSAN is not a list of KEY_CODEs"))
        concealed_row = bool(target)
        for j in range(len(TABLE_HEAD), len(row)):
            cell = _norm(row[j])
            if cell in NONE_MARKS or cell in CONCEALED_MARKS or _DIGITS.match(cell.replace(",", "")):
                continue
            if cell == "" and concealed_row:
                continue
            what = "空です" if cell == "" else f"数値でも記号（-・X・*）でもありません: {cell[:12]}"
            problems.append(Problem(src, number, table.codes[j], what, "not a count or an e-Stat mark"))


def count(cell: str) -> int | None:
    """A checked cell as a count: ``-`` is 0, concealed marks (and an empty cell) None."""
    cell = _norm(cell).replace(",", "")
    if cell in NONE_MARKS:
        return 0
    if cell in CONCEALED_MARKS or cell == "" or not _DIGITS.match(cell):
        return None   # a malformed cell is reported by the table check; never read as a number
    return int(cell)


def split_codes(text: str) -> list[str]:
    """GASSAN's KEY_CODEs (separated by ``;``, spaces or 、)."""
    return [c for c in re.split(r"[;；、\s]+", text.strip()) if c]


def population_columns(table: EstatTable) -> tuple[int, int]:
    """Positions of 人口総数 and 世帯総数 in a population table."""
    return table.labels.index("人口総数"), table.labels.index("世帯総数")


def age_columns(table: EstatTable) -> dict[str, list[tuple[int, int]]]:
    """How each karte age band is computed from an age table: ``{band: [(column, sign), ...]}``.

    The 2020 table (T001082) gives 5-year bands up to 70～74 and then 再掲 columns 15歳未満,
    15～64歳, 65歳以上, 75歳以上: 65～74 is 65歳以上 minus 75歳以上. The 2015 layout
    (5-year bands to 100歳以上) is summed. Male and female columns are not used.
    """
    labels = table.labels
    index = {lab: j for j, lab in enumerate(labels) if j >= len(TABLE_HEAD)}
    ranges = [(j, int(m.group(1)), int(m.group(2))) for lab, j in index.items()
              if (m := _RANGE.match(lab)) and int(m.group(2)) - int(m.group(1)) == 4]
    opens = sorted(((j, int(m.group(1))) for lab, j in index.items() if (m := _OPEN.match(lab))),
                   key=lambda t: t[1])

    def band(lo: int, hi: int) -> list[tuple[int, int]]:
        return [(j, 1) for j, a, b in ranges if a >= lo and b <= hi]

    out: dict[str, list[tuple[int, int]]] = {}
    out["age_0_14"] = [(index["総数15歳未満"], 1)] if "総数15歳未満" in index else band(0, 14)
    out["age_15_64"] = [(index["総数15~64歳"], 1)] if "総数15~64歳" in index else band(15, 64)
    if "総数75歳以上" in index:
        out["age_75_plus"] = [(index["総数75歳以上"], 1)]
    else:
        top = [(j, 1) for j, lo in opens if lo >= 75][-1:]
        out["age_75_plus"] = band(75, 200) + top
    if "総数65歳以上" in index and "総数75歳以上" in index:
        out["age_65_74"] = [(index["総数65歳以上"], 1), (index["総数75歳以上"], -1)]
    else:
        out["age_65_74"] = band(65, 74)
    return out


def five_year_columns(table: EstatTable) -> list[int]:
    """The total's 5-year columns and its top open column (75歳以上 in 2020, 100歳以上 in 2015):
    the columns that add up to the age bands without the 再掲 aggregates."""
    keep, opens = [], []
    for j, label in enumerate(table.labels):
        if j < len(TABLE_HEAD) or not label.startswith("総数"):
            continue
        m, o = _RANGE.match(label), _OPEN.match(label)
        if m and int(m.group(2)) - int(m.group(1)) == 4:
            keep.append(j)
        elif o:
            opens.append((int(o.group(1)), j))
    if opens:
        keep.append(max(opens)[1])
    return keep


def age_problems(table: EstatTable) -> list[Problem]:
    """A problem for each band an age table cannot give."""
    cols = age_columns(table)
    missing = [b for b in AGE_BANDS if not cols[b]]
    if not missing:
        return []
    return [Problem(table.source, 2, None, f"年齢の列が見つかりません（{'、'.join(missing)}）",
                    "no age columns for these bands")]


def _elderly_alone_column(table: EstatTable) -> int | None:
    """The column of single elderly households (高齢単身世帯; 65歳以上の単独世帯), if any."""
    for j, lab in enumerate(table.labels):
        if j < len(TABLE_HEAD):
            continue
        if "高齢単身" in lab or ("65歳以上" in lab and ("単独" in lab or "一人" in lab or "1人" in lab)):
            return j
    return None


def elderly_alone_column(table: EstatTable) -> int:
    column = _elderly_alone_column(table)
    if column is None:
        raise InputError(f"{table.source}: 高齢単身世帯の列がありません")
    return column


# --- the boundary Shapefile -------------------------------------------------------------------

def read_boundary(path: Path, member: str | None, problems: list[Problem]) -> gpd.GeoDataFrame | None:
    """Read e-Stat's boundary Shapefile (or the ``member`` .shp of a zip) into a scratch frame.

    Returns one row per KEY_CODE (exclaves ``KIGO_E`` dissolved; water areas ``HCODE`` 8154
    dropped): ``key_code``, ``municipality_code``, ``name``, ``fullname``, ``jinko``, ``setai``
    (nullable), ``parts`` and repaired MultiPolygons in EPSG:6678. Every problem is appended with
    the feature number as the row and the attribute as the column.
    """
    source = member.split("/")[-1] if member else path.name
    target = f"/vsizip/{path}/{member}" if member else str(path)
    encoding = _shapefile_encoding(path, member)
    try:
        raw = pyogrio.read_dataframe(target, encoding=encoding)
    except Exception as exc:  # pyogrio raises several kinds; all mean "not a readable layer"
        problems.append(Problem(source, None, None, f"Shapefile として読めません（{type(exc).__name__}）",
                                "unreadable Shapefile"))
        return None
    start = len(problems)
    missing = [c for c in BOUNDARY_REQUIRED if c not in raw.columns]
    for c in missing:
        problems.append(Problem(source, None, c, "必要な属性の列がありません", "required attribute missing"))
    if raw.crs is None:
        problems.append(Problem(source, None, None,
                                "座標参照系がありません（.prj を付けてください）", "no CRS"))
    if missing or raw.crs is None:
        return None
    text = {c: raw[c].map(_attr) for c in (*BOUNDARY_REQUIRED, *BOUNDARY_OPTIONAL) if c in raw.columns}
    keep = []
    for i in range(len(raw)):
        number = i + 1
        key, pref, city, s_area = (text[c].iat[i] for c in ("KEY_CODE", "PREF", "CITY", "S_AREA"))
        hcode = text["HCODE"].iat[i]
        if not _DIGITS.match(key) or len(key) not in (9, 11):
            problems.append(Problem(source, number, "KEY_CODE",
                                    f"KEY_CODE「{key[:16]}」は 9 桁か 11 桁の数字です",
                                    "KEY_CODE must be 9 or 11 digits"))
        elif key not in (pref + city + s_area, pref + city + s_area[:4]) or \
                (len(key) == 9 and not s_area.endswith("00")):
            problems.append(Problem(source, number, "KEY_CODE",
                                    f"KEY_CODE {key} が PREF・CITY・S_AREA（{pref}・{city}・{s_area}）"
                                    "と合いません",
                                    "KEY_CODE does not match PREF + CITY + S_AREA"))
        if hcode not in (HCODE_TOWN, HCODE_WATER):
            problems.append(Problem(source, number, "HCODE", f"分類コード「{hcode[:8]}」は 8101 か 8154 です",
                                    "HCODE must be 8101 or 8154"))
        for col in ("JINKO", "SETAI"):
            value = text[col].iat[i] if col in text else ""
            if value and not _DIGITS.match(value):
                problems.append(Problem(source, number, col, f"0 以上の整数ではありません: {value[:12]}",
                                        "not a non-negative integer"))
        geom = raw.geometry.iat[i]
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(Problem(source, number, None, "ポリゴンではありません", "not a polygon"))
        keep.append(hcode != HCODE_WATER)
    if len(problems) > start:
        return None
    frame = gpd.GeoDataFrame({
        "key_code": text["KEY_CODE"].to_numpy(),
        "name": text["S_NAME"].to_numpy(),
        "pref_name": (text["PREF_NAME"] if "PREF_NAME" in text else text["PREF"]).to_numpy(),
        "city_name": (text["CITY_NAME"] if "CITY_NAME" in text else text["CITY"]).to_numpy(),
        "jinko": _ints(text.get("JINKO"), len(raw)),
        "setai": _ints(text.get("SETAI"), len(raw)),
        "row": range(1, len(raw) + 1),
    }, geometry=raw.geometry.to_numpy(), crs=raw.crs)
    frame = frame[keep]
    names = frame.groupby("key_code")["name"].nunique()
    for key in names[names > 1].index:
        rows = frame.loc[frame["key_code"] == key, "row"].tolist()
        problems.append(Problem(source, rows[1], "S_NAME", f"KEY_CODE {key} の町丁・字名が地物ごとに違います",
                                "one KEY_CODE with different names"))
    if len(problems) > start:
        return None
    frame = frame.to_crs(crs.METRIC)
    parts = frame.groupby("key_code").size()
    first = frame.groupby("key_code").first()
    dissolved = frame[["key_code", "geometry"]].dissolve(by="key_code")
    out = gpd.GeoDataFrame({
        "key_code": dissolved.index.to_numpy(),
        "municipality_code": [k[:5] for k in dissolved.index],
        "name": first.loc[dissolved.index, "name"].to_numpy(),
        "fullname": [f"{p}/{c}/{n}" for p, c, n in zip(first.loc[dissolved.index, "pref_name"],
                                                        first.loc[dissolved.index, "city_name"],
                                                        first.loc[dissolved.index, "name"], strict=True)],
        "jinko": first.loc[dissolved.index, "jinko"].to_numpy(),
        "setai": first.loc[dissolved.index, "setai"].to_numpy(),
        "parts": parts.loc[dissolved.index].to_numpy(),
    }, geometry=dissolved.geometry.to_numpy(), crs=crs.METRIC)
    out, repaired = repair_polygons(out)
    out.attrs["repaired"] = repaired
    out.attrs["water_areas"] = int(sum(not k for k in keep))
    out.attrs["encoding"] = encoding
    out.attrs["source_crs"] = raw.crs.to_string()
    return out.sort_values("key_code").reset_index(drop=True)


def _shapefile_encoding(path: Path, member: str | None) -> str:
    """The attribute encoding: what the .cpg names, else detected from the DBF records (e-Stat's
    files are CP932)."""
    if member:
        with zipfile.ZipFile(path) as zf:
            names = {n.lower(): n for n in zf.namelist()}
            stem = member[:-4]
            cpg = names.get((stem + ".cpg").lower())
            if cpg:
                return _cpg(zf.read(cpg))
            dbf = names.get((stem + ".dbf").lower())
            return _dbf_encoding(zf.read(dbf)) if dbf else "CP932"
    cpg_path = path.with_suffix(".cpg")
    if cpg_path.exists():
        return _cpg(cpg_path.read_bytes())
    dbf_path = path.with_suffix(".dbf")
    return _dbf_encoding(dbf_path.read_bytes()) if dbf_path.exists() else "CP932"


def _cpg(data: bytes) -> str:
    name = data.decode("ascii", errors="replace").strip().upper().replace("_", "-")
    return "UTF-8" if name in ("UTF-8", "UTF8", "65001") else "CP932"


def _dbf_encoding(data: bytes) -> str:
    header = int.from_bytes(data[8:10], "little") if len(data) >= 10 else 0
    try:
        data[header:].decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError:
        return "CP932"


# --- helpers -----------------------------------------------------------------------------------

def _decode(source: str, data: bytes, problems: list[Problem]) -> tuple[str | None, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "UTF-8 (BOM)"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932"), "CP932"
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        problems.append(Problem(source, line, None, "文字コードが CP932 でも UTF-8 でもありません",
                                "neither CP932 nor UTF-8"))
        return None, ""


def _csv_rows(text: str):
    yield from csv.reader(io.StringIO(text))


def _norm(text: str) -> str:
    """NFKC, wave dashes as ``~``, no spaces: labels and cells compare as e-Stat means them."""
    s = unicodedata.normalize("NFKC", str(text)).replace("〜", "~").replace("～", "~")
    return s.replace(" ", "").replace("\u3000", "").strip()


def _attr(value) -> str:
    """An attribute as text: numbers without a trailing ``.0``, names as e-Stat writes them
    (full-width digits kept: ``小柳６丁目``, as in the shipped small areas)."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _ints(values: pd.Series | None, n: int) -> pd.array:
    if values is None:
        return pd.array([pd.NA] * n, dtype="Int64")
    return pd.array([int(float(v)) if v else pd.NA for v in values], dtype="Int64")
