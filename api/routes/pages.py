"""The Japanese HTML pages: city overview, district page, outreach page (server-rendered).

Thin: every number and row comes from :mod:`karte.views` (what this user may see) or, for the
outreach page, from :mod:`karte.outreach` (which reads through :mod:`karte.views`); the maps are
drawn by :mod:`karte.render`. Leaflet is served by the app itself (``/static/leaflet``); the
basemap is the one configured (GSI 淡色地図 by default, ``KARTE_BASEMAP=none`` for none).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import quote

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import AccessDep, SettingsDep, StoreDep, check_csrf, csrf_token
from api.errors import ApiError
from karte import outreach, views
from karte.domain.access import LEVEL_JA, PUBLIC, SUPPRESSED, Access, Level
from karte.render.webmap import Basemap, map_parts

router = APIRouter(include_in_schema=False)

ASSETS = "/static/leaflet"
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
Code = Annotated[str, Path(pattern=CODE_PATTERN, max_length=32)]


class Measure(StrEnum):
    """The measures of the city page's choropleth."""

    coverage = "coverage"
    gap_rate = "gap_rate"
    ageing = "ageing"


#: measure -> (column of the districts layer, count column that hides it, "1 - value"?)
_MEASURE_COLUMNS = {
    Measure.coverage: ("uncovered_share", "uncovered_elderly", True),
    Measure.gap_rate: ("gap_rate", "at_risk", False),
    Measure.ageing: ("elderly_rate", "elderly", False),
}


# --- city -----------------------------------------------------------------------------------------

@router.get("/", response_class=HTMLResponse, name="city_page")
def city_page(request: Request, store: StoreDep, access: AccessDep, settings: SettingsDep,
              measure: Measure = Measure.coverage):
    """The city overview: districts coloured by the chosen measure; a click opens a district."""
    from karte.render.overview import MEASURES, choropleth_map, standin_note

    spec = MEASURES[measure.value]
    basemap = Basemap.from_settings(settings)

    def build():
        """The map and table: aggregates only, the same for every user of this level."""
        frame = _with_measure(views.layer_view(store, "districts", access, max_small=settings.suppress_max),
                              measure)
        services = views.layer_view(store, "services", access, max_small=settings.suppress_max)
        shelters = views.layer_view(store, "shelters", access, max_small=settings.suppress_max)
        m = choropleth_map(
            frame, value="value", title=spec.label, palette=spec.palette,
            tooltip=[("district_name", "地区"), ("value_text", spec.label),
                     ("population_text", "人口")],
            notes=[spec.note, *standin_note(frame)], link="/districts/{code}",
            salons=services[services["kind"] == "salon"], shelters=shelters,
            asset_base=ASSETS, basemap=basemap, prefer_canvas=False,
        )
        rows = frame.drop(columns=frame.geometry.name).sort_values("district_code").to_dict("records")
        return map_parts(m), rows

    parts, rows = views.cached(
        store, ("page:city", access.level.value, measure.value, settings.suppress_max, basemap), build)
    return _render(request, "city.html", access, {
        "title": "地区カルテ 全体図", "map": parts, "measure": measure.value,
        "measures": [(k, v.label) for k, v in MEASURES.items()], "spec": spec, "rows": rows,
    })


def _with_measure(frame: gpd.GeoDataFrame, measure: Measure) -> gpd.GeoDataFrame:
    column, count, inverse = _MEASURE_COLUMNS[measure]
    out = frame.copy()
    values, texts = [], []
    for rate, n in zip(out[column], out[count], strict=True):
        if _missing(rate) or isinstance(rate, str):
            values.append(None)
            texts.append(SUPPRESSED if n == SUPPRESSED or rate == SUPPRESSED else "—")
            continue
        v = 1.0 - float(rate) if inverse else float(rate)
        values.append(v)
        texts.append(f"{v:.1%}")
    out["value"] = pd.Series(values, index=out.index, dtype=float)
    out["value_text"] = texts
    out["population_text"] = [_people(p) for p in out["population"]]
    return out


# --- district -------------------------------------------------------------------------------------

