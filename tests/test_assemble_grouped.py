"""assemble_kartes splits every layer by district once (group positions) instead of masking it
once per district: the kartes must be exactly those the per-district masks gave. The reference
here is the earlier code, kept verbatim as the oracle, run on the demo's layers and on a copy
with the awkward cases planted (a district with no row, rows of a district that is not listed,
equal sort keys, a kind of help offered twice, a missing capacity)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gis.overlay import locate_points
from karte.assemble import (
    assemble_kartes,
    cooperator_summary,
    register_summary,
    service_list,
    shelter_list,
)
from karte.basestats import base_stats, district_counts
from karte.domain.layers import split_list
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

# --- the per-district code of before (the oracle) -------------------------------------------

def _old_register(reg: pd.DataFrame) -> dict:
    consent = reg["consent"].value_counts()
    plans = reg["plan_status"].value_counts()
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


def _old_cooperators(coop: pd.DataFrame) -> dict:
    roles = coop["role"].value_counts()
    helps: dict[str, int] = {}
    for kinds in coop["help_kinds"]:
        for k in split_list(kinds):
            helps[k] = helps.get(k, 0) + 1
    offers_evac = coop["help_kinds"].map(lambda s: HelpKind.EVACUATION.value in split_list(s))
    evac = coop[offers_evac.astype(bool)]
    return {
        "total": len(coop),
        "by_role": [{"key": str(r), "label": ROLE_JA[r], "count": int(roles.get(str(r), 0))} for r in Role],
        "by_help": [{"key": str(h), "label": HELP_JA[h], "count": helps.get(str(h), 0)} for h in HelpKind],
        "evacuation_capacity": int(pd.to_numeric(evac["capacity"]).sum()),
    }


def _old_services(serv: pd.DataFrame) -> list[dict]:
    order = {str(k): i for i, k in enumerate(ServiceKind)}
    rows = serv.assign(_o=serv["kind"].map(order)).sort_values(["_o", "name"])
    return [{"service_id": s.service_id, "kind": s.kind, "kind_ja": SERVICE_JA[ServiceKind(s.kind)],
             "name": s.name, "operator": s.operator, "venue": s.venue, "frequency": s.frequency,
             "frequency_ja": FREQUENCY_JA.get(s.frequency, s.frequency), "schedule": s.schedule,
             "contact": s.contact, "target": s.target} for s in rows.itertuples()]


def _old_shelters(shelters: pd.DataFrame) -> list[dict]:
    rows = shelters.sort_values(["welfare", "name"], ascending=[False, True])
    return [{"shelter_id": s.shelter_id, "name": s.name, "address": s.address, "welfare": bool(s.welfare),
             "accepts": None if s.accepts is None or (isinstance(s.accepts, float) and pd.isna(s.accepts))
             or s.accepts == "" else str(s.accepts)} for s in rows.itertuples()]


def _old_blocks(layers: dict, code: str, shelter_district, site_district) -> dict:
    sites = layers["emergency_sites"]
    return {
        "register": _old_register(layers["register"][layers["register"]["district_code"] == code]),
        "cooperators": _old_cooperators(
            layers["cooperators"][layers["cooperators"]["district_code"] == code]),
        "services": _old_services(layers["services"][layers["services"]["district_code"] == code]),
        "shelters": _old_shelters(layers["shelters"][(shelter_district == code).to_numpy()]),
        "emergency_sites": {"count": int((site_district == code).sum()),
                            "names": sorted(sites.loc[(site_district == code).to_numpy(), "name"])},
    }


# --- the comparison -------------------------------------------------------------------------

def _kartes(layers: dict) -> dict:
    counts = district_counts(layers["small_areas"], districts=layers["districts"], by_polygon=False)
    stats, city = base_stats(counts, layers["register"])
    meta = {"fiscal_year": 2026, "data_date": "2026-10-01", "built_at": "x", "synthetic": []}
    return assemble_kartes(districts=layers["districts"], stats=stats, city=city, register=layers["register"],
                           cooperators=layers["cooperators"], services=layers["services"],
                           shelters=layers["shelters"], emergency_sites=layers["emergency_sites"], meta=meta)


def _check(layers: dict) -> int:
    kartes = _kartes(layers)
    districts = layers["districts"]
    shelter_district = locate_points(layers["shelters"], districts, "district_code")
    site_district = locate_points(layers["emergency_sites"], districts, "district_code")
    assert list(kartes) == list(districts["district_code"])
    for code, karte in kartes.items():
        want = _old_blocks(layers, code, shelter_district, site_district)
        got = {key: karte[key] for key in want}
        assert json.dumps(got, ensure_ascii=False) == json.dumps(want, ensure_ascii=False), code
    return len(kartes)


def _object_text(frame: pd.DataFrame) -> pd.DataFrame:
    text = [c for c in frame.columns if isinstance(frame[c].dtype, pd.StringDtype)]
    return frame.astype(dict.fromkeys(text, object)) if text else frame


def test_demo_kartes_equal_the_per_district_masks(demo_layers):
    layers = {name: _object_text(frame) for name, frame in demo_layers.items()}
    assert _check(layers) > 30


def test_awkward_rows_equal_the_per_district_masks(demo_layers):
    layers = {name: _object_text(frame.copy()) for name, frame in demo_layers.items()}
    codes = list(layers["districts"]["district_code"])
    empty, other = codes[0], codes[1]
    register = layers["register"]
    register = register[register["district_code"] != empty].copy()
    register.loc[register.index[:5], "district_code"] = "ZZ99"        # a district not listed
    register.loc[register.index[5:8], "district_code"] = None
    layers["register"] = register
    coop = layers["cooperators"]
    coop = coop[coop["district_code"] != empty].copy()
    mine = coop.index[coop["district_code"] == other]
    assert len(mine) >= 2
    coop.loc[mine[0], "help_kinds"] = "evacuation;evacuation;watching"  # the same help twice
    coop["capacity"] = coop["capacity"].astype(float)
    coop.loc[mine[1], "capacity"] = float("nan")                        # a capacity missing
    layers["cooperators"] = coop
    services = layers["services"].copy()
    services["name"] = "同じ名前"                                        # every sort key ties
    layers["services"] = services
    shelters = layers["shelters"].copy()
    shelters["name"] = shelters["name"].where(shelters.index % 2 == 0, "同名の避難所")
    layers["shelters"] = shelters
    assert _check(layers) > 30
    kartes = _kartes(layers)
    assert kartes[empty]["register"]["total"] == 0
    assert kartes[empty]["cooperators"]["total"] == 0


def test_summaries_of_one_frame_match_the_oracle(demo_layers):
    """The one-frame functions (used by other callers) give the oracle's dicts, empty frames too."""
    layers = {name: _object_text(frame) for name, frame in demo_layers.items()}
    for frame, new, old in ((layers["register"], register_summary, _old_register),
                            (layers["cooperators"], cooperator_summary, _old_cooperators),
                            (layers["services"], service_list, _old_services),
                            (layers["shelters"], shelter_list, _old_shelters)):
        for part in (frame, frame.iloc[:0], frame.iloc[::7]):
            assert json.dumps(new(part), ensure_ascii=False) == json.dumps(old(part), ensure_ascii=False)


def test_a_bad_consent_word_still_fails():
    """A consent value outside the enum fails as before (ValueError), not counted silently."""
    reg = pd.DataFrame({"consent": ["consented", "maybe"], "plan_status": ["done", "done"],
                        "supporter_ids": ["", ""], "care_level": [None, None],
                        "disability_kind": [None, None], "medical_devices": [None, None]})
    with pytest.raises(ValueError):
        register_summary(reg)
