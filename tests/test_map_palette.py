"""The maps' palettes and marker shapes (issue 22: meaning not by colour alone, WCAG 1.4.1; issue 15
item 8: one palette told apart with the common colour-vision deficiencies and in greyscale): the
district map's point layers and gap kinds, and the city map's choropleth classes.

Colour-vision deficiencies are simulated with the matrices of Machado, Oliveira and Fernandes (2009),
severity 1.0 (protanopia, deuteranopia, tritanopia), applied to linear sRGB; greyscale is the
luminance Y. Distances are CIEDE2000 between the simulated colours in CIELAB (D65). ``colorspacious``
and ``colour-science`` are not installed, so the published matrices and formulas are written out
here (checked against the CIEDE2000 test data of Sharma, Wu and Dalal 2005 below).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from karte.domain import gaps
from karte.render import district_map as dm
from karte.render import overview, webmap

MACHADO = {
    "protanopia": np.array([[0.152286, 1.052583, -0.204868],
                            [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968],
                              [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779],
                            [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
VIEWS = ("normal", *MACHADO, "greyscale")
_RGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])

#: The smallest CIEDE2000 distance between two point layers of the district map, in every view
#: (about the difference of two neighbouring steps of a 7-class ColorBrewer ramp).
MIN_DE = 12.0
#: The smallest distance between the salons and the no-gap green of the register: the two greens
#: issue 15 found confusable were 12.4 apart (the salon was #43a047).
SALON_VS_NO_GAP_DE = 20.0
#: The point layers of the district map other than the register (whose categories are the gap kinds).
POINT_LAYERS = ("salons", "services", "shelters", "welfare", "cooperators")


def _linear(hex_colour: str) -> np.ndarray:
    c = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def lab(hex_colour: str, view: str = "normal") -> np.ndarray:
    """CIELAB (D65) of a colour as seen in ``view``."""
    rgb = _linear(hex_colour)
    if view == "greyscale":
        rgb = np.full(3, _RGB_TO_XYZ[1] @ rgb)
    elif view != "normal":
        rgb = np.clip(MACHADO[view] @ rgb, 0, 1)
    t = (_RGB_TO_XYZ @ rgb) / _WHITE
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def ciede2000(lab1, lab2) -> float:
    """CIEDE2000 colour difference (Sharma, Wu and Dalal 2005), kL = kC = kH = 1."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar ** 7 / (c_bar ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if c1p else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if c2p else 0.0
    dl, dc = l2 - l1, c2p - c1p
    dh = 0.0
    if c1p * c2p:
        dh = h2p - h1p
        dh = dh - 360 if dh > 180 else dh + 360 if dh < -180 else dh
    dhh = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    l_bar, cp_bar = (l1 + l2) / 2, (c1p + c2p) / 2
    if not c1p * c2p:
        h_bar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        h_bar = (h1p + h2p) / 2
    else:
        h_bar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(h_bar - 30)) + 0.24 * math.cos(math.radians(2 * h_bar))
         + 0.32 * math.cos(math.radians(3 * h_bar + 6)) - 0.20 * math.cos(math.radians(4 * h_bar - 63)))
    d_theta = 30 * math.exp(-(((h_bar - 275) / 25) ** 2))
    rc = 2 * math.sqrt(cp_bar ** 7 / (cp_bar ** 7 + 25 ** 7))
    sl = 1 + 0.015 * (l_bar - 50) ** 2 / math.sqrt(20 + (l_bar - 50) ** 2)
    sc, sh = 1 + 0.045 * cp_bar, 1 + 0.015 * cp_bar * t
    rt = -math.sin(math.radians(2 * d_theta)) * rc
    return math.sqrt((dl / sl) ** 2 + (dc / sc) ** 2 + (dhh / sh) ** 2 + rt * (dc / sc) * (dhh / sh))


@pytest.mark.parametrize(("lab1", "lab2", "expected"), [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),   # Sharma et al. pairs 1, 7, 17, 25
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
])
def test_ciede2000_matches_the_published_test_data(lab1, lab2, expected):
    assert ciede2000(lab1, lab2) == pytest.approx(expected, abs=1e-4)


