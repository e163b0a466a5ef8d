"""The web pages and API of 名簿の配布記録 (the hand-out ledger of register copies, issue 20).

Thin: what a route shows comes from :mod:`karte.services.copies`; a route checks the form (CSRF),
picks a template and formats. Pages:

* ``/copies`` (``copies_page``): the ledger per district, for coordinators and city staff;
* ``/copies/new`` (``copies_new``, POST ``copies_print``): the small form asked before printing a
  personal edition of a district sheet (for whom, why, on which basis, until when), which records
  the copy and returns its PDF;
* ``/copies/scan`` (``copies_scan``): a phone page that opens a copy by its QR code (the camera,
  where the browser offers ``BarcodeDetector``) or by its typed number (``copies_go``);
* ``/copies/{copy_id}`` (``copy_page``, POST ``copies_event``): one copy, its history, and the
  buttons that record a hand-over, a return, a destruction, the opening of a sealed list;
* ``/copies/{copy_id}/marks`` (``copies_marks``, POST ``copies_marks_enter``): the people of a paper
  drill sheet, to tick what was ticked on paper; the marks go to the drill records
  (``app.state.drill_records``, a :class:`karte.services.copies.DrillRecords`);
* ``/copies/sealed`` (``copies_sealed_form``, POST ``copies_sealed``): a sealed shelter list (city
  staff);
* ``/copies/report.pdf`` (``copies_report``): the yearly ledger of a district;
* ``/api/copies`` (``copies_api``): the ledger as JSON; ``/api/copies/counts`` (``copies_counts``):
  counts per district for everyone (small counts 秘匿 for the public).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api import nav
from api.deps import AccessDep, MaxSmallDep, StoreDep, check_csrf, csrf_token
from api.errors import ApiError
from karte.domain.access import AGGREGATES_ONLY, LEVEL_JA, PUBLIC, SUPPRESSED, Access, Level
from karte.domain.copies import (
    BASIS_JA,
    EVENT_JA,
    HOLDER_JA,
    HOLDER_SHORT,
    KIND_JA,
    PURPOSE_JA,
    Basis,
    CopyKind,
    Event,
    HolderKind,
    Purpose,
    State,
)
from karte.domain.errors import InputError
from karte.domain.schema import Edition
from karte.render.ledger_report import fiscal_year_ja
from karte.render.sheet_pages import date_ja
from karte.services import copies, kartes, sheets
from karte.services.copies import JST, TICKS, CopyRequest, CopyView
from karte.services.suppression import small

router = APIRouter(include_in_schema=False)
api_router = APIRouter(tags=["copies"])

CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
COPY_PATTERN = r"^K\d{6,12}$"
CopyId = Annotated[str, Path(pattern=COPY_PATTERN, max_length=13, description="複製番号（例: K000012）")]
DistrictQ = Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=32)]
Text = Annotated[str, Form(max_length=200)]
PERSONAL_EDITIONS = [e for e in Edition if e.personal]
SHOW = {"all": "すべて", "out": "未回収", "overdue": "返却期限切れ", "superseded": "古い版"}
EVENT_DONE = {e.value: f"{EVENT_JA[e]}を記録しました" for e in Event}


# --- the ledger -----------------------------------------------------------------------------------

@router.get("/copies", response_class=HTMLResponse, name="copies_page")
def copies_page(request: Request, store: StoreDep, access: AccessDep, district: DistrictQ = None,
                show: Annotated[str, Query(pattern="^(all|out|overdue|superseded)$")] = "out",
                year: Annotated[int | None, Query(ge=2000, le=2100)] = None):
    """The ledger: the copies of one district or all, as selected (未回収 by default)."""
    denied = _gate(request, access, copies.LEDGER_LEVELS)
    if denied is not None:
        return denied
    codes = kartes.district_codes(store)
    if district is not None and district not in codes:
        raise ApiError(404, f"地区 {district} はありません")
    views = copies.ledger(store, access, district=district, outstanding=show == "out",
                          overdue=show == "overdue", superseded=show == "superseded")
    everything = copies.ledger(store, access, district=district) if show != "all" else views
    today = copies.today_jst()
    return _page(request, "copies.html", access, {
        "title": "名簿の配布記録 — 地区カルテ", "views": [_row(v) for v in views], "show": show,
        "shows": SHOW, "district": district, "districts": _districts(store),
        "totals": _totals(everything), "year": year or copies.fiscal_year_of(today),
        "year_ja": fiscal_year_ja(year or copies.fiscal_year_of(today)),
        "staff": access.level == Level.CITY_STAFF,
    })


# --- printing a personal edition: the small form first ------------------------------------------

@router.get("/copies/new", response_class=HTMLResponse, name="copies_new")
def copies_new(request: Request, store: StoreDep, access: AccessDep,
               district: Annotated[str, Query(pattern=CODE_PATTERN, max_length=32)],
               edition: Annotated[Edition, Query()] = Edition.CONFIDENTIAL,
               paper: Annotated[str, Query(pattern="^(A4|A3)$")] = "A4"):
    """Before a confidential or drill sheet is printed: for whom, why, on which basis, until when."""
    denied = _print_gate(request, store, access, district, edition)
    if denied is not None:
        return denied
    preview = copies.print_preview(store, access, district, CopyKind(edition.value))
    default = preview["default"]
    return _page(request, "copies_new.html", access, {
        "title": f"地区シート（{edition.ja}）の印刷 — 名簿の配布記録", "district": district,
        "district_name": preview["district_name"], "edition": edition.value, "edition_ja": edition.ja,
        "paper": paper, "persons": preview["persons"], "version": preview["version"],
        "holder_kinds": [(k.value, k.ja) for k in HolderKind if k is not HolderKind.SHELTER],
        "purposes": [(p.value, p.ja) for p in Purpose], "bases": [(b.value, BASIS_JA[b]) for b in Basis],
        "default": default, "due_ja": date_ja(default.due_back),
    })


@router.post("/copies/new", name="copies_print")
def copies_print(request: Request, store: StoreDep, access: AccessDep, max_small: MaxSmallDep,
                 csrf: Annotated[str, Form(max_length=256)],
                 district: Annotated[str, Form(pattern=CODE_PATTERN, max_length=32)],
                 edition: Annotated[Edition, Form()],
                 paper: Annotated[str, Form(pattern="^(A4|A3)$")] = "A4",
                 holder_kind: Annotated[str, Form(max_length=32)] = HolderKind.OFFICE.value,
                 holder_name: Text = "", purpose: Annotated[str, Form(max_length=32)] = "",
                 basis: Annotated[list[str] | None, Form()] = None,
                 due_back: Annotated[str, Form(max_length=10)] = "", note: Text = ""):
    """Record the copy and send its PDF (its number in the file name and on every page)."""
    check_csrf(request, csrf)
    denied = _print_gate(request, store, access, district, edition)
    if denied is not None:
        return denied
    request_ = CopyRequest(holder_kind=holder_kind, holder_name=holder_name, purpose=purpose,
                           basis=tuple(b for b in basis or () if b), due_back=_date(due_back), note=note)
    made = sheets.numbered_sheet(store, district, edition=edition, paper=paper, access=access,
                                 max_small=max_small, copy=request_)
    suffix = "" if paper == "A4" else f"-{paper}"
    name = f"{district}-{edition.value}{suffix}-{made.copy['copy_id']}.pdf"
    return Response(made.data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"})


# --- scanning and one copy ----------------------------------------------------------------------

@router.get("/copies/scan", response_class=HTMLResponse, name="copies_scan")
def copies_scan(request: Request, access: AccessDep,
                error: Annotated[str | None, Query(max_length=20, pattern=r"^[A-Za-z0-9_-]*$")] = None):
    """Open a copy by its QR code (the camera) or its typed number: a phone-sized page."""
    denied = _gate(request, access, copies.LEDGER_LEVELS | {Level.DISTRICT_MEMBER})
    if denied is not None:
        return denied
    return _page(request, "copies_scan.html", access, {"title": "複製番号の読み取り — 名簿の配布記録",
                                                       "error": error})


@router.get("/copies/go", name="copies_go")
def copies_go(request: Request, access: AccessDep, id: Annotated[str, Query(max_length=200)] = ""):
    """A typed or scanned copy number (or a URL ending in one): to that copy's page."""
    denied = _gate(request, access, copies.LEDGER_LEVELS | {Level.DISTRICT_MEMBER})
    if denied is not None:
        return denied
    try:
        copy_id = copies.normalise_id(id)
    except InputError:
        return RedirectResponse("/copies/scan?error=bad_id", status_code=303)
    target = f"/copies/{copy_id}"
    if access.level == Level.DISTRICT_MEMBER:  # members open drill sheets to enter their marks
        target += "/marks"
    return RedirectResponse(target, status_code=303)


