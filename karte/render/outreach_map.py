"""The outreach web maps: small areas coloured by outreach priority, the first ranks numbered, and
supporter suggestions drawn as lines from the person to the suggested cooperator
(:func:`outreach_map`); one place with the people there and its open households of concern
(:func:`place_map`).

Pure drawing over what :mod:`karte.services.outreach` gives a coordinator (EPSG:6678 frames).
"""

from __future__ import annotations

import html

import folium
import geopandas as gpd
import pandas as pd
import shapely

from karte.render.overview import classify
from karte.render.webmap import Basemap, legend_html, offline_map, web_geojson

#: Colours of the score's quantile classes: the score is scaled by the city's worst place, so
#: equal-width classes would leave nearly every area in the first one. ColorBrewer Reds 9, classes
#: 1, 4, 6, 8 and 9: neighbouring classes at least 10 CIEDE2000 apart with each colour-vision
#: deficiency and in greyscale, as the city map's ramps (``tests/test_map_palette.py``; Reds 5 came
#: to 9.7 in greyscale).
REDS = ("#fff5f0", "#fc9272", "#ef3b2c", "#a50f15", "#67000d")
#: How many of the first ranks get a number on the map.
NUMBERED = 20
LAYER_NAMES = {"ranking": "優先度（町丁・字）", "numbers": "上位の順位",
               "suggestions": "避難支援者の候補（線）"}
TOLERANCE_M = 20.0
DECIMALS = 4


def outreach_map(ranking: gpd.GeoDataFrame, suggestions: pd.DataFrame | None = None, *,
                 asset_base: str, basemap: str | Basemap = "gsi_pale", numbered: int = NUMBERED,
                 to_geojson=None) -> folium.Map:
    """The map of :func:`karte.outreach.outreach_ranking` (areas with a score above 0) and of
    :func:`karte.outreach.suggestions` (``person_geometry`` → ``cooperator_geometry``). A ranking
    with ``open_concerns`` (and ``last_visit``) adds them to each area's tooltip (counts only)."""
    to_geojson = to_geojson or web_geojson(tolerance_m=TOLERANCE_M, decimals=DECIMALS)

    ranked = ranking[pd.to_numeric(ranking["score"]) > 0]
    m = offline_map(ranking.to_crs(4326).total_bounds if len(ranking) else (140.6, 40.7, 140.9, 40.9),
                    asset_base=asset_base, basemap=basemap, prefer_canvas=False)
    classes, breaks = classify(ranked["score"], k=len(REDS))
    slim = gpd.GeoDataFrame({
        "fill": [REDS[c] for c in classes],
        "tip": [_tip(r) for r in ranked.itertuples()],
    }, geometry=ranked.geometry.values, crs=ranked.crs)
    data = to_geojson(slim)
    for i, f in enumerate(data["features"]):
        f["id"] = i
    folium.GeoJson(
        data, name=LAYER_NAMES["ranking"],
        style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#555",
                                  "weight": 0.6, "fillOpacity": 0.7},
        highlight_function=lambda f: {"weight": 2.5},
        tooltip=folium.GeoJsonTooltip(["tip"], labels=False) if len(slim) else None,
    ).add_to(m)

    numbers = folium.FeatureGroup(name=LAYER_NAMES["numbers"], show=True)
    top = ranked[ranked["rank"] <= numbered].to_crs(4326)
    for r in top.itertuples():
        p = r.geometry.representative_point()
        folium.Marker([round(p.y, DECIMALS), round(p.x, DECIMALS)], icon=folium.DivIcon(
            class_name="karte-rank", icon_size=(22, 22), icon_anchor=(11, 11),
            html=f'<div class="karte-rank-badge">{int(r.rank)}</div>')).add_to(numbers)
    numbers.add_to(m)

    if suggestions is not None and len(suggestions):
        lines = [shapely.LineString([p, c]) if p is not None and c is not None else None
                 for p, c in zip(suggestions["person_geometry"], suggestions["cooperator_geometry"],
                                 strict=True)]
        frame = gpd.GeoDataFrame({
            "tip": [f"{html.escape(str(s.person_id))} → {html.escape(str(s.cooperator_name))}"
                    f"（{html.escape(str(s.cooperator_role))}、徒歩約{int(s.distance_m)}m）"
                    for s in suggestions.itertuples()]},
            geometry=lines, crs=ranking.crs)
        frame = frame[frame.geometry.notna()]
        data = to_geojson(frame)
        for i, f in enumerate(data["features"]):
            f["id"] = i
        folium.GeoJson(data, name=LAYER_NAMES["suggestions"], show=False,
                       style_function=lambda f: {"color": "#1565c0", "weight": 3, "opacity": 0.8},
                       tooltip=folium.GeoJsonTooltip(["tip"], labels=False)).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    items = [(REDS[i], f"{breaks[i]:.1f}〜{breaks[i + 1]:.1f} 点") for i in range(len(REDS))]
    m.get_root().html.add_child(folium.Element(legend_html("アウトリーチ優先度（100点満点）", items)))
    m.get_root().header.add_child(folium.Element(
        "<style>.karte-rank-badge{width:22px;height:22px;border-radius:11px;background:#fff;"
        "border:2px solid #a50f15;font:bold 12px/18px sans-serif;text-align:center;color:#a50f15}"
        "</style>"))
    return m


