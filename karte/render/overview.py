"""The city overview web map: districts coloured by a measure, with names, salons and shelters.

:func:`choropleth_map` draws any per-district measure (the web's city page lets the user choose
salon coverage, one evacuation-gap kind's rate or the ageing rate); :func:`overview_map` is the ageing
rate map that ``karte demo`` writes to ``overview.html``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import MacroElement
from folium.utilities import JsCode
from jinja2 import Template

from karte.domain.gaps import GAP_KINDS
from karte.render.district_map import LABEL_CSS, LAYER_NAMES, STYLES
from karte.render.webmap import Basemap, copy_assets, for_web, legend_html, offline_map, point_layer

#: The city map's class colours, light to dark (issue 15 item 8): every ramp's lightness falls at
#: every step with protanopia, deuteranopia, tritanopia and in greyscale, and neighbouring classes
#: (as :func:`class_colours` picks them for 2 to 5 classes) are at least 10 CIEDE2000 apart in each
#: of those views (``tests/test_map_palette.py``). ColorBrewer's own 5-class ramps are not (their
#: first steps are 7 to 9 apart in greyscale), so five of the 9-class ramp are taken, spread for
#: equal steps as seen without colour.
#: More is worse: ColorBrewer YlOrRd 9, classes 1, 4, 6, 8 and 9.
PALETTE = ["#ffffcc", "#feb24c", "#fc4e2a", "#bd0026", "#800026"]
#: More is better (coverage): ColorBrewer YlGnBu 9, classes 1, 4, 6, 7 and 9 (the YlGn ramp it
#: replaces came to 7 apart in greyscale; no five of YlGn 9 reach 10 with a margin).
PALETTE_GOOD = ["#ffffd9", "#7fcdbb", "#1d91c0", "#225ea8", "#081d58"]
#: Districts with no figure, or a figure suppressed for the viewer.
NO_DATA = "#cccccc"
#: Simplification (metres) and coordinate decimals of the city map (4 decimals ≈ 10 m).
TOLERANCE_M = 25.0
DECIMALS = 4


@dataclass(frozen=True)
class Measure:
    """A per-district measure the city map can show."""

    key: str
    label: str           #: Japanese name, as in the chooser and the legend title
    palette: tuple[str, ...]
    note: str = ""       #: one line under the legend title (what is counted, over what)
    gap: str | None = None  #: the gap kind mapped (:data:`karte.domain.gaps.GAP_KINDS`), if any


#: The gap kind the city map shows by default, and the measure key that shows it (``gap_rate``:
#: the key of the old any-gap map, so that old links keep working).
DEFAULT_GAP = "no_supporter"
#: The denominator of every gap measure (the legend's note says it).
GAP_NOTE = "分母は地区の要支援者全員（名簿提供の同意の有無を問わない）"


def gap_measure_key(kind: str) -> str:
    """The city page's measure key of gap kind ``kind``: ``gap_rate`` for :data:`DEFAULT_GAP`,
    ``gap_<kind>`` for the others."""
    return "gap_rate" if kind == DEFAULT_GAP else f"gap_{kind}"


def _gap_measures() -> dict[str, Measure]:
    kinds = sorted(GAP_KINDS, key=lambda k: (k.key != DEFAULT_GAP, GAP_KINDS.index(k)))
    return {gap_measure_key(k.key): Measure(
                gap_measure_key(k.key), f"避難支援の空白：{k.short_label}", tuple(PALETTE),
                f"「{k.short_label}」に当たる要支援者の割合。{GAP_NOTE}", gap=k.key)
            for k in kinds}


MEASURES = {
    "coverage": Measure("coverage", "サロン徒歩圏カバー率（65歳以上）", tuple(PALETTE_GOOD),
                        "月1回以上のサロンから徒歩圏内に住む高齢者の割合（推計）"),
    **_gap_measures(),
    "ageing": Measure("ageing", "高齢化率（65歳以上）", tuple(PALETTE),
                      "年齢が分かる人口に占める65歳以上の割合"),
}


def classify(values: pd.Series, k: int = 5) -> tuple[np.ndarray, list[float]]:
    """Quantile classes 0..k-1 and the class breaks (null values get -1)."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    breaks = list(np.nanquantile(v, np.linspace(0, 1, k + 1))) if v.notna().any() else [0.0] * (k + 1)
    cls = np.full(len(v), -1)
    ok = v.notna().to_numpy()
    cls[ok] = np.clip(np.searchsorted(breaks[1:-1], v[ok].to_numpy(), side="right"), 0, k - 1)
    return cls, breaks