@router.get("/copies/report.pdf", name="copies_report")
def copies_report(request: Request, store: StoreDep, access: AccessDep,
                  district: Annotated[str, Query(pattern=CODE_PATTERN, max_length=32)],
                  year: Annotated[int, Query(ge=2000, le=2100)]):
    """The yearly ledger report of one district (PDF)."""
    _require(access, copies.LEDGER_LEVELS)
    data = copies.yearly_report(store, access, district, year)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="copies-{district}-{year}.pdf"',
        "Cache-Control": "private, no-store"})


@router.get("/copies/sealed", response_class=HTMLResponse, name="copies_sealed_form")
def copies_sealed_form(request: Request, store: StoreDep, access: AccessDep):
    """A sealed shelter list (city staff): which shelter, where it is kept, until when."""
    denied = _gate(request, access, {Level.CITY_STAFF}, why="封印名簿を作成できるのは市職員だけです")
    if denied is not None:
        return denied
    names = {c: n for c, n in _districts(store)}
    shelters = [{**s, "district_name": names.get(s["district_code"], "地区外")}
                for s in copies.shelters(store)]
    shelters.sort(key=lambda s: (str(s["district_code"] or "~"), s["name"]))
    today = copies.today_jst()
    return _page(request, "copies_sealed.html", access, {
        "title": "封印名簿の作成 — 名簿の配布記録", "shelters": shelters,
        "due": copies.fiscal_year_end(today).isoformat()})


