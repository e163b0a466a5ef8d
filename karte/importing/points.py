"""Where each row of a point file is, and which district (and small area) it falls in.

A row's location comes, in this order, from latitude/longitude, from plane coordinates
(平面直角座標系 第X系, EPSG:6678; X is northing and Y easting, the survey convention), or from
its address through the geocoder. Placement then checks every point at once: inside the city,
in which small area (``key_code``) and which district (``district_code``).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis import crs
from gis.overlay import locate_points
from karte.domain.schema import LocationPrecision
from karte.importing.geocode import Geocoder, normalise_address
from karte.importing.rows import Row
from karte.importing.values import ValueProblem, nfkc, parse_float

#: A point up to this far outside every district (simplified census polygons leave slivers and
#: cut the coast) goes to the nearest district.
NEAREST_TOLERANCE_M = 300.0

#: A buffer's round ends are chords of the circle (8 a quarter): they fall short of the margin by
#: at most 300 m x (1 - cos(pi/32)) = 1.5 m.
SURE_M = 2.0

_TO_METRIC = pyproj.Transformer.from_crs(crs.WGS84, crs.METRIC, always_xy=True)


@dataclass(frozen=True)
class Located:
    """A row's location before placement: WGS84 (lon, lat) or metric (x east, y north)."""

    precision: LocationPrecision
    field: str | None = None          # the column it came from (for messages)
    lon: float | None = None
    lat: float | None = None
    x: float | None = None
    y: float | None = None


NOWHERE = Located(LocationPrecision.NONE)


def parse_location(row: Row, geocoder: Geocoder) -> Located | None:
    """The row's location; ``NOWHERE`` when it gives none, ``None`` when it is wrong (recorded)."""
    latlon = _pair(row, "latitude", "longitude", "緯度と経度は両方入力してください",
                   "latitude and longitude go together")
    if latlon is None:
        return None
    if latlon:
        lat, lon = latlon
        if not (20 <= lat <= 46 and 122 <= lon <= 154):
            if 20 <= lon <= 46 and 122 <= lat <= 154:
                row.error("latitude", "緯度と経度が入れ替わっています", "latitude and longitude swapped")
            else:
                row.error("latitude", "緯度・経度が日本の範囲にありません", "coordinates outside Japan")
            return None
        return Located(LocationPrecision.EXACT, "latitude", lon=lon, lat=lat)
    plane = _pair(row, "plane_x", "plane_y", "X座標とY座標は両方入力してください",
                  "plane X and Y go together")
    if plane is None:
        return None
    if plane:
        north, east = plane
        return Located(LocationPrecision.EXACT, "plane_x", x=east, y=north)
    address = row.text("address")
    if address:
        try:
            hit = geocoder.geocode(address)
        except ValueProblem as exc:
            row.error("address", exc.ja, exc.en)
            return None
        return Located(hit.precision, "address", lon=hit.lon, lat=hit.lat)
    return NOWHERE


def _pair(row: Row, first: str, second: str, ja: str, en: str) -> tuple[float, float] | tuple[()] | None:
    """Two columns that go together, as numbers: ``()`` when neither is given, ``None`` when one is
    missing or unreadable (recorded on the row, with ``ja``/``en`` for a missing one)."""
    a, b = row.text(first), row.text(second)
    if not (a or b):
        return ()
    if not (a and b):
        row.error(first if not a else second, ja, en)
        return None
    x, y = row.parse(first, parse_float), row.parse(second, parse_float)
    return None if x is None or y is None else (x, y)


def clean_address(text: str) -> str | None:
    return normalise_address(text) if text else None


@dataclass
class Placement:
    """The result of :func:`place`, aligned with the input rows."""

    geometry: gpd.GeoSeries
    key_code: list[str | None]
    district_code: list[str | None]
    outside: np.ndarray            # rows whose point lay outside the city (reported, dropped)


