"""The district map of a sheet, drawn as vector paths on a ReportLab canvas (no tiles, no raster).

Geometries come in EPSG:6678 metres and are scaled to the page; grid north of zone X is true
north within a fraction of a degree in Aomori, so the arrow points up. Colours differ in
lightness and pattern as well as hue (catchments light and dashed, uncovered cells hatched,
welfare shelters solid black), so a greyscale copy reads the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from reportlab.lib.colors import Color, HexColor, black, white

from karte.render.pdf_fonts import safe_text
from karte.render.pdf_layout import INK  # the sheet's one text colour

GREY = HexColor("#6b6b6b")
LINE_GREY = HexColor("#a6a6a6")
CATCHMENT = HexColor("#cfe2f3")
CATCHMENT_EDGE = HexColor("#2f6da3")
CELL = HexColor("#f0b47c")
CELL_HATCH = HexColor("#b35806")
SALON = HexColor("#1f4e79")
PERSON = HexColor("#8b1a1a")
DIM = Color(1, 1, 1, alpha=0.62)

#: Polygons are generalised to the map's scale: gaps narrower than twice this (points on the
#: page) are closed (see ``_rings``).
CLOSE_PT = 1.0
#: ... and the uncovered cells more (cracks along roads and rivers between small areas).
CELL_CLOSE_PT = 2.0

#: Nice scale-bar lengths, metres.
_SCALE_STEPS = (100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000)


@dataclass
class MapPoint:
    """A symbol on the map: its place (EPSG:6678), label, whether it is the district's own, and a
    kind flag (salon: counts for coverage; shelter: welfare shelter)."""

    x: float
    y: float
    label: str = ""
    own_district: bool = True
    special: bool = False


@dataclass
class MapData:
    """Everything the map draws, in EPSG:6678 metres."""

    extent: tuple[float, float, float, float]
    district: object
    neighbours: list[tuple[object, str]] = field(default_factory=list)
    small_areas: list[tuple[object, str]] = field(default_factory=list)
    catchments: object | None = None
    #: uncovered cells where elderly people live (polygons, merged or not)
    cells: list = field(default_factory=list)
    salons: list[MapPoint] = field(default_factory=list)
    shelters: list[MapPoint] = field(default_factory=list)
    #: personal editions: the listed support-needers, labelled with their number on the sheet
    people: list[MapPoint] = field(default_factory=list)
    walk_m: float = 500.0
    radius_m: float = 385.0
    #: the whole district's extent when the map shows only its inhabited part (inset drawn)
    overview: tuple[float, float, float, float] | None = None


class _Transform:
    """Metres -> points inside the frame, keeping the aspect ratio, centred."""

    def __init__(self, extent, x, y, w, h):
        minx, miny, maxx, maxy = extent
        self.scale = min(w / (maxx - minx), h / (maxy - miny))
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        self.ox = x + w / 2 - cx * self.scale
        self.oy = y + h / 2 - cy * self.scale
        m = 4 / self.scale  # the frame in metres, 4 points wider
        self.clip = ((x - self.ox) / self.scale - m, (y - self.oy) / self.scale - m,
                     (x + w - self.ox) / self.scale + m, (y + h - self.oy) / self.scale + m)

    def xy(self, coords: np.ndarray) -> np.ndarray:
        return coords * self.scale + (self.ox, self.oy)

    def point(self, x: float, y: float) -> tuple[float, float]:
        return x * self.scale + self.ox, y * self.scale + self.oy


def draw_map(canvas, data: MapData, *, x: float, y: float, w: float, h: float, font: str,
             zoom: float = 1.0) -> None:
    """Draw the district map into the frame (x, y, w, h) in points, with its legend, scale bar
    and north arrow. ``zoom`` is how much the page is enlarged on paper (A3: √2), for the
    printed scale (1:n)."""
    tf = _Transform(data.extent, x, y, w, h)
    tol = 0.3 / tf.scale  # simplify to a third of a point: invisible, and far fewer vertices
    close = CLOSE_PT / tf.scale  # gaps narrower than 2 points do not print
    c = canvas
    c.saveState()
    frame = c.beginPath()
    frame.rect(x, y, w, h)
    c.clipPath(frame, stroke=0, fill=0)

    if data.catchments is not None:
        catchments = _path(c, tf, [data.catchments], tol)
        c.setFillColor(CATCHMENT)
        c.drawPath(catchments, stroke=0, fill=1, fillMode=0)
    if data.cells:
        _hatched(c, tf, data.cells, x, y, w, h, CELL_CLOSE_PT / tf.scale)
    c.setStrokeColor(LINE_GREY)
    c.setLineWidth(0.35)
    _stroke(c, tf, [g for g, _ in data.small_areas], tol)
    if data.catchments is not None:
        c.setStrokeColor(CATCHMENT_EDGE)
        c.setLineWidth(0.6)
        c.setDash(2.5, 1.5)
        c.drawPath(catchments, stroke=1, fill=0)
        c.setDash()
    if data.neighbours:  # dim everything outside the district
        c.setFillColor(DIM)
        c.setStrokeColor(GREY)
        c.setLineWidth(0.6)
        c.drawPath(_path(c, tf, [g for g, _ in data.neighbours], tol, close), stroke=1, fill=1,
                   fillMode=0)
    c.setStrokeColor(INK)
    c.setLineWidth(1.8)
    _stroke(c, tf, [data.district], tol, close)

    _area_labels(c, tf, data, font)
    placed = [tf.point(p.x, p.y) for p in data.salons if p.own_district]
    for p in data.shelters:
        _shelter(c, tf, _clear_of(c, tf, p, placed), font)
    for p in data.salons:
        _salon(c, tf, p, font)
    _people(c, tf, data.people, font)
    c.restoreState()

    c.setStrokeColor(INK)
    c.setLineWidth(0.8)
    c.rect(x, y, w, h, stroke=1, fill=0)
    _north_arrow(c, x + w - 22, y + h - 40, font)
    _scale_bar(c, tf, x + w - 10, y + 10, w, font, zoom)
    if data.overview is not None:
        _inset(c, data, x + 8, y + h - 8, font)
        lx, ly = x + 8, y + 8
    else:
        lx, ly = _legend_corner(tf, data, x, y, w, h)
    _legend(c, data, lx, ly, font)


# --- geometry to paths --------------------------------------------------------------------------

def _rings(geoms, tol, clip, close=0.0):
    """Rings of the polygons in ``geoms`` as drawn: clipped to the frame, simplified by ``tol``
    and, when ``close`` (metres) is set, generalised to the map's scale: gaps narrower than
    2 × ``close`` are closed and holes smaller than (4 × ``close``)² dropped. Census boundaries
    leave slivers between small areas that would print as stray strokes and white cracks."""
    for g in geoms:
        if g is None or g.is_empty:
            continue
        if clip is not None:  # only what shows in the frame (and a little beyond)
            g = shapely.clip_by_rect(g, *clip)
        if tol:
            g = shapely.simplify(g, tol, preserve_topology=True)
        if close and not g.is_empty:
            g = g.buffer(close, join_style="mitre").buffer(-close, join_style="mitre")
        for poly in getattr(g, "geoms", [g]):
            if poly.is_empty or poly.geom_type != "Polygon":
                continue
            yield shapely.get_coordinates(poly.exterior)
            for hole in poly.interiors:
                if close and shapely.Polygon(hole).area < 16 * close * close:
                    continue
                yield shapely.get_coordinates(hole)


def _path(c, tf, geoms, tol, close=0.0):
    """A ReportLab path of the rings. The operators are formatted a ring at a time (one
    ``%`` over the whole coordinate array) instead of one ``lineTo`` call per vertex: the same
    PDF operators, a fifth of the time on a city's worth of maps."""
    path = c.beginPath()
    for ring in _rings(geoms, tol, tf.clip, close):
        pts = tf.xy(ring)
        if len(pts) < 2:
            continue
        path.moveTo(*pts[0])
        path._code.append(_LINE_TO * (len(pts) - 1) % tuple(pts[1:].ravel().tolist()))
        path.close()
    return path