@router.post("/copies/sealed", name="copies_sealed")
def copies_sealed(request: Request, store: StoreDep, access: AccessDep,
                  csrf: Annotated[str, Form(max_length=256)],
                  shelter_id: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
                  holder_name: Text = "", due_back: Annotated[str, Form(max_length=10)] = "",
                  paper: Annotated[str, Form(pattern="^(A4|A3)$")] = "A4", note: Text = ""):
    """Record the sealed list and send its PDF."""
    check_csrf(request, csrf)
    _require(access, {Level.CITY_STAFF}, why="封印名簿を作成できるのは市職員だけです")
    request_ = CopyRequest(holder_name=holder_name, due_back=_date(due_back), note=note)
    copy, data = copies.sealed_list(store, access, shelter_id, request=request_, paper=paper)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="sealed-{shelter_id}-{copy["copy_id"]}.pdf"',
        "Cache-Control": "private, no-store"})


@router.get("/copies/{copy_id}", response_class=HTMLResponse, name="copy_page")
def copy_page(request: Request, store: StoreDep, access: AccessDep, copy_id: CopyId,
              done: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}$")] = None):
    """One copy: where it is, its history, and what can be recorded now."""
    denied = _gate(request, access, copies.LEDGER_LEVELS)
    if denied is not None:
        return denied
    view = copies.copy_view(store, access, copy_id)
    allowed = copies.ALLOWED_BY_STATE[view.state]
    return _page(request, "copies_copy.html", access, {
        "title": f"複製 {view.copy_id} — 名簿の配布記録", "c": _row(view), "done": EVENT_DONE.get(done or ""),
        "can": {e.value: e in allowed and (e is not Event.OPENED or view.kind is CopyKind.SEALED)
                for e in copies.USER_EVENTS},
        "holder_kinds": [(k.value, k.ja) for k in HolderKind], "drill": view.kind is CopyKind.DRILL,
        "events_ja": EVENT_JA, "holder_ja": HOLDER_JA,
    })


@router.post("/copies/{copy_id}/events", name="copies_event")
def copies_event(request: Request, store: StoreDep, access: AccessDep, copy_id: CopyId,
                 csrf: Annotated[str, Form(max_length=256)],
                 event: Annotated[str, Form(pattern=r"^(handed_over|returned|destroyed|opened)$")],
                 person: Text = "", holder_kind: Annotated[str, Form(max_length=32)] = "",
                 due_back: Annotated[str, Form(max_length=10)] = "", note: Text = "",
                 at: Annotated[str, Form(max_length=16)] = ""):
    """Record a hand-over, return, destruction or opening (CSRF-checked); back to the copy (303)."""
    check_csrf(request, csrf)
    denied = _gate(request, access, copies.LEDGER_LEVELS)
    if denied is not None:
        return denied
    copies.record_event(store, access, copy_id, event, person=person, holder_kind=holder_kind,
                        due_back=_date(due_back), note=note, at=_local_time(at))
    return RedirectResponse(f"/copies/{quote(copy_id)}?done={event}", status_code=303)


