"""The web pages and API of 見守り・セーフティネット (issue 13).

Thin: what a route shows comes from the topic's service in :mod:`karte.services`
(:mod:`karte.services.care`). Pages: the coordinators' overview (``/care``), a district's page
with its map, cases, meetings and the forms to record a meeting or a household
(``/districts/{code}/care``), one household (``…/care/case?id=``), one meeting
(``…/care/meeting?id=``) and the printable meeting sheet (``…/care/sheet.pdf``, 取扱注意). Every
form is CSRF-checked; a form with problems comes back with every problem listed and what was typed
kept (status 400; a record changed by someone else meanwhile: 409). API: counts for everyone
(``/api/care/summary.json|csv``, small counts suppressed for the public); cases, meetings and the
ledgers (CSV in the import's headers) for authorised users, each read logged.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.deps import AccessDep, SettingsDep, StoreDep, check_csrf
from api.errors import ApiError
from api.routes.pages import _render
from karte.domain.access import PUBLIC, Access, Level
from karte.domain.care import japanese_date
from karte.domain.errors import ConflictError
from karte.render.webmap import Basemap
from karte.services import care

router = APIRouter()

CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
Code = Annotated[str, Path(pattern=CODE_PATTERN, max_length=32)]
RecordId = Annotated[str, Query(pattern=ID_PATTERN, max_length=64)]
#: How many bytes a posted form may have (a meeting with every household filled in is ~40 kB).
MAX_FORM = 512_000

FILTERS = {"wareki": lambda v: japanese_date(v), "wareki_short": lambda v: japanese_date(v, short=True)}


# --- pages ----------------------------------------------------------------------------------------------

@router.get("/care", response_class=HTMLResponse, name="care_page", include_in_schema=False)
def care_page(request: Request, store: StoreDep, access: AccessDep):
    """Coordinators and city staff: every district's open cases, overdue reviews, cases without a
    responsible person and evacuation decisions waiting for the register. A district member is
    taken to their own district's page."""
    denied = _gate(request, access)
    if denied is not None:
        return denied
    if access.level == Level.DISTRICT_MEMBER:
        return RedirectResponse(f"/districts/{quote(access.district)}/care", status_code=303)
    page = care.overview_page(store, access)
    return _page(request, "care.html", access, {"title": "見守り・セーフティネット — 地区カルテ", **page})


@router.get("/districts/{code}/care", response_class=HTMLResponse, name="district_care_page",
            include_in_schema=False)
def district_care_page(request: Request, code: Code, store: StoreDep, access: AccessDep,
                       settings: SettingsDep):
    """One district's 見守り・セーフティネット page (its members, coordinators, city staff)."""
    denied = _gate(request, access, code)
    if denied is not None:
        return denied
    return _district(request, store, access, settings, code)


@router.get("/districts/{code}/care/case", response_class=HTMLResponse, name="care_case_page",
            include_in_schema=False)
def care_case_page(request: Request, code: Code, store: StoreDep, access: AccessDep, id: RecordId):
    """One household: what was noticed, decided and done; forms to add an action or a referral,
    move a referral on, close or reopen the case."""
    denied = _gate(request, access, code)
    if denied is not None:
        return denied
    return _case(request, store, access, code, id)


@router.get("/districts/{code}/care/meeting", response_class=HTMLResponse, name="care_meeting_page",
            include_in_schema=False)
def care_meeting_page(request: Request, code: Code, store: StoreDep, access: AccessDep, id: RecordId):
    """One meeting: attendees, the households discussed and what was decided for each."""
    denied = _gate(request, access, code)
    if denied is not None:
        return denied
    page = care.meeting_page(store, code, id, access)
    return _page(request, "care_meeting.html", access,
                 {"title": f"{page['name']} 会議の記録 — 地区カルテ", **page})


@router.get("/districts/{code}/care/sheet.pdf", name="care_sheet_pdf", include_in_schema=False)
def care_sheet_pdf(request: Request, code: Code, store: StoreDep, access: AccessDep):
    """The printable meeting sheet (取扱注意): households to review, last decisions, blank lines."""
    denied = _gate(request, access, code)
    if denied is not None:
        return denied
    data = care.meeting_sheet_pdf(store, code, access)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"meeting_sheet_{code}.pdf\"",
        "Cache-Control": "private, no-store"})


