"""A new census in one command: e-Stat's downloads in, small areas, age bands and kartes rebuilt.

``karte census import DIR --year 2020`` calls :func:`prepare` (read and validate every file,
compare with the store, carry the district lines over, reconcile the city totals: nothing is
written, every problem is reported at once) and then :func:`apply`, which rebuilds through the
existing pipeline (:func:`karte.build.rebuild` with :class:`karte.build.Inputs`) and writes the
result in **one** atomic store write:

* the build writes into a :class:`PendingStore` that reads through to the real store and keeps
  what is written in memory, so the rebuilt layers, the real elderly-alone counts (the build has
  no input for them yet) and the census history go to the store together or not at all;
* the build's inputs are scratch files in the layouts its readers know: the small areas as e-Stat
  LOD GeoJSON (``karte.sources.read_small_areas``), the age table as an e-Stat CSV with the
  5-year columns (``karte.agebands.read_estat_age_table``), the carried district map as the
  mapping CSV (``karte.districts.read_mapping``);
* the previous census stays in the store as history: the :data:`~karte.census.reconcile.CENSUS_AREAS`
  layer keeps every census year's small areas with their counts and districts, and
  :data:`~karte.census.reconcile.CENSUS_YEARS` one summary row per year (totals, official
  figures, the reconciliation, the changes). The per-fiscal-year history of issue 12 can take
  its census series from these (docs/census.md: the hook).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from gis import crs
from karte import history as fiscal_history
from karte.build import Inputs, rebuild
from karte.census import estat, lines
from karte.census.reconcile import (
    CENSUS_AREAS,
    CENSUS_YEARS,
    SHIPPED_YEAR,
    OfficialTotal,
    Reconciliation,
    census_label,
    official_totals,
    reconcile,
)
from karte.domain.access import Access
from karte.domain.errors import InputError, KarteError, Problem, ValidationError
from karte.domain.history import HistoryKind, HistoryLayer
from karte.domain.layers import MUNICIPALITY, Layer
from karte.domain.schema import AGE_BANDS
from karte.importing.history import census_rows
from karte.importing.refresh import reassemble
from karte.store.base import Store

#: Census tables whose year is known: a table of another year than ``--year`` is refused.
KNOWN_TABLE_YEARS = {"T001081": 2020, "T001082": 2020, "T000849": 2015}
#: The columns of the census history layer (besides the geometry).
HISTORY_COLUMNS = ("year", "key_code", "municipality_code", "name", "fullname", "population", "households",
                   *AGE_BANDS, "elderly_alone", "concealed", "merged_into", "district_code")
LOD_ID = "http://data.e-stat.go.jp/lod/smallArea/g00200521/{year}/S{key}"


@dataclass
class CensusData:
    """One census year read from e-Stat's files and checked: a row per small area (``areas``:
    counts null where concealed, ``merged_into`` the merge target's KEY_CODE), the city rows of
    the tables (the census's own official totals), people listed without a polygon, the files."""

    year: int
    areas: gpd.GeoDataFrame
    city_rows: dict[str, tuple[int | None, int | None]]
    unplaced: dict[str, tuple[int, int]]
    unplaced_rows: list[tuple[str, str, int]]
    age_table: estat.EstatTable | None
    real_elderly: bool
    files: list[dict]
    warnings: list[Problem] = field(default_factory=list)

    @property
    def real_age(self) -> bool:
        return self.age_table is not None


@dataclass
class CensusPlan:
    """Everything :func:`apply` will write, checked and compared with the store; nothing written."""

    data: CensusData
    previous_year: int
    carry: lines.Carry
    reconciliation: dict[str, Reconciliation]
    official: dict[tuple[str, int], OfficialTotal]
    history: gpd.GeoDataFrame          # census_areas rows of the other years (kept)
    years: pd.DataFrame                # census_years rows of the other years (kept)
    by_polygon: bool
    warnings: list[Problem] = field(default_factory=list)

    @property
    def year(self) -> int:
        return self.data.year


@dataclass
class CensusResult:
    """What :func:`apply` wrote: how many kartes, the layers, the per-district trend between the
    previous census and this one, and the previous census's counts carried onto the new small
    areas (for the per-fiscal-year history's census rows: docs/census.md)."""

    plan: CensusPlan
    kartes: int
    trend: pd.DataFrame | None
    layers: list[str]
    previous_counts: pd.DataFrame | None = None


# --- reading the downloads ------------------------------------------------------------------------

def read_downloads(directory: Path, *, year: int) -> CensusData:
    """Read and check every file of an e-Stat download folder for census ``year``.

    Raises :class:`ValidationError` with every problem (file, row, column) when anything is wrong;
    problems that do not stop the import come back as ``warnings``.
    """
    problems: list[Problem] = []
    warnings: list[Problem] = []
    found = estat.find_downloads(Path(directory), problems)
    boundary = None
    if found.boundary is not None:
        boundary = estat.read_boundary(found.boundary, found.boundary_member, problems)
    for table in found.tables.values():
        known = KNOWN_TABLE_YEARS.get(table.table_id)
        if known is not None and known != year:
            problems.append(Problem(table.source, 1, None,
                                    f"{table.table_id} は {known} 年の表です（--year {year} と合いません）",
                                    "table of another census year"))
    if "age" in found.tables:
        problems.extend(estat.age_problems(found.tables["age"]))
    if boundary is None:   # nothing to check the tables against: report what was found so far
        raise ValidationError(problems or [Problem(Path(directory).name, None, None,
                                                   "境界データを読めませんでした", "no boundary")])
    units = set(boundary["key_code"])
    for table in found.tables.values():
        for number, row in table.rows:
            if row[5] and row[5] not in units:
                problems.append(Problem(table.source, number, "HTKSAKI",
                                        f"秘匿先 {row[5]} が境界データの小地域にありません",
                                        "unknown merge target"))
    areas = boundary.copy()
    city_rows: dict[str, tuple[int | None, int | None]] = {}
    unplaced: dict[str, tuple[int, int]] = {}
    unplaced_rows: list[tuple[str, str, int]] = []
    merged_into: dict[str, str] = {}
    pop = found.tables.get("population")
    if pop is not None:
        values, city_rows, unplaced, unplaced_rows, merged_into = _read_population(
            pop, units, problems, warnings)
        keys = areas["key_code"]
        areas["population"] = pd.array([values.get(k, (None, None))[0] for k in keys], dtype="Int64")
        areas["households"] = pd.array([values.get(k, (None, None))[1] for k in keys], dtype="Int64")
        missing = [k for k in areas["key_code"] if k not in values]
        if missing:
            warnings.append(Problem(pop.source, None, "KEY_CODE",
                                    f"{len(missing)} の小地域に統計の行がありません"
                                    "（人口は不明として扱います。"
                                    f"例: {'、'.join(missing[:3])}）", "small areas without a row"))
    else:
        areas["population"] = areas["jinko"]
        areas["households"] = areas["setai"]
        warnings.append(Problem(Path(directory).name, None, None,
                                "人口と世帯数の表（男女別人口総数及び世帯総数）がないため、"
                                "境界データの JINKO・SETAI を使います（秘匿・合算の別は分かりません）",
                                "no population table: JINKO/SETAI used"))
    areas["merged_into"] = [merged_into.get(k) for k in areas["key_code"]]
    areas["concealed"] = areas["population"].isna().to_numpy()
    age = found.tables.get("age")
    if age is not None:
        bands = _read_age(age, units, pop, problems)
        for band in AGE_BANDS:
            areas[band] = pd.array([bands.get(k, {}).get(band) for k in areas["key_code"]], dtype="Int64")
    elderly = found.tables.get("elderly_alone")
    if elderly is not None:
        col = estat.elderly_alone_column(elderly)
        by_key = {row[0]: estat.count(row[col]) for _n, row in elderly.rows}
        areas["elderly_alone"] = pd.array([by_key.get(k) for k in areas["key_code"]], dtype="Int64")
    for name in found.ignored:
        warnings.append(Problem(name, None, None, "使わないファイルです", "file not used"))
    if problems:
        raise ValidationError(problems)
    files = [{"file": t.source, "kind": t.kind, "table": t.table_id, "encoding": t.encoding,
              "rows": len(t.rows)} for t in found.tables.values()]
    files.insert(0, {"file": found.boundary_member or found.boundary.name, "kind": "boundary",
                     "table": "境界データ", "encoding": boundary.attrs.get("encoding"),
                     "rows": len(boundary)})
    return CensusData(year, areas.drop(columns=["jinko", "setai"]), city_rows, unplaced, unplaced_rows,
                      age, elderly is not None, files, warnings)


def _read_population(table: estat.EstatTable, units: set[str], problems: list[Problem],
                     warnings: list[Problem]):
    """Per small area (population, households); the city rows; people without a polygon; merge targets."""
    p_col, h_col = estat.population_columns(table)
    rows = {row[0]: (number, row) for number, row in table.rows}
    values: dict[str, tuple[int | None, int | None]] = {}
    city: dict[str, tuple[int | None, int | None]] = {}
    unplaced: dict[str, tuple[int, int]] = {}
    unplaced_rows: list[tuple[str, str, int]] = []
    merged_into: dict[str, str] = {}
    for key, (number, row) in rows.items():
        people, households = estat.count(row[p_col]), estat.count(row[h_col])
        target, merged = row[5], row[6]
        if target and target in units:
            if target in rows and key not in estat.split_codes(rows[target][1][6]):
                warnings.append(Problem(table.source, rows[target][0], "GASSAN",
                                        f"合算地域に {key} がありません（{key} の秘匿先はこの地域です）",
                                        "GASSAN does not list the concealed area"))
            if key in units:
                merged_into[key] = target
        for code in estat.split_codes(merged):
            if code not in rows:
                problems.append(Problem(table.source, number, "GASSAN", f"合算地域 {code} の行がありません",
                                        "GASSAN names a KEY_CODE without a row"))
        if key in units:
            values[key] = (people, households)
        elif len(key) == 5:
            city[key] = (people, households)
        elif any(u.startswith(key) for u in units):
            continue   # 大字・町 totals of the small areas below them
        elif people:
            muni = key[:5]
            a, b = unplaced.get(muni, (0, 0))
            unplaced[muni] = (a + people, b + (households or 0))
            unplaced_rows.append((key, row[3], people))
            warnings.append(Problem(table.source, number, "KEY_CODE",
                                    f"{row[3] or key} の {people:,} 人は境界データに区域がありません"
                                    f"（市の合計の「秘匿・不詳」に入れます）", "people without a polygon"))
    return values, city, unplaced, unplaced_rows, merged_into


def _read_age(table: estat.EstatTable, units: set[str], pop: estat.EstatTable | None,
              problems: list[Problem]) -> dict[str, dict[str, int | None]]:
    """Per small area the four karte age bands (null where a contributing cell is concealed)."""
    columns = estat.age_columns(table)
    total_col = next((j for j, lab in enumerate(table.labels) if lab.startswith("総数、年齢")), None)
    out: dict[str, dict[str, int | None]] = {}
    for number, row in table.rows:
        key = row[0]
        if len(key) == 5 and pop is not None and total_col is not None:
            _check_city_total(table, number, row[total_col], key, pop, problems)
        if key not in units:
            continue
        bands: dict[str, int | None] = {}
        for band, cells in columns.items():
            total = 0
            for j, sign in cells:
                value = estat.count(row[j])
                if value is None:
                    total = None
                    break
                total += sign * value
            if total is not None and total < 0:
                problems.append(Problem(table.source, number, table.codes[cells[0][0]],
                                        f"65歳以上が75歳以上より少なくなっています（{band}）",
                                        "negative age band"))
            bands[band] = total
        out[key] = bands
    return out


def _check_city_total(table, number, cell, key, pop: estat.EstatTable, problems: list[Problem]) -> None:
    p_col, _ = estat.population_columns(pop)
    city = next((row for _n, row in pop.rows if row[0] == key), None)
    if city is None:
        return
    a, b = estat.count(cell), estat.count(city[p_col])
    if a is not None and b is not None and a != b:
        problems.append(Problem(table.source, number, "総数、年齢「不詳」含む",
                                f"市の人口 {a:,} 人が人口の表（{pop.source}）の {b:,} 人と違います。"
                                "同じ年・同じ市町村の表か確かめてください",
                                "city total differs between tables"))


# --- planning against the store ---------------------------------------------------------------------

def prepare(store: Store, directory: Path, *, year: int) -> CensusPlan:
    """Read the downloads and compare them with ``store``: the district lines carried over, the city
    totals reconciled, the history kept. Raises :class:`ValidationError` (every problem) or
    :class:`InputError`; writes nothing."""
    if year % 5 != 0 or year < 2000:
        raise InputError(f"--year {year}: 国勢調査の年（2015, 2020, 2025 …）を指定してください")
    layers = set(store.layers())
    for needed in (Layer.SMALL_AREAS, Layer.DISTRICTS):
        if needed not in layers:
            raise KarteError(f"ストア {store.location} に {needed} がありません。"
                             "先に karte demo か karte build を実行してください")
    years = store.read(CENSUS_YEARS) if CENSUS_YEARS in layers else pd.DataFrame(columns=["year"])
    previous = int(years["year"].max()) if len(years) else SHIPPED_YEAR
    if year < previous:
        raise InputError(f"ストアは {census_label(previous)} です。それより古い {year} 年は取り込めません")
    data = read_downloads(directory, year=year)
    current = store.read(Layer.SMALL_AREAS)
    districts = store.read(Layer.DISTRICTS)
    history = store.read(CENSUS_AREAS) if CENSUS_AREAS in layers else None
    old_munis = set(current["key_code"].astype(str).str.slice(0, 5))
    new_munis = set(data.areas["municipality_code"])
    if not new_munis <= old_munis:
        raise ValidationError([Problem(data.files[0]["file"], None, "KEY_CODE",
                                       f"境界データの市町村（{'、'.join(sorted(new_munis - old_munis))}）が"
                                       f"ストアの市町村（{'、'.join(sorted(old_munis))}）と違います",
                                       "boundary of another municipality")])
    carry = lines.carry_districts(data.areas, current, districts)
    official = official_totals()
    warnings = list(data.warnings)
    for muni, (people, households) in data.city_rows.items():
        shipped = official.get((muni, year))
        if shipped is not None and shipped.population is not None and people is not None \
                and shipped.population != people:
            warnings.append(Problem(data.files[1]["file"] if len(data.files) > 1 else "", None, None,
                                    f"表の市の人口 {people:,} 人が同梱の公表値 {shipped.population:,} 人と"
                                    "違います（表の値を使います）",
                                    "city row differs from the shipped official total"))
        official[(muni, year)] = OfficialTotal(
            municipality_code=muni,
            municipality_name=shipped.municipality_name if shipped else muni,
            year=year, population=people, households=households,
            source=f"総務省統計局 {census_label(year)} 小地域集計（e-Stat）の市の行（HYOSYO=1）",
            as_published_by="e-Stat 統計地理情報システム", verified_here=True,
            note="取り込んだ表そのものの値")
    areas = data.areas.assign(district_code=data.areas["key_code"].map(
        dict(zip(carry.mapping["key_code"], carry.mapping["district_code"], strict=True))))
    result = reconcile(areas, year=year, official=official, unplaced=data.unplaced)
    for rec in result.values():
        if not rec.balanced:
            warnings.append(Problem(data.files[0]["file"], None, None,
                                    rec.reason_ja(), "total above official"))
    kept = _kept_history(history, current, previous, year)
    kept_years = years[years["year"].astype(int) != year] if len(years) else years
    if previous not in set(kept_years["year"].astype(int)) and previous != year:
        kept_years = pd.concat([kept_years, _year_row(previous, _shipped_reconciliation(current, previous),
                                                      files=[], changes=None)], ignore_index=True)
    meta = store.meta()
    by_polygon = json.loads(meta.get("by_polygon", "false"))
    return CensusPlan(data, previous, carry, result, official, kept, kept_years, by_polygon, warnings)


def _kept_history(history: gpd.GeoDataFrame | None, current: gpd.GeoDataFrame, previous: int,
                  year: int) -> gpd.GeoDataFrame:
    """The census_areas rows to keep: every year but the one imported now, and the store's current
    small areas as the previous census when the history does not hold them yet."""
    frames = []
    if history is not None and len(history):
        frames.append(history[history["year"].astype(int) != year])
    held = set(history["year"].astype(int)) if history is not None and len(history) else set()
    if previous not in held and previous != year:
        frames.append(_history_rows(current, previous))
    if not frames:
        return _history_rows(current.iloc[0:0], year)
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs.METRIC)