# --- paper drill marks --------------------------------------------------------------------------

@router.get("/copies/{copy_id}/marks", response_class=HTMLResponse, name="copies_marks")
def copies_marks(request: Request, store: StoreDep, access: AccessDep, copy_id: CopyId,
                 entered: Annotated[int | None, Query(ge=0, le=100000)] = None):
    """The people of a paper drill sheet, to tick on a phone what was ticked on paper."""
    denied = _gate(request, access, copies.LEDGER_LEVELS | {Level.DISTRICT_MEMBER})
    if denied is not None:
        return denied
    view, people = copies.copy_people(store, access, copy_id)
    records = _drill_records(request)
    drills = records.open_drills(store, access, str(view.row["district_code"])) if records else []
    now = dt.datetime.now(JST).strftime("%Y-%m-%dT%H:%M")
    return _page(request, "copies_marks.html", access, {
        "title": f"訓練の記入の入力 {view.copy_id} — 名簿の配布記録", "c": _row(view), "people": people,
        "ticks": TICKS, "drills": drills, "connected": records is not None, "now": now,
        "entered": entered})


@router.post("/copies/{copy_id}/marks", name="copies_marks_enter")
async def copies_marks_enter(request: Request, store: StoreDep, access: AccessDep, copy_id: CopyId):
    """Enter the ticks of the paper copy into the chosen drill (CSRF-checked); back (303)."""
    form = await request.form()
    check_csrf(request, str(form.get("csrf") or ""))
    denied = _gate(request, access, copies.LEDGER_LEVELS | {Level.DISTRICT_MEMBER})
    if denied is not None:
        return denied
    records = _drill_records(request)
    if records is None:
        raise ApiError(503, "訓練の記録とまだつながっていないため、記入を入力できません")
    ticks: dict[str, set[str]] = {}
    for tick in TICKS:
        for person in form.getlist(f"tick_{tick}"):
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(person)):
                raise ApiError(422, "記入の値が正しくありません")
            ticks.setdefault(str(person), set()).add(tick)
    drill_id = str(form.get("drill_id") or "")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", drill_id):
        raise ApiError(422, "訓練を選んでください")
    marks = copies.enter_paper_marks(store, access, copy_id, ticks, drill_id=drill_id, drills=records,
                                     marked_at=_local_time(str(form.get("marked_at") or "")))
    return RedirectResponse(f"/copies/{quote(copy_id)}/marks?entered={len(marks)}", status_code=303)


# --- JSON ---------------------------------------------------------------------------------------

@api_router.get("/api/copies", name="copies_api", summary="名簿の配布記録 (JSON)")
def copies_api(store: StoreDep, access: AccessDep, district: DistrictQ = None,
               out_only: bool = False, overdue: bool = False, superseded: bool = False) -> JSONResponse:
    """The copies (coordinators and city staff): each with its holder, purpose, legal basis, due
    date, state and whether it lists an older register version. Never the listed people."""
    _require(access, copies.LEDGER_LEVELS)
    views = copies.ledger(store, access, district=district, outstanding=out_only, overdue=overdue,
                          superseded=superseded)
    return JSONResponse([v.as_dict() for v in views], headers={"Cache-Control": "private, no-store"})


@api_router.get("/api/copies/counts", name="copies_counts", summary="名簿の複製の数（地区ごと）")
def copies_counts(store: StoreDep, access: AccessDep, max_small: MaxSmallDep) -> list[dict]:
    """Per district: copies made, outstanding, overdue, of an older version. Counts only; for the
    public, counts from 1 to ``KARTE_SUPPRESS_MAX`` are "秘匿" as everywhere else."""
    rows = copies.ledger_counts(store)
    if access.level in AGGREGATES_ONLY:
        rows = [{k: small(v, max_small) if k in COUNT_KEYS else v for k, v in r.items()} for r in rows]
    elif access.municipality is not None:
        rows = [r for r in rows if r["municipality_code"] == access.municipality]
    return rows


COUNT_KEYS = ("made", "outstanding", "overdue", "superseded")


# --- helpers ------------------------------------------------------------------------------------

