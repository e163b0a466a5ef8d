"""The salon coverage is analysed once per build and kept in the store (:class:`karte.snapshot.Kept`):
a cold process prints a district's sheet from it, with the same text as from a fresh analysis;
a change of what the coverage depends on (services, the season) is analysed again, a change of
anything else (a plan) is not."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import shapely
from api_fixtures import pdf_text

from karte import snapshot
from karte.analysis import current_params
from karte.domain.schema import Edition
from karte.render.sheet_model import SheetOptions
from karte.render.sheets import render_sheet
from karte.services import sheets
from karte.services.sheets import build_sheet, print_sheets
from karte.snapshot import COVERAGE_LAYER, Kept, Snapshot
from karte.store import GeoPackageStore
from karte.store.scoped import scoped

pytest_plugins = ["pg_fixtures"]

FIGURES = ("elderly", "covered_elderly", "age_75_plus", "covered_75_plus", "cells")


def text_of(pdf: Path) -> str:
    return pdf_text(pdf.read_bytes())


@pytest.fixture
def store(demo_copy) -> GeoPackageStore:
    return demo_copy


def fresh(store) -> Snapshot:
    """The store's build analysed from scratch (no kept coverage, no cache)."""
    snap = Snapshot.load(store, stamp=store.stamp(), params=current_params())
    snap.coverage()
    return snap


