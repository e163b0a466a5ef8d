"""The web pages and API of 地域福祉サポーター (issue 14).

Thin: what a route shows comes from the topic's service in :mod:`karte.services` (who may see
what, the match, the points); a route picks the template, reads the form (every form carries the
session's CSRF token, :func:`api.deps.check_csrf`) and sends the browser back to the page (303).

=========================================  ===============================================  ==========
route                                      what                                             who
=========================================  ===============================================  ==========
``GET /supporters``                        counts per district; own district's supporters    everyone
                                           and requests; the match, unmet, recruiting, forms
``GET /supporters/snow``                   snow clearing: snowfalls, winter match, reach,    planners
                                           not cleared after the last snowfall
``GET /supporters/{id}``                   one supporter: activities, points, statements     planners
``GET /supporters/{id}/statement.pdf``     the yearly points statement                       planners
``POST /supporters``, ``/supporters/{id}``  register / change a supporter                    planners
``POST /supporters/requests`` …            requests, dispatch, activity, points, snowfalls   planners
``GET /api/supporters/counts``             counts per district (JSON, suppressed)            everyone
``GET /api/supporters/match``              the match without names (JSON)                    planners
=========================================  ===============================================  ==========

Planners are coordinators and city staff; district members see their own district, read only.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api import nav
from api.deps import AccessDep, SettingsDep, StoreDep, check_csrf, csrf_token
from api.errors import ApiError
from api.routes.pages import FILTERS
from karte.domain.access import LEVEL_JA, PUBLIC, SUPPRESSED, Access, Level
from karte.domain.errors import InputError
from karte.domain.layers import join_list
from karte.render.supporters_map import map_payload
from karte.render.webmap import Basemap
from karte.services import supporters as service

router = APIRouter()

CODE = r"^[A-Za-z0-9_-]{1,32}$"
ID = r"^[A-Za-z0-9_-]{1,64}$"
TIME = r"^(|([01]?\d|2[0-4]):[0-5]\d)$"
DATE = r"^\d{4}-\d{2}-\d{2}$"
DistrictQuery = Annotated[str | None, Query(pattern=CODE, max_length=32)]
SupporterId = Annotated[str, Path(pattern=ID, max_length=64)]
Csrf = Annotated[str, Form(max_length=256)]
#: The messages after a form (``?done=``).
DONE_JA = {
    "supporter": "サポーターを保存しました。", "request": "依頼を受け付けました。",
    "dispatch": "派遣を記録しました。",
    "ended": "派遣を終了しました。", "activity": "活動を記録しました（ポイントを付与しました）。",
    "activity_not_done": "活動（実施せず）を記録しました。", "closed": "依頼を完了にしました。",
    "cancelled": "依頼を取下げにしました。", "redeemed": "ポイントの交換を記録しました。",
    "reversed": "訂正（取消）を記録しました。", "snowfall": "降雪を記録しました。",
}


# --- pages -----------------------------------------------------------------------------------------

@router.get("/supporters", response_class=HTMLResponse, name="supporters_page", include_in_schema=False)
def supporters_page(request: Request, store: StoreDep, access: AccessDep, settings: SettingsDep,
                    district: DistrictQuery = None,
                    done: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None):
    """Counts per district for everyone; the viewer's supporters and requests; for coordinators and
    city staff the match with its reasons, the unmet requests, where to recruit, and the forms."""
    page = service.supporters_page(store, access, district=district, max_small=settings.suppress_max)
    if "match" in page:
        view = page["match"]
        data = service.map_data(store, view, district=page["district"])
        page["map_data"] = map_payload(districts=data["districts"], basemap=Basemap.from_settings(settings),
                                  suggestions=data["suggestions"], unmet=data["unmet"],
                                  recruit=data["recruit"], reason_labels=service.REASON_JA)
    return _render(request, "supporters.html", access, {"title": "地域福祉サポーター — 地区カルテ", **page,
                                                         "done_ja": DONE_JA.get(done or "")})


@router.get("/districts/{code}/supporters", name="district_supporters_page", include_in_schema=False)
def district_supporters_page(code: Annotated[str, Path(pattern=CODE, max_length=32)]):
    """A district page's link to this district's supporters (``/supporters?district=…``)."""
    return RedirectResponse(f"/supporters?{urlencode({'district': code})}", status_code=303)


@router.get("/supporters/snow", response_class=HTMLResponse, name="supporters_snow_page",
            include_in_schema=False)
def supporters_snow_page(request: Request, store: StoreDep, access: AccessDep, settings: SettingsDep,
                         district: DistrictQuery = None,
                         done: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None):
    """The coordinators' snow page: snowfalls, open snow-clearing requests and the winter match,
    supporters who clear snow and their winter reach, requests not cleared after the last snowfall."""
    denied = _gate(request, access)
    if denied is not None:
        return denied
    page = service.snow_page(store, access, district=district)
    view = page["match"]
    data = service.map_data(store, view, district=district)
    page["map_data"] = map_payload(districts=data["districts"], basemap=Basemap.from_settings(settings),
                              suggestions=page["snow_suggestions"], unmet=page["snow_unmet"],
                              recruit=[r for r in view.recruit if r["activity"] == "snow"],
                              supporters=page["supporters"], reason_labels=service.REASON_JA,
                              reach_key="winter_reach_m")
    return _render(request, "supporters_snow.html", access, {
        "title": "雪かきの調整 — 地域福祉サポーター", **page, "district": district,
        "done_ja": DONE_JA.get(done or ""), "today": service.today_jst().isoformat()})


@router.get("/supporters/{supporter_id}", response_class=HTMLResponse, name="supporter_detail_page",
            include_in_schema=False)
def supporter_detail_page(request: Request, supporter_id: SupporterId, store: StoreDep, access: AccessDep,
                          done: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None):
    """One supporter: registration (and its edit form), dispatches, activities, points, statements."""
    denied = _gate(request, access)
    if denied is not None:
        return denied
    page = service.supporter_detail(store, access, supporter_id=supporter_id)
    return _render(request, "supporters_detail.html", access, {
        "title": f"{page['supporter'].get('name') or supporter_id} — 地域福祉サポーター", **page,
        "done_ja": DONE_JA.get(done or ""), "today": service.today_jst().isoformat()})


@router.get("/supporters/{supporter_id}/statement.pdf", name="supporters_statement",
            include_in_schema=False)
def supporters_statement(request: Request, supporter_id: SupporterId, store: StoreDep, access: AccessDep,
                         year: Annotated[int, Query(ge=2000, le=2100)]):
    """The yearly points statement of one supporter (PDF)."""
    if access.level not in service.PLANNERS:
        raise ApiError(401 if access.user == PUBLIC.user else 403,
                       "明細書はコーディネーターと市職員が発行します")
    pdf = service.statement_pdf(store, access, supporter_id=supporter_id, fiscal_year=year)
    name = f"points_{supporter_id}_{year}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"',
                             "Cache-Control": "private, no-store"})


# --- forms -----------------------------------------------------------------------------------------

@router.post("/supporters", name="supporters_create", include_in_schema=False)
async def supporters_create(request: Request, store: StoreDep, access: AccessDep):
    """Register a new supporter (status 申請中 unless chosen)."""
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    values, point = _supporter_form(form)
    row = service.save_supporter(store, access, values, point=point)
    return _back(f"/supporters/{quote(row['supporter_id'])}", "supporter")


@router.post("/supporters/requests", name="supporters_request_create", include_in_schema=False)
async def supporters_request_create(request: Request, store: StoreDep, access: AccessDep):
    """Record a help request (受付)."""
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    address = _text(form, "address")
    point = service.geocode(address) if address else None
    once = _text(form, "recurrence") == "once"
    values = {"requester_name": _text(form, "requester_name"), "phone": _text(form, "phone") or None,
              "address": address or None, "person_id": _text(form, "person_id") or None,
              "activity": _text(form, "activity"), "recurrence": _text(form, "recurrence"),
              "weekdays": join_list(form.getlist("weekdays")) if not once else "",
              "hours": service.hours_from_form(_text(form, "start"), _text(form, "end")),
              "starts_on": _date(form, "starts_on"), "ends_on": _date(form, "ends_on"),
              "notes": _text(form, "notes") or None}
    if once and values["starts_on"]:
        day = dt.date.fromisoformat(values["starts_on"])
        values["weekdays"] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[day.weekday()]
    service.save_request(store, access, values, point=point)
    return _back("/supporters", "request", district=_text(form, "district"))


@router.post("/supporters/requests/{request_id}/close", name="supporters_request_close",
             include_in_schema=False)
def supporters_request_close(request: Request, request_id: SupporterId, store: StoreDep, access: AccessDep,
                             csrf: Csrf, cancelled: Annotated[str, Form(pattern=r"^(0|1)$")] = "0",
                             note: Annotated[str, Form(max_length=500)] = "",
                             district: Annotated[str, Form(max_length=32)] = ""):
    """Close a request (完了) or withdraw it (取下げ)."""
    check_csrf(request, csrf)
    service.close_request(store, access, request_id=request_id, cancelled=cancelled == "1", note=note)
    return _back("/supporters", "cancelled" if cancelled == "1" else "closed", district=district)


@router.post("/supporters/dispatches", name="supporters_dispatch", include_in_schema=False)
def supporters_dispatch(request: Request, store: StoreDep, access: AccessDep, csrf: Csrf,
                        request_id: Annotated[str, Form(pattern=ID)],
                        supporter_id: Annotated[str, Form(pattern=ID)],
                        district: Annotated[str, Form(max_length=32)] = "",
                        back: Annotated[str, Form(pattern=r"^(|snow)$")] = ""):
    """Confirm a match (派遣)."""
    check_csrf(request, csrf)
    service.dispatch(store, access, request_id=request_id, supporter_id=supporter_id)
    return _back("/supporters/snow" if back == "snow" else "/supporters", "dispatch", district=district)


@router.post("/supporters/dispatches/{dispatch_id}/end", name="supporters_dispatch_end",
             include_in_schema=False)
def supporters_dispatch_end(request: Request, dispatch_id: SupporterId, store: StoreDep, access: AccessDep,
                            csrf: Csrf, reason: Annotated[str, Form(max_length=200)] = "",
                            district: Annotated[str, Form(max_length=32)] = ""):
    """End a dispatch; the request is open again."""
    check_csrf(request, csrf)
    service.end_dispatch(store, access, dispatch_id=dispatch_id, reason=reason)
    return _back("/supporters", "ended", district=district)


@router.post("/supporters/activities", name="supporters_activity", include_in_schema=False)
def supporters_activity(request: Request, store: StoreDep, access: AccessDep, csrf: Csrf,
                        dispatch_id: Annotated[str, Form(pattern=ID)],
                        done_on: Annotated[str, Form(pattern=DATE)],
                        done: Annotated[str, Form(pattern=r"^(0|1)$")] = "1",
                        hours: Annotated[str, Form(max_length=8)] = "",
                        visits: Annotated[str, Form(max_length=4)] = "",
                        note: Annotated[str, Form(max_length=500)] = "",
                        district: Annotated[str, Form(max_length=32)] = "",
                        back: Annotated[str, Form(pattern=r"^(|snow)$")] = ""):
    """Record a supporter's activity for a dispatch (points follow when it was done)."""
    check_csrf(request, csrf)
    service.record_activity(store, access, dispatch_id=dispatch_id, done_on=_day(done_on), done=done == "1",
                            hours=_number(hours, float, "時間"), visits=_number(visits, int, "回数"),
                            note=note)
    return _back("/supporters/snow" if back == "snow" else "/supporters",
                 "activity" if done == "1" else "activity_not_done", district=district)