def test_the_simulations_move_colours_as_published():
    """A red and a green far apart in normal vision come out close with deuteranopia (the
    confusion the simulation exists for); white stays white."""
    red, green = "#d32f2f", "#2e7d32"
    assert ciede2000(lab(red), lab(green)) > 50
    assert ciede2000(lab(red, "deuteranopia"), lab(green, "deuteranopia")) < 25
    assert lab("#ffffff", "protanopia")[0] == pytest.approx(100, abs=0.5)  # white stays white


def _fills(keys):
    return {k: dm.STYLES[k]["fillColor"] for k in keys}


@pytest.mark.parametrize("view", VIEWS)
def test_point_layers_of_the_district_map_are_told_apart_in_every_view(view):
    """Salons, other services, shelters, welfare shelters and cooperators share the district map: every
    pair at least :data:`MIN_DE` apart with each deficiency and in greyscale (issue 15: cooperators
    and shelters were light blue and blue: 4.8 with tritanopia, 0.4 in greyscale against a gap)."""
    fills = _fills(POINT_LAYERS)
    close = [(a, b, round(ciede2000(lab(fills[a], view), lab(fills[b], view)), 1))
             for a, b in itertools.combinations(fills, 2)
             if ciede2000(lab(fills[a], view), lab(fills[b], view)) < MIN_DE]
    assert not close, f"{view}: {close}"


@pytest.mark.parametrize("view", VIEWS)
def test_salons_are_not_the_green_of_no_gap(view):
    """Issue 15: 空白なし (green) and salons (green) were confusable. The salon fill is apart from
    the no-gap green in every view (and the shapes differ: house and circle)."""
    d = ciede2000(lab(dm.STYLES["salons"]["fillColor"], view), lab(gaps.NO_GAP.colour, view))
    assert d >= SALON_VS_NO_GAP_DE, (view, round(d, 1))


#: The register's marker categories: every gap kind and "no gap" (the at-risk summary is not drawn).
DRAWN_KINDS = (*gaps.GAP_KINDS, gaps.NO_GAP)


def test_every_point_category_has_its_own_shape():
    """Shape besides colour (WCAG 1.4.1): every point layer and every gap kind of the register has
    a marker shape no other point category of the district map has; the shapes exist."""
    shapes = {k: dm.STYLES[k]["shape"] for k in POINT_LAYERS}
    shapes |= {f"register:{k.key}": k.shape for k in DRAWN_KINDS}
    assert set(dm.GAP_SHAPE) == {k for k, _, _ in dm.GAP_STYLE}, "a gap kind without a shape"
    assert all(shapes.values()), {k: v for k, v in shapes.items() if not v}
    assert set(shapes.values()) <= set(webmap.SHAPES)
    doubled = [s for s in set(shapes.values()) if list(shapes.values()).count(s) > 1]
    assert not doubled, {k: v for k, v in shapes.items() if v in doubled}
    assert dm.STYLES["welfare"]["shape"] != dm.STYLES["shelters"]["shape"]
    assert dm.STYLES["cooperators"]["shape"] != dm.STYLES["shelters"]["shape"]


def test_the_legend_draws_each_marker_as_on_the_map():
    """The legend's swatch of a point layer is its marker: same shape, same fill (the welfare
    shelter's swatch was white)."""
    html = webmap.legend_html("", [({**dm.STYLES["welfare"]}, "福祉避難所"),
                                   ({**dm.STYLES["shelters"]}, "指定避難所"), ("#66bb6a", "徒歩圏")])
    assert html.count("<svg") == 2
    assert f'fill="{dm.STYLES["welfare"]["fillColor"]}"' in html
    assert 'fill="#ffffff"' not in html
    square = webmap.shape_svg({**dm.STYLES["shelters"]})
    cross = webmap.shape_svg({**dm.STYLES["welfare"]})
    assert square.count("L") == 3 and cross.count("L") == 11  # 4 and 12 corners
    assert "<circle" in webmap.shape_svg({"fillColor": "#000000"})