# --- forms ----------------------------------------------------------------------------------------------

@router.post("/districts/{code}/care/concerns", name="care_add_concern", include_in_schema=False)
async def care_add_concern(request: Request, code: Code, store: StoreDep, access: AccessDep):
    """Record a household of concern (気づき)."""
    form = await _form(request, access, code)
    try:
        row = await run_in_threadpool(care.record_concern, store, access, code, form)
    except (care.FormError, ConflictError) as exc:
        return await _again(request, store, access, code, form, exc, section="concern")
    _flash(request, f"気になる世帯「{row['household']}」を記録しました。")
    return RedirectResponse(f"/districts/{quote(code)}/care/case?id={quote(row['concern_id'])}",
                            status_code=303)


@router.post("/districts/{code}/care/meetings", name="care_add_meeting", include_in_schema=False)
async def care_add_meeting(request: Request, code: Code, store: StoreDep, access: AccessDep):
    """Record a safety-net meeting and its decisions per household."""
    form = await _form(request, access, code)
    try:
        result = await run_in_threadpool(care.record_meeting, store, access, code, form)
    except (care.FormError, ConflictError) as exc:
        return await _again(request, store, access, code, form, exc, section="meeting")
    m = result.meeting
    text = (f"{japanese_date(m['held_on'])}の会議を記録しました（検討した世帯 {m['households']}、"
            f"決定 {len(result.decisions)} 件）。")
    if result.applied:
        text += f"避難支援の決定 {result.applied} 件を要支援者名簿に反映しました。"
    if result.pending:
        text += f"避難支援の決定 {result.pending} 件はコーディネーターの確認の後に名簿に反映されます。"
    _flash(request, text, *result.notices)
    return RedirectResponse(f"/districts/{quote(code)}/care/meeting?id={quote(m['meeting_id'])}",
                            status_code=303)


@router.post("/districts/{code}/care/actions", name="care_add_action", include_in_schema=False)
async def care_add_action(request: Request, code: Code, store: StoreDep, access: AccessDep):
    """Record a follow-up action (支援) on a case."""
    return await _case_form(request, store, access, code, care.record_action, "支援を記録しました。",
                            "action")


@router.post("/districts/{code}/care/referrals", name="care_add_referral", include_in_schema=False)
async def care_add_referral(request: Request, code: Code, store: StoreDep, access: AccessDep):
    """Record a referral (つなぐ) of a case."""
    return await _case_form(request, store, access, code, care.record_referral, "つなぎを記録しました。",
                            "referral")


@router.post("/districts/{code}/care/referral-status", name="care_referral_status", include_in_schema=False)
async def care_referral_status(request: Request, code: Code, store: StoreDep, access: AccessDep):
    """Move a referral on (受理・完了)."""
    return await _case_form(request, store, access, code, care.set_referral_status,
                            "つなぎの状況を更新しました。", "referral")


@router.post("/districts/{code}/care/close", name="care_close_case", include_in_schema=False)
async def care_close_case(request: Request, code: Code, store: StoreDep, access: AccessDep):
    """Close a case with its reason."""
    return await _case_form(request, store, access, code, care.close_case, "この世帯の対応を終了しました。",
                            "close")


@router.post("/districts/{code}/care/reopen", name="care_reopen_case", include_in_schema=False)
async def care_reopen_case(request: Request, code: Code, store: StoreDep, access: AccessDep):
    """Open a closed case again."""
    return await _case_form(request, store, access, code, care.reopen_case, "この世帯の対応を再開しました。",
                            "close")


@router.post("/care/register", name="care_apply_register", include_in_schema=False)
async def care_apply_register(request: Request, store: StoreDep, access: AccessDep):
    """A coordinator applies (or declines) a district member's evacuation decision."""
    form = await _form(request, access, None)
    if access.level not in care.PLANNERS:
        raise ApiError(403, "名簿への反映はコーディネーターと市職員だけができます")
    row = await run_in_threadpool(care.decide_pending, store, access, form)
    applied = row["register_status"] == "applied"
    done = "要支援者名簿に反映しました。" if applied else "名簿に反映しないことにしました。"
    _flash(request, done)
    return RedirectResponse("/care#pending", status_code=303)


