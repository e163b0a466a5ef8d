"""The Japanese HTML pages: city overview and district page (server-rendered; the outreach pages
are in :mod:`api.routes.outreach`).

Thin: what a page shows comes from :mod:`karte.services.pages` (what this viewer may see, maps
drawn by :mod:`karte.render`); a route picks the template and handles the form. Leaflet is served
by the app itself (``/static/leaflet``); the basemap is the one configured (GSI 淡色地図 by
default, ``KARTE_BASEMAP=none`` for none).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api import nav
from api.deps import (
    MUNICIPALITY_COOKIE,
    MUNICIPALITY_PARAM,
    AccessDep,
    SettingsDep,
    StoreDep,
    csrf_token,
    municipality_in_view,
)
from api.errors import ApiError
from karte.domain.access import LEVEL_JA, PUBLIC, SUPPRESSED, Access, Level
from karte.domain.schema import Edition
from karte.render.webmap import Basemap
from karte.services import pages
from karte.snapshot import municipalities

router = APIRouter(include_in_schema=False)

CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
Code = Annotated[str, Path(pattern=CODE_PATTERN, max_length=32)]

#: The measures of the city page's choropleth (:data:`karte.services.pages.MEASURE_COLUMNS`).
Measure = StrEnum("Measure", {key: key for key in pages.MEASURE_COLUMNS})


@router.get("/", response_class=HTMLResponse, name="city_page")
def city_page(request: Request, store: StoreDep, access: AccessDep, settings: SettingsDep,
              measure: Measure = Measure.coverage):
    """The city overview: districts coloured by the chosen measure; a click opens a district."""
    page = pages.city_page(store, access, measure=measure.value, max_small=settings.suppress_max,
                           basemap=Basemap.from_settings(settings))
    return _render(request, "city.html", access, {"title": "地区カルテ 全体図", **page})


@router.get("/districts/{code}", response_class=HTMLResponse, name="district_page")
def district_page(request: Request, code: Code, store: StoreDep, access: AccessDep,
                  settings: SettingsDep):
    """One district: the map with its layers beside the karte tables, PDF and CSV links."""
    page = pages.district_page(store, code, access, max_small=settings.suppress_max,
                               basemap=Basemap.from_settings(settings))
    tables = ["base", "register_summary", "cooperator_summary", "services", "shelters"]
    if page["personal"]:
        tables += ["register", "cooperators"]
    m = municipality_in_view(request, access)
    script = {"v": page["map"].version, **({MUNICIPALITY_PARAM: m} if m else {})}
    return _render(request, "district.html", access, {
        "title": " ".join(filter(None, (page["place"], page["karte"]["district"]["name"]))) + " — 地区カルテ",
        "code": code, **page, "sections": page["once"](lambda: _district_sections(request, page)),
        "map_src": f"/maps/districts/{code}.js?{urlencode(script)}",
        "csv_tables": [(t, CSV_LABELS[t]) for t in tables],
        "district_links": nav.district_links(request.app, access, code),
        "editions": [(e.value, e.ja) for e in Edition if page["personal"] or not e.personal],
    })


@router.get("/maps/districts/{code}.js", name="district_map_script")
def district_map_script(code: Code, store: StoreDep, access: AccessDep, settings: SettingsDep, v: str = ""):
    """The district page's map (drawn once per build and audience), apart from the page so that
    the browser keeps it: asked for with the version the page names (``v``), it is kept for a
    year, as a new build's map has a new version; asked for with another, it is not kept."""
    parts, public = pages.district_map_script(store, code, access, max_small=settings.suppress_max,
                                              basemap=Basemap.from_settings(settings))
    keep = ("public" if public else "private") + ", max-age=31536000, immutable"
    return Response(parts.script, media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": keep if v == parts.version else "no-store"})


@router.get("/municipality", name="choose_municipality")
def choose_municipality(request: Request, m: Annotated[str, Query(pattern=r"^[0-9]{5}$")], next: str = "/"):
    """The header's municipality chooser (a store holding several): remember the choice (a
    cookie) and go back to ``next``, a page of this site, with ``?m=`` so the address says
    which municipality it shows."""
    names = municipalities(request.app.state.store)
    if m not in names:
        raise ApiError(404, f"市町村コード {m} はこのシステムにありません")
    path = next if next.startswith("/") and not next.startswith("//") else "/"
    path = path.split("?", 1)[0].split("#", 1)[0]
    response = RedirectResponse(f"{path}?{urlencode({MUNICIPALITY_PARAM: m})}", status_code=303)
    response.set_cookie(MUNICIPALITY_COOKIE, m, max_age=365 * 24 * 3600, samesite="lax",
                        httponly=True, secure=request.app.state.settings.https_only)
    return response


CSV_LABELS = {"base": "基礎情報", "register_summary": "要支援者の集計",
              "cooperator_summary": "共助協力者の集計", "services": "共助サービス", "shelters": "避難所",
              "register": "要支援者名簿（個人情報）", "cooperators": "共助協力者名簿（個人情報）"}


# The outreach pages and forms are in :mod:`api.routes.outreach`.


# --- shared ---------------------------------------------------------------------------------------

#: The district page's aggregate sections (district_sections.html) and the page data they are drawn from.
SECTIONS = ("intro", "basics", "gaps", "cooperators", "rest")
SECTION_DATA = ("karte", "place", "trend", "trend_charts", "projection")


def _district_sections(request: Request, page: dict) -> dict:
    """The district page's aggregate sections as HTML, drawn from the page's aggregates only (the
    template is not given the viewer's rows, so it cannot show them to the next viewer)."""
    env = request.app.state.templates.env
    env.filters.update(FILTERS)
    module = env.get_template("district_sections.html").make_module({k: page[k] for k in SECTION_DATA})
    return {name: getattr(module, name) for name in SECTIONS}


def _render(request: Request, template: str, access: Access, context: dict) -> HTMLResponse:
    logged_in = not (access.user == PUBLIC.user and access.level == Level.PUBLIC)
    base = {
        "user": access.user if logged_in else None,
        "level": access.level.value, "level_ja": LEVEL_JA[access.level],
        "district_scope": access.district, "logged_in": logged_in,
        "csrf": csrf_token(request) if logged_in or template.startswith("outreach") else None,
        "path": request.url.path, "suppressed": SUPPRESSED,
        "max_small": request.app.state.settings.suppress_max,
        "menu": nav.menu(request.app, access),
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


def _missing(v) -> bool:
    if v is None or v is pd.NA:
        return True
    try:
        return isinstance(v, float) and v != v
    except TypeError:
        return False
