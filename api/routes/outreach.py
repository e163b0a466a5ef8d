"""The outreach pages (アウトリーチ計画; coordinators and city staff): the ranking with its
suggestions and decisions (``/outreach``), one ranked place with the people there and its visits
(``/outreach/places/{key_code}``), and the two forms (a decision on a suggestion, a visit).

Thin: what a page shows comes from :mod:`karte.services.outreach`; a route checks the gate and
the CSRF token, picks the template and handles the form. Anonymous visitors go to the login page;
other levels get 403. A visit form with problems comes back with every problem listed and what was
typed kept (status 400).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from api.deps import AccessDep, SettingsDep, StoreDep, check_csrf
from api.errors import ApiError
from api.routes.pages import CODE_PATTERN, _render, _valid_code
from karte.domain.access import PUBLIC, Access, Level
from karte.render.webmap import Basemap
from karte.services import care, outreach

router = APIRouter(include_in_schema=False)

#: A small area's code (町丁・字: the census key code).
KEY_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
KeyCode = Annotated[str, Path(pattern=KEY_PATTERN, max_length=32)]
#: How many bytes a posted visit form may have.
MAX_FORM = 16_000


@router.get("/outreach", response_class=HTMLResponse, name="outreach_page")
def outreach_page(request: Request, store: StoreDep, access: AccessDep, settings: SettingsDep,
                  district: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=32)] = None,
                  by: Annotated[str, Query(pattern=r"^(rate|count)$")] = "rate",
                  done: Annotated[str | None, Query(pattern=r"^(confirmed|rejected)$")] = None):
    """Outreach planning (coordinators and city staff): ranking (by rate or count) on a map and
    as a list, supporter suggestions to confirm or reject, or why there are none."""
    denied = _gate(request, access)
    if denied is not None:
        return denied
    page = outreach.outreach_page(store, access, district=district, by=by,
                                  basemap=Basemap.from_settings(settings))
    return _render(request, "outreach.html", access,
                   {"title": "アウトリーチ計画 — 地区カルテ", **page, "done": done})


@router.post("/outreach/decisions", name="outreach_decide")
def outreach_decide(request: Request, store: StoreDep, access: AccessDep,
                    person_id: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
                    cooperator_id: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
                    decision: Annotated[str, Form(pattern=r"^(confirmed|rejected)$")],
                    csrf: Annotated[str, Form(max_length=256)],
                    district: Annotated[str, Form(max_length=32)] = ""):
    """Record a coordinator's decision on one suggestion (CSRF-checked); back to the page."""
    check_csrf(request, csrf)
    denied = _gate(request, access)
    if denied is not None:
        return denied
    outreach.record_decision(store, access, person_id=person_id, cooperator_id=cooperator_id,
                             decision=decision)
    target = f"/outreach?done={decision}"
    if district and _valid_code(district):
        target += f"&district={quote(district)}"
    return RedirectResponse(target, status_code=303)


@router.get("/outreach/places/{key_code}", response_class=HTMLResponse, name="outreach_place")
def outreach_place(request: Request, key_code: KeyCode, store: StoreDep, access: AccessDep,
                   settings: SettingsDep, done: Annotated[str | None, Query(pattern=r"^visit$")] = None):
    """One ranked place: its figures, the people there the viewer may see, a map, its visits and
    the form to record one."""
    denied = _gate(request, access)
    if denied is not None:
        return denied
    return _place(request, store, access, settings, key_code, done=done)


@router.post("/outreach/places/{key_code}/visits", name="outreach_visit")
async def outreach_visit(request: Request, key_code: KeyCode, store: StoreDep, access: AccessDep,
                         settings: SettingsDep):
    """Record a visit to the place (date, result, next step; CSRF-checked); back to the place."""
    length = int(request.headers.get("content-length") or 0)
    if length > MAX_FORM:
        raise ApiError(413, "送信された内容が大きすぎます")
    data = await request.form(max_fields=20)
    check_csrf(request, str(data.get("csrf") or ""))
    denied = _gate(request, access)
    if denied is not None:
        return denied
    form = {key: [str(v) for v in data.getlist(key)] for key in data if key != "csrf"}
    try:
        await run_in_threadpool(outreach.record_visit, store, access, key_code, form)
    except care.FormError as exc:
        return await run_in_threadpool(_place, request, store, access, settings, key_code,
                                       form=form, errors=exc.problems)
    return RedirectResponse(f"/outreach/places/{quote(key_code)}?done=visit", status_code=303)


def _place(request: Request, store, access: Access, settings, key_code: str, *, done: str | None = None,
           form: dict | None = None, errors: list[str] | None = None) -> HTMLResponse:
    page = outreach.place_page(store, access, key_code, basemap=Basemap.from_settings(settings))
    values = {k: v[-1] for k, v in (form or {}).items() if v}
    response = _render(request, "outreach_place.html", access, {
        "title": f"{page['place']['name']} — アウトリーチ計画", **page, "done": done,
        "form": values, "errors": errors or []})
    response.status_code = 400 if errors else 200
    return response


def _gate(request: Request, access: Access):
    """Anonymous: to the login page; logged in without the level: 403."""
    if access.level in outreach.OUTREACH_LEVELS:
        return None
    if access.user == PUBLIC.user and access.level == Level.PUBLIC:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    raise ApiError(403, "アウトリーチの画面はコーディネーターと市職員だけが使えます")
