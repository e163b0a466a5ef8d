"""``karte analyse``: the analyses per municipality as Dask tasks equal the in-process path
(issue 18, item 4), on a store of two municipalities of the prefecture.

The store holds the real 2015 small areas of 外ヶ浜町 (02307) and 藤崎町 (02361) with their shipped
stand-in districts and the demo's **synthetic** register, cooperators and services (and synthetic
shelters: the shipped ones are Aomori city's), built by ``bench/scale.py``. The cluster is a
``LocalCluster`` of 2 single-threaded workers *in this process* (``processes=False``: spawning two
worker processes that import karte costs more than the analyses here); the tasks still go
through the scheduler, are pickled to the workers and come back.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pandas as pd
import pytest
import shapely
from distributed import Client, LocalCluster
from typer.testing import CliRunner

from gis.params import AnalysisParams
from karte.analyse import (
    DISTRICTS_LAYER,
    MUNICIPALITIES_LAYER,
    OUTREACH_LAYER,
    RESULT_LAYERS,
    analyse,
    analyse_on_dask,
    partition,
    read_inputs,
    result_layers,
)
from karte.analysis import analyse_coverage
from karte.cli import app
from karte.domain.errors import InputError
from karte.services import outreach
from karte.snapshot import Snapshot
from karte.store import GeoPackageStore, open_store

pytest_plugins = ["pg_fixtures"]

CODES = ("02307", "02361")
PARAMS = AnalysisParams()
#: the synthetic-prefecture builder of the scale benchmark
BENCH = Path(__file__).resolve().parent.parent / "bench" / "scale.py"


def _scale_module():
    spec = importlib.util.spec_from_file_location("bench_scale", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def layers():
    return _scale_module().prefecture(codes=list(CODES), seed=2026)


@pytest.fixture(scope="module")
def store_path(layers, tmp_path_factory):
    path = tmp_path_factory.mktemp("analyse") / "karte.gpkg"
    meta = pd.DataFrame({"key": ["synthetic"], "value": ['["register", "cooperators", "services"]']})
    GeoPackageStore(path).write({**layers, "meta": meta})
    return path


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def in_process(store_path):
    """The reference: every municipality in this process, nothing written."""
    return analyse(GeoPackageStore(store_path), params=PARAMS, in_process=True, write=False)


@pytest.fixture(scope="module")
def dask_run(store_path, client):
    """Every municipality on the cluster, written back to the store."""
    return analyse(GeoPackageStore(store_path), params=PARAMS, client=client)


def assert_same_results(a, b):
    assert sorted(a.results) == sorted(b.results)
    for code in a.results:
        x, y = a.results[code], b.results[code]
        assert x.sizes == y.sizes
        assert sorted(x.coverage) == sorted(y.coverage)
        for dcode, cov in x.coverage.items():
            other = y.coverage[dcode]
            assert (cov.elderly, cov.covered_elderly, cov.age_75_plus, cov.covered_75_plus, cov.cells) == (
                other.elderly, other.covered_elderly, other.age_75_plus, other.covered_75_plus, other.cells)
            assert (cov.area is None) == (other.area is None)
            assert cov.area is None or shapely.equals_exact(cov.area, other.area, tolerance=0)
        assert x.shares == y.shares
        for name in ("district_gaps", "person_gaps", "load", "suggestions", "ranking"):
            pd.testing.assert_frame_equal(getattr(x, name), getattr(y, name), check_exact=True)


def test_the_dask_run_equals_the_in_process_run_and_is_written_back(store_path, client, in_process,
                                                                    dask_run):
    store = GeoPackageStore(store_path)
    run = dask_run
    assert sorted(run.results) == list(CODES)
    assert run.workers == 2
    assert {r.worker for r in run.results.values()} <= set(client.scheduler_info()["workers"])
    assert_same_results(in_process, run)
    # something was found in each municipality, so "equal" compares real figures
    for r in run.results.values():
        assert r.sizes["register"] > 50 and r.district_gaps.loc["city", "at_risk"] > 0
        assert len(r.ranking) == r.sizes["small_areas"] and len(r.coverage) == r.sizes["districts"] >= 2
    # what the store now holds is the in-process run's layers
    expected = result_layers(in_process, PARAMS)
    for name in RESULT_LAYERS:
        stored = store.read(name)
        assert len(stored) == len(expected[name]) > 0, name
        assert sorted(stored["municipality_code"].unique()) == list(CODES)
    stored = store.read(DISTRICTS_LAYER).set_index(["municipality_code", "district_code"])
    want = expected[DISTRICTS_LAYER].set_index(["municipality_code", "district_code"])
    for col in ("elderly", "uncovered_elderly", "persons", "at_risk", "no_supporter", "suggested"):
        assert stored.loc[want.index, col].tolist() == pytest.approx(want[col].tolist(), abs=0, rel=0)
    assert all(pd.api.types.is_integer_dtype(stored[c]) for c in ("persons", "at_risk", "suggested"))
    assert "person_id" not in store.read(OUTREACH_LAYER).columns  # counts only


def test_facilities_within_reach_give_the_same_coverage_as_all_of_them(layers):
    """A task gets the salons near its municipality only; its coverage is the one every salon
    of the store gives."""
    part = partition(layers, params=PARAMS, municipalities=["02361"])[0]
    assert len(part.services) < len(layers["services"])
    codes = sorted(part.districts["district_code"])
    near = analyse_coverage(part.small_areas, part.services, codes, params=PARAMS)
    every = analyse_coverage(part.small_areas, layers["services"], codes, params=PARAMS)
    assert {c: (v.covered_elderly, v.cells) for c, v in near.items()} == {
        c: (v.covered_elderly, v.cells) for c, v in every.items()}


def test_municipality_restricts_the_run_and_keeps_the_others_rows(store_path, client, in_process,
                                                                   dask_run):
    store = GeoPackageStore(store_path)
    before = store.read(MUNICIPALITIES_LAYER)
    run = analyse(store, params=PARAMS, client=client, municipalities=["02361"])
    assert list(run.results) == ["02361"]
    assert_same_results(type(in_process)({"02361": in_process.results["02361"]}, 0, "", 1), run)
    after = store.read(MUNICIPALITIES_LAYER)
    pd.testing.assert_frame_equal(after, before)  # the same figures again, the other one kept
    with pytest.raises(InputError, match="市区町村コード 99999 はストアにありません"):
        analyse(store, params=PARAMS, client=client, municipalities=["99999"])


def test_the_command_runs_one_municipality_and_says_so_in_japanese(store_path, client):
    address = client.scheduler.address
    result = CliRunner().invoke(app, ["analyse", "--municipality", "02361", "--scheduler", address,
                                      "--store", str(store_path)])
    assert result.exit_code == 0, result.output
    assert "02361" in result.output and "藤崎町" in result.output and "02307" not in result.output
    assert "書き込みました" in result.output
    assert "※合成データを含みます" in result.output and "要支援者名簿" in result.output
    bad = CliRunner().invoke(app, ["analyse", "--municipality", "99999", "--scheduler", address,
                                   "--store", str(store_path)])
    assert bad.exit_code == 1 and "ストアにありません" in bad.output


@pytest.mark.postgis
def test_on_postgis_the_dask_run_reads_and_writes_the_database(layers, pg_store, client, in_process):
    pg_store.write(layers)
    run = analyse(pg_store, params=PARAMS, client=client, municipalities=["02361"])
    assert_same_results(type(in_process)({"02361": in_process.results["02361"]}, 0, "", 1), run)
    assert pg_store.read(MUNICIPALITIES_LAYER)["municipality_code"].tolist() == ["02361"]
    assert len(pg_store.read(DISTRICTS_LAYER)) == run.results["02361"].sizes["districts"]
    assert set(read_inputs(pg_store)) >= {"register", "small_areas"}



@pytest.mark.slow
def test_on_the_city_demo_a_municipalitys_task_equals_the_build_snapshot(demo):
    """One municipality (the city demo): the task's figures are the snapshot's and the outreach
    service's, to the last bit (what the pages print)."""
    store = open_store(demo[1] / "karte.gpkg")
    run = analyse(store, params=PARAMS, in_process=True, write=False)
    assert list(run.results) == ["02201"] and run.names["02201"] == "青森市"
    r = run.results["02201"]
    snap = Snapshot.load(store, stamp=store.stamp(), params=PARAMS)
    coverage, shares = snap.coverage()
    assert r.shares == shares
    def figures(found):
        return {c: (v.elderly, v.covered_elderly, v.age_75_plus, v.covered_75_plus, v.cells)
                for c, v in found.items()}

    assert figures(r.coverage) == figures(coverage)
    assert all(shapely.equals_exact(r.coverage[c].area, v.area, tolerance=0) for c, v in coverage.items()
               if v.area is not None)
    pd.testing.assert_frame_equal(r.district_gaps, snap.district_gaps, check_exact=True)
    pd.testing.assert_frame_equal(r.load, snap.supporter_load, check_exact=True)
    pd.testing.assert_frame_equal(r.suggestions, outreach._suggest(snap, PARAMS, False), check_exact=True)
    pd.testing.assert_frame_equal(r.ranking, outreach._rank(snap, PARAMS), check_exact=True)


def test_a_task_that_fails_names_its_municipality_in_japanese(layers, client):
    part = partition(layers, params=PARAMS, municipalities=["02361"])[0]
    part.register = part.register.assign(consent="たぶん")
    with pytest.raises(InputError, match=r"市区町村 02361 の分析に失敗しました.*unknown consent values"):
        analyse_on_dask(client, [part], PARAMS)
