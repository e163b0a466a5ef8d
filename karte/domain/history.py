"""Years: the karte's history per fiscal year, activity indicators and targets, plan progress
and evaluation (年度の記録・活動指標・計画の進捗).

The record layers of this topic (:class:`karte.domain.layers.LayerSpec`), added to the one
registry by :mod:`karte.domain.layers`, and the topic's own vocabularies: the status marks of an
annual plan table (◆ ○ ★ ◎ □ ■, as Oshu's 年次計画 prints them), evaluation kinds, indicator
scopes, the figures a history row keeps, and the Japanese eras that plan tables head their year
columns with (H28, 令和6年度, R8…).

None of these layers is personal: a history row holds a district's aggregate figures (counts of
people among them, suppressed for the public like every other public output), the plan layers
hold what a council published. Every row carries ``municipality_code``; rows that belong to one
district carry ``district_code`` (empty: the whole municipality).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from karte.domain.layers import MUNICIPALITY, Column, LayerSpec

# --- layer names ------------------------------------------------------------------------------------


class HistoryLayer(StrEnum):
    """The layers of this topic."""

    HISTORY = "history"  # one row per district (and the city) per fiscal year
    INDICATORS = "indicators"  # 活動指標: definitions
    INDICATOR_VALUES = "indicator_values"  # values and targets per fiscal year
    PLANS = "welfare_plans"  # 計画: name, period, source
    PLAN_ITEMS = "plan_items"  # 取組項目: goal, promotion goal, item, 担当
    PLAN_MARKS = "plan_marks"  # the cells of the annual plan table
    EVALUATIONS = "plan_evaluations"  # 評価: achievements and issues, internal or external


#: Levels that keep the plan and the indicators (web edits and imports).
PLAN_WRITERS = ("city_staff", "coordinator")

LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec(
        HistoryLayer.HISTORY,
        "history_id",
        "地区カルテの年度別記録",
        records=True,
        # the pages' trends read it from the build snapshot: a write changes the stamp (migration 0013)
        snapshot=True,
        id_prefix="H",
        columns=(
            Column("history_id"),
            Column(MUNICIPALITY),
            Column("district_code"),
            Column("fiscal_year", "integer"),
            Column("kind"),
            Column("data_date"),
            Column("census_year", "integer"),
            Column("synthetic", "boolean"),
            Column("figures"),
            Column("sources"),
            Column("recorded_at"),
        ),
    ),
    LayerSpec(
        HistoryLayer.INDICATORS,
        "indicator_id",
        "活動指標",
        records=True,
        id_prefix="I",
        writers=PLAN_WRITERS,
        columns=(
            Column("indicator_id"),
            Column(MUNICIPALITY),
            Column("district_code"),
            Column("key"),
            Column("name"),
            Column("unit"),
            Column("scope"),
            Column("source"),
            Column("computed"),
            Column("baseline_year", "integer"),
            Column("plan"),
            Column("program"),
            Column("note"),
            Column("position", "integer"),
        ),
    ),
    LayerSpec(
        HistoryLayer.INDICATOR_VALUES,
        "value_id",
        "活動指標の値と目標",
        records=True,
        id_prefix="V",
        writers=PLAN_WRITERS,
        columns=(
            Column("value_id"),
            Column(MUNICIPALITY),
            Column("district_code"),
            Column("indicator_key"),
            Column("fiscal_year", "integer"),
            Column("kind"),
            Column("value", "float"),
            Column("note"),
        ),
    ),
    LayerSpec(
        HistoryLayer.PLANS,
        "plan_id",
        "地域福祉（活動）計画",
        records=True,
        id_prefix="W",
        writers=PLAN_WRITERS,
        columns=(
            Column("plan_id"),
            Column(MUNICIPALITY),
            Column("district_code"),
            Column("key"),
            Column("name"),
            Column("first_year", "integer"),
            Column("last_year", "integer"),
            Column("source"),
            Column("note"),
            Column("layout"),
        ),
    ),
    LayerSpec(
        HistoryLayer.PLAN_ITEMS,
        "item_id",
        "計画の取組項目",
        records=True,
        id_prefix="A",
        writers=PLAN_WRITERS,
        columns=(
            Column("item_id"),
            Column(MUNICIPALITY),
            Column("district_code"),
            Column("plan_key"),
            Column("position", "integer"),
            Column("goal_no"),
            Column("goal"),
            Column("promotion_no"),
            Column("promotion"),
            Column("item_no"),
            Column("item"),
            Column("section"),
            Column("merged_into"),
        ),
    ),
    LayerSpec(
        HistoryLayer.PLAN_MARKS,
        "mark_id",
        "計画の年次表の記号",
        records=True,
        id_prefix="M",
        writers=PLAN_WRITERS,
        columns=(
            Column("mark_id"),
            Column(MUNICIPALITY),
            Column("district_code"),
            Column("plan_key"),
            Column("item_id"),
            Column("fiscal_year", "integer"),
            Column("marks"),
        ),
    ),
    LayerSpec(
        HistoryLayer.EVALUATIONS,
        "evaluation_id",
        "計画の評価",
        records=True,
        id_prefix="E",
        writers=PLAN_WRITERS,
        columns=(
            Column("evaluation_id"),
            Column(MUNICIPALITY),
            Column("district_code"),
            Column("plan_key"),
            Column("goal_no"),
            Column("fiscal_year", "integer"),
            Column("kind"),
            Column("achievements"),
            Column("issues"),
            Column("evaluator"),
        ),
    ),
)

# --- status marks of an annual plan table ----------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    """One status mark of an annual plan table (年次計画の記号)."""

    symbol: str
    key: str
    label: str
    colour: str


#: The legend, in the order councils print it (Oshu's 第2次奥州市地域福祉活動計画の年次計画).
MARKS: tuple[Mark, ...] = (
    Mark("◆", "discussion", "検討及び協議", "#6b5b95"),
    Mark("○", "continued", "継続実施", "#1f5fa8"),
    Mark("★", "new", "新規取組み開始", "#c77700"),
    Mark("◎", "achieved", "目標達成", "#2e7d32"),
    Mark("□", "evaluation", "評価・見直し", "#5f6b73"),
    Mark("■", "revision", "見直し実施", "#a40000"),
)
MARK_BY_SYMBOL = {m.symbol: m for m in MARKS}
#: A cell marked as not applicable that year (item not yet begun, or merged into another).
NOT_APPLICABLE = "-"
#: The arrow of a merge pointer: 「⇒2(1)③に包括」 (item merged into item ③ of 2 (1)).
MERGE_ARROW = "⇒"
#: Look-alikes typed for the marks (full-width and ASCII forms, similar glyphs) -> the mark.
MARK_ALIASES = {
    "〇": "○",
    "◯": "○",
    "●": "◎",
    "☆": "★",
    "◇": "◆",
    "－": "-",
    "ー": "-",
    "―": "-",
    "‐": "-",
    "—": "-",
    "−": "-",
    "→": "⇒",
    "=>": "⇒",
}

_POINTER = re.compile(
    r"^(?:⇒|→|=>)\s*(?P<target>[0-9０-９]+\s*[(（][0-9０-９]+[)）]\s*[①-⑳]?)\s*"
    r"(?:に包括|へ包括|に統合|へ統合)?$"
)


@dataclass(frozen=True)
class Cell:
    """A parsed cell of the plan table: marks (symbols, in the legend's order), not applicable,
    or a merge pointer."""

    marks: str = ""
    not_applicable: bool = False
    merged_into: str = ""

    @property
    def text(self) -> str:
        """The cell as written back (:func:`parse_cell` of it gives the same cell)."""
        if self.merged_into:
            return f"{MERGE_ARROW}{self.merged_into}"
        if self.not_applicable:
            return NOT_APPLICABLE
        return self.marks


def parse_cell(text: str) -> Cell | str:
    """A plan-table cell -> :class:`Cell`, or the error message (Japanese) when it holds anything
    that is not a mark of the legend, ``-`` (not applicable) or a merge pointer (``⇒2(1)③``).

    Spaces are ignored; look-alike characters (〇, ◯, ☆…) are read as the mark they stand for;
    the marks keep their order of appearance, each once.
    """
    raw = narrow(str(text or "")).strip()
    for alias, mark in MARK_ALIASES.items():
        raw = raw.replace(alias, mark)
    raw = re.sub(r"\s+", "", raw)
    if raw == "":
        return Cell()
    if raw == NOT_APPLICABLE:
        return Cell(not_applicable=True)
    pointer = _POINTER.match(raw)
    if pointer:
        return Cell(merged_into=normalise_item_ref(pointer.group("target")))
    unknown = sorted({ch for ch in raw if ch not in MARK_BY_SYMBOL})
    if unknown:
        legend = " ".join(f"{m.symbol}（{m.label}）" for m in MARKS)
        return (
            f"記号「{''.join(unknown)}」は凡例にありません。使える記号: {legend}、"
            f"「{NOT_APPLICABLE}」（該当なし）、「{MERGE_ARROW}2(1)③」（包括先）"
        )
    seen: list[str] = []
    for ch in raw:
        if ch not in seen:
            seen.append(ch)
    return Cell(marks="".join(seen))


def normalise_item_ref(ref: str) -> str:
    """``２（１）③`` -> ``2(1)③``: an item reference as karte writes it."""
    return re.sub(r"\s+", "", narrow(str(ref)))


def narrow(text: str) -> str:
    """Full-width ASCII (digits, letters, brackets: ２（１）) and the ideographic space as ASCII;
    everything else as it is (NFKC would also turn ③ into 3 and lose the item number)."""
    return "".join(
        chr(ord(ch) - 0xFEE0) if 0xFF01 <= ord(ch) <= 0xFF5E else " " if ch == "\u3000" else ch for ch in text
    )


def merge_pointer(item_text: str) -> tuple[str, str]:
    """Split an item's text from a merge pointer written after it, as Oshu's table does:
    ``④気軽に福祉を意識できる取組みの実施⇒2(1)③に包括`` -> (``④気軽に…の実施``, ``2(1)③``)."""
    text = str(item_text or "").strip()
    m = re.search(
        r"(⇒|→)\s*([0-9０-９]+\s*[(（][0-9０-９]+[)）]\s*[①-⑳]?)\s*(に包括|へ包括|に統合|へ統合)?\s*$", text
    )
    if not m:
        return text, ""
    return text[: m.start()].strip(), normalise_item_ref(m.group(2))


# --- evaluation and indicators ----------------------------------------------------------------------


class EvaluationKind(StrEnum):
    """Who evaluated (一関: 理事会への内部評価、住民・学識経験者による外部評価)."""

    INTERNAL = "internal"
    EXTERNAL = "external"


EVALUATION_JA = {EvaluationKind.INTERNAL: "内部評価", EvaluationKind.EXTERNAL: "外部評価"}


class Scope(StrEnum):
    """Whom an indicator counts for: the whole municipality or one district."""

    CITY = "city"
    DISTRICT = "district"


SCOPE_JA = {Scope.CITY: "市全体", Scope.DISTRICT: "地区"}


class ValueKind(StrEnum):
    """A row of ``indicator_values``: a recorded value, or a target for that year."""

    VALUE = "value"
    TARGET = "target"


class IndicatorSource(StrEnum):
    """Where an indicator's values come from."""

    COMPUTED = "computed"  # karte counts it from its own data (karte.indicators.SOURCES)
    ENTERED = "entered"  # typed in or imported (CSV, xlsx)


SOURCE_JA = {
    IndicatorSource.COMPUTED: "karte のデータから自動計算",
    IndicatorSource.ENTERED: "入力・取り込み",
}


class HistoryKind(StrEnum):
    """How a history row came to be."""

    BUILD = "build"  # written by karte build (or an import that rebuilt the kartes)
    CENSUS = "census"  # an earlier census table imported for an earlier year
    SYNTHETIC = "synthetic"  # the demo's made-up earlier years (labelled so everywhere)


HISTORY_KIND_JA = {
    HistoryKind.BUILD: "カルテ作成時の記録",
    HistoryKind.CENSUS: "過去の国勢調査の取り込み",
    HistoryKind.SYNTHETIC: "デモ用の合成データ",
}

# --- the figures of a history row ---------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One figure a history row keeps: key, label, unit, whether it counts people (suppressed
    for the public from 1 to KARTE_SUPPRESS_MAX), and the count it is a rate of (for rates)."""

    key: str
    label: str
    unit: str
    people: bool = True
    rate_of: str | None = None  # for a rate: the count whose suppression hides it


#: Figures of a history row, in the order the trend table shows them.
FIGURES: tuple[Figure, ...] = (
    Figure("population", "人口", "人"),
    Figure("households", "世帯数", "世帯"),
    Figure("age_0_14", "年少人口 (0〜14歳)", "人"),
    Figure("age_15_64", "生産年齢人口 (15〜64歳)", "人"),
    Figure("age_65_74", "前期高齢者 (65〜74歳)", "人"),
    Figure("age_75_plus", "後期高齢者 (75歳以上)", "人"),
    Figure("elderly", "高齢者 (65歳以上)", "人"),
    Figure("elderly_rate", "高齢化率", "%", people=False, rate_of="elderly"),
    Figure("elderly_alone", "一人暮らし高齢者", "人"),
    Figure("disabled", "障がい者", "人"),
    Figure("support_needers", "災害時要支援者（名簿）", "人"),
    Figure("consent_shareable", "うち名簿提供に同意", "人"),
    Figure("with_supporter", "うち支援者あり", "人"),
    Figure("with_supporter_rate", "支援者ありの割合", "%", people=False, rate_of="with_supporter"),
    Figure("plan_done", "個別避難計画 作成済", "人"),
    Figure("plan_in_progress", "個別避難計画 作成中", "人"),
    Figure("plan_done_rate", "個別避難計画の作成率", "%", people=False, rate_of="plan_done"),
    Figure("cooperators", "共助協力者", "人"),
    Figure("welfare_supporters", "うち地域福祉サポーター", "人"),
    Figure("supporters", "避難支援者（割り当てのある協力者）", "人"),
    Figure("services", "共助サービス", "件", people=False),
    Figure("salons", "サロン（月1回以上）", "か所", people=False),
    Figure("uncovered_elderly", "サロン徒歩圏外の高齢者（推計）", "人"),
    Figure("coverage_rate", "サロン徒歩圏の高齢者カバー率", "%", people=False, rate_of="uncovered_elderly"),
    Figure("at_risk", "避難支援に空白がある要支援者", "人"),
    Figure("gap_rate", "避難支援に空白がある割合", "%", people=False, rate_of="at_risk"),
)
FIGURE_BY_KEY = {f.key: f for f in FIGURES}
#: Figures computed by the snapshot's analyses (coverage, gaps), not by the build itself.
ANALYSIS_FIGURES = ("uncovered_elderly", "coverage_rate", "at_risk", "gap_rate")
#: Trend views show this many fiscal years at most.
TREND_YEARS = 5

# --- fiscal years and Japanese eras ---------------------------------------------------------------------

#: (era, first Gregorian year, letter): the eras a plan table of today's councils may name.
ERAS = (("令和", 2019, "R"), ("平成", 1989, "H"), ("昭和", 1926, "S"))
_ERA_BY = {**{name: start for name, start, _ in ERAS}, **{letter: start for _, start, letter in ERAS}}
_YEAR = re.compile(
    r"^(?:(?P<era>令和|平成|昭和|[RHS])\s*(?P<n>元|\d{1,2})|(?P<west>(?:19|20)\d{2}))"
    r"\s*(?:年度|年)?(?:（.*）|\(.*\))?$",
    re.IGNORECASE,
)


def parse_fiscal_year(text: str) -> int | None:
    """A year column heading -> the Gregorian fiscal year: ``H28`` -> 2016, ``令和6年度`` -> 2024,
    ``R元`` -> 2019, ``2026年度`` -> 2026, ``H32`` -> 2020 (plan tables written before the era
    changed kept counting Heisei). None for anything else."""
    raw = narrow(str(text or "")).strip().upper()
    m = _YEAR.match(raw)
    if not m:
        return None
    if m.group("west"):
        return int(m.group("west"))
    n = 1 if m.group("n") == "元" else int(m.group("n"))
    if n < 1:
        return None
    era = m.group("era")
    return _ERA_BY[era.upper() if len(era) == 1 else era] + n - 1


def wareki(year: int) -> str:
    """2015 -> ``平成27年``; 2019 -> ``令和元年`` (the era in force on 1 April of that year, as a
    fiscal year is named)."""
    for name, start, _ in ERAS:
        if year >= start:
            n = year - start + 1
            return f"{name}{'元' if n == 1 else n}年"
    return f"{year}年"


def fiscal_label(year: int) -> str:
    """2026 -> ``令和8年度（2026年度）``: the era with the Western year beside it."""
    return f"{wareki(int(year))[:-1]}年度（{int(year)}年度）"


def short_fiscal_label(year: int) -> str:
    """2026 -> ``R8``, 2016 -> ``H28`` (column headings)."""
    for _, start, letter in ERAS:
        if year >= start:
            return f"{letter}{year - start + 1}"
    return str(year)
