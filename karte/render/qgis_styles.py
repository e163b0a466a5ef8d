"""QGIS styles of the store's layers: one QML and one SLD 1.1 (Symbology Encoding) per layer, drawn
as the web draws it, for the ``layer_styles`` table of the GeoPackage (:mod:`karte.store.gpkg_styles`).

Pure: handed what the file holds (:class:`LayerInfo`) and the districts' ageing rates, returns text.
The colours are the web's own: the city map's classes (:data:`karte.render.overview.PALETTE`), the
gap kinds (:mod:`karte.domain.gaps`), the district map's layers (:data:`WEB`), the supporters map
and the sheets' greys, so one palette serves the product. The districts are the city map's
choropleth (高齢化率, quantile classes as on ``overview.html``: a graduated renderer on the rates of
the build, with the web's legend); shelters tell welfare shelters apart (categorized); the register
is categorized by the first gap that its own row shows. Labels are Japanese (district and place
names, with a white halo). A style holds codes and public names only: never a personal value.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from karte.domain import gaps
from karte.domain.layers import LAYERS, PERSONAL_LAYERS, Layer
from karte.domain.schema import STANDIN_PREFIX, Consent, PlanStatus
from karte.render import district_map, overview, sheet_map, supporters_map

#: The ``styleName`` of every style karte writes (QGIS lists it under the layer's styles).
STYLE_NAME = "karte"
#: QGIS version the QML and project say they were written for (read by every QGIS 3).
QGIS_VERSION = "3.28.0-Firenze"
#: The first line of a QML or a project file.
DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
#: Millimetres per CSS pixel (96 dpi): the web's widths and radii in QGIS units.
MM_PER_PX = 25.4 / 96
#: Font of the labels (QGIS falls back to a Japanese system font when it is missing).
FONT = "Noto Sans CJK JP"

#: The district web map's layer styles (what :func:`karte.render.district_map.district_map` draws with).
WEB = district_map.STYLES
#: The city map's district outline and fill opacity (:func:`karte.render.overview.choropleth_map`).
CITY_OUTLINE = {"color": "#333333", "weight": 1, "fillOpacity": 0.65}


@dataclass(frozen=True)
class LayerInfo:
    """What the styles need to know of one layer of the file."""

    name: str
    geometry_column: str
    geometry_type: str                     #: GeoPackage type name: POINT, MULTIPOLYGON…
    columns: tuple[str, ...] = ()
    extent: tuple[float, float, float, float] | None = None   #: EPSG:6678 (xmin, ymin, xmax, ymax)

    @property
    def is_point(self) -> bool:
        return "POINT" in self.geometry_type.upper()


@dataclass(frozen=True)
class LayerStyle:
    """One row of ``layer_styles``: the QML and SLD of one layer, and how the project shows it."""

    layer: str
    geometry_column: str
    title: str          #: the layer's name in QGIS's layer panel (Japanese)
    renderer: str       #: the QML renderer type (singleSymbol, categorizedSymbol, graduatedSymbol)
    qml: str
    sld: str
    description: str
    visible: bool = True  #: checked in the project's layer tree
    name: str = STYLE_NAME


@dataclass(frozen=True)
class Symbol:
    """A fill or a circle marker, in the web's terms (CSS colours, pixels)."""

    fill: str | None            #: None: no fill
    stroke: str | None          #: None: no outline
    width_px: float = 1.0
    fill_opacity: float = 1.0
    radius_px: float = 0.0      #: a marker's radius; 0 for a fill
    shape: str = "circle"

    @property
    def kind(self) -> str:
        return "marker" if self.radius_px else "fill"


def _web(key: str, *, fill: bool = True) -> Symbol:
    s = WEB[key]
    return Symbol(fill=s.get("fillColor") if fill else None, stroke=s.get("color"),
                  width_px=s.get("weight", 0), fill_opacity=s.get("fillOpacity", 1.0),
                  radius_px=s.get("radius", 0))


# --- the layers ---------------------------------------------------------------------------------