def _history_rows(small_areas: pd.DataFrame, year: int) -> gpd.GeoDataFrame:
    out = pd.DataFrame({c: small_areas[c] if c in small_areas.columns else None
                        for c in HISTORY_COLUMNS if c != "year"})
    out.insert(0, "year", int(year))
    if "municipality_code" not in small_areas.columns or out["municipality_code"].isna().all():
        out["municipality_code"] = small_areas["key_code"].astype(str).str.slice(0, 5)
    for c in ("population", "households", *AGE_BANDS, "elderly_alone"):
        out[c] = pd.array(pd.to_numeric(out[c], errors="coerce"), dtype="Int64")
    out["concealed"] = out["population"].isna() if "concealed" not in small_areas.columns \
        else small_areas["concealed"].astype(bool).to_numpy()
    out["merged_into"] = out["merged_into"].astype(object).where(out["merged_into"].notna(), None)
    frame = gpd.GeoDataFrame(out, geometry=small_areas.geometry.to_numpy(), crs=small_areas.crs)
    return frame.to_crs(crs.METRIC)


def _shipped_reconciliation(current: pd.DataFrame, year: int) -> dict[str, Reconciliation]:
    return reconcile(current, year=year)


def _year_row(year: int, recs: Mapping[str, Reconciliation], *, files: list[dict], changes: dict | None,
              official: Mapping[tuple[str, int], OfficialTotal] | None = None,
              unplaced: Mapping[str, tuple[int, int]] | None = None) -> pd.DataFrame:
    own = [asdict(o) for (_m, y), o in (official or {}).items() if y == year and o.verified_here]
    return pd.DataFrame([{
        "year": int(year),
        "label": census_label(year),
        "imported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds") if files else "",
        "population": sum(r.population for r in recs.values()),
        "households": sum(r.households for r in recs.values()),
        "official_population": _sum_or_none(r.official.population if r.official else None
                                            for r in recs.values()),
        "official_households": _sum_or_none(r.official.households if r.official else None
                                            for r in recs.values()),
        "reconciliation_json": json.dumps({m: r.as_dict() for m, r in recs.items()}, ensure_ascii=False),
        "official_json": json.dumps(own, ensure_ascii=False),
        "unplaced_json": json.dumps({k: list(v) for k, v in (unplaced or {}).items()}),
        "files_json": json.dumps(files, ensure_ascii=False),
        "changes_json": json.dumps(changes, ensure_ascii=False) if changes is not None else "",
    }])