def spread_classes(values: pd.Series, k: int = 5) -> tuple[np.ndarray, list[float]]:
    """Quantile classes that separate districts: as :func:`classify`, but equal quantiles (ties)
    merge, so there are at most ``k`` classes and never an empty range or a tie pushed into the
    top class. Returns the class of each value (-1 for null) and the ``n + 1`` breaks of the
    ``n`` classes."""
    v = pd.to_numeric(values, errors="coerce").astype(float)
    cls = np.full(len(v), -1)
    ok = v.notna().to_numpy()
    if not ok.any():
        return cls, []
    breaks = sorted({float(b) for b in np.nanquantile(v, np.linspace(0, 1, k + 1))})
    if len(breaks) == 1:
        cls[ok] = 0
        return cls, [breaks[0], breaks[0]]
    n = len(breaks) - 1
    cls[ok] = np.clip(np.searchsorted(breaks[1:-1], v[ok].to_numpy(), side="right"), 0, n - 1)
    return cls, breaks


def class_colours(n: int, palette: Sequence[str]) -> list[str]:
    """``n`` colours spread over ``palette`` (light to dark), the first and last kept."""
    if n <= 1:
        return [palette[0]] * max(n, 0)
    return [palette[round(i * (len(palette) - 1) / (n - 1))] for i in range(n)]


def choropleth_map(
    districts: gpd.GeoDataFrame,
    *,
    value: str,
    title: str,
    tooltip: Sequence[tuple[str, str]],
    palette: Sequence[str] = PALETTE,
    notes: Sequence[str] = (),
    salons: gpd.GeoDataFrame | None = None,
    shelters: gpd.GeoDataFrame | None = None,
    link: str | None = None,
    asset_base: str,
    basemap: str | Basemap = "gsi_pale",
    prefer_canvas: bool = True,
) -> folium.Map:
    """Districts coloured by quantile classes of ``value`` (:func:`spread_classes`: ties merge, so
    every class in the legend holds districts; the legend gives each range its number of
    districts), with names, salons and shelters.

    Parameters
    ----------
    districts
        EPSG:6678 polygons with ``district_code``, ``district_name``, the numeric ``value`` column
        (NaN or text such as ``"秘匿"`` is drawn grey as "no figure") and the ``tooltip`` columns.
    tooltip
        (column, Japanese label) pairs shown on hover; values are HTML-escaped here.
    link
        A URL template with ``{code}`` (e.g. ``/districts/{code}``): a click on a district opens it.
    salons, shelters
        Points (EPSG:6678) with ``name``; shelters with a boolean ``welfare``.
    """
    d = districts.copy()
    numeric = pd.to_numeric(d[value].where(d[value].map(lambda v: not isinstance(v, str))),
                            errors="coerce")
    cls, breaks = spread_classes(numeric, k=len(palette))
    colours = class_colours(len(breaks) - 1, palette)
    d["fill"] = [colours[c] if c >= 0 else NO_DATA for c in cls]
    d["tip"] = [_tip_html(row, tooltip) for _, row in d.iterrows()]
    keep = ["district_code", "district_name", "fill", "tip", "geometry"]
    if link:
        d["url"] = [link.format(code=c) for c in d["district_code"]]
        keep.append("url")
    web = for_web(d[keep], close_gaps_m=60, tolerance_m=TOLERANCE_M, decimals=DECIMALS)

    m = offline_map(web.total_bounds, asset_base=asset_base, basemap=basemap,
                    prefer_canvas=prefer_canvas)
    folium.GeoJson(
        web.to_json(),
        name=f"地区（{title}）",
        style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#333",
                                  "weight": 1, "fillOpacity": 0.65},
        highlight_function=lambda f: {"weight": 3},
        tooltip=folium.GeoJsonTooltip(["tip"], labels=False),
        on_each_feature=JsCode(_OPEN_URL) if link else None,
    ).add_to(m)

    labels = folium.FeatureGroup(name="地区名", show=True)
    small = (d.geometry.area < SMALL_LABEL_M2).to_numpy()
    for row, is_small in zip(web.itertuples(), small, strict=True):
        p = row.geometry.representative_point()
        folium.Marker(
            [p.y, p.x],
            icon=folium.DivIcon(class_name="karte-label" + (" karte-label-small" if is_small else ""),
                                icon_size=(1, 1),
                                html=f'<div style="{LABEL_CSS}">'
                                     f'{html.escape(row.district_name.replace("（仮）", ""))}</div>'),
        ).add_to(labels)
    labels.add_to(m)
    m.add_child(_SmallLabels())

    if salons is not None:
        point_layer(m, _points_geojson, salons, "サロン",
                    styles={"s": {"color": "#263238", "fillColor": "#ffffff", "radius": 4, "weight": 1.5}},
                    tip=lambda r: html.escape(str(r["name"])))
    if shelters is not None:
        point_layer(m, _points_geojson, shelters, LAYER_NAMES["shelters"], show=False,
                    styles={"w": STYLES["welfare"], "s": STYLES["shelters"]},  # as on the district map
                    style_of=lambda r: "w" if bool(r["welfare"]) else "s",
                    tip=lambda r: html.escape(str(r["name"])) + ("（福祉避難所）" if bool(r["welfare"])
                                                                else ""))
    folium.LayerControl(collapsed=False).add_to(m)

    items = [(colours[i], f"{breaks[i]:.1%} 〜 {breaks[i + 1]:.1%}（{int((cls == i).sum())}地区）")
             for i in range(len(colours))]
    if (cls < 0).any():
        items.append((NO_DATA, f"秘匿・データなし（{int((cls < 0).sum())}地区）"))
    legend = html.escape(title) + "".join(  # notes at the legend's own 14 px, not smaller
        f'<br><span style="font-weight:normal">{html.escape(n)}</span>' for n in notes)
    m.get_root().html.add_child(folium.Element(legend_html(legend, items)))
    return m