def same_coverage(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for code in a:
        for name in FIGURES:
            assert getattr(a[code], name) == getattr(b[code], name), (code, name)
        if a[code].area is None:
            assert b[code].area is None, code
        else:  # the same shape, vertex for vertex, and the same kind (Polygon or MultiPolygon)
            assert shapely.to_wkb(a[code].area) == shapely.to_wkb(b[code].area), code


def kept_keys(store) -> set[str]:
    return set(store.read(COVERAGE_LAYER)["key"])


def test_the_build_keeps_the_coverage_and_a_cold_process_prints_from_it(store, tmp_path):
    snap = snapshot.current(store)
    assert snap.has_coverage()  # read from the store: the build analysed it
    assert kept_keys(store) == {snap._kept.key(snap)}
    analysed = fresh(store)
    same_coverage(snap.coverage()[0], analysed.coverage()[0])
    assert snap.coverage()[1] == analysed.coverage()[1]

    # a cold process that would fail if it analysed the coverage again
    out = tmp_path / "cold"
    script = textwrap.dedent(f"""
        import karte.snapshot
        from pathlib import Path
        from karte.services.sheets import print_sheets
        from karte.store import GeoPackageStore

        def refuse(*args, **kwargs):
            raise AssertionError("the coverage was analysed again")

        karte.snapshot.analyse_coverage = refuse
        res = print_sheets(GeoPackageStore({str(store.path)!r}), ["S01"], out=Path({str(out)!r}))
        print(res.processes)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1"  # one district, no pool of workers

    # the same sheet drawn from the fresh analysis
    coverages, city = analysed.coverage()
    sheet = build_sheet(analysed, "S01", options=SheetOptions(edition=Edition.PUBLIC),
                        coverage=coverages["S01"], city_coverage=city)
    expected = tmp_path / "fresh.pdf"
    expected.write_bytes(render_sheet(sheet)[0])
    assert "徒歩圏外の高齢者" in text_of(expected)
    assert text_of(out / "S01-public.pdf") == text_of(expected)


def test_changed_services_are_analysed_again_and_replace_the_kept_rows(store):
    before = snapshot.current(store)
    old_key = before._kept.key(before)
    old = before.coverage()[0]
    services = store.read("services")
    salons = services[services["kind"] == "salon"]
    gone = salons.iloc[0]
    store.write({"services": services[services["service_id"] != gone["service_id"]]})

    snap = snapshot.current(store)
    assert snap.stamp != before.stamp
    assert not snap.has_coverage()  # the kept rows are for other services
    assert snap._kept.key(snap) != old_key
    coverages, _ = snap.coverage()
    assert kept_keys(store) == {snap._kept.key(snap)}  # kept for the new services, the old rows gone
    same_coverage(coverages, fresh(store).coverage()[0])
    assert any(coverages[c].covered_elderly != old[c].covered_elderly for c in coverages)

    snapshot.clear()  # as another process: reads what was just kept
    again = snapshot.current(store)
    assert again.has_coverage()
    same_coverage(again.coverage()[0], coverages)


def test_a_register_written_keeps_the_coverage_and_the_season_does_not(store, monkeypatch):
    snap = snapshot.current(store)
    key = snap._kept.key(snap)
    register = store.read("register")
    store.write({"register": register.iloc[1:]})  # a snapshot layer: a new stamp
    snapshot.clear()
    after = snapshot.current(store)
    assert after.stamp != snap.stamp and len(after.analysis_inputs()["register"]) == len(register) - 1
    assert after.has_coverage() and after._kept.key(after) == key

    monkeypatch.setenv("KARTE_WINTER", "on")
    snapshot.clear()
    winter = snapshot.current(store)
    assert winter.params.winter and winter._kept.key(winter) != key
    assert not winter.has_coverage()


def test_a_municipality_view_keeps_its_own_rows_beside_the_whole_stores(store):
    whole = snapshot.current(store)
    whole_key = whole._kept.key(whole)
    view = scoped(store, "02201")
    snap = snapshot.current(view)
    assert not snap.has_coverage()  # another key: the view's municipality is part of it
    snap.coverage()
    assert kept_keys(store) == {whole_key, snap._kept.key(snap)}
    rows = store.read(COVERAGE_LAYER)
    assert set(rows.loc[rows["key"] == whole_key, "municipality_code"].isna()) == {True}
    assert set(rows.loc[rows["key"] != whole_key, "municipality_code"]) == {"02201"}
    snapshot.clear()
    assert snapshot.current(store).has_coverage() and snapshot.current(view).has_coverage()


def test_a_store_that_refuses_the_write_still_prints(store, tmp_path, monkeypatch):
    def refuse(self, layers, **kwargs):
        from karte.domain.errors import StoreError

        raise StoreError("read-only")

    monkeypatch.setattr(GeoPackageStore, "write", refuse)
    snap = snapshot.current(store)
    snap._kept = Kept(store)
    snap._kept._key = "another build"  # nothing kept for it: analysed here, the write refused
    assert not snap.has_coverage()
    assert snap.coverage()[0]["S01"].elderly > 0
    res = print_sheets(store, ["S01"], out=tmp_path)
    assert res.files["S01"].exists()


def test_one_district_is_drawn_without_a_pool(store, tmp_path, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started for one district")

    monkeypatch.setattr(sheets.mp, "get_context", no_pool)
    res = print_sheets(store, ["S02"], out=tmp_path, workers=2)
    assert res.processes == 1 and res.pages["S02"] == 2


@pytest.mark.postgis
def test_postgis_keeps_the_coverage_in_the_store_too(pg_store, store):
    from karte.store.cli import import_store

    import_store(store.path, pg_store)
    snapshot.clear()
    snap = snapshot.current(pg_store)
    coverages, city = snap.coverage()
    assert COVERAGE_LAYER in pg_store.layers()
    assert snap._kept.key(snap) in kept_keys(pg_store)
    same_coverage(coverages, fresh(store).coverage()[0])

    stamp = pg_store.stamp()
    snapshot.clear()
    again = snapshot.current(pg_store)
    assert pg_store.stamp() == stamp  # keeping the coverage is no new build
    assert again.has_coverage()
    same_coverage(again.coverage()[0], coverages)
    assert again.coverage()[1] == city
    services = pg_store.read("services")
    pg_store.write({"services": services.iloc[1:]})
    snapshot.clear()
    assert not snapshot.current(pg_store).has_coverage()


def test_the_kept_layer_is_no_snapshot_layer():
    from karte.domain.layers import LAYERS, SNAPSHOT_LAYERS

    # writing it must not change the stamp (it would retire the snapshot it was kept for)
    assert COVERAGE_LAYER not in SNAPSHOT_LAYERS and COVERAGE_LAYER not in LAYERS


def test_a_product_is_derived_once_per_build_for_every_process(store):
    from karte.snapshot import PRODUCTS_LAYER

    calls = []

    def derive():
        calls.append(1)
        return {"cells": [["base", "S01", "population"]], "n": len(calls)}

    def kept(snap):
        return snap.kept("test-product", derive, encode=json.dumps, decode=json.loads)

    first = kept(snapshot.current(store))
    assert first["n"] == 1 and kept(snapshot.current(store)) is first  # memo in this process
    snapshot.clear()  # another process: decoded from the store
    assert kept(snapshot.current(store)) == first and len(calls) == 1

    store.write({"register": store.read("register").iloc[1:]})  # a new build stamp
    snapshot.clear()
    assert kept(snapshot.current(store))["n"] == 2
    rows = store.read(PRODUCTS_LAYER)
    assert list(rows["product"]) == ["test-product"]  # the earlier build's row replaced

    rows.loc[:, "value"] = "{not json"  # a value this version cannot read is derived again
    store.write({PRODUCTS_LAYER: rows})
    snapshot.clear()
    assert kept(snapshot.current(store))["n"] == 3


def test_the_suppression_plan_kept_in_the_store_is_the_plan_computed(store):
    """A cold process decodes the build's suppression plan from the store: the same hidden and
    primary cells as choosing them afresh, at two thresholds."""
    from karte.services import suppression

    for max_small in (2, 5):
        snapshot.clear()
        computed = suppression.choose(suppression.model(snapshot.current(store)), max_small)
        assert suppression.plan(snapshot.current(store), max_small) == computed
        snapshot.clear()  # another process
        decoded = suppression.plan(snapshot.current(store), max_small)
        assert decoded == computed and decoded.hidden and isinstance(next(iter(decoded.hidden)), tuple)
