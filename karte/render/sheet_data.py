"""What one district sheet prints, gathered from the store: plain data, no drawing.

:func:`load_context` reads every layer once (a batch of 42 sheets reads the store once);
:func:`district_sheet` cuts one district's sheet out of it. Personal rows (the consented register,
the cooperator roster with contacts) are built only for the confidential and drill editions, and
only the shareable rows (同意 / 条例による推定同意), whatever the user's level: a printed sheet
leaves the office. The public edition holds aggregates only, small counts suppressed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from enum import StrEnum

import geopandas as gpd
import pandas as pd
import shapely

from gis.params import AnalysisParams
from karte.domain.access import PUBLIC, Access, suppress
from karte.domain.layers import Layer
from karte.domain.schema import HELP_JA, PLAN_STATUS_JA, ROLE_JA, Consent, HelpKind, PlanStatus, Role
from karte.render.sheet_analysis import Coverage, catchment_radius, counting_salons, evacuation_gaps
from karte.render.sheet_map import MapData, MapPoint
from karte.store.base import Store, split_list


class Edition(StrEnum):
    """Sheet editions (版)."""

    PUBLIC = "public"              # 公開版: no personal data, small counts suppressed
    CONFIDENTIAL = "confidential"  # 取扱注意: adds the consented register and the roster
    DRILL = "drill"                # 訓練用: register by supporter and by shelter, roll-call boxes

    @property
    def ja(self) -> str:
        return {"public": "公開版", "confidential": "取扱注意", "drill": "訓練用・取扱注意"}[self.value]

    @property
    def personal(self) -> bool:
        return self is not Edition.PUBLIC


MOBILITY_JA = {"independent": "自立", "walk_with_help": "歩行介助", "wheelchair": "車いす",
               "bedridden": "寝たきり"}

#: (gap kind, label) in the order printed; "city" rates are printed beside.
GAP_LABELS = (
    ("no_consent", "名簿提供の同意がない"),
    ("no_supporter", "支援者が決まっていない"),
    ("supporter_far", "支援者が遠い（徒歩{supporter_m:.0f}m超）"),
    ("supporter_overloaded", "支援者の受け持ちが定員超過"),
    ("no_plan", "個別避難計画が未作成・作成中"),
    ("no_shelter", "避難先が遠い"),
    ("no_location", "所在地が不明"),
    ("at_risk", "いずれかの空白がある"),
)

_CITY_PREFIX = "青森県青森市"


@dataclass(frozen=True)
class SheetOptions:
    """How a sheet is printed: edition, paper, and who printed it when."""

    edition: Edition = Edition.PUBLIC
    paper: str = "A4"
    user: str = "anonymous"
    printed_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass
class SheetContext:
    """Every layer a batch of sheets needs, read once, plus the citywide gap analysis."""

    districts: gpd.GeoDataFrame
    small_areas: gpd.GeoDataFrame
    services: gpd.GeoDataFrame
    shelters: gpd.GeoDataFrame
    register: gpd.GeoDataFrame
    cooperators: gpd.GeoDataFrame
    kartes: dict[str, dict]
    params: AnalysisParams
    person_gaps: pd.DataFrame
    district_gaps: pd.DataFrame
    load: pd.DataFrame
    salons: gpd.GeoDataFrame
    #: cooperator_id -> (name, phone, role); shelter_id -> (name, welfare, address)
    cooperator_index: dict[str, tuple] = field(default_factory=dict)
    shelter_index: dict[str, tuple] = field(default_factory=dict)

    def __post_init__(self):
        self.cooperator_index = {
            c.cooperator_id: (c.name, _text(c.phone) or "", ROLE_JA[Role(c.role)])
            for c in self.cooperators.itertuples()}
        self.shelter_index = {
            s.shelter_id: (s.name, bool(s.welfare), _short_address(_text(s.address) or ""))
            for s in self.shelters.itertuples()}

    @property
    def codes(self) -> list[str]:
        return sorted(self.kartes)


@dataclass
class DistrictSheet:
    """Everything printed on one district's sheet."""

    karte: dict
    options: SheetOptions
    map: MapData
    salon_numbers: dict[str, int]
    shelter_labels: dict[str, str]
    gap_rows: list[tuple[str, object, float | None, float | None]]
    coverage_rows: list[tuple[str, object, float | None, float | None]]
    role_rows: list[tuple[str, object]]
    roster: list[dict] | None = None
    register: list[dict] | None = None

    @property
    def code(self) -> str:
        return self.karte["district"]["code"]

    @property
    def name(self) -> str:
        return self.karte["district"]["name"]