#: Order of the layers in QGIS's layer panel, top first (points above polygons, as on the web).
ORDER = (Layer.SHELTERS, Layer.SERVICES, Layer.EMERGENCY_SITES, Layer.REGISTER,
         Layer.COOPERATORS, "supporters", "help_requests", "care_concerns", "coverage", "catchments",
         Layer.DISTRICTS, Layer.SMALL_AREAS)


def layer_styles(layers: Sequence[LayerInfo], *, ageing: Mapping[str, float] | None = None,
                 synthetic_age: bool = False) -> list[LayerStyle]:
    """The karte style of every feature layer in ``layers``, in :data:`ORDER` (top first).

    Parameters
    ----------
    layers
        The file's feature layers (attribute tables are ignored).
    ageing
        District code -> ageing rate (65歳以上 / 年齢が分かる人口), as the city map's classes are
        drawn from; None or empty: the districts get an outline style.
    synthetic_age
        The age bands are synthetic: the districts' legend says so.
    """
    styles = []
    for info in layers:
        if not info.geometry_column:
            continue
        style = _style(info, ageing=dict(ageing or {}), synthetic_age=synthetic_age)
        if style is not None:
            styles.append(style)
    rank = {str(k): i for i, k in enumerate(ORDER)}
    return sorted(styles, key=lambda s: (rank.get(s.layer, len(rank)), s.layer))


def _style(info: LayerInfo, *, ageing: dict, synthetic_age: bool) -> LayerStyle | None:
    name = info.name
    if name == Layer.DISTRICTS:
        return _districts(info, ageing, synthetic_age)
    if name == Layer.SMALL_AREAS:
        return _single(info, "町丁・字", Symbol(None, sheet_map.LINE_GREY.hexval().replace("0x", "#"), 0.75),
                       label='"name"', label_scale=60000, visible=False,
                       description="町丁・字の境界（国勢調査 小地域）")
    if name == Layer.SHELTERS:
        return _shelters(info)
    if name == Layer.SERVICES:
        return _services(info)
    if name == Layer.EMERGENCY_SITES:
        grey = sheet_map.GREY.hexval().replace("0x", "#")
        return _single(info, LAYERS[name].title_ja,
                       Symbol("#ffffff", grey, 1.5, radius_px=4, shape="square"), visible=False,
                       description="指定緊急避難場所（国土地理院）")
    if name == Layer.REGISTER:
        return _register(info)
    if name == Layer.COOPERATORS:
        return _single(info, LAYERS[name].title_ja, _web("cooperators"), visible=False,
                       description="共助協力者（個人情報: 取扱注意）")
    if name == "supporters":
        return _single(info, LAYERS[name].title_ja,
                       Symbol(supporters_map.SUPPORTER, "#ffffff", 1, radius_px=5), visible=False,
                       description="地域福祉サポーター（個人情報: 取扱注意）")
    if name == "coverage":
        return _single(info, "サロンの徒歩圏外の高齢者がいる区域",
                       Symbol(WEB["coverage"]["fillColor"], None, 0, WEB["coverage"]["fillOpacity"]),
                       description="サロンの徒歩圏外（推計）")
    if name == "catchments":
        return _single(info, "サロンの徒歩圏", _web("catchments"), description="サロンの徒歩圏")
    title = LAYERS[name].title_ja if name in LAYERS else name
    if name in PERSONAL_LAYERS:
        return _single(info, title, Symbol(overview.NO_DATA, "#424242", 1, radius_px=4) if info.is_point
                       else Symbol(overview.NO_DATA, "#424242", 1, 0.5), visible=False,
                       description=f"{title}（個人情報: 取扱注意）")
    return _single(info, title, Symbol("#ffffff", "#616161", 1, radius_px=4) if info.is_point
                   else Symbol(None, "#616161", 1), description=title)