@router.post("/supporters/snowfalls", name="supporters_snowfall", include_in_schema=False)
def supporters_snowfall(request: Request, store: StoreDep, access: AccessDep, csrf: Csrf,
                        fell_on: Annotated[str, Form(pattern=DATE)],
                        depth_cm: Annotated[str, Form(max_length=8)] = "",
                        note: Annotated[str, Form(max_length=500)] = ""):
    """Record a snowfall."""
    check_csrf(request, csrf)
    service.record_snowfall(store, access, fell_on=_day(fell_on), depth_cm=_number(depth_cm, float, "積雪"),
                            note=note)
    return _back("/supporters/snow", "snowfall")


@router.post("/supporters/points/{entry_id}/reverse", name="supporters_reverse", include_in_schema=False)
def supporters_reverse(request: Request, entry_id: SupporterId, store: StoreDep, access: AccessDep,
                       csrf: Csrf, supporter_id: Annotated[str, Form(pattern=ID)],
                       note: Annotated[str, Form(min_length=1, max_length=500)]):
    """Correct a ledger entry by its reversing entry."""
    check_csrf(request, csrf)
    service.reverse_entry(store, access, entry_id=entry_id, note=note)
    return _back(f"/supporters/{quote(supporter_id)}", "reversed")


@router.post("/supporters/{supporter_id}/redeem", name="supporters_redeem", include_in_schema=False)
def supporters_redeem(request: Request, supporter_id: SupporterId, store: StoreDep, access: AccessDep,
                      csrf: Csrf, points: Annotated[int, Form(ge=1, le=1_000_000)],
                      note: Annotated[str, Form(max_length=500)] = ""):
    """Exchange points (交換)."""
    check_csrf(request, csrf)
    service.redeem_points(store, access, supporter_id=supporter_id, points=points, note=note)
    return _back(f"/supporters/{quote(supporter_id)}", "redeemed")


