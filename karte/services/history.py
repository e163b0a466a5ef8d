"""The years of a karte as a viewer may see them: the trend of a district beside the city, the
projection of the elderly, the activity indicators against their targets, the plan table with its
marks and evaluations, and the edits city staff and coordinators make to them.

Nothing here is personal: history rows are aggregate figures, the plan and the indicators are what
a council publishes. Counts of people are still suppressed for the public, as in every public
output (:mod:`karte.services.suppression`): from 1 to ``KARTE_SUPPRESS_MAX`` as 秘匿, with the
rates that would give them away. Edits are row writes through the store as the acting user
(:meth:`~karte.store.base.Store.append_rows`, ``update_row``, ``delete_row``): the store checks the
user's level (city staff and coordinators: :data:`karte.domain.history.PLAN_WRITERS`) and writes the
access-log row in the same transaction; an edit of a row someone else changed meanwhile gets
:class:`~karte.domain.errors.ConflictError`.

The current build's fiscal year takes its analysis figures (salon coverage, evacuation-support
gaps) from the build snapshot when its history row has none yet (:func:`record_analysis` stores
them, which ``karte build`` and ``karte demo`` do after building).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pandas as pd

from karte import history, indicators, synthetic
from karte.domain.access import DEFAULT_SUPPRESS_MAX, SUPPRESSED, Access, Level
from karte.domain.errors import AccessDenied, InputError, NotFoundError
from karte.domain.history import (
    EVALUATION_JA,
    FIGURE_BY_KEY,
    HISTORY_KIND_JA,
    MARKS,
    SCOPE_JA,
    SOURCE_JA,
    TREND_YEARS,
    EvaluationKind,
    HistoryKind,
    HistoryLayer,
    ValueKind,
    fiscal_label,
    parse_cell,
    short_fiscal_label,
)
from karte.domain.layers import MUNICIPALITY
from karte.history_plan import PlanTable, table_from_layers
from karte.importing.history import read_layer
from karte.services.district_data import check_district
from karte.services.suppression import small
from karte.snapshot import Snapshot, current
from karte.store.base import Store

#: Figures of the trend views, in order (the history keeps more: :data:`FIGURES`).
TREND_KEYS = (
    "population",
    "elderly",
    "elderly_rate",
    "support_needers",
    "with_supporter",
    "with_supporter_rate",
    "plan_done",
    "plan_done_rate",
    "cooperators",
    "welfare_supporters",
    "salons",
    "coverage_rate",
    "at_risk",
    "gap_rate",
)
#: The trend chart's lines (rates, comparable between a district and the city).
CHART_KEYS = ("elderly_rate", "with_supporter_rate", "plan_done_rate", "coverage_rate", "gap_rate")
#: Years of the projection after the current fiscal year.
PROJECTION_YEARS = 5


def may_edit(access: Access) -> bool:
    """May this viewer edit the plan and the indicators (city staff and coordinators)?"""
    return access.level in (Level.CITY_STAFF, Level.COORDINATOR)


def municipality_of(access: Access, default: str) -> str:
    """The municipality whose plan and history a viewer sees: their own, else the deployment's."""
    return access.municipality or default


# --- history and trend ---------------------------------------------------------------------------------


def history_frame(store: Store, municipality: str) -> pd.DataFrame:
    """The municipality's history rows (every year, every district and the municipality's own),
    read once per build stamp (``history`` is a snapshot layer: any write to it changes the
    stamp). Shared by every caller: read it, do not change it."""
    return current(store).memo(("history", str(municipality)), lambda: _history_rows(store, municipality))


def _history_rows(store: Store, municipality: str) -> pd.DataFrame:
    frame = read_layer(store, HistoryLayer.HISTORY)
    frame = frame[frame[MUNICIPALITY].astype(str) == str(municipality)].copy()
    codes = frame["district_code"]
    blank = codes.isna() | (codes.astype(str) == "")
    frame["district_code"] = codes.astype(str).where(~blank, history.CITY)
    return frame