def _sum_or_none(values) -> int | None:
    values = list(values)
    return None if any(v is None for v in values) else int(sum(values))


# --- applying ----------------------------------------------------------------------------------------

class PendingStore(Store):
    """A store that reads through to ``store`` and keeps what is written in memory (``written``):
    the build runs against it, and :func:`apply` writes its result with the census layers in one
    atomic write to the real store. ``overlay`` layers are read as if already written."""

    def __init__(self, store: Store, overlay: Mapping[str, pd.DataFrame] | None = None):
        self.store = store
        self.location = store.location
        self.capabilities = frozenset()
        self.written: dict[str, pd.DataFrame] = dict(overlay or {})

    def exists(self) -> bool:
        return self.store.exists()

    def layers(self) -> list[str]:
        return sorted(set(self.store.layers()) | set(self.written))

    def read(self, layer: str, *, district: str | None = None, municipality: str | None = None,
             access: Access | None = None) -> pd.DataFrame:
        if layer in self.written:
            frame = self.written[layer]
            if district is not None:
                frame = frame[frame["district_code"] == district]
            return frame.copy()
        return self.store.read(layer, district=district, municipality=municipality, access=access)

    def write(self, layers: Mapping[str, pd.DataFrame], *, access: Access | None = None) -> None:
        self.written.update({str(k): v for k, v in layers.items()})

    def stamp(self) -> str:
        return self.store.stamp()

    def audit(self, *, access: Access, layer: str, district: str | None, rows: int,
              action: str = "read") -> None:
        self.store.audit(access=access, layer=layer, district=district, rows=rows, action=action)


