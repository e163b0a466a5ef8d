"""Import one file of one kind into the store: validate everything, report, then write atomically.

``import_file(store, kind, path)`` is the one entry point for the command line and the web API.
It reads the file (:mod:`~karte.importing.tables`), checks every row of it
(:mod:`~karte.importing.kinds`, :mod:`~karte.importing.areas`), and either raises
:class:`ImportValidationError` listing every problem (nothing is written), or compares the result
with the store (:mod:`~karte.importing.diff`) and, when anything changed, writes the new layer
together with the reassembled kartes and meta in one atomic :meth:`Store.write` (the kartes are
reassembled only then: a dry run does not). Loading the same file again changes nothing and
writes nothing.

:func:`prepare_import` and :func:`apply_import` split the two halves, so the command line can
show the change report and ask before writing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import getpass
import hashlib
import threading
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from gis import crs
from karte import municipalities
from karte.census import reconcile
from karte.districts import MAPPING_COLUMNS
from karte.domain.access import SHAREABLE, Access, Level
from karte.domain.errors import InputError, Problem, ValidationError
from karte.domain.layers import MUNICIPALITY, PERSONAL_LAYERS, Layer
from karte.domain.schema import Consent
from karte.importing import areas, records
from karte.importing.diff import ChangeReport, diff_layer
from karte.importing.encoding import ENCODING_JA
from karte.importing.geocode import Geocoder, TownGeocoder, default_geocoder
from karte.importing.kinds import POINT_KINDS, Context, read_points
from karte.importing.points import CityArea, district_lookup, locate_with_tolerance
from karte.importing.refresh import HISTORY_LAYER, meta_frame, reassemble, updated_history, updated_meta
from karte.importing.rows import Findings
from karte.importing.tables import read_table
from karte.settings import get_settings
from karte.store.base import Store

KINDS = ("register", "cooperators", "services", "shelters", "stats", "districts")
KIND_JA = {
    "register": "要支援者名簿", "cooperators": "共助協力者", "services": "共助サービス",
    "shelters": "避難所", "stats": "小地域統計", "districts": "地区の定義",
}
_KIND_ALIASES = {
    "small-area-stats": "stats", "small_area_stats": "stats", "statistics": "stats",
    "small-areas": "stats", "estat": "stats", "boundaries": "districts", "district": "districts",
    "cooperator": "cooperators", "service": "services", "shelter": "shelters",
    **{ja: kind for kind, ja in KIND_JA.items()},
}
#: Columns the import derives (not read from the file): not added to a layer that lacks them, so
#: a store built without them reads back with no change.
DERIVED_COLUMNS = ("location_precision",)
#: Consent states a coordinator's or district member's download never lists.
UNSHAREABLE = frozenset(str(c) for c in Consent) - SHAREABLE
PRECISION_JA = {"exact": "座標・番地", "town": "町の代表点", "none": "位置なし"}
#: ``replace``: the file is the whole layer (or, with ``district``, the whole district);
#: ``upsert``: rows are added and updated by id, nothing is deleted.
MODES = ("replace", "upsert")
#: An import that would delete more than this share of a layer's rows (of the district's, with
#: ``district``) is refused unless ``allow_mass_delete``; so is a file with a header and no row.
MASS_DELETE_SHARE = 1 / 5


def kind_ja(kind: str) -> str:
    """The Japanese name of an import kind (the built-in kinds, then the record kinds)."""
    record = records.find(kind)
    return KIND_JA.get(kind) or (record.title_ja if record is not None else kind)


def canonical_kind(kind: str) -> str:
    key = str(kind).strip().lower()
    key = _KIND_ALIASES.get(key, key)
    record = records.find(key)
    if record is not None:
        return record.kind
    if key not in KINDS:
        every = (*KINDS, *records.RECORD_KINDS)
        raise InputError(f"取り込みの種類 {kind} はありません ({', '.join(every)} のいずれか)")
    return key


@dataclass
class ImportReport:
    """What an import found and did. ``problems`` non-empty means nothing was written."""

    kind: str
    file: str
    encoding: str | None = None
    sheet: str | None = None
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    changes: list[ChangeReport] = field(default_factory=list)
    precision: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changed(self) -> bool:
        return any(c.changed for c in self.changes)

    def format(self, *, verbose: bool = False) -> str:
        """The report in Japanese (English beside each message with ``verbose``)."""
        if self.encoding == "xlsx":
            enc = "Excel (.xlsx)" + (f" シート「{self.sheet}」" if self.sheet else "") + "、"
        elif self.encoding:
            enc = f"文字コード {ENCODING_JA.get(self.encoding, self.encoding)}、"
        else:
            enc = ""
        lines = [f"{kind_ja(self.kind)}: {self.file} ({enc}{self.rows:,} 行)"]
        if self.precision:
            lines.append("位置: " + "、".join(f"{PRECISION_JA.get(k, k)} {v:,} 件"
                                             for k, v in sorted(self.precision.items())))
        lines += self.notes
        if self.problems:
            lines.append(f"エラー {len(self.problems)} 件 (何も読み込んでいません):")
            lines += ["  " + p.format(verbose=verbose) for p in self.problems]
        if self.warnings:
            lines.append(f"注意 {len(self.warnings)} 件:")
            lines += ["  " + p.format(verbose=verbose) for p in self.warnings]
        if not self.problems:
            lines += _format_changes(self.changes)
            if self.written:
                lines.append("ストアに書き込みました。")
            elif self.dry_run and self.changed:
                lines.append("--dry-run のため書き込んでいません。")
        return "\n".join(lines)


def _format_changes(changes: list[ChangeReport]) -> list[str]:
    if not any(c.changed for c in changes):
        return ["変更はありません (ストアはそのままです)。"]
    lines = []
    for c in changes:
        if not c.changed:
            continue
        lines.append(f"変更 ({c.layer}): 追加 {c.added:,}、削除 {c.removed:,}、更新 {c.updated:,}、"
                     f"変更なし {c.unchanged:,}")
        lines.append("  地区        追加    削除    更新")
        for district, added, removed, updated in c.table():
            lines.append(f"  {district:<10}{added:>6}{removed:>8}{updated:>8}")
    return lines


class ImportValidationError(ValidationError):
    """The file has problems; nothing was written. ``report`` holds them and the warnings."""

    def __init__(self, report: ImportReport):
        super().__init__(report.problems)
        self.report = report


@dataclass
class PreparedImport:
    """A validated import, ready to write: the report and the layers :func:`apply_import` writes."""

    report: ImportReport
    layers: dict[str, pd.DataFrame] = field(default_factory=dict)
    provided: set[str] = field(default_factory=set)   # statistics columns the file gave
    by_polygon: bool | None = None                    # districts given as polygons (or by table)
    access: Access | None = None                      # who imports (reads and writes as them)
    apply: Callable | None = None                     # a record kind's own writer (records.py)
    derive: Callable | None = None                    # adds the kartes, meta and history to write


# --- the entry points ----------------------------------------------------------------------

def import_file(store: Store, kind: str, path: Path, *, dry_run: bool = False, sheet: str | None = None,
                district_map: Path | None = None, encoding: str | None = None,
                geocoder: Geocoder | None = None, today: dt.date | None = None,
                district: str | None = None, mode: str = "replace",
                allow_mass_delete: bool = False) -> ImportReport:
    """Validate ``path`` as a file of ``kind`` and, unless ``dry_run``, load it into ``store``.

    Parameters
    ----------
    kind
        ``register``, ``cooperators``, ``services``, ``shelters``, ``stats`` (small-area statistics,
        e-Stat CSVs included) or ``districts`` (boundary file, or a KEY_CODE -> district table).
    sheet
        Worksheet of an ``.xlsx`` workbook (default: the first), or layer of a GeoPackage.
    district_map
        A ``key_code,district_code,district_name`` CSV: place rows in districts through their
        small area with this table instead of the store's district polygons.
    encoding
        Force the CSV encoding (``utf-8``, ``utf-8-sig``, ``cp932``) when detection is in doubt.
    geocoder, today
        For tests: the address geocoder (default: :func:`default_geocoder`) and "today" for the
        future-date checks.
    district
        Replace only the rows of this district (point kinds with a district: register,
        cooperators, services); the other districts' rows stay exactly as they are, and a row of
        the file that lies in another district is an error. In the register, when the file
        lists only rows with shareable consent (a download by a coordinator or a district
        member, who see no others), the district's unconsented rows are kept too (the report
        says how many).
    mode
        ``replace`` (default) or ``upsert``: add and update rows by id, delete none.
    allow_mass_delete
        Accept a file that deletes more than a fifth of the layer's rows (of the district's,
        with ``district``), or that holds no row at all; refused otherwise.

    Raises
    ------
    InputError
        The file cannot be read at all (missing, wrong format, encoding in doubt).
    ImportValidationError
        Any row has a problem; every problem is listed, with row and column; nothing is written.
    """
    prepared = prepare_import(store, kind, path, sheet=sheet, district_map=district_map,
                              encoding=encoding, geocoder=geocoder, today=today, district=district,
                              mode=mode, allow_mass_delete=allow_mass_delete)
    if dry_run:
        prepared.report.dry_run = True
        return prepared.report
    return apply_import(store, prepared)


_GC_LOCK = threading.Lock()
_gc_pauses = 0          # imports running now in this process (a server's threads)
_gc_was_on = False      # was collection on when the first of them started


@contextmanager
def _gc_paused():
    """No cyclic garbage collection while a file is read, checked and written: reading a big
    file makes a few hundred thousand small objects that live until the end (cells, parsed
    values), and each full collection walks every one of them (about 0.3 s a time on a
    20,000-row register, four or five times). Collection is process-wide: it resumes (if it was
    on) when the last import running in this process ends, not when the first does."""
    global _gc_pauses, _gc_was_on
    with _GC_LOCK:
        if _gc_pauses == 0:
            _gc_was_on = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _GC_LOCK:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_on:
                gc.enable()


@_gc_paused()
def apply_import(store: Store, prepared: PreparedImport) -> ImportReport:
    """Write a prepared import (one atomic write); nothing is written when nothing changed."""
    if prepared.apply is not None:
        if prepared.report.changed:
            prepared.apply(store, prepared)
            prepared.report.written = True
        return prepared.report
    if prepared.report.changed and prepared.layers:
        if prepared.derive is not None:
            prepared.derive()
            prepared.derive = None
        store.write(prepared.layers, access=prepared.access)
        prepared.report.written = True
    return prepared.report


@_gc_paused()
def prepare_import(store: Store, kind: str, path: Path, *, sheet: str | None = None,
                   district_map: Path | None = None, encoding: str | None = None,
                   geocoder: Geocoder | None = None, today: dt.date | None = None,
                   district: str | None = None, mode: str = "replace",
                   allow_mass_delete: bool = False) -> PreparedImport:
    """Read and validate ``path`` and compute what would change; write nothing (see
    :func:`import_file` for the parameters)."""
    kind = canonical_kind(kind)
    path = Path(path)
    if not path.exists():
        raise InputError(f"ファイルがありません: {path.name}")
    scope = _Scope.of(kind, district, mode, allow_mass_delete)
    state = _StoreState(store, kind)
    record = records.find(kind)
    if record is not None:
        prepared = record.prepare(store, path, state.access,
                                  {"sheet": sheet, "encoding": encoding, "today": today or dt.date.today()})
        prepared.access = prepared.access or state.access
        prepared.apply = record.apply
        if prepared.report.problems:
            raise ImportValidationError(prepared.report)
        return prepared
    report = ImportReport(kind, path.name)
    findings = Findings(path.name)
    if kind in POINT_KINDS:
        prepared = _prepare_points(kind, path, state, report, findings, sheet=sheet, encoding=encoding,
                                   district_map=district_map, geocoder=geocoder,
                                   today=today or dt.date.today(), scope=scope)
    elif kind == "stats":
        prepared = _prepare_stats(path, state, report, findings, sheet=sheet, encoding=encoding)
    else:
        if district_map is not None:
            raise InputError("--district-map は地区の取り込みには使えません (地区の表そのものを取り込みます)")
        prepared = _prepare_districts(path, state, report, findings, sheet=sheet, encoding=encoding)
    # in the order of the file (file-level problems first); stable, so a row keeps its column order
    report.problems = sorted(findings.problems, key=lambda p: (p.file != report.file, p.row or 0))
    report.warnings = sorted(findings.warnings, key=lambda p: (p.file != report.file, p.row or 0))
    if report.problems:
        raise ImportValidationError(report)
    if report.changed:  # the kartes are reassembled only when the import is written
        record = _import_record(path, report)
        prepared.derive = lambda: _add_derived(prepared, state, kind, record)
    prepared.access = state.access
    return prepared


# --- store state ---------------------------------------------------------------------------

class _StoreState:
    """The store's layers as the import needs them, read once."""

    def __init__(self, store: Store, kind: str):
        self.store = store
        # personal rows are read (to compare) as the store's user, city staff by default, through
        # the route "import:KIND": the PostGIS store logs that read under this route
        base = getattr(store, "access", None) or Access(getpass.getuser(), Level.CITY_STAFF,
                                                        municipality=get_settings().municipality)
        self.access = dataclasses.replace(base, route=f"import:{kind}")
        self.names = set(store.layers())
        self._cache: dict[str, pd.DataFrame] = {}
        self.meta = store.meta() if Layer.META in self.names else {}

    def get(self, layer: str) -> pd.DataFrame | None:
        layer = str(layer)
        if layer not in self.names:
            return None
        if layer not in self._cache:
            personal = layer in PERSONAL_LAYERS
            frame = self.store.read(layer, access=self.access) if personal else self.store.read(layer)
            if isinstance(frame, gpd.GeoDataFrame) and frame.crs is not None and frame.crs != crs.METRIC:
                frame = frame.to_crs(crs.METRIC)
            self._cache[layer] = frame
        return self._cache[layer]

    def city_area(self):
        """The city's area (EPSG:6678) for the outside-the-city check, 300 m of tolerance."""
        small = self.get(Layer.SMALL_AREAS)
        districts = self.get(Layer.DISTRICTS)
        for frame in (small, districts):
            if frame is not None and len(frame):
                return CityArea(frame.geometry.to_numpy(), 300)
        return _town_bbox()