def load_context(store: Store, *, params: AnalysisParams | None = None) -> SheetContext:
    """Read the layers a batch needs and run the citywide gap analysis (counts per district)."""
    params = params or AnalysisParams()
    table = store.read(Layer.KARTES)
    kartes = {code: json.loads(raw) for code, raw in zip(table["district_code"], table["karte_json"],
                                                          strict=True)}
    districts = store.read(Layer.DISTRICTS)
    services = store.read(Layer.SERVICES)
    shelters = store.read(Layer.SHELTERS)
    register = store.read(Layer.REGISTER)
    cooperators = store.read(Layer.COOPERATORS)
    person_gaps, district_gaps, load = evacuation_gaps(
        register, cooperators, shelters, store.read(Layer.EMERGENCY_SITES), districts, params=params)
    return SheetContext(
        districts=districts, small_areas=store.read(Layer.SMALL_AREAS), services=services,
        shelters=shelters, register=register, cooperators=cooperators, kartes=kartes, params=params,
        person_gaps=person_gaps, district_gaps=district_gaps, load=load,
        salons=counting_salons(services, params),
    )


def shareable_register(ctx: SheetContext, code: str, access: Access) -> pd.DataFrame:
    """The register rows of ``code`` a sheet may list for ``access``: the user's own rows
    (:meth:`Access.filter_register`), then only shareable consent, city staff included."""
    rows = access.filter_register(ctx.register[ctx.register["district_code"] == code])
    return rows[rows["consent"].map(lambda c: Consent(c).shareable)]


def district_roster(ctx: SheetContext, code: str) -> pd.DataFrame:
    return ctx.cooperators[ctx.cooperators["district_code"] == code]


def district_sheet(
    ctx: SheetContext,
    code: str,
    *,
    options: SheetOptions,
    coverage: Coverage,
    city_coverage: dict,
    access: Access = PUBLIC,
) -> DistrictSheet:
    """Cut one district's sheet out of the context."""
    karte = ctx.kartes[code]
    shown = PUBLIC if not options.edition.personal else access
    salon_numbers = _salon_numbers(karte)
    shelter_labels = _shelter_labels(karte)
    sheet = DistrictSheet(
        karte=karte, options=options,
        map=_map_data(ctx, code, coverage, salon_numbers, shelter_labels),
        salon_numbers=salon_numbers, shelter_labels=shelter_labels,
        gap_rows=_gap_rows(ctx, code, shown),
        coverage_rows=_coverage_rows(ctx, code, coverage, city_coverage, shown),
        role_rows=[(r["label"], suppress(r["count"], access=shown))
                   for r in karte["cooperators"]["by_role"]],
    )
    if options.edition.personal:
        sheet.roster = _roster(ctx, code)
        sheet.register = _register_rows(ctx, code, access, shelter_labels)
    return sheet


# --- private steps ------------------------------------------------------------------------------

def _salon_numbers(karte: dict) -> dict[str, int]:
    """Salons of the district numbered 1.. in the order of the services list."""
    salons = [s["service_id"] for s in karte["services"] if s["kind"] == "salon"]
    return {sid: i for i, sid in enumerate(salons, start=1)}


def _shelter_labels(karte: dict) -> dict[str, str]:
    """Shelters of the district labelled A, B, … (welfare shelters first, as listed)."""
    labels = {}
    for i, s in enumerate(karte["shelters"]):
        labels[s["shelter_id"]] = _letters(i)
    return labels


def _letters(i: int) -> str:
    text = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        text = chr(ord("A") + r) + text
    return text