_LINE_TO = "%.2f %.2f l\n"


def _fill(c, tf, geoms, tol, close=0.0):
    c.drawPath(_path(c, tf, geoms, tol, close), stroke=0, fill=1, fillMode=0)


def _stroke(c, tf, geoms, tol, close=0.0):
    c.drawPath(_path(c, tf, geoms, tol, close), stroke=1, fill=0)


def _hatched(c, tf, cells, x, y, w, h, close):
    """Uncovered cells: a light fill and diagonal hatching clipped to the cells."""
    c.saveState()
    path = _path(c, tf, cells, 0.0, close)
    c.setFillColor(CELL)
    c.clipPath(path, stroke=0, fill=1, fillMode=0)
    c.setStrokeColor(CELL_HATCH)
    c.setLineWidth(0.5)
    lines = c.beginPath()
    step = 3.2
    k = 0.0
    while k < w + h:
        lines.moveTo(x + k, y)
        lines.lineTo(x + k - h, y + h)
        k += step
    c.drawPath(lines, stroke=1, fill=0)
    c.restoreState()


# --- symbols and labels --------------------------------------------------------------------------

def _salon(c, tf, p: MapPoint, font):
    px, py = tf.point(p.x, p.y)
    if not p.own_district:
        c.setFillColor(GREY if p.special else white)
        c.setStrokeColor(GREY)
        c.setLineWidth(0.6)
        c.circle(px, py, 2.6, stroke=1, fill=1)
        return
    c.setLineWidth(1.0)
    c.setStrokeColor(SALON)
    c.setFillColor(SALON if p.special else white)
    c.circle(px, py, 6.5, stroke=1, fill=1)
    c.setFillColor(white if p.special else SALON)
    c.setFont(font, 7.5)
    c.drawCentredString(px, py - 2.6, p.label)