def _town_bbox():
    town = TownGeocoder.from_file()
    lon = [p[0] for p in town.towns.values()]
    lat = [p[1] for p in town.towns.values()]
    box = gpd.GeoSeries([shapely.box(min(lon), min(lat), max(lon), max(lat))], crs=crs.WGS84)
    return box.to_crs(crs.METRIC).iloc[0].buffer(2000)


def _ids(frame: pd.DataFrame | None, column: str) -> frozenset[str] | None:
    return frozenset(frame[column].astype(str)) if frame is not None else None


# --- point kinds ---------------------------------------------------------------------------

def _prepare_points(kind, path, state: _StoreState, report: ImportReport, findings: Findings, *,
                    sheet, encoding, district_map, geocoder, today, scope: _Scope) -> PreparedImport:
    spec = POINT_KINDS[kind]
    districts = state.get(Layer.DISTRICTS)
    small = state.get(Layer.SMALL_AREAS)
    mapping = None
    lookup_source = districts
    if spec.has_district:
        if district_map is not None:
            if small is None:
                raise InputError("--district-map には小地域 (small_areas) が必要です。"
                                 "先に karte build を実行してください")
            table = _read_district_map(Path(district_map), small, findings)
            if table is None:
                return PreparedImport(report)
            mapping = pd.Series(table["district_code"].to_numpy(), index=table["key_code"].to_numpy())
            lookup_source = table.drop_duplicates("district_code")
        elif districts is None:
            raise InputError(f"ストア {state.store.location} に地区がありません。"
                             "先に karte build か karte import districts を実行してください")
    old = state.get(spec.layer)
    if scope.district is not None:
        codes = set(lookup_source["district_code"].astype(str)) if lookup_source is not None else set()
        if scope.district not in codes:
            raise InputError(f"--district の地区 {scope.district} はありません")
    cooperators = state.get(Layer.COOPERATORS) if kind == "register" else None
    shelters = state.get(Layer.SHELTERS) if kind == "register" else None
    ctx = Context(
        source=path.name, today=today, geocoder=geocoder or default_geocoder(),
        districts=districts if mapping is None else None, small_areas=small, district_map=mapping,
        city=state.city_area(),
        cooperator_ids=_ids(cooperators, "cooperator_id"),
        shelter_ids=_ids(shelters, "shelter_id"),
        lookup=district_lookup(lookup_source),
        only_district=scope.district,
        foreign_ids=scope.foreign_ids(old, spec.id_field),
    )
    table = read_table(path, sheet=sheet, encoding=encoding)
    report.encoding, report.sheet = table.encoding, table.sheet
    frame = read_points(kind, table, ctx, findings)
    report.rows = len(frame)
    report.precision = dict(Counter(frame["location_precision"])) if "location_precision" in frame else {}
    prepared = PreparedImport(report)
    if findings.problems:
        return prepared
    if small is not None and MUNICIPALITY in small.columns:
        frame = municipalities.stamp(frame, small, districts=districts)
    frame = _own_municipality(frame, state.access)
    if old is not None and len(old) and DERIVED_COLUMNS[0] not in old.columns:
        frame = frame.drop(columns=[c for c in DERIVED_COLUMNS if c in frame.columns])
    frame = scope.merge(old, frame, spec.id_field, report)
    report.changes = [diff_layer(old, frame, layer=str(spec.layer), id_field=spec.id_field,
                                 district_field="district_code" if spec.has_district else None)]
    scope.guard(old, report, findings)
    prepared.layers = {str(spec.layer): frame}
    return prepared