def _districts(info: LayerInfo, ageing: dict, synthetic_age: bool) -> LayerStyle:
    label = f"replace(\"district_name\", '{STANDIN_PREFIX}', '')"
    rates = {str(k): float(v) for k, v in ageing.items() if v is not None and not _nan(v)}
    if not rates:
        return _single(info, "地区", Symbol(None, WEB["district"]["color"], 2), label=label,
                       description="地区（地区社協の区域）")
    codes = sorted(rates)
    cls, breaks = overview.classify(pd.Series([rates[c] for c in codes]), k=len(overview.PALETTE))
    outline = CITY_OUTLINE["color"]
    classes = []
    for i, colour in enumerate(overview.PALETTE):
        members = [rates[c] for c, k in zip(codes, cls, strict=True) if k == i]
        if not members:
            continue
        text = f"{breaks[i]:.1%} 〜 {breaks[i + 1]:.1%}"
        fill = Symbol(colour, outline, CITY_OUTLINE["weight"], CITY_OUTLINE["fillOpacity"])
        classes.append(_Class(text, fill, lower=min(members), upper=max(members),
                              codes=tuple(c for c, k in zip(codes, cls, strict=True) if k == i)))
    known = set(codes)
    expression = ("coalesce(map_get(map(" + ", ".join(f"'{c}', {rates[c]!r}" for c in codes)
                  + '), "district_code"), -1)')
    grey = Symbol(overview.NO_DATA, outline, 1, CITY_OUTLINE["fillOpacity"])
    classes.append(_Class("秘匿・データなし", grey,
                          lower=-1.0, upper=-1.0, codes=None, others=tuple(sorted(known))))
    title = "地区（高齢化率 65歳以上）"
    note = "（年齢構成は合成データ）" if synthetic_age else ""
    renderer = _graduated(expression, classes, "fill")
    return LayerStyle(
        layer=info.name, geometry_column=info.geometry_column, title=title,
        renderer="graduatedSymbol",
        qml=_qml(renderer, _labeling(label, size=9), info),
        sld=_sld(info.name, [_rule(c.label, _filter_codes("district_code", c.codes, c.others), c.symbol)
                             for c in classes], label="district_name"),
        description=f"地区の高齢化率（全体図と同じ5分位の階級）{note}",
    )


def _shelters(info: LayerInfo) -> LayerStyle:
    expression = "CASE WHEN \"welfare\" THEN '福祉避難所' ELSE '指定避難所' END"
    cats = [("福祉避難所", "福祉避難所（十字）", _web("welfare"), "1"),
            ("指定避難所", "指定避難所", _web("shelters"), "0")]
    renderer = _categorized(expression, [(v, label, s) for v, label, s, _ in cats], "marker")
    rules = [_rule(label, _filter_eq("welfare", flag), s) for _, label, s, flag in cats]
    return LayerStyle(info.name, info.geometry_column, "指定避難所（十字: 福祉避難所）",
                      "categorizedSymbol",
                      _qml(renderer, None, info), _sld(info.name, rules),
                      "指定避難所（国土地理院）、福祉避難所を十字で区別")


def _services(info: LayerInfo) -> LayerStyle:
    cats = [("salon", "サロン", _web("salons")), ("other", "その他の共助サービス", _web("services"))]
    renderer = _categorized("CASE WHEN \"kind\" = 'salon' THEN 'salon' ELSE 'other' END", cats, "marker")
    rules = [_rule("サロン", _filter_eq("kind", "salon"), cats[0][2]),
             _rule("その他の共助サービス", _not(_filter_eq("kind", "salon")), cats[1][2])]
    return LayerStyle(info.name, info.geometry_column, "共助サービス（緑: サロン）", "categorizedSymbol",
                      _qml(renderer, None, info), _sld(info.name, rules),
                      "共助サービス: サロンとその他のサービス")