def test_the_personal_legend_carries_the_marker_styles():
    overlay = dm.personal_overlay(
        register=[{"x": 0.0, "y": 0.0, "name": "a", "no_supporter": True},
                  {"x": 10.0, "y": 0.0, "name": "b"}],
        cooperators=[{"x": 5.0, "y": 5.0, "name": "c", "role": "commissioner"}])
    legend = dict((label, style) for style, label in overlay["legend"])
    assert legend["要支援者: 支援者が決まっていない"]["shape"] == "triangle"
    assert legend["要支援者: 空白なし"]["shape"] == "circle"
    assert legend["共助協力者（星）"]["shape"] == "star"
    register = next(layer for layer in overlay["layers"] if layer["name"] == dm.LAYER_NAMES["register"])
    assert register["styles"]["no_supporter"]["fillColor"] == gaps.BY_KEY["no_supporter"].colour


def test_the_district_map_draws_small_areas_with_named_labels():
    """Issue 15 item 8: with no tiles the district map had nothing to orient by; it can draw the
    district's small areas (町丁・字) as outlines named by 14 px labels on a halo (labels that give
    way to each other in the browser), in their own layer of the layer control."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    metric = "EPSG:6678"
    district = gpd.GeoDataFrame({"district_name": ["テスト地区"]}, geometry=[box(0, 0, 2000, 1000)],
                                crs=metric)
    small = gpd.GeoDataFrame({"name": ["大字一", "大字二<b>"]},
                             geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)], crs=metric)
    empty_points = gpd.GeoDataFrame({"name": [], "kind": []}, geometry=[], crs=metric)
    shelters = gpd.GeoDataFrame({"name": ["避難所"], "welfare": [True]}, geometry=[Point(500, 500)],
                                crs=metric)
    m = dm.district_map(district=district, catchments=empty_points.iloc[:0], coverage=empty_points.iloc[:0],
                        services=empty_points, shelters=shelters, small_areas=small,
                        asset_base="assets", basemap="none")
    parts = webmap.map_parts(m)
    page = parts.html + parts.script
    assert page.count("karte-label karte-small-area") == 2
    assert "大字一" in page and "大字二\\u0026lt;b\\u0026gt;" in page  # escaped once, as text
    assert "大字二\\u003cb" not in page and "大字二<b>" not in page
    assert "font:14px" in page and "text-shadow" in page
    assert dm.LAYER_NAMES["small_areas"] in page
    without = dm.district_map(district=district, catchments=empty_points.iloc[:0],
                              coverage=empty_points.iloc[:0], services=empty_points, shelters=shelters,
                              asset_base="assets", basemap="none").get_root().render()
    assert "karte-small-area" not in without


def test_the_gap_kinds_shapes_are_the_registrys_and_told_apart():
    """The marker shape of a gap kind lives in its registry entry (adding a kind touches the analysis
    and :mod:`karte.domain.gaps` only): every kind and "no gap" has a shape the web map can draw, no two
    the same, and the district map's marker styles, static and personal overlay, use exactly it."""
    shapes = [k.shape for k in DRAWN_KINDS]
    assert all(shapes) and set(shapes) <= set(webmap.SHAPES), shapes
    assert len(set(shapes)) == len(shapes), shapes
    assert {k.key: k.shape for k in DRAWN_KINDS} == dm.GAP_SHAPE
    for styles in (dm.register_styles(), dm.register_styles(fillOpacity=1)):
        assert {k: s["shape"] for k, s in styles.items()} == {k.key: k.shape for k in DRAWN_KINDS}
        assert {k: s["fillColor"] for k, s in styles.items()} == {k.key: k.colour for k in DRAWN_KINDS}
    rows = [{"x": float(i), "y": 0.0, "name": k.key, **({k.key: True} if k is not gaps.NO_GAP else {})}
            for i, k in enumerate(DRAWN_KINDS)]
    overlay = dm.personal_overlay(register=rows, cooperators=None)
    layer = overlay["layers"][0]
    assert [f["properties"]["k"] for f in layer["geojson"]["features"]] == [k.key for k in DRAWN_KINDS]
    assert {k: s["shape"] for k, s in layer["styles"].items()} == {k.key: k.shape for k in DRAWN_KINDS}
    legend = {label: style["shape"] for style, label in overlay["legend"]}
    assert legend == {f"要支援者: {k.short_label}": k.shape for k in DRAWN_KINDS}