@dataclass(frozen=True)
class _Scope:
    """What a point import replaces: the whole layer, one district (``--district``), or nothing
    but the rows it names (``upsert``); and the mass-delete guard."""

    kind: str
    district: str | None = None
    mode: str = "replace"
    allow_mass_delete: bool = False

    @classmethod
    def of(cls, kind: str, district: str | None, mode: str, allow_mass_delete: bool) -> _Scope:
        mode = str(mode or "replace").strip().lower()
        if mode not in MODES:
            raise InputError(f"取り込みの方法 {mode} はありません (replace か upsert)")
        district = str(district).strip() if district else None
        if district or mode != "replace":
            spec = POINT_KINDS.get(kind)
            if spec is None or (district and not spec.has_district):
                what = "--district" if district else "--mode upsert"
                where = ("要支援者名簿・共助協力者・共助サービス" if district
                         else "名簿・協力者・サービス・避難所")
                raise InputError(f"{what} は{kind_ja(kind)}の取り込みには使えません ({where}で使えます)")
        return cls(kind, district, mode, allow_mass_delete)

    def foreign_ids(self, old: pd.DataFrame | None, id_field: str) -> dict[str, str]:
        """Ids of the rows of other districts (the rows ``--district`` leaves alone)."""
        if self.district is None or old is None or not len(old):
            return {}
        other = old[old["district_code"].astype(str) != self.district]
        return dict(zip(other[id_field].astype(str), other["district_code"].astype(str), strict=True))

    def merge(self, old: pd.DataFrame | None, frame: gpd.GeoDataFrame, id_field: str,
              report: ImportReport) -> gpd.GeoDataFrame:
        """The layer to write: the file's rows plus the old rows this import does not replace."""
        if old is None or not len(old) or (self.district is None and self.mode == "replace"):
            return frame
        if self.mode == "upsert":
            kept = old[~old[id_field].astype(str).isin(set(frame[id_field].astype(str)))]
            report.notes.append("追加・更新のみ (--mode upsert): ファイルにない行は削除しません")
        else:
            mine = old["district_code"].astype(str) == self.district
            kept = old[~mine]
            report.notes.append(f"地区 {self.district} の行だけを置き換えます (ほかの地区の行はそのままです)")
            unshared = self._unshared(old[mine], frame, id_field)
            if len(unshared):
                kept = pd.concat([kept, unshared])
                report.notes.append(
                    f"ファイルは同意のある方だけの名簿のため、地区 {self.district} の同意のない方 "
                    f"{len(unshared):,} 人はそのままにします")
        merged = pd.concat([kept, frame], ignore_index=True)
        return gpd.GeoDataFrame(merged, geometry=frame.geometry.name, crs=frame.crs)

    def _unshared(self, district_rows: pd.DataFrame, frame: pd.DataFrame, id_field: str) -> pd.DataFrame:
        """Register rows of the district without shareable consent, when the file lists none:
        a download by someone who may not see them cannot delete them."""
        if self.kind != "register" or "consent" not in frame.columns:
            return district_rows.iloc[0:0]
        if frame["consent"].astype(str).isin(UNSHAREABLE).any():
            return district_rows.iloc[0:0]
        unshared = district_rows["consent"].astype(str).isin(UNSHAREABLE)
        absent = ~district_rows[id_field].astype(str).isin(set(frame[id_field].astype(str)))
        return district_rows[unshared & absent]

    def guard(self, old: pd.DataFrame | None, report: ImportReport, findings: Findings) -> None:
        """Refuse a header-only file, and one deleting more than :data:`MASS_DELETE_SHARE` of
        the rows in scope, unless ``allow_mass_delete``."""
        if self.allow_mass_delete:
            return
        what = kind_ja(self.kind)
        if report.rows == 0:
            target = f"{what}の地区 {self.district} の行" if self.district else what
            then = ("取り込んでも何も変わりません" if self.mode == "upsert" else
                    f"{target}を空にするつもりなら --allow-mass-delete を付けてください")
            findings.error(None, None, f"データの行が 1 行もありません (見出しだけのファイルです)。{then}",
                           "header-only file: refused without --allow-mass-delete")
            return
        removed = sum(c.removed for c in report.changes)
        if old is None or not removed:
            return
        total = len(old) if self.district is None else int((old["district_code"].astype(str)
                                                            == self.district).sum())
        if removed > total * MASS_DELETE_SHARE:
            where = f"地区 {self.district} の" if self.district else ""
            findings.error(None, None,
                           f"取り込むと{where}{what} {total:,} 件のうち {removed:,} 件が削除されます "
                           "(5分の1を超える削除)。意図した削除なら --allow-mass-delete を付けてください。"
                           "一部だけを直すなら --district か --mode upsert を使えます",
                           f"would delete {removed} of {total} rows: refused without --allow-mass-delete")


