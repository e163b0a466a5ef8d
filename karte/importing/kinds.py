"""Per-kind row validation for the point kinds: register, cooperators, services, shelters.

Each kind reads its rows into the store's layer schema (:mod:`karte.domain.schema`), records every
problem with row and column, locates the rows (:mod:`karte.importing.points`; an address is
geocoded once, each distinct point placed once), sets or checks their district, and returns one
GeoDataFrame in EPSG:6678. A kind's reader is a list of parts, each reading a few cells
(:class:`~karte.importing.rows.Part`): each part runs once per distinct value of its cells
(:func:`~karte.importing.rows.read_parts`), and only the rows with something to report are
visited one by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from gis import crs
from karte.domain.layers import COOPERATOR_COLUMNS, REGISTER_COLUMNS, SERVICE_COLUMNS, Layer, join_list
from karte.domain.schema import LocationPrecision, PlanStatus
from karte.importing.geocode import Geocoder
from karte.importing.points import (
    NOWHERE,
    Located,
    clean_address,
    district_lookup,
    parse_location,
    place,
    resolve_district,
)
from karte.importing.rows import Findings, Part, PartsRead, Row, read_columns, read_parts
from karte.importing.tables import RawTable
from karte.importing.values import (
    clean_kana,
    clean_name,
    nfkc,
    parse_care_level,
    parse_code,
    parse_consent,
    parse_date,
    parse_disability_kind,
    parse_frequency,
    parse_help_kinds,
    parse_int,
    parse_list,
    parse_mobility,
    parse_phone,
    parse_plan_status,
    parse_role,
    parse_service_kind,
    parse_yes_no,
)

#: The oldest plausible birth date is this many years before today.
MAX_AGE_YEARS = 125

SHELTER_COLUMNS = ("shelter_id", "name", "address", "welfare", "accepts", "note")
#: Register columns the import reads that the layer registry does not model yet (the PostGIS store
#: keeps them in the row's ``extra``): 緊急連絡先, free text such as 「長女 090-1234-5678」.
REGISTER_EXTRA_COLUMNS = ("emergency_contact",)


@dataclass
class Context:
    """What the row checks need from the store and the caller."""

    source: str
    today: dt.date
    geocoder: Geocoder
    districts: gpd.GeoDataFrame | None = None
    small_areas: gpd.GeoDataFrame | None = None
    district_map: pd.Series | None = None      # key_code -> district_code
    city: object | None = None                 # shapely geometry, EPSG:6678
    cooperator_ids: frozenset[str] | None = None
    shelter_ids: frozenset[str] | None = None
    lookup: dict[str, str] = field(default_factory=dict)
    only_district: str | None = None           # --district: every row must lie in this district
    foreign_ids: dict[str, str] = field(default_factory=dict)  # id -> district, rows --district keeps

    def __post_init__(self):
        if not self.lookup:
            self.lookup = district_lookup(self.districts)


@dataclass(frozen=True)
class PointKind:
    kind: str
    layer: str
    id_field: str
    columns: tuple[str, ...]
    parts: tuple[Part, ...]          # the row reader, in the order it checks the cells
    has_district: bool = True
    needs_location: bool = False


# --- the row readers, in parts (each part reads a few cells, once per distinct value) -------

def _parsed(field: str, parser: Callable, **kw) -> Part:
    """The part giving ``field`` as ``row.parse(field, parser, **kw)``."""
    return Part((field,), lambda row, ctx: {field: row.parse(field, parser, **kw)})


def _text(field: str) -> Part:
    """Free text, cleaned (None when empty)."""
    return Part((field,), lambda row, ctx: {field: clean_name(row.text(field)) or None})


def _word(field: str) -> Part:
    return _parsed(field, _word_value)


def _word_value(text: str) -> str | None:
    text = nfkc(text)
    return None if text in ("", "なし", "無", "-") else text


def _flag(field: str) -> Part:
    return Part((field,), lambda row, ctx: {field: bool(row.parse(field, parse_yes_no, default=False))})


def _supporter_ids(text: str) -> list[str]:
    return [parse_code(x) for x in parse_list(text)]


def _birth(row: Row, ctx: Context) -> dict:
    birth = row.parse("birth_date", parse_date, required=True)
    if birth is not None:
        if birth > ctx.today:
            row.error("birth_date", "生年月日が未来の日付です", "birth date in the future")
        elif birth.year < ctx.today.year - MAX_AGE_YEARS:
            row.error("birth_date", f"生年月日が古すぎます ({MAX_AGE_YEARS}歳を超えます)",
                      "birth date implausibly early")
    return {"birth_date": birth.isoformat() if birth else None}


def _consent(row: Row, ctx: Context) -> dict:
    consent = row.parse("consent", parse_consent, required=True,
                        empty=("同意欄が空です (同意・不同意・未回答・条例 のいずれか)", "consent missing"))
    return {"consent": str(consent) if consent else None}


def _consent_date(row: Row, ctx: Context) -> dict:
    consent_date = row.parse("consent_date", parse_date)
    if consent_date is not None and consent_date > ctx.today:
        row.error("consent_date", "同意日が未来の日付です", "consent date in the future")
    return {"consent_date": consent_date.isoformat() if consent_date else None}


def _supporters(row: Row, ctx: Context) -> dict:
    supporters = row.parse("supporter_ids", _supporter_ids, default=[])
    if ctx.cooperator_ids is not None and supporters:
        unknown = [s for s in supporters if s not in ctx.cooperator_ids]
        if unknown:
            row.warn("supporter_ids", f"{len(unknown)} 人の支援者番号が共助協力者の一覧にありません",
                     "supporter not among the cooperators")
    return {"supporter_ids": join_list(supporters or [])}


def _shelter(row: Row, ctx: Context) -> dict:
    shelter = row.parse("shelter_id", parse_code)
    if shelter and ctx.shelter_ids is not None and shelter not in ctx.shelter_ids:
        row.warn("shelter_id", "避難所が指定避難所の一覧にありません", "unknown shelter id")
    return {"shelter_id": shelter or None}


def _register_address(row: Row, ctx: Context) -> dict:
    if not row.text("address") and not (row.text("latitude") or row.text("plane_x")):
        row.error("address", "住所 (または緯度・経度) が空です", "address missing")
    return {"address": clean_address(row.text("address"))}


REGISTER_PARTS = (
    Part(("birth_date",), _birth),
    Part(("consent",), _consent),
    Part(("consent_date",), _consent_date),
    Part(("supporter_ids",), _supporters),
    Part(("shelter_id",), _shelter),
    Part(("address", "latitude", "plane_x"), _register_address),
    _parsed("person_id", parse_code, required=True),
    _parsed("name", clean_name, required=True),
    _parsed("kana", clean_kana),
    _parsed("care_level", parse_care_level),
    _parsed("disability_kind", parse_disability_kind),
    _word("disability_grade"),
    _flag("elderly_only_household"),
    _flag("intractable_disease"),
    _flag("infant"),
    _word("medical_devices"),
    _parsed("mobility", parse_mobility),
    Part(("plan_status",), lambda row, ctx: {
        "plan_status": str(row.parse("plan_status", parse_plan_status, default=PlanStatus.NONE))}),
    _text("emergency_contact"),
)

COOPERATOR_PARTS = (
    Part(("help_kinds",), lambda row, ctx: {
        "help_kinds": join_list(row.parse("help_kinds", parse_help_kinds, default=[]) or [])}),
    _parsed("cooperator_id", parse_code, required=True),
    _parsed("role", parse_role, required=True),
    _parsed("name", clean_name, required=True),
    Part(("phone",), lambda row, ctx: {"phone": row.parse("phone", parse_phone) or None}),
    _parsed("capacity", parse_int, default=0),
)

SERVICE_PARTS = (
    _parsed("service_id", parse_code, required=True),
    _parsed("kind", parse_service_kind, required=True),
    _parsed("name", clean_name, required=True),
    _text("operator"),
    _text("venue"),
    _parsed("frequency", parse_frequency),
    Part(("schedule",), lambda row, ctx: {"schedule": nfkc(row.text("schedule")) or None}),
    _text("contact"),
    _text("target"),
)


def _shelter_kind(row: Row, ctx: Context) -> dict:
    accepts = clean_name(row.text("accepts")) or None
    welfare = row.parse("welfare", parse_yes_no)
    return {"welfare": bool(welfare) if welfare is not None else accepts is not None, "accepts": accepts}


SHELTER_PARTS = (
    Part(("accepts", "welfare"), _shelter_kind),
    _parsed("shelter_id", parse_code, required=True),
    _parsed("name", clean_name, required=True),
    Part(("address",), lambda row, ctx: {"address": clean_address(row.text("address"))}),
    _text("note"),
)

POINT_KINDS = {
    "register": PointKind("register", Layer.REGISTER, "person_id",
                          (*REGISTER_COLUMNS, *REGISTER_EXTRA_COLUMNS), REGISTER_PARTS, needs_location=True),
    "cooperators": PointKind("cooperators", Layer.COOPERATORS, "cooperator_id",
                             (*COOPERATOR_COLUMNS, "location_precision"), COOPERATOR_PARTS),
    "services": PointKind("services", Layer.SERVICES, "service_id",
                          (*SERVICE_COLUMNS, "location_precision"), SERVICE_PARTS),
    "shelters": PointKind("shelters", Layer.SHELTERS, "shelter_id", SHELTER_COLUMNS, SHELTER_PARTS,
                          has_district=False, needs_location=True),
}
#: After a kind's own parts: the row's location, then the district its district column names.
LOCATION = Part(("latitude", "longitude", "plane_x", "plane_y", "address"),
                lambda row, ctx: parse_location(row, ctx.geocoder))
DISTRICT = Part(("district_code",), lambda row, ctx: resolve_district(row, ctx.lookup))


# --- the whole file ------------------------------------------------------------------------

def read_points(kind: str, table: RawTable, ctx: Context, findings: Findings) -> gpd.GeoDataFrame:
    """Read, check and place every row of a point file; problems go to ``findings``.

    The result is in the layer's column order plus ``geometry`` (EPSG:6678). When ``findings``
    holds problems the result must not be written. The problems are found column by column
    (:func:`~karte.importing.rows.read_parts`) and recorded as a reader going row by row would:
    each row's checks in order, then duplicate ids, points outside the city, and the district.
    """
    spec = POINT_KINDS[kind]
    _match, columns = read_columns(table, kind, findings)
    if columns is None:
        return _empty(spec)
    parts = [*spec.parts, LOCATION, *([DISTRICT] if spec.has_district else [])]
    read = read_parts(columns, parts, ctx)
    n = len(read.positions)
    if not n:
        return _empty(spec)
    values: dict[str, list] = {}
    for outcomes in read.values[:len(spec.parts)]:
        for name in outcomes[0]:
            values[name] = [d[name] for d in outcomes]
    loc_out = read.values[len(spec.parts)]
    given: list[str | None] = read.values[-1] if spec.has_district else [None] * n
    located = [loc if loc is not None else NOWHERE for loc in loc_out]
    failed = np.array([loc is None for loc in loc_out], dtype=bool)    # already reported
    if spec.has_district:                                                # an unknown district
        district_texts = columns.column("district_code")[0]
        failed |= np.array([g is None and bool(district_texts[i]) for g, i in zip(given, read.positions,
                                                                                  strict=True)], dtype=bool)
    _check_duplicates(values[spec.id_field], read, spec.id_field)
    placement = place(located, _Rows(read), city=ctx.city,
                      districts=ctx.districts if spec.has_district else None, small_areas=ctx.small_areas,
                      district_map=ctx.district_map if spec.has_district else None)
    points = placement.geometry.to_numpy()
    has_point = np.array([p is not None for p in points], dtype=bool)
    failed |= placement.outside
    values["location_precision"] = [str(loc.precision) if has else str(LocationPrecision.NONE)
                                    for loc, has in zip(located, has_point, strict=True)]
    addresses = columns.column("address")[0]
    no_address = np.array([not addresses[i] for i in read.positions], dtype=bool)
    unplaced = ~has_point & ~failed & ~(no_address & (kind == "register")) & spec.needs_location
    if kind == "register":
        values["key_code"] = list(placement.key_code)
    if spec.has_district:
        values["district_code"] = [g or d for g, d in zip(given, placement.district_code, strict=True)]
    # the rows that need a look of their own (in the order of the file): a missing location, a
    # given small area, a district to reconcile or to check against --district
    visit = unplaced.copy()
    if kind == "register" and columns.match.fields.get("key_code") is not None:
        visit[:] = True
    if spec.has_district:
        placed = placement.district_code
        visit |= np.array([bool(g) or not d for g, d in zip(given, placed, strict=True)], dtype=bool)
        if ctx.only_district is not None:
            visit[:] = True
    for j in np.flatnonzero(visit):
        row = read.row(j)
        if unplaced[j]:
            row.error("address", "位置が分かりません (住所か緯度・経度が必要です)", "no location")
        if kind == "register":
            values["key_code"][j] = _small_area(row, placement.key_code[j], points[j], ctx)
        if spec.has_district:
            values["district_code"][j] = _reconcile(row, given[j], placement.district_code[j], located[j],
                                                    bool(has_point[j]), report=not failed[j])
            _check_scope(row, {name: values[name][j] for name in ("district_code", spec.id_field)},
                         spec.id_field, ctx)
    frame = pd.DataFrame({c: values[c] if c in values else [np.nan] * n for c in spec.columns},
                         columns=list(spec.columns))
    return gpd.GeoDataFrame(frame, geometry=placement.geometry.reset_index(drop=True), crs=crs.METRIC)


def _empty(spec: PointKind) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(columns=list(spec.columns)),
                            geometry=gpd.GeoSeries([], crs=crs.METRIC), crs=crs.METRIC)


class _Rows:
    """The kept rows by position, as :func:`~karte.importing.points.place` records on them."""

    def __init__(self, read: PartsRead):
        self.read = read

    def __getitem__(self, j: int) -> Row:
        return self.read.row(int(j))


#: A given small area is kept when the point lies within this many metres of it.
SMALL_AREA_TOLERANCE_M = 1.0


def _small_area(row: Row, placed: str | None, point, ctx: Context) -> str | None:
    """The row's small area: the one the file names (小地域コード, as karte's downloads write it)
    when the point lies in it (census polygons overlap here and there, and either would do),
    else the one the point was placed in."""
    given = parse_code(row.text("key_code")) if row.has("key_code") else ""
    if not given or given == placed or point is None or ctx.small_areas is None:
        return placed
    area = ctx.small_areas[ctx.small_areas["key_code"].astype(str) == given]
    if len(area) and area.geometry.to_crs(crs.METRIC).distance(point).min() <= SMALL_AREA_TOLERANCE_M:
        return given
    return placed


def _check_scope(row: Row, record: dict, id_field: str, ctx: Context) -> None:
    """With ``--district D``: a row must lie in D, and its id must not be a row of another
    district (which this import leaves as it is)."""
    if ctx.only_district is None:
        return
    district = record.get("district_code")
    if district and district != ctx.only_district:
        row.error("district_code", f"地区 {ctx.only_district} だけの取り込み (--district) ですが、"
                                   f"この行は地区 {district} にあります",
                  "row lies in another district than --district")
    other = ctx.foreign_ids.get(str(record.get(id_field) or ""))
    if other:
        row.error(id_field, f"この番号は地区 {other} の行にあります (--district {ctx.only_district} では"
                            "ほかの地区の行は変えません)", "id belongs to a row of another district")


def _check_duplicates(keys: list, read: PartsRead, id_field: str) -> None:
    first: dict[str, int] = {}
    for j, key in enumerate(keys):
        if not key:
            continue
        if key in first:
            read.row(j).error(id_field, f"番号が {first[key]} 行目と重複しています", "duplicate id")
        else:
            first[key] = read.number(j)


def _reconcile(row: Row, given: str | None, located: str | None, loc: Located, has_point: bool, *,
               report: bool) -> str | None:
    """The row's district: the given one checked against the location, else the located one."""
    if given and located and given != located:
        if loc.precision == LocationPrecision.EXACT:
            row.error("district_code", f"座標は地区 {located} にありますが、地区欄は {given} です",
                      "coordinates lie in another district")
        else:
            row.warn("district_code", f"町の代表点は地区 {located} にありますが、地区欄の {given} を使います",
                     "town point lies in another district; the given district is kept")
        return given
    if given or located:
        return given or located
    if report:
        if has_point:
            row.error("district_code", "位置がどの地区の区域にも入りません (地区欄で指定してください)",
                      "point outside every district")
        else:
            row.error("district_code", "地区が決まりません (住所・座標・地区のいずれかが必要です)",
                      "no district: give an address, coordinates or a district")
    return None