def _map_data(ctx: SheetContext, code: str, coverage: Coverage, salon_numbers: dict[str, int],
              shelter_labels: dict[str, str]) -> MapData:
    districts = ctx.districts
    own = districts[districts["district_code"] == code]
    geom = _outline(shapely.union_all(own.geometry.values))
    small = ctx.small_areas[ctx.small_areas["district_code"] == code]
    whole = _padded(geom.bounds)
    focus = _focus(small, karte_points(ctx, code), whole)
    extent = focus or whole
    box = shapely.box(*extent)
    near = districts[districts.geometry.intersects(box) & (districts["district_code"] != code)]
    radius = catchment_radius(ctx.params)
    minx, miny, maxx, maxy = extent
    reach = shapely.box(minx - radius, miny - radius, maxx + radius, maxy + radius)
    salons = ctx.salons[ctx.salons.geometry.intersects(reach)]
    catchments = (shapely.union_all(salons.geometry.buffer(radius, quad_segs=12).values)
                  if len(salons) else None)
    counting = set(salons["service_id"])
    all_salons = ctx.services[(ctx.services["kind"] == "salon") & ctx.services.geometry.intersects(box)]
    salon_points = [
        MapPoint(p.geometry.x, p.geometry.y, str(salon_numbers.get(p.service_id, "")),
                 own_district=p.service_id in salon_numbers, special=p.service_id in counting)
        for p in all_salons.itertuples() if p.geometry is not None
    ]
    shelters = ctx.shelters[ctx.shelters.geometry.intersects(box)]
    shelter_points = [
        MapPoint(s.geometry.x, s.geometry.y, shelter_labels.get(s.shelter_id, ""),
                 own_district=s.shelter_id in shelter_labels, special=bool(s.welfare))
        for s in shelters.itertuples()
    ]
    return MapData(
        extent=extent, district=geom, overview=whole if focus else None,
        neighbours=[(g, str(n)) for g, n in zip(near.geometry.values, near["district_name"],
                                                  strict=True)],
        small_areas=[(g, str(n)) for g, n in zip(small.geometry.values, small["name"], strict=True)],
        catchments=catchments, cells=[coverage.area] if coverage.area is not None else [],
        salons=salon_points, shelters=shelter_points,
        walk_m=ctx.params.salon_walk_m, radius_m=radius,
    )


#: A district whose inhabited part (small areas of at least INHABITED_PER_KM2 people per km²,
#: its salons and shelters) covers less than this share of its extent is mapped on that part,
#: with the whole district in an inset (rural districts of mountain and forest).
FOCUS_SHARE = 0.25
INHABITED_PER_KM2 = 100.0


def karte_points(ctx: SheetContext, code: str) -> list[tuple[float, float]]:
    """Places of the district's own salons and shelters (EPSG:6678)."""
    karte = ctx.kartes[code]
    ids = {s["shelter_id"] for s in karte["shelters"]}
    sal = {s["service_id"] for s in karte["services"] if s["kind"] == "salon"}
    pts = [(g.x, g.y) for g in ctx.shelters.loc[ctx.shelters["shelter_id"].isin(ids), "geometry"]
           if g is not None and not g.is_empty]
    pts += [(g.x, g.y) for g in ctx.services.loc[ctx.services["service_id"].isin(sal), "geometry"]
            if g is not None and not g.is_empty]
    return pts


def _padded(bounds, share: float = 0.04, least: float = 500.0):
    minx, miny, maxx, maxy = bounds
    pad = share * max(maxx - minx, maxy - miny, least)
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def _focus(small: gpd.GeoDataFrame, points, whole) -> tuple | None:
    """The inhabited part's extent when it is much smaller than the district's, else None."""
    area_km2 = small.geometry.area / 1e6
    density = pd.to_numeric(small["population"], errors="coerce").fillna(0) / area_km2.where(
        area_km2 > 0)
    inhabited = small[density.fillna(0).to_numpy() >= INHABITED_PER_KM2]
    if inhabited.empty:
        return None
    minx, miny, maxx, maxy = inhabited.total_bounds
    for x, y in points:
        minx, miny, maxx, maxy = min(minx, x), min(miny, y), max(maxx, x), max(maxy, y)
    focus = _padded((minx, miny, maxx, maxy), share=0.08)
    share = ((focus[2] - focus[0]) * (focus[3] - focus[1])
             / ((whole[2] - whole[0]) * (whole[3] - whole[1])))
    return focus if share < FOCUS_SHARE else None


#: Holes smaller than this (m²) are left out of the printed district outline.
_MIN_HOLE_M2 = 50_000.0


def _outline(geom):
    """The district as printed: slivers between its small areas closed and small holes (gaps in
    the census boundaries) filled, or they would print as stray black strokes inside it."""
    geom = geom.buffer(2.0, join_style="mitre").buffer(-2.0, join_style="mitre")
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        holes = [h for h in poly.interiors if shapely.Polygon(h).area >= _MIN_HOLE_M2]
        parts.append(shapely.Polygon(poly.exterior, holes))
    return shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0]