# --- API ------------------------------------------------------------------------------------------------

@router.get("/api/care/summary.json", name="care_summary", tags=["見守り・セーフティネット"])
def care_summary(store: StoreDep, access: AccessDep, settings: SettingsDep,
                 year: Annotated[int | None, Query(ge=2000, le=2100)] = None):
    """気になる世帯・会議の件数（地区ごと・種類ごと）。公開では 1〜KARTE_SUPPRESS_MAX の数を「秘匿」に。"""
    return JSONResponse(care.public_summary(store, access, year=year, max_small=settings.suppress_max),
                        headers=_no_store(access))


@router.get("/api/care/summary.csv", name="care_summary_csv", tags=["見守り・セーフティネット"])
def care_summary_csv(store: StoreDep, access: AccessDep, settings: SettingsDep,
                     year: Annotated[int | None, Query(ge=2000, le=2100)] = None):
    """The same counts as CSV (UTF-8 with BOM, for Excel)."""
    summary = care.public_summary(store, access, year=year, max_small=settings.suppress_max)
    kinds = summary["kinds"]
    header = ["地区コード", "地区", "対応中の世帯", *(f"対応中: {v}" for v in kinds.values()),
              "気づいた世帯（年度）",
              "終了した世帯（年度）", "会議（年度）", "参加者（年度）", "検討世帯（年度）"]
    keys = ["open", *(f"open_{k}" for k in kinds), "opened", "closed", "meetings", "participants",
            "households"]
    rows = [[d["code"], d["name"], *(d[k] for k in keys)] for d in summary["districts"]]
    rows.append(["", "市全体", *(summary["city"][k] for k in keys)])
    return _csv(header, rows, f"care_summary_{summary['fiscal_year']}.csv", access)


@router.get("/api/care/cases", name="care_cases_api", tags=["見守り・セーフティネット"])
def care_cases_api(store: StoreDep, access: AccessDep,
                   district: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=32)] = None,
                   open_only: Annotated[bool, Query(alias="open")] = False):
    """気になる世帯の一覧（権限のある利用者のみ・閲覧を記録）。"""
    _api_gate(access)
    return JSONResponse(care.case_list(store, access, district=district, open_only=open_only),
                        headers=_no_store(access))


@router.get("/api/care/meetings", name="care_meetings_api", tags=["見守り・セーフティネット"])
def care_meetings_api(store: StoreDep, access: AccessDep,
                      district: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=32)] = None,
                      year: Annotated[int | None, Query(ge=2000, le=2100)] = None):
    """地域セーフティネット会議の一覧（権限のある利用者のみ・閲覧を記録）。"""
    _api_gate(access)
    return JSONResponse(care.meeting_list(store, access, district=district, year=year),
                        headers=_no_store(access))


@router.get("/api/care/meetings.csv", name="care_meetings_csv", tags=["見守り・セーフティネット"])
def care_meetings_csv(store: StoreDep, access: AccessDep,
                      district: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=32)] = None):
    """会議の台帳（karte import meetings と同じ見出し）。"""
    _api_gate(access)
    header, rows = care.ledger_table(store, access, "meetings", district=district)
    return _csv(header, rows, f"meetings{'_' + district if district else ''}.csv", access)


@router.get("/api/care/concerns.csv", name="care_concerns_csv", tags=["見守り・セーフティネット"])
def care_concerns_csv(store: StoreDep, access: AccessDep,
                      district: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=32)] = None):
    """気になる世帯の台帳（karte import concerns と同じ見出し）。"""
    _api_gate(access)
    header, rows = care.ledger_table(store, access, "concerns", district=district)
    return _csv(header, rows, f"concerns{'_' + district if district else ''}.csv", access)


# --- shared ---------------------------------------------------------------------------------------------

def _anonymous(access: Access) -> bool:
    return access.user == PUBLIC.user and access.level == Level.PUBLIC


def _gate(request: Request, access: Access, code: str | None = None):
    """Anonymous: to the login page; logged in without the right (level or district): 403."""
    if _anonymous(access):
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    care.check_access(access, code)
    return None


