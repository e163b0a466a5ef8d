"""The district web map: one district's boundary, salons and their walking catchments, uncovered
cells, shelters, and for authorised users cooperators and support-needers coloured by gap kind.

Pure drawing: every frame passed in is already what the viewer may see (the web pages take them
from :mod:`karte.services`), in EPSG:6678. Each layer is one ``folium.GeoJson`` in the layer
control, drawn as SVG (one ``<path>`` per polygon or point, so a browser test can count them).
Tooltip and popup text is built and HTML-escaped here: folium inserts it as HTML.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import folium
import geopandas as gpd
import pandas as pd
from pyproj import Transformer

from gis import crs
from karte.domain import gaps
from karte.domain.layers import split_list
from karte.domain.schema import (
    FREQUENCY_JA,
    HELP_JA,
    PLAN_STATUS_JA,
    ROLE_JA,
    SERVICE_JA,
    ServiceKind,
    short_address,
)
from karte.render.webmap import (
    Basemap,
    legend_html,
    offline_map,
    point_layer,
    records,
    tip_geojson,
    web_geojson,
)

#: Gap kinds in the order that decides a support-needer's colour (the first gap found), then
#: ``none`` (no gap at all): key, colour and label from :mod:`karte.domain.gaps`.
GAP_STYLE = tuple((k.key, k.colour, k.short_label) for k in (*gaps.by_priority(), gaps.NO_GAP))
GAP_COLOUR = {k: c for k, c, _ in GAP_STYLE}
GAP_LABEL = {k: label for k, _, label in GAP_STYLE}
#: The marker shape of each gap kind and of ``none``, from the registry (:attr:`GapKind.shape
#: <karte.domain.gaps.GapKind.shape>`: one of :data:`karte.render.webmap.SHAPES`, none shared with
#: another point layer of this map; ``tests/test_map_palette.py`` checks both).
GAP_SHAPE = {k.key: k.shape for k in (*gaps.by_priority(), gaps.NO_GAP)}

#: Layer names in the layer control (also what the browser test clicks).
LAYER_NAMES = {
    "district": "地区の境界",
    "catchments": "サロンの徒歩圏",
    "coverage": "徒歩圏外の高齢者がいる区域",
    "salons": "サロン",
    "services": "その他の共助サービス",
    "shelters": "指定避難所（十字: 福祉避難所）",
    "cooperators": "共助協力者",
    "register": "要支援者（空白の種類で形と色分け）",
    "small_areas": "町丁・字",
}

#: The look of each layer of the district map (Leaflet path options, and for points the marker
#: ``shape`` of :data:`karte.render.webmap.SHAPES`): the one place for them; the QGIS styles stored in
#: the GeoPackage take theirs from here too (:mod:`karte.render.qgis_styles`). The point fills are
#: told apart with protanopia, deuteranopia, tritanopia and in greyscale (``tests/test_map_palette.py``
#: measures it), and every point layer has its own shape besides.
STYLES = {
    "district": {"color": "#263238", "weight": 3, "fill": False},
    "catchments": {"color": "#2e7d32", "weight": 1, "fillColor": "#66bb6a", "fillOpacity": 0.18},
    "coverage": {"stroke": False, "fillColor": "#ef5350", "fillOpacity": 0.4},
    "salons": {"color": "#1b5e20", "fillColor": "#81c784", "radius": 8, "weight": 2, "shape": "house"},
    "services": {"color": "#00332c", "fillColor": "#00695c", "radius": 6, "weight": 1, "shape": "pentagon"},
    "welfare": {"color": "#ffffff", "fillColor": "#4a148c", "radius": 9, "weight": 1.5, "shape": "cross"},
    "shelters": {"color": "#0d47a1", "fillColor": "#1e88e5", "radius": 7, "weight": 1.5, "shape": "square"},
    "cooperators": {"color": "#5d4037", "fillColor": "#fff176", "radius": 7, "weight": 1.5, "shape": "star"},
    "register": {"color": "#212121", "radius": 6, "weight": 1},
}
#: The small areas' outlines (drawn only when the page passes them; the GeoPackage's small-area
#: layer has its own style in :mod:`karte.render.qgis_styles`).
SMALL_AREA_STYLE = {"color": "#546e7a", "weight": 1, "dashArray": "4 3", "fill": False}


def register_styles(**extra) -> dict[str, dict]:
    """The marker style of a support-needer by their first gap kind (fill and shape from
    :mod:`karte.domain.gaps`, through :data:`GAP_COLOUR` and :data:`GAP_SHAPE`)."""
    return {k: {**STYLES["register"], "fillColor": c, "shape": GAP_SHAPE[k], **extra}
            for k, c, _ in GAP_STYLE}


def _legend(key: str, label: str) -> tuple[dict, str]:
    return {**STYLES[key], "fillOpacity": 1}, label


#: Metres of simplification and decimals of the coordinates sent to the browser.
TOLERANCE_M = 5.0
DECIMALS = 5


#: Holes smaller than this (m²) are left out of the drawn district outline.
MIN_HOLE_M2 = 50_000.0


def outline(district: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The district as drawn: slivers between its small areas closed and small holes (gaps in
    the census boundaries) filled, or they show as stray strokes inside it (as on the sheets)."""
    import shapely

    def clean(geom):
        if geom is None or geom.is_empty:
            return geom
        geom = geom.buffer(2.0, join_style="mitre").buffer(-2.0, join_style="mitre")
        parts = [shapely.Polygon(p.exterior, [h for h in p.interiors
                                              if shapely.Polygon(h).area >= MIN_HOLE_M2])
                 for p in getattr(geom, "geoms", [geom]) if p.geom_type == "Polygon"]
        return shapely.MultiPolygon(parts) if len(parts) != 1 else parts[0]

    return district.set_geometry([clean(g) for g in district.geometry], crs=district.crs)