def _gate(request: Request, access: Access, levels, *, why: str = "名簿の配布記録は市職員とコーディネーター"
                                                                  "だけが使えます"):
    """Anonymous: to the login page (303); logged in without the level: 403."""
    if access.level in levels:
        return None
    if access.user == PUBLIC.user and access.level == Level.PUBLIC:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    raise ApiError(403, why)


def _require(access: Access, levels, *, why: str = "名簿の配布記録は市職員とコーディネーターだけが使えます"):
    if access.level in levels:
        return
    if access.user == PUBLIC.user and access.level == Level.PUBLIC:
        raise ApiError(401, "ログインが必要です", headers={"WWW-Authenticate": "Bearer"})
    raise ApiError(403, why)


def _print_gate(request: Request, store, access: Access, district: str, edition: Edition):
    if not edition.personal:
        raise ApiError(422, "公開版は配布記録なしで印刷できます（地区のページから）")
    if access.user == PUBLIC.user and access.level == Level.PUBLIC:
        return RedirectResponse(f"/login?next={quote(str(request.url.path))}", status_code=303)
    if district not in kartes.district_codes(store):
        raise ApiError(404, f"地区 {district} はありません")
    sheets.check_access(access, [district], edition)
    return None


def _drill_records(request: Request):
    """The drill records' entry point (issue 19), set on the app as ``app.state.drill_records``."""
    return getattr(request.app.state, "drill_records", None)


def _districts(store) -> list[tuple[str, str]]:
    return copies.district_choices(store)


def _row(v: CopyView) -> dict:
    d = v.as_dict()
    d["holder_kind_short"] = HOLDER_SHORT.get(d["holder_kind"], d["holder_kind"])
    d["made_ja"] = date_ja(_jst(d["made_at"]))
    d["made_short"] = _short(_jst(d["made_at"]))
    d["due_short"] = _short(dt.date.fromisoformat(d["due_back"]))
    d["made_time_ja"] = _jst_time(d["made_at"])
    d["due_ja"] = date_ja(dt.date.fromisoformat(d["due_back"]))
    d["since_ja"] = date_ja(_jst(d["since"]))
    d["events_ja"] = [{**e, "event_ja": EVENT_JA.get(Event(e["event"]), e["event"]),
                       "at_ja": _jst_time(e["at"])} for e in d["events"]]
    d["sealed"] = v.kind is CopyKind.SEALED
    d["state_class"] = ("bad" if v.overdue or v.superseded else
                        "ok" if not v.state.outstanding else "out" if v.state is not State.MADE else "made")
    return d


def _totals(views: list[CopyView]) -> dict:
    return {"all": len(views), "out": sum(v.state.outstanding for v in views),
            "overdue": sum(v.overdue for v in views), "superseded": sum(bool(v.superseded) for v in views)}


def _short(day: dt.date) -> str:
    """``2027/3/31（R9）``: a table's date, the era's year beside the Western one."""
    return f"{day.year}/{day.month}/{day.day}（R{day.year - 2018}）"


def _jst(stamp: str) -> dt.date:
    return dt.datetime.fromisoformat(stamp).astimezone(JST).date()


def _jst_time(stamp: str) -> str:
    t = dt.datetime.fromisoformat(stamp).astimezone(JST)
    return f"{date_ja(t.date())} {t:%H:%M}"


def _date(text: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"日付は YYYY-MM-DD で指定してください（指定: {text[:10]}）") from None


def _local_time(text: str) -> dt.datetime | None:
    """A ``datetime-local`` field (JST, minutes) as an aware datetime; empty: None (now)."""
    if not text:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M").replace(tzinfo=JST)
    except ValueError:
        raise InputError("日時の形式が正しくありません") from None


def _page(request: Request, template: str, access: Access, context: dict) -> HTMLResponse:
    logged_in = not (access.user == PUBLIC.user and access.level == Level.PUBLIC)
    base = {
        "user": access.user if logged_in else None, "level": access.level.value,
        "level_ja": LEVEL_JA[access.level], "district_scope": access.district, "logged_in": logged_in,
        "csrf": csrf_token(request), "path": request.url.path, "suppressed": SUPPRESSED,
        "menu": nav.menu(request.app, access), "kind_ja": KIND_JA, "purpose_ja": PURPOSE_JA,
    }
    response = request.app.state.templates.TemplateResponse(request, template, {**base, **context})
    response.headers["Cache-Control"] = "private, no-store"
    return response


router.include_router(api_router)
