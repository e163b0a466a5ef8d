"""QGIS styles and the QGIS project stored in the GeoPackage that ``karte demo`` and ``karte export`` write.

Checked with SQLite (the tables as QGIS writes them), GDAL (``ogrinfo`` reads ``layer_styles`` as a
layer with QGIS's fields; the GDAL validator finds nothing new) and by parsing what QGIS would
parse (QML, SLD, the ``.qgs`` in the ``.qgz``). No QGIS is installed here: that QGIS draws them is
not checked.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from datetime import UTC, datetime

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point
from typer.testing import CliRunner

from karte.cli import app
from karte.domain import gaps
from karte.render import district_map, overview, qgis_project, qgis_styles
from karte.services.qgis import write_qgis
from karte.store import gpkg_styles
from tests.conftest import copy_store

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SE = "{http://www.opengis.net/se}"
POINT_LAYERS = ("shelters", "services", "emergency_sites", "register", "cooperators")


@pytest.fixture(scope="module")
def styled(demo, tmp_path_factory):
    """A copy of the demo store with the QGIS package written once."""
    path = copy_store(demo[1] / "karte.gpkg", tmp_path_factory.mktemp("qgis") / "karte.gpkg")
    write_qgis(path, now=NOW)
    return path


def _rows(path) -> list[dict]:
    return gpkg_styles.read_styles(path)


def _qgs(path) -> ET.Element:
    qgz = gpkg_styles.read_project(path)
    with zipfile.ZipFile(io.BytesIO(qgz)) as archive:
        names = archive.namelist()
        assert names == ["karte.qgs"]
        return ET.fromstring(archive.read(names[0]))


def _feature_layers(path) -> set[str]:
    with sqlite3.connect(path) as con:
        rows = con.execute("SELECT table_name FROM gpkg_contents WHERE data_type = 'features'")
        return {r[0] for r in rows}


# --- the tables as QGIS writes them -------------------------------------------------------------

def test_layer_styles_table_is_qgis_own(styled):
    with sqlite3.connect(styled) as con:
        columns = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
        contents = con.execute("SELECT data_type, identifier, srs_id FROM gpkg_contents"
                               " WHERE table_name = 'layer_styles'").fetchone()
        projects = [r[1] for r in con.execute("PRAGMA table_info(qgis_projects)")]
        pk = con.execute("SELECT name FROM pragma_table_info('qgis_projects') WHERE pk = 1").fetchone()
        registered = con.execute("SELECT count(*) FROM gpkg_contents WHERE table_name = 'qgis_projects'"
                                 ).fetchone()[0]
    assert columns == ["id", *gpkg_styles.STYLE_COLUMNS]
    assert contents == ("attributes", "layer_styles", 0)
    assert projects == ["name", "metadata", "content"] and pk == ("name",)
    assert registered == 0  # QGIS's project storage does not register it either


def test_one_default_style_per_feature_layer(styled):
    rows = _rows(styled)
    layers = _feature_layers(styled)
    defaults = [r for r in rows if r["useAsDefault"] == 1]
    assert sorted(r["f_table_name"] for r in defaults) == sorted(layers)
    assert all(r["f_geometry_column"] == "geom" and r["f_table_schema"] == "" and r["styleName"] == "karte"
               for r in rows)
    assert all(r["update_time"] == "2026-12-01T03:00:00.000Z" for r in rows)


def test_gdal_reads_layer_styles_with_qgis_fields(styled):
    if not shutil.which("ogrinfo"):
        pytest.skip("ogrinfo is not installed")
    result = subprocess.run(["ogrinfo", "-ro", "-so", str(styled), "layer_styles"], capture_output=True,
                            text=True, check=True)
    assert f"Feature Count: {len(_feature_layers(styled))}" in result.stdout
    assert "FID Column = id" in result.stdout
    assert "useAsDefault: Integer(Boolean)" in result.stdout
    assert "update_time: DateTime" in result.stdout


def test_gdal_validator_finds_nothing_new(demo, styled, tmp_path):
    """The GDAL validator's findings on the styled file are those of the file before (GDAL 3.6's
    validator predates the GPKG 1.4 R-tree triggers that the GDAL writing the store uses)."""
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin")  # the system's, with GDAL's bindings
    if python is None:
        pytest.skip("no system python3")
    probe = subprocess.run([python, "-c", "import osgeo_utils.samples.validate_gpkg"], capture_output=True)
    if probe.returncode:
        pytest.skip("GDAL's validate_gpkg is not installed")
    before = copy_store(demo[1] / "karte.gpkg", tmp_path / "before.gpkg")

    def findings(path):
        run = subprocess.run([python, "-m", "osgeo_utils.samples.validate_gpkg", "-k", str(path)],
                             capture_output=True, text=True)
        return sorted(line for line in (run.stdout + run.stderr).splitlines() if line.strip())

    assert findings(styled) == findings(before)


# --- the styles ---------------------------------------------------------------------------------

def _style(styled, layer) -> dict:
    return next(r for r in _rows(styled) if r["f_table_name"] == layer)


def _renderer(qml: str) -> ET.Element:
    return ET.fromstring(qml).find("renderer-v2")


def test_every_qml_and_sld_parses(styled):
    for row in _rows(styled):
        root = ET.fromstring(row["styleQML"])
        assert root.tag == "qgis" and root.find("renderer-v2") is not None, row["f_table_name"]
        sld = ET.fromstring(row["styleSLD"].encode("utf-8"))
        assert sld.tag == "{http://www.opengis.net/sld}StyledLayerDescriptor"
        assert sld.get("version") == "1.1.0"
        assert sld.find(f".//{SE}Rule") is not None, row["f_table_name"]


def test_districts_are_the_city_maps_ageing_classes(styled, demo_layers):
    row = _style(styled, "districts")
    renderer = _renderer(row["styleQML"])
    assert renderer.get("type") == "graduatedSymbol"
    assert qgis_styles.qml_colours(row["styleQML"]) >= {c.lower() for c in overview.PALETTE}
    # the classes are the web's: the districts of each range are those the city map colours so
    small = demo_layers["small_areas"]
    grouped = small.groupby("district_code")[["age_0_14", "age_15_64", "age_65_74", "age_75_plus"]].sum()
    rate = (grouped["age_65_74"] + grouped["age_75_plus"]) / grouped.sum(axis=1)
    cls, breaks = overview.classify(rate, k=len(overview.PALETTE))
    ranges = renderer.find("ranges").findall("range")
    labels = [r.get("label") for r in ranges]
    assert labels[:5] == [f"{breaks[i]:.1%} 〜 {breaks[i + 1]:.1%}" for i in range(5)]
    for code, k, value in zip(rate.index, cls, rate, strict=True):
        hits = [i for i, r in enumerate(ranges[:5])
                if float(r.get("lower")) <= value <= float(r.get("upper"))]
        assert hits == [k], code
    # Japanese labels: the district names without the stand-in mark, with a halo
    text = ET.fromstring(row["styleQML"]).find("labeling/settings/text-style")
    assert "district_name" in text.get("fieldName") and "（仮）" in text.get("fieldName")
    assert text.find("text-buffer").get("bufferDraw") == "1"
    sld = ET.fromstring(row["styleSLD"].encode())
    assert sld.find(f".//{SE}TextSymbolizer/{SE}Halo") is not None
    assert len(sld.findall(f".//{SE}Rule")) == 7  # 5 classes, no data, labels


def test_shelters_tell_welfare_shelters_apart(styled):
    row = _style(styled, "shelters")
    renderer = _renderer(row["styleQML"])
    assert renderer.get("type") == "categorizedSymbol" and '"welfare"' in renderer.get("attr")
    labels = [c.get("label") for c in renderer.iter("category")]
    assert labels == ["福祉避難所（十字）", "指定避難所"]
    assert qgis_styles.qml_colours(row["styleQML"]) >= {qgis_styles.WEB["welfare"]["color"],
                                                        qgis_styles.WEB["shelters"]["fillColor"]}


def test_services_show_salons(styled):
    row = _style(styled, "services")
    assert _renderer(row["styleQML"]).get("type") == "categorizedSymbol"
    assert qgis_styles.WEB["salons"]["fillColor"] in qgis_styles.qml_colours(row["styleQML"])


def test_register_is_coloured_by_the_gap_kinds(styled):
    row = _style(styled, "register")
    renderer = _renderer(row["styleQML"])
    assert renderer.get("type") == "categorizedSymbol"
    values = [c.get("value") for c in renderer.iter("category")]
    assert values == ["no_consent", "no_supporter", "no_plan", "none"]
    colours = qgis_styles.qml_colours(row["styleQML"])
    assert {gaps.BY_KEY[k].colour for k in values[:3]} | {gaps.NO_GAP.colour} <= colours


def test_point_layers_sit_above_polygons_in_the_project(styled):
    order = [e.get("id") for e in _qgs(styled).find("layer-tree-group").findall("layer-tree-layer")]
    ids = [qgis_project.layer_id(n) for n in ("shelters", "services", "districts", "small_areas")]
    positions = [order.index(i) for i in ids]
    assert positions == sorted(positions)


def test_web_colours_are_the_district_maps(demo_layers):
    """:data:`qgis_styles.WEB` (the district map's own :data:`~district_map.STYLES`) is what the
    district web map draws with."""
    districts = demo_layers["districts"]
    one = districts[districts["district_code"] == "S01"]
    services = demo_layers["services"][demo_layers["services"]["district_code"] == "S01"]
    shelters = pd.concat([demo_layers["shelters"][demo_layers["shelters"]["welfare"].astype(bool)].head(1),
                          demo_layers["shelters"][~demo_layers["shelters"]["welfare"].astype(bool)].head(1)])
    centre = one.geometry.iloc[0].representative_point()
    catchments = gpd.GeoDataFrame({"name": ["x"], "radius_m": [500.0]}, geometry=[centre.buffer(500)],
                                  crs=one.crs)
    coverage = gpd.GeoDataFrame({"uncovered_elderly": [3]},
                                geometry=[Point(centre.x + 50, centre.y).buffer(80)], crs=one.crs)
    cooperators = demo_layers["cooperators"][demo_layers["cooperators"]["district_code"] == "S01"].head(2)
    m = district_map.district_map(district=one, catchments=catchments, coverage=coverage, services=services,
                                  shelters=shelters, cooperators=cooperators, register=None,
                                  asset_base="assets", basemap="none")
    page = m.get_root().render()
    for key, style in qgis_styles.WEB.items():
        if key == "register":
            continue
        for attr in ("color", "fillColor"):
            if attr in style:
                assert f'"{attr}": "{style[attr]}"' in page, (key, attr)


def test_styles_of_layers_not_in_the_demo_file():
    layers = [qgis_styles.LayerInfo("coverage", "geom", "MULTIPOLYGON"),
              qgis_styles.LayerInfo("catchments", "geom", "MULTIPOLYGON"),
              qgis_styles.LayerInfo("districts", "geom", "MULTIPOLYGON")]
    styles = {s.layer: s for s in qgis_styles.layer_styles(layers)}
    assert qgis_styles.WEB["coverage"]["fillColor"] in qgis_styles.qml_colours(styles["coverage"].qml)
    assert qgis_styles.WEB["catchments"]["fillColor"] in qgis_styles.qml_colours(styles["catchments"].qml)
    assert styles["districts"].renderer == "singleSymbol"  # no rates: an outline with names


# --- the project --------------------------------------------------------------------------------

def test_project_sources_resolve_to_layers_in_the_file(styled):
    qgs = _qgs(styled)
    layers = _feature_layers(styled)
    sources = [e.text for e in qgs.iter("datasource")]
    assert sources and all(s.startswith("./karte.gpkg|layername=") for s in sources)
    assert {s.split("layername=")[1] for s in sources} == layers
    assert qgs.find("properties/Paths/Absolute").text == "false"
    assert qgs.find("projectCrs/spatialrefsys/authid").text == "EPSG:6678"
    with sqlite3.connect(styled) as con:
        box = con.execute("SELECT min_x, min_y, max_x, max_y FROM gpkg_contents"
                          " WHERE table_name = 'districts'").fetchone()
    extent = qgs.find("mapcanvas/extent")
    assert tuple(float(extent.find(t).text) for t in ("xmin", "ymin", "xmax", "ymax")) == pytest.approx(box)
    # each map layer carries its style's renderer
    for layer in qgs.iter("maplayer"):
        assert layer.find("renderer-v2") is not None and layer.find("provider").text == "ogr"


def test_project_metadata_as_qgis_reads_it(styled):
    with sqlite3.connect(styled) as con:
        name, metadata, content = con.execute("SELECT name, metadata, content FROM qgis_projects").fetchone()
    assert name == "karte"
    assert metadata == '{"last_modified_time": "2026-12-01T03:00:00", "last_modified_user": "karte"}'
    assert isinstance(content, str) and bytes.fromhex(content)[:2] == b"PK"  # hex text of a zip


def test_the_project_opens_from_a_copy_elsewhere(styled, tmp_path):
    moved = tmp_path / "elsewhere" / "karte.gpkg"
    moved.parent.mkdir()
    copy_store(styled, moved)
    qgs = _qgs(moved)
    for source in (e.text for e in qgs.iter("datasource")):
        file, layer = source.split("|layername=")
        assert (moved.parent / file).resolve() == moved.resolve()
        assert layer in _feature_layers(moved)


# --- writing again, export, privacy -------------------------------------------------------------

def test_writing_twice_gives_the_same_rows(styled, tmp_path):
    (tmp_path / "again").mkdir()
    again = copy_store(styled, tmp_path / "again" / "karte.gpkg")  # the same name: sources name the file
    write_qgis(again, now=datetime(2027, 1, 1, tzinfo=UTC))
    assert _rows(again) == _rows(styled)
    with sqlite3.connect(again) as a, sqlite3.connect(styled) as b:
        assert a.execute("SELECT * FROM qgis_projects").fetchall() == b.execute("SELECT * FROM qgis_projects"
                                                                              ).fetchall()


def test_a_changed_style_replaces_its_row_and_keeps_a_users_own(styled, tmp_path):
    path = copy_store(styled, tmp_path / "changed.gpkg")
    with sqlite3.connect(path) as con:
        con.execute("UPDATE layer_styles SET styleQML = 'old' WHERE f_table_name = 'shelters'")
        con.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name,"
                    " f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, owner)"
                    " VALUES ('', '', 'districts', 'geom', 'mine', '<qgis/>', '', 1, 'mine', '')")
    write_qgis(path, now=datetime(2027, 1, 1, tzinfo=UTC))
    rows = _rows(path)
    shelters = [r for r in rows if r["f_table_name"] == "shelters"]
    assert len(shelters) == 1 and shelters[0]["styleQML"] != "old"
    assert shelters[0]["update_time"] == "2027-01-01T00:00:00.000Z"
    mine = [r for r in rows if r["styleName"] == "mine"]
    assert len(mine) == 1 and mine[0]["useAsDefault"] == 0
    defaults = [r["styleName"] for r in rows if r["f_table_name"] == "districts" and r["useAsDefault"]]
    assert defaults == ["karte"]


def test_a_failed_write_changes_nothing(styled, tmp_path):
    path = copy_store(styled, tmp_path / "failed.gpkg")
    before = _rows(path)
    style = qgis_styles.layer_styles([qgis_styles.LayerInfo("shelters", "geom", "POINT")])[0]
    with pytest.raises(Exception, match="二つ"):
        gpkg_styles.write_qgis(path, [style, style], b"PK", now=datetime(2027, 1, 1, tzinfo=UTC))
    assert _rows(path) == before


def test_export_carries_styles_and_project(demo, tmp_path):
    store = copy_store(demo[1] / "karte.gpkg", tmp_path / "store.gpkg")
    out = tmp_path / "export.gpkg"
    result = CliRunner().invoke(app, ["export", str(out), "--store", str(store)])
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    layers = _feature_layers(out)
    assert sorted(r["f_table_name"] for r in rows if r["useAsDefault"]) == sorted(layers)
    sources = {e.text for e in _qgs(out).iter("datasource")}
    assert sources == {f"./export.gpkg|layername={n}" for n in layers}


def test_no_personal_value_in_any_style_or_project(styled, demo_layers):
    with sqlite3.connect(styled) as con:
        text = "\n".join(r[0] + r[1] for r in con.execute("SELECT styleQML, styleSLD FROM layer_styles"))
    text += ET.tostring(_qgs(styled), encoding="unicode")
    personal = set()
    for layer, columns in (("register", ("name", "kana", "address", "phone", "birth_date", "person_id")),
                           ("cooperators", ("name", "phone", "cooperator_id"))):
        frame = demo_layers[layer]
        for column in columns:
            if column in frame:
                personal |= {str(v) for v in frame[column].dropna() if len(str(v)) >= 4}
    assert personal
    leaked = sorted(v for v in personal if v in text)
    assert leaked == []


@pytest.mark.slow
def test_demo_command_writes_styles_and_project(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--basemap", "none"])
    assert result.exit_code == 0, result.output
    store = tmp_path / "karte.gpkg"
    rows = _rows(store)
    assert sorted(r["f_table_name"] for r in rows if r["useAsDefault"]) == sorted(_feature_layers(store))
    assert {e.text for e in _qgs(store).iter("datasource")} == {
        f"./karte.gpkg|layername={n}" for n in _feature_layers(store)}