def primary_gap(row) -> str:
    """The gap kind that colours a support-needer: the first of :data:`GAP_STYLE` they have."""
    return gaps.primary_gap(row).key


def gap_summary(row) -> tuple[str, list[str]]:
    """A support-needer's gaps as the map and the page's table show them: the kind that colours
    them (the first they have in the registry's order, as :func:`primary_gap`; ``none`` for no
    gap) and the labels of every kind they have, in that order."""
    found = [(kind, label) for kind, label in _KINDS if gaps.is_set(row.get(kind))]
    return (found[0][0] if found else gaps.NO_GAP.key), [label for _, label in found]


#: (key, label) of every gap kind, in :data:`GAP_STYLE`'s order, without ``none``.
_KINDS = tuple((kind, label) for kind, _, label in GAP_STYLE[:-1])


def district_map(
    *,
    district: gpd.GeoDataFrame,
    catchments: gpd.GeoDataFrame,
    coverage: gpd.GeoDataFrame,
    services: gpd.GeoDataFrame,
    shelters: gpd.GeoDataFrame,
    cooperators: gpd.GeoDataFrame | None = None,
    register: gpd.GeoDataFrame | None = None,
    small_areas: gpd.GeoDataFrame | None = None,
    asset_base: str,
    basemap: str | Basemap = "gsi_pale",
    to_geojson: Callable[..., dict] | None = None,
) -> folium.Map:
    """The folium map of one district.

    Parameters
    ----------
    district
        The district's polygon (``district_name``).
    catchments
        Walking catchments of counting salons (``name``, ``radius_m``) near the district.
    coverage
        The district's uncovered area (``uncovered_elderly`` as the viewer may see it).
    services
        Services with a location (``kind``, ``name``, ``venue``, ``schedule``/``frequency``).
    shelters
        Shelters (``name``, ``welfare``).
    cooperators, register
        Personal layers, only for viewers who may see them (None: the layer is left out). The
        register carries the gap flags of :mod:`gis.gaps` (``no_supporter``…).
    small_areas
        The district's small areas (町丁・字: ``name``), drawn as thin outlines with their names
        (labels that give way to each other: ``static/karte-a11y.js``); None leaves them out.
    to_geojson
        ``frame -> GeoJSON dict`` in EPSG:4326 (default :func:`karte.render.webmap.to_web_geojson` with
        :data:`TOLERANCE_M` and :data:`DECIMALS`).
    """
    to_geojson = to_geojson or web_geojson(tolerance_m=TOLERANCE_M, decimals=DECIMALS)

    bounds = district.to_crs(4326).total_bounds
    m = offline_map(bounds, asset_base=asset_base, basemap=basemap, prefer_canvas=False)

    name = str(district["district_name"].iloc[0]) if len(district) else ""
    _polygons(m, to_geojson, outline(district), LAYER_NAMES["district"],
              style=STYLES["district"],
              tip=lambda r: f"<b>{_e(name)}</b>")
    if small_areas is not None and len(small_areas):
        _small_areas(m, to_geojson, small_areas)
    _polygons(m, to_geojson, catchments, LAYER_NAMES["catchments"],
              style=STYLES["catchments"],
              tip=lambda r: f"{_e(r.get('name'))} の徒歩圏（半径{_num(r.get('radius_m'))}m）")
    _polygons(m, to_geojson, coverage, LAYER_NAMES["coverage"],
              style=STYLES["coverage"],
              tip=lambda r: f"サロンの徒歩圏外の高齢者: {_e(_count(r.get('uncovered_elderly')))}（推計）")

    salons = services[services["kind"] == "salon"] if len(services) else services
    others = services[services["kind"] != "salon"] if len(services) else services
    point_layer(m, to_geojson, salons, LAYER_NAMES["salons"],
            styles={"s": STYLES["salons"]},
            tip=lambda r: f"<b>{_e(r.get('name'))}</b><br>{_e(r.get('venue'))} {_e(_schedule(r))}",
            popup=_service_popup)
    point_layer(m, to_geojson, others, LAYER_NAMES["services"], show=False,
            styles={"s": STYLES["services"]},
            tip=lambda r: f"{_e(_kind(r))}: {_e(r.get('name'))}", popup=_service_popup)
    point_layer(m, to_geojson, shelters, LAYER_NAMES["shelters"],
            styles={"w": STYLES["welfare"], "s": STYLES["shelters"]},
            style_of=lambda r: "w" if _flag(r.get("welfare")) else "s",
            tip=lambda r: _e(r.get("name")) + ("（福祉避難所）" if _flag(r.get("welfare")) else ""),
            popup=lambda r: (f"<b>{_e(r.get('name'))}</b>"
                             + ("<br>福祉避難所" if _flag(r.get("welfare")) else "")
                             + f"<br>{_e(r.get('address'))}"))
    if cooperators is not None:
        point_layer(m, to_geojson, cooperators, LAYER_NAMES["cooperators"],
                styles={"s": STYLES["cooperators"]},
                tip=lambda r: f"共助協力者: {_e(_role(r))}", popup=_cooperator_popup)
    if register is not None:
        point_layer(m, to_geojson, register, LAYER_NAMES["register"],
                styles=register_styles(),
                style_of=primary_gap,
                tip=lambda r: f"要支援者: {_e(GAP_LABEL[primary_gap(r)])}", popup=_person_popup)
    control = folium.LayerControl(collapsed=False)
    control.add_to(m)
    m.karte_control = control.get_name()  # the personal overlay adds its layers to it

    items = [(STYLES["catchments"]["fillColor"], "サロンの徒歩圏"),
             (STYLES["coverage"]["fillColor"], "徒歩圏外の高齢者がいる区域"),
             _legend("salons", "サロン（家の形）"), _legend("shelters", "指定避難所（四角）"),
             _legend("welfare", "福祉避難所（十字）")]
    if cooperators is not None:
        items.append(_legend("cooperators", "共助協力者（星）"))
    if register is not None:
        shown = {primary_gap(r) for r in records(register)}
        styles = register_styles(fillOpacity=1)
        items += [(styles[k], f"要支援者: {label}") for k, _, label in GAP_STYLE if k in shown]
    m.get_root().html.add_child(folium.Element(legend_html("", items)))
    return m