def live_analysis(snap: Snapshot, code: str) -> dict | None:
    """The current build's analysis figures of a district (``""``: the whole city): uncovered
    elderly and people with a gap in their evacuation support."""
    coverages, city = snap.coverage()
    gaps = snap.district_gaps
    if code == history.CITY:
        at_risk = (
            int(gaps.loc["city", "at_risk"]) if "city" in gaps.index and "at_risk" in gaps.columns else None
        )
        uncovered = city.get("uncovered_elderly")
        return {"uncovered_elderly": None if uncovered is None else round(uncovered), "at_risk": at_risk}
    cov = coverages.get(code)
    at_risk = int(gaps.loc[code, "at_risk"]) if code in gaps.index and "at_risk" in gaps.columns else None
    return {"uncovered_elderly": round(cov.uncovered_elderly) if cov else None, "at_risk": at_risk}


def live_sources(snap: Snapshot) -> dict:
    """The sources block of the current build, its analysis line with the parameters in force now."""
    return history.sources_block(snap.meta, params=snap.params)


def build_year(snap: Snapshot) -> int | None:
    """The fiscal year of the current build."""
    year = snap.meta.get("fiscal_year")
    return int(year) if year not in (None, "") else None


def trend(
    store: Store,
    code: str | None,
    access: Access,
    *,
    municipality: str,
    years: int = TREND_YEARS,
    max_small: int = DEFAULT_SUPPRESS_MAX,
    live: bool = True,
) -> dict:
    """The last ``years`` fiscal years of a district (``code``; None: the whole municipality) beside
    the municipality's, as ``access`` may see them (a JSON-ready dict).

    Returns ``{"district", "name", "years": [{"fiscal_year", "label", "kind", "kind_ja", "synthetic",
    "census_year", "district": {figure: value}, "city": {figure: value}}], "figures": [{"key",
    "label", "unit"}], "latest_year", "notes"}``. With ``live``, the current build's year gets the
    snapshot's analysis figures where its row has none. Public viewers: counts of people from 1 to
    ``max_small`` are :data:`SUPPRESSED` and the rates beside them None.
    """
    snap = current(store)
    if code is not None:
        check_district(snap, code)
    frame = history_frame(store, municipality)
    now = build_year(snap)
    known = sorted({int(y) for y in frame["fiscal_year"]})
    shown = known[-years:]
    wanted = frame[frame["district_code"].isin({code or history.CITY, history.CITY})]
    rows = {(str(r["district_code"]), int(r["fiscal_year"])): r for r in wanted.to_dict("records")}
    out_years = []
    for year in shown:
        mine = rows.get((code or history.CITY, year))
        city = rows.get((history.CITY, year))
        if mine is None and city is None:
            continue
        figures = {}
        for which, row, key in (("district", mine, code or history.CITY), ("city", city, history.CITY)):
            values = history.figures_of(row) if row is not None else {k: None for k in FIGURE_BY_KEY}
            if (
                live
                and year == now
                and row is not None
                and any(values.get(k) is None for k in ("uncovered_elderly", "at_risk"))
            ):
                analysed = live_analysis(snap, key) or {}
                values = history.with_rates(
                    {**values, **{k: v for k, v in analysed.items() if v is not None}}
                )
            figures[which] = _suppressed({k: values.get(k) for k in TREND_KEYS}, access, max_small)
        ref = mine if mine is not None else city
        kind = str(ref.get("kind") or HistoryKind.BUILD)
        out_years.append(
            {
                "fiscal_year": year,
                "label": fiscal_label(year),
                "short": short_fiscal_label(year),
                "kind": kind,
                "kind_ja": HISTORY_KIND_JA.get(HistoryKind(kind), kind)
                if kind in HistoryKind._value2member_map_
                else kind,
                "synthetic": bool(ref.get("synthetic")),
                "census_year": _int(ref.get("census_year")),
                **figures,
            }
        )
    notes = []
    if any(y["synthetic"] for y in out_years):
        notes.append("合成と書いた年度はデモ用の合成データです（実際の記録ではありません）。")
    censuses = sorted({y["census_year"] for y in out_years if y["census_year"]})
    if censuses:
        notes.append(
            "人口・年齢構成は"
            + "、".join(history.census_text(c) for c in censuses)
            + "の値です（国勢調査の年以外は同じ値が続きます）。"
        )
    return {
        "district": code,
        "name": snap.district_name(code) if code else _city_name(snap),
        "years": out_years,
        "latest_year": out_years[-1]["fiscal_year"] if out_years else None,
        "figures": [
            {"key": k, "label": FIGURE_BY_KEY[k].label, "unit": FIGURE_BY_KEY[k].unit} for k in TREND_KEYS
        ],
        "notes": notes,
        "build_year": now,
    }


