"""Assemble the karte of each district: base stats, register summary, cooperators, services,
shelters, as one JSON-ready dict.

The assembled karte holds aggregates and public resource lists only. Personal rows (the consented
register, the cooperator roster with contacts) are added by :func:`personal_section` on request,
for users allowed to see them; they are never stored inside the karte itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import geopandas as gpd
import numpy as np
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
    district block's ``municipality``).

    Every layer is split by district once (:func:`_positions`) and summarised from those
    positions, rather than masked once per district: the 42 masks of a 20,000-row register cost
    more than the summaries themselves. The blocks are those :func:`register_summary`,
    :func:`cooperator_summary`, :func:`service_list` and :func:`shelter_list` give for the
    district's rows, value for value."""
    municipality_names = municipality_names or {}
    codes = list(districts["district_code"])
    registers = register_summaries(register, codes)
    coops = cooperator_summaries(cooperators, codes)
    services_by = service_lists(services, codes)
    shelters_by = shelter_lists(shelters, locate_points(shelters, districts, "district_code"), codes)
    site_names = emergency_sites["name"].to_numpy(dtype=object)
    sites = _positions(locate_points(emergency_sites, districts, "district_code"), codes)
    kartes = {}
    for d in districts.itertuples():
        code = d.district_code
        row = stats.loc[code] if code in stats.index else pd.Series(dtype="Int64")
        municipality = getattr(d, MUNICIPALITY, None)
        in_sites = sites.get(code, _NONE)
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
            "register": registers[code],
            "cooperators": coops[code],
            "services": services_by[code],
            "shelters": shelters_by[code],
            "emergency_sites": {"count": len(in_sites), "names": sorted(site_names[in_sites])},
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
    return _register_blocks(reg, {None: np.arange(len(reg))})[None]


def register_summaries(register: pd.DataFrame, codes) -> dict[str, dict]:
    """:func:`register_summary` of each district of ``codes``, from one pass over the register."""
    return _register_blocks(register, _positions(register["district_code"], codes))


def _register_blocks(reg: pd.DataFrame, groups: dict) -> dict:
    """:func:`register_summary` of the rows at each group's positions. A consent word is checked
    (``Consent(c)``) once per district and distinct value, so a bad one fails as it always did;
    the per-row flags are worked out once per distinct cell."""
    consent = reg["consent"].to_numpy(dtype=object)
    plans = reg["plan_status"].to_numpy(dtype=object)
    supported = _flags(reg["supporter_ids"], lambda s: bool(split_list(s)))
    needs = {name: reg[name].notna().to_numpy(dtype=bool)
             for name in ("care_level", "disability_kind", "medical_devices")}
    out = {}
    for key, pos in groups.items():
        by_consent, by_plan = Counter(consent[pos]), Counter(plans[pos])
        out[key] = {
            "total": len(pos),
            "shareable": sum(n for c, n in by_consent.items() if Consent(c).shareable),
            "by_consent": [{"key": str(c), "label": CONSENT_JA[c], "count": by_consent.get(str(c), 0)}
                           for c in Consent],
            "by_plan": [{"key": str(p), "label": PLAN_STATUS_JA[p], "count": by_plan.get(str(p), 0)}
                        for p in PlanStatus],
            "with_supporter": int(supported[pos].sum()),
            "needs_care_level": int(needs["care_level"][pos].sum()),
            "needs_disability": int(needs["disability_kind"][pos].sum()),
            "needs_medical_devices": int(needs["medical_devices"][pos].sum()),
        }
    return out


def cooperator_summary(coop: pd.DataFrame) -> dict:
    """Counts by role and by kind of help, and the evacuation helpers' capacity."""
    return _cooperator_blocks(coop, {None: np.arange(len(coop))})[None]


def cooperator_summaries(cooperators: pd.DataFrame, codes) -> dict[str, dict]:
    """:func:`cooperator_summary` of each district of ``codes``, from one pass over the roster."""
    return _cooperator_blocks(cooperators, _positions(cooperators["district_code"], codes))