def _shelter(c, tf, p: MapPoint, font):
    px, py = tf.point(p.x, p.y)
    if not p.own_district:
        c.setStrokeColor(GREY)
        c.setFillColor(GREY if p.special else white)
        c.setLineWidth(0.6)
        c.rect(px - 2.6, py - 2.6, 5.2, 5.2, stroke=1, fill=1)
        return
    s = 12.0
    c.setLineWidth(1.1)
    c.setStrokeColor(black)
    c.setFillColor(black if p.special else white)
    c.rect(px - s / 2, py - s / 2, s, s, stroke=1, fill=1)
    c.setFillColor(white if p.special else black)
    c.setFont(font, 8)
    c.drawCentredString(px, py - 2.8, p.label)


#: Where a shelter symbol goes when its place is taken (points, tried in order).
_NUDGES = ((0, 0), (11, 11), (-11, 11), (11, -11), (-11, -11), (22, 0), (-22, 0), (0, 22), (0, -22),
           (22, 22), (-22, 22), (22, -22), (-22, -22))


def _clear_of(c, tf, p: MapPoint, placed: list[tuple[float, float]]) -> MapPoint:
    """Move a shelter symbol off the symbols already placed (a salon held in the shelter
    building, two shelters in one school), with a leader line to its true place. ``placed``
    grows with the symbol's final position."""
    px, py = tf.point(p.x, p.y)
    if not p.own_district:
        return p
    for dx, dy in _NUDGES:
        qx, qy = px + dx, py + dy
        if not any(math.hypot(qx - ox, qy - oy) < 13 for ox, oy in placed):
            break
    placed.append((qx, qy))
    if (qx, qy) == (px, py):
        return p
    c.setStrokeColor(black)
    c.setLineWidth(0.8)
    c.line(px, py, qx, qy)
    c.setFillColor(black)
    c.circle(px, py, 1.4, stroke=0, fill=1)
    return MapPoint((qx - tf.ox) / tf.scale, (qy - tf.oy) / tf.scale, p.label, p.own_district,
                    p.special)


def _halo_text(c, x, y, text, font, size, color, centred=True):
    """Text with a white outline so it stays legible over lines and fills."""
    text = safe_text(text)
    width = c.stringWidth(text, font, size)
    x0 = x - width / 2 if centred else x
    c.saveState()  # the render mode is graphics state: keep it inside q … Q
    t = c.beginText(x0, y)
    t.setFont(font, size)
    t.setTextRenderMode(1)  # outline only: the halo
    c.setStrokeColor(white)
    c.setLineWidth(2.2)
    c.setLineJoin(1)
    t.textOut(text)
    c.drawText(t)
    c.restoreState()
    c.setFillColor(color)
    c.setFont(font, size)
    c.drawString(x0, y, text)


