"""The JSON, GeoJSON, CSV and PDF API of the district kartes.

Thin: every route asks :mod:`karte.services` what the user may see and only formats it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from api.deps import AccessDep, MaxSmallDep, StoreDep
from api.errors import ApiError
from karte.domain.access import Access
from karte.domain.schema import Edition
from karte.importing import export
from karte.render.csvfile import csv_bytes
from karte.services import copies, kartes, sheets
from karte.services.layers import PERSONAL, WEB_LAYERS, layer_geojson, layer_view
from karte.store.base import Store

router = APIRouter()

#: District codes: letters, digits, ``_`` and ``-`` (S01, S42, 0201…); anything else is a 422.
CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
Code = Annotated[str, Path(pattern=CODE_PATTERN, max_length=32, description="地区コード（例: S05）",
                           examples=["S05"])]
GEOJSON = "application/geo+json"
#: Simplification of polygons for the web, metres (district pages stay small).
WEB_TOLERANCE_M = 5.0


#: The web layers as a path parameter (from the one catalogue, :data:`karte.services.layers.WEB_LAYERS`).
WebLayer = StrEnum("WebLayer", {name: name for name in WEB_LAYERS})


class Table(StrEnum):
    base = "base"
    register_summary = "register_summary"
    cooperator_summary = "cooperator_summary"
    services = "services"
    shelters = "shelters"
    register = "register"
    cooperators = "cooperators"


class Paper(StrEnum):
    A4 = "A4"
    A3 = "A3"


class DistrictSummary(BaseModel):
    code: str
    name: str
    standin: bool
    area_km2: float | None
    population: int | str | None
    elderly_rate: float | str | None
    support_needers: int | str | None
    gap_rate: float | None
    salons: int | None
    uncovered_share: float | None


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


_GEOJSON_DOC = {200: {"content": {GEOJSON: {"schema": {"type": "object"}}},
                      "description": "GeoJSON FeatureCollection (EPSG:4326)"}}
_ERRORS = {403: {"description": "権限がありません"}, 404: {"description": "地区やレイヤがありません"}}


@router.get("/api/health", tags=["api"], summary="動作確認", name="health")
def health(store: StoreDep) -> dict:
    return {"status": "ok", "store": "ready" if store.exists() else "empty"}


@router.get("/api/districts", response_model=list[DistrictSummary], tags=["districts"],
            summary="地区の一覧", name="districts")
def list_districts(store: StoreDep, access: AccessDep, max_small: MaxSmallDep) -> list[dict]:
    """Every district with its population, ageing rate and support-needers (public: counts of
    1 to ``KARTE_SUPPRESS_MAX``, default 2, as "秘匿")."""
    return kartes.district_list(store, access, max_small=max_small)


@router.get("/api/districts/{code}", tags=["districts"], summary="地区カルテ (JSON)", name="karte",
            responses=_ERRORS)
def karte(code: Code, store: StoreDep, access: AccessDep, max_small: MaxSmallDep) -> dict[str, Any]:
    """The district's karte (schema ``karte/1``); users who may see the district's personal rows
    also get ``personal`` (register and cooperator roster), and the read is logged."""
    return kartes.karte_view(store, code, access, max_small=max_small)


@router.get("/api/districts/{code}/layers/{layer}.geojson", tags=["layers"], name="district_layer",
            summary="地区のレイヤ (GeoJSON)", response_class=GeoJSONResponse,
            responses={**_GEOJSON_DOC, **_ERRORS})
def district_layer(code: Code, layer: WebLayer, store: StoreDep, access: AccessDep,
                   max_small: MaxSmallDep) -> Response:
    """One layer of one district, simplified (5 m) and rounded (6 decimals) for web maps.
    ``register`` and ``cooperators`` only for users who may see the district's personal rows."""
    _check_personal(store, layer, access, code)
    return Response(layer_geojson(store, layer.value, access, district=code, max_small=max_small,
                                  tolerance_m=WEB_TOLERANCE_M), media_type=GEOJSON)


@router.get("/api/layers/{layer}.geojson", tags=["layers"], name="city_layer",
            summary="市全体のレイヤ (GeoJSON)", response_class=GeoJSONResponse,
            responses={**_GEOJSON_DOC, **_ERRORS})
def city_layer(layer: WebLayer, store: StoreDep, access: AccessDep,
               max_small: MaxSmallDep) -> Response:
    """One layer of the whole city (``districts`` carries the overview's measures:
    ``uncovered_share``, ``gap_rate``, ``elderly_rate``). Personal layers: the rows the user may
    see (a district member: their own district)."""
    _check_personal(store, layer, access, None)
    return Response(layer_geojson(store, layer.value, access, max_small=max_small,
                                  tolerance_m=WEB_TOLERANCE_M), media_type=GEOJSON)


