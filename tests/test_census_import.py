"""``karte census import`` of the 2020 fixture set on a copy of the demo store (issue 23): the kartes
of the new census, the concealed, merged, renamed and split areas, the district lines carried over,
the previous census kept, and a malformed file refused whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import copy_store
from typer.testing import CliRunner

from karte.census import update
from karte.census.reconcile import CENSUS_AREAS, CENSUS_YEARS, GAP_LABEL, store_sources
from karte.cli import app
from karte.settings import REPO_DATA
from karte.store import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "estat2020"
CONCEALED, TARGET = "02201103005", "02201103002"
SPLIT = ("02201017204", ("02201017401", "02201017402"))


@pytest.fixture(scope="module")
def imported(demo, tmp_path_factory):
    """The demo store after importing the fixture census: (store, plan, result)."""
    path = copy_store(demo[1] / "karte.gpkg", tmp_path_factory.mktemp("census") / "karte.gpkg")
    store = open_store(path)
    plan = update.prepare(store, FIXTURES, year=2020)
    result = update.apply(store, plan, seed=2026, data_dir=REPO_DATA)
    return store, plan, result


def test_the_plan_reports_every_kind_of_change(imported):
    _store, plan, _result = imported
    kinds = {(c.kind, c.old[0][0] if c.old else None) for c in plan.carry.changes}
    assert ("renamed", "02201129001") in kinds
    assert ("boundary", "02201036001") in kinds and ("boundary", "02201036002") in kinds
    split = next(c for c in plan.carry.changes if c.kind == "split")
    assert split.old[0][0] == SPLIT[0] and tuple(k for k, _n in split.new) == SPLIT[1]
    assert "分割" in split.text_ja()
    # the boundary change moves people between two districts, said so with its reason
    moves = [m for m in plan.carry.moves if m.key_code == "02201036001"]
    assert len(moves) == 1 and moves[0].reason == "境界変更" and moves[0].population > 100
    assert (moves[0].from_district, moves[0].to_district) == ("S14", "S13")
    report = plan.carry.districts
    assert int(report["population_by_membership"].sum()) == 275_192
    assert report.loc["S13", "moved_in"] == round(moves[0].population)


def test_the_concealed_area_is_counted_where_the_census_put_it(imported):
    store, plan, _result = imported
    (rec,) = plan.reconciliation.values()
    assert rec.gap_population == 0 and rec.merged_areas == 1 and rec.balanced
    blocks = store_sources(store, store.read("small_areas"))
    assert blocks.year == 2020
    city = blocks.for_karte("02201", "S24")
    assert city["population"]["karte"] == city["population"]["official"] == 275_192
    assert city["district"]["counted_elsewhere"][0]["target_key_code"] == TARGET
    assert city["district"]["counted_elsewhere"][0]["target_district"] == "S39"
    assert "合算先" in city["district"]["text"]


def test_kartes_are_rebuilt_for_the_new_census_with_real_age_bands(imported):
    store, _plan, result = imported
    assert result.kartes == 42
    small = store.read("small_areas").set_index("key_code")
    assert len(small) == 565 and int(small["population"].sum()) == 275_192
    assert small.loc["02201129001", "name"] == "はまなす１丁目"
    assert set(SPLIT[1]) <= set(small.index) and SPLIT[0] not in small.index
    assert not small["synthetic_age"].any()
    meta = store.meta()
    synthetic = json.loads(meta["synthetic"])
    assert "age_bands" not in synthetic and "elderly_alone" not in synthetic
    karte = json.loads(store.read("kartes")["karte_json"].iloc[0])
    base = {row["key"]: row for row in karte["base"]}
    assert base["population"]["city"] == 275_192 and base["age_65_74"]["city"] == 41_325


def test_the_previous_census_is_kept_as_history_with_a_trend(imported):
    store, _plan, result = imported
    history = store.read(CENSUS_AREAS)
    assert sorted(history.groupby("year").size().to_dict().items()) == [(2015, 564), (2020, 565)]
    assert int(history.loc[history["year"] == 2015, "population"].sum()) == 285_506
    years = store.read(CENSUS_YEARS).set_index("year")
    assert int(years.loc[2015, "official_population"]) == 287_648
    assert int(years.loc[2020, "official_population"]) == 275_192
    assert GAP_LABEL in json.loads(years.loc[2015, "reconciliation_json"])["02201"]["reason"]
    trend = result.trend
    assert {"population_2015", "population_2020", "population_change"} <= set(trend.columns)
    assert len(trend) == 42 and trend["population_2020"].sum() == pytest.approx(275_192, abs=60)
    assert trend["population_2015"].sum() == pytest.approx(285_506, abs=60)
    carried = result.previous_counts
    assert set(carried.index) == set(store.read("small_areas")["key_code"])
    assert int(carried["population"].sum()) == pytest.approx(285_506, abs=60)


def _flat(result) -> str:
    """The command's output without the console's line wrapping."""
    return result.output.replace("\n", "")


def test_the_command_imports_reports_and_refuses_a_malformed_file(demo, tmp_path):
    path = copy_store(demo[1] / "karte.gpkg", tmp_path / "karte.gpkg")
    runner = CliRunner()
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURES, broken, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    table = broken / "tblT001084C02.txt"
    lines = table.read_bytes().decode("cp932").split("\r\n")
    cells = lines[19].split(",")
    cells[8] = "12a"
    lines[19] = ",".join(cells)
    table.write_bytes("\r\n".join(lines).encode("cp932"))
    stamp = open_store(path).stamp()
    bad = runner.invoke(app, ["census", "import", str(broken), "--year", "2020", "--store", str(path),
                              "--yes"])
    assert bad.exit_code == 1
    assert "tblT001084C02.txt 20行目 列「T001084002」" in _flat(bad)
    assert "何も読み込んでいません" in _flat(bad)
    assert open_store(path).stamp() == stamp and CENSUS_YEARS not in open_store(path).layers()

    dry = runner.invoke(app, ["census", "import", str(FIXTURES), "--year", "2020", "--store", str(path),
                              "--dry-run"])
    assert dry.exit_code == 0, dry.output
    for word in ("名称変更", "分割", "境界変更", "合算先", "地区 S14 → 地区 S13", "何も書き込んでいません"):
        assert word in _flat(dry)
    assert open_store(path).stamp() == stamp

    done = runner.invoke(app, ["census", "import", str(FIXTURES), "--year", "2020", "--store", str(path),
                               "--yes"])
    assert done.exit_code == 0, done.output
    assert "42 地区のカルテを令和2年国勢調査で作り直しました" in _flat(done)
    status = runner.invoke(app, ["census", "status", "--store", str(path)])
    assert status.exit_code == 0 and "275,192" in _flat(status) and "令和2年国勢調査" in _flat(status)
    trend = runner.invoke(app, ["census", "trend", "--store", str(path)])
    assert trend.exit_code == 0 and "平成27年国勢調査 → 令和2年国勢調査" in _flat(trend)
    older = runner.invoke(app, ["census", "import", str(FIXTURES), "--year", "2015", "--store", str(path),
                                "--yes"])
    assert older.exit_code == 1 and "取り込めません" in _flat(older)


def test_status_of_the_shipped_data_labels_the_gap(demo):
    result = CliRunner().invoke(app, ["census", "status", "--store", str(demo[1] / "karte.gpkg")])
    assert result.exit_code == 0
    text = _flat(result)
    assert "285,506" in text and "287,648" in text and GAP_LABEL in text and "2,142" in text


def test_the_previous_census_enters_the_per_fiscal_year_history(imported):
    """The hook into issue 12's history: the 2015 census as rows of kind ``census`` for fiscal
    year 2015 on today's districts, beside the build's rows of the current year (census 2020)."""
    store, _plan, _result = imported
    history = store.read("history")
    census = history[(history["fiscal_year"] == 2015) & (history["kind"] == "census")]
    assert len(census) == 43   # 42 districts and the city
    city = json.loads(census[census["district_code"].fillna("") == ""]["figures"].iloc[0])
    assert city["population"] == pytest.approx(285_506, abs=60)
    current = history[history["census_year"] == 2020]
    assert len(current) and (current["kind"] == "build").all()


def test_a_build_during_the_import_reads_the_census_layers_as_they_will_be(demo, tmp_path):
    """The build inside ``karte census import`` sees the new census_years/census_areas (so a build
    that puts reconcile.store_sources into the kartes writes the new year's reconciliation)."""
    store = open_store(copy_store(demo[1] / "karte.gpkg", tmp_path / "karte.gpkg"))
    plan = update.prepare(store, FIXTURES, year=2020)
    pending = update.PendingStore(store, overlay=update._census_layers(plan, {}))
    blocks = store_sources(pending, pending.read("small_areas"))
    assert blocks.year == 2020 and CENSUS_YEARS not in store.layers()