#: The smallest type on the map (points): as everywhere on a sheet.
LABEL_PT = 7.0
PERSON_R = 1.8


def _person(c, px, py, no_supporter: bool):
    """A support-needer: a dark dot; an open ring when nobody is assigned to them."""
    c.setStrokeColor(PERSON)
    c.setLineWidth(0.9)
    c.setFillColor(white if no_supporter else PERSON)
    c.circle(px, py, PERSON_R + (0.4 if no_supporter else 0), stroke=1, fill=1)


def _people(c, tf, people: list[MapPoint], font):
    """The listed support-needers with their number on the sheet (the risk order) beside them:
    right of the dot, else left, above or below, wherever it overlaps no other number or dot
    (the most urgent choose first)."""
    for p in people:
        px, py = tf.point(p.x, p.y)
        _person(c, px, py, p.special)
    placed: list[tuple[float, float, float, float]] = [
        (px - PERSON_R, py - PERSON_R, px + PERSON_R, py + PERSON_R)
        for px, py in (tf.point(p.x, p.y) for p in people)]
    labels: list[tuple[float, float, float, float]] = []
    for p in people:  # most urgent first: they get the free places
        px, py = tf.point(p.x, p.y)
        w = c.stringWidth(p.label, font, LABEL_PT)
        h = LABEL_PT * 0.8
        spots = [(px + PERSON_R + 0.8, py - h / 2 + 0.6), (px - PERSON_R - 0.8 - w, py - h / 2 + 0.6),
                 (px - w / 2, py + PERSON_R + 0.8), (px - w / 2, py - PERSON_R - 0.8 - h)]
        x0, y0 = spots[0]
        for sx, sy in spots:
            box = (sx, sy, sx + w, sy + h)
            if not any(_overlap(box, o) for o in labels) and not any(
                    _overlap(box, o) for o in placed if not _inside((px, py), o)):
                x0, y0 = sx, sy
                break
        labels.append((x0, y0, x0 + w, y0 + h))
        _halo_text(c, x0, y0, p.label, font, LABEL_PT, PERSON, centred=False)


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(pt, box) -> bool:
    return box[0] <= pt[0] <= box[2] and box[1] <= pt[1] <= box[3]


def _area_labels(c, tf, data: MapData, font):
    """Town names (大字 dropped, as on maps) where they fit inside the area's width."""
    box = shapely.box(*data.extent)
    size = LABEL_PT
    for geom, name in data.small_areas:
        if not name or geom is None or geom.is_empty:
            continue
        label = name.removeprefix("大字")
        minx, _, maxx, _ = geom.bounds
        if c.stringWidth(label, font, size) > (maxx - minx) * tf.scale * 1.1:
            continue
        pt = geom.representative_point()
        px, py = tf.point(pt.x, pt.y)
        _halo_text(c, px, py - 2, label, font, size, GREY)
    for geom, name in data.neighbours:
        part = geom.intersection(box)
        if part.is_empty or part.area < 0.04 * box.area:
            continue
        pt = part.representative_point()
        px, py = tf.point(pt.x, pt.y)
        _halo_text(c, px, py, name, font, 8, GREY)


# --- furniture -----------------------------------------------------------------------------------

def _north_arrow(c, cx, cy, font):
    c.saveState()
    c.setFillColor(white)
    c.setStrokeColor(INK)
    c.setLineWidth(0.6)
    c.circle(cx, cy + 8, 14, stroke=0, fill=1)
    p = c.beginPath()
    p.moveTo(cx, cy + 18)
    p.lineTo(cx - 6, cy - 2)
    p.lineTo(cx, cy + 3)
    p.close()
    c.setFillColor(INK)
    c.drawPath(p, stroke=1, fill=1)
    p = c.beginPath()
    p.moveTo(cx, cy + 18)
    p.lineTo(cx + 6, cy - 2)
    p.lineTo(cx, cy + 3)
    p.close()
    c.setFillColor(white)
    c.drawPath(p, stroke=1, fill=1)
    c.setFillColor(INK)
    c.setFont(font, 9)
    c.drawCentredString(cx, cy + 21, "N")
    c.restoreState()


