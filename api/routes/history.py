"""The web pages and API of 計画・指標 (issue 12).

Thin: what a route shows comes from :mod:`karte.services.history`; the charts are drawn by
:mod:`karte.render.charts`, the report by :mod:`karte.render.report`.

Routes (name: who):

* ``GET /plan`` (``plan_page``): everyone; edit forms for city staff and coordinators;
* ``GET /districts/{code}/plan`` (``district_plan_page``): everyone;
* ``POST /plan/marks``, ``/plan/values``, ``/plan/evaluations`` (``plan_*_save``): city staff
  and coordinators, CSRF-checked, written as the user (audited by the store);
* ``GET /plan/report.pdf``, ``/districts/{code}/plan/report.pdf`` (``*_report_pdf``): everyone
  (the public's copy suppressed);
* ``GET /plan/export.xlsx``, ``/plan/export.csv`` (``plan_export_*``): everyone;
* ``GET /api/history``, ``/api/districts/{code}/history``, ``/api/indicators``: everyone (JSON).
"""

from __future__ import annotations

import tempfile
from enum import StrEnum
from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api import nav
from api.deps import AccessDep, SettingsDep, StoreDep, check_csrf
from api.errors import ApiError
from api.routes.pages import CODE_PATTERN, _render
from karte.domain.access import PUBLIC, Access, Level
from karte.domain.history import EVALUATION_JA, fiscal_label
from karte.history_plan import write_table
from karte.render.charts import describe_indicator, format_value, indicator_chart
from karte.render.report import progress_report_pdf
from karte.services import history as years
from karte.snapshot import current

router = APIRouter()

Code = Annotated[str, Path(pattern=CODE_PATTERN, max_length=32)]
PlanKey = Annotated[str | None, Query(max_length=200)]
Year = Annotated[int | None, Query(ge=1989, le=2100)]


class ExportFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


def _municipality(access: Access, settings) -> str:
    return years.municipality_of(access, settings.municipality)


def _page(store, access: Access, settings, *, district: str | None, plan: str | None) -> dict:
    municipality = _municipality(access, settings)
    snap = current(store)
    if district is not None:
        years.check_district(snap, district)
    items = years.indicator_list(
        store, access, municipality=municipality, district=district, max_small=settings.suppress_max
    )
    for item in items:
        item["chart"] = indicator_chart(item)
        item["summary"] = describe_indicator(item)
        item["rows"] = _indicator_rows(item)
    view = years.plan_view(store, access, municipality=municipality, plan=plan)
    build = years.build_year(snap)
    sources = years.live_sources(snap)
    page = {
        "indicators": items,
        "view": view,
        "district": district,
        "name": snap.district_name(district) if district else years._city_name(snap),
        "build_year": build,
        "build_label": fiscal_label(build) if build else "",
        "sources": sources,
        "editable": years.may_edit(access),
        "evaluation_kinds": list(EVALUATION_JA.items()),
        "report_years": _report_years(items, view, build),
    }
    if district is not None:
        page["trend"] = years.trend(
            store, district, access, municipality=municipality, max_small=settings.suppress_max
        )
    return page


def _indicator_rows(item: dict) -> list[dict]:
    unit = item["unit"]
    targets = {t["fiscal_year"]: t for t in item["targets"]}
    rows = []
    for v in item["values"]:
        year = v["fiscal_year"]
        rows.append(
            {
                "year": fiscal_label(year),
                "fiscal_year": year,
                "value": format_value(v["value"], unit),
                "origin": {"computed": "自動計算", "entered": "入力"}.get(v["origin"] or "", ""),
                "path": format_value(v["path"], unit) if v["path"] is not None else "",
                "target": format_value(targets[year]["value"], unit) if year in targets else "",
                "attainment": "" if v["attainment"] is None else f"{v['attainment'] * 100:.0f}%",
                "status": {True: "順調", False: "遅れ"}.get(v["on_track"], ""),
            }
        )
    return rows


def _report_years(items: list[dict], view: dict, build: int | None) -> list[int]:
    known = {v["fiscal_year"] for i in items for v in i["values"] if v["value"] is not None}
    known |= {y["fiscal_year"] for y in view.get("years", [])}
    if build:
        known.add(build)
    return sorted(y for y in known if build is None or y <= build)[-6:]


