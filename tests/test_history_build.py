"""Years through the build and the command line (issue 12): two builds in two fiscal years give a
two-point trend (``karte history``, the district page), every karte says its census year
(``karte show``), ``karte indicators --json`` lists baseline, targets, values and attainment, and
the computed indicators equal a recomputation straight from the store's layers."""

from __future__ import annotations

import json

import api_fixtures as fx
import pandas as pd
import pytest
from api_fixtures import OWN
from typer.testing import CliRunner

from karte.build import Inputs, build_demo, rebuild
from karte.cli import app
from karte.domain.history import HistoryLayer
from karte.domain.layers import split_list
from karte.services import history as years
from karte.settings import REPO_DATA
from karte.store import GeoPackageStore

pytestmark = pytest.mark.slow  # whole-city builds

CENSUS_LINE = "人口・世帯: 国勢調査 2015年（平成27年）10月1日現在"


@pytest.fixture(scope="module")
def two_years(tmp_path_factory) -> GeoPackageStore:
    """A store built for fiscal 2025 (no earlier history, no plan), then rebuilt for 2026."""
    folder = tmp_path_factory.mktemp("two-years")
    store = GeoPackageStore(folder / "karte.gpkg")
    inputs = Inputs.shipped(REPO_DATA)
    first = build_demo(store, inputs, seed=2026, fiscal_year=2025, history_years=0, plans=False)
    assert first.fiscal_year == 2025
    second = rebuild(store, inputs, seed=2026, fiscal_year=2026)
    assert second.fiscal_year == 2026
    return store