def scale_bar_length(scale: float, width: float) -> float:
    """The nice bar length (m) closest to a fifth of the map width (``scale`` points per metre)."""
    target = width / 5 / scale
    return min(_SCALE_STEPS, key=lambda s: abs(math.log(s / target)))


def _scale_bar(c, tf, right, bottom, width, font, zoom=1.0):
    metres = scale_bar_length(tf.scale, width)
    length = metres * tf.scale
    label = f"{metres / 1000:g} km" if metres >= 1000 else f"{metres} m"
    right -= c.stringWidth(label, font, 7) / 2  # the end label stays inside the frame
    x0 = right - length
    c.saveState()
    c.setFillColor(white)
    c.rect(x0 - 8, bottom - 4, length + 14, 26, stroke=0, fill=1)
    half = length / 2
    c.setStrokeColor(INK)
    c.setLineWidth(0.6)
    c.setFillColor(INK)
    c.rect(x0, bottom + 2, half, 4, stroke=1, fill=1)
    c.setFillColor(white)
    c.rect(x0 + half, bottom + 2, half, 4, stroke=1, fill=1)
    c.setFillColor(INK)
    c.setFont(font, 7)
    c.drawCentredString(x0, bottom + 9, "0")
    c.drawCentredString(x0 + length, bottom + 9, label)
    c.drawRightString(x0 + length, bottom + 16, f"1:{scale_denominator(tf.scale, zoom):,}")
    c.restoreState()


def scale_denominator(scale: float, zoom: float = 1.0) -> int:
    """The printed scale 1:n, rounded to two digits, of a map drawn at ``scale`` points per
    metre on a page enlarged ``zoom`` times on paper."""
    denominator = 72 / 0.0254 / (scale * zoom)
    digits = 10 ** max(0, int(math.log10(denominator)) - 1)
    return int(round(denominator / digits) * digits)


LEGEND_W, LEGEND_ROW, LEGEND_ROWS = 178.0, 11.5, 9
INSET = 150.0


def _inset(c, data: MapData, left, top, font):
    """The whole district, small, with the main map's extent as a box (rural districts)."""
    ext = data.overview
    size = INSET
    c.saveState()
    c.setFillColor(white)
    c.setStrokeColor(INK)
    c.setLineWidth(0.8)
    c.rect(left, top - size - 14, size, size + 14, stroke=1, fill=1)
    c.setFillColor(INK)
    c.setFont(font, 7.5)
    c.drawString(left + 4, top - 10, "地区の全体（枠内が本図）")
    tf = _Transform(ext, left + 3, top - size - 11, size - 6, size - 6)
    frame = c.beginPath()
    frame.rect(left, top - size - 14, size, size)
    c.clipPath(frame, stroke=0, fill=0)
    tol = 0.3 / tf.scale
    if data.cells:
        c.setFillColor(CELL)
        _fill(c, tf, data.cells, tol)
    c.setStrokeColor(LINE_GREY)
    c.setLineWidth(0.4)
    _stroke(c, tf, [g for g, _ in data.neighbours], tol)
    c.setStrokeColor(INK)
    c.setLineWidth(1.0)
    _stroke(c, tf, [data.district], tol)
    x0, y0 = tf.point(data.extent[0], data.extent[1])
    x1, y1 = tf.point(data.extent[2], data.extent[3])
    c.setLineWidth(1.4)
    c.setDash(3, 1.5)
    c.rect(x0, y0, x1 - x0, y1 - y0, stroke=1, fill=0)
    c.restoreState()




