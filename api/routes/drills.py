"""The web pages and API of 個別避難計画・訓練・災害時 (issue 19).

Thin: what a route shows comes from :mod:`karte.services.drills` and :mod:`karte.services.disaster`.

Pages (Japanese, usable on a phone): ``/drills`` (the drills, starting one, disaster mode, the
public counts), ``/districts/{code}/drills`` (the district's plans: status, who first, reviews
due; its drills), ``/districts/{code}/evacuation-plan?person=`` (one person's plan),
``/districts/{code}/drills/mark?drill=`` (marking on a phone, offline-tolerant:
``drill-mark.js``), ``/districts/{code}/drills/dashboard?drill=`` (the live dashboard:
``drill-dashboard.js``). Files: the plans as PDF, the drill report as PDF and CSV. JSON: the
dashboard's status, the marks a phone sends (each mark once: the device's id).

Every route takes the viewer's access through :func:`disaster_access`: the districts in disaster
mode join the viewer's :class:`~karte.domain.access.Access` (reads logged with the mode) and
``request.state.karte_disaster`` carries the page banner for ``base.html``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from api.deps import AccessDep, SettingsDep, StoreDep, check_csrf
from api.errors import ApiError
from api.routes.pages import _render
from karte.domain.access import PUBLIC, Access, Level
from karte.domain.errors import ConflictError, InputError
from karte.render.drill_report import report_pdf
from karte.render.plan_pdf import plans_pdf
from karte.render.webmap import Basemap
from karte.services import disaster, drills

router = APIRouter(include_in_schema=False)

CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Code = Annotated[str, Path(pattern=CODE_PATTERN, max_length=32)]
DrillId = Annotated[str, Query(pattern=ID_PATTERN, max_length=64, description="訓練ID（例: DR000001）")]
PersonId = Annotated[str, Query(pattern=ID_PATTERN, max_length=64, description="要支援者ID")]
FormText = Annotated[str, Form(max_length=2000)]
Csrf = Annotated[str, Form(max_length=256)]


def disaster_access(request: Request, access: AccessDep, store: StoreDep) -> Access:
    """The viewer's access with the districts in disaster mode (:func:`karte.services.disaster.
    effective_access`), and the page banner in ``request.state.karte_disaster`` (None outside
    disaster mode). ``api.deps.current_access`` can do the same for every page."""
    access = disaster.effective_access(store, access)
    request.state.karte_disaster = disaster.banner(store, access)
    return access


DAccess = Annotated[Access, Depends(disaster_access)]


# -- pages ------------------------------------------------------------------------------------------

@router.get("/drills", response_class=HTMLResponse, name="drills_page")
def drills_page(request: Request, store: StoreDep, access: DAccess, settings: SettingsDep,
                done: Annotated[str | None, Query(max_length=64)] = None):
    """訓練・災害時: the drills of the viewer, starting one, disaster mode (city staff), and the
    public counts (everyone)."""
    page = drills.drills_page(store, access, max_small=settings.suppress_max)
    return _page(request, "drills.html", access, {"title": "訓練・災害時 — 地区カルテ", **page,
                                                  "done": _DONE.get(done or "", "")})


@router.get("/districts/{code}/drills", response_class=HTMLResponse, name="district_drills_page")
def district_drills_page(request: Request, code: Code, store: StoreDep, access: DAccess):
    """個別避難計画・訓練（地区）: the district's plans and drills."""
    gate = _gate(request, access, code)
    if gate is not None:
        return gate
    page = drills.district_plans(store, access, code)
    return _page(request, "drill_district.html", access, {
        "title": f"{page['district_name']} 個別避難計画・訓練 — 地区カルテ", **page,
        "drills": drills.drills_for(store, access, district=code),
        "can_start": access.level in drills.LEADERS})


@router.get("/districts/{code}/evacuation-plan", response_class=HTMLResponse, name="evacplan_page")
def evacplan_page(request: Request, code: Code, person: PersonId, store: StoreDep, access: DAccess,
                  settings: SettingsDep, saved: Annotated[bool, Query()] = False):
    """One person's plan: the form (who may write it) and the way to the shelter."""
    gate = _gate(request, access, code, back=f"/districts/{quote(code)}/drills")
    if gate is not None:
        return gate
    page = drills.plan_page(store, access, code, person, network=_network(settings))
    title = f"個別避難計画 {page['person']['name']} — 地区カルテ"
    return _page(request, "evacplan.html", access, {"title": title, **page, "saved": saved, "errors": []})


@router.post("/districts/{code}/evacuation-plan", name="evacplan_save")
async def evacplan_save(request: Request, code: Code, person: PersonId, store: StoreDep, access: DAccess,
                        settings: SettingsDep):
    """Save the plan form (CSRF-checked); back to the form, or the form with the problems."""
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    _personal_or_403(access)
    values = {k: str(form.get(k) or "")[:2000] for k in drills.PLAN_ITEMS_JA if k != "supporter_ids"}
    values["supporter_ids"] = [str(v)[:64] for v in form.getlist("supporter_ids")][:20]
    raw_version = str(form.get("version") or "")
    version = int(raw_version) if raw_version.isdigit() else None
    try:
        drills.save_plan(store, access, code, person, values, version=version)
    except (InputError, ConflictError) as exc:
        page = drills.plan_page(store, access, code, person, network=_network(settings))
        page["values"] = {**page["values"], **{k: v for k, v in values.items() if k != "supporter_ids"},
                          "supporter_ids": ";".join(values["supporter_ids"])}
        response = _page(request, "evacplan.html", access, {
            "title": "個別避難計画 — 地区カルテ", **page, "saved": False,
            "errors": [str(exc)], "conflict": isinstance(exc, ConflictError)})
        response.status_code = 409 if isinstance(exc, ConflictError) else 400
        return response
    return RedirectResponse(f"/districts/{quote(code)}/evacuation-plan?person={quote(person)}&saved=true",
                            status_code=303)


@router.get("/districts/{code}/evacuation-plans.pdf", name="evacplan_pdf", response_class=Response)
def evacplan_pdf(request: Request, code: Code, store: StoreDep, access: DAccess, settings: SettingsDep,
                 person: Annotated[str | None, Query(pattern=ID_PATTERN, max_length=64)] = None):
    """The plans as A4 PDF: one person's (``person``) or every plan of the district."""
    _personal_or_raise(access)
    prints = drills.plan_prints(store, access, code, person_id=person, network=_network(settings))
    data, _ = plans_pdf(prints, title=f"個別避難計画 {code}")
    name = f"{code}-plan-{person}.pdf" if person else f"{code}-plans.pdf"
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "private, no-store"})


@router.get("/districts/{code}/drills/mark", response_class=HTMLResponse, name="drill_mark_page")
def drill_mark_page(request: Request, code: Code, drill: DrillId, store: StoreDep, access: DAccess):
    """Marking on a phone: each person's status with one tap; works on when the network drops."""
    gate = _gate(request, access, code)
    if gate is not None:
        return gate
    page = drills.mark_page(store, access, drill, code)
    title = f"安否の記録 {page['drill']['name']} — 地区カルテ"
    return _page(request, "drill_mark.html", access, {"title": title, **page})


@router.get("/districts/{code}/drills/dashboard", response_class=HTMLResponse, name="drill_dashboard_page")
def drill_dashboard_page(request: Request, code: Code, drill: DrillId, store: StoreDep, access: DAccess,
                         settings: SettingsDep):
    """The live dashboard of one district of a drill."""
    gate = _gate(request, access, code)
    if gate is not None:
        return gate
    page = drills.dashboard_page(store, access, drill, code)
    basemap = Basemap.from_settings(settings)
    return _page(request, "drill_dashboard.html", access, {
        "title": f"訓練の状況 {page['drill']['name']}（{code}） — 地区カルテ", **page,
        "tiles": {"url": basemap.url, "attribution": basemap.attribution} if basemap.url else None})


# -- forms ------------------------------------------------------------------------------------------

@router.post("/drills/start", name="drill_start")
def drill_start(request: Request, store: StoreDep, access: DAccess, csrf: Csrf,
                name: Annotated[str, Form(max_length=100)], kind: Annotated[str, Form(max_length=32)],
                districts: Annotated[list[str], Form(max_length=64)],
                start: Annotated[str, Form(max_length=32)] = ""):
    """Start a drill (city staff, coordinators): now, or at ``start`` (JST)."""
    check_csrf(request, csrf)
    _personal_or_403(access)
    row = drills.start_drill(store, access, districts[:100], name=name, kind=kind,
                             started_at=drills.local_time(start))
    return RedirectResponse(f"/drills?done=started#{quote(row['drill_id'])}", status_code=303)


@router.post("/drills/end", name="drill_end")
def drill_end(request: Request, store: StoreDep, access: DAccess, csrf: Csrf,
              drill: Annotated[str, Form(pattern=ID_PATTERN, max_length=64)]):
    """End a drill (city staff, coordinators)."""
    check_csrf(request, csrf)
    _personal_or_403(access)
    drills.end_drill(store, access, drill)
    return RedirectResponse("/drills?done=ended", status_code=303)


@router.post("/districts/{code}/drills/lessons", name="drill_lesson")
def drill_lesson(request: Request, code: Code, store: StoreDep, access: DAccess, csrf: Csrf,
                 drill: Annotated[str, Form(pattern=ID_PATTERN, max_length=64)], text: FormText):
    """Enter a lesson of the drill for the district."""
    check_csrf(request, csrf)
    _personal_or_403(access)
    drills.add_lesson(store, access, drill, code, text)
    return RedirectResponse(f"/districts/{quote(code)}/drills/dashboard?drill={quote(drill)}#lessons",
                            status_code=303)


@router.post("/disaster/start", name="disaster_start")
def disaster_start(request: Request, store: StoreDep, access: DAccess, csrf: Csrf,
                   scope: Annotated[str, Form(pattern=r"^(city|districts)$")] = "districts",
                   districts: Annotated[list[str] | None, Form(max_length=64)] = None,
                   hours: Annotated[str, Form(max_length=8)] = "",
                   reason: Annotated[str, Form(max_length=500)] = ""):
    """Switch districts (or the city) into disaster mode (city staff; 第49条の11第3項)."""
    check_csrf(request, csrf)
    _personal_or_403(access)
    chosen = None if scope == "city" else [d for d in (districts or []) if d][:100]
    if scope != "city" and not chosen:
        raise InputError("災害時モードにする地区を選んでください（市全体は「市全体」）")
    try:
        duration = float(hours) if hours.strip() else None
    except ValueError as exc:
        raise InputError("時間は数字で入力してください") from exc
    disaster.start(store, access, chosen, hours=duration, reason=reason)
    return RedirectResponse("/drills?done=disaster_on", status_code=303)


@router.post("/disaster/stop", name="disaster_stop")
def disaster_stop(request: Request, store: StoreDep, access: DAccess, csrf: Csrf,
                  districts: Annotated[list[str] | None, Form(max_length=64)] = None):
    """End disaster mode (city staff): the districts given, or every one."""
    check_csrf(request, csrf)
    _personal_or_403(access)
    disaster.stop(store, access, [d for d in (districts or []) if d][:100] or None)
    return RedirectResponse("/drills?done=disaster_off", status_code=303)


# -- files and JSON ---------------------------------------------------------------------------------

@router.get("/drills/report.pdf", name="drill_report_pdf", response_class=Response)
def drill_report_pdf(store: StoreDep, access: DAccess, drill: DrillId):
    """The drill report (PDF)."""
    _personal_or_raise(access)
    data, _ = report_pdf(drills.report(store, access, drill))
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="{drill}-report.pdf"',
        "Cache-Control": "private, no-store"})


@router.get("/drills/report.csv", name="drill_report_csv", response_class=Response)
def drill_report_csv(store: StoreDep, access: DAccess, drill: DrillId):
    """The drill report's people (CSV, UTF-8 with BOM)."""
    _personal_or_raise(access)
    data = drills.report_csv(drills.report(store, access, drill))
    return Response(data, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{drill}-report.csv"',
        "Cache-Control": "private, no-store"})


@router.get("/api/districts/{code}/drills/status", name="drill_status")
def drill_status(code: Code, store: StoreDep, access: DAccess, drill: DrillId) -> JSONResponse:
    """The dashboard's status of one district of a drill (JSON; the page asks every few seconds)."""
    _personal_or_raise(access)
    return JSONResponse(drills.status(store, access, drill, district=code),
                        headers={"Cache-Control": "private, no-store"})


class Mark(BaseModel):
    id: str = Field(max_length=64)
    person_id: str = Field(max_length=64)
    district: str = Field(max_length=32)
    status: str = Field(max_length=32)
    marked_at: str = Field(max_length=40)


class Marks(BaseModel):
    drill: str = Field(pattern=ID_PATTERN, max_length=64)
    marks: list[Mark] = Field(max_length=500)


@router.post("/api/drills/marks", name="drill_marks")
def drill_marks(request: Request, body: Marks, store: StoreDep, access: DAccess) -> JSONResponse:
    """The marks a phone sends (its queue, after the network came back): ``received`` (stored now),
    ``duplicates`` (stored before: sent again), ``rejected`` (with the reason). A browser sends
    the page's CSRF token in ``X-CSRF-Token``; an API client with a bearer token needs none."""
    if not request.headers.get("authorization"):
        check_csrf(request, request.headers.get("x-csrf-token"))
    _personal_or_raise(access)
    result = drills.record_marks(store, access, body.drill, [m.model_dump() for m in body.marks])
    return JSONResponse(result, headers={"Cache-Control": "private, no-store"})


# -- shared -----------------------------------------------------------------------------------------

_DONE = {"started": "訓練を始めました。", "ended": "訓練を終えました。",
         "disaster_on": "災害時モードを開始しました。", "disaster_off": "災害時モードを終了しました。"}


def _page(request: Request, template: str, access: Access, context: dict) -> HTMLResponse:
    response = _render(request, template, access, context)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _anonymous(access: Access) -> bool:
    return access.user == PUBLIC.user and access.level == Level.PUBLIC


def _gate(request: Request, access: Access, code: str, *, back: str | None = None):
    """Anonymous: to the login page (and back to this page, or to ``back``: a URL that names a
    person is not put in the login page's link); logged in without personal rows of the district:
    403."""
    if _anonymous(access):
        here = back or request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(here)}", status_code=303)
    drills.check_personal(access, code)
    return None


def _personal_or_raise(access: Access) -> None:
    """401 for nobody logged in, 403 for a level without personal rows."""
    if _anonymous(access):
        raise ApiError(401, "ログインが必要です", headers={"WWW-Authenticate": "Bearer"})
    drills.check_personal(access)


def _personal_or_403(access: Access) -> None:
    if access.level not in drills.PERSONAL_LEVELS:
        raise ApiError(403, "この操作をする権限がありません")


def _network(settings):
    """The walking network configured (``KARTE_WALK_NETWORK``: GraphML or OSM), or None."""
    return drills.walk_network(getattr(settings, "walk_network", None))
