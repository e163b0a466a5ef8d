"""The QGIS project that travels inside the GeoPackage (``qgis_projects``): the file's layers, styled as
on the web (:mod:`karte.render.qgis_styles`), in the web map's order, in EPSG:6678 on the districts.

Pure: returns the project as ``.qgs`` text and as ``.qgz`` bytes (a zip holding the ``.qgs``, as QGIS
writes a project into a database). Every layer's data source is the GeoPackage itself by a relative
path (``./karte.gpkg|layername=districts``) and the project says paths are relative, so QGIS
resolves them beside the file it read the project from: the file opens wherever it is copied.
The zip is byte-for-byte the same for the same input (fixed entry time), so writing it again
changes nothing.
"""

from __future__ import annotations

import io
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Sequence

import pyproj

from gis import crs
from karte.render.qgis_styles import DOCTYPE, QGIS_VERSION, LayerInfo, LayerStyle, renderer_elements

#: The project's name in the GeoPackage (QGIS: ブラウザ → GeoPackage → the file → this project).
PROJECT_NAME = "karte"
#: Entry time of the zip's member (a constant, so the bytes do not change between writes).
ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def layer_id(layer: str) -> str:
    """The project's id of a layer (stable: the same file gives the same project)."""
    return f"karte_{layer}"


def project_qgs(file_name: str, styles: Sequence[LayerStyle], layers: Sequence[LayerInfo], *,
                title: str = "地区カルテ", extent: tuple[float, float, float, float] | None = None) -> str:
    """The ``.qgs`` XML of the project: one vector layer per style (top of the panel first).

    Parameters
    ----------
    file_name
        The GeoPackage's file name (``karte.gpkg``): the data sources are ``./<file_name>|layername=…``.
    styles
        The layer styles, top of the layer panel first (:func:`karte.render.qgis_styles.layer_styles`).
    layers
        The file's layers (extents).
    extent
        The map's initial extent (EPSG:6678); default: the districts' extent, else all layers'.
    """
    info = {i.name: i for i in layers}
    srs = _srs(crs.METRIC)
    root = ET.Element("qgis", {"projectname": title, "version": QGIS_VERSION})
    ET.SubElement(root, "homePath", {"path": ""})
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "projectFlags", {"set": ""})
    project_crs = ET.SubElement(root, "projectCrs")
    project_crs.append(_srs_element(srs))

    tree = ET.SubElement(root, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    for s in styles:
        node = ET.SubElement(tree, "layer-tree-layer", {
            "id": layer_id(s.layer), "name": s.title, "source": _source(file_name, s.layer),
            "providerKey": "ogr", "checked": "Qt::Checked" if s.visible else "Qt::Unchecked",
            "expanded": "1" if s.visible else "0", "legend_exp": ""})
        ET.SubElement(node, "customproperties")
    order = ET.SubElement(tree, "custom-order", {"enabled": "0"})
    for s in styles:
        ET.SubElement(order, "item").text = layer_id(s.layer)

    box = extent or _extent(info, [s.layer for s in styles])
    canvas = ET.SubElement(root, "mapcanvas", {"name": "theMapCanvas", "annotationsVisible": "1"})
    ET.SubElement(canvas, "units").text = "meters"
    canvas.append(_extent_element(box))
    ET.SubElement(canvas, "rotation").text = "0"
    ET.SubElement(canvas, "destinationsrs").append(_srs_element(srs))
    ET.SubElement(canvas, "rendermaptile").text = "0"

    project_layers = ET.SubElement(root, "projectlayers")
    for s in styles:
        project_layers.append(_maplayer(file_name, s, info.get(s.layer), srs))
    layer_order = ET.SubElement(root, "layerorder")
    for s in styles:
        ET.SubElement(layer_order, "layer", {"id": layer_id(s.layer)})

    props = ET.SubElement(root, "properties")
    paths = ET.SubElement(props, "Paths")
    ET.SubElement(paths, "Absolute", {"type": "bool"}).text = "false"
    ref = ET.SubElement(props, "SpatialRefSys")
    ET.SubElement(ref, "ProjectionsEnabled", {"type": "int"}).text = "1"
    ET.SubElement(ref, "ProjectCrs", {"type": "QString"}).text = srs["authid"]
    ET.indent(root, space=" ")
    return DOCTYPE + ET.tostring(root, encoding="unicode")


def project_qgz(qgs: str, *, name: str = PROJECT_NAME) -> bytes:
    """The project as QGIS stores it in a database: a zip holding ``<name>.qgs``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entry = zipfile.ZipInfo(f"{name}.qgs", date_time=ZIP_TIME)
        entry.compress_type = zipfile.ZIP_DEFLATED
        entry.external_attr = 0o644 << 16
        archive.writestr(entry, qgs.encode("utf-8"))
    return buffer.getvalue()


def _source(file_name: str, layer: str) -> str:
    return f"./{file_name}|layername={layer}"


def _maplayer(file_name: str, style: LayerStyle, info: LayerInfo | None, srs: dict) -> ET.Element:
    point = info is not None and info.is_point
    element = ET.Element("maplayer", {
        "type": "vector", "geometry": "Point" if point else "Polygon",
        "styleCategories": "AllStyleCategories",
        "hasScaleBasedVisibilityFlag": "0", "minScale": "100000000", "maxScale": "0", "readOnly": "0",
        "labelsEnabled": "1" if "<labeling" in style.qml else "0", "autoRefreshEnabled": "0",
        "simplifyDrawingHints": "1", "simplifyDrawingTol": "1", "simplifyLocal": "1",
        "simplifyMaxScale": "1", "simplifyAlgorithm": "0", "wkbType": "Point" if point else "MultiPolygon"})
    if info is not None and info.extent is not None:
        element.append(_extent_element(info.extent))
    ET.SubElement(element, "id").text = layer_id(style.layer)
    ET.SubElement(element, "datasource").text = _source(file_name, style.layer)
    ET.SubElement(element, "layername").text = style.title
    ET.SubElement(element, "srs").append(_srs_element(srs))
    ET.SubElement(element, "provider", {"encoding": "UTF-8"}).text = "ogr"
    manager = ET.SubElement(element, "map-layer-style-manager", {"current": "default"})
    ET.SubElement(manager, "map-layer-style", {"name": "default"})
    flags = ET.SubElement(element, "flags")
    for flag in ("Identifiable", "Removable", "Searchable"):
        ET.SubElement(flags, flag).text = "1"
    for child in renderer_elements(style.qml):
        element.append(child)
    return element


def _extent(info: dict[str, LayerInfo], names: Sequence[str]) -> tuple[float, float, float, float]:
    if "districts" in info and info["districts"].extent:
        return info["districts"].extent
    boxes = [info[n].extent for n in names if n in info and info[n].extent]
    if not boxes:
        return (0.0, 0.0, 0.0, 0.0)
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes),
            max(b[3] for b in boxes))


def _extent_element(box: tuple[float, float, float, float]) -> ET.Element:
    element = ET.Element("extent")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
        ET.SubElement(element, tag).text = repr(float(value))
    return element


def _srs(code: str) -> dict:
    c = pyproj.CRS.from_user_input(code)
    authority, number = c.to_authority()
    with warnings.catch_warnings():  # QGIS wants the PROJ string too; the WKT is what it reads first
        warnings.simplefilter("ignore", UserWarning)
        proj4 = c.to_proj4()
    return {"wkt": c.to_wkt(), "proj4": proj4, "srid": number, "authid": f"{authority}:{number}",
            "description": c.name, "projectionacronym": "tmerc", "ellipsoidacronym": "EPSG:7019",
            "geographicflag": "false"}


def _srs_element(srs: dict) -> ET.Element:
    element = ET.Element("spatialrefsys", {"nativeFormat": "Wkt"})
    for tag in ("wkt", "proj4", "srid", "authid", "description", "projectionacronym", "ellipsoidacronym",
                "geographicflag"):
        ET.SubElement(element, tag).text = str(srs[tag])
    return element