def _suppressed(values: dict, access: Access, max_small: int) -> dict:
    if access.level not in (Level.PUBLIC, Level.PREFECTURE):
        return values
    out = dict(values)
    for key, value in values.items():
        figure = FIGURE_BY_KEY.get(key)
        if figure is not None and figure.people and figure.unit in ("人", "世帯"):
            out[key] = small(value, max_small)
    for key in values:
        figure = FIGURE_BY_KEY.get(key)
        if figure is not None and figure.rate_of and out.get(figure.rate_of) == SUPPRESSED:
            out[key] = None
    # a count hidden in the district but known for the rate's denominator: keep the rate hidden too
    return out


def projection(
    store: Store, code: str | None, access: Access, *, max_small: int = DEFAULT_SUPPRESS_MAX
) -> dict:
    """The elderly of a district (None: the city) carried forward from the census age bands to the
    current fiscal year and the next :data:`PROJECTION_YEARS` (an estimate:
    :func:`karte.history.project_elderly`), with its method in Japanese."""
    snap = current(store)
    if code is not None:
        check_district(snap, code)
    karte = snap.karte(code) if code is not None else next(iter(snap.kartes.values()), None)
    if karte is None:
        return {"rows": [], "method": ""}
    if code is None:
        bands = {
            k: sum((_base(snap.kartes[c]).get(k) or 0) for c in snap.codes)
            for k in ("age_15_64", "age_65_74", "age_75_plus")
        }
    else:
        bands = {k: _base(karte).get(k) for k in ("age_15_64", "age_65_74", "age_75_plus")}
    census = history.SHIPPED_CENSUS_YEAR
    for item in (karte.get("sources") or {}).get("items", []):
        if item["key"] == "census" and item.get("year"):
            census = int(item["year"])
    now = build_year(snap) or history.current_fiscal_year()
    rows = history.project_elderly(
        bands, base_year=census, years=[census, *range(now, now + PROJECTION_YEARS + 1)]
    )
    synthetic_bands = "age_bands" in (karte.get("synthetic") or [])
    for row in rows:
        row["label"] = (
            fiscal_label(row["fiscal_year"]) if row["fiscal_year"] != census else f"{census}年（国勢調査）"
        )
        row["estimate"] = row["fiscal_year"] != census
        for k in ("age_65_74", "age_75_plus", "elderly"):
            if access.level in (Level.PUBLIC, Level.PREFECTURE):
                row[k] = small(row[k], max_small)
    method = (
        f"推計（データではありません）: {history.census_text(census)}の年齢別人口から、"
        "毎年 15〜64歳の1/50が65歳に、"
        "65〜74歳の1/10が75歳に達し、各年齢層が生命表に近い率で生存するとして進めた簡易なコーホート推計です。"
        "転入・転出は考慮していません。国勢調査から離れるほど誤差が大きくなります。"
    )
    if synthetic_bands:
        method += "年齢構成そのものがデモ用の合成データです。"
    return {"rows": rows, "method": method, "census_year": census, "synthetic_bands": synthetic_bands}


def _base(karte: Mapping) -> dict:
    return {m["key"]: m.get("value") for m in karte.get("base", [])}


def _city_name(snap: Snapshot) -> str:
    first = next(iter(snap.kartes.values()), None)
    name = ((first or {}).get("district", {}).get("municipality") or {}).get("name")
    return f"{name}全体" if name else "市全体"


# --- recording the analyses ------------------------------------------------------------------------------


def record_analysis(store: Store, *, seed: int | None = None) -> int:
    """Store the current build's analysis figures (salon coverage, evacuation-support gaps) in the
    history rows of its fiscal year, so later years' trends keep them; synthetic earlier years of
    the demo without them get them walked back from these (``seed``, labelled synthetic as the rest
    of those rows). Returns the number of rows changed (0: nothing to write)."""
    snap = current(store)
    year = build_year(snap)
    if year is None or HistoryLayer.HISTORY not in store.layers():
        return 0
    frame = read_layer(store, HistoryLayer.HISTORY)
    municipalities = {str(k["district"]["municipality"]["code"]) for k in snap.kartes.values()}
    analysis = {code: live_analysis(snap, code) for code in [*snap.codes, history.CITY]}
    out = frame.copy()
    for municipality in municipalities:
        out = history.with_analysis(out, fiscal_year=year, municipality=municipality, analysis=analysis)
    if seed is not None:
        out = synthetic.synthetic_analysis(out, fiscal_year=year, seed=seed)
    changed = int((out["figures"] != frame["figures"]).sum())
    if changed:
        store.write({str(HistoryLayer.HISTORY): out})
    return changed


