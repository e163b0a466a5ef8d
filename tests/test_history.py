"""Years (issue 12), on tiny hand-built data: eras and fiscal years, plan-table cells, the history
rows a build keeps, the sources block, the projection of the elderly, indicators and attainment."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from karte import history, indicators
from karte.domain.history import (
    Cell,
    HistoryKind,
    fiscal_label,
    merge_pointer,
    parse_cell,
    parse_fiscal_year,
    short_fiscal_label,
    wareki,
)
from karte.domain.layers import MUNICIPALITY

# --- eras, years, cells ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("H28", 2016),
        ("Ｈ３２", 2020),
        ("H31", 2019),
        ("R元", 2019),
        ("令和6年度", 2024),
        ("R8", 2026),
        ("2026年度", 2026),
        ("平成27年", 2015),
        ("R6 年度", 2024),
        ("令和８年度（2026年度）", 2026),
        ("第1期", None),
        ("", None),
        ("R0", None),
        ("x", None),
    ],
)
def test_fiscal_year_headings_of_plan_tables(text, year):
    assert parse_fiscal_year(text) == year


def test_japanese_eras_are_named_as_fiscal_years_are():
    assert wareki(2015) == "平成27年"
    assert wareki(2019) == "令和元年"
    assert fiscal_label(2026) == "令和8年度（2026年度）"
    assert short_fiscal_label(2016) == "H28" and short_fiscal_label(2026) == "R8"
    assert history.current_fiscal_year(pd.Timestamp("2027-03-31").date()) == 2026
    assert history.current_fiscal_year(pd.Timestamp("2027-04-01").date()) == 2027


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("○◆", Cell(marks="○◆")),
        ("〇☆", Cell(marks="○★")),
        (" ○ □ ", Cell(marks="○□")),
        ("○○", Cell(marks="○")),
        ("-", Cell(not_applicable=True)),
        ("－", Cell(not_applicable=True)),
        ("", Cell()),
        ("⇒2(1)③", Cell(merged_into="2(1)③")),
        ("⇒２（１）③に包括", Cell(merged_into="2(1)③")),
    ],
)
def test_plan_cells_read_marks_look_alikes_and_pointers(text, cell):
    assert parse_cell(text) == cell
    assert parse_cell(cell.text) == cell  # written back, read again: the same


@pytest.mark.parametrize("text", ["X", "○x", "◯？", "済"])
def test_a_cell_with_anything_else_is_refused_with_the_legend(text):
    message = parse_cell(text)
    assert isinstance(message, str) and "凡例にありません" in message and "継続実施" in message


def test_a_merge_pointer_after_the_item_text_is_split_off():
    assert merge_pointer("④気軽に福祉を意識できる取組みの実施⇒2(1)③に包括") == (
        "④気軽に福祉を意識できる取組みの実施",
        "2(1)③",
    )
    assert merge_pointer("①声かけ運動") == ("①声かけ運動", "")


# --- history rows ---------------------------------------------------------------------------------------


def karte(
    code: str,
    *,
    population: int,
    elderly: int,
    needers: int,
    with_supporter: int,
    done: int,
    welfare: int,
    municipality: str = "02201",
) -> dict:
    """A hand-made assembled karte with the blocks history reads."""
    return {
        "district": {
            "code": code,
            "name": f"（仮）{code}",
            "municipality": {"code": municipality, "name": "青森市"},
        },
        "base": [
            {"key": "population", "value": population},
            {"key": "households", "value": population // 2},
            {"key": "age_0_14", "value": population // 10},
            {"key": "age_15_64", "value": population - elderly - population // 10},
            {"key": "age_65_74", "value": elderly // 2},
            {"key": "age_75_plus", "value": elderly - elderly // 2},
            {"key": "elderly", "value": elderly},
            {"key": "elderly_alone", "value": 3},
            {"key": "disabled", "value": 4},
        ],
        "register": {
            "total": needers,
            "shareable": needers - 1,
            "with_supporter": with_supporter,
            "by_plan": [
                {"key": "done", "count": done},
                {"key": "in_progress", "count": 1},
                {"key": "none", "count": needers - done - 1},
            ],
        },
        "cooperators": {"total": 10, "by_role": [{"key": "welfare_supporter", "count": welfare}]},
        "services": [{"kind": "salon"}, {"kind": "snow"}],
    }


KARTES = {
    "A": karte("A", population=1000, elderly=300, needers=20, with_supporter=10, done=5, welfare=2),
    "B": karte("B", population=500, elderly=200, needers=10, with_supporter=8, done=6, welfare=1),
}
META = {"data_date": "2026-10-01", "census_year": "2015", "synthetic": "[]"}


def test_history_rows_per_district_and_the_city_as_their_sum():
    rows = history.history_rows(
        KARTES, fiscal_year=2026, meta=META, salons={"A": 3}, supporters={"A": 4, "B": 2}
    )
    assert list(rows["district_code"]) == ["A", "B", history.CITY]
    a, b, city = (history.figures_of(r) for r in rows.to_dict("records"))
    assert a["population"] == 1000 and a["salons"] == 3 and b["salons"] == 0 and a["supporters"] == 4
    assert a["with_supporter_rate"] == 0.5 and a["plan_done_rate"] == 0.25 and a["elderly_rate"] == 0.3
    assert city["population"] == 1500 and city["support_needers"] == 30 and city["with_supporter"] == 18
    assert city["with_supporter_rate"] == 0.6 and city["welfare_supporters"] == 3 and city["services"] == 4
    assert a["coverage_rate"] is None  # the analyses are the snapshot's: recorded later
    assert set(rows["fiscal_year"]) == {2026} and set(rows["census_year"]) == {2015}
    assert set(rows["kind"]) == {HistoryKind.BUILD}


def test_merging_a_year_replaces_only_that_year_and_keeps_ids_and_analysis_figures():
    first = history.merge_history(None, history.history_rows(KARTES, fiscal_year=2025, meta=META))
    second = history.merge_history(first, history.history_rows(KARTES, fiscal_year=2026, meta=META))
    assert sorted(second["history_id"]) == ["H000001", "H000002", "H000003", "H000004", "H000005", "H000006"]
    assert list(second.loc[second.fiscal_year == 2025, "history_id"]) == list(first["history_id"])
    analysed = history.with_analysis(
        second,
        fiscal_year=2026,
        municipality="02201",
        analysis={"A": {"uncovered_elderly": 60, "at_risk": 5}},
    )
    row_a = history.figures_of(
        analysed[(analysed.district_code == "A") & (analysed.fiscal_year == 2026)].iloc[0]
    )
    assert row_a["coverage_rate"] == 0.8 and row_a["gap_rate"] == 0.25
    changed = dict(
        KARTES, A=karte("A", population=1000, elderly=300, needers=22, with_supporter=12, done=6, welfare=2)
    )
    again = history.merge_history(analysed, history.history_rows(changed, fiscal_year=2026, meta=META))
    assert list(again["history_id"]) == list(second["history_id"])  # same rows, same ids
    kept = history.figures_of(again[(again.district_code == "A") & (again.fiscal_year == 2026)].iloc[0])
    assert kept["support_needers"] == 22 and kept["uncovered_elderly"] == 60  # the analysis kept
    assert kept["gap_rate"] == round(5 / 22, 4)  # and its rate recomputed with the new count
    year_2025 = again[again.fiscal_year == 2025]
    assert list(year_2025["figures"]) == list(first["figures"])


def test_the_sources_block_names_the_census_year_and_every_date():
    meta = {
        **META,
        "fiscal_year": "2026",
        "synthetic": json.dumps(["age_bands", "register", "elderly_alone"]),
        "register_as_of": "2026-10-01",
        "cooperators_as_of": "2026-09-01",
        "services_as_of": "2026-09-15",
        "shelters_fetched": "2025-10-27",
        "districts_standin": "true",
        "import_services": json.dumps({"file": "services.csv", "at": "2026-11-02T01:00:00+00:00"}),
    }
    block = history.sources_block(meta)
    lines = block["lines"]
    assert lines[0] == "人口・世帯: 国勢調査 2015年（平成27年）10月1日現在"
    assert history.census_line(block) == lines[0]
    text = "\n".join(lines)
    assert "年齢構成: デモ用の合成データ" in text
    assert "要支援者名簿: 2026年10月1日（令和8年）時点（デモ用の合成データ）" in text
    assert (
        "共助協力者: 2026年9月1日（令和8年）時点" in text
        and "共助協力者: 2026年9月1日（令和8年）時点（デモ" not in text
    )
    assert "共助サービス: 2026年11月2日（令和8年） 取り込み（services.csv）" in text
    assert "2025年10月27日（令和7年）取得" in text and "代替（仮）の地区割り" in text
    assert "サロン徒歩圏 500 m" in text
    assert block["fiscal_year_label"] == "令和8年度（2026年度）"
    census = next(i for i in block["items"] if i["key"] == "census")
    assert census["year"] == 2015 and census["as_of"] == "2015-10-01" and not census["synthetic"]


def test_census_year_from_a_file_name():
    assert history.census_year_of("aomori_city_02201_small_areas_2015_estat_lod.geojson") == 2015
    assert history.census_year_of("census_2010.csv") == 2010
    assert history.census_year_of("stats.csv") is None


# --- projection ---------------------------------------------------------------------------------------------


def test_the_projection_starts_from_the_census_and_follows_the_documented_steps():
    bands = {"age_15_64": 5000, "age_65_74": 1000, "age_75_plus": 800}
    rows = history.project_elderly(bands, base_year=2015, years=[2015, 2016, 2020])
    assert rows[0] == {
        "fiscal_year": 2015,
        "age_65_74": 1000,
        "age_75_plus": 800,
        "elderly": 1800,
        "years_from_census": 0,
    }
    # one year by hand: 100 reach 65, 100 reach 75, each band survives at its rate
    young = (1000 - 100 + 100) * 0.985
    old = (800 + 100) * 0.92
    assert rows[1]["age_65_74"] == round(young) and rows[1]["age_75_plus"] == round(old)
    assert rows[2]["years_from_census"] == 5
    assert (
        history.project_elderly(
            {"age_15_64": None, "age_65_74": 1, "age_75_plus": 1}, base_year=2015, years=[2016]
        )
        == []
    )


# --- indicators and attainment ---------------------------------------------------------------------


class _Store:
    """Just enough of a store for an indicator context: the history layer."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame

    def layers(self):
        return ["history"]

    def read(self, layer):
        return self.frame


