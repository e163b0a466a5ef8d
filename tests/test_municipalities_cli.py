"""The command line on a store of several municipalities (issue 18): commands that name districts by
code read the command-line user's municipality (``KARTE_MUNICIPALITY``), since ``S01`` is in each."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from karte.cli import app
from karte.domain.layers import Layer

FIRST, SECOND = "02384", "02408"
runner = CliRunner()


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """The prefecture demo of two municipalities in a GeoPackage and each one's S01 name."""
    from karte.demo_prefecture import build_prefecture
    from karte.store import GeoPackageStore

    path = tmp_path_factory.mktemp("two-cli") / "karte.gpkg"
    store = GeoPackageStore(path)
    build_prefecture(store, seed=7, codes=[FIRST, SECOND])
    names = {(r.municipality_code, r.district_code): json.loads(r.karte_json)["district"]["name"]
             for r in store.read(Layer.KARTES).itertuples()}
    return path, names


@pytest.mark.parametrize("municipality", [FIRST, SECOND])
def test_show_reads_the_users_municipality(two, monkeypatch, municipality):
    path, names = two
    monkeypatch.setenv("KARTE_MUNICIPALITY", municipality)
    res = runner.invoke(app, ["show", "S01", "--store", str(path), "--json"])
    assert res.exit_code == 0, res.output
    karte = json.loads(res.stdout)
    assert karte["district"]["name"] == names[(municipality, "S01")]
    assert karte["district"]["municipality"]["code"] == municipality
    res = runner.invoke(app, ["districts", "list", "--store", str(path)])
    assert res.exit_code == 0, res.output
    other = SECOND if municipality == FIRST else FIRST
    assert names[(municipality, "S01")] in res.stdout and names[(other, "S01")] not in res.stdout


def test_a_municipality_the_store_does_not_hold_is_a_japanese_error(two, monkeypatch):
    path, _ = two
    monkeypatch.setenv("KARTE_MUNICIPALITY", "02201")
    res = runner.invoke(app, ["show", "S01", "--store", str(path)])
    assert res.exit_code == 1
    assert "KARTE_MUNICIPALITY" in res.output and FIRST in res.output