@router.get("/plan", response_class=HTMLResponse, name="plan_page")
def plan_page(
    request: Request,
    store: StoreDep,
    access: AccessDep,
    settings: SettingsDep,
    plan: PlanKey = None,
    saved: Annotated[str | None, Query(pattern=r"^(mark|value|evaluation)$")] = None,
    edit: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    year: Year = None,
):
    """計画・指標 of the municipality: indicator charts against their target paths, the plan table
    with its marks and legend, the evaluations; edit forms for city staff and coordinators."""
    page = _page(store, access, settings, district=None, plan=plan)
    return _render(
        request,
        "plan.html",
        access,
        {"title": "計画・指標 — 地区カルテ", **page, "saved": saved, "edit_item": edit, "edit_year": year},
    )


@router.get("/districts/{code}/plan", response_class=HTMLResponse, name="district_plan_page")
def district_plan_page(
    request: Request, code: Code, store: StoreDep, access: AccessDep, settings: SettingsDep
):
    """計画・指標 of a district: its indicators counted for the district (beside the city's
    targets), its trend, the city's plan table and evaluations."""
    page = _page(store, access, settings, district=code, plan=None)
    return _render(
        request,
        "plan.html",
        access,
        {
            "title": f"{page['name']} 計画・指標 — 地区カルテ",
            **page,
            "saved": None,
            "edit_item": None,
            "edit_year": None,
            "district_links": nav.district_links(request.app, access, code),
        },
    )


# --- edits ------------------------------------------------------------------------------------------


def _editor(request: Request, access: Access, csrf: str):
    check_csrf(request, csrf)
    if years.may_edit(access):
        return None
    if access.user == PUBLIC.user and access.level == Level.PUBLIC:
        return RedirectResponse(f"/login?next={quote('/plan')}", status_code=303)
    raise ApiError(403, "計画・指標を編集できるのは市職員とコーディネーターだけです")


@router.post("/plan/marks", name="plan_mark_save")
def plan_mark_save(
    request: Request,
    store: StoreDep,
    access: AccessDep,
    settings: SettingsDep,
    csrf: Annotated[str, Form(max_length=256)],
    plan: Annotated[str, Form(max_length=200)],
    item_id: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,64}$")],
    fiscal_year: Annotated[int, Form(ge=1989, le=2100)],
    marks: Annotated[str, Form(max_length=40)] = "",
    version: Annotated[int | None, Form()] = None,
):
    """Set one cell of the plan table (CSRF-checked); back to the page."""
    denied = _editor(request, access, csrf)
    if denied is not None:
        return denied
    years.set_mark(
        store,
        access,
        municipality=_municipality(access, settings),
        plan=plan,
        item_id=item_id,
        fiscal_year=fiscal_year,
        text=marks,
        version=version,
    )
    return RedirectResponse(f"/plan?plan={quote(plan)}&saved=mark#item-{quote(item_id)}", status_code=303)


@router.post("/plan/values", name="plan_value_save")
def plan_value_save(
    request: Request,
    store: StoreDep,
    access: AccessDep,
    settings: SettingsDep,
    csrf: Annotated[str, Form(max_length=256)],
    key: Annotated[str, Form(pattern=r"^[A-Za-z0-9_-]{1,40}$")],
    fiscal_year: Annotated[int, Form(ge=1989, le=2100)],
    kind: Annotated[str, Form(pattern=r"^(value|target)$")],
    value: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=200)] = "",
):
    """Enter (or clear, with an empty value) an indicator's value or target (CSRF-checked)."""
    denied = _editor(request, access, csrf)
    if denied is not None:
        return denied
    text = value.strip().replace(",", "")
    try:
        number = float(text) if text else None
    except ValueError as exc:
        raise ApiError(422, f"「{value}」は数値として読めません") from exc
    years.save_value(
        store,
        access,
        municipality=_municipality(access, settings),
        key=key,
        fiscal_year=fiscal_year,
        kind=kind,
        value=number,
        note=note,
    )
    return RedirectResponse(f"/plan?saved=value#indicator-{quote(key)}", status_code=303)


@router.post("/plan/evaluations", name="plan_evaluation_save")
def plan_evaluation_save(
    request: Request,
    store: StoreDep,
    access: AccessDep,
    settings: SettingsDep,
    csrf: Annotated[str, Form(max_length=256)],
    plan: Annotated[str, Form(max_length=200)],
    goal_no: Annotated[str, Form(pattern=r"^[0-9]{1,3}$")],
    fiscal_year: Annotated[int, Form(ge=1989, le=2100)],
    kind: Annotated[str, Form(pattern=r"^(internal|external)$")],
    achievements: Annotated[str, Form(max_length=4000)] = "",
    issues: Annotated[str, Form(max_length=4000)] = "",
    evaluator: Annotated[str, Form(max_length=200)] = "",
    evaluation_id: Annotated[str, Form(pattern=r"^$|^[A-Za-z0-9_-]{1,64}$")] = "",
    version: Annotated[int | None, Form()] = None,
):
    """Add an evaluation note, or change one (CSRF-checked)."""
    denied = _editor(request, access, csrf)
    if denied is not None:
        return denied
    years.save_evaluation(
        store,
        access,
        municipality=_municipality(access, settings),
        plan=plan,
        goal_no=goal_no,
        fiscal_year=fiscal_year,
        kind=kind,
        achievements=achievements,
        issues=issues,
        evaluator=evaluator,
        evaluation_id=evaluation_id or None,
        version=version,
    )
    return RedirectResponse(f"/plan?plan={quote(plan)}&saved=evaluation#evaluations", status_code=303)