def _own_municipality(frame: pd.DataFrame, access: Access) -> pd.DataFrame:
    """Rows no small area places in a municipality belong to the importing user's."""
    if MUNICIPALITY not in frame.columns or not access.municipality:
        return frame
    known = frame[MUNICIPALITY]
    return frame.assign(**{MUNICIPALITY: known.astype(object).where(known.notna(), access.municipality)})


def _read_district_map(path: Path, small: pd.DataFrame, findings: Findings) -> pd.DataFrame | None:
    """The ``--district-map`` table, read like ``karte import districts`` reads one (any accepted
    header, CSV or xlsx, any supported encoding); its problems name its own file and rows."""
    if not path.exists():
        raise InputError(f"--district-map のファイルがありません: {path.name}")
    own = Findings(path.name)
    table = areas.read_mapping_table(read_table(path), small, own)
    findings.problems.extend(own.problems)
    findings.warnings.extend(own.warnings)
    return None if table is None or own.problems else table


# --- statistics ----------------------------------------------------------------------------

def _prepare_stats(path, state: _StoreState, report, findings, *, sheet, encoding) -> PreparedImport:
    small = state.get(Layer.SMALL_AREAS)
    if small is None:
        raise InputError(f"ストア {state.store.location} に小地域 (small_areas) がありません。"
                         "先に karte build を実行してください")
    table = read_table(path, sheet=sheet, encoding=encoding)
    report.encoding, report.sheet = table.encoding, table.sheet
    update = areas.read_stats(table, path, small, findings)
    report.rows = len(update.values)
    if update.skipped_aggregates:
        report.notes.append(f"e-Stat の集計行 (市全体・大字計) {update.skipped_aggregates} 行は使いません")
    prepared = PreparedImport(report)
    if findings.problems:
        return prepared
    new = areas.apply_stats(small, update)
    columns = [*update.values.columns, "concealed", "synthetic_age"]
    columns = [c for c in columns if c in new.columns]
    report.changes = [diff_layer(small, new, layer=str(Layer.SMALL_AREAS), id_field="key_code",
                                 columns=columns)]
    prepared.layers = {str(Layer.SMALL_AREAS): new}
    prepared.provided = set(update.values.columns)
    return prepared