@router.get("/api/districts/{code}/tables/{table}.csv", tags=["districts"], name="karte_csv",
            summary="カルテの表 (CSV, UTF-8 BOM)", response_class=Response,
            responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "CSV (UTF-8 with BOM, opens in Excel)"}, **_ERRORS})
def karte_csv(code: Code, table: Table, store: StoreDep, access: AccessDep,
              max_small: MaxSmallDep) -> Response:
    """A table of the karte as CSV: ``base``, ``register_summary``, ``cooperator_summary``,
    ``services``, ``shelters`` for everyone (public: small counts "秘匿"); ``register`` and
    ``cooperators`` (personal, logged) for users who may see the district's personal rows. The
    point layers carry the headers, labels, ids and coordinates ``karte import`` reads, so a
    download imports back unchanged (``karte import register FILE --district CODE``). A cell
    that a spreadsheet would run as a formula (``=…``, ``+…``, ``-…``, ``@…``) starts with ``'``."""
    header, rows = _table(store, code, table, access, max_small)
    body = csv_bytes(header, rows)  # formula-looking text neutralised (karte.render.csvfile)
    name = f"{code}-{table.value}.csv"
    if table.value in PERSONAL:  # a numbered copy in the hand-out ledger
        copy_id = copies.record_export(store, access, kind="csv", district=code, layer=table.value,
                                       rows=len(rows))
        if copy_id:
            name = f"{code}-{table.value}-{copy_id}.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/districts/{code}/sheet.pdf", tags=["districts"], name="sheet_pdf",
            summary="地区シート (PDF)", response_class=Response,
            responses={200: {"content": {"application/pdf": {"schema": {"type": "string",
                                                                        "format": "binary"}}},
                             "description": "PDF"}, **_ERRORS})
def sheet_pdf(code: Code, store: StoreDep, access: AccessDep, max_small: MaxSmallDep,
              edition: Annotated[Edition, Query(description="public 公開版 / confidential 取扱注意 / "
                                                            "drill 訓練用")] = Edition.PUBLIC,
              paper: Paper = Paper.A4) -> Response:
    """The printed district sheet. ``confidential`` and ``drill`` need a user who may see the
    district's personal rows (403 otherwise); their reads are logged."""
    if code not in kartes.district_codes(store):
        raise ApiError(404, f"地区 {code} はありません")
    data = sheets.district_sheet_pdf(store, code, edition=edition, paper=paper.value, access=access,
                                     max_small=max_small)
    suffix = "" if paper == Paper.A4 else f"-{paper.value}"
    headers = {"Content-Disposition": f'inline; filename="{code}-{edition.value}{suffix}.pdf"'}
    if edition.personal:
        headers["Cache-Control"] = "private, no-store"
    return Response(data, media_type="application/pdf", headers=headers)


def _check_personal(store: Store, layer: WebLayer, access: Access, code: str | None) -> None:
    """A clear 401/403 instead of an empty layer when the user may see no personal rows."""
    if layer.value not in PERSONAL:
        return
    if code is not None and code not in kartes.district_codes(store):
        raise ApiError(404, f"地区 {code} はありません")
    if not access.sees_personal:
        raise ApiError(401 if access.user == "anonymous" else 403,
                       "個人情報を見るにはログインが必要です",
                       headers={"WWW-Authenticate": "Bearer"} if access.user == "anonymous" else None)
    if code is not None and not access.may_see_district_rows(code):
        raise ApiError(403, "この地区の個人情報を見る権限がありません")


# --- tables ---------------------------------------------------------------------------------------

#: The point layers downloaded in the import's own headers (:mod:`karte.importing.export`).
LAYER_TABLES = (Table.register, Table.cooperators, Table.services, Table.shelters)


def _table(store: Store, code: str, table: Table, access: Access, max_small: int):
    """(header, rows) of a CSV table: the point layers as ``karte import`` reads them (personal ones
    checked first, read as the viewer and logged), the aggregates with Japanese headers."""
    if table in LAYER_TABLES:
        if table.value in PERSONAL:
            _check_personal(store, WebLayer(table.value), access, code)
        frame = layer_view(store, table.value, access, district=code, max_small=max_small)
        return export.layer_table(table.value, frame)
    return export.karte_table(table.value, _public_karte(store, code, access, max_small))


def _public_karte(store: Store, code: str, access: Access, max_small: int) -> dict:
    """The karte's aggregate tables only: nothing personal is read (or logged) for them."""
    return kartes.karte_view(store, code, access, max_small=max_small, include_personal=False)
