"""A district's karte and the districts list, as a viewer may see them.

The stored karte (schema ``karte/1``, assembled by the build) plus what the snapshot's analyses
add: ``gaps`` (evacuation-support gaps) and ``coverage`` (salon coverage); public viewers get it
suppressed (:mod:`karte.services.suppression`), authorised viewers of the district its
``personal`` section read from the store as themselves.
"""

from __future__ import annotations

import pandas as pd

from karte.assemble import personal_section
from karte.domain.access import DEFAULT_SUPPRESS_MAX, LEVEL_JA, SUPPRESSED, Access
from karte.domain.gaps import AT_RISK, GAP_KINDS
from karte.domain.layers import Layer
from karte.services import history as trends
from karte.services import layers, suppression
from karte.services.district_data import check_district, sources_now
from karte.services.personal import read_rows
from karte.services.suppression import suppress_karte
from karte.snapshot import Snapshot, current, ratio
from karte.store.base import Store


def karte_view(store: Store, code: str, access: Access, *, include_personal: bool = True,
               max_small: int = DEFAULT_SUPPRESS_MAX, include_trend: bool = False) -> dict:
    """The karte of district ``code`` as ``access`` may see it (a JSON-ready dict).

    It is the stored karte (``district``, ``base``, ``register``, ``cooperators``, ``services``,
    ``shelters``, ``emergency_sites``…) plus:

    * ``gaps``: a list of ``{"key", "label", "count", "rate", "city_rate"}`` (first row
      ``key="persons"``: the support-needers on the register; then every kind of
      :data:`karte.domain.gaps.GAP_KINDS` and ``at_risk``);
    * ``coverage``: ``{"salons", "elderly", "uncovered_elderly", "uncovered_elderly_share",
      "uncovered_75_plus", "uncovered_75_plus_share", "city_uncovered_elderly_share",
      "city_uncovered_75_plus_share"}`` (people rounded);
    * ``viewer``: ``{"user", "level", "level_ja", "personal", "max_small", "suppressed"}``;
    * ``sources``: what every figure comes from and as of when (:func:`karte.history.sources_block`,
      its analysis line with the parameters in force now);
    * with ``include_trend``, ``trend``: the district's figures per fiscal year beside the city's
      (:func:`karte.services.history.trend`) and ``projection`` (the elderly, estimated).

    Viewers of suppressed figures (:func:`karte.services.suppression.applies`: the public, the
    prefecture level, a district member looking at another district): counts from 1 to
    ``max_small`` are :data:`SUPPRESSED` and the rates beside them ``None``; no ``personal`` key.
    Viewers who may see the district's rows (:meth:`Access.may_see_district_rows`), when
    ``include_personal``: ``personal`` =
    ``{"register": [...], "cooperators": [...]}`` from the rows the store gives them (the read is
    logged by the store).

    Raises :class:`~karte.domain.errors.NotFoundError` for an unknown district.
    """
    snap = current(store)
    check_district(snap, code)
    karte = snap.karte(code)
    karte["gaps"] = gap_rows(snap, code)
    karte["coverage"] = coverage_summary(snap, code)
    karte["sources"] = sources_now(snap, karte)
    if suppression.applies(access, code):  # the public, the prefecture, a member of another district
        suppress_karte(karte, max_small, snapshot=snap)
    elif include_personal and access.may_see_district_rows(code):
        reg = read_rows(store, Layer.REGISTER, access, district=code)
        coop = read_rows(store, Layer.COOPERATORS, access, district=code)
        karte["personal"] = personal_section(reg, coop, include_unconsented=True)
    if include_trend:
        municipality = (karte["district"].get("municipality") or {}).get("code") or access.municipality
        karte["trend"] = trends.trend(store, code, access, municipality=municipality, max_small=max_small)
        karte["projection"] = trends.projection(store, code, access, max_small=max_small)
    karte["viewer"] = {"user": access.user, "level": str(access.level), "level_ja": LEVEL_JA[access.level],
                       "personal": "personal" in karte, "max_small": max_small, "suppressed": SUPPRESSED}
    return karte


def district_codes(store: Store) -> list[str]:
    """Every district code of the current build, sorted."""
    return current(store).codes


def districts_table(store: Store, access: Access, *, max_small: int = DEFAULT_SUPPRESS_MAX) -> pd.DataFrame:
    """The districts with their measures, without geometry (the ``districts`` layer's columns,
    see :meth:`karte.snapshot.Snapshot.layer`); public: small counts :data:`SUPPRESSED`."""
    frame = layers.layer_view(store, "districts", access, max_small=max_small)
    return pd.DataFrame(frame.drop(columns=frame.geometry.name))


def district_list(store: Store, access: Access, *, max_small: int = DEFAULT_SUPPRESS_MAX) -> list[dict]:
    """One dict per district, sorted by code: ``code``, ``name``, ``standin``, ``area_km2``,
    ``population``, ``elderly_rate``, ``support_needers``, ``gap_rate``, ``salons``,
    ``uncovered_share`` (public: counts from 1 to ``max_small`` :data:`SUPPRESSED`, rates ``None``)."""
    table = districts_table(store, access, max_small=max_small).sort_values("district_code")
    keep = ("area_km2", "population", "elderly_rate", "support_needers", "gap_rate", "salons",
            "uncovered_share")
    return [{"code": r["district_code"], "name": r["district_name"], "standin": bool(r["standin"]),
             **{k: layers.json_value(r[k]) for k in keep}}
            for r in table.to_dict(orient="records")]


def gap_rows(snap: Snapshot, code: str) -> list[dict]:
    """The district's evacuation-support gaps beside the city's rates (counts only)."""
    gaps = snap.district_gaps
    row = gaps.loc[code] if code in gaps.index else None
    city = gaps.loc["city"] if "city" in gaps.index else None
    out = [{"key": "persons", "label": "要支援者（名簿登録）",
            "count": int(row["persons"]) if row is not None else 0, "rate": None, "city_rate": None}]
    for kind in (*GAP_KINDS, AT_RISK):
        if kind.key not in gaps.columns:
            continue
        out.append({
            "key": kind.key, "label": kind.text(supporter_m=snap.params.supporter_max_m),
            "count": int(row[kind.key]) if row is not None else 0,
            "rate": _num(row[f"rate_{kind.key}"]) if row is not None else None,
            "city_rate": _num(city[f"rate_{kind.key}"]) if city is not None else None,
        })
    return out


def coverage_summary(snap: Snapshot, code: str) -> dict:
    """The district's salon coverage beside the city's shares."""
    coverages, city = snap.coverage()
    cov = coverages.get(code)
    return {
        "salons": int((snap.salons["district_code"] == code).sum()),
        "elderly": round(cov.elderly) if cov else None,
        "uncovered_elderly": round(cov.uncovered_elderly) if cov else None,
        "uncovered_elderly_share": ratio(cov.uncovered_elderly, cov.elderly) if cov else None,
        "uncovered_75_plus": round(cov.uncovered_75_plus) if cov else None,
        "uncovered_75_plus_share": ratio(cov.uncovered_75_plus, cov.age_75_plus) if cov else None,
        "city_uncovered_elderly_share": _num(city.get("uncovered_elderly_share")),
        "city_uncovered_75_plus_share": _num(city.get("uncovered_75_plus_share")),
    }


def _num(v):
    return None if v is None or v != v else float(v)