# --- indicators ---------------------------------------------------------------------------------------------


def indicator_context(store: Store, municipality: str) -> indicators.Context:
    """The context computed indicators read (history, the current build's analyses)."""
    snap = current(store)
    return indicators.Context(
        store, municipality, analysis_year=build_year(snap), analysis=lambda code: live_analysis(snap, code)
    )


def indicator_list(
    store: Store,
    access: Access,
    *,
    municipality: str,
    district: str | None = None,
    year: int | None = None,
    max_small: int = DEFAULT_SUPPRESS_MAX,
) -> list[dict]:
    """The indicators with baseline, targets, values and attainment (JSON-ready dicts), as of
    ``year`` (default: every year known). Without ``district``: the municipality's own indicators
    (scope city). With it: that district's own indicators, then the municipality's computed
    indicators counted for the district (their targets are the city's and are not applied)."""
    snap = current(store)
    if district is not None:
        check_district(snap, district)
    context = indicator_context(store, municipality)
    definitions, values = indicators.read_definitions(store, municipality)
    years = context.years()
    out = []
    for d in definitions:
        code = _text(d.get("district_code"))
        if (district is None and code) or (district is not None and code and code != district):
            continue
        if district is not None and not code and not d.get("computed"):
            continue
        result = indicators.evaluate(
            d,
            indicators.values_of(d, values),
            context,
            years=years,
            district=district if (district is not None and not code) else None,
            until=year,
        )
        item = result.as_dict()
        item["scope_ja"] = SCOPE_JA.get(item["scope"], item["scope"])
        item["source_ja"] = SOURCE_JA.get(item["source"], item["source"])
        item["for_district"] = district if (district is not None and not code) else None
        item["people"] = result.people
        out.append(_suppress_indicator(item, access, max_small) if result.people else item)
    return out


def _suppress_indicator(item: dict, access: Access, max_small: int) -> dict:
    if access.level not in (Level.PUBLIC, Level.PREFECTURE):
        return item
    hidden = False
    for v in item["values"]:
        if v["value"] is not None and small(round(v["value"]), max_small) == SUPPRESSED:
            v["value"], v["attainment"], v["on_track"], hidden = SUPPRESSED, None, None, True
    if (
        item["latest"]
        and item["latest"]["value"] is not None
        and small(round(item["latest"]["value"]), max_small) == SUPPRESSED
    ):
        item["latest"].update(value=SUPPRESSED, attainment=None, on_track=None)
    if item["baseline"] is not None and small(round(item["baseline"]), max_small) == SUPPRESSED:
        item["baseline"], hidden = SUPPRESSED, True
    if hidden:
        for t in item["targets"]:
            t["attainment"] = None
    return item


# --- the plan ---------------------------------------------------------------------------------------------


def plans_of(store: Store, municipality: str, district: str | None = None) -> list[dict]:
    """The plans of a municipality (``district``: that district's own; None: the municipality's),
    newest last."""
    frame = read_layer(store, HistoryLayer.PLANS)
    frame = frame[frame[MUNICIPALITY].astype(str) == str(municipality)]
    rows = [r for r in frame.to_dict("records") if _text(r.get("district_code")) == (district or "")]
    return sorted(rows, key=lambda r: (_int(r.get("last_year")) or 0, str(r.get("plan_id"))))


def plan_table(
    store: Store, municipality: str, *, plan: str | None = None, district: str | None = None
) -> tuple[dict | None, PlanTable | None, list[dict], list[dict]]:
    """A plan (default: the newest) as (its row, its :class:`PlanTable`, its item rows, its mark rows)."""
    plans = plans_of(store, municipality, district)
    if plan is not None:
        plans = [p for p in plans if str(p["key"]) == plan]
        if not plans:
            raise NotFoundError(f"計画「{plan}」はありません")
    if not plans:
        return None, None, [], []
    row = plans[-1]
    items = _rows(store, HistoryLayer.PLAN_ITEMS, municipality, row["key"], district)
    marks = _rows(store, HistoryLayer.PLAN_MARKS, municipality, row["key"], district)
    return row, table_from_layers(row, items, marks), items, marks