# --- districts -----------------------------------------------------------------------------

def _prepare_districts(path, state: _StoreState, report, findings, *, sheet, encoding) -> PreparedImport:
    small = state.get(Layer.SMALL_AREAS)
    prepared = PreparedImport(report)
    if areas.is_geo_file(path):
        polygons = areas.read_district_polygons(path, findings, layer=sheet)
        if any(p.row for p in (*findings.problems, *findings.warnings)):
            report.notes.append("地理データの「N行目」は N 番目の地物 (QGIS の属性テーブルの N 行目) です")
        if polygons is None:
            return prepared
        report.rows = len(polygons)
        districts, new_small, mapping = areas.district_layers(polygons, small)
        by_polygon = True
        if new_small is not None:
            lost = new_small["district_code"].isna()
            if lost.any():
                findings.warn(None, None, f"{int(lost.sum())} の小地域がどの地区にも入りません",
                              "small areas outside every district")
    else:
        if small is None:
            raise InputError("地区の表 (KEY_CODE → 地区) には小地域 (small_areas) が必要です。"
                             "先に karte build を実行してください")
        table = read_table(path, sheet=sheet, encoding=encoding)
        report.encoding, report.sheet = table.encoding, table.sheet
        mapping = areas.read_mapping_table(table, small, findings)
        if mapping is None or findings.problems:
            return prepared
        report.rows = len(mapping)
        districts, new_small, mapping = areas.districts_from_mapping(mapping, small)
        by_polygon = False
    old = state.get(Layer.DISTRICTS)
    report.changes = [diff_layer(old, districts, layer=str(Layer.DISTRICTS), id_field="district_code",
                                 columns=["district_name", districts.geometry.name],
                                 district_field="district_code")]
    layers: dict[str, pd.DataFrame] = {str(Layer.DISTRICTS): districts}
    if new_small is not None:
        layers[str(Layer.SMALL_AREAS)] = new_small
        layers[str(Layer.DISTRICT_MAP)] = pd.DataFrame(mapping)[list(MAPPING_COLUMNS)]
    for name in (Layer.REGISTER, Layer.COOPERATORS, Layer.SERVICES):
        moved = _relocate(state.get(name), districts, findings, layer=str(name))
        if moved is not None:
            change = diff_layer(state.get(name), moved, layer=str(name),
                                id_field=POINT_KINDS[str(name)].id_field, columns=["district_code"])
            if change.changed:
                report.changes.append(change)
                layers[str(name)] = moved
    prepared.layers = layers
    prepared.by_polygon = by_polygon
    return prepared