@router.get("/districts/{code}", response_class=HTMLResponse, name="district_page")
def district_page(request: Request, code: Code, store: StoreDep, access: AccessDep,
                  settings: SettingsDep):
    """One district: the map with its layers beside the karte tables, PDF and CSV links."""
    from karte.render.district_map import GAP_LABEL, district_map, primary_gap

    n = settings.suppress_max
    basemap = Basemap.from_settings(settings)
    karte = views.karte_view(store, code, access, include_personal=False, max_small=n)
    personal = access.may_see_district_rows(code)
    cooperators = register = None
    if personal:  # read for each request: the store's rules and access log apply
        cooperators = views.layer_view(store, "cooperators", access, district=code, max_small=n)
        register = views.layer_view(store, "register", access, district=code, max_small=n)

    def build():
        district = views.layer_view(store, "districts", access, district=code, max_small=n)
        catchments = views.layer_view(store, "catchments", access, max_small=n)
        if len(district):
            catchments = catchments[catchments.intersects(district.union_all())]
        return map_parts(district_map(
            district=district, catchments=catchments,
            coverage=views.layer_view(store, "coverage", access, district=code, max_small=n),
            services=views.layer_view(store, "services", access, district=code, max_small=n),
            shelters=views.layer_view(store, "shelters", access, district=code, max_small=n),
            cooperators=cooperators, register=register, asset_base=ASSETS, basemap=basemap))

    if access.level == Level.PUBLIC:
        # the public map holds aggregates only and is the same for everyone: drawn once per build
        parts = views.cached(store, ("page:district", code, n, basemap), build)
    else:
        parts = build()
    people = []
    if register is not None:
        for r in register.sort_values(["kana", "person_id"]).itertuples():
            row = pd.Series(r._asdict())
            people.append({"name": r.name, "address": _short(r.address),
                           "gap": GAP_LABEL[primary_gap(row)], "gap_key": primary_gap(row),
                           "gaps": [GAP_LABEL[k] for k in GAP_LABEL if k != "none" and _flag(row.get(k))]})
    roster = []
    if cooperators is not None:
        from karte.domain.schema import ROLE_JA, Role

        for c in cooperators.sort_values(["role", "cooperator_id"]).itertuples():
            roster.append({"role": ROLE_JA.get(Role(c.role), c.role) if c.role in Role._value2member_map_
                           else c.role, "name": c.name, "phone": c.phone,
                           "assigned": getattr(c, "assigned", None), "capacity": c.capacity})
    tables = ["base", "register_summary", "cooperator_summary", "services", "shelters"]
    if personal:
        tables += ["register", "cooperators"]
    return _render(request, "district.html", access, {
        "title": f"{karte['district']['name']} — 地区カルテ", "karte": karte, "map": parts,
        "code": code, "personal": personal, "people": people, "roster": roster,
        "csv_tables": [(t, CSV_LABELS[t]) for t in tables],
        "editions": [("public", "公開版")] + ([("confidential", "取扱注意"), ("drill", "訓練用")]
                                             if personal else []),
    })


CSV_LABELS = {"base": "基礎情報", "register_summary": "要支援者の集計",
              "cooperator_summary": "共助協力者の集計", "services": "共助サービス", "shelters": "避難所",
              "register": "要支援者名簿（個人情報）", "cooperators": "共助協力者名簿（個人情報）"}


# --- outreach -------------------------------------------------------------------------------------

#: How many ranked small areas the list shows; how many the citywide map draws (a district's
#: map draws all of its areas); how many suggestions the citywide list shows (a district: all).
RANKED_ROWS = 30
MAP_AREAS = 150
SUGGESTION_ROWS = 40


@router.get("/outreach", response_class=HTMLResponse, name="outreach_page")
def outreach_page(request: Request, store: StoreDep, access: AccessDep, settings: SettingsDep,
                  district: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=32)] = None,
                  done: Annotated[str | None, Query(pattern=r"^(confirmed|rejected)$")] = None):
    """Outreach planning (coordinators and city staff): ranking on a map and as a list, supporter
    suggestions to confirm or reject."""
    from karte.render.outreach_map import outreach_map

    denied = _outreach_gate(request, access)
    if denied is not None:
        return denied
    codes = views.district_codes(store)
    if district is not None and district not in codes:
        raise ApiError(404, f"地区 {district} はありません")
    ranking = outreach.outreach_ranking(store, access)
    shown = ranking if district is None else ranking[ranking["district_code"] == district]
    found = outreach.suggestions(store, access, district=district)
    listed = found if district is not None else found.head(SUGGESTION_ROWS)
    drawn = shown if district is not None else shown[shown["rank"] <= MAP_AREAS]
    m = outreach_map(drawn, listed, asset_base=ASSETS, basemap=Basemap.from_settings(settings))
    names = dict(zip(ranking["district_code"], ranking["district_name"], strict=False))
    made = outreach.decisions(store, access)
    if district is not None:
        made = made[made["district_code"] == district]
    return _render(request, "outreach.html", access, {
        "title": "アウトリーチ計画 — 地区カルテ", "map": map_parts(m),
        "ranking": shown.drop(columns=shown.geometry.name).head(RANKED_ROWS).to_dict("records"),
        "ranked_total": int((shown["score"] > 0).sum()),
        "suggestions": listed.drop(columns=["person_geometry", "cooperator_geometry"]).to_dict("records"),
        "suggestions_total": len(found), "map_areas": len(drawn),
        "decisions": made.head(50).to_dict("records"), "decision_ja": outreach.DECISION_JA,
        "district": district, "districts": [(c, names.get(c, c)) for c in codes], "done": done,
    })