# --- the viewer's personal layers, added in the browser to a map drawn once per build ---------------

def personal_overlay(*, register: list[dict] | None, cooperators: list[dict] | None,
                     summaries: list[tuple[str, list[str]]] | None = None) -> dict:
    """The personal layers of one viewer as plain data for ``static/karte-personal.js``, which adds
    them to the district map (the map itself holds no personal data and is drawn once per build).

    ``register`` and ``cooperators`` are the rows the viewer may see, as dicts with ``x`` and ``y``
    (EPSG:6678 metres, None without a location), the register rows with their gap flags
    (``summaries``: their :func:`gap_summary`, when the caller has them); None leaves the layer
    out. Each layer: ``name`` (in the layer control), ``styles`` (marker styles
    by key, with their ``shape``), ``tips`` (the tooltip of a point by its style key), ``geojson`` (points,
    EPSG:4326, whose properties are only ``k``, the style key, and ``popup``, a list of plain-text
    lines the browser inserts as text, never as HTML); ``legend``: (marker style, label) pairs
    for the map's legend (drawn with the marker's shape).
    """
    layers, legend = [], []
    if cooperators is not None:
        styles = {"s": {**STYLES["cooperators"], "fillOpacity": 0.9}}
        layers.append(_overlay_layer(cooperators, LAYER_NAMES["cooperators"], styles,
                                     keys=["s"] * len(cooperators), tips={"s": "共助協力者"},
                                     popup=lambda i: _cooperator_lines(cooperators[i])))
        legend.append(_legend("cooperators", "共助協力者（星）"))
    if register is not None:
        styles = register_styles(fillOpacity=0.9)
        if summaries is None:  # once per person: colour and popup agree
            summaries = [gap_summary(r) for r in register]
        layer = _overlay_layer(register, LAYER_NAMES["register"], styles, keys=[k for k, _ in summaries],
                               tips={k: f"要支援者: {label}" for k, _, label in GAP_STYLE},
                               popup=lambda i: _person_lines(register[i], summaries[i][1]))
        layers.append(layer)
        shown = {f["properties"]["k"] for f in layer["geojson"]["features"]}
        legend += [({**styles[k], "fillOpacity": 1}, f"要支援者: {label}")
                   for k, _, label in GAP_STYLE if k in shown]
    return {"layers": layers, "legend": legend}