@router.post("/supporters/{supporter_id}", name="supporters_update", include_in_schema=False)
async def supporters_update(request: Request, supporter_id: SupporterId, store: StoreDep, access: AccessDep):
    """Change a supporter's registration (optimistic: the form carries the version it showed)."""
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    values, point = _supporter_form(form)
    version = _number(_text(form, "version"), int, "版")
    service.save_supporter(store, access, values, point=point, supporter_id=supporter_id, version=version)
    return _back(f"/supporters/{quote(supporter_id)}", "supporter")


# --- JSON ------------------------------------------------------------------------------------------

@router.get("/api/supporters/counts", name="supporters_counts_api", tags=["地域福祉サポーター"])
def supporters_counts_api(store: StoreDep, access: AccessDep, settings: SettingsDep):
    """Supporters (by menu kind) and requests met / unmet per district in this fiscal year; counts
    from 1 to ``KARTE_SUPPRESS_MAX`` are 秘匿 for the public."""
    return JSONResponse(service.public_counts(store, access, max_small=settings.suppress_max))


@router.get("/api/supporters/match", name="supporters_match_api", tags=["地域福祉サポーター"])
def supporters_match_api(store: StoreDep, access: AccessDep, district: DistrictQuery = None,
                         winter: Annotated[bool | None, Query()] = None):
    """The match of the open requests of a district (or the city), without names or addresses:
    suggestions with their reasons, unmet requests with why, where to recruit (planners only)."""
    if access.level not in service.PLANNERS:
        raise ApiError(401 if access.user == PUBLIC.user else 403, "コーディネーターと市職員だけが使えます")
    view = service.match_requests(store, access, district=district, winter=winter)
    return JSONResponse(view.as_json())


