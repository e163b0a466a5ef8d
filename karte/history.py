"""The karte's years: a snapshot of every district's figures per fiscal year, the sources and
reference dates of every figure, and the five-year projection of the elderly.

The build (and the import of an earlier census table) writes one ``history`` row per district and
one for the whole municipality (``district_code`` empty) for the fiscal year it builds
(:func:`history_rows`), replacing that year's rows and keeping every other year
(:func:`merge_history`). A row keeps flat ``figures`` (:data:`karte.domain.history.FIGURES`, JSON
text) and the ``sources`` they come from (JSON text, :func:`sources_block`), so a trend can say,
for each year, what it is made of. Nothing here is personal: counts only.

**Honest dates.** The build's figures come from different sources with different dates: the
population from a census (the shipped boundaries: 2015), the register, roster and services as of
the day they were handed over (or generated, in the demo), the shelters as fetched from GSI, the
analyses with the parameters in force. :func:`sources_block` says each of them, with its date, in
Japanese, for the karte dict, the pages and the sheets.

**Projection.** :func:`project_elderly` carries the census age bands forward with a simple cohort
method (documented there); its results are estimates, and every output labels them so.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from gis.params import AnalysisParams
from karte.analysis import counting_salons
from karte.domain.history import (
    ANALYSIS_FIGURES,
    FIGURE_BY_KEY,
    FIGURES,
    HistoryKind,
    HistoryLayer,
    fiscal_label,
    wareki,
)
from karte.domain.layers import MUNICIPALITY, split_list
from karte.domain.schema import PlanStatus, Role

#: The census the shipped small areas come from (平成27年国勢調査, e-Stat 統計LOD).
SHIPPED_CENSUS_YEAR = 2015
#: A census counts the population as of 1 October of its year.
CENSUS_DAY = (10, 1)
#: When the shipped GSI shelter lists were fetched (data/README.md).
SHIPPED_SHELTERS_FETCHED = "2025-10-27"
#: Columns of the ``history`` layer, in order (the registry's).
HISTORY_COLUMNS = (
    "history_id",
    MUNICIPALITY,
    "district_code",
    "fiscal_year",
    "kind",
    "data_date",
    "census_year",
    "synthetic",
    "figures",
    "sources",
    "recorded_at",
)
#: The ``district_code`` of the whole municipality's row.
CITY = ""


def current_fiscal_year(today: dt.date | None = None) -> int:
    """The fiscal year (年度, April to March) ``today`` falls in."""
    today = today or dt.date.today()
    return today.year if today.month >= 4 else today.year - 1


def census_year_of(path: Path | str | None) -> int | None:
    """The census year a boundary or statistics file names (``…_2015_estat_lod.geojson`` -> 2015),
    or None."""
    if path is None:
        return None
    m = re.search(r"(?:^|[_\-.])((?:19|20)\d{2})(?:[_\-.]|$)", Path(path).name)
    return int(m.group(1)) if m else None


# --- the figures of one year ------------------------------------------------------------------------


def karte_figures(karte: Mapping, *, salons: int | None = None, supporters: int | None = None) -> dict:
    """The history figures of one assembled karte (counts from its ``base``, ``register``,
    ``cooperators`` and ``services``; ``salons``: counting salons in the district; ``supporters``:
    cooperators assigned to at least one support-needer). Rates are computed from the counts."""
    base = {m["key"]: m.get("value") for m in karte.get("base", [])}
    reg = karte.get("register", {})
    coop = karte.get("cooperators", {})
    plans = {p["key"]: p["count"] for p in reg.get("by_plan", [])}
    roles = {r["key"]: r["count"] for r in coop.get("by_role", [])}
    out = {
        key: _int(base.get(key))
        for key in (
            "population",
            "households",
            "age_0_14",
            "age_15_64",
            "age_65_74",
            "age_75_plus",
            "elderly",
            "elderly_alone",
            "disabled",
        )
    }
    out.update(
        {
            "support_needers": _int(reg.get("total")),
            "consent_shareable": _int(reg.get("shareable")),
            "with_supporter": _int(reg.get("with_supporter")),
            "plan_done": _int(plans.get(str(PlanStatus.DONE))),
            "plan_in_progress": _int(plans.get(str(PlanStatus.IN_PROGRESS))),
            "cooperators": _int(coop.get("total")),
            "welfare_supporters": _int(roles.get(str(Role.WELFARE_SUPPORTER))),
            "supporters": _int(supporters),
            "services": len(karte.get("services", [])) if "services" in karte else None,
            "salons": _int(salons),
        }
    )
    return with_rates(out)


def with_rates(figures: Mapping) -> dict:
    """``figures`` with the rates recomputed from their counts (elderly rate, supporter rate,
    plan rate, coverage rate, gap rate); a rate is None when a count it needs is missing."""
    out = dict(figures)
    age_known = _sum(out.get(k) for k in ("age_0_14", "age_15_64", "age_65_74", "age_75_plus"))
    out["elderly_rate"] = ratio(out.get("elderly"), age_known or out.get("population"))
    out["with_supporter_rate"] = ratio(out.get("with_supporter"), out.get("support_needers"))
    out["plan_done_rate"] = ratio(out.get("plan_done"), out.get("support_needers"))
    if out.get("uncovered_elderly") is not None and out.get("elderly"):
        out["coverage_rate"] = ratio(out["elderly"] - out["uncovered_elderly"], out["elderly"])
    else:
        out.setdefault("coverage_rate", None)
    out["gap_rate"] = (
        ratio(out.get("at_risk"), out.get("support_needers")) if out.get("at_risk") is not None else None
    )
    return {f.key: out.get(f.key) for f in FIGURES}


def city_figures(district_figures: Iterable[Mapping]) -> dict:
    """The whole municipality's figures: the sum of the districts' counts, rates recomputed."""
    rows = list(district_figures)
    out = {}
    for f in FIGURES:
        if f.rate_of is None and f.unit != "%":
            values = [r.get(f.key) for r in rows]
            out[f.key] = None if not rows or any(v is None for v in values) else int(sum(values))
    return with_rates(out)


def supporters_by_district(register: pd.DataFrame, cooperators: pd.DataFrame) -> dict[str, int]:
    """Cooperators assigned as supporter (避難支援等関係者) to at least one person, per district of
    the cooperator."""
    assigned = {s for ids in register.get("supporter_ids", pd.Series(dtype=object)) for s in split_list(ids)}
    if not len(cooperators):
        return {}
    mask = cooperators["cooperator_id"].astype(str).isin(assigned)
    return {str(k): int(v) for k, v in cooperators.loc[mask, "district_code"].value_counts().items()}


def salons_by_district(services: pd.DataFrame, params: AnalysisParams | None = None) -> dict[str, int]:
    """Counting salons (held at least monthly, :func:`karte.analysis.counting_salons`) per district."""
    if not len(services):
        return {}
    salons = counting_salons(services, params or AnalysisParams())
    return {str(k): int(v) for k, v in salons["district_code"].value_counts().items()}


# --- rows of the history layer ------------------------------------------------------------------------


def history_rows(
    kartes: Mapping[str, Mapping],
    *,
    fiscal_year: int,
    meta: Mapping,
    kind: str = HistoryKind.BUILD,
    salons: Mapping[str, int] | None = None,
    supporters: Mapping[str, int] | None = None,
    sources: Mapping | None = None,
    recorded_at: str | None = None,
) -> pd.DataFrame:
    """The history rows of one build: one per district and one per municipality (district code
    :data:`CITY`), without ids (:func:`merge_history` gives them)."""
    salons, supporters = salons or {}, supporters or {}
    recorded_at = recorded_at or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    synthetic = bool(
        json.loads(meta.get("synthetic", "[]"))
        if isinstance(meta.get("synthetic"), str)
        else meta.get("synthetic")
    )
    sources_text = json.dumps(sources or {}, ensure_ascii=False)
    census = _int(meta.get("census_year"))
    rows, by_municipality = [], {}
    for code, one in sorted(kartes.items()):
        municipality = one["district"]["municipality"]["code"]
        figures = karte_figures(one, salons=salons.get(code, 0), supporters=supporters.get(code, 0))
        by_municipality.setdefault(municipality, []).append(figures)
        rows.append(
            history_row(
                municipality,
                code,
                fiscal_year,
                kind,
                meta,
                census,
                synthetic,
                figures,
                sources_text,
                recorded_at,
            )
        )
    for municipality, figures in sorted(by_municipality.items(), key=lambda kv: str(kv[0])):
        rows.append(
            history_row(
                municipality,
                CITY,
                fiscal_year,
                kind,
                meta,
                census,
                synthetic,
                city_figures(figures),
                sources_text,
                recorded_at,
            )
        )
    return pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))


def history_row(
    municipality, code, fiscal_year, kind, meta, census, synthetic, figures, sources, recorded_at
) -> dict:
    """One row of the ``history`` layer (without its id)."""
    return {
        "history_id": None,
        MUNICIPALITY: municipality,
        "district_code": code,
        "fiscal_year": int(fiscal_year),
        "kind": str(kind),
        "data_date": meta.get("data_date"),
        "census_year": census,
        "synthetic": synthetic,
        "figures": json.dumps(figures, ensure_ascii=False),
        "sources": sources,
        "recorded_at": recorded_at,
    }


def merge_history(
    existing: pd.DataFrame | None, new: pd.DataFrame, *, keep_analysis: bool = True
) -> pd.DataFrame:
    """The history layer after ``new``: its rows replace those of the same municipality, district
    and fiscal year (keeping their ids; with ``keep_analysis``, the analysis figures a replaced
    row had when ``new`` has none), every other year stays. New rows get the next ids
    (``H000001``…). Rows come out sorted by municipality, fiscal year, district."""
    new = new.reindex(columns=list(HISTORY_COLUMNS)).copy()
    if existing is None or not len(existing):
        old = pd.DataFrame(columns=list(HISTORY_COLUMNS))
    else:
        old = existing.reindex(columns=list(HISTORY_COLUMNS)).copy()
    key = [MUNICIPALITY, "district_code", "fiscal_year"]
    for frame in (old, new):
        frame["district_code"] = frame["district_code"].fillna(CITY).astype(str)
        frame["fiscal_year"] = pd.to_numeric(frame["fiscal_year"]).astype("int64")
    replaced = {
        tuple(k): row for k, row in zip(old[key].itertuples(index=False), old.to_dict("records"), strict=True)
    }
    ids, figures = [], []
    next_id = _next_number(old["history_id"])
    for k, row in zip(new[key].itertuples(index=False), new.to_dict("records"), strict=True):
        before = replaced.get(tuple(k))
        if before is not None and isinstance(before.get("history_id"), str):
            ids.append(before["history_id"])
        else:
            ids.append(f"H{next_id:06d}")
            next_id += 1
        figures.append(
            _keep_analysis(row["figures"], before["figures"] if before is not None else None)
            if keep_analysis
            else row["figures"]
        )
    new["history_id"] = ids
    new["figures"] = figures
    keys = set(map(tuple, new[key].itertuples(index=False)))
    kept = old[[tuple(k) not in keys for k in old[key].itertuples(index=False)]]
    out = pd.concat([kept, new], ignore_index=True) if len(kept) else new
    out = out.sort_values([MUNICIPALITY, "fiscal_year", "district_code"], kind="stable").reset_index(
        drop=True
    )
    out["fiscal_year"] = out["fiscal_year"].astype("int64")
    out["census_year"] = pd.array([_int(v) for v in out["census_year"]], dtype="Int64")
    out["synthetic"] = out["synthetic"].astype(bool)
    return out[list(HISTORY_COLUMNS)]


def _keep_analysis(new_text: str, old_text) -> str:
    new = json.loads(new_text)
    if not isinstance(old_text, str) or any(new.get(k) is not None for k in ANALYSIS_FIGURES):
        return new_text
    old = json.loads(old_text)
    for k in ANALYSIS_FIGURES:
        new[k] = old.get(k)
    return json.dumps(with_rates(new), ensure_ascii=False)


def with_analysis(
    history: pd.DataFrame, *, fiscal_year: int, municipality: str, analysis: Mapping[str, Mapping]
) -> pd.DataFrame:
    """``history`` with the analysis figures (``uncovered_elderly``, ``at_risk``, per district code
    and :data:`CITY`) of one fiscal year filled in, rates recomputed."""
    out = history.copy()
    texts = []
    for code, year, m, text in zip(
        out["district_code"].fillna(CITY), out["fiscal_year"], out[MUNICIPALITY], out["figures"], strict=True
    ):
        found = analysis.get(str(code))
        if int(year) != int(fiscal_year) or m != municipality or found is None:
            texts.append(text)
            continue
        figures = json.loads(text)
        figures.update({k: found.get(k) for k in ("uncovered_elderly", "at_risk")})
        texts.append(json.dumps(with_rates(figures), ensure_ascii=False))
    out["figures"] = texts
    return out


def _next_number(ids: pd.Series) -> int:
    numbers = [int(m.group(1)) for v in ids.dropna() if (m := re.fullmatch(r"H(\d+)", str(v)))]
    return max(numbers, default=0) + 1


# --- sources and reference dates --------------------------------------------------------------------


def census_text(year: int | None) -> str:
    """``国勢調査 2015年（平成27年）``."""
    return "国勢調査（年不明）" if year is None else f"国勢調査 {year}年（{wareki(year)}）"


def date_text(iso: str | None) -> str:
    """``2026-10-01`` -> ``2026年10月1日（令和8年）``."""
    if not iso:
        return "日付不明"
    try:
        d = dt.date.fromisoformat(str(iso)[:10])
    except ValueError:
        return str(iso)
    return f"{d.year}年{d.month}月{d.day}日（{wareki(d.year)}）"


def source_meta(
    *,
    census_year: int | None,
    census_file: str | None,
    age_table: str | None,
    synthetic_layers: Iterable[str],
    data_date: dt.date,
    fiscal_year: int,
    shelters_fetched: str | None = SHIPPED_SHELTERS_FETCHED,
    imported: Mapping | None = None,
) -> dict:
    """The ``meta`` keys the build writes for :func:`sources_block` (strings, as ``meta`` holds)."""
    synthetic = set(synthetic_layers)
    meta = {
        "fiscal_year": str(int(fiscal_year)),
        "census_year": "" if census_year is None else str(int(census_year)),
        "census_file": census_file or "",
        "age_table": age_table or "",
        "shelters_fetched": shelters_fetched or "",
    }
    for layer in ("register", "cooperators", "services"):
        record = (imported or {}).get(layer)
        meta[f"{layer}_as_of"] = data_date.isoformat() if layer in synthetic or not record else str(record)
    return meta


#: (key, label) of the items of a sources block, in order.
SOURCE_LABELS = (
    ("census", "人口・世帯"),
    ("age_bands", "年齢構成"),
    ("elderly_alone", "一人暮らし高齢者・障がい者"),
    ("register", "要支援者名簿"),
    ("cooperators", "共助協力者"),
    ("services", "共助サービス"),
    ("shelters", "避難所・避難場所"),
    ("districts", "地区割り"),
    ("analysis", "分析条件"),
)


def sources_block(meta: Mapping[str, str], *, params: AnalysisParams | None = None) -> dict:
    """What every figure of a karte comes from, and as of when (a JSON-ready dict).

    Returns ``{"fiscal_year", "fiscal_year_label", "items": [...], "lines": [...]}`` (when it was
    built is the karte's own ``built_at``, so two builds of the same data give the same block):
    each item is ``{"key", "label", "source", "as_of", "year", "synthetic", "text"}`` (``as_of`` an
    ISO date or None, ``year`` the census year or None; ``text`` the Japanese line, e.g.
    「人口・世帯: 国勢調査 2015年（平成27年）10月1日現在」), ``lines`` the items' texts in order.
    """
    params = params or AnalysisParams()
    synthetic = set(_json_list(meta.get("synthetic")))
    census = _int(meta.get("census_year")) or SHIPPED_CENSUS_YEAR
    census_as_of = dt.date(census, *CENSUS_DAY).isoformat()
    fiscal = _int(meta.get("fiscal_year"))
    items = [
        _item(
            "census", census_text(census) + "10月1日現在", "国勢調査（小地域）", census_as_of, census, False
        )
    ]
    if "age_bands" in synthetic:
        items.append(
            _item(
                "age_bands",
                f"デモ用の合成データ（{census_text(census)}の人口から推計モデルで按分）",
                "合成（推計モデル）",
                None,
                census,
                True,
            )
        )
    else:
        table = meta.get("age_table") or ""
        items.append(
            _item(
                "age_bands",
                census_text(census) + " 年齢別人口" + (f"（{table}）" if table else ""),
                "国勢調査（小地域・年齢別）",
                census_as_of,
                census,
                False,
            )
        )
    alone_synthetic = bool({"elderly_alone", "disabled"} & synthetic)
    items.append(
        _item(
            "elderly_alone",
            "デモ用の合成データ（推計モデル）" if alone_synthetic else census_text(census),
            "合成（推計モデル）" if alone_synthetic else "国勢調査",
            None if alone_synthetic else census_as_of,
            None if alone_synthetic else census,
            alone_synthetic,
        )
    )
    for layer in ("register", "cooperators", "services"):
        as_of = meta.get(f"{layer}_as_of") or meta.get("data_date")
        record = _json_dict(meta.get(f"import_{layer}"))
        if record:
            text = f"{date_text(record.get('at'))} 取り込み（{record.get('file', 'ファイル名不明')}）"
            as_of = str(record.get("at", ""))[:10] or as_of
        else:
            text = f"{date_text(as_of)}時点"
        is_synthetic = layer in synthetic
        if is_synthetic:
            text += "（デモ用の合成データ）"
        items.append(
            _item(layer, text, "合成" if is_synthetic else "市・社協の提供", as_of, None, is_synthetic)
        )
    fetched = meta.get("shelters_fetched") or None
    shelter_text = "国土地理院 指定緊急避難場所・指定避難所データ"
    record = _json_dict(meta.get("import_shelters"))
    if record:
        shelter_text = f"{date_text(record.get('at'))} 取り込み（{record.get('file', '')}）"
        fetched = str(record.get("at", ""))[:10] or fetched
    elif fetched:
        shelter_text += f"（{date_text(fetched)}取得）"
    items.append(_item("shelters", shelter_text, "国土地理院", fetched, None, False))
    standin = meta.get("districts_standin", "false") in ("true", "True", "1")
    items.append(
        _item(
            "districts",
            "代替（仮）の地区割り（実際の地区社協の区域ではありません）"
            if standin
            else "地区社協の区域（取り込んだ地区の定義）",
            "karte" if standin else "社協",
            None,
            None,
            False,
        )
    )
    walk = params.salon_walk_m
    analysis = (
        f"サロン徒歩圏 {walk:.0f} m（直線 {walk / params.detour_factor:.0f} m）、"
        f"月{params.min_salon_per_month:g}回以上のサロン、"
        f"支援者まで {params.supporter_max_m:.0f} m 以内、"
        f"避難場所まで {params.site_walk_m:.0f} m 以内" + ("（積雪期）" if params.winter else "")
    )
    items.append(_item("analysis", analysis, "karte の分析", None, None, False))
    lines = [f"{item['label']}: {item['text']}" for item in items]
    for item, line in zip(items, lines, strict=True):
        item["line"] = line
    return {
        "fiscal_year": fiscal,
        "fiscal_year_label": _fy_label(fiscal),
        "items": items,
        "lines": lines,
    }


def census_line(sources: Mapping) -> str:
    """The one line that must be on every page and sheet: 「人口・世帯: 国勢調査 2015年（平成27年）…」."""
    for item in sources.get("items", []):
        if item["key"] == "census":
            return item["line"]
    return ""


def _item(key: str, text: str, source: str, as_of: str | None, year: int | None, synthetic: bool) -> dict:
    label = dict(SOURCE_LABELS)[key]
    return {
        "key": key,
        "label": label,
        "source": source,
        "as_of": as_of,
        "year": year,
        "synthetic": synthetic,
        "text": text,
    }


def _fy_label(year: int | None) -> str | None:
    return None if year is None else fiscal_label(year)


# --- the five-year projection of the elderly ----------------------------------------------------------

#: Annual survival assumed per band: 15-64 (as they reach 65), 65-74, 75+ (rounded from the 2020
#: complete life tables for both sexes: mortality is about 0.5 % a year at 60-64, about 1.5 % over
#: 65-74 and about 8 % over the whole 75+ band, whose mean age is above 80).
SURVIVAL = {"age_15_64": 0.995, "age_65_74": 0.985, "age_75_plus": 0.92}
#: Width of the closed bands in years: a uniform spread inside a band moves 1/width of it to the
#: next band each year.
BAND_YEARS = {"age_15_64": 50, "age_65_74": 10}


def project_elderly(bands: Mapping[str, float | None], *, base_year: int, years: Iterable[int]) -> list[dict]:
    """The elderly population (65-74, 75+, 65+) carried forward from census age bands, one row per
    year of ``years`` (each at or after ``base_year``). An estimate, not data.

    Method (a cohort-component projection reduced to survival, with the four census bands): each
    year, 1/50 of the 15-64 band (the 64-year-olds, assuming ages spread evenly inside the band)
    reaches 65, 1/10 of the 65-74 band reaches 75; each band survives the year at the rates of
    :data:`SURVIVAL`. Migration and the spread of ages inside a band are ignored (the band stays
    even: its own cohorts ageing through it are not tracked), so the estimate drifts the further
    it goes from the census; the pages show how many years it carries it.

    Returns ``[{"fiscal_year", "age_65_74", "age_75_plus", "elderly", "years_from_census"}]`` (people,
    rounded), or ``[]`` when a band is missing.
    """
    try:
        working = float(bands["age_15_64"])
        young_old = float(bands["age_65_74"])
        old_old = float(bands["age_75_plus"])
    except (KeyError, TypeError, ValueError):
        return []
    if any(pd.isna(v) for v in (working, young_old, old_old)):
        return []
    wanted = sorted({int(y) for y in years if int(y) >= base_year})
    out, year = [], base_year
    for target in wanted:
        while year < target:
            to_65 = working / BAND_YEARS["age_15_64"]
            to_75 = young_old / BAND_YEARS["age_65_74"]
            working = (working - to_65) * SURVIVAL["age_15_64"]
            old_old = (old_old + to_75) * SURVIVAL["age_75_plus"]
            young_old = (young_old - to_75 + to_65) * SURVIVAL["age_65_74"]
            year += 1
        out.append(
            {
                "fiscal_year": target,
                "age_65_74": round(young_old),
                "age_75_plus": round(old_old),
                "elderly": round(young_old) + round(old_old),
                "years_from_census": target - base_year,
            }
        )
    return out


# --- helpers -----------------------------------------------------------------------------------------


def figures_of(row: Mapping) -> dict:
    """The figures of a history row as a dict (every key of :data:`FIGURES`, None when missing)."""
    text = row.get("figures")
    data = json.loads(text) if isinstance(text, str) and text else {}
    return {f.key: data.get(f.key) for f in FIGURES}


def ratio(a, b) -> float | None:
    if a is None or b is None or _missing(a) or _missing(b) or not b:
        return None
    return round(float(a) / float(b), 4)


def is_rate(key: str) -> bool:
    figure = FIGURE_BY_KEY.get(key)
    return figure is not None and figure.unit == "%"


def _sum(values) -> int | None:
    values = list(values)
    if any(v is None for v in values):
        return None
    return int(sum(values))


def _int(v):
    if v is None or v == "" or _missing(v):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def _json_list(value) -> list:
    if isinstance(value, list):
        return value
    try:
        data = json.loads(value) if value else []
    except (TypeError, ValueError):
        return []
    return data if isinstance(data, list) else []


def _json_dict(value) -> dict:
    if isinstance(value, dict):
        return value
    try:
        data = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = [
    "CITY",
    "HISTORY_COLUMNS",
    "HistoryLayer",
    "census_line",
    "census_year_of",
    "city_figures",
    "current_fiscal_year",
    "figures_of",
    "history_rows",
    "karte_figures",
    "merge_history",
    "project_elderly",
    "sources_block",
    "with_analysis",
]