def _rows(store: Store, layer: str, municipality: str, plan_key: str, district: str | None) -> list[dict]:
    frame = read_layer(store, layer, versions=True)
    mine = (frame[MUNICIPALITY].astype(str) == str(municipality)) & (
        frame["plan_key"].astype(str) == str(plan_key)
    )
    return [
        {k: _clean(v) for k, v in r.items()}
        for r in frame[mine].to_dict("records")
        if _text(r.get("district_code")) == (district or "")
    ]


def plan_view(
    store: Store, access: Access, *, municipality: str, plan: str | None = None, district: str | None = None
) -> dict:
    """The plan table as a page or the report shows it: goals, promotion goals and items with
    their marks per year (and the mark rows' ids and versions for editors), the legend, the
    evaluations per goal and year, and the other plans to choose from."""
    row, table, items, marks = plan_table(store, municipality, plan=plan, district=district)
    if row is None or table is None:
        return {"plan": None, "plans": [], "legend": _legend(), "goals": [], "years": [], "evaluations": []}
    mark_rows = {(str(m["item_id"]), int(m["fiscal_year"])): m for m in marks}
    item_ids = {
        (_text(i.get("goal_no")), _text(i.get("promotion_no")), _text(i.get("item_no"))): i["item_id"]
        for i in items
    }
    goals: list[dict] = []
    for item in table.items:
        if not goals or goals[-1]["no"] != item.goal_no:
            goals.append({"no": item.goal_no, "text": item.goal, "promotions": []})
        promotions = goals[-1]["promotions"]
        if not promotions or promotions[-1]["no"] != item.promotion_no:
            promotions.append({"no": item.promotion_no, "text": item.promotion, "items": []})
        item_id = item_ids.get((item.goal_no, item.promotion_no, item.item_no))
        cells = []
        for year in table.years:
            cell = item.cells.get(year)
            stored = mark_rows.get((str(item_id), year))
            cells.append(
                {
                    "fiscal_year": year,
                    "text": cell.text if cell else "",
                    "marks": [{"symbol": s, "label": _mark_label(s)} for s in (cell.marks if cell else "")],
                    "not_applicable": bool(cell and cell.not_applicable),
                    "merged_into": cell.merged_into if cell else "",
                    "mark_id": stored["mark_id"] if stored else None,
                    "version": _int(stored.get("version")) if stored else None,
                }
            )
        promotions[-1]["items"].append(
            {
                "item_id": item_id,
                "no": item.item_no,
                "ref": item.ref,
                "text": item.item,
                "section": item.section,
                "merged_into": item.merged_into,
                "cells": cells,
            }
        )
    evaluations = evaluations_of(store, municipality, row["key"], district)
    goal_text = {g["no"]: g["text"] for g in goals}
    for e in evaluations:
        e["goal"] = goal_text.get(e["goal_no"], "")
    return {
        "plan": {
            "key": row["key"],
            "name": row.get("name") or row["key"],
            "first_year": table.first_year,
            "last_year": table.last_year,
            "source": _text(row.get("source")),
            "note": _text(row.get("note")),
            "title": table.title,
        },
        "plans": [
            {"key": p["key"], "name": p.get("name") or p["key"]}
            for p in plans_of(store, municipality, district)
        ],
        "years": [
            {
                "fiscal_year": y,
                "label": table.year_labels.get(y) or short_fiscal_label(y),
                "long": fiscal_label(y),
            }
            for y in table.years
        ],
        "legend": _legend(),
        "goals": goals,
        "evaluations": evaluations,
        "editable": may_edit(access),
    }


