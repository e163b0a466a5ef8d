"""The map of a district's 見守り・セーフティネット page: drawn once without personal data, with the
viewer's households of concern added in the browser.

As on the district page (:func:`karte.render.district_map.personal_overlay`): :func:`care_map` is the
district outline, its salons and shelters, drawn once per build and kept in the snapshot's memo;
:func:`care_overlay` turns the households a viewer may see (dicts with ``x``/``y`` in EPSG:6678)
into plain data that ``static/care.js`` adds to the map and its layer control. Text travels as
plain strings the script inserts with ``textContent``, never as HTML.
"""

from __future__ import annotations

import html

import folium
import geopandas as gpd
from pyproj import Transformer

from gis import crs
from karte.render.district_map import DECIMALS, TOLERANCE_M, outline
from karte.render.webmap import Basemap, legend_html, offline_map, point_layer, tip_geojson, web_geojson

#: Layer names in the layer control.
LAYER_NAMES = {"district": "地区の境界", "salons": "サロン", "shelters": "指定避難所",
               "households": "気になる世帯"}

#: Colour of a household by what needs doing first: overdue review, then urgency.
HOUSEHOLD_STYLES = {
    "overdue": ("#6a1b9a", "確認日を過ぎている"),
    "high": ("#d32f2f", "緊急度 高"),
    "medium": ("#f57c00", "緊急度 中"),
    "low": ("#fbc02d", "緊急度 低"),
    "none": ("#757575", "緊急度 未設定"),
}

_TO_WGS84 = Transformer.from_crs(crs.METRIC, crs.WGS84, always_xy=True)


def care_map(*, district: gpd.GeoDataFrame, salons: gpd.GeoDataFrame, shelters: gpd.GeoDataFrame,
             asset_base: str, basemap: str | Basemap = "gsi_pale") -> folium.Map:
    """The district's base map for the care page (no personal data): outline, salons, shelters,
    a layer control the overlay joins (``m.karte_control``) and a legend it extends."""
    to_geojson = web_geojson(tolerance_m=TOLERANCE_M, decimals=DECIMALS)
    bounds = district.to_crs(4326).total_bounds if len(district) else (140.6, 40.7, 140.9, 40.9)
    m = offline_map(bounds, asset_base=asset_base, basemap=basemap, prefer_canvas=False)
    name = str(district["district_name"].iloc[0]) if len(district) else ""
    folium.GeoJson(tip_geojson(to_geojson, outline(district), tip=lambda r: _escape(name)),
                   name=LAYER_NAMES["district"],
                   style_function=lambda f: {"color": "#263238", "weight": 3, "fill": False}).add_to(m)
    point_layer(m, to_geojson, salons, LAYER_NAMES["salons"],
                styles={"s": {"color": "#1b5e20", "fillColor": "#ffffff", "radius": 5, "weight": 2}},
                tip=lambda r: f"サロン: {_escape(r.get('name'))}")
    point_layer(m, to_geojson, shelters, LAYER_NAMES["shelters"], show=False,
                styles={"s": {"color": "#0d47a1", "fillColor": "#1e88e5", "radius": 5, "weight": 1}},
                tip=lambda r: f"避難所: {_escape(r.get('name'))}")
    control = folium.LayerControl(collapsed=True)
    control.add_to(m)
    m.karte_control = control.get_name()
    items = [("#ffffff", "サロン（緑の輪）"), ("#1e88e5", "指定避難所")]
    m.get_root().html.add_child(folium.Element(legend_html("", items)))
    return m


def household_style(case: dict) -> str:
    """The style key of a household on the map (:data:`HOUSEHOLD_STYLES`)."""
    if case.get("overdue"):
        return "overdue"
    urgency = case.get("urgency")
    return urgency if urgency in ("high", "medium", "low") else "none"


def care_overlay(cases: list[dict]) -> dict:
    """The households a viewer may see as plain data for ``care.js``.

    ``cases`` are dicts with ``x``/``y`` (EPSG:6678, None without a location), ``household``,
    ``address``, ``kinds_ja``, ``next_step``, ``responsible``, ``href`` (the case page) and the
    fields :func:`household_style` reads. Households at one point (an address placed at its town's
    point) share one marker, coloured by the most pressing of them, whose popup lists them all.
    Returns ``{"layers": [{"name", "styles", "tips", "geojson"}], "legend": [(colour, label)],
    "unlocated": n}``; each feature's properties are ``k`` (style key), ``popup`` (plain-text
    lines) and ``links`` ([label, href] of each household's page).
    """
    located = [c for c in cases if c.get("x") is not None and c.get("y") is not None]
    lon, lat = _TO_WGS84.transform([c["x"] for c in located], [c["y"] for c in located])
    groups: dict[tuple, list[dict]] = {}
    for case, x, y in zip(located, lon, lat, strict=True):
        groups.setdefault((round(x, DECIMALS), round(y, DECIMALS)), []).append(case)
    order = list(HOUSEHOLD_STYLES)
    features = []
    for (x, y), members in groups.items():
        lines = [f"この地点の気になる世帯 {len(members)}"] if len(members) > 1 else []
        for case in members:
            lines += [str(case.get("household") or ""), str(case.get("address") or ""),
                      f"気になること: {case.get('kinds_ja') or '—'}",
                      f"次の一歩: {case.get('next_step') or '—'}",
                      f"担当: {case.get('responsible') or '未定'}"]
        key = min((household_style(c) for c in members), key=order.index)
        features.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                         "properties": {"k": key, "popup": lines,
                                        "links": [[str(c.get("household") or ""), str(c.get("href") or "")]
                                                  for c in members if c.get("href")]}})
    styles = {k: {"color": "#212121", "fillColor": c, "radius": 8, "weight": 2, "fillOpacity": 0.9}
              for k, (c, _) in HOUSEHOLD_STYLES.items()}
    shown = {f["properties"]["k"] for f in features}
    tips = {k: f"気になる世帯: {label}" for k, (_, label) in HOUSEHOLD_STYLES.items()}
    legend = [(c, f"気になる世帯: {label}") for k, (c, label) in HOUSEHOLD_STYLES.items() if k in shown]
    return {"layers": [{"name": LAYER_NAMES["households"], "styles": styles, "tips": tips,
                        "geojson": {"type": "FeatureCollection", "features": features}}],
            "legend": legend, "unlocated": len(cases) - len(located)}


def _escape(value) -> str:
    return "" if value is None else html.escape(str(value))