def _register(info: LayerInfo) -> LayerStyle:
    """Support-needers coloured by the first gap their own row shows (consent, supporter, plan);
    the gaps that need the analysis (distance, load, shelter) are on the district page."""
    shareable = ", ".join(f"'{c.value}'" for c in Consent if c.shareable)
    expression = (f"CASE WHEN \"consent\" IS NULL OR \"consent\" NOT IN ({shareable}) THEN 'no_consent' "
                  "WHEN coalesce(\"supporter_ids\", '') = '' THEN 'no_supporter' "
                  f"WHEN coalesce(\"plan_status\", '') <> '{PlanStatus.DONE.value}' THEN 'no_plan' "
                  "ELSE 'none' END")
    kinds = [gaps.BY_KEY["no_consent"], gaps.BY_KEY["no_supporter"], gaps.BY_KEY["no_plan"]]
    web = WEB["register"]
    cats = [(k.key, f"要支援者: {k.short_label}", Symbol(k.colour, web["color"], web["weight"],
                                                         radius_px=web["radius"])) for k in kinds]
    cats.append(("none", "要支援者: 上記の空白なし（距離・定員・避難先は地区カルテで確認）",
                 Symbol(gaps.NO_GAP.colour, web["color"], web["weight"], radius_px=web["radius"])))
    renderer = _categorized(expression, cats, "marker")
    shared = "".join(_filter_eq("consent", c.value) for c in Consent if c.shareable)
    no_consent = f"<ogc:Not><ogc:Or>{shared}</ogc:Or></ogc:Not>"
    no_supporter = ("<ogc:Or><ogc:PropertyIsNull><ogc:PropertyName>supporter_ids</ogc:PropertyName>"
                    "</ogc:PropertyIsNull>" + _filter_eq("supporter_ids", "") + "</ogc:Or>")
    no_plan = "<ogc:Not>" + _filter_eq("plan_status", PlanStatus.DONE.value) + "</ogc:Not>"
    rules = [_rule(cats[0][1], no_consent, cats[0][2]),
             _rule(cats[1][1], f"<ogc:And>{_not(no_consent)}{no_supporter}</ogc:And>", cats[1][2]),
             _rule(cats[2][1], f"<ogc:And>{_not(no_consent)}{_not(no_supporter)}{no_plan}</ogc:And>",
                   cats[2][2]),
             _rule(cats[3][1], f"<ogc:And>{_not(no_consent)}{_not(no_supporter)}{_not(no_plan)}</ogc:And>",
                   cats[3][2])]
    return LayerStyle(info.name, info.geometry_column, "要支援者（空白の種類で色分け）", "categorizedSymbol",
                      _qml(renderer, None, info), _sld(info.name, rules),
                      "要支援者名簿（個人情報: 取扱注意）: 同意・支援者・個別避難計画の空白で色分け",
                      visible=False)


def _single(info: LayerInfo, title: str, symbol: Symbol, *, label: str | None = None,
            label_scale: float = 0, visible: bool = True, description: str = "") -> LayerStyle:
    kind = "marker" if info.is_point else "fill"
    if info.is_point and not symbol.radius_px:
        symbol = Symbol(symbol.fill, symbol.stroke, symbol.width_px, symbol.fill_opacity, 4)
    if not info.is_point and symbol.radius_px:
        symbol = Symbol(symbol.fill, symbol.stroke, symbol.width_px, symbol.fill_opacity)
    renderer = ET.Element("renderer-v2", _renderer_attrs("singleSymbol"))
    symbols = ET.SubElement(renderer, "symbols")
    symbols.append(_symbol("0", symbol, kind))
    plain_label = label.strip('"') if label and label.startswith('"') and label.count('"') == 2 else None
    labeling = _labeling(label, size=8, max_scale=label_scale) if label else None
    return LayerStyle(info.name, info.geometry_column, title, "singleSymbol", _qml(renderer, labeling, info),
                      _sld(info.name, [_rule(title, None, symbol)], label=plain_label,
                           label_scale=label_scale),
                      description or title, visible=visible)


# --- QML ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Class:
    label: str
    symbol: Symbol
    lower: float = 0.0
    upper: float = 0.0
    codes: tuple[str, ...] | None = None     #: the district codes in the class (SLD filter)
    others: tuple[str, ...] = ()             #: codes NOT in the class (the "no data" class)