def evaluations_of(store: Store, municipality: str, plan_key: str, district: str | None) -> list[dict]:
    rows = _rows(store, HistoryLayer.EVALUATIONS, municipality, plan_key, district)
    out = []
    for r in sorted(
        rows,
        key=lambda r: (_int(r.get("fiscal_year")) or 0, _goal_order(r.get("goal_no")), str(r.get("kind"))),
    ):
        kind = _text(r.get("kind"))
        out.append(
            {
                "evaluation_id": r["evaluation_id"],
                "version": _int(r.get("version")),
                "goal_no": _text(r.get("goal_no")),
                "fiscal_year": _int(r.get("fiscal_year")),
                "year_label": fiscal_label(int(r["fiscal_year"])) if _int(r.get("fiscal_year")) else "",
                "kind": kind,
                "kind_ja": EVALUATION_JA.get(EvaluationKind(kind), kind)
                if kind in EvaluationKind._value2member_map_
                else kind,
                "achievements": _lines(r.get("achievements")),
                "issues": _lines(r.get("issues")),
                "evaluator": _text(r.get("evaluator")),
            }
        )
    return out


def _legend() -> list[dict]:
    return [{"symbol": m.symbol, "label": m.label, "colour": m.colour} for m in MARKS]


def _mark_label(symbol: str) -> str:
    return next((m.label for m in MARKS if m.symbol == symbol), symbol)


def _goal_order(value) -> tuple:
    text = _text(value)
    return (int(text), "") if text.isdigit() else (10**6, text)


def _lines(text) -> list[str]:
    """Evaluation text as points (the files separate them with ／ or new lines)."""
    return [p.strip() for p in str(text or "").replace("\r", "").replace("／", "\n").split("\n") if p.strip()]


# --- edits (city staff and coordinators; audited by the store) ----------------------------------------------


def _check_editor(access: Access) -> None:
    if not may_edit(access):
        raise AccessDenied("計画・指標を編集できるのは市職員とコーディネーターだけです")


def set_mark(
    store: Store,
    access: Access,
    *,
    municipality: str,
    plan: str,
    item_id: str,
    fiscal_year: int,
    text: str,
    version: int | None = None,
    district: str | None = None,
) -> str:
    """Set the cell of an item in a fiscal year (``text``: marks of the legend, ``-``, a merge pointer,
    or empty to clear it). ``version``: the version read (None: the cell was empty). Returns the
    cell as stored."""
    _check_editor(access)
    cell = parse_cell(text)
    if isinstance(cell, str):
        raise InputError(cell)
    row, table, items, marks = plan_table(store, municipality, plan=plan, district=district)
    if row is None or table is None or not any(str(i["item_id"]) == item_id for i in items):
        raise NotFoundError("その取組項目はありません")
    if fiscal_year not in table.years:
        raise InputError(
            f"{fiscal_year}年度は計画の期間（{table.first_year}〜{table.last_year}年度）の外です"
        )
    existing = next(
        (m for m in marks if str(m["item_id"]) == item_id and int(m["fiscal_year"]) == fiscal_year), None
    )
    if existing is None:
        if cell.text:
            store.append_rows(
                HistoryLayer.PLAN_MARKS,
                [
                    {
                        MUNICIPALITY: municipality,
                        "district_code": district or "",
                        "plan_key": row["key"],
                        "item_id": item_id,
                        "fiscal_year": int(fiscal_year),
                        "marks": cell.text,
                    }
                ],
                access=access,
            )
        return cell.text
    current_version = int(existing["version"]) if version is None else int(version)
    if cell.text:
        store.update_row(
            HistoryLayer.PLAN_MARKS,
            existing["mark_id"],
            {"marks": cell.text},
            version=current_version,
            access=access,
        )
    else:
        store.delete_row(HistoryLayer.PLAN_MARKS, existing["mark_id"], version=current_version, access=access)
    return cell.text


