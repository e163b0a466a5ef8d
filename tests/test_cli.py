"""The command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import copy_store
from typer.testing import CliRunner

from karte.cli import app

runner = CliRunner()


def test_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("demo", "build", "show", "districts"):
        assert cmd in res.output


def test_show_json_and_table(demo):
    _, folder = demo
    res = runner.invoke(app, ["show", "S05", "--store", str(folder / "karte.gpkg"), "--json"])
    assert res.exit_code == 0, res.output
    karte = json.loads(res.stdout)
    assert karte["district"]["code"] == "S05"
    assert "personal" not in karte
    res = runner.invoke(app, ["show", "S05", "--store", str(folder / "karte.gpkg")])
    assert res.exit_code == 0
    assert "基礎情報" in res.stdout and "合成データ" in res.stdout


def test_show_personal_lists_only_consented_rows_and_is_logged(demo):
    result, folder = demo
    store = folder / "karte.gpkg"
    res = runner.invoke(app, ["show", "S05", "--store", str(store), "--json", "--personal"])
    assert res.exit_code == 0, res.output
    people = json.loads(res.stdout)["personal"]["register"]
    reg = result.store.read("register", district="S05")
    shareable = reg[reg["consent"].isin(["consented", "ordinance"])]
    assert {p["person_id"] for p in people} == set(shareable["person_id"])
    log = result.store.audit_log()
    assert (log["district"] == "S05").any() and (log["route"] == "cli:show").any()
    # the log holds counts, never names
    assert not set(reg["name"]) & set(log.astype(str).to_numpy().ravel())


def test_unknown_district_is_a_clear_error(demo):
    _, folder = demo
    res = runner.invoke(app, ["show", "S99", "--store", str(folder / "karte.gpkg")])
    assert res.exit_code == 1
    assert "S99" in res.stderr and "Traceback" not in res.stderr


def test_missing_store_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["show", "S01", "--store", str(tmp_path / "none.gpkg")])
    assert res.exit_code == 1
    assert "karte demo" in res.stderr


@pytest.mark.slow
def test_build_with_district_polygons_apportions_statistics(demo, tmp_path):
    """Districts given as polygons: counts are apportioned and still add up to the city."""

    result, folder = demo
    store = tmp_path / "k.gpkg"
    copy_store(folder / "karte.gpkg", store)
    polys = result.base.districts[["district_code", "district_name", "geometry"]].copy()
    polys["geometry"] = polys.geometry.buffer(30)  # lines that no longer follow census lines
    polys = polys.rename(columns={"district_code": "code", "district_name": "name"})
    polys.to_crs(4326).to_file(tmp_path / "d.geojson", driver="GeoJSON")
    res = runner.invoke(app, ["build", "--store", str(store), "--district-polygons",
                              str(tmp_path / "d.geojson"), "--code-field", "code",
                              "--name-field", "name"])
    assert res.exit_code == 0, res.output
    from karte.store import GeoPackageStore

    kartes = GeoPackageStore(store).read("kartes")
    pops = [next(m["value"] for m in json.loads(k)["base"] if m["key"] == "population")
            for k in kartes["karte_json"]]
    # overlapping buffers share the border strips; the total stays within 1 % of the city
    assert abs(sum(pops) - 285_506) / 285_506 < 0.01
    assert json.loads(GeoPackageStore(store).meta()["by_polygon"]) is True


@pytest.mark.slow
def test_demo_command_end_to_end(tmp_path):
    res = subprocess.run([sys.executable, "-m", "karte.cli", "demo", "--out", str(tmp_path),
                          "--basemap", "none"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "karte.gpkg").exists()
    assert (tmp_path / "overview.html").exists()
    assert len(list((tmp_path / "kartes").glob("S*.json"))) >= 35
    assert "地区数" in res.stdout


@pytest.mark.slow
def test_standin_mapping_is_reproducible(tmp_path):
    from karte.settings import REPO_DATA

    res = runner.invoke(app, ["districts", "standin", "--out", str(tmp_path / "m.csv")])
    assert res.exit_code == 0, res.output
    shipped = (REPO_DATA / "districts" / "aomori_standin_districts.csv").read_text(encoding="utf-8")
    assert (tmp_path / "m.csv").read_text(encoding="utf-8") == shipped