def _renderer_attrs(kind: str, **extra) -> dict[str, str]:
    return {"type": kind, **extra, "symbollevels": "0", "enableorderby": "0", "forceraster": "0",
            "referencescale": "-1"}


def _graduated(expression: str, classes: Sequence[_Class], kind: str) -> ET.Element:
    renderer = ET.Element("renderer-v2", _renderer_attrs("graduatedSymbol", attr=expression,
                                                         graduatedMethod="GraduatedColor"))
    ranges = ET.SubElement(renderer, "ranges")
    symbols = ET.SubElement(renderer, "symbols")
    for i, c in enumerate(classes):
        ET.SubElement(ranges, "range", {"symbol": str(i), "label": c.label, "lower": repr(float(c.lower)),
                                        "upper": repr(float(c.upper)), "render": "true",
                                        "uuid": f"karte-{i}"})
        symbols.append(_symbol(str(i), c.symbol, kind))
    ET.SubElement(renderer, "mode", {"name": "quantile"})
    return renderer


def _categorized(expression: str, cats: Sequence[tuple[str, str, Symbol]], kind: str) -> ET.Element:
    renderer = ET.Element("renderer-v2", _renderer_attrs("categorizedSymbol", attr=expression))
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for i, (value, label, symbol) in enumerate(cats):
        ET.SubElement(categories, "category", {"value": value, "symbol": str(i), "label": label,
                                               "render": "true", "type": "string", "uuid": f"karte-{i}"})
        symbols.append(_symbol(str(i), symbol, kind))
    return renderer


def _symbol(name: str, s: Symbol, kind: str) -> ET.Element:
    """A QGIS symbol: properties both as ``<Option>`` (QGIS ≥ 3.10 reads these) and as the older
    ``<prop>`` elements (QGIS 3.0–3.8)."""
    symbol = ET.Element("symbol", {"type": kind, "name": name, "alpha": "1", "clip_to_extent": "1",
                                   "force_rhr": "0", "frame_rate": "10", "is_animated": "0"})
    layer = ET.SubElement(symbol, "layer", {"class": "SimpleMarker" if kind == "marker" else "SimpleFill",
                                            "enabled": "1", "locked": "0", "pass": "0"})
    width = f"{s.width_px * MM_PER_PX:.2f}"
    props = {
        "color": _rgba(s.fill, s.fill_opacity) if s.fill else "0,0,0,0",
        "outline_color": _rgba(s.stroke) if s.stroke else "0,0,0,0",
        "outline_style": "solid" if s.stroke and s.width_px else "no",
        "outline_width": width,
        "outline_width_unit": "MM",
        "joinstyle": "bevel",
    }
    if kind == "marker":
        props.update({"name": s.shape, "size": f"{2 * s.radius_px * MM_PER_PX:.2f}", "size_unit": "MM",
                      "scale_method": "diameter", "angle": "0", "offset": "0,0", "offset_unit": "MM",
                      "horizontal_anchor_point": "1", "vertical_anchor_point": "1"})
    else:
        props.update({"style": "solid" if s.fill else "no", "offset": "0,0", "offset_unit": "MM",
                      "border_width_unit": "MM"})
    options = ET.SubElement(layer, "Option", {"type": "Map"})
    for k, v in props.items():
        ET.SubElement(options, "Option", {"name": k, "type": "QString", "value": v})
    for k, v in props.items():
        ET.SubElement(layer, "prop", {"k": k, "v": v})
    return symbol