def _legend_corner(tf, data: MapData, x, y, w, h) -> tuple[float, float]:
    """Lower-left or upper-left corner (the right side holds the arrow and the scale bar):
    whichever hides less of the district and fewer of its symbols."""
    lw, lh = LEGEND_W, LEGEND_ROW * len(_legend_items(data)) + 8
    best = None
    for cx, cy in ((x + 8, y + 8), (x + 8, y + h - 8 - lh)):
        box = shapely.box((cx - tf.ox) / tf.scale, (cy - tf.oy) / tf.scale,
                          (cx + lw - tf.ox) / tf.scale, (cy + lh - tf.oy) / tf.scale)
        hidden = data.district.intersection(box).area / box.area
        symbols = sum(box.contains(shapely.Point(p.x, p.y))
                      for p in (*data.salons, *data.shelters) if p.own_district)
        score = hidden + symbols
        if best is None or score < best[0]:
            best = (score, cx, cy)
    return best[1], best[2]


def _legend_items(data: MapData) -> list[tuple[str, str]]:
    items = [
        ("district", "地区の境界"),
        ("small", "町丁・字の境界"),
        ("catchment", f"サロンの徒歩圏（{data.walk_m:.0f}m、直線 約{data.radius_m:.0f}m）"),
        ("cells", "徒歩圏外で高齢者が住むところ"),
        ("salon", "サロン（月1回以上）"),
        ("salon_rare", "サロン（月1回未満）"),
        ("shelter", "指定避難所"),
        ("welfare", "福祉避難所"),
        ("other", "地区外のサロン・避難所"),
    ]
    if data.people:
        items += [("person", "要支援者（数字は名簿の No.）"), ("person_alone", "要支援者（支援者なし）")]
    return items


def _legend(c, data: MapData, x, y, font):
    items = _legend_items(data)
    row = LEGEND_ROW
    w, h = LEGEND_W, row * len(items) + 8
    c.saveState()
    c.setFillColor(white)
    c.setStrokeColor(GREY)
    c.setLineWidth(0.5)
    c.rect(x, y, w, h, stroke=1, fill=1)
    for i, (kind, label) in enumerate(items):
        cy = y + h - 9.5 - i * row
        _legend_symbol(c, kind, x + 12, cy + 2.5, font)
        c.setFillColor(INK)
        c.setFont(font, 7.5)
        c.drawString(x + 24, cy, label)
    c.restoreState()


def _legend_symbol(c, kind, cx, cy, font):
    c.saveState()
    if kind == "district":
        c.setStrokeColor(INK)
        c.setLineWidth(1.8)
        c.line(cx - 7, cy, cx + 7, cy)
    elif kind == "small":
        c.setStrokeColor(LINE_GREY)
        c.setLineWidth(0.6)
        c.line(cx - 7, cy, cx + 7, cy)
    elif kind == "catchment":
        c.setFillColor(CATCHMENT)
        c.setStrokeColor(CATCHMENT_EDGE)
        c.setDash(2.5, 1.5)
        c.setLineWidth(0.6)
        c.rect(cx - 7, cy - 4, 14, 8, stroke=1, fill=1)
    elif kind == "cells":
        c.setFillColor(CELL)
        c.rect(cx - 7, cy - 4, 14, 8, stroke=0, fill=1)
        p = c.beginPath()
        p.rect(cx - 7, cy - 4, 14, 8)
        c.clipPath(p, stroke=0, fill=0)
        c.setStrokeColor(CELL_HATCH)
        c.setLineWidth(0.5)
        for k in range(0, 30, 3):
            c.line(cx - 7 + k, cy - 4, cx - 7 + k - 8, cy + 4)
    elif kind in ("salon", "salon_rare"):
        _salon(c, _Identity(), MapPoint(cx, cy, "1", special=kind == "salon"), font)
    elif kind in ("shelter", "welfare"):
        _shelter(c, _Identity(), MapPoint(cx, cy, "A", special=kind == "welfare"), font)
    elif kind in ("person", "person_alone"):
        _person(c, cx, cy, kind == "person_alone")
    elif kind == "other":
        _salon(c, _Identity(), MapPoint(cx - 4, cy, own_district=False, special=True), font)
        _shelter(c, _Identity(), MapPoint(cx + 4, cy, own_district=False), font)
    c.restoreState()


class _Identity:
    @staticmethod
    def point(x, y):
        return x, y