def _coverage_rows(ctx, code, cov: Coverage, city: dict, access: Access):
    def share(part, whole):
        return part / whole if whole else None

    n_salons = int((ctx.salons["district_code"] == code).sum())
    unc_e, unc_o = round(cov.uncovered_elderly), round(cov.uncovered_75_plus)
    return [
        ("月1回以上のサロン（地区内）", f"{n_salons} か所", None, None),
        ("徒歩圏外の高齢者（65歳以上）", suppress(unc_e, access=access),
         _masked(share(cov.uncovered_elderly, cov.elderly), unc_e, access),
         city["uncovered_elderly_share"]),
        ("徒歩圏外の後期高齢者（75歳以上）", suppress(unc_o, access=access),
         _masked(share(cov.uncovered_75_plus, cov.age_75_plus), unc_o, access),
         city["uncovered_75_plus_share"]),
    ]


def _gap_rows(ctx, code, access: Access):
    gaps = ctx.district_gaps
    row = gaps.loc[code] if code in gaps.index else None
    city = gaps.loc["city"]
    persons = int(row["persons"]) if row is not None else 0
    out = [("要支援者（名簿登録）", suppress(persons, access=access), None, None)]
    for kind, label in GAP_LABELS:
        if kind not in gaps.columns:
            continue
        count = int(row[kind]) if row is not None else 0
        rate = row[f"rate_{kind}"] if row is not None else None
        out.append((label.format(supporter_m=ctx.params.supporter_max_m),
                    suppress(count, access=access), _masked(_num(rate), count, access),
                    _num(city[f"rate_{kind}"])))
    return out


def _masked(rate, count, access):
    """A rate is hidden when its count is suppressed (it would give the count away)."""
    return None if suppress(count, access=access) != count else rate


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _roster(ctx: SheetContext, code: str) -> list[dict]:
    coop = district_roster(ctx, code)
    order = {str(r): i for i, r in enumerate(Role)}
    coop = coop.assign(_o=coop["role"].map(order)).sort_values(["_o", "cooperator_id"])
    return [
        {"cooperator_id": c.cooperator_id, "role_ja": ROLE_JA[Role(c.role)], "name": c.name,
         "phone": _text(c.phone) or "",
         "help_ja": "・".join(HELP_JA[HelpKind(h)] for h in split_list(c.help_kinds)),
         "capacity": _int(c.capacity),
         "load": int(ctx.load["load"].get(c.cooperator_id, 0)) if len(ctx.load) else 0}
        for c in coop.itertuples()
    ]


def _register_rows(ctx: SheetContext, code: str, access: Access,
                   shelter_labels: dict[str, str]) -> list[dict]:
    reg = shareable_register(ctx, code, access).sort_values(["kana", "person_id"])
    care = ctx.person_gaps["needs_care"]
    rows = []
    for r in reg.itertuples():
        supporters = []
        for sid in split_list(r.supporter_ids):
            if sid in ctx.cooperator_index:
                name, phone, role = ctx.cooperator_index[sid]
                supporters.append({"id": sid, "name": name, "phone": phone, "role_ja": role})
        shelter_id = _text(r.shelter_id)
        shelter = None
        if shelter_id and shelter_id in ctx.shelter_index:
            name, welfare, address = ctx.shelter_index[shelter_id]
            shelter = {"id": shelter_id, "name": name, "welfare": welfare, "address": address,
                       "label": shelter_labels.get(shelter_id, "")}
        rows.append({
            "person_id": r.person_id, "name": r.name, "kana": r.kana,
            "address": _short_address(r.address), "needs": _needs(r),
            "consent_ja": "同意" if r.consent == Consent.CONSENTED else "条例",
            "plan_ja": PLAN_STATUS_JA[PlanStatus(r.plan_status)],
            "supporters": supporters, "shelter": shelter,
            "needs_care": bool(care.get(r.Index, False)),
        })
    return rows


def _needs(r) -> str:
    parts = [_text(r.care_level), " ".join(x for x in (_text(r.disability_kind),
                                                       _text(r.disability_grade)) if x),
             _text(r.medical_devices),
             MOBILITY_JA.get(r.mobility) if r.mobility != "independent" else None]
    if _flag(r.intractable_disease):
        parts.append("難病")
    if _flag(r.infant):
        parts.append("乳幼児")
    return "・".join(p for p in parts if p)


def _short_address(address: str) -> str:
    return address[len(_CITY_PREFIX):] if address.startswith(_CITY_PREFIX) else address


def _flag(v) -> bool:
    return bool(v) and not (isinstance(v, float) and math.isnan(v))


def _int(v):
    return None if v is None or pd.isna(v) else int(v)


def _text(v):
    return None if v is None or (isinstance(v, float) and pd.isna(v)) or v == "" else str(v)