class CityArea:
    """The city's area for the outside-the-city check: the union of its polygons grown by
    ``margin`` metres. A point closer than ``margin`` - :data:`SURE_M` to a valid polygon lies
    in it for sure; the union is made only when some point does not."""

    def __init__(self, polygons: np.ndarray, margin: float):
        self.polygons = polygons
        self.margin = margin
        self._area = None

    @property
    def area(self):
        if self._area is None:
            self._area = shapely.union_all(shapely.make_valid(self.polygons)).buffer(self.margin)
        return self._area

    def contains_xy(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        valid = self.polygons[shapely.is_valid(self.polygons)]
        near = shapely.STRtree(valid).query(shapely.points(xs, ys), predicate="dwithin",
                                            distance=self.margin - SURE_M)
        inside = np.zeros(len(xs), dtype=bool)
        inside[near[0]] = True
        rest = ~inside
        if rest.any():
            inside[rest] = _contains_xy(self.area, xs[rest], ys[rest])
        return inside


def _contains_xy(city, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    if isinstance(city, CityArea):
        return city.contains_xy(xs, ys)
    shapely.prepare(city)
    return shapely.contains_xy(city, xs, ys)


def place(located: list[Located], rows, *, city, districts: gpd.GeoDataFrame | None,
          small_areas: gpd.GeoDataFrame | None, district_map: pd.Series | None) -> Placement:
    """Project, check against the city area, and locate every row's point.

    ``city`` is the city's area in EPSG:6678 (a geometry or a :class:`CityArea`; None: no
    check); ``district_map`` maps ``key_code`` to ``district_code`` (districts by small area),
    else ``districts`` polygons decide. Problems (a point outside the city) are recorded on the
    rows (``rows[i]``, in order). Each distinct point is checked and located once (the rows
    placed at one town point share it).
    """
    n = len(located)
    lon = np.array([np.nan if loc.lon is None else loc.lon for loc in located], dtype=float)
    lat = np.array([np.nan if loc.lat is None else loc.lat for loc in located], dtype=float)
    xs = np.array([np.nan if loc.x is None else loc.x for loc in located], dtype=float)
    ys = np.array([np.nan if loc.y is None else loc.y for loc in located], dtype=float)
    lonlat = ~np.isnan(lon)
    if lonlat.any():
        xs[lonlat], ys[lonlat] = _TO_METRIC.transform(lon[lonlat], lat[lonlat])
    has = ~np.isnan(xs)
    unique, inverse = np.unique(np.column_stack([xs[has], ys[has]]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    outside = np.zeros(n, dtype=bool)
    if city is not None and len(unique):
        inside = np.ones(n, dtype=bool)
        inside[has] = _contains_xy(city, unique[:, 0], unique[:, 1])[inverse]
        for i in np.flatnonzero(~inside):
            loc = located[i]
            if loc.field == "plane_x" and _contains_xy(city, ys[i:i + 1], xs[i:i + 1])[0]:
                rows[i].error("plane_x", "座標が青森市の区域外です (X座標とY座標が入れ替わっていませんか。"
                              "X は南北、Y は東西)", "point outside the city (X and Y swapped?)")
            else:
                rows[i].error(loc.field, "座標が青森市の区域外です", "point outside the city")
            outside[i] = True
    geoms = np.full(n, None, dtype=object)
    geoms[has & ~outside] = shapely.points(xs[has & ~outside], ys[has & ~outside])
    # one point per distinct place inside the city, and each row's index among them (or -1)
    placed = np.flatnonzero(has & ~outside)
    used = np.zeros(len(unique), dtype=bool)
    used[inverse[~outside[has]]] = True
    spots = np.flatnonzero(used)
    points = gpd.GeoDataFrame(geometry=gpd.GeoSeries(shapely.points(unique[spots]), crs=crs.METRIC))
    spot_of = np.full(len(unique), -1)
    spot_of[spots] = np.arange(len(spots))
    row_spot = np.full(n, -1)
    row_spot[placed] = spot_of[inverse[~outside[has]]]

    def spread(values) -> list[str | None]:
        values = list(values)
        return [values[k] if k >= 0 else None for k in row_spot]

    key_code: list[str | None] = [None] * n
    if small_areas is not None and len(small_areas) and len(spots):
        key_code = spread(locate_with_tolerance(points, small_areas, "key_code"))
    district: list[str | None] = [None] * n
    if district_map is not None:
        district = [district_map.get(k) if k is not None else None for k in key_code]
    elif districts is not None and len(districts) and len(spots):
        district = spread(locate_with_tolerance(points, districts, "district_code"))
    return Placement(gpd.GeoSeries(geoms, crs=crs.METRIC, name="geometry"), key_code, district, outside)


def locate_with_tolerance(points: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame, column: str) -> pd.Series:
    """:func:`gis.overlay.locate_points`, with points in a sliver up to
    :data:`NEAREST_TOLERANCE_M` outside every polygon given to the nearest one."""
    found = locate_points(points, polygons.to_crs(points.crs), column)
    missing = found.isna() & points.geometry.notna()
    if missing.any():
        near = gpd.sjoin_nearest(points.loc[missing, [points.geometry.name]],
                                 polygons[[column, polygons.geometry.name]].to_crs(points.crs),
                                 max_distance=NEAREST_TOLERANCE_M, how="inner")
        near = near[~near.index.duplicated(keep="first")]
        found.loc[near.index] = near[column].to_numpy()
    return found.where(found.notna(), None)


def district_lookup(districts: gpd.GeoDataFrame | pd.DataFrame | None) -> dict[str, str]:
    """District code or name (NFKC, spaces removed, 地区 suffix optional) -> district code."""
    table: dict[str, str] = {}
    if districts is None:
        return table
    names = districts.get("district_name", districts["district_code"])
    for code, name in zip(districts["district_code"], names, strict=True):
        code = str(code)
        table[_district_key(code)] = code
        if isinstance(name, str) and name:
            key = _district_key(name)
            table.setdefault(key, code)
            table.setdefault(key.removeprefix("(仮)"), code)
            table.setdefault(key.removesuffix("地区"), code)
            table.setdefault(key.removeprefix("(仮)").removesuffix("地区"), code)
    return table


def _district_key(text: str) -> str:
    return nfkc(text).replace(" ", "").casefold()


def resolve_district(row: Row, lookup: dict[str, str]) -> str | None:
    """The district named in the row's district column (code or name), or None; an unknown
    district is recorded as a problem."""
    text = row.text("district_code")
    if not text:
        return None
    code = lookup.get(_district_key(text))
    if code is None:
        row.error("district_code", "この地区はカルテにありません (地区コードか地区名を確認してください)",
                  "unknown district")
    return code