def _api_gate(access: Access) -> None:
    if _anonymous(access):
        raise ApiError(401, "ログインが必要です", headers={"WWW-Authenticate": "Bearer"})
    care.check_access(access)


async def _form(request: Request, access: Access, code: str | None) -> dict[str, list[str]]:
    """The posted form as ``name -> [values]``, after the CSRF check and the access gate (the
    anonymous and the wrong level get their 403 before anything is read)."""
    length = int(request.headers.get("content-length") or 0)
    if length > MAX_FORM:
        raise ApiError(413, "送信された内容が大きすぎます")
    data = await request.form(max_fields=5000)
    check_csrf(request, str(data.get("csrf") or ""))
    if _anonymous(access):
        raise ApiError(401, "ログインが必要です")
    care.check_access(access, code)
    return {key: [str(v) for v in data.getlist(key)] for key in data if key != "csrf"}


async def _case_form(request: Request, store, access: Access, code: str, action, done: str, section: str):
    form = await _form(request, access, code)
    concern_id = (form.get("concern_id") or [""])[-1]
    try:
        await run_in_threadpool(action, store, access, code, form)
    except (care.FormError, ConflictError) as exc:
        if not concern_id:
            return await _again(request, store, access, code, form, exc, section=section)
        return await run_in_threadpool(_case, request, store, access, code, concern_id, form=form, error=exc,
                                       section=section)
    _flash(request, done)
    target = f"/districts/{quote(code)}/care" + (f"/case?id={quote(concern_id)}" if concern_id else "")
    return RedirectResponse(target, status_code=303)


async def _again(request: Request, store, access: Access, code: str, form: dict, exc: Exception, *,
                 section: str):
    settings = request.app.state.settings
    return await run_in_threadpool(_district, request, store, access, settings, code, form=form, error=exc,
                                   section=section)


def _district(request: Request, store, access: Access, settings, code: str, *, form: dict | None = None,
              error: Exception | None = None, section: str | None = None) -> HTMLResponse:
    page = care.district_care_page(store, code, access, basemap=Basemap.from_settings(settings))
    context = {"title": f"{page['name']} 見守り・セーフティネット — 地区カルテ", **page,
               **_form_context(request, form, error, section)}
    return _page(request, "care_district.html", access, context, status=_status(error))


def _case(request: Request, store, access: Access, code: str, concern_id: str, *, form: dict | None = None,
          error: Exception | None = None, section: str | None = None) -> HTMLResponse:
    page = care.case_page(store, code, concern_id, access)
    context = {"title": f"{page['case']['household']} — 見守り・セーフティネット", **page,
               **_form_context(request, form, error, section)}
    return _page(request, "care_case.html", access, context, status=_status(error))


def _form_context(request: Request, form: dict | None, error: Exception | None, section: str | None) -> dict:
    values = {k: v[-1] for k, v in (form or {}).items() if v}
    errors = list(getattr(error, "problems", [])) or ([str(error)] if error is not None else [])
    return {"form": values, "form_lists": form or {}, "errors": errors, "section": section,
            "conflict": isinstance(error, ConflictError), "flash": request.session.pop("care_flash", [])}


def _status(error: Exception | None) -> int:
    if error is None:
        return 200
    return 409 if isinstance(error, ConflictError) else 400


def _flash(request: Request, *messages: str) -> None:
    request.session["care_flash"] = [m for m in messages if m][:10]


def _page(request: Request, template: str, access: Access, context: dict, *,
          status: int = 200) -> HTMLResponse:
    request.app.state.templates.env.filters.update(FILTERS)
    context.setdefault("flash", request.session.pop("care_flash", []))
    context.setdefault("form", {})
    context.setdefault("form_lists", {})
    context.setdefault("errors", [])
    response = _render(request, template, access, context)
    response.status_code = status
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _no_store(access: Access) -> dict:
    return {} if _anonymous(access) else {"Cache-Control": "private, no-store"}


def _csv(header: list[str], rows: list[list], filename: str, access: Access) -> Response:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([["" if v is None else care.neutralised(v) if isinstance(v, str) else v for v in row]
                      for row in rows])
    return Response(("\ufeff" + text.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=\"{filename}\"",
                             **_no_store(access)})