def test_two_builds_in_two_fiscal_years_give_a_two_point_trend(two_years, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["history", OWN, "--json", "--store", str(two_years.path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [y["fiscal_year"] for y in data["years"]] == [2025, 2026]
    assert {y["kind"] for y in data["years"]} == {"build"} and data["years"][0]["census_year"] == 2015
    first, second = data["years"]
    assert first["district"]["population"] == second["district"]["population"] > 0  # the one census
    assert data["projection"]["rows"][0]["label"] == "2015年（国勢調査）"
    assert all(r["estimate"] for r in data["projection"]["rows"][1:])
    text = runner.invoke(app, ["history", OWN, "--store", str(two_years.path)])
    assert text.exit_code == 0 and "R7" in text.output and "R8" in text.output and "推計" in text.output
    history = two_years.read(HistoryLayer.HISTORY)
    assert sorted(history["fiscal_year"].unique()) == [2025, 2026] and len(history) == 2 * 43
    web = fx.make_api(two_years, tmp_path / "web", basemap="none")
    page = web.browser("anonymous").get(f"/districts/{OWN}").text
    assert "R7" in page and "R8" in page and CENSUS_LINE in page and "推移（市全体との比較）" in page


def test_karte_show_says_the_census_year_and_the_dates(two_years):
    result = CliRunner().invoke(app, ["show", OWN, "--store", str(two_years.path)])
    assert result.exit_code == 0, result.output
    assert CENSUS_LINE in result.output and "令和8年度" in result.output and "要支援者名簿: " in result.output
    as_json = json.loads(
        CliRunner().invoke(app, ["show", OWN, "--json", "--store", str(two_years.path)]).output
    )
    assert as_json["sources"]["lines"][0] == CENSUS_LINE and as_json["fiscal_year"] == 2026
    assert [y["fiscal_year"] for y in as_json["trend"]["years"]] == [2025, 2026]


COMPUTED = """指標キー,指標,単位,範囲,年度,区分,値,計算元,基準年度
cooperators,共助協力者の数,人,市全体,R10,目標,2000,cooperators,R8
supporters,避難支援者の数,人,市全体,R10,目標,1500,supporters,R8
with_supporter,支援者が決まっている要支援者,人,市全体,R10,目標,4000,with_supporter,R8
plans_made,個別避難計画の作成数,人,市全体,R10,目標,3000,plans_made,R8
"""


def test_computed_indicators_equal_a_recomputation_from_the_store(demo, tmp_path):
    store = fx.copy_demo(demo, tmp_path)
    (tmp_path / "computed.csv").write_text(COMPUTED, encoding="utf-8")
    runner = CliRunner()
    loaded = runner.invoke(
        app, ["import", "indicators", str(tmp_path / "computed.csv"), "--store", str(store.path), "--yes"]
    )
    assert loaded.exit_code == 0, loaded.output
    result = runner.invoke(app, ["indicators", "--json", "--store", str(store.path), "--year", "2026"])
    assert result.exit_code == 0, result.output
    items = {i["key"]: i for i in json.loads(result.output)["indicators"]}
    latest = {k: i["latest"]["value"] for k, i in items.items() if i["latest"]}
    register, cooperators, services = (store.read(n) for n in ("register", "cooperators", "services"))
    assigned = {s for ids in register["supporter_ids"] for s in split_list(ids)}
    with_supporter = int(register["supporter_ids"].map(lambda s: bool(split_list(s))).sum())
    monthly = services[
        (services["kind"] == "salon") & services["frequency"].isin(["weekly", "biweekly", "monthly"])
    ]
    expected = {
        "cooperators": len(cooperators),
        "supporters": int(cooperators["cooperator_id"].isin(assigned).sum()),
        "with_supporter": with_supporter,
        "plans_made": int((register["plan_status"] == "done").sum()),
        "salon_places": len(monthly),
        "welfare_supporters": int((cooperators["role"] == "welfare_supporter").sum()),
        "with_supporter_rate": round(100 * with_supporter / len(register), 2),
        "plans_made_rate": round(100 * int((register["plan_status"] == "done").sum()) / len(register), 2),
    }
    assert {k: round(latest[k], 2) for k in expected} == expected
    for key in ("cooperators", "plans_made"):
        item = items[key]
        assert item["baseline_year"] == 2026 and item["targets"][0]["fiscal_year"] == 2028
        assert item["values"][-1]["origin"] == "computed" and item["source"] == "computed"
    lectures = items["outreach_lectures"]
    assert lectures["source"] == "entered" and lectures["values"][0]["origin"] == "entered"
    assert lectures["targets"] and lectures["latest"]["attainment"] is not None
    for item in items.values():
        assert {"baseline", "baseline_year", "targets", "values", "latest"} <= set(item)
    district = runner.invoke(app, ["indicators", "--district", OWN, "--json", "--store", str(store.path)])
    per_district = {i["key"]: i for i in json.loads(district.output)["indicators"]}
    mine = register[register["district_code"] == OWN]
    assert per_district["plans_made"]["latest"]["value"] == int((mine["plan_status"] == "done").sum())
    table = runner.invoke(app, ["indicators", "--store", str(store.path)])
    assert table.exit_code == 0 and "活動指標と目標" in table.output


def test_record_analysis_keeps_coverage_and_gaps_in_the_history(demo, tmp_path):
    store = fx.copy_demo(demo, tmp_path)
    before = store.read(HistoryLayer.HISTORY)
    assert json.loads(before.iloc[-1]["figures"])["coverage_rate"] is None
    changed = years.record_analysis(store, seed=2026)
    after = store.read(HistoryLayer.HISTORY)
    assert changed == len(after)  # every year: the build's from the analyses, the synthetic walked back
    now = after[(after["fiscal_year"] == 2026) & (after["district_code"] == OWN)].iloc[0]
    figures = json.loads(now["figures"])
    from karte.snapshot import current

    coverages, _ = current(store).coverage()
    assert figures["uncovered_elderly"] == round(coverages[OWN].uncovered_elderly)
    assert 0 < figures["coverage_rate"] < 1 and figures["at_risk"] is not None
    assert years.record_analysis(store, seed=2026) == 0  # nothing new
    assert set(pd.to_numeric(after["fiscal_year"])) == set(pd.to_numeric(before["fiscal_year"]))


def test_an_earlier_census_fills_an_earlier_year_and_a_built_year_is_refused(demo, tmp_path):
    from karte.importing.refresh import updated_history

    store = fx.copy_demo(demo, tmp_path)
    small = store.read("small_areas")
    picked = small[small["district_code"] == OWN].head(3)
    keys = list(picked["key_code"])
    rows = ["KEY_CODE,人口総数,世帯総数"] + [f"{k},{100 + i},{40 + i}" for i, k in enumerate(keys)]
    path = tmp_path / "census_2010.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["import", "history", str(path), "--store", str(store.path), "--yes"])
    assert result.exit_code == 0, result.output
    history = store.read(HistoryLayer.HISTORY)
    earlier = history[history["fiscal_year"] == 2010]
    assert set(earlier["kind"]) == {"census"} and set(earlier["district_code"].fillna("")) == {OWN, ""}
    figures = json.loads(earlier[earlier["district_code"] == OWN].iloc[0]["figures"])
    assert figures["population"] == 100 + 101 + 102 and figures["households"] == 40 + 41 + 42
    assert json.loads(earlier.iloc[0]["sources"])["items"][0]["year"] == 2010
    built = tmp_path / "census_2026.csv"
    built.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    refused = CliRunner().invoke(app, ["import", "history", str(built), "--store", str(store.path), "--yes"])
    assert refused.exit_code == 1 and "2026年度にはカルテ作成時の記録があります" in refused.output
    # an import that rebuilds the kartes keeps its year's snapshot (karte.importing.refresh)
    kartes = store.read("kartes")
    layers = {n: store.read(n) for n in ("register", "cooperators", "services")}
    register = layers["register"].iloc[10:]  # fewer people on the register
    after = updated_history(history, kartes, {**layers, "register": register}, store.meta())
    assert len(after) == len(history)
    now = after[(after["fiscal_year"] == 2026) & (after["district_code"] == OWN)]
    assert list(now["history_id"]) == list(history[(history["fiscal_year"] == 2026)
                                                   & (history["district_code"] == OWN)]["history_id"])
