"""The documented samples (docs/import/, UTF-8 and CP932) load cleanly into a store built on the
real Aomori small areas and stand-in districts, and the header table in the docs is the code's."""

from __future__ import annotations

import pytest
from conftest import copy_store
from test_import_support import run_import

from gis.districts import dissolve_districts
from karte.districts import read_mapping
from karte.domain.errors import ValidationError
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
    copy_store(base_store, tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    path = DOCS / f"{sample}.{encoding}.csv"
    report = run_import(store, KINDS[sample], path)
    assert report.ok and report.encoding == ("cp932" if encoding == "cp932" else "utf-8")
    assert [w for w in report.warnings if w.row is not None and w.column is not None and
            "取り込み対象外" in w.message_ja] == []            # every sample column is a known one
    if sample in ("register", "cooperators", "services", "shelters"):
        assert report.written and report.changes[0].added == report.rows > 0
    if sample == "districts_map":
        assert not report.changed                          # it is the stand-in table itself


def test_register_sample_values(tmp_path, base_store):
    copy_store(base_store, tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    run_import(store, "register", DOCS / "register.cp932.csv")
    reg = store.read("register").set_index("person_id")
    assert reg.loc["P0001", "birth_date"] == "1940-03-02"
    assert reg.loc["P0002", "kana"] == "クドウ キヨ"
    assert reg.loc["P0002", "consent"] == "ordinance"
    assert reg.loc["P0004", "consent_date"] == "2024-05-01"
    assert reg.loc["P0005", "location_precision"] == "exact"
    assert reg["district_code"].notna().all() and reg["key_code"].notna().all()


def test_district_boundary_sample(tmp_path, base_store):
    copy_store(base_store, tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    report = import_file(store, "districts", DOCS / "districts.geojson")
    # the simplified stand-in districts: same codes, shapes within the simplification
    assert report.changes[0].added == report.changes[0].removed == 0
    assert len(store.read("districts")) == 42


def test_docs_print_the_header_table():
    text = (DOCS / "README.md").read_text(encoding="utf-8")
    for kind in FIELDS:
        assert markdown_table(kind) in text


def test_district_map_places_rows_through_their_small_area(tmp_path, base_store, small_areas):
    """--district-map: the row's small area (from its town point or coordinates) decides its
    district through the given table, not the store's district polygons."""
    copy_store(base_store, tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    keys = sorted(small_areas["key_code"])
    table = tmp_path / "map.csv"
    names = {"N1": "（仮）奇数", "N2": "（仮）偶数"}
    codes = ["N1" if i % 2 else "N2" for i in range(len(keys))]
    lines = ["KEY_CODE,地区コード,地区名"] + [f"{k},{c},{names[c]}" for k, c in zip(keys, codes, strict=True)]
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = run_import(store, "register", DOCS / "register.utf8.csv", district_map=table)
    assert report.written
    reg = store.read("register")
    odd = {k for i, k in enumerate(keys) if i % 2}
    assert reg["key_code"].notna().all()
    assert list(reg["district_code"]) == ["N1" if k in odd else "N2" for k in reg["key_code"]]


def test_the_district_map_sample_works_as_district_map_and_its_problems_name_it(tmp_path, base_store):
    copy_store(base_store, tmp_path / "k.gpkg")
    store = GeoPackageStore(tmp_path / "k.gpkg")
    report = run_import(store, "register", DOCS / "register.cp932.csv",
                         district_map=DOCS / "districts_map.cp932.csv")
    assert report.ok and store.read("register")["district_code"].str.startswith("S").all()
    lines = (DOCS / "districts_map.utf8.csv").read_text(encoding="utf-8").splitlines()
    short = tmp_path / "short.csv"
    short.write_text("\n".join([*lines[:-1], "02201999999,S01,（仮）西田沢地区"]) + "\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        run_import(store, "register", DOCS / "register.utf8.csv", district_map=short)
    where = [(p.file, p.row, p.column) for p in info.value.problems]
    assert where == [("short.csv", None, "KEY_CODE"), ("short.csv", len(lines), "KEY_CODE")]
