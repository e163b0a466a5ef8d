"""The documented samples (docs/import/, UTF-8 and CP932) load cleanly into a store built on the
real Aomori small areas and stand-in districts, and the header table in the docs is the code's."""

from __future__ import annotations

import shutil

import pytest
from test_import_support import GEOCODER, TODAY

from gis.districts import dissolve_districts
from karte.districts import read_mapping
from karte.importing import import_file
from karte.importing.headers import FIELDS, markdown_table
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore

DOCS = REPO_DATA.parent / "docs" / "import"
KINDS = {"register": "register", "cooperators": "cooperators", "services": "services",
         "shelters": "shelters", "stats": "stats", "estat_age": "stats", "districts_map": "districts"}


@pytest.fixture(scope="module")
def base_store(tmp_path_factory, small_areas):
    mapping = read_mapping(REPO_DATA / "districts" / "aomori_standin_districts.csv", small_areas)
    small = small_areas.merge(mapping[["key_code", "district_code"]], on="key_code")
    small["synthetic_age"] = True
    path = tmp_path_factory.mktemp("base") / "base.gpkg"
    GeoPackageStore(path).write({"small_areas": small, "districts": dissolve_districts(small, mapping),
                                 "district_map": mapping})
    return path


@pytest.mark.parametrize("encoding", ["utf8", "cp932"])
@pytest.mark.parametrize("sample", sorted(KINDS))
def test_samples_load(tmp_path, base_store, sample, encoding):
    shutil.copy(base_store, tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    path = DOCS / f"{sample}.{encoding}.csv"
    report = import_file(store, KINDS[sample], path, geocoder=GEOCODER, today=TODAY)
    assert report.ok and report.encoding == ("cp932" if encoding == "cp932" else "utf-8")
    assert [w for w in report.warnings if w.row is not None and w.column is not None and
            "取り込み対象外" in w.message_ja] == []            # every sample column is a known one
    if sample in ("register", "cooperators", "services", "shelters"):
        assert report.written and report.changes[0].added == report.rows > 0
    if sample == "districts_map":
        assert not report.changed                          # it is the stand-in table itself


def test_register_sample_values(tmp_path, base_store):
    shutil.copy(base_store, tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    import_file(store, "register", DOCS / "register.cp932.csv", geocoder=GEOCODER, today=TODAY)
    reg = store.read("register").set_index("person_id")
    assert reg.loc["P0001", "birth_date"] == "1940-03-02"
    assert reg.loc["P0002", "kana"] == "クドウ キヨ"
    assert reg.loc["P0002", "consent"] == "ordinance"
    assert reg.loc["P0004", "consent_date"] == "2024-05-01"
    assert reg.loc["P0005", "location_precision"] == "exact"
    assert reg["district_code"].notna().all() and reg["key_code"].notna().all()


def test_district_boundary_sample(tmp_path, base_store):
    shutil.copy(base_store, tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    report = import_file(store, "districts", DOCS / "districts.geojson")
    # the simplified stand-in districts: same codes, shapes within the simplification
    assert report.changes[0].added == report.changes[0].removed == 0
    assert len(store.read("districts")) == 42


def test_docs_print_the_header_table():
    text = (DOCS / "README.md").read_text(encoding="utf-8")
    for kind in FIELDS:
        assert markdown_table(kind) in text