def apply(store: Store, plan: CensusPlan, *, seed: int, data_dir: Path,
          report: Callable[[str], None] | None = None) -> CensusResult:
    """Rebuild every karte for the planned census year and write it with the census history, once."""
    data = plan.data
    with tempfile.TemporaryDirectory(prefix="karte-census-") as tmp:
        folder = Path(tmp)
        boundaries = _write_lod(data.areas, data.year, folder / f"small_areas_{data.year}.geojson")
        age_table = _write_age_table(data.age_table, set(data.areas["key_code"]), folder / "age.csv") \
            if data.age_table is not None else None
        overrides: dict = {"boundaries": boundaries, "age_table": age_table}
        if plan.by_polygon:
            overrides["district_polygons"] = _write_districts(store.read(Layer.DISTRICTS),
                                                              folder / "districts.geojson")
        else:
            overrides["district_map"] = _write_mapping(plan.carry.mapping, folder / "district_map.csv")
        inputs = Inputs.shipped(data_dir, **overrides)
        # the build reads the census layers as they will be (reconcile.store_sources, when the
        # build puts the city total's reconciliation in the kartes: docs/census.md)
        mapping = plan.carry.mapping
        carried_to = dict(zip(mapping["key_code"], mapping["district_code"], strict=True))
        pending = PendingStore(store, overlay=_census_layers(plan, carried_to))
        rebuild(pending, inputs, seed=seed, report=report)
    written = pending.written
    small = written[Layer.SMALL_AREAS]
    meta = dict(zip(written[Layer.META]["key"], written[Layer.META]["value"], strict=True))
    if data.real_elderly:
        real = dict(zip(data.areas["key_code"], data.areas["elderly_alone"], strict=True))
        small = small.copy()
        small["elderly_alone"] = pd.array([real.get(k) for k in small["key_code"]], dtype="Int64")
        written[Layer.SMALL_AREAS] = small
        synthetic = [s for s in json.loads(meta.get("synthetic", "[]")) if s != "elderly_alone"]
        meta["synthetic"] = json.dumps(synthetic)
        written[Layer.META] = pd.DataFrame({"key": list(meta), "value": [str(v) for v in meta.values()]})
        written[Layer.KARTES] = reassemble(written, meta)
    district_of = dict(zip(small["key_code"], small["district_code"], strict=True))
    census = _census_layers(plan, district_of)
    history, years = census[CENSUS_AREAS], census[CENSUS_YEARS]
    previous = history[history["year"].astype(int) == plan.previous_year]
    carried = lines.carried_counts(previous, data.areas) \
        if plan.previous_year != data.year and len(previous) else None
    if carried is not None:
        _previous_census_history(written, small, carried, plan.previous_year)
    if report:
        report("write_census")
    store.write({**written, CENSUS_AREAS: history, CENSUS_YEARS: years})
    trend = lines.trend(history, written[Layer.DISTRICTS], before=plan.previous_year, after=data.year) \
        if plan.previous_year != data.year else None
    return CensusResult(plan, len(written[Layer.KARTES]), trend,
                        sorted([*written, CENSUS_AREAS, CENSUS_YEARS]), carried)


