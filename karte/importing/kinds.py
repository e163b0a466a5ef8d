"""Per-kind row validation for the point kinds: register, cooperators, services, shelters.

Each kind reads its rows into the store's layer schema (:mod:`karte.domain.schema`), records every
problem with row and column (each distinct cell text is parsed once per column:
:class:`~karte.importing.rows.Columns`), locates the rows (:mod:`karte.importing.points`; an
address is geocoded once), sets or checks their district, and returns one GeoDataFrame in
EPSG:6678.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from gis import crs
from karte.domain.layers import COOPERATOR_COLUMNS, REGISTER_COLUMNS, SERVICE_COLUMNS, Layer, join_list
from karte.domain.schema import LocationPrecision, PlanStatus
from karte.importing.geocode import Geocoder
from karte.importing.points import (
    Located,
    clean_address,
    district_lookup,
    parse_location,
    place,
    resolve_district,
)
from karte.importing.rows import Findings, Row, iter_rows
from karte.importing.tables import RawTable
from karte.importing.values import (
    ValueProblem,
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
    read_row: Callable[[Row, Context], dict]
    has_district: bool = True
    needs_location: bool = False


# --- the row readers -----------------------------------------------------------------------

def _text(row: Row, field: str) -> str | None:
    text = clean_name(row.text(field))
    return text or None


def _word(row: Row, field: str) -> str | None:
    return row.parse(field, _word_value)


def _word_value(text: str) -> str | None:
    text = nfkc(text)
    return None if text in ("", "なし", "無", "-") else text


def _flag(row: Row, field: str) -> bool:
    return bool(row.parse(field, parse_yes_no, default=False))


def _supporter_ids(text: str) -> list[str]:
    return [parse_code(x) for x in parse_list(text)]


def _read_register(row: Row, ctx: Context) -> dict:
    birth = row.parse("birth_date", parse_date, required=True)
    if birth is not None:
        if birth > ctx.today:
            row.error("birth_date", "生年月日が未来の日付です", "birth date in the future")
        elif birth.year < ctx.today.year - MAX_AGE_YEARS:
            row.error("birth_date", f"生年月日が古すぎます ({MAX_AGE_YEARS}歳を超えます)",
                      "birth date implausibly early")
    consent = row.parse("consent", parse_consent, required=True,
                        empty=("同意欄が空です (同意・不同意・未回答・条例 のいずれか)", "consent missing"))
    consent_date = row.parse("consent_date", parse_date)
    if consent_date is not None and consent_date > ctx.today:
        row.error("consent_date", "同意日が未来の日付です", "consent date in the future")
    supporters = row.parse("supporter_ids", _supporter_ids, default=[])
    if ctx.cooperator_ids is not None and supporters:
        unknown = [s for s in supporters if s not in ctx.cooperator_ids]
        if unknown:
            row.warn("supporter_ids", f"{len(unknown)} 人の支援者番号が共助協力者の一覧にありません",
                     "supporter not among the cooperators")
    shelter = row.parse("shelter_id", parse_code)
    if shelter and ctx.shelter_ids is not None and shelter not in ctx.shelter_ids:
        row.warn("shelter_id", "避難所が指定避難所の一覧にありません", "unknown shelter id")
    if not row.text("address") and not (row.text("latitude") or row.text("plane_x")):
        row.error("address", "住所 (または緯度・経度) が空です", "address missing")
    return {
        "person_id": row.parse("person_id", parse_code, required=True),
        "name": row.parse("name", clean_name, required=True),
        "kana": row.parse("kana", clean_kana),
        "address": clean_address(row.text("address")),
        "birth_date": birth.isoformat() if birth else None,
        "care_level": row.parse("care_level", parse_care_level),
        "disability_kind": row.parse("disability_kind", parse_disability_kind),
        "disability_grade": _word(row, "disability_grade"),
        "elderly_only_household": _flag(row, "elderly_only_household"),
        "intractable_disease": _flag(row, "intractable_disease"),
        "infant": _flag(row, "infant"),
        "medical_devices": _word(row, "medical_devices"),
        "mobility": row.parse("mobility", parse_mobility),
        "consent": str(consent) if consent else None,
        "consent_date": consent_date.isoformat() if consent_date else None,
        "supporter_ids": join_list(supporters or []),
        "plan_status": str(row.parse("plan_status", parse_plan_status, default=PlanStatus.NONE)),
        "shelter_id": shelter or None,
        "emergency_contact": _text(row, "emergency_contact"),
    }


def _read_cooperator(row: Row, ctx: Context) -> dict:
    helps = row.parse("help_kinds", parse_help_kinds, default=[])
    return {
        "cooperator_id": row.parse("cooperator_id", parse_code, required=True),
        "role": row.parse("role", parse_role, required=True),
        "name": row.parse("name", clean_name, required=True),
        "phone": row.parse("phone", parse_phone) or None,
        "help_kinds": join_list(helps or []),
        "capacity": row.parse("capacity", parse_int, default=0),
    }


def _read_service(row: Row, ctx: Context) -> dict:
    return {
        "service_id": row.parse("service_id", parse_code, required=True),
        "kind": row.parse("kind", parse_service_kind, required=True),
        "name": row.parse("name", clean_name, required=True),
        "operator": _text(row, "operator"),
        "venue": _text(row, "venue"),
        "frequency": row.parse("frequency", parse_frequency),
        "schedule": nfkc(row.text("schedule")) or None,
        "contact": _text(row, "contact"),
        "target": _text(row, "target"),
    }


def _read_shelter(row: Row, ctx: Context) -> dict:
    accepts = _text(row, "accepts")
    welfare = row.parse("welfare", parse_yes_no)
    return {
        "shelter_id": row.parse("shelter_id", parse_code, required=True),
        "name": row.parse("name", clean_name, required=True),
        "address": clean_address(row.text("address")),
        "welfare": bool(welfare) if welfare is not None else accepts is not None,
        "accepts": accepts,
        "note": _text(row, "note"),
    }


POINT_KINDS = {
    "register": PointKind("register", Layer.REGISTER, "person_id",
                          (*REGISTER_COLUMNS, *REGISTER_EXTRA_COLUMNS), _read_register, needs_location=True),
    "cooperators": PointKind("cooperators", Layer.COOPERATORS, "cooperator_id",
                             (*COOPERATOR_COLUMNS, "location_precision"), _read_cooperator),
    "services": PointKind("services", Layer.SERVICES, "service_id",
                          (*SERVICE_COLUMNS, "location_precision"), _read_service),
    "shelters": PointKind("shelters", Layer.SHELTERS, "shelter_id", SHELTER_COLUMNS, _read_shelter,
                          has_district=False, needs_location=True),
}


# --- the whole file ------------------------------------------------------------------------

def read_points(kind: str, table: RawTable, ctx: Context, findings: Findings) -> gpd.GeoDataFrame:
    """Read, check and place every row of a point file; problems go to ``findings``.

    The result is in the layer's column order plus ``geometry`` (EPSG:6678). When ``findings``
    holds problems the result must not be written.
    """
    spec = POINT_KINDS[kind]
    _match, rows_iter = iter_rows(table, kind, findings)
    rows: list[Row] = []
    records: list[dict] = []
    located: list[Located] = []
    given: list[str | None] = []
    failed: list[bool] = []     # the location itself was wrong (already reported)
    for row in rows_iter:
        try:
            record = spec.read_row(row, ctx)
            loc = parse_location(row, ctx.geocoder)
            district = resolve_district(row, ctx.lookup) if spec.has_district else None
        except ValueProblem as exc:  # a reader's own check
            row.error(None, exc.ja, exc.en)
            continue
        rows.append(row)
        records.append(record)
        located.append(loc if loc is not None else Located(LocationPrecision.NONE))
        unknown_district = spec.has_district and district is None and bool(row.text("district_code"))
        failed.append(loc is None or unknown_district)
        given.append(district)
    _check_duplicates(rows, records, spec.id_field, findings)
    placement = place(located, rows, city=ctx.city,
                      districts=ctx.districts if spec.has_district else None, small_areas=ctx.small_areas,
                      district_map=ctx.district_map if spec.has_district else None)
    points = placement.geometry.to_numpy()
    for i, (row, record, loc) in enumerate(zip(rows, records, located, strict=True)):
        failed[i] = failed[i] or bool(placement.outside[i])
        has_point = points[i] is not None
        record["location_precision"] = str(loc.precision if has_point else LocationPrecision.NONE)
        if failed[i] or (kind == "register" and not row.text("address")):
            pass  # the location (or district) problem is already reported
        elif spec.needs_location and not has_point:
            row.error("address", "位置が分かりません (住所か緯度・経度が必要です)", "no location")
        if kind == "register":
            record["key_code"] = _small_area(row, placement.key_code[i], points[i], ctx)
        if spec.has_district:
            record["district_code"] = _reconcile(row, given[i], placement.district_code[i], loc, has_point,
                                                 report=not failed[i])
            _check_scope(row, record, spec.id_field, ctx)
    frame = pd.DataFrame.from_records(records, columns=list(spec.columns)) if records else \
        pd.DataFrame(columns=list(spec.columns))
    return gpd.GeoDataFrame(frame, geometry=placement.geometry.reset_index(drop=True)
                            if records else gpd.GeoSeries([], crs=crs.METRIC), crs=crs.METRIC)


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


def _check_duplicates(rows: list[Row], records: list[dict], id_field: str, findings: Findings) -> None:
    first: dict[str, int] = {}
    for row, record in zip(rows, records, strict=True):
        key = record.get(id_field)
        if not key:
            continue
        if key in first:
            row.error(id_field, f"番号が {first[key]} 行目と重複しています", "duplicate id")
        else:
            first[key] = row.number


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