def _labeling(expression: str, *, size: float, max_scale: float = 0) -> ET.Element:
    """Simple labels from an expression, dark text with a white halo (the web's text-shadow)."""
    labeling = ET.Element("labeling", {"type": "simple"})
    settings = ET.SubElement(labeling, "settings", {"calloutType": "simple"})
    style = ET.SubElement(settings, "text-style", {
        "fieldName": expression, "isExpression": "1", "fontFamily": FONT, "fontSize": f"{size:g}",
        "fontSizeUnit": "Point", "fontWeight": "50", "textColor": "33,33,33,255", "textOpacity": "1",
        "namedStyle": "Regular", "multilineHeight": "1", "allowHtml": "0", "blendMode": "0"})
    ET.SubElement(style, "families")
    ET.SubElement(style, "text-buffer", {
        "bufferDraw": "1", "bufferSize": "0.8", "bufferSizeUnits": "MM", "bufferColor": "255,255,255,255",
        "bufferOpacity": "1", "bufferJoinStyle": "128", "bufferNoFill": "1", "bufferBlendMode": "0"})
    ET.SubElement(settings, "text-format", {"wrapChar": "", "autoWrapLength": "0", "multilineAlign": "3"})
    ET.SubElement(settings, "placement", {
        "placement": "1", "centroidInside": "1", "centroidWhole": "0", "fitInPolygonOnly": "0",
        "priority": "5", "dist": "0", "distUnits": "MM", "offsetType": "0", "quadOffset": "4",
        "overlapHandling": "PreventOverlap"})
    rendering = {"drawLabels": "1", "obstacle": "1", "upsidedownLabels": "0", "labelPerPart": "0",
                 "scaleVisibility": "1" if max_scale else "0", "scaleMin": "0",
                 "scaleMax": f"{max_scale:g}"}
    ET.SubElement(settings, "rendering", rendering)
    return labeling


def _qml(renderer: ET.Element, labeling: ET.Element | None, info: LayerInfo) -> str:
    root = ET.Element("qgis", {"version": QGIS_VERSION, "styleCategories": "Symbology|Labeling",
                               "labelsEnabled": "1" if labeling is not None else "0"})
    root.append(renderer)
    if labeling is not None:
        root.append(labeling)
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerOpacity").text = "1"
    ET.SubElement(root, "layerGeometryType").text = "0" if info.is_point else "2"
    ET.indent(root, space=" ")
    return DOCTYPE + ET.tostring(root, encoding="unicode")


def renderer_elements(qml: str) -> list[ET.Element]:
    """The elements of a QML that a project's ``<maplayer>`` carries (renderer, labels, opacity)."""
    root = ET.fromstring(qml)
    return [e for e in root if e.tag != "layerGeometryType"]


# --- SLD 1.1 (Symbology Encoding) ---------------------------------------------------------------

SLD_NS = {"sld": "http://www.opengis.net/sld", "se": "http://www.opengis.net/se",
          "ogc": "http://www.opengis.net/ogc"}


def _sld(layer: str, rules: Sequence[str], *, label: str | None = None, label_scale: float = 0) -> str:
    if label:
        scale = f"<se:MaxScaleDenominator>{label_scale:g}</se:MaxScaleDenominator>" if label_scale else ""
        rules = [*rules, (
            f"<se:Rule><se:Name>{_x(label)}</se:Name>{scale}<se:TextSymbolizer>"
            f"<se:Label><ogc:PropertyName>{_x(label)}</ogc:PropertyName></se:Label>"
            f"<se:Font><se:SvgParameter name=\"font-family\">{FONT}</se:SvgParameter>"
            "<se:SvgParameter name=\"font-size\">12</se:SvgParameter></se:Font>"
            "<se:LabelPlacement><se:PointPlacement><se:AnchorPoint><se:AnchorPointX>0.5</se:AnchorPointX>"
            "<se:AnchorPointY>0.5</se:AnchorPointY></se:AnchorPoint></se:PointPlacement></se:LabelPlacement>"
            "<se:Halo><se:Radius>2</se:Radius><se:Fill>"
            "<se:SvgParameter name=\"fill\">#ffffff</se:SvgParameter></se:Fill></se:Halo>"
            "<se:Fill><se:SvgParameter name=\"fill\">#212121</se:SvgParameter></se:Fill>"
            "</se:TextSymbolizer></se:Rule>")]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:se="http://www.opengis.net/se" xmlns:ogc="http://www.opengis.net/ogc" '
        'xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://www.opengis.net/sld '
        'http://schemas.opengis.net/sld/1.1.0/StyledLayerDescriptor.xsd">'
        f"<NamedLayer><se:Name>{_x(layer)}</se:Name><UserStyle><se:Name>{STYLE_NAME}</se:Name>"
        f"<se:FeatureTypeStyle>{''.join(rules)}</se:FeatureTypeStyle></UserStyle></NamedLayer>"
        "</StyledLayerDescriptor>\n")


