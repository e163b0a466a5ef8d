"""Folium maps that work offline: Leaflet comes from the shipped copy, never from a CDN.

``static/leaflet`` holds Leaflet 1.9.4 as published on the npm registry (BSD-2-Clause, see its
LICENSE). A map's HTML refers to it under ``asset_base`` (a relative folder for files written to
disk, ``/static/leaflet`` when served by the web app). The basemap is optional: with no tile
server reachable the vector layers still draw.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import folium
import geopandas as gpd

from gis import crs

STATIC = Path(__file__).parent / "static"
LEAFLET = STATIC / "leaflet"

BASEMAPS = {
    "gsi_pale": (
        "https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png",
        '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル（淡色地図）</a>',
    ),
    "none": None,
}


def offline_map(bounds_wgs84, *, asset_base: str, basemap: str = "gsi_pale") -> folium.Map:
    """A folium map whose only assets are the shipped Leaflet JS and CSS."""
    m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    m.default_js = [("leaflet", f"{asset_base}/leaflet.js")]
    m.default_css = [("leaflet_css", f"{asset_base}/leaflet.css")]
    spec = BASEMAPS.get(basemap)
    if spec:
        url, attribution = spec
        folium.TileLayer(url, attr=attribution, name="地理院タイル（淡色）", max_zoom=18,
                         overlay=False, control=True).add_to(m)
    minx, miny, maxx, maxy = bounds_wgs84
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    return m


def copy_assets(folder: Path) -> Path:
    """Copy Leaflet next to an HTML file; returns the asset folder."""
    dest = folder / "assets" / "leaflet"
    shutil.copytree(LEAFLET, dest, dirs_exist_ok=True)
    return dest


def for_web(gdf: gpd.GeoDataFrame, *, tolerance_m: float = 15.0, decimals: int = 5,
            close_gaps_m: float = 0.0):
    """Simplify in metres, then reproject to WGS84 and round coordinates (small pages).

    ``close_gaps_m`` closes slivers and pinholes narrower than twice that many metres (a
    morphological closing: buffer out, then in), for display of dissolved census polygons.
    """
    import shapely

    out = gdf.copy()
    if close_gaps_m > 0:
        out = out.set_geometry(out.geometry.buffer(close_gaps_m).buffer(-close_gaps_m))
    if tolerance_m > 0:
        out = out.set_geometry(out.geometry.simplify(tolerance_m, preserve_topology=True))
    out = out.to_crs(crs.WGS84)
    return out.set_geometry(shapely.set_precision(out.geometry.values, 10.0**-decimals))


def legend_html(title: str, items: list[tuple[str, str]]) -> str:
    """A plain HTML legend (no extra JS): items are (colour, label)."""
    rows = "".join(
        f'<div><span style="display:inline-block;width:14px;height:14px;background:{c};'
        f'border:1px solid #555;margin-right:6px;vertical-align:middle"></span>{label}</div>'
        for c, label in items
    )
    return (
        '<div class="karte-legend" style="position:absolute;bottom:28px;right:10px;z-index:1000;'
        'background:rgba(255,255,255,0.92);padding:8px 10px;border:1px solid #888;'
        f'font:13px sans-serif;line-height:1.5"><b>{title}</b>{rows}</div>'
    )
