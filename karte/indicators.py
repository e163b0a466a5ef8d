"""Activity indicators (活動指標): where each value comes from, and how far along the way to its
target it is.

An indicator (a row of ``indicators``) has a name, a unit, a scope (the whole municipality or one
district), a source, a baseline year and targets for later years (rows of ``indicator_values``
of kind ``target``). Its values come either from what people entered or imported (kind
``value``), or, for a **computed** indicator, from karte's own data: a function registered here
by name (:data:`SOURCES`) counts it for a fiscal year and a district (or the whole municipality).

**The source registry.** A source is one function, ``compute(context, fiscal_year, district)``,
returning a number or None (not known for that year), registered once::

    register(Source("salon_places", "サロンの実施か所数", "か所", salon_places))

The sources karte computes now read the karte's history (:mod:`karte.history`: one row per
district and year, written by every build): salon places and the elderly's salon coverage,
cooperators, welfare supporters, supporters assigned, support-needers with a supporter,
individual evacuation plans made. Other topics add theirs with one line each at the end of this
module (safety-net meetings held and their participants from the meetings record, daily-life
support cases, drills…): their function reads their own layer through :meth:`Context.read` and
counts the rows of that fiscal year (:func:`in_fiscal_year`).

**Attainment.** From the baseline value (the value of the baseline year) to each target, the
straight path gives the value expected in every year between; a year's value is *on track* when it
is at least as far along as the path (in the direction of the target), *behind* otherwise.
Attainment is the share of the way from baseline to target a value has come (0 at the baseline,
1 at the target; beyond 1 when exceeded, negative when it moved away).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import pandas as pd

from karte import history
from karte.domain.access import SHAREABLE
from karte.domain.care import CareLayer, CaseStatus
from karte.domain.drills import DRILLS, MARKS, MarkStatus
from karte.domain.history import HistoryLayer, IndicatorSource, Scope, ValueKind
from karte.domain.layers import LAYERS, MUNICIPALITY, Layer, split_list
from karte.domain.supporters import Activity, EntryKind, SupporterStatus
from karte.domain.supporters import Layer as SupporterLayer
from karte.store.base import Store

_JST = ZoneInfo("Asia/Tokyo")

# --- the registry --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A computed indicator's source: registered name, default name and unit (Japanese), the
    function, whether it counts people (shown suppressed to the public from 1 to
    ``KARTE_SUPPRESS_MAX``) and a sentence on what it counts."""

    name: str
    label: str
    unit: str
    compute: Callable[[Context, int, str | None], float | None]
    people: bool = False
    description: str = ""