def _previous_census_history(written: dict[str, pd.DataFrame], small: pd.DataFrame, carried: pd.DataFrame,
                             year: int) -> None:
    """Record the previous census in the per-fiscal-year history (issue 12), on today's small areas
    and districts: rows of kind ``census`` for the fiscal year of that census, as ``karte import
    census`` writes them (:func:`karte.importing.history.census_rows`), so the district page and
    ``karte history`` show the trend from it. A fiscal year that already has rows written by a
    build keeps them (its figures are the record of that year)."""
    layer = str(HistoryLayer.HISTORY)
    existing = written.get(layer)
    if existing is None:
        return
    built = (pd.to_numeric(existing["fiscal_year"]) == year) \
        & (existing["kind"].astype(str) == HistoryKind.BUILD)
    if built.any():
        return
    rows = []
    for municipality, part in small.groupby(MUNICIPALITY):
        values = carried[carried.index.isin(part["key_code"].astype(str))]
        rows.append(census_rows(part, values, year=year, municipality=str(municipality),
                                source=f"{census_label(year)}（karte に保存していた小地域、"
                                       "現在の小地域に面積按分）"))
    written[layer] = fiscal_history.merge_history(existing, pd.concat(rows, ignore_index=True),
                                                  keep_analysis=False)


def _census_layers(plan: CensusPlan, district_of: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """The census layers after this import: every year's small areas (this year's with the
    districts ``district_of`` gives) and one summary row per year."""
    data = plan.data
    new_rows = _history_rows(data.areas.assign(district_code=data.areas["key_code"].map(district_of),
                                               elderly_alone=data.areas.get("elderly_alone")), data.year)
    history = gpd.GeoDataFrame(pd.concat([plan.history, new_rows], ignore_index=True), geometry="geometry",
                               crs=crs.METRIC)
    year_row = _year_row(data.year, plan.reconciliation, files=data.files, changes=plan.carry.as_dict(),
                         official=plan.official, unplaced=data.unplaced)
    years = pd.concat([plan.years, year_row], ignore_index=True)
    years["year"] = years["year"].astype("int64")
    return {CENSUS_AREAS: history, CENSUS_YEARS: years.sort_values("year").reset_index(drop=True)}


def census_trend(store: Store, *, before: int | None = None, after: int | None = None) -> pd.DataFrame:
    """Per current district, people and households in two census years held by the store (default:
    the last two): the series the history pages and ``karte history`` show (docs/census.md)."""
    layers = set(store.layers())
    if CENSUS_AREAS not in layers:
        raise KarteError("ストアに国勢調査の履歴がありません（karte census import で作られます）")
    history = store.read(CENSUS_AREAS)
    held = sorted(set(history["year"].astype(int)))
    if len(held) < 2 and (before is None or after is None):
        raise KarteError(f"国勢調査が {len(held)} 回分しかありません")
    after = after if after is not None else held[-1]
    before = before if before is not None else max(y for y in held if y < after)
    return lines.trend(history, store.read(Layer.DISTRICTS), before=before, after=after)


# --- scratch inputs in the layouts the build reads ---------------------------------------------------

def _write_lod(areas: gpd.GeoDataFrame, year: int, path: Path) -> Path:
    """The small areas as e-Stat 統計LOD GeoJSON (what :func:`karte.sources.read_small_areas`
    reads): a concealed area has no population or households property."""
    wgs = areas.to_crs(crs.WGS84)
    features = []
    for row in wgs.itertuples():
        props = {"label": row.name, "fullname": row.fullname}
        if not pd.isna(row.population):
            props["population"] = str(int(row.population))
        if not pd.isna(row.households):
            props["households"] = str(int(row.households))
        features.append({"type": "Feature", "id": LOD_ID.format(year=year, key=row.key_code),
                         "properties": props, "geometry": shapely.geometry.mapping(row.geometry)})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
                    encoding="utf-8")
    return path