def test_attainment_is_the_share_of_the_way_and_on_track_follows_the_straight_path():
    definition = {
        "key": "meetings",
        "name": "ネット会議の開催回数",
        "unit": "回",
        "scope": "city",
        "source": "entered",
        "baseline_year": 2024,
    }
    values = [
        {"kind": "value", "fiscal_year": 2024, "value": 750.0},
        {"kind": "value", "fiscal_year": 2025, "value": 752.0},
        {"kind": "value", "fiscal_year": 2026, "value": 765.0},
        {"kind": "target", "fiscal_year": 2026, "value": 760.0},
        {"kind": "target", "fiscal_year": 2030, "value": 800.0},
    ]
    context = indicators.Context(_Store(pd.DataFrame(columns=list(history.HISTORY_COLUMNS))), "03215")
    result = indicators.evaluate(definition, values, context, years=[])
    points = {p.fiscal_year: p for p in result.points}
    assert result.baseline == 750.0
    assert points[2025].path == 755.0 and points[2025].on_track is False  # behind the straight path
    assert points[2026].path == 760.0 and points[2026].on_track is True and points[2026].attainment == 1.5
    as_dict = result.as_dict()
    assert [t["fiscal_year"] for t in as_dict["targets"]] == [2026, 2030]
    assert as_dict["targets"][1]["attainment"] == 0.3  # (765-750)/(800-750)
    assert indicators.path_value(2024, 750, {2026: 760, 2030: 800}, 2028) == 780
    falling = indicators.evaluate(
        {**definition, "key": "gaps"},
        [
            {"kind": "value", "fiscal_year": 2024, "value": 100.0},
            {"kind": "value", "fiscal_year": 2025, "value": 95.0},
            {"kind": "target", "fiscal_year": 2026, "value": 80.0},
        ],
        context,
        years=[],
    )
    assert falling.points[1].on_track is False and falling.points[1].attainment == 0.25  # path 90, got 95