#: Computed indicator sources by name.
SOURCES: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Add a computed source (each name once)."""
    if source.name in SOURCES:
        raise ValueError(f"indicator source {source.name} is registered twice")
    SOURCES[source.name] = source
    return source


@dataclass
class Context:
    """What a source may read, for one municipality: the karte's history (figures per district and
    fiscal year), the analysis figures of the current build (``analysis``: a function giving the
    figures of a district code, ``""`` for the municipality, or None; it may run the analyses, so
    it is called only when a source needs them) and, for sources of other topics, any layer of the
    store (read once, as the store's trusted user: sources count, they never list persons)."""

    store: Store
    municipality: str
    analysis_year: int | None = None
    analysis: Callable[[str], Mapping | None] | None = None
    _history: dict[tuple[str, int], dict] | None = field(default=None, repr=False)
    _layers: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    _analysed: dict[str, Mapping | None] = field(default_factory=dict, repr=False)

    def figures(self, fiscal_year: int, district: str | None) -> dict | None:
        """The history figures of ``district`` (None: the municipality) in ``fiscal_year``, with
        the current build's analysis figures filled in where the stored row has none."""
        if self._history is None:
            self._history = {}
            if HistoryLayer.HISTORY in self.store.layers():
                frame = self.store.read(HistoryLayer.HISTORY)
                frame = frame[frame[MUNICIPALITY].astype(str) == str(self.municipality)]
                for row in frame.to_dict("records"):
                    code = row.get("district_code")
                    key = (
                        "" if code is None or (isinstance(code, float) and code != code) else str(code),
                        int(row["fiscal_year"]),
                    )
                    self._history[key] = history.figures_of(row)
        found = self._history.get((district or "", int(fiscal_year)))
        if found is None:
            return None
        if (
            self.analysis is not None
            and self.analysis_year == int(fiscal_year)
            and any(found.get(k) is None for k in ("uncovered_elderly", "at_risk"))
        ):
            code = district or ""
            if code not in self._analysed:
                self._analysed[code] = self.analysis(code)
            live = self._analysed[code]
            if live:
                found = history.with_rates({**found, **{k: v for k, v in live.items() if v is not None}})
        return found

    def years(self) -> list[int]:
        """The fiscal years the history holds for this municipality."""
        self.figures(0, None)
        return sorted({year for _, year in (self._history or {})})

    def read(self, layer: str) -> pd.DataFrame | None:
        """A layer of the store (None when absent), read once."""
        if layer not in self._layers:
            self._layers[layer] = self.store.read(layer) if layer in self.store.layers() else None
        frame = self._layers[layer]
        if frame is not None and MUNICIPALITY in frame.columns:
            frame = frame[frame[MUNICIPALITY].astype(str) == str(self.municipality)]
        return frame


def in_fiscal_year(dates: pd.Series, fiscal_year: int) -> pd.Series:
    """Which ISO dates (``YYYY-MM-DD`` text) fall in ``fiscal_year`` (April to March): what a source
    counting a record layer's rows of a year needs."""
    start, end = dt.date(fiscal_year, 4, 1).isoformat(), dt.date(fiscal_year + 1, 3, 31).isoformat()
    text = dates.astype(str).str.slice(0, 10)
    return (text >= start) & (text <= end)


def _figure(key: str) -> Callable[[Context, int, str | None], float | None]:
    def compute(context: Context, fiscal_year: int, district: str | None) -> float | None:
        figures = context.figures(fiscal_year, district)
        value = None if figures is None else figures.get(key)
        return None if value is None else float(value) * (100.0 if history.is_rate(key) else 1.0)

    compute.__name__ = f"figure_{key}"
    compute.__doc__ = f"The history figure ``{key}`` of the district (or municipality) in that fiscal year."
    return compute


for _source in (
    Source(
        "salon_places",
        "サロンの実施か所数（月1回以上）",
        "か所",
        _figure("salons"),
        description="共助サービスのうち月1回以上開かれるサロンの数",
    ),
    Source(
        "salon_coverage",
        "サロン徒歩圏の高齢者カバー率",
        "%",
        _figure("coverage_rate"),
        description="65歳以上のうちサロンの徒歩圏に住む人の割合（推計）",
    ),
    Source(
        "cooperators",
        "共助協力者の数",
        "人",
        _figure("cooperators"),
        people=True,
        description="共助協力者名簿の登録者数",
    ),
    Source(
        "welfare_supporters",
        "地域福祉サポーターの数",
        "人",
        _figure("welfare_supporters"),
        people=True,
        description="共助協力者のうち地域福祉サポーター",
    ),
    Source(
        "supporters",
        "避難支援者の数",
        "人",
        _figure("supporters"),
        people=True,
        description="要支援者の避難支援者として割り当てのある協力者",
    ),
    Source(
        "with_supporter",
        "支援者が決まっている要支援者",
        "人",
        _figure("with_supporter"),
        people=True,
        description="名簿の要支援者のうち避難支援者が決まっている人",
    ),
    Source(
        "with_supporter_rate",
        "支援者が決まっている要支援者の割合",
        "%",
        _figure("with_supporter_rate"),
        description="名簿の要支援者のうち避難支援者が決まっている人の割合",
    ),
    Source(
        "plans_made",
        "個別避難計画の作成数",
        "人",
        _figure("plan_done"),
        people=True,
        description="個別避難計画が作成済の要支援者",
    ),
    Source(
        "plans_made_rate",
        "個別避難計画の作成率",
        "%",
        _figure("plan_done_rate"),
        description="名簿の要支援者のうち個別避難計画が作成済の人の割合",
    ),
):
    register(_source)


# --- evaluating indicators -----------------------------------------------------------------------------


@dataclass
class Point:
    """One year of an indicator: its value and where it came from, the target path's value for
    that year, the attainment toward the next target, on track or behind."""

    fiscal_year: int
    value: float | None
    origin: str | None  # "computed" or "entered"
    path: float | None = None
    attainment: float | None = None
    on_track: bool | None = None


@dataclass
class Indicator:
    """An indicator with its values, targets and how it is doing (JSON-ready with :meth:`as_dict`)."""

    indicator_id: str | None
    key: str
    name: str
    unit: str
    scope: str
    district_code: str
    source: str
    computed: str | None
    plan: str | None
    program: str | None
    note: str | None
    baseline_year: int | None
    baseline: float | None
    targets: dict[int, float]
    points: list[Point]
    people: bool = False
    registered: bool = True

    @property
    def latest(self) -> Point | None:
        known = [p for p in self.points if p.value is not None]
        return known[-1] if known else None

    def as_dict(self) -> dict:
        latest = self.latest
        return {
            "indicator_id": self.indicator_id,
            "key": self.key,
            "name": self.name,
            "unit": self.unit,
            "scope": self.scope,
            "district_code": self.district_code or None,
            "source": self.source,
            "computed": self.computed,
            "registered": self.registered,
            "plan": self.plan,
            "program": self.program,
            "note": self.note,
            "baseline_year": self.baseline_year,
            "baseline": self.baseline,
            "targets": [
                {"fiscal_year": y, "value": v, **attainment_of(self, y)}
                for y, v in sorted(self.targets.items())
            ],
            "values": [
                {
                    "fiscal_year": p.fiscal_year,
                    "value": p.value,
                    "origin": p.origin,
                    "path": p.path,
                    "attainment": p.attainment,
                    "on_track": p.on_track,
                }
                for p in self.points
            ],
            "latest": None
            if latest is None
            else {
                "fiscal_year": latest.fiscal_year,
                "value": latest.value,
                "attainment": latest.attainment,
                "on_track": latest.on_track,
            },
        }


def attainment_of(indicator: Indicator, target_year: int) -> dict:
    """How far the latest value has come toward the target of ``target_year``: ``attainment`` (share
    of the way from the baseline), and ``expected`` (the share the straight path asks for by that
    value's year)."""
    latest = indicator.latest
    target = indicator.targets.get(target_year)
    base, base_year = indicator.baseline, indicator.baseline_year
    if latest is None or target is None or base is None or base_year is None:
        return {"attainment": None, "expected": None}
    share = _share(latest.value, base, target)
    span = target_year - base_year
    expected = None if span <= 0 else min(1.0, max(0.0, (latest.fiscal_year - base_year) / span))
    return {"attainment": share, "expected": None if expected is None else round(expected, 4)}


def _share(value: float, base: float, target: float) -> float | None:
    if target == base:
        return 1.0 if value >= target else round(value / target, 4) if target else None
    return round((value - base) / (target - base), 4)


def path_value(baseline_year: int, baseline: float, targets: Mapping[int, float], year: int) -> float | None:
    """The straight path's value in ``year``: from the baseline through each target in turn (None
    before the baseline or after the last target)."""
    stops = [(baseline_year, baseline), *sorted((y, v) for y, v in targets.items() if y > baseline_year)]
    for (y0, v0), (y1, v1) in itertools.pairwise(stops):
        if y0 <= year <= y1:
            return v0 + (v1 - v0) * (year - y0) / (y1 - y0)
    return baseline if year == baseline_year else None


def evaluate(
    definition: Mapping,
    values: list[Mapping],
    context: Context,
    *,
    years: list[int],
    district: str | None = None,
    until: int | None = None,
) -> Indicator:
    """One indicator (its ``indicators`` row, its ``indicator_values`` rows) with its values for
    ``years`` (computed where its source gives one, else entered), its targets, baseline and
    attainment, as of ``until`` (values after it are left out). ``district``: evaluate a city
    indicator's computed source for that district instead (its targets are the city's: shown for
    reference, attainment not computed)."""
    computed = _text(definition.get("computed"))
    source = SOURCES.get(computed) if computed else None
    entered = {
        int(v["fiscal_year"]): float(v["value"])
        for v in values
        if str(v.get("kind")) == ValueKind.VALUE and _number(v.get("value")) is not None
    }
    targets = {
        int(v["fiscal_year"]): float(v["value"])
        for v in values
        if str(v.get("kind")) == ValueKind.TARGET and _number(v.get("value")) is not None
    }
    where = district if district is not None else (_text(definition.get("district_code")) or None)
    planned = set() if district is not None else {y for y in targets if until is None or y <= until}
    all_years = sorted(set(years) | (set() if district is not None else set(entered)) | planned)
    if until is not None:
        all_years = [y for y in all_years if y <= until]
    points = []
    for year in all_years:
        value, origin = None, None
        if source is not None:
            value = source.compute(context, year, where)
            origin = "computed" if value is not None else None
        if value is None and year in entered and district is None:
            value, origin = entered[year], "entered"
        points.append(Point(year, _round(value), origin))
    baseline_year = _int(definition.get("baseline_year"))
    known = {p.fiscal_year: p.value for p in points if p.value is not None}
    if baseline_year is None and known:
        baseline_year = min(known)
    baseline = known.get(baseline_year) if baseline_year is not None else None
    for_district = district is not None
    if baseline is not None and targets and not for_district:
        for p in points:
            expected = path_value(baseline_year, baseline, targets, p.fiscal_year)
            p.path = _round(expected)
            if p.value is None or p.fiscal_year < baseline_year:
                continue
            final = next((targets[y] for y in sorted(targets) if y >= p.fiscal_year), None)
            if final is not None:
                p.attainment = _share(p.value, baseline, final)
            if expected is not None and p.fiscal_year > baseline_year:
                rising = (max(targets.items())[1] if targets else baseline) >= baseline
                p.on_track = p.value >= expected - 1e-9 if rising else p.value <= expected + 1e-9
    scope = _text(definition.get("scope")) or str(Scope.CITY)
    return Indicator(
        indicator_id=_text(definition.get("indicator_id")) or None,
        key=str(definition["key"]),
        name=_text(definition.get("name")) or (source.label if source else str(definition["key"])),
        unit=_text(definition.get("unit")) or (source.unit if source else ""),
        scope=scope,
        district_code=where or "",
        source=_text(definition.get("source")) or str(IndicatorSource.ENTERED),
        computed=computed or None,
        plan=_text(definition.get("plan")) or None,
        program=_text(definition.get("program")) or None,
        note=_text(definition.get("note")) or None,
        baseline_year=baseline_year,
        baseline=baseline,
        targets={} if for_district else targets,
        points=points,
        people=bool(source.people) if source else _text(definition.get("unit")) in ("人", "世帯"),
        registered=source is not None or not computed,
    )


def read_definitions(store: Store, municipality: str) -> tuple[list[dict], list[dict]]:
    """The municipality's indicator definitions (in their order) and values, as dicts."""
    out = []
    for layer in (HistoryLayer.INDICATORS, HistoryLayer.INDICATOR_VALUES):
        if layer in store.layers():
            frame = store.read_full(layer)  # with each row's version: what an edit sends back
            frame = frame[frame[MUNICIPALITY].astype(str) == str(municipality)]
            rows = [{k: _clean(v) for k, v in r.items()} for r in frame.to_dict("records")]
        else:
            rows = []
        out.append(rows)
    definitions, values = out
    definitions.sort(key=lambda r: (_int(r.get("position")) or 0, str(r.get("indicator_id"))))
    return definitions, values


def values_of(definition: Mapping, values: list[Mapping]) -> list[Mapping]:
    """The value and target rows of one definition (same key and district)."""
    key, district = str(definition["key"]), _text(definition.get("district_code"))
    return [
        v for v in values if str(v.get("indicator_key")) == key and _text(v.get("district_code")) == district
    ]


def _text(v) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def _int(v) -> int | None:
    n = _number(v)
    return None if n is None else int(n)


def _number(v) -> float | None:
    if v is None or v is pd.NA or v == "":
        return None
    try:
        n = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(n) else n


def _round(v) -> float | None:
    return None if v is None else round(float(v), 4)


def _clean(v):
    if v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


LAYER_COLUMNS = {
    name: LAYERS[name].column_names for name in (HistoryLayer.INDICATORS, HistoryLayer.INDICATOR_VALUES)
}

# --- sources of other topics ------------------------------------------------------------------------
# Each topic's activity counts are a pure function of its layers' rows (so the topic's own
# services, its command line and these sources count the same way); a source reads the layers
# through Context.read (the municipality's rows, read once) and counts a district's or the whole
# municipality's.


def _rows_of(context: Context, layer: str, district: str | None) -> pd.DataFrame:
    frame = context.read(layer)
    if frame is None:
        return pd.DataFrame()
    if district is not None and "district_code" in frame.columns:
        frame = frame[frame["district_code"].astype(str) == str(district)]
    return frame


def _int_sum(frame: pd.DataFrame, column: str) -> int:
    if column not in frame.columns or not len(frame):
        return 0
    return int(pd.to_numeric(frame[column], errors="coerce").fillna(0).sum())


def care_counts(meetings: pd.DataFrame, concerns: pd.DataFrame, fiscal_year: int) -> dict[str, int]:
    """The year's safety-net activity from the care layers' rows: ``meetings_held``,
    ``participants``, ``households_discussed`` (as each meeting recorded them), ``cases_opened``
    (households noticed in the year) and ``cases_closed``."""
    held = meetings[in_fiscal_year(meetings["held_on"], fiscal_year)] if "held_on" in meetings \
        else meetings[:0]
    opened = in_fiscal_year(concerns["noticed_on"], fiscal_year) if "noticed_on" in concerns else []
    closed = ((concerns["status"].astype(str) == str(CaseStatus.CLOSED))
              & in_fiscal_year(concerns["closed_on"], fiscal_year)) if "closed_on" in concerns else []
    return {"meetings_held": len(held), "participants": _int_sum(held, "participants"),
            "households_discussed": _int_sum(held, "households"),
            "cases_opened": int(sum(opened)), "cases_closed": int(sum(closed))}


def _care(key: str) -> Callable[[Context, int, str | None], float | None]:
    def compute(context: Context, fiscal_year: int, district: str | None) -> float | None:
        meetings = _rows_of(context, CareLayer.MEETINGS, district)
        concerns = _rows_of(context, CareLayer.CONCERNS, district)
        return float(care_counts(meetings, concerns, fiscal_year)[key])

    compute.__name__ = f"care_{key}"
    return compute


for _source in (
    Source("safety_net_meetings", "地域セーフティネット会議の開催回数", "回", _care("meetings_held"),
           description="地区の見守り・支え合いの会議（地域セーフティネット会議）を開いた回数"),
    Source("safety_net_participants", "地域セーフティネット会議の参加者数（延べ）", "人",
           _care("participants"), people=True, description="会議ごとに記録した参加者数の合計"),
    Source("households_discussed", "会議で話し合った世帯数（延べ）", "世帯", _care("households_discussed"),
           people=True, description="会議ごとに記録した、話し合った世帯の数の合計"),
    Source("concerns_noticed", "気づき（見守りが必要な世帯）の件数", "件", _care("cases_opened"),
           people=True, description="その年度に気づき、記録した世帯の数"),
    Source("concerns_resolved", "支援が終わった世帯の件数", "件", _care("cases_closed"), people=True,
           description="その年度に対応を終了した世帯の数"),
):
    register(_source)


def supporter_counts(supporters: pd.DataFrame, requests: pd.DataFrame, dispatches: pd.DataFrame,
                     activities: pd.DataFrame, ledger: pd.DataFrame, fiscal_year: int) -> dict[str, int]:
    """The year's 地域福祉サポーター activity from the supporter layers' rows.

    Keys: ``supporters_registered`` (registered at the end of the year: registered by then and
    not suspended or withdrawn by then), ``supporters_new`` (registered during the year),
    ``requests_received``, ``requests_dispatched`` (dispatches decided), ``activities`` (done),
    ``activity_hours`` (hours of the done activities, rounded), ``snow_activities``, ``points``
    (net points awarded: earned less reversals) and ``points_redeemed``.
    """
    end = dt.date(fiscal_year + 1, 3, 31).isoformat()

    def within(frame: pd.DataFrame, column: str) -> pd.DataFrame:
        return frame[in_fiscal_year(frame[column].fillna(""), fiscal_year)] if len(frame) else frame

    registered = 0
    if len(supporters):
        on = supporters["registered_on"].fillna("").astype(str)
        left = supporters["status"].isin([SupporterStatus.SUSPENDED, SupporterStatus.WITHDRAWN]) & (
            supporters["status_since"].fillna("").astype(str) <= end)
        registered = int(((on != "") & (on <= end) & ~left).sum())
    done = within(activities, "done_on")
    done = done[done["done"].astype(bool)] if len(done) else done
    year = ledger[ledger["fiscal_year"].astype(int) == fiscal_year] if len(ledger) else ledger
    kinds = year["entry_kind"] if len(year) else pd.Series(dtype=str)
    return {
        "supporters_registered": registered,
        "supporters_new": len(within(supporters, "registered_on")),
        "requests_received": len(within(requests, "received_on")),
        "requests_dispatched": len(within(dispatches, "decided_at")),
        "activities": len(done),
        "activity_hours": round(float(pd.to_numeric(done["hours"], errors="coerce").fillna(0).sum()))
        if len(done) else 0,
        "snow_activities": int((done["activity"] == Activity.SNOW).sum()) if len(done) else 0,
        "points": int(year.loc[kinds.isin([EntryKind.EARNED, EntryKind.REVERSAL]), "points"].sum())
        if len(year) else 0,
        "points_redeemed": -int(year.loc[kinds == EntryKind.REDEEMED, "points"].sum()) if len(year) else 0,
    }


def _supporters(key: str) -> Callable[[Context, int, str | None], float | None]:
    def compute(context: Context, fiscal_year: int, district: str | None) -> float | None:
        frames = [_rows_of(context, layer, district) for layer in (
            SupporterLayer.SUPPORTERS, SupporterLayer.REQUESTS, SupporterLayer.DISPATCHES,
            SupporterLayer.ACTIVITIES, SupporterLayer.LEDGER)]
        return float(supporter_counts(*frames, fiscal_year)[key])

    compute.__name__ = f"supporters_{key}"
    return compute


for _source in (
    Source("supporters_registered", "地域福祉サポーターの登録者数（年度末）", "人",
           _supporters("supporters_registered"), people=True,
           description="年度末に登録中の地域福祉サポーター（休止・退会を除く）"),
    Source("supporters_new", "地域福祉サポーターの新規登録", "人", _supporters("supporters_new"), people=True,
           description="その年度に登録した地域福祉サポーター"),
    Source("help_requests", "支援の依頼件数", "件", _supporters("requests_received"),
           description="その年度に受け付けた支援の依頼"),
    Source("help_dispatches", "サポーターの派遣件数", "件", _supporters("requests_dispatched"),
           description="その年度に決めたサポーターの派遣"),
    Source("supporter_activities", "サポーターの活動回数", "回", _supporters("activities"),
           description="その年度に実施した活動（雪かきを含む）"),
    Source("supporter_hours", "サポーターの活動時間", "時間", _supporters("activity_hours"),
           description="その年度に実施した活動の時間の合計"),
    Source("snow_activities", "雪かきの活動回数", "回", _supporters("snow_activities"),
           description="その年度に実施した雪かき"),
    Source("volunteer_points", "ボランティアポイントの付与", "ポイント", _supporters("points"),
           description="その年度に付与したポイント（取り消しを差し引いた数）"),
):
    register(_source)


def drill_counts(drills: pd.DataFrame, marks: pd.DataFrame, register: pd.DataFrame, fiscal_year: int,
                 district: str | None = None) -> dict[str, int]:
    """The year's drills (安否確認・避難誘導訓練) from the drill layers' rows, of ``district`` (a
    drill counts for each of its districts) or, with None, of every district (each drill once).

    A drill's year is the fiscal year of its start in JST. Its people are the register entries of
    its districts that may be shared (consented or by ordinance) plus anybody marked in it (in
    disaster mode the roll also holds unconsented entries); a person's status is their latest mark
    (one mark per device id). Keys: ``drills_held``, ``drill_supporters`` (people who marked,
    counted per drill), ``persons_confirmed`` (latest mark 無事・避難済み・支援が必要, per drill),
    ``persons_not_reached`` (the drill's people not confirmed: 不在, 未確認 or never marked),
    ``drill_participants`` (supporters plus persons confirmed, summed over the drills)."""
    out = {"drills_held": 0, "drill_supporters": 0, "persons_confirmed": 0, "persons_not_reached": 0,
           "drill_participants": 0}
    if not len(drills) or "started_at" not in drills.columns:
        return out
    confirmed_values = {s.value for s in MarkStatus if s.confirmed}
    shareable = register[register["consent"].isin(SHAREABLE)] if len(register) else register
    for row in drills.to_dict("records"):
        start = _jst_day(row.get("started_at"))
        if start is None or _fiscal_year_of(start) != fiscal_year:
            continue
        codes = split_list(row.get("districts")) or [str(row.get("district_code") or "")]
        if district is not None:
            if str(district) not in codes:
                continue
            codes = [str(district)]
        mine = marks[(marks["drill_id"].astype(str) == str(row["drill_id"]))
                     & marks["district_code"].astype(str).isin(codes)] if len(marks) else marks
        if len(mine) and "client_id" in mine.columns:  # a mark sent twice counts once
            ids = mine["client_id"].fillna("").astype(str)
            mine = mine[(ids == "") | ~ids.duplicated()]
        people = set()
        if len(shareable):
            here = shareable["district_code"].astype(str).isin(codes)
            people = set(shareable.loc[here, "person_id"].astype(str))
        confirmed: set[str] = set()
        if len(mine):
            order = [c for c in ("marked_at", "received_at", "mark_id") if c in mine.columns]
            last = mine.sort_values(order).drop_duplicates(["district_code", "person_id"], keep="last")
            people |= set(last["person_id"].astype(str))
            confirmed = set(last.loc[last["status"].isin(confirmed_values), "person_id"].astype(str))
        supporters = int(mine["marked_by"].nunique()) if len(mine) else 0
        out["drills_held"] += 1
        out["drill_supporters"] += supporters
        out["persons_confirmed"] += len(confirmed)
        out["persons_not_reached"] += len(people - confirmed)
        out["drill_participants"] += supporters + len(confirmed)
    return out


def _jst_day(value) -> dt.date | None:
    """An ISO time (UTC when it names no zone) as its day in Japan."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(_JST).date()


def _fiscal_year_of(day: dt.date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def _drills(key: str) -> Callable[[Context, int, str | None], float | None]:
    def compute(context: Context, fiscal_year: int, district: str | None) -> float | None:
        frames = [context.read(layer) for layer in (DRILLS, MARKS, str(Layer.REGISTER))]
        drills, marks, roll = (f if f is not None else pd.DataFrame() for f in frames)
        return float(drill_counts(drills, marks, roll, fiscal_year, district)[key])

    compute.__name__ = f"drills_{key}"
    return compute


for _source in (
    Source("drills_held", "安否確認・避難誘導訓練の実施回数", "回", _drills("drills_held"),
           description="その年度に始めた訓練（複数の地区の合同訓練は、市全体では1回、地区ではそれぞれ1回）"),
    Source("drill_participants", "訓練の参加者数（延べ）", "人", _drills("drill_participants"), people=True,
           description="訓練ごとの、記録をつけた支援者と安否を確認できた方の合計"),
    Source("drill_confirmed", "訓練で安否を確認できた方（延べ）", "人", _drills("persons_confirmed"),
           people=True, description="訓練ごとに、最後の記録が無事・避難済み・支援が必要だった方の合計"),
    Source("drill_not_reached", "訓練で確認できなかった方（延べ）", "人", _drills("persons_not_reached"),
           people=True,
           description="訓練の名簿（同意のある方と記録された方）のうち、不在・未確認・記録なしの方の合計"),
):
    register(_source)
