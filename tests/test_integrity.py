"""Integrity of the real Aomori demo build."""

from __future__ import annotations

import json
import subprocess
import sys

import shapely

from karte.domain.layers import Layer


def test_every_small_area_in_exactly_one_district(demo):
    result, _ = demo
    sa = result.base.small_areas
    assert sa["district_code"].notna().all()
    mapping = result.base.district_map
    assert mapping["key_code"].is_unique
    assert set(mapping["key_code"]) == set(sa["key_code"])


def test_stand_in_districts_are_about_40_contiguous_and_comparable(demo):
    result, _ = demo
    d = result.base.districts
    assert 35 <= len(d) <= 45
    assert d["district_name"].str.startswith("（仮）").all()
    pops = result.stats["population"].astype(float)
    assert pops.min() >= 5500
    assert pops.max() / pops.min() < 2.5
    # contiguous: each district's small areas form one connected neighbourhood graph (polygons
    # within 50 m are neighbours, bridging the slivers of the simplified census lines; some
    # small areas are themselves multi-part, so the test is on the graph, not the geometry)
    import warnings

    from libpysal import weights

    sa = result.base.small_areas
    for code, members in sa.groupby("district_code"):
        if len(members) == 1:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = weights.fuzzy_contiguity(members.reset_index(drop=True), buffering=True, buffer=50)
        assert w.n_components == 1, code


def test_district_populations_sum_to_the_small_area_total(demo):
    result, _ = demo
    sa = result.base.small_areas
    assert int(result.stats["population"].sum()) == int(sa["population"].sum()) == 285_506
    assert int(result.stats["households"].sum()) == 117_496
    assert int(result.stats["concealed_areas"].sum()) == 33
    assert int(result.city["population"]) == 285_506


def test_every_shelter_lies_inside_the_city(demo):
    result, _ = demo
    city = shapely.union_all(result.base.small_areas.geometry.values).buffer(1)
    assert result.base.shelters.within(city).all()
    assert result.base.emergency_sites.within(city).all()


def test_concealed_areas_stay_null_in_the_store(demo):
    result, _ = demo
    stored = result.store.read(Layer.SMALL_AREAS)
    concealed = stored[stored["concealed"].astype(bool)]
    assert len(concealed) == 33
    assert concealed["population"].isna().all()
    assert concealed["age_75_plus"].isna().all()


def test_register_consistent_with_districts(demo):
    result, _ = demo
    reg = result.store.read(Layer.REGISTER)
    located = result.base.small_areas.set_index("key_code")["district_code"]
    assert (reg["district_code"] == reg["key_code"].map(located)).all()
    assert int(result.stats["support_needers"].sum()) == len(reg)
    # synthetic supporters are cooperators of the person's own district
    coop = result.store.read(Layer.COOPERATORS).set_index("cooperator_id")["district_code"]
    assigned = reg[reg["supporter_ids"].fillna("") != ""]
    assert (assigned["supporter_ids"].map(coop) == assigned["district_code"]).all()


def test_kartes_say_what_is_synthetic(demo):
    result, folder = demo
    for path in sorted((folder / "kartes").glob("*.json")):
        k = json.loads(path.read_text(encoding="utf-8"))
        assert {"age_bands", "register", "cooperators", "services"} <= set(k["synthetic"])
        assert k["fiscal_year_label"] == "令和8年度"
    assert len(list((folder / "kartes").glob("*.json"))) == len(result.kartes)


def test_karte_base_rates_match_counts(demo):
    result, _ = demo
    k = result.kartes["S14"]
    base = {m["key"]: m for m in k["base"]}
    row = result.stats.loc["S14"]
    assert base["population"]["value"] == int(row["population"])
    assert base["elderly"]["rate"] == round(int(row["elderly"]) / int(row["age_known"]), 4)
    assert base["population"]["share_of_city"] == round(int(row["population"]) / 285_506, 4)
    total = sum(c["count"] for c in k["register"]["by_consent"])
    assert total == k["register"]["total"] == int(row["support_needers"])


def test_overview_map_is_offline(demo):
    _, folder = demo
    html = (folder / "overview.html").read_text(encoding="utf-8")
    assert "assets/leaflet/leaflet.js" in html
    assert "cdn" not in html.lower() and "jquery" not in html.lower()
    assert (folder / "assets" / "leaflet" / "leaflet.js").exists()
    assert "高齢化率" in html


_GDAL_READ = """
import json, sys
import pyogrio
path = sys.argv[1]
info = pyogrio.read_info(path, layer="districts")
meta = pyogrio.read_dataframe(path, layer="meta")
print(json.dumps({"layers": [str(n) for n, _ in pyogrio.list_layers(path)], "crs": info["crs"],
                  "geometry_type": info["geometry_type"], "meta": list(meta["key"])}))
"""


def test_store_layers_open_with_gdal(demo):
    """pyogrio (GDAL) reads the store as is. In a process of its own: GDAL's SQLite must never
    open a file this process holds open with Python's sqlite3 (see karte.store.gpkg)."""
    _, folder = demo
    done = subprocess.run([sys.executable, "-c", _GDAL_READ, str(folder / "karte.gpkg")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    for name in ("small_areas", "districts", "register", "cooperators", "services", "shelters",
                 "emergency_sites", "kartes", "meta", "district_map"):
        assert name in seen["layers"]
    assert not any(name.startswith("karte_") for name in seen["layers"])
    assert "6678" in seen["crs"]
    assert seen["geometry_type"] == "MultiPolygon"
    assert "synthetic" in set(seen["meta"])


def test_gdal_ogrinfo_reads_the_geopackage(demo):
    """GDAL's own command-line tool (what QGIS uses underneath) opens every layer as is."""
    import subprocess

    _, folder = demo
    res = subprocess.run(["ogrinfo", "-ro", "-so", str(folder / "karte.gpkg"), "districts"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Geometry: Multi Polygon" in res.stdout
    assert f"Feature Count: {len(demo[0].kartes)}" in res.stdout
    assert "JGD2011" in res.stdout
    res = subprocess.run(["ogrinfo", "-ro", "-q", str(folder / "karte.gpkg")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "register (Point)" in res.stdout