#: EPSG:6678 metres -> EPSG:4326 longitude, latitude (one transformer: building one costs ~1 ms).
_TO_WGS84 = Transformer.from_crs(crs.METRIC, crs.WGS84, always_xy=True)


def _overlay_layer(rows: list[dict], name: str, styles: dict, *, keys: list[str], tips: dict, popup) -> dict:
    """One layer of :func:`personal_overlay`: the located rows as GeoJSON points, ``keys[i]`` the
    style of ``rows[i]``, ``popup(i)`` its lines."""
    located = [i for i, r in enumerate(rows) if not _missing(r.get("x")) and not _missing(r.get("y"))]
    lon, lat = _TO_WGS84.transform([rows[i]["x"] for i in located], [rows[i]["y"] for i in located])
    features = [
        {"type": "Feature",
         "geometry": {"type": "Point", "coordinates": [round(x, DECIMALS), round(y, DECIMALS)]},
         "properties": {"k": keys[i], "popup": popup(i)}}
        for i, x, y in zip(located, lon, lat, strict=True)
    ]
    return {"name": name, "styles": styles, "tips": tips,
            "geojson": {"type": "FeatureCollection", "features": features}}


def _cooperator_lines(r) -> list[str]:
    helps = "・".join(HELP_JA.get(h, h) for h in split_list(r.get("help_kinds")))  # StrEnum keys: by value
    lines = [_text(r.get("name")), _role(r)]
    if not _missing(r.get("phone")):
        lines.append(f"電話: {r.get('phone')}")
    if helps:
        lines.append(f"できること: {helps}")
    if not _missing(r.get("capacity")):
        assigned = r.get("assigned")
        load = "" if _missing(assigned) else f"{int(assigned)} / "
        lines.append(f"避難支援の受け持ち: {load}{int(r.get('capacity'))} 人まで")
    return lines


def _person_lines(r, found: list[str]) -> list[str]:
    plan = r.get("plan_status")
    lines = [_text(r.get("name")), short_address(r.get("address"))]
    if plan in PLAN_STATUS_JA:  # StrEnum keys: looked up by value
        lines.append(f"個別避難計画: {PLAN_STATUS_JA[plan]}")
    lines.append("空白: " + ("、".join(found) if found else "なし"))
    return lines


def _text(v) -> str:
    return "" if _missing(v) else str(v)