#: Districts smaller than this (m²) are named only from zoom level LABEL_ZOOM (the city centre's
#: names would pile up at the city's zoom).
SMALL_LABEL_M2 = 6e6
LABEL_ZOOM = 13


class _SmallLabels(MacroElement):
    """Hide the small districts' names below :data:`LABEL_ZOOM` (a class on the map's div)."""

    _template = Template("""
        {% macro header(this, kwargs) %}
        <style>.karte-zoomed-out .karte-label-small { display: none; }</style>
        {% endmacro %}
        {% macro script(this, kwargs) %}
        (function(map) {
            function mark() {
                map.getContainer().classList.toggle("karte-zoomed-out", map.getZoom() < {{ this.zoom }});
            }
            map.on("zoomend", mark);
            map.whenReady(mark);
        })({{ this._parent.get_name() }});
        {% endmacro %}
    """)

    def __init__(self, zoom: int = LABEL_ZOOM):
        super().__init__()
        self._name = "SmallLabels"
        self.zoom = int(zoom)


#: Leaflet: a click on a district feature opens its page.
_OPEN_URL = """function(feature, layer) {
    layer.on("click", function() { window.location.href = feature.properties.url; });
}"""


def _points_geojson(frame: gpd.GeoDataFrame) -> dict:
    return json.loads(for_web(frame, tolerance_m=0, decimals=5).to_json())


def _tip_html(row: pd.Series, fields: Sequence[tuple[str, str]]) -> str:
    return "<br>".join(f"<b>{html.escape(label)}</b> {html.escape(_text(row.get(col)))}"
                       for col, label in fields)


def _text(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return str(v)


def standin_note(districts: pd.DataFrame) -> list[str]:
    """The legend note when the districts are the stand-in ones (names start with （仮）)."""
    if districts["district_name"].astype(str).str.startswith("（仮）").any():
        return ["※地区割りは代替（仮）: 実際の地区社協の区域ではありません"]
    return []


def overview_map(
    districts: gpd.GeoDataFrame,
    stats: pd.DataFrame,
    services: gpd.GeoDataFrame,
    shelters: gpd.GeoDataFrame,
    *,
    asset_base: str,
    basemap: str | Basemap = "gsi_pale",
    synthetic: bool = True,
) -> folium.Map:
    """Districts coloured by ageing rate (高齢化率), with names, salons and shelters."""
    d = districts.merge(stats, left_on="district_code", right_index=True, how="left")
    d["ageing_rate"] = d["elderly"].astype(float) / d["age_known"].astype(float)
    d["rate_text"] = d["ageing_rate"].map(lambda r: "—" if pd.isna(r) else f"{r:.1%}")
    d["pop_text"] = d["population"].map(lambda p: "—" if pd.isna(p) else f"{int(p):,}人")
    notes = ["※年齢構成は合成データ（デモ）"] if synthetic else []
    m = choropleth_map(
        d, value="ageing_rate", title="高齢化率（65歳以上）",
        tooltip=[("district_code", "地区コード"), ("district_name", "地区名"), ("pop_text", "人口"),
                 ("rate_text", "高齢化率")],
        notes=notes + standin_note(districts),
        salons=services[services["kind"] == "salon"], shelters=shelters,
        asset_base=asset_base, basemap=basemap,
    )
    m.get_root().header.add_child(folium.Element(
        '<meta charset="utf-8"><title>青森市 地区カルテ 全体図</title>'))
    return m


def write_overview(path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    copy_assets(path.parent)
    m = overview_map(asset_base="assets/leaflet", **kwargs)
    m.save(str(path))
    return path