# --- helpers ---------------------------------------------------------------------------------------

def _gate(request: Request, access: Access):
    """Anonymous: to the login page; logged in without the level: 403."""
    if access.level in service.PLANNERS:
        return None
    if access.user == PUBLIC.user and access.level == Level.PUBLIC:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    raise ApiError(403, "この画面はコーディネーターと市職員だけが使えます")


def _back(path: str, done: str, *, district: str = "") -> RedirectResponse:
    query = {"done": done}
    if district and len(district) <= 32 and district.replace("-", "").replace("_", "").isalnum():
        query["district"] = district
    return RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)


def _text(form, name: str, limit: int = 500) -> str:
    value = form.get(name)
    text = str(value).strip() if value is not None else ""
    if len(text) > limit:
        raise InputError(f"{name} が長すぎます（{limit} 文字まで）")
    return text


def _date(form, name: str) -> str | None:
    text = _text(form, name, 10)
    return _day(text).isoformat() if text else None


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError("日付が正しくありません（例 2026-12-05）") from None


def _number(text: str, kind, label: str):
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"{label}は数で入力してください") from None


def _supporter_form(form) -> tuple[dict, object]:
    """The supporter form's fields as stored codes, and the home point (geocoded address)."""
    address = _text(form, "address")
    point = service.geocode(address) if address else None
    values = {
        "name": _text(form, "name"), "kana": _text(form, "kana") or None,
        "phone": _text(form, "phone") or None,
        "address": address or None, "cooperator_id": _text(form, "cooperator_id") or None,
        "activities": join_list(form.getlist("activities")), "weekdays": join_list(form.getlist("weekdays")),
        "hours": service.hours_from_form(_text(form, "start"), _text(form, "end"), _text(form, "start2"),
                                         _text(form, "end2")),
        "season": _text(form, "season") or "all",
        "reach_m": _number(_text(form, "reach_m"), float, "活動範囲"),
        "capacity": _number(_text(form, "capacity"), int, "受け持ち"),
        "status": _text(form, "status") or None,
        "registered_on": _date(form, "registered_on"), "training": _text(form, "training") or None,
        "notes": _text(form, "notes") or None,
    }
    if values["status"] == "registered" and not values["registered_on"]:
        values["registered_on"] = service.today_jst().isoformat()
    return {k: v for k, v in values.items() if v is not None or k in ("kana", "phone", "notes")}, point


def _render(request: Request, template: str, access: Access, context: dict) -> HTMLResponse:
    logged_in = not (access.user == PUBLIC.user and access.level == Level.PUBLIC)
    base = {
        "user": access.user if logged_in else None, "level": access.level.value,
        "level_ja": LEVEL_JA[access.level], "district_scope": access.district, "logged_in": logged_in,
        "csrf": csrf_token(request) if logged_in else None, "path": request.url.path,
        "suppressed": SUPPRESSED,
        "max_small": request.app.state.settings.suppress_max, "menu": nav.menu(request.app, access),
    }
    templates = request.app.state.templates
    templates.env.filters.update(FILTERS)
    response = templates.TemplateResponse(request, template, {**base, **context})
    if logged_in:
        response.headers["Cache-Control"] = "private, no-store"
    return response