def _tip(r) -> str:
    elderly = f"高齢者 {int(r.elderly):,}人<br>" if getattr(r, "elderly", None) is not None else ""
    return (f"<b>{int(r.rank)}位 {html.escape(str(r.name))}</b>"
            f"（{html.escape(str(getattr(r, 'district_name', '') or ''))}）<br>"
            f"点数 {float(r.score):.1f}<br>{elderly}一人暮らし高齢者 {int(r.elderly_alone)}人<br>"
            f"サロン徒歩圏外の高齢者 {int(r.uncovered_elderly)}人（推計）<br>"
            f"支援者のいない要支援者 {int(r.unsupported)}人"
            + (f"<br>気になる世帯（対応中） {int(r.open_concerns)}"
               + (f"・最終訪問 {html.escape(str(r.last_visit))}" if getattr(r, "last_visit", None) else "")
               if getattr(r, "open_concerns", 0) else ""))


#: The place map's layers: the area, support-needers (coloured by their first gap) and households.
PLACE_LAYERS = {"area": "この町丁・字", "people": "要支援者（色: 主な空白）",
                "concerns": "気になる世帯（対応中）"}


def place_map(area: gpd.GeoDataFrame, people: gpd.GeoDataFrame, concerns: gpd.GeoDataFrame, *,
              asset_base: str, basemap: str | Basemap = "gsi_pale", to_geojson=None) -> folium.Map:
    """One small area (``area``: its polygon) with the support-needers there (``people``: points
    with ``tip`` and ``colour``) and its open households of concern (``concerns``: points with
    ``tip``); all EPSG:6678, already limited to what the viewer may see."""
    to_geojson = to_geojson or web_geojson(tolerance_m=2.0, decimals=6)
    m = offline_map(area.to_crs(4326).total_bounds if len(area) else (140.6, 40.7, 140.9, 40.9),
                    asset_base=asset_base, basemap=basemap, prefer_canvas=False)
    folium.GeoJson(to_geojson(area[[area.geometry.name]]), name=PLACE_LAYERS["area"],
                   style_function=lambda f: {"color": "#a50f15", "weight": 2.5, "fillOpacity": 0.05}
                   ).add_to(m)
    for frame, name, style in ((people, PLACE_LAYERS["people"], None),
                               (concerns, PLACE_LAYERS["concerns"], "#6a1b9a")):
        located = frame[frame.geometry.notna() & ~frame.geometry.is_empty] if len(frame) else frame
        if not len(located):
            continue
        slim = gpd.GeoDataFrame({"tip": [html.escape(str(t)) for t in located["tip"]],
                                 "c": located["colour"] if style is None else style},
                                geometry=located.geometry.values, crs=located.crs)
        data = to_geojson(slim)
        folium.GeoJson(data, name=name,
                       marker=folium.CircleMarker(radius=7, fill=True, fill_opacity=0.9, weight=2),
                       style_function=lambda f: {"color": "#fff", "fillColor": f["properties"]["c"]},
                       tooltip=folium.GeoJsonTooltip(["tip"], labels=False)).add_to(m)
    folium.LayerControl(collapsed=True).add_to(m)
    return m