def _relocate(frame, districts, findings: Findings, *, layer: str):
    """Points of a layer moved to the new districts; rows left outside every district are a
    problem for the register (they would drop out of every karte) and a warning otherwise."""
    if frame is None or not len(frame) or not isinstance(frame, gpd.GeoDataFrame):
        return None
    out = frame.copy()
    located = locate_with_tolerance(out.to_crs(districts.crs), districts, "district_code")
    keep = out["district_code"].where(out["district_code"].isin(set(districts["district_code"])), None)
    out["district_code"] = located.where(located.notna(), keep).to_numpy()
    lost = int(out["district_code"].isna().sum())
    if lost:
        msg = f"新しい地区割りでは {layer} の {lost} 件がどの地区にも入りません"
        if layer == Layer.REGISTER:
            findings.error(None, None, msg + "。地区の区域を確認してください",
                           "register rows outside every district")
        else:
            findings.warn(None, None, msg, "rows outside every district")
    return out


# --- kartes and meta -----------------------------------------------------------------------

def _import_record(path: Path, report: ImportReport) -> dict:
    """What meta records of the imported file (read when it is validated, not when written)."""
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
            "rows": report.rows, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def _add_derived(prepared: PreparedImport, state: _StoreState, kind: str, record: dict) -> None:
    """Add the reassembled kartes and the updated meta to the layers to write (when the store
    already holds built kartes). Called by :func:`apply_import`: a dry run, and an import the
    user declines, never reassemble them."""
    if Layer.KARTES not in state.names or Layer.META not in state.names:
        return
    layers = {str(n): state.get(n) for n in (Layer.SMALL_AREAS, Layer.DISTRICTS, Layer.REGISTER,
                                             Layer.COOPERATORS, Layer.SERVICES, Layer.SHELTERS,
                                             Layer.EMERGENCY_SITES, reconcile.CENSUS_YEARS,
                                             reconcile.CENSUS_AREAS)}
    layers.update(prepared.layers)
    if layers.get(str(Layer.SMALL_AREAS)) is None or layers.get(str(Layer.DISTRICTS)) is None:
        return
    target = {"stats": Layer.SMALL_AREAS, "districts": Layer.DISTRICTS}.get(kind) or POINT_KINDS[kind].layer
    meta = updated_meta(state.meta, kind=kind, layer=str(target), small_areas=layers[str(Layer.SMALL_AREAS)],
                        provided=prepared.provided, by_polygon=prepared.by_polygon, record=record)
    kartes = reassemble(layers, meta)
    prepared.layers[str(Layer.KARTES)] = kartes
    prepared.layers[str(Layer.META)] = meta_frame(meta)
    # the year's history rows follow the kartes, in the same write (as a build's do)
    prepared.layers[HISTORY_LAYER] = updated_history(state.get(HISTORY_LAYER), kartes, layers, meta)