def save_value(
    store: Store,
    access: Access,
    *,
    municipality: str,
    key: str,
    fiscal_year: int,
    kind: str,
    value: float | None,
    note: str = "",
    district: str | None = None,
) -> None:
    """Enter (or, with ``value`` None, remove) an indicator's value or target for a fiscal year."""
    _check_editor(access)
    if kind not in ValueKind._value2member_map_:
        raise InputError("区分は value（実績）か target（目標）です")
    definitions, values = indicators.read_definitions(store, municipality)
    if not any(
        str(d["key"]) == key and _text(d.get("district_code")) == (district or "") for d in definitions
    ):
        raise NotFoundError(f"指標「{key}」はありません")
    if not 1989 <= int(fiscal_year) <= history.current_fiscal_year() + 20:
        raise InputError(f"年度 {fiscal_year} は範囲外です")
    existing = next(
        (
            v
            for v in values
            if str(v["indicator_key"]) == key
            and _text(v.get("district_code")) == (district or "")
            and int(v["fiscal_year"]) == int(fiscal_year)
            and str(v["kind"]) == kind
        ),
        None,
    )
    if existing is None:
        if value is not None:
            store.append_rows(
                HistoryLayer.INDICATOR_VALUES,
                [
                    {
                        MUNICIPALITY: municipality,
                        "district_code": district or "",
                        "indicator_key": key,
                        "fiscal_year": int(fiscal_year),
                        "kind": kind,
                        "value": float(value),
                        "note": note or None,
                    }
                ],
                access=access,
            )
        return
    if value is None:
        store.delete_row(
            HistoryLayer.INDICATOR_VALUES,
            existing["value_id"],
            version=int(existing["version"]),
            access=access,
        )
    else:
        store.update_row(
            HistoryLayer.INDICATOR_VALUES,
            existing["value_id"],
            {"value": float(value), "note": note or None},
            version=int(existing["version"]),
            access=access,
        )


def save_evaluation(
    store: Store,
    access: Access,
    *,
    municipality: str,
    plan: str,
    goal_no: str,
    fiscal_year: int,
    kind: str,
    achievements: str,
    issues: str,
    evaluator: str = "",
    district: str | None = None,
    evaluation_id: str | None = None,
    version: int | None = None,
) -> None:
    """Add an evaluation note of a goal and year, or change one (``evaluation_id`` and the
    ``version`` read)."""
    _check_editor(access)
    if kind not in EvaluationKind._value2member_map_:
        raise InputError("区分は internal（内部評価）か external（外部評価）です")
    if not (achievements.strip() or issues.strip()):
        raise InputError("成果か課題を書いてください")
    row, table, _, _ = plan_table(store, municipality, plan=plan, district=district)
    if row is None or table is None or goal_no not in {i.goal_no for i in table.items}:
        raise NotFoundError("その目標はありません")
    values = {
        "achievements": achievements.strip() or None,
        "issues": issues.strip() or None,
        "evaluator": evaluator.strip() or None,
    }
    if evaluation_id:
        if version is None:
            raise InputError("版（version）がありません。ページを読み込み直してください")
        store.update_row(HistoryLayer.EVALUATIONS, evaluation_id, values, version=int(version), access=access)
        return
    store.append_rows(
        HistoryLayer.EVALUATIONS,
        [
            {
                MUNICIPALITY: municipality,
                "district_code": district or "",
                "plan_key": row["key"],
                "goal_no": goal_no,
                "fiscal_year": int(fiscal_year),
                "kind": kind,
                **values,
            }
        ],
        access=access,
    )


# --- the report -------------------------------------------------------------------------------------------


def report_data(
    store: Store,
    access: Access,
    *,
    municipality: str,
    year: int,
    district: str | None = None,
    max_small: int = DEFAULT_SUPPRESS_MAX,
) -> dict:
    """Everything the annual progress report prints for ``year``: the indicators as of that year,
    the plan table, the evaluations of that year (and the year before), the sources."""
    snap = current(store)
    if district is not None:
        check_district(snap, district)
    items = indicator_list(
        store, access, municipality=municipality, district=district, year=year, max_small=max_small
    )
    view = plan_view(store, access, municipality=municipality)
    evaluations = [e for e in view["evaluations"] if e["fiscal_year"] in (year, year - 1)]
    sources = live_sources(snap)
    name = snap.district_name(district) if district else _city_name(snap)
    return {
        "year": year,
        "year_label": fiscal_label(year),
        "name": name,
        "district": district,
        "indicators": items,
        "plan": view,
        "evaluations": evaluations,
        "sources": sources,
        "public": access.level in (Level.PUBLIC, Level.PREFECTURE),
        "max_small": max_small,
        "trend": trend(store, district, access, municipality=municipality, max_small=max_small),
    }


# --- helpers ------------------------------------------------------------------------------------------------


def _text(v) -> str:
    return "" if _blank(v) else str(v)


def _int(v) -> int | None:
    if _blank(v):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _blank(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v) or v == ""


def _clean(v):
    return None if _blank(v) else v


def as_json(data) -> str:
    """``data`` as JSON text (Japanese as letters)."""
    return json.dumps(data, ensure_ascii=False, indent=1, default=str)
