"""QGIS Atlas: the public district sheet's first page, one page per district, for ``bench/sheets.py``.

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 bench/qgis_atlas.py atlas.gpkg out.pdf --font ipaexg.ttf

Runs on Debian's Python with its ``python3-qgis`` (QGIS 3.22), not karte's venv. The GeoPackage is
what :func:`bench.sheets.atlas_input` writes from a karte store with karte's own code: per district
(``districts``, the Atlas coverage layer, sorted by code) the printed outline, the map extent and
the title texts; the map's small areas, neighbouring districts, salon catchments, uncovered cells,
salons and shelters (each row tagged with the ``sheet`` it is drawn on); ``sheet_rows``, the two
tables' rows as printed (suppressed, formatted). The script builds the project and an A4 print
layout in code and exports the Atlas as one PDF: title block with the edition badge, the map
(data-defined to karte's extent, with legend, scale bar and north arrow), 基礎情報 and 共助協力者 as
attribute tables filtered to the Atlas feature, the notes, sources and footer, in IPAexGothic (the
file karte embeds, given by ``--font``).

What differs from karte's page (what a QGIS layout does its own way or has no ready item for):
the layout is fixed (karte sizes the map to what the tables below it need); no inset of the whole
district for rural districts mapped on their inhabited part; map labels are placed by QGIS's
labelling engine beside plain markers (karte: numbers inside the salon discs, kept clear of the
symbols); the legend, scale bar and north arrow are QGIS's own items; the page number is the
fixed "1 / 2" of karte's first page. Karte's batch also reads and analyses the store (the salon
catchments and uncovered cells QGIS draws are karte's analysis, computed before), draws each
sheet's second page, writes one file per district and merges them with contents; QGIS is handed
everything ready and times only its own process. So the comparison favours QGIS.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # after the platform is set: Qt reads it when it loads
    QgsApplication,
    QgsFillSymbol,
    QgsLayoutExporter,
    QgsLayoutFrame,
    QgsLayoutItemAttributeTable,
    QgsLayoutItemLabel,
    QgsLayoutItemLegend,
    QgsLayoutItemMap,
    QgsLayoutItemPage,
    QgsLayoutItemPicture,
    QgsLayoutItemScaleBar,
    QgsLayoutMeasurement,
    QgsLayoutObject,
    QgsLayoutPoint,
    QgsLayoutSize,
    QgsLayoutTableColumn,
    QgsMarkerSymbol,
    QgsPalLayerSettings,
    QgsPrintLayout,
    QgsProject,
    QgsProperty,
    QgsRuleBasedRenderer,
    QgsScaleBarSettings,
    QgsSimpleFillSymbolLayer,
    QgsSymbolLayer,
    QgsTextBufferSettings,
    QgsTextFormat,
    QgsUnitTypes,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtCore import QRectF, Qt
from qgis.PyQt.QtGui import QColor, QFont, QFontDatabase

INK, MUTED, GREY = "#1a1a1a", "#555555", "#a6a6a6"
MM = QgsUnitTypes.LayoutMillimeters
PT = 25.4 / 72  # millimetres per point
LEFT, WIDTH = 10.0, 190.0  # the body's left edge and width, mm (karte: 28 pt margins)
#: Only the features drawn on the Atlas page's sheet.
ON_SHEET = '"sheet" = @atlas_pagename'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gpkg")
    parser.add_argument("pdf")
    parser.add_argument("--font", required=True, help="IPAexGothic .ttf (karte's sheet font)")
    args = parser.parse_args()
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    families = QFontDatabase.applicationFontFamilies(QFontDatabase.addApplicationFont(args.font))
    if not families:
        sys.exit(f"font not loaded: {args.font}")
    project = QgsProject.instance()
    layers = _layers(args.gpkg, families[0])
    project.addMapLayers(list(layers.values()))
    project.setCrs(layers["districts"].crs())
    layout = _layout(project, layers, families[0])
    settings = QgsLayoutExporter.PdfExportSettings()
    settings.forceVectorOutput = True
    result, error = QgsLayoutExporter.exportToPdf(layout.atlas(), args.pdf, settings)
    if result != QgsLayoutExporter.Success:
        sys.exit(f"Atlas export failed: {error}")
    print(layout.atlas().count())
    app.exitQgis()


# --- layers ----------------------------------------------------------------------------------------

def _layers(gpkg: str, family: str) -> dict[str, QgsVectorLayer]:
    """The GeoPackage's layers, styled as on karte's map (top of the map last)."""
    found = {}
    for name, title in (("catchments", "サロンの徒歩圏"), ("cells", "徒歩圏外で高齢者が住むところ"),
                        ("small_areas", "町丁・字の境界"), ("neighbours", "地区外"),
                        ("districts", "地区の境界"), ("shelters", "避難所"), ("salons", "サロン"),
                        ("sheet_rows", "sheet_rows")):
        layer = QgsVectorLayer(f"{gpkg}|layername={name}", title, "ogr")
        if layer.isValid():
            found[name] = layer
    if "districts" not in found or "sheet_rows" not in found:
        sys.exit(f"{gpkg}: no districts or sheet_rows layer")
    _on_sheet(found.get("catchments"), QgsFillSymbol.createSimple({
        "color": "#cfe2f3", "outline_color": "#2f6da3", "outline_width": str(0.6 * PT),
        "outline_style": "dash"}))
    if "cells" in found:
        cells = QgsFillSymbol.createSimple({"color": "#f0b47c", "outline_style": "no"})
        hatch = QgsSimpleFillSymbolLayer(QColor("#b35806"), Qt.BDiagPattern, QColor("#b35806"),
                                         Qt.NoPen)
        cells.appendSymbolLayer(hatch)
        _on_sheet(found["cells"], cells)
    _on_sheet(found.get("small_areas"), _outline(GREY, 0.35), label="name", family=family, size=6)
    _on_sheet(found.get("neighbours"), _outline(GREY, 0.8), label="name", family=family, size=7.5)
    own = found["districts"]
    own.setRenderer(QgsRuleBasedRenderer(_rule(_outline(INK, 1.6), '"district_code" = @atlas_pagename')))
    # salons: the district's own counting ones filled, its others hollow, other districts' grey
    salon = _marker("circle", "#1f4e79", "if(\"own\", if(\"special\", '#1f4e79', 'white'), '#a6a6a6')")
    _on_sheet(found.get("salons"), salon, label="label", family=family, size=7)
    # shelters: welfare shelters black, others white; other districts' grey
    shelter = _marker("square", INK, f"if(\"special\", '{INK}', if(\"own\", 'white', '#a6a6a6'))")
    _on_sheet(found.get("shelters"), shelter, label="label", family=family, size=7)
    return found


def _marker(shape: str, edge: str, fill: str) -> QgsMarkerSymbol:
    """A 3.2 mm marker filled by the expression ``fill``."""
    symbol = QgsMarkerSymbol.createSimple({"name": shape, "outline_color": edge, "outline_width": "0.3",
                                           "size": "3.2"})
    symbol.symbolLayer(0).setDataDefinedProperty(QgsSymbolLayer.PropertyFillColor,
                                                 QgsProperty.fromExpression(fill))
    return symbol


def _outline(color: str, width_pt: float) -> QgsFillSymbol:
    return QgsFillSymbol.createSimple({"style": "no", "outline_color": color,
                                       "outline_width": str(width_pt * PT)})


def _rule(symbol, expression: str):
    root = QgsRuleBasedRenderer.Rule(None)
    root.appendChild(QgsRuleBasedRenderer.Rule(symbol, 0, 0, expression))
    return root


def _on_sheet(layer: QgsVectorLayer | None, symbol, *, label: str | None = None, family: str = "",
              size: float = 7.0) -> None:
    """Draw ``layer``'s features of the Atlas page's sheet only, labelled by ``label``."""
    if layer is None:
        return
    layer.setRenderer(QgsRuleBasedRenderer(_rule(symbol, ON_SHEET)))
    if label:
        settings = QgsPalLayerSettings()
        settings.fieldName = f'if({ON_SHEET}, "{label}", NULL)'
        settings.isExpression = True
        text = _text_format(family, size, INK)
        buffer = QgsTextBufferSettings()
        buffer.setEnabled(True)
        buffer.setSize(0.6)
        text.setBuffer(buffer)
        settings.setFormat(text)
        layer.setLabeling(QgsVectorLayerSimpleLabeling(settings))
        layer.setLabelsEnabled(True)


def _text_format(family: str, size: float, color: str, *, bold: bool = False) -> QgsTextFormat:
    text = QgsTextFormat()
    font = QFont(family)
    font.setBold(bold)
    text.setFont(font)
    text.setSize(size)
    text.setSizeUnit(QgsUnitTypes.RenderPoints)
    text.setColor(QColor(color))
    return text


# --- layout ----------------------------------------------------------------------------------------

def _layout(project: QgsProject, layers: dict[str, QgsVectorLayer], family: str) -> QgsPrintLayout:
    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    layout.pageCollection().page(0).setPageSize("A4", QgsLayoutItemPage.Portrait)
    atlas = layout.atlas()
    atlas.setCoverageLayer(layers["districts"])
    atlas.setPageNameExpression('"district_code"')
    atlas.setSortFeatures(True)
    atlas.setSortExpression('"district_code"')
    atlas.setEnabled(True)

    def label(text: str, x: float, y: float, w: float, h: float, size: float, *, color: str = INK,
              bold: bool = False, align=Qt.AlignLeft) -> QgsLayoutItemLabel:
        item = QgsLayoutItemLabel(layout)
        item.setText(text)
        font = QFont(family)
        font.setPointSizeF(size)
        font.setBold(bold)
        item.setFont(font)
        item.setFontColor(QColor(color))
        item.setHAlign(align)
        item.setVAlign(Qt.AlignTop)
        item.setMarginX(0)
        item.setMarginY(0)
        item.attemptMove(QgsLayoutPoint(x, y, MM))
        item.attemptResize(QgsLayoutSize(w, h, MM))
        layout.addLayoutItem(item)
        return item

    # title block
    label('[% "district_name" %]', LEFT, 10, 110, 11, 24, bold=True)
    label('[% "place" %]', LEFT + 70, 13, 60, 6, 14, color=MUTED)
    label('[% "subtitle" %]', LEFT, 23, 120, 5, 10.5)
    badge = label('[% "badge" %]', LEFT + WIDTH - 20, 10, 20, 7.4, 12, bold=True, align=Qt.AlignHCenter)
    badge.setFrameEnabled(True)
    badge.setFrameStrokeWidth(QgsLayoutMeasurement(1.2 * PT, MM))
    badge.setMarginY(1.2)
    label('[% "note" %]', LEFT + 100, 23, WIDTH - 100, 4, 7.5, color=MUTED, align=Qt.AlignRight)
    label('[% "remarks" %]', LEFT, 28, WIDTH, 8, 7.2, color=MUTED)

    # the map, its legend, scale bar and north arrow
    top, height = 37.0, 138.0
    frame = QgsLayoutItemMap(layout)
    frame.attemptMove(QgsLayoutPoint(LEFT, top, MM))
    frame.attemptResize(QgsLayoutSize(WIDTH, height, MM))
    frame.setLayers([layers[n] for n in ("salons", "shelters", "districts", "neighbours", "small_areas",
                                         "cells", "catchments") if n in layers])
    frame.setKeepLayerSet(True)
    frame.setFrameEnabled(True)
    frame.setExtent(layers["districts"].extent())
    for prop, field in ((QgsLayoutObject.MapXMin, "xmin"), (QgsLayoutObject.MapYMin, "ymin"),
                        (QgsLayoutObject.MapXMax, "xmax"), (QgsLayoutObject.MapYMax, "ymax")):
        frame.dataDefinedProperties().setProperty(prop, QgsProperty.fromField(field))
    layout.addLayoutItem(frame)
    legend = QgsLayoutItemLegend(layout)
    legend.setLinkedMap(frame)
    legend.setTitle("")
    legend.setAutoUpdateModel(False)
    group = legend.model().rootGroup()
    group.removeAllChildren()
    for name in ("districts", "small_areas", "catchments", "cells", "salons", "shelters", "neighbours"):
        if name in layers:
            group.addLayer(layers[name])
    for style in (1, 2, 3):  # QgsLegendStyle: title, group, subgroup/symbol label
        legend.rstyle(style).setFont(QFont(family, 7))
    legend.setSymbolHeight(3)
    legend.setBackgroundEnabled(True)
    legend.setFrameEnabled(True)
    legend.attemptMove(QgsLayoutPoint(LEFT + 2, top + 2, MM))
    layout.addLayoutItem(legend)
    bar = QgsLayoutItemScaleBar(layout)
    bar.setStyle("Single Box")
    bar.setLinkedMap(frame)
    bar.setUnits(QgsUnitTypes.DistanceKilometers)
    bar.setUnitLabel("km")
    bar.setNumberOfSegments(2)
    bar.setNumberOfSegmentsLeft(0)
    bar.setSegmentSizeMode(QgsScaleBarSettings.SegmentSizeFitWidth)
    bar.setMinimumBarWidth(20)
    bar.setMaximumBarWidth(35)
    bar.setHeight(1.5)
    bar.setTextFormat(_text_format(family, 7, INK))
    bar.attemptMove(QgsLayoutPoint(LEFT + WIDTH - 45, top + height - 12, MM))
    layout.addLayoutItem(bar)
    north = QgsLayoutItemPicture(layout)
    north.setPicturePath("/usr/share/qgis/svg/arrows/NorthArrow_02.svg")
    north.attemptMove(QgsLayoutPoint(LEFT + WIDTH - 12, top + 2, MM))
    north.attemptResize(QgsLayoutSize(9, 11, MM))
    layout.addLayoutItem(north)

    # 基礎情報 (left) and 共助協力者 (right)
    y = top + height + 2
    stats_w = 370 * PT
    roles_x = LEFT + stats_w + 14 * PT
    label("基礎情報", LEFT, y, 40, 6, 11, bold=True)
    label("市全体と比較", LEFT, y + 1, stats_w, 5, 7.5, color=MUTED, align=Qt.AlignRight)
    label("共助協力者", roles_x, y, 40, 6, 11, bold=True)
    label("人数", roles_x, y + 1, LEFT + WIDTH - roles_x, 5, 7.5, color=MUTED, align=Qt.AlignRight)
    rows = layers["sheet_rows"]
    _table(layout, rows, "base", family, LEFT, y + 7, (
        ("label", "項目", 128), ("district", "地区", 62), ("rate", "地区の率", 58), ("city", "市全体", 70),
        ("city_rate", "市の率", 52)), height=62)
    _table(layout, rows, "roles", family, roles_x, y + 7, (
        ("label", "区分", 112), ("district", "人数", (LEFT + WIDTH - roles_x) / PT - 112)), height=62)
    label("率: 年齢区分と高齢者は年齢のわかる人口に対して、一人暮らし高齢者は高齢者に対して、"
          "障がい者・要支援者は人口に対して、同意は要支援者に対しての割合。", LEFT, y + 70, stats_w, 6, 7,
          color=MUTED)
    label("氏名・連絡先は取扱注意版に載ります。", roles_x, y + 70, LEFT + WIDTH - roles_x, 6, 7, color=MUTED)
    label('[% "sources" %]', LEFT, y + 78, WIDTH, 28, 7, color=MUTED)
    label('[% "footer" %]', LEFT, 297 - 9, 150, 4, 7.5, color=MUTED)
    label("1 / 2", LEFT + WIDTH - 20, 297 - 9.5, 20, 4, 9, color=MUTED, align=Qt.AlignRight)
    return layout


def _table(layout, rows: QgsVectorLayer, section: str, family: str, x: float, y: float, columns,
           *, height: float) -> None:
    """One of page 1's tables: the Atlas district's rows of ``section`` (widths in points)."""
    table = QgsLayoutItemAttributeTable.create(layout)
    table.setVectorLayer(rows)
    table.setFilterFeatures(True)
    table.setFeatureFilter(f"\"district_code\" = @atlas_pagename AND \"section\" = '{section}'")
    table.setMaximumNumberOfFeatures(40)
    cols = []
    for i, (field, heading, width_pt) in enumerate(columns):
        col = QgsLayoutTableColumn()
        col.setAttribute(field)
        col.setHeading(heading)
        col.setWidth(width_pt * PT - 2 * 0.8)
        col.setHAlignment(Qt.AlignLeft if i == 0 else Qt.AlignRight)
        cols.append(col)
    table.setColumns(cols)
    table.setCellMargin(0.8)
    table.setContentTextFormat(_text_format(family, 9, INK))
    table.setHeaderTextFormat(_text_format(family, 9, INK, bold=True))
    table.setHeaderHAlignment(QgsLayoutItemAttributeTable.FollowColumn)
    table.setGridStrokeWidth(0.1)
    table.setGridColor(QColor(GREY))
    table.setShowEmptyRows(False)
    table.setBackgroundColor(QColor("white"))
    frame = QgsLayoutFrame(layout, table)
    frame.attemptSetSceneRect(QRectF(x, y, sum(c[2] for c in columns) * PT, height))
    table.addFrame(frame)
    layout.addMultiFrame(table)


if __name__ == "__main__":
    main()