def _rule(title: str, ogc_filter: str | None, s: Symbol) -> str:
    filt = f'<ogc:Filter xmlns:ogc="{SLD_NS["ogc"]}">{ogc_filter}</ogc:Filter>' if ogc_filter else ""
    return (f"<se:Rule><se:Name>{_x(title)}</se:Name><se:Description><se:Title>{_x(title)}</se:Title>"
            f"</se:Description>{filt}{_symbolizer(s)}</se:Rule>")


def _symbolizer(s: Symbol) -> str:
    fill = ""
    if s.fill:
        fill = (f'<se:Fill><se:SvgParameter name="fill">{_hex(s.fill)}</se:SvgParameter>'
                + (f'<se:SvgParameter name="fill-opacity">{s.fill_opacity:g}</se:SvgParameter>'
                   if s.fill_opacity < 1 else "") + "</se:Fill>")
    stroke = ""
    if s.stroke and s.width_px:
        stroke = (f'<se:Stroke><se:SvgParameter name="stroke">{_hex(s.stroke)}</se:SvgParameter>'
                  f'<se:SvgParameter name="stroke-width">{s.width_px:g}</se:SvgParameter></se:Stroke>')
    if s.kind == "marker":
        return (f"<se:PointSymbolizer><se:Graphic><se:Mark><se:WellKnownName>{s.shape}</se:WellKnownName>"
                f"{fill}{stroke}</se:Mark><se:Size>{2 * s.radius_px:g}</se:Size></se:Graphic>"
                "</se:PointSymbolizer>")
    return f"<se:PolygonSymbolizer>{fill}{stroke}</se:PolygonSymbolizer>"


def _filter_eq(column: str, value: str) -> str:
    return (f"<ogc:PropertyIsEqualTo><ogc:PropertyName>{_x(column)}</ogc:PropertyName>"
            f"<ogc:Literal>{_x(value)}</ogc:Literal></ogc:PropertyIsEqualTo>")


def _not(f: str) -> str:
    return f"<ogc:Not>{f}</ogc:Not>"


def _filter_codes(column: str, codes: Sequence[str] | None, others: Sequence[str] = ()) -> str:
    """``column`` is one of ``codes`` (or, with ``codes`` None, none of ``others``)."""
    if codes is None:
        inner = "".join(_filter_eq(column, c) for c in others)
        return _not(inner if len(others) == 1 else f"<ogc:Or>{inner}</ogc:Or>")
    inner = "".join(_filter_eq(column, c) for c in codes)
    return inner if len(codes) == 1 else f"<ogc:Or>{inner}</ogc:Or>"


# --- small helpers ------------------------------------------------------------------------------

def _hex(colour: str) -> str:
    c = colour.lstrip("#")
    if len(c) == 3:
        c = "".join(ch * 2 for ch in c)
    return "#" + c.lower()


def _rgba(colour: str, opacity: float = 1.0) -> str:
    c = _hex(colour)[1:]
    r, g, b = (int(c[i:i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{round(255 * opacity)}"


def _x(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _nan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def qml_colours(qml: str) -> set[str]:
    """The ``#rrggbb`` colours a QML draws with (tests and checks)."""
    found = set()
    for option in ET.fromstring(qml).iter("Option"):
        if option.get("name") in ("color", "outline_color"):
            r, g, b, a = (int(v) for v in option.get("value", "0,0,0,0").split(",")[:4])
            if a:
                found.add(f"#{r:02x}{g:02x}{b:02x}")
    return found

