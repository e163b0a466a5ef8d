"""What the Japanese web pages show (city overview, district), as a viewer may see it (the
outreach page: :func:`karte.services.outreach.outreach_page`).

The maps hold no personal data and are drawn once per build and audience (public or logged in),
kept in the build snapshot's memo; the viewer's personal layers (support-needers with their gaps,
cooperators) are read from the store as the viewer on each request and sent as plain data that
the page adds to the map in the browser (:func:`karte.render.district_map.personal_overlay`).
So an authorised district page costs two small indexed reads, their log rows and a template,
not a folium render.
"""

from __future__ import annotations

import functools

import geopandas as gpd
import pandas as pd

from karte.analysis import season, season_note
from karte.assemble import GAP_COLUMNS, district_gap_columns, gap_column, gap_rate_column
from karte.domain.access import SUPPRESSED, Access, Level
from karte.domain.gaps import AT_RISK
from karte.domain.layers import Layer
from karte.domain.schema import ROLE_JA, SYNTHETIC_JA, short_address
from karte.render.charts import trend_chart
from karte.render.district_map import GAP_LABEL, district_map, gap_summary, personal_overlay
from karte.render.overview import MEASURES, choropleth_map, standin_note
from karte.render.webmap import ASSETS, Basemap, MapParts, map_parts
from karte.services import history as trends
from karte.services import kartes, suppression
from karte.services.district_data import check_district, sources_now
from karte.services.layers import layer_view
from karte.services.personal import cooperator_records, person_records, read_records
from karte.snapshot import Snapshot, current
from karte.store.base import Store

#: measure -> (column of the districts layer, count column that hides it, "1 - value"?). The gap
#: measures map one gap kind each (:data:`karte.render.overview.MEASURES`); ``gap_rate`` is the
#: default kind (no supporter). The any-gap rate (``gap_rate`` column) stays in the table only.
MEASURE_COLUMNS = {
    key: (("uncovered_share", "uncovered_elderly", True) if key == "coverage"
          else ("elderly_rate", "elderly", False) if key == "ageing"
          else (gap_rate_column(spec.gap), gap_column(spec.gap), False))
    for key, spec in MEASURES.items()
}

# --- city -----------------------------------------------------------------------------------------

def city_page(store: Store, access: Access, *, measure: str, max_small: int, basemap: Basemap) -> dict:
    """The city map coloured by ``measure`` (a key of :data:`MEASURE_COLUMNS`) and its table rows:
    aggregates only, the same for every viewer of one audience, drawn once per build."""
    spec = MEASURES[measure]
    audience = suppression.audience(access)
    # one municipality of several (a prefecture's store): links say which
    query = f"?m={store.municipality}" if store.municipality else ""

    def build():
        frame = _with_measure(district_figures(store, access, max_small=max_small), measure)
        services = layer_view(store, "services", access, max_small=max_small)
        shelters = layer_view(store, "shelters", access, max_small=max_small)
        m = choropleth_map(
            frame, value="value", title=spec.label, palette=spec.palette,
            tooltip=[("district_name", "地区"), ("value_text", spec.label), ("population_text", "人口")],
            notes=[spec.note, *standin_note(frame)], link="/districts/{code}" + query,
            salons=services[services["kind"] == "salon"], shelters=shelters,
            asset_base=ASSETS, basemap=basemap, prefer_canvas=False,
        )
        rows = frame.drop(columns=frame.geometry.name).sort_values("district_code").to_dict("records")
        return map_parts(m), rows

    snap = current(store)
    parts, rows = snap.memo(("page:city", audience, measure, max_small, basemap), build)
    municipality = next((k["district"]["municipality"]["code"] for k in snap.kartes.values()), None)
    city_trend = snap.memo(("page:city-trend", access, municipality, max_small), lambda: trends.trend(
        store, None, access, municipality=municipality or access.municipality or "", max_small=max_small))
    first = next(iter(snap.kartes.values()), {})
    return {"map": parts, "rows": rows, "spec": spec, "measure": measure, "query": query,
            "municipality_in_view": store.municipality,
            "municipality_name": ((first.get("district") or {}).get("municipality") or {}).get("name") or "",
            "synthetic": "・".join(SYNTHETIC_JA.get(s, s) for s in first.get("synthetic") or []),
            "standin": any(k["district"].get("standin") for k in snap.kartes.values()),
            "measures": [(k, v.label) for k, v in MEASURES.items()],
            "any_gap": {"label": AT_RISK.label, "note": ANY_GAP_NOTE},
            "sources": sources_now(snap, first),
            "trend": city_trend,
            "fiscal_year_label": trends.fiscal_label(year) if (year := trends.build_year(snap)) else ""}