@router.post("/outreach/decisions", name="outreach_decide")
def outreach_decide(request: Request, store: StoreDep, access: AccessDep,
                    person_id: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
                    cooperator_id: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
                    decision: Annotated[str, Form(pattern=r"^(confirmed|rejected)$")],
                    csrf: Annotated[str, Form(max_length=256)],
                    district: Annotated[str, Form(max_length=32)] = ""):
    """Record a coordinator's decision on one suggestion (CSRF-checked); back to the page."""
    check_csrf(request, csrf)
    denied = _outreach_gate(request, access)
    if denied is not None:
        return denied
    outreach.record_decision(store, access, person_id=person_id, cooperator_id=cooperator_id,
                             decision=decision)
    target = f"/outreach?done={decision}"
    if district and _valid_code(district):
        target += f"&district={quote(district)}"
    return RedirectResponse(target, status_code=303)


def _outreach_gate(request: Request, access: Access):
    """Anonymous: to the login page; logged in without the level: 403."""
    if access.level in outreach.OUTREACH_LEVELS:
        return None
    if access.user == PUBLIC.user and access.level == Level.PUBLIC:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    raise ApiError(403, "アウトリーチの画面はコーディネーターと市職員だけが使えます")


# --- shared ---------------------------------------------------------------------------------------

def _render(request: Request, template: str, access: Access, context: dict) -> HTMLResponse:
    logged_in = not (access.user == PUBLIC.user and access.level == Level.PUBLIC)
    base = {
        "user": access.user if logged_in else None,
        "level": access.level.value, "level_ja": LEVEL_JA[access.level],
        "district_scope": access.district, "logged_in": logged_in,
        "outreach": access.level in outreach.OUTREACH_LEVELS,
        "csrf": csrf_token(request) if logged_in or template == "outreach.html" else None,
        "path": request.url.path, "suppressed": SUPPRESSED,
    }
    templates = request.app.state.templates
    templates.env.filters.update(FILTERS)
    response = templates.TemplateResponse(request, template, {**base, **context})
    if logged_in:
        response.headers["Cache-Control"] = "private, no-store"
    return response


def _count(v, unit: str = "人") -> str:
    """A count as shown: ``1,234人``, ``秘匿`` (suppressed for this viewer), ``—`` (none)."""
    if _missing(v):
        return "—"
    if isinstance(v, str):
        return v
    return f"{int(v):,}{unit}"


def _pct(v, digits: int = 1) -> str:
    if _missing(v):
        return "—"
    if isinstance(v, str):
        return v
    return f"{float(v) * 100:.{digits}f}%"


def _num(v) -> str:
    if _missing(v):
        return "—"
    return v if isinstance(v, str) else f"{v:,}"


FILTERS = {"count": _count, "pct": _pct, "num": _num}


def _valid_code(text: str) -> bool:
    import re

    return re.fullmatch(CODE_PATTERN, text) is not None


def _short(address) -> str:
    return "" if _missing(address) else str(address).removeprefix("青森県青森市")


def _people(v) -> str:
    if _missing(v):
        return "—"
    return v if isinstance(v, str) else f"{int(v):,}人"


def _flag(v) -> bool:
    return not _missing(v) and bool(v)


def _missing(v) -> bool:
    if v is None or v is pd.NA:
        return True
    try:
        return isinstance(v, float) and v != v
    except TypeError:
        return False
