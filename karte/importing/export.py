"""The rows of a layer in the headers ``karte import`` reads: what the CSV downloads write.

A downloaded register, roster, service list or shelter list imports back unchanged
(``karte import register FILE --district D`` reports no change): every column carries the first
Japanese header of :data:`karte.importing.headers.FIELDS`, every coded value the Japanese label
the import reads (:mod:`karte.domain.schema`'s labels, which :mod:`karte.importing.values`
accepts), dates in 和暦 (``昭和16年6月27日``), yes/no as ``有``/``無``, lists separated by ``、``,
supporter and shelter ids as ids, and the location: latitude and longitude (WGS84) for points
known exactly, the address alone for a point at its town's representative point (so the import
places it there again, with the same precision).

The aggregate tables of a karte (``base``, ``register_summary``, ``cooperator_summary``) get
Japanese headers from :data:`AGGREGATE_HEADERS`. Pure: frames and dicts in, header and rows out;
the CSV writer (:func:`karte.render.csvfile.csv_bytes`) neutralises formula-looking cells.
"""

from __future__ import annotations

import datetime as dt
import math

import geopandas as gpd
import pandas as pd

from gis import crs
from karte.domain.layers import split_list
from karte.domain.schema import (
    CONSENT_JA,
    FREQUENCY_JA,
    HELP_JA,
    MOBILITY_JA,
    PLAN_STATUS_JA,
    ROLE_JA,
    SERVICE_JA,
    LocationPrecision,
)
from karte.importing.headers import export_header
from karte.importing.values import ERAS

#: The fields each downloadable point layer writes, in order (the import's field names).
EXPORT_FIELDS: dict[str, tuple[str, ...]] = {
    "register": (
        "person_id", "name", "kana", "address", "latitude", "longitude", "birth_date", "care_level",
        "disability_kind", "disability_grade", "elderly_only_household", "intractable_disease", "infant",
        "medical_devices", "mobility", "consent", "consent_date", "supporter_ids", "plan_status",
        "shelter_id", "emergency_contact", "district_code", "key_code",
    ),
    "cooperators": (
        "cooperator_id", "role", "name", "phone", "latitude", "longitude", "help_kinds", "capacity",
        "district_code",
    ),
    "services": (
        "service_id", "kind", "name", "operator", "venue", "address", "latitude", "longitude",
        "frequency", "schedule", "contact", "target", "district_code",
    ),
    "shelters": ("shelter_id", "name", "address", "latitude", "longitude", "welfare", "accepts", "note"),
}

#: Coded fields and the labels written for them (the same labels the import reads back).
LABELS: dict[str, dict] = {
    "consent": CONSENT_JA, "plan_status": PLAN_STATUS_JA, "mobility": MOBILITY_JA, "role": ROLE_JA,
    "kind": SERVICE_JA, "frequency": FREQUENCY_JA, "help_kinds": HELP_JA,
}
DATES = ("birth_date", "consent_date")
FLAGS = ("elderly_only_household", "intractable_disease", "infant", "welfare")
LISTS = ("supporter_ids", "help_kinds")
#: Separator of list cells (the import splits on ``、`` ``;`` ``,`` ``/`` and spaces).
LIST_JOIN = "、"
#: Decimals of latitude and longitude (1e-7 degree is about a centimetre).
COORDINATE_DECIMALS = 7

#: Japanese headers of the aggregate tables of a karte (column key -> header).
AGGREGATE_HEADERS: dict[str, dict[str, str]] = {
    "base": {"key": "項目コード", "label": "項目", "unit": "単位", "value": "地区の値", "rate": "地区の割合",
             "share_of_city": "市全体に占める割合", "city": "市全体の値", "city_rate": "市全体の割合"},
    "summary": {"section": "区分", "key": "項目コード", "label": "項目", "count": "人数"},
}


def layer_table(kind: str, frame: pd.DataFrame) -> tuple[list[str], list[list]]:
    """The rows of a ``register``, ``cooperators``, ``services`` or ``shelters`` frame (the store's
    columns, any CRS) as the import reads them: ``(header, rows)``, rows sorted by id."""
    fields = EXPORT_FIELDS[kind]
    header = [export_header(kind, f) for f in fields]
    if not len(frame):
        return header, []
    lon, lat = _coordinates(frame)
    precision = frame["location_precision"] if "location_precision" in frame.columns else None
    records = frame.drop(columns=[frame.geometry.name] if isinstance(frame, gpd.GeoDataFrame) else [])
    rows = []
    for i, record in enumerate(records.to_dict("records")):
        exact = precision is None or str(precision.iloc[i]) == LocationPrecision.EXACT
        row = []
        for name in fields:
            if name == "latitude":
                row.append(_round(lat[i]) if exact else None)
            elif name == "longitude":
                row.append(_round(lon[i]) if exact else None)
            else:
                row.append(cell(name, record.get(name)))
        rows.append(row)
    rows.sort(key=lambda r: str(r[0]))
    return header, rows


def cell(name: str, value):
    """One stored value as the import reads it back (``None`` for an empty cell)."""
    if _missing(value):
        return None
    if name in LISTS:
        items = split_list(value) if isinstance(value, str) else list(value)
        labels = LABELS.get(name)
        return LIST_JOIN.join(str(labels.get(x, x)) if labels else str(x) for x in items) or None
    if name in LABELS:
        return LABELS[name].get(str(value), str(value))
    if name in DATES:
        return wareki_date(value)
    if name in FLAGS:
        return "有" if _truthy(value) else "無"
    if name == "capacity":
        return int(value)
    return value


def wareki_date(value) -> str | None:
    """``1941-06-27`` -> ``昭和16年6月27日`` (the era in force on that day; the first year 元年)."""
    if _missing(value):
        return None
    day = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
    for era, (start, _letter) in sorted(ERAS.items(), key=lambda e: e[1][0], reverse=True):
        if day >= start:
            n = day.year - start.year + 1
            return f"{era}{'元' if n == 1 else n}年{day.month}月{day.day}日"
    return day.isoformat()  # before Meiji: the western date (the import reads it too)


def karte_table(table: str, karte: dict) -> tuple[list[str], list[list]]:
    """An aggregate table of a karte dict: ``base``, ``register_summary`` or ``cooperator_summary``,
    with Japanese headers (:data:`AGGREGATE_HEADERS`)."""
    if table == "base":
        keys = list(AGGREGATE_HEADERS["base"])
        return [AGGREGATE_HEADERS["base"][k] for k in keys], [[m.get(k) for k in keys] for m in karte["base"]]
    block = karte["register" if table == "register_summary" else "cooperators"]
    rows: list[list] = []
    for key, value in block.items():
        if isinstance(value, list):
            rows += [[key, item["key"], item["label"], item["count"]] for item in value]
        else:
            rows.append([key, "", "", value])
    return list(AGGREGATE_HEADERS["summary"].values()), rows


def _coordinates(frame: pd.DataFrame):
    n = len(frame)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None:
        return [None] * n, [None] * n
    geo = frame.geometry.to_crs(crs.WGS84)
    lon = [None if g is None or g.is_empty else g.x for g in geo]
    lat = [None if g is None or g.is_empty else g.y for g in geo]
    return lon, lat


def _round(value):
    return None if value is None else round(float(value), COORDINATE_DECIMALS)


def _missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value == ""


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "yes")
    return bool(value)
