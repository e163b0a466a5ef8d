"""The maps of the supporters pages, as plain data for ``supporters-map.js`` (Leaflet in the browser).

Handed prepared, already filtered rows (points in EPSG:6678 as ``*_xy`` pairs or ``x``/``y``);
returns one JSON-ready dict: the basemap, the district outline(s), and point layers with their
labels as plain text (the script inserts them with ``textContent``, never as HTML, so a name from
an imported file cannot inject markup). The map is drawn per request: it shows the viewer's own
personal rows, so nothing of it is cached.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj

from gis import crs
from karte.render.webmap import BACKGROUND, Basemap, to_web_geojson

_TO_WGS84 = pyproj.Transformer.from_crs(crs.METRIC, crs.WGS84, always_xy=True)
#: Unmet-request reasons -> marker colour (the legend lists them in this order).
REASON_COLOURS = {"no_kind": "#8e24aa", "no_time": "#f57c00", "too_far": "#d32f2f", "at_capacity": "#fbc02d",
                  "no_location": "#78909c"}
MET = "#2e7d32"
SUPPORTER = "#1f5fa8"
RECRUIT = "#000000"
DECIMALS = 5
#: Slivers narrower than twice this (metres) are closed in the outline drawn.
CLOSE_M = 15.0


def lat_lon(xy) -> list[float] | None:
    """EPSG:6678 ``(x, y)`` -> ``[lat, lon]`` rounded to :data:`DECIMALS` (≈ 1 m), or None."""
    if xy is None or xy[0] is None or xy[1] is None or np.isnan(xy[0]) or np.isnan(xy[1]):
        return None
    lon, lat = _TO_WGS84.transform(float(xy[0]), float(xy[1]))
    return [round(lat, DECIMALS), round(lon, DECIMALS)]


def map_payload(*, districts: gpd.GeoDataFrame, basemap: Basemap, suggestions: list[dict] = (),
                unmet: list[dict] = (), recruit: list[dict] = (), supporters: list[dict] = (),
                reason_labels: dict[str, str] | None = None, reach_key: str = "reach_m") -> dict:
    """Everything ``supporters-map.js`` draws.

    Parameters
    ----------
    districts
        The outline(s) to frame (EPSG:6678, ``district_code``, ``district_name``).
    suggestions
        Matched pairs: ``request_xy``, ``supporter_xy``, ``requester_name``, ``activity_ja``,
        ``supporter_name``, ``distance_m``.
    unmet
        ``request_xy``, ``reason``, ``reason_ja``, ``requester_name``, ``activity_ja``, ``detail_ja``.
    recruit
        ``x``, ``y``, ``activity_ja``, ``place``, ``gain``, ``reach_m``, ``rank``.
    supporters
        ``x``, ``y``, ``name``, ``activities_ja`` and ``reach_key`` (metres): drawn with their reach.
    """
    labels = reason_labels or {}
    # one district: its outline close (10 m); the whole city: only to find one's way (120 m, ≈ 10 m grid)
    many = len(districts) > 1
    # the dissolved census polygons leave slivers and pinholes that draw as stray strokes: closed
    # (buffer out, then in) before simplifying, as the district page's outline is
    shapes = districts[["district_code", "district_name", districts.geometry.name]].copy()
    shapes = shapes.set_geometry(shapes.geometry.buffer(CLOSE_M).buffer(-CLOSE_M))
    outline = to_web_geojson(shapes, tolerance_m=120.0 if many else 10.0, decimals=4 if many else DECIMALS)
    minx, miny, maxx, maxy = districts.to_crs(crs.WGS84).total_bounds if len(districts) else (0, 0, 0, 0)
    pairs = []
    for s in suggestions:
        r, h = lat_lon(s.get("request_xy")), lat_lon(s.get("supporter_xy"))
        if r is None or h is None:
            continue
        pairs.append({"r": r, "s": h,
                      "request": [f"{s.get('requester_name') or ''}（{s.get('activity_ja') or ''}）",
                                  s.get("when_ja") or "", f"候補: {s.get('supporter_name') or ''}"],
                      "supporter": [f"{s.get('supporter_name') or ''}（サポーター）",
                                    f"徒歩 {s.get('distance_m', 0):,} m"]})
    missing = []
    for u in unmet:
        p = lat_lon(u.get("request_xy"))
        if p is None:
            continue
        missing.append({"p": p, "c": REASON_COLOURS.get(u.get("reason"), "#555555"),
                        "text": [f"{u.get('requester_name') or ''}（{u.get('activity_ja') or ''}）",
                                 f"未対応: {u.get('reason_ja') or ''}", u.get("detail_ja") or ""]})
    places = []
    for r in recruit:
        p = lat_lon((r.get("x"), r.get("y")))
        if p is None:
            continue
        places.append({"p": p, "reach_m": r.get("reach_m") or 0, "rank": r.get("rank"),
                       "text": [f"募集するなら: {r.get('place') or ''}付近（{r.get('activity_ja') or ''}）",
                                f"未対応の依頼 {r.get('gain', 0)} 件に届きます"
                                f"（徒歩 {r.get('reach_m', 0):,} m 以内）"]})
    helpers = []
    for s in supporters:
        p = lat_lon((s.get("x"), s.get("y")))
        if p is None:
            continue
        helpers.append({"p": p, "reach_m": float(s.get(reach_key) or 0),
                        "text": [f"{s.get('name') or ''}（サポーター）", s.get("activities_ja") or "",
                                 f"活動範囲 徒歩 {float(s.get(reach_key) or 0):,.0f} m"]})
    legend = [(MET, "候補のある依頼")] * bool(pairs) + [(SUPPORTER, "サポーター")] * bool(pairs or helpers)
    legend += [(RECRUIT, "募集の候補地")] * bool(places)
    legend += [(REASON_COLOURS[k], f"未対応: {labels.get(k, k)}") for k in REASON_COLOURS
               if any(u.get("reason") == k for u in unmet)]
    return {
        "tiles": basemap.url, "attribution": basemap.attribution, "background": BACKGROUND,
        "bounds": [[float(miny), float(minx)], [float(maxy), float(maxx)]],
        "districts": outline, "pairs": pairs, "unmet": missing, "recruit": places, "supporters": helpers,
        "colours": {"met": MET, "supporter": SUPPORTER, "recruit": RECRUIT}, "legend": legend,
    }