def test_a_computed_indicator_reads_the_history_and_entered_values_fill_earlier_years():
    rows = history.merge_history(
        None, history.history_rows(KARTES, fiscal_year=2026, meta=META, salons={"A": 3, "B": 1})
    )
    context = indicators.Context(_Store(rows), "02201")
    definition = {
        "key": "salons",
        "scope": "city",
        "source": "computed",
        "computed": "salon_places",
        "baseline_year": 2025,
    }
    values = [
        {"kind": "value", "fiscal_year": 2025, "value": 3.0},
        {"kind": "target", "fiscal_year": 2027, "value": 5.0},
    ]
    result = indicators.evaluate(definition, values, context, years=context.years())
    assert [(p.fiscal_year, p.value, p.origin) for p in result.points] == [
        (2025, 3.0, "entered"),
        (2026, 4.0, "computed"),
        (2027, None, None),
    ]
    assert result.points[1].on_track is True and result.name == "サロンの実施か所数（月1回以上）"
    district = indicators.evaluate(definition, values, context, years=context.years(), district="A")
    assert [(p.fiscal_year, p.value) for p in district.points] == [(2026, 3.0)] and district.targets == {}
    rate = indicators.evaluate({"key": "r", "computed": "with_supporter_rate"}, [], context, years=[2026])
    assert rate.points[0].value == 60.0 and rate.unit == "%"