# --- layers ---------------------------------------------------------------------------------------

def _polygons(m, to_geojson, frame, name, *, style: dict, tip) -> None:
    group = folium.GeoJson(
        tip_geojson(to_geojson, frame, tip=tip),
        name=name,
        style_function=lambda f, s=style: s,
        tooltip=folium.GeoJsonTooltip(["tip"], labels=False) if len(frame) else None,
    )
    group.add_to(m)


#: The look of a small area's name: 14 px on a white halo (readable on any fill, WCAG 1.4.3).
LABEL_CSS = ("font:14px sans-serif;color:#263238;white-space:nowrap;transform:translate(-50%,-50%);"
             "text-shadow:0 0 3px #fff,0 0 3px #fff,0 0 2px #fff")


def _small_areas(m, to_geojson, small_areas: gpd.GeoDataFrame) -> None:
    """The small areas' outlines and their names in one layer of the layer control (the names are
    not in the Tab order, and are not buttons: the table beside the map lists the same places)."""
    group = folium.FeatureGroup(name=LAYER_NAMES["small_areas"], show=True)
    folium.GeoJson(tip_geojson(to_geojson, small_areas, tip=lambda r: _e(r.get("name"))),
                   style_function=lambda f: SMALL_AREA_STYLE, interactive=False).add_to(group)
    points = small_areas.geometry.representative_point().to_crs(4326)
    for name, p in zip(small_areas["name"], points, strict=True):
        if _missing(name) or p is None or p.is_empty:
            continue
        folium.Marker([p.y, p.x], interactive=False, keyboard=False,
                      icon=folium.DivIcon(class_name="karte-label karte-small-area", icon_size=(1, 1),
                                          html=f'<div style="{LABEL_CSS}">{_e(name)}</div>')).add_to(group)
    group.add_to(m)


# --- text -----------------------------------------------------------------------------------------

def _service_popup(r) -> str:
    lines = [f"<b>{_e(r.get('name'))}</b>", f"{_e(_kind(r))}"]
    for label, col in (("会場", "venue"), ("運営", "operator"), ("対象", "target"), ("連絡先", "contact")):
        if not _missing(r.get(col)):
            lines.append(f"{label}: {_e(r.get(col))}")
    sched = _schedule(r)
    if sched:
        lines.append(f"日程: {_e(sched)}")
    return "<br>".join(lines)


def _cooperator_popup(r) -> str:
    return _popup_html(_cooperator_lines(r))


def _person_popup(r) -> str:
    return _popup_html(_person_lines(r, gap_summary(r)[1]))


def _popup_html(lines: list[str]) -> str:
    """The plain-text lines of a personal popup (what ``karte-personal.js`` inserts as text) as
    folium's HTML popup of the map drawn on the server: each line escaped, the first in bold."""
    name, *rest = lines
    return "<br>".join([f"<b>{html.escape(name)}</b>", *map(html.escape, rest)])


def _kind(r) -> str:
    k = r.get("kind")
    return SERVICE_JA[ServiceKind(k)] if k in ServiceKind._value2member_map_ else str(k or "")


def _role(r) -> str:
    k = r.get("role")
    return ROLE_JA[k] if k in ROLE_JA else str(k or "")  # StrEnum keys: looked up by value


def _schedule(r) -> str:
    parts = [FREQUENCY_JA.get(r.get("frequency"), "") if not _missing(r.get("frequency")) else "",
             "" if _missing(r.get("schedule")) else str(r.get("schedule"))]
    return " ".join(p for p in parts if p and p not in ("None",))


def _count(v) -> str:
    if _missing(v):
        return "—"
    return v if isinstance(v, str) else f"{int(v):,}人"


def _num(v) -> str:
    return "—" if _missing(v) else f"{float(v):.0f}"


def _e(v) -> str:
    return "" if _missing(v) else html.escape(str(v))


def _missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if v is True or v is False:  # the common cases first: pd.isna on every value costs more
        return False
    if isinstance(v, float):
        return v != v
    if isinstance(v, str | int | Sequence):
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _flag(v) -> bool:
    if v is True or v is False:  # the analysis' flags: the rest is for imported text
        return v
    return not _missing(v) and bool(v) and v not in ("false", "False", "0")