def _write_age_table(table: estat.EstatTable, units: set[str], path: Path) -> Path:
    """The age table cut to what :func:`karte.agebands.read_estat_age_table` sums right: the
    total's 5-year columns and the top open column (75歳以上 in 2020, 100歳以上 in 2015), not the
    再掲 aggregates (15歳未満, 15～64歳, 65歳以上), whose open labels it would count twice; ``-``
    written as 0 (it reads ``-`` as concealed)."""
    keep = [*range(len(estat.TABLE_HEAD)), *estat.five_year_columns(table)]
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow([table.codes[j] for j in keep])
        w.writerow([table.labels[j] if j >= len(estat.TABLE_HEAD) else "" for j in keep])
        for _number, row in table.rows:
            if row[0] not in units:
                continue
            cells = [row[j] for j in keep]
            w.writerow(cells[:len(estat.TABLE_HEAD)]
                       + [_cell(c) for c in cells[len(estat.TABLE_HEAD):]])
    return path


def _cell(text: str) -> str:
    value = estat.count(text)
    return "X" if value is None else str(value)


def _write_mapping(mapping: pd.DataFrame, path: Path) -> Path:
    mapping[["key_code", "district_code", "district_name"]].to_csv(path, index=False, encoding="utf-8",
                                                                   lineterminator="\n")
    return path


def _write_districts(districts: gpd.GeoDataFrame, path: Path) -> Path:
    districts[["district_code", "district_name", districts.geometry.name]].to_crs(crs.WGS84).to_file(
        path, driver="GeoJSON")
    return path