# --- the report and the export ------------------------------------------------------------------------


def _report(store, access: Access, settings, district: str | None, year: int | None) -> Response:
    snap = current(store)
    year = year or years.build_year(snap)
    if year is None:
        raise ApiError(422, "年度を指定してください")
    data = years.report_data(
        store,
        access,
        municipality=_municipality(access, settings),
        year=year,
        district=district,
        max_small=settings.suppress_max,
    )
    name = f"progress_{year}{'_' + district if district else ''}.pdf"
    return Response(
        progress_report_pdf(data),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.get("/plan/report.pdf", name="plan_report_pdf")
def plan_report_pdf(store: StoreDep, access: AccessDep, settings: SettingsDep, year: Year = None):
    """The annual progress report of the municipality (PDF; public: small counts suppressed)."""
    return _report(store, access, settings, None, year)


@router.get("/districts/{code}/plan/report.pdf", name="district_plan_report_pdf")
def district_plan_report_pdf(
    code: Code, store: StoreDep, access: AccessDep, settings: SettingsDep, year: Year = None
):
    """The annual progress report of a district (PDF)."""
    return _report(store, access, settings, code, year)


@router.get("/plan/export.xlsx", name="plan_export_xlsx")
def plan_export_xlsx(store: StoreDep, access: AccessDep, settings: SettingsDep, plan: PlanKey = None):
    """The plan table as an Excel workbook, in the layout it was imported in."""
    return _export(store, access, settings, plan, ExportFormat.xlsx)


@router.get("/plan/export.csv", name="plan_export_csv")
def plan_export_csv(store: StoreDep, access: AccessDep, settings: SettingsDep, plan: PlanKey = None):
    """The plan table as CSV (UTF-8 with BOM), in the layout it was imported in."""
    return _export(store, access, settings, plan, ExportFormat.csv)


def _export(store, access: Access, settings, plan: str | None, fmt: ExportFormat) -> Response:
    _, table, _, _ = years.plan_table(store, _municipality(access, settings), plan=plan)
    if table is None:
        raise ApiError(404, "計画の年次表がありません")
    with tempfile.TemporaryDirectory() as folder:
        path = write_table(table, FilePath(folder) / f"plan.{fmt.value}")
        data = path.read_bytes()
    media = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if fmt == ExportFormat.xlsx
        else "text/csv; charset=utf-8"
    )
    filename = quote(f"{table.name}_年次計画.{fmt.value}")
    return Response(
        data, media_type=media, headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"}
    )


# --- JSON ------------------------------------------------------------------------------------------------


@router.get("/api/history", name="city_history", tags=["計画・指標"])
def city_history(store: StoreDep, access: AccessDep, settings: SettingsDep):
    """The municipality's karte figures per fiscal year (public: small counts suppressed)."""
    return JSONResponse(
        years.trend(
            store, None, access, municipality=_municipality(access, settings), max_small=settings.suppress_max
        )
    )


@router.get("/api/districts/{code}/history", name="district_history", tags=["計画・指標"])
def district_history(code: Code, store: StoreDep, access: AccessDep, settings: SettingsDep):
    """A district's karte figures per fiscal year beside the city's, and the projection of its elderly
    (an estimate)."""
    data = years.trend(
        store, code, access, municipality=_municipality(access, settings), max_small=settings.suppress_max
    )
    data["projection"] = years.projection(store, code, access, max_small=settings.suppress_max)
    return JSONResponse(data)


@router.get("/api/indicators", name="indicators_json", tags=["計画・指標"])
def indicators_json(
    store: StoreDep,
    access: AccessDep,
    settings: SettingsDep,
    district: Annotated[str | None, Query(pattern=CODE_PATTERN, max_length=32)] = None,
    year: Year = None,
):
    """The activity indicators with baseline, targets, values and attainment."""
    items = years.indicator_list(
        store,
        access,
        municipality=_municipality(access, settings),
        district=district,
        year=year,
        max_small=settings.suppress_max,
    )
    return JSONResponse({"district": district, "year": year, "indicators": items})