#: Why the any-gap figure of the city table is high (one line under the table).
ANY_GAP_NOTE = ("「いずれかの空白がある」は、個別避難計画が作成中の人と名簿提供の同意がない人も"
                "空白に数えるため、どの地区でも高くなります。地図は空白の種類を一つ選んで色分けしています。")


def district_figures(store: Store, access: Access, *, max_small: int) -> gpd.GeoDataFrame:
    """The districts layer as ``access`` may see it (:func:`karte.services.layers.layer_view`),
    with each gap kind's count and rate (:data:`karte.assemble.GAP_COLUMNS`) suppressed by the same
    rule as ``at_risk`` and ``gap_rate``: a count by the build's plan (primary and complementary
    cells), a rate with its count or its denominator (``support_needers``).

    The columns are taken from the snapshot's layer when it has them, else computed here from the
    snapshot's ``district_gaps`` (:func:`karte.assemble.district_gap_columns`)."""
    frame = layer_view(store, "districts", access, max_small=max_small)
    missing = [c for c in GAP_COLUMNS if c not in frame.columns]
    if not missing:
        return frame
    snap = current(store)
    exact = snap.layer("districts")[["district_code", "support_needers"]].reset_index(drop=True)
    exact = exact.join(district_gap_columns(snap.district_gaps, exact["district_code"]), on="district_code")
    shown = exact
    if suppression.applies(access):
        shown = suppression.suppress_frame(exact, "districts", max_small, snapshot=snap)
        if access.level == Level.DISTRICT_MEMBER:  # their own district exactly, as layer_view does
            own = (exact["district_code"] == access.district).to_numpy()
            for column in missing:
                shown[column] = shown[column].astype(object).where(~own, exact[column].astype(object))
    by_code = shown.set_index("district_code")
    out = frame.copy()
    for column in missing:
        out[column] = by_code[column].reindex(out["district_code"]).to_numpy()
    return out


def _with_measure(frame: gpd.GeoDataFrame, measure: str) -> gpd.GeoDataFrame:
    column, count, inverse = MEASURE_COLUMNS[measure]
    out = frame.copy()
    values, texts = _rates(out, column, count, inverse=inverse)
    out["value"] = pd.Series(values, index=out.index, dtype=float)
    out["value_text"] = texts
    out["population_text"] = [_people(p) for p in out["population"]]
    out["any_gap_text"] = _rates(out, "gap_rate", "at_risk")[1]
    return out


def _rates(frame: pd.DataFrame, column: str, count: str, *, inverse: bool = False
           ) -> tuple[list[float | None], list[str]]:
    """The values of rate ``column`` and their text: ``SUPPRESSED`` when the rate is hidden with
    its count or its denominator (:data:`karte.services.suppression.RATE_OVER`), "—" when there
    is no figure."""
    over = suppression.RATE_OVER.get(column)
    denominators = frame[over] if over in frame.columns else [None] * len(frame)
    values, texts = [], []
    for rate, n, d in zip(frame[column], frame[count], denominators, strict=True):
        if _missing(rate) or isinstance(rate, str):
            values.append(None)
            texts.append(SUPPRESSED if SUPPRESSED in (n, rate, d) else "—")
            continue
        v = 1.0 - float(rate) if inverse else float(rate)
        values.append(v)
        texts.append(f"{v:.1%}")
    return values, texts


# --- district -------------------------------------------------------------------------------------