def _cooperator_blocks(coop: pd.DataFrame, groups: dict) -> dict:
    """:func:`cooperator_summary` of the rows at each group's positions (a row offering the same
    kind twice counts it twice, as it always did)."""
    roles = coop["role"].to_numpy(dtype=object)
    kinds = coop["help_kinds"].to_numpy(dtype=object)
    evacuates = _flags(coop["help_kinds"], lambda s: HelpKind.EVACUATION.value in split_list(s))
    out = {}
    for key, pos in groups.items():
        by_role = Counter(roles[pos])
        helps: Counter = Counter()
        for text, n in Counter(kinds[pos]).items():
            for k in split_list(text):
                helps[k] += n
        evac = pos[evacuates[pos]]
        out[key] = {
            "total": len(pos),
            "by_role": [{"key": str(r), "label": ROLE_JA[r], "count": by_role.get(str(r), 0)}
                        for r in Role],
            "by_help": [{"key": str(h), "label": HELP_JA[h], "count": helps.get(str(h), 0)}
                        for h in HelpKind],
            "evacuation_capacity": int(pd.to_numeric(coop["capacity"].iloc[evac]).sum()),
        }
    return out


def service_list(serv: pd.DataFrame) -> list[dict]:
    """The services, by kind (in :class:`ServiceKind`'s order) then name."""
    return _service_lists(serv, {None: np.arange(len(serv))})[None]


def service_lists(services: pd.DataFrame, codes) -> dict[str, list[dict]]:
    """:func:`service_list` of each district of ``codes``: the layer sorted once."""
    return _service_lists(services, _positions(services["district_code"], codes))


def _service_lists(serv: pd.DataFrame, groups: dict) -> dict:
    order = {str(k): i for i, k in enumerate(ServiceKind)}
    rank = _rank(serv.assign(_o=serv["kind"].map(order)), ["_o", "name"], [True, True])
    rows = list(serv.itertuples())
    return {key: [_service_item(rows[p]) for p in _in_order(pos, rank)] for key, pos in groups.items()}


def _service_item(s) -> dict:
    return {
        "service_id": s.service_id, "kind": s.kind, "kind_ja": SERVICE_JA[ServiceKind(s.kind)],
        "name": s.name, "operator": s.operator, "venue": s.venue,
        "frequency": s.frequency, "frequency_ja": FREQUENCY_JA.get(s.frequency, s.frequency),
        "schedule": s.schedule, "contact": s.contact, "target": s.target,
    }


def shelter_list(shelters: pd.DataFrame) -> list[dict]:
    """The shelters, welfare shelters first, then by name."""
    return _shelter_lists(shelters, {None: np.arange(len(shelters))})[None]


def shelter_lists(shelters: pd.DataFrame, district: pd.Series, codes) -> dict[str, list[dict]]:
    """:func:`shelter_list` of each district of ``codes`` (``district``: each shelter's district,
    aligned by position): the layer sorted once."""
    return _shelter_lists(shelters, _positions(district, codes))


def _shelter_lists(shelters: pd.DataFrame, groups: dict) -> dict:
    rank = _rank(shelters, ["welfare", "name"], [False, True])
    rows = list(shelters.itertuples())
    return {key: [{"shelter_id": s.shelter_id, "name": s.name, "address": s.address,
                   "welfare": bool(s.welfare), "accepts": _text(s.accepts)}
                  for s in (rows[p] for p in _in_order(pos, rank))]
            for key, pos in groups.items()}


#: No rows.
_NONE = np.array([], dtype=np.intp)


def _positions(keys, codes) -> dict[str, np.ndarray]:
    """The row positions (in row order) holding each of ``codes`` in ``keys``, compared as the
    ``keys == code`` masks they replace (nulls match no code); an empty array for a code no row
    holds."""
    keys = pd.Series(np.asarray(keys, dtype=object))
    found = keys.groupby(keys, sort=False).indices if len(keys) else {}
    return {code: np.asarray(found.get(code, _NONE), dtype=np.intp) for code in codes}


def _flags(column: pd.Series, test) -> np.ndarray:
    """``test`` of each cell as a bool array, called once per distinct value (nulls included)."""
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=False)
    return np.array([bool(test(u)) for u in uniques], dtype=bool)[codes]


def _rank(frame: pd.DataFrame, by: list[str], ascending: list[bool]) -> np.ndarray:
    """Each row's place in ``frame.sort_values(by, ascending=ascending)``. That sort is stable
    (``np.lexsort``), so the rows of a district taken in this order are sorted exactly as
    sorting the district's own rows would sort them."""
    order = frame.reset_index(drop=True).sort_values(by, ascending=ascending).index.to_numpy()
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank


def _in_order(positions: np.ndarray, rank: np.ndarray) -> np.ndarray:
    return positions[np.argsort(rank[positions], kind="stable")]


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