def test_other_topics_plug_in_a_source_with_one_registration():
    def meetings_held(context, fiscal_year, district):
        frame = context.read("care_meetings_test")
        if frame is None:
            return None
        rows = frame[indicators.in_fiscal_year(frame["held_on"], fiscal_year)]
        if district is not None:
            rows = rows[rows["district_code"] == district]
        return float(len(rows))

    class Store(_Store):
        def layers(self):
            return ["care_meetings_test"]

        def read(self, layer):
            return pd.DataFrame(
                {
                    MUNICIPALITY: ["02201"] * 3,
                    "district_code": ["A", "B", "A"],
                    "held_on": ["2026-04-01", "2027-03-31", "2027-04-01"],
                }
            )

    source = indicators.register(
        indicators.Source("test_meetings_held", "会議の開催回数", "回", meetings_held)
    )
    try:
        context = indicators.Context(Store(None), "02201")
        result = indicators.evaluate(
            {"key": "m", "computed": "test_meetings_held"}, [], context, years=[2026, 2027]
        )
        assert [p.value for p in result.points] == [2.0, 1.0] and result.registered
        with pytest.raises(ValueError, match="twice"):
            indicators.register(source)
    finally:
        indicators.SOURCES.pop("test_meetings_held")
    unknown = indicators.evaluate(
        {"key": "m", "computed": "not_registered", "source": "computed"},
        [{"kind": "value", "fiscal_year": 2026, "value": 7.0}],
        context,
        years=[2026],
    )
    assert not unknown.registered and unknown.points[0].value == 7.0  # the entered values meanwhile