# --- the city map's choropleth classes ------------------------------------------------------------

#: The smallest CIEDE2000 distance between two neighbouring classes of a choropleth, in every view.
#: Ten because: a district is a large filled area beside its neighbours, which needs less difference
#: than the small point markers above (:data:`MIN_DE`, 12); but a reader matches a district to its
#: legend swatch by memory, through the fill's 65 % opacity over the base map, on an uncalibrated
#: screen or a greyscale print, which needs several times the just-noticeable difference of side-by-side
#: patches (about 1). ColorBrewer's 5-class ramps fail it (YlOrRd 5: 8.6 apart in greyscale, YlGn 5:
#: 7.1; see :func:`test_the_class_check_fails_colorbrewers_five_class_ramps`); the best five of a
#: 9-class ramp pass it (YlOrRd 9: 10.9, YlGnBu 9: 14.0). Greyscale leaves little room above it: five
#: greys in equal CIEDE2000 steps of 12 already take L* from 98 down to about 38.
MIN_CLASS_DE = 10.0
#: ColorBrewer's 5-class YlOrRd and YlGn: the city map's ramps before issue 15 item 8.
OLD_RAMPS = {"YlOrRd 5": ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"),
             "YlGn 5": ("#ffffcc", "#c2e699", "#78c679", "#31a354", "#006837")}


def _lightness(palette, view) -> list[float]:
    return [round(float(lab(c, view)[0]), 2) for c in palette]


def _close_neighbours(palette, view, minimum=MIN_CLASS_DE) -> list[tuple]:
    """(classes, colours, distance) of each pair of neighbouring classes under ``minimum`` in ``view``,
    for every class count the city map can draw with ``palette`` (2 to its length: ties merge classes)."""
    close = []
    for n in range(2, len(palette) + 1):
        colours = overview.class_colours(n, palette)
        assert len(colours) == n
        for a, b in itertools.pairwise(colours):
            d = ciede2000(lab(a, view), lab(b, view))
            if d < minimum:
                close.append((n, a, b, round(d, 1)))
    return close


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("measure", sorted(overview.MEASURES))
def test_every_choropleth_palette_runs_light_to_dark_in_every_view(measure, view):
    """More of a measure is darker, as seen with each deficiency and in greyscale too: the lightness
    (CIELAB L*, i.e. the luminance) of each palette falls strictly from class to class."""
    palette = overview.MEASURES[measure].palette
    assert len(palette) >= 2
    lightness = _lightness(palette, view)
    assert all(a > b for a, b in itertools.pairwise(lightness)), (measure, view, lightness)


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("measure", sorted(overview.MEASURES))
def test_neighbouring_choropleth_classes_are_told_apart_in_every_view(measure, view):
    """Neighbouring classes as the city map draws them (:func:`karte.render.overview.class_colours`
    for every class count) are at least :data:`MIN_CLASS_DE` apart with each deficiency and in
    greyscale."""
    close = _close_neighbours(overview.MEASURES[measure].palette, view)
    assert not close, f"{measure}, {view}: {close}"


@pytest.mark.parametrize("view", VIEWS)
def test_the_outreach_ranking_classes_are_told_apart_in_every_view(view):
    """The outreach map colours its five quantile classes with :data:`karte.render.outreach_map.REDS`
    directly: the same two rules as the city map's ramps."""
    from karte.render.outreach_map import REDS

    lightness = _lightness(REDS, view)
    assert all(a > b for a, b in itertools.pairwise(lightness)), (view, lightness)
    close = [(a, b) for a, b in itertools.pairwise(REDS)
             if ciede2000(lab(a, view), lab(b, view)) < MIN_CLASS_DE]
    assert not close, (view, close)


