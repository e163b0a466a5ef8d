"""The demo's plan and indicators: Aomori's plan goals with demo marks, evaluations and targets.

The goals are real: the five measures (施策), their strategies (戦略) and main actions (主な施策) of
「（仮称）青森市地域福祉計画」骨子（案）(``data/plans/aomori_plan_goals.csv``, typed in from the
outline). Everything the outline does not say is made up for the demo and labelled so on every
page and printout: the plan period (the demo's fiscal year and the two years either side), the
status marks of each year, the responsible sections (担当), the evaluation notes, the indicator
targets, and the one entered indicator's values. The computed indicators take their values from
the karte's history (the earlier years of which are synthetic in the demo too).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd

from karte import history
from karte.domain.history import (
    EvaluationKind,
    HistoryLayer,
    IndicatorSource,
    Scope,
    ValueKind,
    short_fiscal_label,
)
from karte.domain.layers import MUNICIPALITY
from karte.importing.history import typed
from karte.settings import REPO_DATA

GOALS_FILE = REPO_DATA / "plans" / "aomori_plan_goals.csv"
PLAN_NAME = "（仮称）青森市地域福祉計画"
PLAN_SOURCE = (
    "「（仮称）青森市地域福祉計画」骨子（案）資料２「施策の展開」の施策・戦略・主な施策。"
    "計画期間・年次の記号・担当・評価・指標の目標はデモ用の合成データです"
)
DEMO_NOTE = "デモ用の合成データ"
#: Responsible sections the demo gives each measure (the outline names none).
SECTIONS = {
    "1": "市 健康福祉部",
    "2": "市社協 ボランティアセンター",
    "3": "市社協 地域福祉課",
    "4": "市 市民政策部",
    "5": "市 健康福祉部",
}
#: Demo indicators: key, computed source (or None: entered), name, unit, and the targets: for counts
#: the change per year from the baseline (relative), for rates the targets themselves (percent, in
#: two years and in four), as plans state rates.
DEMO_INDICATORS = (
    ("salon_places", "salon_places", None, "か所", 0.03),
    ("salon_coverage", "salon_coverage", None, "%", (40.0, 45.0)),
    ("welfare_supporters", "welfare_supporters", None, "人", 0.15),
    ("with_supporter_rate", "with_supporter_rate", None, "%", (80.0, 90.0)),
    ("plans_made_rate", "plans_made_rate", None, "%", (60.0, 80.0)),
    ("outreach_lectures", None, "出前講座の開催回数", "回", 0.1),
)


def read_goals() -> list[dict]:
    """The rows of ``data/plans/aomori_plan_goals.csv`` (施策番号, 施策, 戦略, 主な施策)."""
    with GOALS_FILE.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def demo_layers(
    districts: pd.DataFrame, *, earlier_and_now: pd.DataFrame, fiscal_year: int, seed: int
) -> dict[str, pd.DataFrame]:
    """The plan and indicator layers of the demo (municipality of the districts)."""
    municipality = str(districts[MUNICIPALITY].dropna().iloc[0])
    rng = np.random.default_rng([seed, fiscal_year, 12])
    years = list(range(fiscal_year - 2, fiscal_year + 3))
    plan_key = PLAN_NAME
    items, marks = [], []
    for position, row in enumerate(read_goals(), start=1):
        goal_no = row["施策番号"]
        item_no = "①②③④⑤⑥⑦⑧⑨⑩"[sum(1 for i in items if i["goal_no"] == goal_no)]
        item_id = f"A{position:06d}"
        items.append(
            {
                "item_id": item_id,
                MUNICIPALITY: municipality,
                "district_code": "",
                "plan_key": plan_key,
                "position": position,
                "goal_no": goal_no,
                "goal": row["施策"],
                "promotion_no": "1",
                "promotion": row["戦略"],
                "item_no": item_no,
                "item": row["主な施策"],
                "section": SECTIONS.get(goal_no, ""),
                "merged_into": "",
            }
        )
        start = int(rng.integers(0, 3))
        for i, year in enumerate(years):
            if i < start:
                text = "◆"
            elif i == start:
                text = "★" if start else "○★"
            elif year == fiscal_year:
                text = "○□"
            elif year > fiscal_year:
                text = "○■" if year == fiscal_year + 1 else "○◎"
            else:
                text = "○"
            marks.append(
                {
                    "mark_id": f"M{len(marks) + 1:06d}",
                    MUNICIPALITY: municipality,
                    "district_code": "",
                    "plan_key": plan_key,
                    "item_id": item_id,
                    "fiscal_year": year,
                    "marks": text,
                }
            )
    layout = {
        "title": f"{PLAN_NAME}の年次計画",
        "legend": [],
        "year_labels": {str(y): short_fiscal_label(y) for y in years},
        "periods": [],
        "item_heading": "項目",
        "section_heading": "担当",
    }
    plans = [
        {
            "plan_id": "W000001",
            MUNICIPALITY: municipality,
            "district_code": "",
            "key": plan_key,
            "name": PLAN_NAME,
            "first_year": years[0],
            "last_year": years[-1],
            "source": PLAN_SOURCE,
            "note": DEMO_NOTE,
            "layout": json.dumps(layout, ensure_ascii=False),
        }
    ]
    goals = sorted({(i["goal_no"], i["goal"]) for i in items})
    evaluations = []
    for goal_no, goal in goals:
        for kind, who in (
            (EvaluationKind.INTERNAL, "計画推進委員会（デモ）"),
            (EvaluationKind.EXTERNAL, "住民・学識経験者（デモ）"),
        ):
            evaluations.append(
                {
                    "evaluation_id": f"E{len(evaluations) + 1:06d}",
                    MUNICIPALITY: municipality,
                    "district_code": "",
                    "plan_key": plan_key,
                    "goal_no": goal_no,
                    "fiscal_year": fiscal_year - 1,
                    "kind": str(kind),
                    "achievements": f"（デモ用の合成）「{goal}」の主な施策を予定どおり進めた。",
                    "issues": "（デモ用の合成）"
                    + ("担い手の確保" if goal_no in "23" else "地区ごとの差")
                    + "が課題として残る。",
                    "evaluator": who,
                }
            )
    definitions, values = _indicators(municipality, earlier_and_now, fiscal_year, rng)
    return {
        str(HistoryLayer.PLANS): typed(pd.DataFrame(plans), HistoryLayer.PLANS),
        str(HistoryLayer.PLAN_ITEMS): typed(pd.DataFrame(items), HistoryLayer.PLAN_ITEMS),
        str(HistoryLayer.PLAN_MARKS): typed(pd.DataFrame(marks), HistoryLayer.PLAN_MARKS),
        str(HistoryLayer.EVALUATIONS): typed(pd.DataFrame(evaluations), HistoryLayer.EVALUATIONS),
        str(HistoryLayer.INDICATORS): typed(pd.DataFrame(definitions), HistoryLayer.INDICATORS),
        str(HistoryLayer.INDICATOR_VALUES): typed(pd.DataFrame(values), HistoryLayer.INDICATOR_VALUES),
    }


def _indicators(
    municipality: str, rows: pd.DataFrame, fiscal_year: int, rng
) -> tuple[list[dict], list[dict]]:
    city = rows[rows["district_code"].fillna(history.CITY) == history.CITY]
    by_year = {int(r["fiscal_year"]): history.figures_of(r) for r in city.to_dict("records")}
    baseline_year = min(by_year) if by_year else fiscal_year
    base = by_year.get(baseline_year, {})
    plan_years = (fiscal_year + 2, fiscal_year + 4)
    definitions, values = [], []
    figure = {"salon_places": "salons", "welfare_supporters": "welfare_supporters"}
    for position, (key, computed, name, unit, per_year) in enumerate(DEMO_INDICATORS, start=1):
        definitions.append(
            {
                "indicator_id": f"I{position:06d}",
                MUNICIPALITY: municipality,
                "district_code": "",
                "key": key,
                "name": name,
                "unit": unit,
                "scope": str(Scope.CITY),
                "source": str(IndicatorSource.COMPUTED if computed else IndicatorSource.ENTERED),
                "computed": computed,
                "baseline_year": baseline_year,
                "plan": PLAN_NAME,
                "program": None,
                "note": "目標はデモ用の合成データ" if computed else "値と目標はデモ用の合成データ",
                "position": position,
            }
        )
        if isinstance(per_year, tuple):
            for year, target in zip(plan_years, per_year, strict=True):
                values.append(_value(municipality, key, year, ValueKind.TARGET, target))
            continue
        if computed:
            start = base.get(figure[key])
            start = None if start is None else float(start)
        else:
            start = 24.0
            for year in sorted(by_year) or [fiscal_year]:
                step = (year - baseline_year) * per_year
                values.append(
                    _value(
                        municipality,
                        key,
                        year,
                        ValueKind.VALUE,
                        round(start * (1 + step) + float(rng.normal(0, 1.5))),
                    )
                )
        if start is None:
            continue
        for year in plan_years:
            target = round(start * (1 + per_year * (year - baseline_year)))
            values.append(_value(municipality, key, year, ValueKind.TARGET, float(target)))
    for i, v in enumerate(values, start=1):
        v["value_id"] = f"V{i:06d}"
    return definitions, values


def _value(municipality: str, key: str, year: int, kind: ValueKind, value: float) -> dict:
    return {
        "value_id": None,
        MUNICIPALITY: municipality,
        "district_code": "",
        "indicator_key": key,
        "fiscal_year": int(year),
        "kind": str(kind),
        "value": float(value),
        "note": DEMO_NOTE,
    }
