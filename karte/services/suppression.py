"""Small counts hidden from the public: one rule for every output (JSON, CSV, HTML, OGC, PDF).

A count of people from 1 to ``max_small`` (``KARTE_SUPPRESS_MAX``, default 2) is shown as
:data:`~karte.domain.access.SUPPRESSED` (秘匿) to public viewers, and a rate or share computed from
it is hidden too (``None``: it would give the count away). Which numbers are counts of people is
decided here: in a karte by :data:`KARTE_COUNTS` and :data:`KARTE_COUNT_LISTS`, in a layer every
numeric column that is not a rate and not listed in :data:`NOT_COUNTS` (a new count column is
safe by default; a new non-count must be listed).
"""

from __future__ import annotations

import math

import pandas as pd

from karte.domain.access import SUPPRESSED
from karte.domain.errors import KarteError

#: Numeric columns of the public layers that are *not* counts of people (never suppressed).
NOT_COUNTS = frozenset({"small_areas", "area_km2", "salons", "cells", "radius_m"})

#: Rate column -> the count column it would give away (hidden together).
RATE_OF = {
    "elderly_rate": "elderly",
    "gap_rate": "at_risk",
    "uncovered_share": "uncovered_elderly",
    "uncovered_elderly_share": "uncovered_elderly",
    "uncovered_75_plus_share": "uncovered_75_plus",
}

#: karte paths whose numbers are counts of people: (section, key) of dicts or lists of dicts.
KARTE_COUNTS = {
    "register": ("total", "shareable", "with_supporter", "needs_care_level", "needs_disability",
                 "needs_medical_devices"),
    "cooperators": ("total", "evacuation_capacity"),
}
KARTE_COUNT_LISTS = (("register", "by_consent"), ("register", "by_plan"), ("cooperators", "by_role"),
                     ("cooperators", "by_help"))


def small(count, max_small: int):
    """``count`` as a public viewer sees it: :data:`SUPPRESSED` for 1..``max_small``."""
    if count is None or isinstance(count, str):
        return count
    return SUPPRESSED if 1 <= int(count) <= max_small else count


def rate_of(rate, count, max_small: int):
    """A rate, hidden (None) when its count is suppressed."""
    return None if small(count, max_small) == SUPPRESSED else rate


def suppress_karte(karte: dict, max_small: int, *, snapshot=None) -> dict:
    """The karte (the stored ``karte/1`` plus ``gaps`` and ``coverage``) as the public sees it;
    changed in place and returned. ``snapshot`` (:class:`karte.snapshot.Snapshot`) is the build
    the karte belongs to: the whole city's figures, for rules that look beyond one district."""
    for item in karte["base"]:
        if item.get("unit") not in ("人", "世帯"):
            continue
        item["value"] = small(item["value"], max_small)
        item["city"] = small(item["city"], max_small)
        if item["value"] == SUPPRESSED:
            for key in ("rate", "share_of_city"):
                if key in item:
                    item[key] = None
    for section, keys in KARTE_COUNTS.items():
        for key in keys:
            if key in karte.get(section, {}):
                karte[section][key] = small(karte[section][key], max_small)
    for section, key in KARTE_COUNT_LISTS:
        for item in karte.get(section, {}).get(key, []):
            item["count"] = small(item["count"], max_small)
    for row in karte.get("gaps", []):
        row["count"] = small(row["count"], max_small)
        if row["count"] == SUPPRESSED:
            row["rate"] = None
    cov = karte.get("coverage")
    if cov:
        for count, share in (("uncovered_elderly", "uncovered_elderly_share"),
                             ("uncovered_75_plus", "uncovered_75_plus_share"), ("elderly", None)):
            cov[count] = small(cov[count], max_small)
            if share and cov[count] == SUPPRESSED:
                cov[share] = None
    return karte


def suppress_frame(frame: pd.DataFrame, layer: str, max_small: int, *, snapshot=None) -> pd.DataFrame:
    """A copy of a public layer with its counts of people from 1 to ``max_small`` as
    :data:`SUPPRESSED` (those columns become ``object``) and the rates beside them ``None``.
    ``snapshot``: the build the layer belongs to (as for :func:`suppress_karte`)."""
    geometry = getattr(frame, "_geometry_column_name", None)
    rates = [c for c in frame.columns if is_rate(c)]
    columns = [c for c in frame.columns
               if c not in NOT_COUNTS and c not in rates and c != geometry
               and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    if not columns:
        return frame
    out = frame.copy()
    for col in columns:
        values = [None if _missing(v) else small(round(float(v)), max_small) for v in out[col]]
        out[col] = pd.Series(values, index=out.index, dtype=object)
    for rate in rates:
        count = RATE_OF.get(rate)
        if count is None:
            raise KarteError(f"rate column {rate} of layer {layer} names no count (suppression.RATE_OF)")
        if count in out.columns:
            out[rate] = out[rate].astype(object).where(out[count] != SUPPRESSED, None)
    return out


def is_rate(column: str) -> bool:
    return column.endswith(("_rate", "share"))


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