def test_the_palettes_are_the_ones_the_city_map_uses():
    """Every measure draws one of the two ramps (more is worse, more is better: coverage)."""
    assert {m.palette for m in overview.MEASURES.values()} == {tuple(overview.PALETTE),
                                                               tuple(overview.PALETTE_GOOD)}
    assert overview.MEASURES["coverage"].palette == tuple(overview.PALETTE_GOOD)
    assert overview.class_colours(5, overview.PALETTE) == list(overview.PALETTE)
    assert overview.class_colours(2, overview.PALETTE) == [overview.PALETTE[0], overview.PALETTE[-1]]


def test_the_class_check_fails_colorbrewers_five_class_ramps():
    """The check has teeth: the ramps the city map had (ColorBrewer 5-class) pass it in normal vision
    and run light to dark in every view, but fail it in greyscale, and YlGn also with protanopia and
    deuteranopia."""
    for name, ramp in OLD_RAMPS.items():
        assert _close_neighbours(ramp, "greyscale"), name
        assert not _close_neighbours(ramp, "normal"), name  # in normal vision they pass
        for view in VIEWS:
            assert all(a > b for a, b in itertools.pairwise(_lightness(ramp, view))), (name, view)
    assert _close_neighbours(OLD_RAMPS["YlGn 5"], "protanopia")
    assert _close_neighbours(OLD_RAMPS["YlGn 5"], "deuteranopia")
    # and a ramp out of order is caught by the lightness test's comparison
    swapped = list(overview.PALETTE)
    swapped[1], swapped[2] = swapped[2], swapped[1]
    assert not all(a > b for a, b in itertools.pairwise(_lightness(swapped, "greyscale")))


def test_a_map_drawn_twice_is_the_same_text_and_another_map_is_not():
    """folium names each element with a random id; the parts name them from the map itself, so
    a server process that draws the same map (another worker, a restart) sends the same script
    the page names, and a browser may keep it by its version."""
    import re

    import geopandas as gpd
    from shapely.geometry import Point, box

    metric = "EPSG:6678"

    def draw(name: str) -> webmap.MapParts:
        district = gpd.GeoDataFrame({"district_name": [name]}, geometry=[box(0, 0, 2000, 1000)], crs=metric)
        shelters = gpd.GeoDataFrame({"name": ["避難所"], "welfare": [True]}, geometry=[Point(500, 500)],
                                    crs=metric)
        points = gpd.GeoDataFrame({"name": [], "kind": []}, geometry=[], crs=metric)
        return webmap.map_parts(dm.district_map(district=district, catchments=points.iloc[:0],
                                                coverage=points.iloc[:0], services=points, shelters=shelters,
                                                asset_base="assets", basemap="none"))

    first, again, other = draw("テスト地区"), draw("テスト地区"), draw("べつの地区")
    assert first == again and len(first.version) == 16
    assert not re.search(r"[0-9a-f]{32}", first.header + first.html + first.script)  # no random id left
    assert f'id="{first.map_id}"' in first.html and first.map_id in first.script
    assert first.control_id and first.control_id in first.script
    assert other.map_id != first.map_id and other.version != first.version


def test_the_colour_the_popup_and_the_table_read_a_gap_flag_alike():
    """One rule for a set gap flag (karte.domain.gaps.is_set): whatever the flags hold (booleans,
    numbers, text read back from a file, missing values), a person's colour is the first kind the
    popup and the table list, and the map's tooltip names that kind."""
    import itertools

    import pandas as pd

    values = [True, False, None, float("nan"), pd.NA, "true", "false", "yes", "1", "0", 1, 0]
    kinds = [k.key for k in gaps.by_priority()][:3]
    for combo in itertools.product(values, repeat=len(kinds)):
        row = dict(zip(kinds, combo, strict=True))
        key, labels = dm.gap_summary(row)
        assert key == gaps.primary_gap(row).key, row
        assert labels[:1] == ([dm.GAP_LABEL[key]] if key != gaps.NO_GAP.key else []), row
        popup = dm._person_popup({**row, "name": "x"})
        assert ("空白: " + ("、".join(labels) if labels else "なし")) in popup, row