def district_page(store: Store, code: str, access: Access, *, max_small: int, basemap: Basemap) -> dict:
    """One district's page: the karte (suppressed for the public), the map (drawn once per build
    and audience), and for viewers who may see the district's rows the support-needers and
    cooperators they may see (read from the store as them, logged there), as tables and as a
    map overlay."""
    snap = current(store)
    # aggregates only, made once per build: the map for every viewer of one audience (suppressed
    # or not), the karte's tables, the trend with its charts and the projection for each viewer
    # (``Access`` is the key: the public is one viewer; the karte names its viewer)
    audience = suppression.audience(access, code)
    karte = snap.memo(("page:karte", code, access, max_small), lambda: kartes.karte_view(
        store, code, access, include_personal=False, max_small=max_small))

    parts = _district_map(store, snap, code, access, max_small=max_small, basemap=basemap)
    personal = access.may_see_district_rows(code)
    people, roster, overlay = [], [], None
    if personal:
        register = person_records(snap, read_records(store, Layer.REGISTER, access, district=code, snap=snap))
        cooperators = cooperator_records(snap, read_records(store, Layer.COOPERATORS, access, district=code,
                                                            snap=snap))
        summaries = [gap_summary(r) for r in register]  # once per person: table, colour and popup agree
        people = _people_rows(register, summaries)
        roster = _roster_rows(cooperators)
        overlay = personal_overlay(register=register, cooperators=cooperators, summaries=summaries)
    place = karte["district"].get("municipality") or {}
    municipality = place.get("code") or access.municipality or ""

    def trend_part() -> tuple[dict, list[dict]]:
        trend = trends.trend(store, code, access, municipality=municipality, max_small=max_small)
        return trend, [{"key": key, "label": label, "svg": trend_chart(trend, key, label)}
                       for key, label in ((k, trends.FIGURE_BY_KEY[k].label) for k in trends.CHART_KEYS)]

    trend, charts = snap.memo(("page:trend", code, access, municipality, max_small), trend_part)
    projection = snap.memo(("page:projection", code, access, max_small),
                           lambda: trends.projection(store, code, access, max_small=max_small))
    # the municipality's name before the district's (S01 is in every municipality of a prefecture)
    return {"karte": karte, "place": place.get("name") or "", "map": parts, "personal": personal,
            "people": people, "roster": roster,
            "overlay": overlay, "trend": trend, "trend_charts": charts, "projection": projection,
            "season": season_note(snap.params, season()),
            # the aggregate sections (all but the viewer's rows and the day's season note) are the
            # same for every viewer of one audience: ``once(render)`` renders them once per build
            "once": functools.partial(snap.memo, ("page:sections", code, audience, municipality, max_small))}


def district_map_script(store: Store, code: str, access: Access, *, max_small: int,
                        basemap: Basemap) -> tuple[MapParts, bool]:
    """The district page's map as ``access`` sees it (its script is served apart from the page,
    so a browser keeps it for the build): the same drawing the page names by id and version, and
    whether it is the public's (suppressed: any cache may keep it)."""
    snap = current(store)
    check_district(snap, code)
    parts = _district_map(store, snap, code, access, max_small=max_small, basemap=basemap)
    return parts, suppression.audience(access, code) == "suppressed"


def _district_map(store: Store, snap: Snapshot, code: str, access: Access, *, max_small: int,
                  basemap: Basemap) -> MapParts:
    """The district map for ``access``'s audience, drawn once per build (aggregates only)."""
    def build() -> MapParts:
        district = layer_view(store, "districts", access, district=code, max_small=max_small)
        catchments = layer_view(store, "catchments", access, max_small=max_small)
        if len(district):
            catchments = catchments[catchments.intersects(district.union_all())]
        return map_parts(district_map(
            district=district, catchments=catchments,
            coverage=layer_view(store, "coverage", access, district=code, max_small=max_small),
            services=layer_view(store, "services", access, district=code, max_small=max_small),
            shelters=layer_view(store, "shelters", access, district=code, max_small=max_small),
            # 町丁・字 outlines and names: something to orient by without basemap tiles
            small_areas=layer_view(store, "small_areas", access, district=code,
                                   max_small=max_small)[["name", "geometry"]],
            asset_base=ASSETS, basemap=basemap))

    audience = suppression.audience(access, code)
    return snap.memo(("page:district", code, audience, max_small, basemap), build)


def _people_rows(register: list[dict], summaries: list[tuple[str, list[str]]]) -> list[dict]:
    out = []
    order = sorted(range(len(register)), key=lambda i: (str(register[i].get("kana") or ""),
                                                        str(register[i]["person_id"])))
    for i in order:
        r, (key, labels) = register[i], summaries[i]
        out.append({"name": r["name"], "address": short_address(r.get("address")), "gap": GAP_LABEL[key],
                    "gap_key": key, "gaps": labels, "gap_text": "、".join(labels) or "なし"})
    return out


def _roster_rows(cooperators: list[dict]) -> list[dict]:
    rows = sorted(cooperators, key=lambda c: (str(c.get("role") or ""), str(c["cooperator_id"])))
    return [{"role": ROLE_JA.get(c["role"], c["role"]),  # StrEnum keys: looked up by value
             "name": c["name"], "phone": c["phone"], "assigned": c.get("assigned"),
             "capacity": c["capacity"]}
            for c in rows]


# --- helpers --------------------------------------------------------------------------------------

def _people(v) -> str:
    if _missing(v):
        return "—"
    return v if isinstance(v, str) else f"{int(v):,}人"


def _missing(v) -> bool:
    if v is None or v is pd.NA:
        return True
    try:
        return isinstance(v, float) and v != v
    except TypeError:
        return False
