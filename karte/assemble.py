"""Assemble the karte of each district: base stats, register summary, cooperators, services,
shelters, as one JSON-ready dict.

The assembled karte holds aggregates and public resource lists only. Personal rows (the consented
register, the cooperator roster with contacts) are added by :func:`personal_section` on request,
for users allowed to see them; they are never stored inside the karte itself.
"""

from __future__ import annotations

import datetime as dt
import json

import geopandas as gpd
import pandas as pd

from gis.overlay import locate_points
from karte.basestats import measure_rows
from karte.domain.gaps import ANALYSED
from karte.domain.layers import MUNICIPALITY, split_list
from karte.domain.schema import (
    CONSENT_JA,
    FREQUENCY_JA,
    HELP_JA,
    PLAN_STATUS_JA,
    ROLE_JA,
    SERVICE_JA,
    Consent,
    HelpKind,
    PlanStatus,
    Role,
    ServiceKind,
)

KARTE_SCHEMA = "karte/1"


def fiscal_year(day: dt.date) -> int:
    """Japanese fiscal year (年度): April to March."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_label(year: int) -> str:
    """2026 -> 令和8年度 (Reiwa began in 2019)."""
    r = year - 2018
    return f"令和{'元' if r == 1 else r}年度"


def assemble_kartes(
    *,
    districts: gpd.GeoDataFrame,
    stats: pd.DataFrame,
    city: pd.Series,
    register: pd.DataFrame,
    cooperators: pd.DataFrame,
    services: pd.DataFrame,
    shelters: gpd.GeoDataFrame,
    emergency_sites: gpd.GeoDataFrame,
    meta: dict,
    municipality_names: dict[str, str] | None = None,
) -> dict[str, dict]:
    """One karte dict per district code (``municipality_names``: JIS code -> name, for the
    district block's ``municipality``)."""
    municipality_names = municipality_names or {}
    shelter_district = locate_points(shelters, districts, "district_code")
    site_district = locate_points(emergency_sites, districts, "district_code")
    kartes = {}
    for d in districts.itertuples():
        code = d.district_code
        row = stats.loc[code] if code in stats.index else pd.Series(dtype="Int64")
        reg = register[register["district_code"] == code]
        coop = cooperators[cooperators["district_code"] == code]
        serv = services[services["district_code"] == code]
        municipality = getattr(d, MUNICIPALITY, None)
        kartes[code] = {
            "schema": KARTE_SCHEMA,
            "district": {
                "code": code,
                "name": d.district_name,
                "municipality": {"code": municipality, "name": municipality_names.get(municipality)},
                "standin": str(d.district_name).startswith("（仮）"),
                "small_areas": int(d.small_areas) if hasattr(d, "small_areas") else None,
                "area_km2": round(d.geometry.area / 1e6, 2),
                "concealed_areas": _int(row.get("concealed_areas")),
            },
            "fiscal_year": meta["fiscal_year"],
            "fiscal_year_label": fiscal_year_label(meta["fiscal_year"]),
            "data_date": meta["data_date"],
            "built_at": meta["built_at"],
            "synthetic": meta["synthetic"],
            # what every figure comes from, and as of when (karte.history.sources_block)
            "sources": meta.get("sources"),
            "base": measure_rows(row, city),
            "register": register_summary(reg),
            "cooperators": cooperator_summary(coop),
            "services": service_list(serv),
            "shelters": shelter_list(shelters[(shelter_district == code).to_numpy()]),
            "emergency_sites": {
                "count": int((site_district == code).sum()),
                "names": sorted(emergency_sites.loc[(site_district == code).to_numpy(), "name"]),
            },
        }
    return kartes


def kartes_frame(kartes: dict[str, dict]) -> pd.DataFrame:
    """The ``kartes`` layer: one row per district with its municipality and the karte as JSON
    text (byte for byte what views read back)."""
    return pd.DataFrame({
        "district_code": list(kartes),
        MUNICIPALITY: [k["district"]["municipality"]["code"] for k in kartes.values()],
        "karte_json": [json.dumps(k, ensure_ascii=False) for k in kartes.values()],
    })


def register_summary(reg: pd.DataFrame) -> dict:
    """Counts only: by consent state, plan status, supporter assigned, needs."""
    consent = reg["consent"].value_counts()
    plans = reg["plan_status"].value_counts()
    # astype(bool): mapped over an empty text column (a district with no support-needer) pandas
    # keeps the text dtype, whose sum is "" rather than 0
    shareable = reg["consent"].map(lambda c: Consent(c).shareable).astype(bool)
    has_supporter = reg["supporter_ids"].map(lambda s: bool(split_list(s))).astype(bool)
    return {
        "total": len(reg),
        "shareable": int(shareable.sum()),
        "by_consent": [{"key": str(c), "label": CONSENT_JA[c], "count": int(consent.get(str(c), 0))}
                       for c in Consent],
        "by_plan": [{"key": str(p), "label": PLAN_STATUS_JA[p], "count": int(plans.get(str(p), 0))}
                    for p in PlanStatus],
        "with_supporter": int(has_supporter.sum()),
        "needs_care_level": int(reg["care_level"].notna().sum()),
        "needs_disability": int(reg["disability_kind"].notna().sum()),
        "needs_medical_devices": int(reg["medical_devices"].notna().sum()),
    }


def cooperator_summary(coop: pd.DataFrame) -> dict:
    roles = coop["role"].value_counts()
    helps: dict[str, int] = {}
    for kinds in coop["help_kinds"]:
        for k in split_list(kinds):
            helps[k] = helps.get(k, 0) + 1
    # astype(bool): an empty district's mask is an empty object Series, which pandas would take
    # as a column selection rather than a row mask
    offers_evac = coop["help_kinds"].map(lambda s: HelpKind.EVACUATION.value in split_list(s))
    evac = coop[offers_evac.astype(bool)]
    return {
        "total": len(coop),
        "by_role": [{"key": str(r), "label": ROLE_JA[r], "count": int(roles.get(str(r), 0))}
                    for r in Role],
        "by_help": [{"key": str(h), "label": HELP_JA[h], "count": helps.get(str(h), 0)}
                    for h in HelpKind],
        "evacuation_capacity": int(pd.to_numeric(evac["capacity"]).sum()),
    }


def service_list(serv: pd.DataFrame) -> list[dict]:
    order = {str(k): i for i, k in enumerate(ServiceKind)}
    rows = serv.assign(_o=serv["kind"].map(order)).sort_values(["_o", "name"])
    return [
        {
            "service_id": s.service_id, "kind": s.kind, "kind_ja": SERVICE_JA[ServiceKind(s.kind)],
            "name": s.name, "operator": s.operator, "venue": s.venue,
            "frequency": s.frequency, "frequency_ja": FREQUENCY_JA.get(s.frequency, s.frequency),
            "schedule": s.schedule, "contact": s.contact, "target": s.target,
        }
        for s in rows.itertuples()
    ]


def shelter_list(shelters: pd.DataFrame) -> list[dict]:
    rows = shelters.sort_values(["welfare", "name"], ascending=[False, True])
    return [{"shelter_id": s.shelter_id, "name": s.name, "address": s.address,
             "welfare": bool(s.welfare), "accepts": _text(s.accepts)} for s in rows.itertuples()]


def personal_section(register: pd.DataFrame, cooperators: pd.DataFrame, *,
                     include_unconsented: bool = False) -> dict:
    """The district's personal rows for authorised users: the register (consented rows only unless
    ``include_unconsented``, which only city staff may ask for) and the cooperator roster."""
    shareable = register["consent"].map(lambda c: Consent(c).shareable)
    reg = register if include_unconsented else register[shareable]
    names = dict(zip(cooperators["cooperator_id"], cooperators["name"], strict=True))
    people = [
        {
            "person_id": r.person_id, "name": r.name, "kana": r.kana, "address": r.address,
            "birth_date": r.birth_date, "care_level": _text(r.care_level),
            "disability": " ".join(x for x in (_text(r.disability_kind), _text(r.disability_grade))
                                   if x) or None,
            "mobility": r.mobility, "medical_devices": _text(r.medical_devices),
            "consent_ja": CONSENT_JA[Consent(r.consent)],
            "plan_ja": PLAN_STATUS_JA[PlanStatus(r.plan_status)],
            "supporters": [names.get(s, s) for s in split_list(r.supporter_ids)],
            "shelter_id": _text(r.shelter_id),
        }
        for r in reg.sort_values("kana").itertuples()
    ]
    roster = [
        {"cooperator_id": c.cooperator_id, "role_ja": ROLE_JA[Role(c.role)], "name": c.name,
         "phone": c.phone, "help_ja": [HELP_JA[HelpKind(h)] for h in split_list(c.help_kinds)],
         "capacity": int(c.capacity)}
        for c in cooperators.sort_values(["role", "cooperator_id"]).itertuples()
    ]
    return {"register": people, "cooperators": roster}


def gap_column(kind: str) -> str:
    """The districts layer's count column of gap kind ``kind`` (``gap_no_supporter``)."""
    return f"gap_{kind}"


def gap_rate_column(kind: str) -> str:
    """The districts layer's rate column of gap kind ``kind`` (``gap_no_supporter_rate``)."""
    return f"gap_{kind}_rate"


#: Every per-kind column of the districts layer, count then rate, in the registry's order.
GAP_COLUMNS: tuple[str, ...] = tuple(c for k in ANALYSED for c in (gap_column(k), gap_rate_column(k)))


def district_gap_columns(district_gaps: pd.DataFrame, codes) -> pd.DataFrame:
    """Each gap kind's count and rate per district (避難支援の空白の種類別の人数と割合).

    Parameters
    ----------
    district_gaps
        :func:`gis.gaps.gaps_by_district` (the build snapshot's ``district_gaps``): indexed by
        ``district_code``, ``persons`` and one count column per kind.
    codes
        The district codes to give a row to (a district absent from ``district_gaps`` holds no
        support-needer: counts 0, rates ``None``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``district_code``: for every kind of :data:`karte.domain.gaps.ANALYSED`
        :func:`gap_column` (people with that gap) and :func:`gap_rate_column` (that count divided
        by the district's support-needers, consented or not; ``None`` when there is nobody).
    """
    index = pd.Index([str(c) for c in codes], name="district_code")
    persons = _counts(district_gaps, "persons", index)
    out = {}
    for kind in ANALYSED:
        count = _counts(district_gaps, kind, index)
        out[gap_column(kind)] = count
        out[gap_rate_column(kind)] = [None if p == 0 else n / p for n, p in zip(count, persons, strict=True)]
    return pd.DataFrame(out, index=index)


def _counts(table: pd.DataFrame, column: str, index: pd.Index) -> list[int]:
    if column not in table.columns:
        return [0] * len(index)
    values = pd.to_numeric(table[column], errors="coerce").reindex(index)
    return [0 if pd.isna(v) else int(v) for v in values]


def _int(v):
    return None if v is None or pd.isna(v) else int(v)


def _text(v):
    """Text or None (store round trips turn missing text into NaN)."""
    return None if v is None or (isinstance(v, float) and pd.isna(v)) or v == "" else str(v)
