"""Folium maps that work offline: Leaflet comes from the shipped copy, never from a CDN.

``static/leaflet`` holds Leaflet 1.9.4 as published on the npm registry (BSD-2-Clause, see its
LICENSE). A map's HTML refers to it under ``asset_base`` (a relative folder for files written to
disk, ``/static/leaflet`` when served by the web app). The basemap is optional: with no tile
server reachable the vector layers still draw on a plain background.

Why folium: it writes the Leaflet JavaScript for GeoJSON layers, tooltips, popups and the layer
control from Python, so a page's map is built on the server next to the tables it sits beside;
replacing its default asset lists with the shipped Leaflet keeps it free of any CDN. folium and
karte's Leaflet elements (:mod:`karte.render.map_elements`) are imported by the first map drawn:
the GeoJSON helpers here serve printed sheets and the OGC API, which draw none.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis import crs
from gis.geometry import polygonal
from karte.domain.errors import InputError

if TYPE_CHECKING:
    import folium

STATIC = Path(__file__).parent / "static"
LEAFLET = STATIC / "leaflet"

GSI_ATTRIBUTION = '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル（淡色地図）</a>'

#: Named basemaps: (tile URL template, attribution HTML, name in the layer control), or None.
BASEMAPS = {
    "gsi_pale": ("https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png", GSI_ATTRIBUTION,
                 "地理院タイル（淡色）"),
    "none": None,
}

#: Where the web app serves the map assets (Leaflet, karte-personal.js).
ASSETS = "/static/leaflet"

#: Background of the map when no tile is drawn (no basemap, or the tile server is unreachable).
BACKGROUND = "#eef0ea"


@dataclass(frozen=True)
class Basemap:
    """The tiles under a web map: a URL template with its attribution, or none at all."""

    url: str | None
    attribution: str = ""
    name: str = "背景地図"

    @classmethod
    def named(cls, name: str, *, url: str = "", attribution: str = "") -> Basemap:
        """A basemap by name (``gsi_pale``, ``none``) or, with ``url``, any XYZ tile server.

        Raises :class:`karte.domain.errors.InputError` for an unknown name (listing the known ones).
        """
        if url:
            return cls(url, attribution or url, "背景地図")
        if name not in BASEMAPS:
            raise InputError(f"背景地図 {name!r} は不明です（{', '.join(sorted(BASEMAPS))} "
                             "または KARTE_TILE_URL でタイルの URL を指定）")
        spec = BASEMAPS[name]
        return cls(None) if spec is None else cls(*spec)

    @classmethod
    def from_settings(cls, settings) -> Basemap:
        """The basemap configured in :class:`karte.settings.Settings` (``KARTE_BASEMAP``,
        ``KARTE_TILE_URL``, ``KARTE_TILE_ATTRIBUTION``); GSI 淡色地図 when none is set."""
        return cls.named(getattr(settings, "basemap", "gsi_pale") or "gsi_pale",
                         url=getattr(settings, "tile_url", "") or "",
                         attribution=getattr(settings, "tile_attribution", "") or "")


def offline_map(bounds_wgs84, *, asset_base: str, basemap: str | Basemap = "gsi_pale",
                prefer_canvas: bool = True) -> folium.Map:
    """A folium map whose only assets are the shipped Leaflet JS and CSS.

    ``prefer_canvas=False`` draws vectors as SVG paths (one element per feature: what the web
    pages use, so a browser test can count them); True draws them on one canvas (large maps).
    """
    import folium  # imported by the first map: 0.3 s that sheets and GeoJSON never need

    from karte.render.map_elements import Fit, KeyboardOneStop, MetricScale, ShapeMarkers

    spec = basemap if isinstance(basemap, Basemap) else Basemap.named(basemap)
    # quarter zoom steps: a fit fills the map instead of jumping a whole level down
    m = folium.Map(tiles=None, control_scale=False, prefer_canvas=prefer_canvas, zoom_snap=0.25)
    m.default_js = [("leaflet", f"{asset_base}/leaflet.js")]
    m.default_css = [("leaflet_css", f"{asset_base}/leaflet.css")]
    m.add_child(MetricScale())
    m.add_child(KeyboardOneStop())
    m.add_child(ShapeMarkers())
    if spec.url:
        folium.TileLayer(spec.url, attr=spec.attribution, name=spec.name, max_zoom=18,
                         overlay=False, control=True).add_to(m)
    m.add_child(Fit(bounds_wgs84))
    return m


#: Marker shapes (WCAG 1.4.1: a category is told by its shape as well as its colour): each an outline
#: in units of the marker's radius (x to the right, y down), drawn by ``L.KarteShape`` in the browser
#: and by :func:`shape_svg` in the legends. ``circle`` is Leaflet's own circle marker.
SHAPES: dict[str, tuple[tuple[float, float], ...] | None] = {
    "circle": None,
    "square": ((-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)),
    "diamond": ((0, -1.2), (1.2, 0), (0, 1.2), (-1.2, 0)),
    "triangle": ((0, -1.25), (1.15, 0.8), (-1.15, 0.8)),
    "triangle_down": ((0, 1.25), (1.15, -0.8), (-1.15, -0.8)),
    "house": ((0, -1.2), (1.05, -0.2), (1.05, 1.0), (-1.05, 1.0), (-1.05, -0.2)),
    "pentagon": tuple((round(1.1 * math.sin(math.radians(a)), 3), round(-1.1 * math.cos(math.radians(a)), 3))
                      for a in range(0, 360, 72)),
    "hexagon": tuple((round(1.1 * math.cos(math.radians(a)), 3), round(1.1 * math.sin(math.radians(a)), 3))
                     for a in range(0, 360, 60)),
    "cross": ((-0.4, -1.15), (0.4, -1.15), (0.4, -0.4), (1.15, -0.4), (1.15, 0.4), (0.4, 0.4), (0.4, 1.15),
              (-0.4, 1.15), (-0.4, 0.4), (-1.15, 0.4), (-1.15, -0.4), (-0.4, -0.4)),
    "x": ((0, -0.55), (0.6, -1.15), (1.15, -0.6), (0.55, 0), (1.15, 0.6), (0.6, 1.15), (0, 0.55),
          (-0.6, 1.15), (-1.15, 0.6), (-0.55, 0), (-1.15, -0.6), (-0.6, -1.15)),
    "star": tuple((round((1.3 if i % 2 == 0 else 0.55) * math.sin(math.radians(36 * i)), 3),
                   round(-(1.3 if i % 2 == 0 else 0.55) * math.cos(math.radians(36 * i)), 3))
                  for i in range(10)),
    "bar": ((-1.3, -0.5), (1.3, -0.5), (1.3, 0.5), (-1.3, 0.5)),
    "hourglass": ((-0.95, -1.1), (0.95, -1.1), (0, 0), (0.95, 1.1), (-0.95, 1.1), (0, 0)),
}


def shape_svg(style: dict, *, size: int = 18) -> str:
    """An inline SVG of a marker (its ``shape``, ``fillColor``, ``color``, ``weight``) for a legend."""
    half = size / 2
    r = half * 0.62
    fill = html.escape(str(style.get("fillColor") or style.get("color") or "#ffffff"))
    stroke = html.escape(str(style.get("color") or "#555555"))
    width = min(float(style.get("weight", 1.5) or 1.5), 3.0)
    points = SHAPES.get(style.get("shape") or "circle")
    if points is None:
        body = f'<circle cx="{half:g}" cy="{half:g}" r="{r:.2f}"'
    else:
        d = "M" + "L".join(f"{half + x * r:.2f},{half + y * r:.2f}" for x, y in points) + "Z"
        body = f'<path d="{d}"'
    return (f'<svg aria-hidden="true" focusable="false" width="{size}" height="{size}" '
            f'viewBox="0 0 {size} {size}" style="vertical-align:middle;margin-right:6px">'
            f'{body} fill="{fill}" stroke="{stroke}" stroke-width="{width:g}"/></svg>')


@dataclass(frozen=True)
class MapParts:
    """A folium map cut into the three pieces a server-rendered page places itself."""

    header: str  #: into <head>: Leaflet's CSS and JS, the map's own styles
    html: str    #: the map's <div>
    script: str  #: the JavaScript that draws it (after the div)
    map_id: str  #: the id of the map's <div> (and its JavaScript variable)
    control_id: str = ""  #: the JavaScript variable of its layer control (when it has one)
    version: str = ""  #: a digest of the three pieces: the same map drawn again has the same one


_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>', re.S)
_FULL_PAGE = re.compile(r"<style>\s*html, body \{[^}]*\}\s*</style>", re.S)


def map_parts(m: folium.Map) -> MapParts:
    """Render ``m`` for embedding in a page (the way folium's Flask example does it).

    Folium's own page-level rules are dropped: the viewport tag that forbids zooming the page
    and the style that makes ``html, body`` the map's full height; the page sets its own.
    """
    root = m.get_root()
    root.render()
    header = _FULL_PAGE.sub("", _VIEWPORT.sub("", root.header.render()))
    pieces = [header, root.html.render(), unescape_text(root.script.render()),
              m.get_name(), getattr(m, "karte_control", "")]
    header, div, script, map_id, control_id = stable_ids(pieces)
    version = hashlib.sha256("\0".join((header, div, script)).encode()).hexdigest()[:16]
    return MapParts(header=header, html=div, script=script, map_id=map_id, control_id=control_id,
                    version=version)


#: The random part of a folium element's name (``map_<uuid4 hex>``, ``geo_json_<uuid4 hex>`` …).
_FOLIUM_ID = re.compile(r"(?<=_)[0-9a-f]{32}(?![0-9a-f])")


def stable_ids(pieces: list[str]) -> list[str]:
    """``pieces`` of one rendered map with folium's random element ids replaced by ids made from
    the map itself: a digest of its text without the ids, then each id's place in order. The same
    map drawn by another server process, or after a restart, is then the same text, so a page
    and a map script fetched apart (and cached by the browser) always name the same elements;
    two different maps on one page still differ."""
    text = "\0".join(pieces)
    base = hashlib.sha256(_FOLIUM_ID.sub("", text).encode()).hexdigest()[:10]
    names = {old: f"{base}{i:x}" for i, old in enumerate(dict.fromkeys(_FOLIUM_ID.findall(text)))}
    return [_FOLIUM_ID.sub(lambda found: names[found.group(0)], piece) for piece in pieces]


_U_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u([0-9a-fA-F]{4})")


def unescape_text(script: str) -> str:
    """Write ``\\uXXXX`` escapes of letters (Japanese text in the embedded GeoJSON) as the letters.

    Folium's JSON escapes every non-ASCII character into six bytes; as UTF-8 a Japanese letter
    takes three. ASCII (``<``, ``>``, ``&`` stay escaped, so no ``</script>`` can appear),
    surrogates and the JavaScript line terminators U+2028/U+2029 are left escaped.
    """
    def letter(m: re.Match) -> str:
        code = int(m.group(2), 16)
        if code < 0xA0 or 0xD800 <= code <= 0xDFFF or code in (0x2028, 0x2029):
            return m.group(0)
        return m.group(1) + chr(code)

    return _U_ESCAPE.sub(letter, script)


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
    out = gdf.copy()
    if close_gaps_m > 0:
        out = out.set_geometry(out.geometry.buffer(close_gaps_m).buffer(-close_gaps_m))
    if tolerance_m > 0:
        out = out.set_geometry(out.geometry.simplify(tolerance_m, preserve_topology=True))
    out = out.to_crs(crs.WGS84)
    return out.set_geometry(shapely.set_precision(out.geometry.values, 10.0**-decimals))


def legend_html(title: str, items: list[tuple[str | dict, str]], *, css_class: str = "karte-legend") -> str:
    """A plain HTML legend (no extra JS): items are (colour, label) for a square swatch, or
    (marker style, label) for the marker itself (its shape, fill and outline: :func:`shape_svg`),
    text at 14 px on an opaque white plate (contrast does not depend on the map under it). It folds
    away (a ``<details>`` element whose ``<summary>`` is only the word 凡例; a ``title`` is the
    legend's first line) so it never hides the map on a small screen."""
    rows = "".join(
        (f'<div>{shape_svg(c)}{label}</div>' if isinstance(c, dict) else
         f'<div><span aria-hidden="true" style="display:inline-block;width:14px;height:14px;'
         f'background:{c};border:1px solid #555;margin-right:6px;vertical-align:middle"></span>{label}</div>')
        for c, label in items
    )
    return (
        f'<details open class="{css_class}" style="position:absolute;bottom:28px;right:10px;'
        'z-index:1000;background:#fff;color:#1d2327;padding:6px 10px;border:1px solid #888;'
        'font:14px sans-serif;line-height:1.5;max-width:min(22rem,calc(100% - 20px))">'
        '<summary>凡例</summary>'
        + (f'<div class="karte-legend-title"><strong>{title}</strong></div>' if title else "")
        + f"{rows}</details>"
    )


def tip_geojson(to_geojson, frame: gpd.GeoDataFrame, *, tip, popup=None) -> dict:
    """GeoJSON of ``frame`` whose only properties are ``tip`` (and ``popup``): HTML built by
    ``tip(row)`` / ``popup(row)``, which must escape what they quote (folium inserts it as HTML).
    Features get ids 0..n-1 (folium keys its per-feature styles by them)."""
    rows = records(frame)
    slim = gpd.GeoDataFrame({"tip": [tip(r) for r in rows]}, geometry=frame.geometry.values,
                            crs=frame.crs)
    if popup is not None:
        slim["popup"] = [popup(r) for r in rows]
    data = to_geojson(slim)
    for i, feature in enumerate(data["features"]):
        feature["id"] = i
        feature["geometry"] = _areal(feature.get("geometry"))
    return data


def _areal(geometry: dict | None) -> dict | None:
    """A GeometryCollection (rounding can collapse slivers of a polygon into lines) as the
    MultiPolygon of its polygons: Leaflet's tooltips and folium's styles need one kind."""
    if not geometry or geometry.get("type") != "GeometryCollection":
        return geometry
    polygons = []
    for part in geometry.get("geometries", []):
        if part.get("type") == "Polygon":
            polygons.append(part["coordinates"])
        elif part.get("type") == "MultiPolygon":
            polygons.extend(part["coordinates"])
    return {"type": "MultiPolygon", "coordinates": polygons} if polygons else None


def records(frame: gpd.GeoDataFrame) -> list[dict]:
    """The rows of ``frame`` without geometry as dicts (``row.get(column)`` in the text helpers);
    ten times faster than ``iterrows``."""
    return pd.DataFrame(frame.drop(columns=frame.geometry.name)).to_dict("records")


def point_layer(m: folium.Map, to_geojson, frame: gpd.GeoDataFrame, name: str, *,
                styles: dict[str, dict], tip, style_of=None, popup=None, show: bool = True) -> None:
    """Points of ``frame`` as markers in one GeoJSON layer of the layer control: circles, or the
    :data:`SHAPES` a style names (``"shape": "square"``).

    ``style_of(row)`` picks the row's key in ``styles`` (only that short key travels in each
    feature); one GeoJSON layer is a fraction of the size of one folium marker per point.
    """
    if len(frame):
        frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    data = tip_geojson(to_geojson, frame, tip=tip, popup=popup)
    keys = [style_of(r) if style_of else next(iter(styles)) for r in records(frame)]
    for feature, key in zip(data["features"], keys, strict=True):
        feature["properties"]["k"] = key
    import folium

    from karte.render.map_elements import ShapeMarker

    folium.GeoJson(
        data,
        name=name,
        show=show,
        marker=ShapeMarker(radius=6, fill=True, fill_opacity=0.9),
        style_function=lambda f: styles[f["properties"]["k"]],
        tooltip=folium.GeoJsonTooltip(["tip"], labels=False) if len(frame) else None,
        popup=folium.GeoJsonPopup(["popup"], labels=False) if popup and len(frame) else None,
    ).add_to(m)


def web_geojson(*, tolerance_m: float, decimals: int):
    """``frame -> GeoJSON dict`` (EPSG:4326) by :func:`to_web_geojson`."""

    def convert(frame):
        return to_web_geojson(frame, tolerance_m=tolerance_m, decimals=decimals)

    return convert


# --- GeoJSON for the web -----------------------------------------------------------------------

def to_web_geojson(frame: gpd.GeoDataFrame, *, tolerance_m: float = 10.0, decimals: int = 6,
                   id_column: str | None = None) -> dict:
    """A GeoJSON FeatureCollection (EPSG:4326, lon/lat) of ``frame`` for the web.

    Geometries are simplified in metres first (``tolerance_m``, topology preserved; 0 keeps them
    as they are), then reprojected and their coordinates rounded to ``decimals`` places (6: about
    0.1 m); a polygon stays a (multi)polygon (what repair and rounding leave as a collection
    becomes the MultiPolygon of its polygons). Properties keep every column except the
    geometry; missing values become ``null``, numpy numbers plain JSON numbers. ``id_column``
    (default: none) gives each feature its ``id``.
    """
    out = frame
    if out.crs is None:
        raise ValueError("a layer without a CRS cannot become GeoJSON")
    geom = out.geometry
    if tolerance_m > 0:
        geom = geom.simplify(tolerance_m, preserve_topology=True)
    geom = geom.to_crs(crs.WGS84).values
    invalid = ~shapely.is_valid(geom) & ~shapely.is_missing(geom)
    if invalid.any():
        geom = geom.copy()
        geom[invalid] = shapely.make_valid(geom[invalid])
    try:
        geom = shapely.set_precision(geom, 10.0 ** -decimals)
    except shapely.errors.GEOSException:
        # GEOS cannot snap some merged mesh pieces to the grid without a topology conflict:
        # round every coordinate instead (the shape may then touch itself; maps draw it alike)
        geom = shapely.set_precision(geom, 10.0 ** -decimals, mode="pointwise")
    areal = np.isin(shapely.get_type_id(out.geometry.values), (3, 6))  # polygons in, polygons out
    if areal.any():
        geom = np.asarray(geom, dtype=object).copy()
        geom[areal] = polygonal(geom[areal])
    props = pd.DataFrame(out.drop(columns=out.geometry.name))
    columns = {name: _json_column(props[name]) for name in props.columns}
    names = list(columns)
    rows = zip(*columns.values(), strict=True) if names else ([] for _ in range(len(props)))
    ids = columns.get(id_column) if id_column is not None else None
    features = []
    for i, (values, g) in enumerate(zip(rows, _geojson_geometries(geom), strict=True)):
        feature = {"type": "Feature", "geometry": g, "properties": dict(zip(names, values, strict=True))}
        if id_column is not None:
            feature["id"] = ids[i] if ids is not None else i
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def _json_value(v):
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, list | tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


def _json_column(series: pd.Series) -> list:
    """A column as plain JSON values (None for missing; Python numbers, not numpy's)."""
    values = series.astype(object).where(series.notna(), None).tolist()
    if series.dtype == object:
        return [_json_value(v) for v in values]
    return values


def _geojson_geometries(geoms) -> list:
    """GeoJSON geometry dicts of a shapely array (points built directly: the common, big case)."""
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    kinds = shapely.get_type_id(geoms)
    if (kinds[~missing] == 0).all():  # points only
        xs, ys = shapely.get_x(geoms).tolist(), shapely.get_y(geoms).tolist()
        return [None if m else {"type": "Point", "coordinates": [x, y]}
                for m, x, y in zip(missing.tolist(), xs, ys, strict=True)]
    texts = shapely.to_geojson(geoms)
    return [None if m else json.loads(s) for m, s in zip(missing.tolist(), texts, strict=True)]
