"""What the outreach page shows a coordinator: the priority ranking of small areas, supporter
suggestions, and the confirm/reject decisions on them.

Thin wrappers over :mod:`gis.outreach` and :mod:`gis.suggest` for the web pages. The analyses run
on the whole city's layers (like the citywide gap analysis in :mod:`karte.views`), cached per
store build; what leaves this module goes through :mod:`karte.views`: personal rows (who a
suggestion is for, who is suggested) come from :func:`karte.views.layer_view`, filtered by
:class:`karte.domain.access.Access` and written to the access log, and a suggestion is shown only when
the viewer may see both people. Only coordinators and city staff may use any of it
(:data:`OUTREACH_LEVELS`).

Decisions (確認 / 見送り) are appended to the attribute layer ``supporter_decisions`` of the
store (:data:`DECISION_COLUMNS`; ids only, never names), through :meth:`Store.write` so the
GeoPackage and the PostGIS store both keep it. They say who is to support whom, so they are
personal rows (:data:`karte.domain.schema.PERSONAL_LAYERS`): read as the viewer, filtered by
district (:meth:`karte.domain.access.Access.filter_rows`; PostGIS: row-level security) and logged.
A confirmation records that the coordinator has asked both people and they agreed; it does not
change the register: the assignment reaches ``register.supporter_ids`` when the city imports its
updated register (``karte import``), and until then the person is listed as confirmed rather
than suggested again. Nothing is assigned without a confirmation.
"""

from __future__ import annotations

import datetime as dt
import threading

import geopandas as gpd
import pandas as pd

from gis.params import AnalysisParams
from karte.domain.access import Access, Level
from karte.domain.errors import InputError, KarteError, NotFoundError
from karte.domain.layers import Layer
from karte.store.base import Store

#: Who may see the outreach page (コーディネーター, 市職員).
OUTREACH_LEVELS = (Level.COORDINATOR, Level.CITY_STAFF)
#: The store layer (attribute table) that records decisions on suggestions.
DECISIONS_LAYER = Layer.DECISIONS
DECISION_COLUMNS = ("decision_id", "person_id", "cooperator_id", "district_code", "decision",
                    "distance_m", "decided_by", "decided_at")
DECISION_JA = {"confirmed": "確認済み", "rejected": "見送り"}


class OutreachAccessError(KarteError):
    """The user may not use the outreach page (HTTP 403)."""

    status = 403


def check_access(access: Access) -> None:
    if access.level not in OUTREACH_LEVELS:
        raise OutreachAccessError("アウトリーチの画面はコーディネーターと市職員だけが使えます")


# --- ranking --------------------------------------------------------------------------------------

def outreach_ranking(store: Store, access: Access, *, params: AnalysisParams | None = None
                     ) -> gpd.GeoDataFrame:
    """Small areas ranked for coordinator visits (:func:`gis.outreach.outreach_priority`), EPSG:6678.

    Columns: ``rank``, ``score``, ``key_code``, ``name`` (町丁・字), ``district_code``,
    ``district_name``, ``elderly_alone``, ``uncovered_elderly`` (estimates, rounded to people),
    ``unsupported`` (support-needers without a supporter, counted whatever their consent) and
    ``points_<part>``; sorted by rank. Counts, no personal rows: no access-log entry.
    """
    check_access(access)
    from karte import views

    params = params or AnalysisParams()
    ranked = views.cached(store, ("outreach:ranking", params), lambda: _rank(store, params))
    areas = views.layer_view(store, "small_areas", access)[["key_code", "name", "geometry"]]
    districts = views.layer_view(store, "districts", access)[["district_code", "district_name"]]
    out = areas.merge(ranked, on="key_code", how="inner").merge(districts, on="district_code",
                                                               how="left")
    out = out.sort_values(["rank", "key_code"], kind="stable").reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=areas.crs)


def _rank(store: Store, params: AnalysisParams) -> pd.DataFrame:
    from gis.coverage import salon_coverage
    from gis.mesh import jis_mesh, population_surface
    from gis.outreach import outreach_priority, outreach_units
    from karte import views

    ctx = views.sheet_context(store)  # the build's layers, read once
    small = ctx.small_areas
    surface = population_surface(small, jis_mesh(small, level=params.mesh_level))
    covered = salon_coverage(surface, ctx.services, params=params)
    gaps, _, _ = _gaps(store, params)
    units = outreach_units(covered, gaps, by="key_code")
    ranked = outreach_priority(units)
    for col in ("elderly_alone", "uncovered_elderly"):
        ranked[col] = ranked[col].round().astype(int)
    return ranked


def _gaps(store: Store, params: AnalysisParams):
    """(person gaps, district gaps, supporter load): the build's citywide gap analysis
    (:func:`karte.views.sheet_context`) when ``params`` are its own, else computed once for them."""
    from karte import views
    from karte.render.sheet_analysis import evacuation_gaps

    ctx = views.sheet_context(store)
    if params == ctx.params:
        return ctx.person_gaps, ctx.district_gaps, ctx.load

    def compute():
        return evacuation_gaps(ctx.register, ctx.cooperators, ctx.shelters,
                               store.read(Layer.EMERGENCY_SITES), ctx.districts, params=params)

    return views.cached(store, ("outreach:gaps", params), compute)


# --- suggestions ----------------------------------------------------------------------------------

def suggestions(store: Store, access: Access, *, district: str | None = None,
                params: AnalysisParams | None = None) -> pd.DataFrame:
    """Open supporter suggestions (:func:`gis.suggest.suggest_supporters`) the viewer may see.

    For coordinators only register entries that may be shared (同意 / 条例) are considered; city
    staff see suggestions for every entry. A suggestion is listed only when both the person and
    the cooperator are rows :func:`karte.views.layer_view` gives the viewer (each read logged).
    People with a decision already recorded are left out (see :func:`decisions`).

    Columns: ``person_id``, ``person_name``, ``address``, ``district_code``, ``cooperator_id``,
    ``cooperator_name``, ``cooperator_role``, ``cooperator_phone``, ``cooperator_district_code``,
    ``distance_m`` (walking, rounded), and the two points (``person_geometry``,
    ``cooperator_geometry``, EPSG:6678) for the map.
    """
    check_access(access)
    from karte import views
    from karte.domain.schema import ROLE_JA, Role

    params = params or AnalysisParams()
    shareable_only = access.level != Level.CITY_STAFF
    found = views.cached(store, ("outreach:suggest", params, shareable_only),
                         lambda: _suggest(store, params, shareable_only))
    if district is not None:
        found = found[found["district_code"] == district]
    if found.empty:
        return _empty_suggestions()
    people = views.layer_view(store, "register", access, district=district)
    coops = views.layer_view(store, "cooperators", access)
    people = people.set_index(people["person_id"].astype(str))
    coops = coops.set_index(coops["cooperator_id"].astype(str))
    seen = found[found["person_id"].astype(str).isin(people.index)
                 & found["cooperator_id"].astype(str).isin(coops.index)]
    decided = set(decisions(store, access)["person_id"].astype(str))
    seen = seen[~seen["person_id"].astype(str).isin(decided)]
    p = people.loc[seen["person_id"].astype(str)]
    c = coops.loc[seen["cooperator_id"].astype(str)]
    return pd.DataFrame({
        "person_id": seen["person_id"].to_numpy(),
        "person_name": p["name"].to_numpy(),
        "address": p["address"].astype(str).str.removeprefix("青森県青森市").to_numpy(),
        "district_code": seen["district_code"].to_numpy(),
        "cooperator_id": seen["cooperator_id"].to_numpy(),
        "cooperator_name": c["name"].to_numpy(),
        "cooperator_role": [ROLE_JA.get(Role(r), r) if r in Role._value2member_map_ else r
                            for r in c["role"]],
        "cooperator_phone": c["phone"].to_numpy(),
        "cooperator_district_code": seen["cooperator_district_code"].to_numpy(),
        "distance_m": seen["distance_m"].round().astype(int).to_numpy(),
        "person_geometry": p.geometry.to_numpy(),
        "cooperator_geometry": c.geometry.to_numpy(),
    })


def _suggest(store: Store, params: AnalysisParams, shareable_only: bool) -> pd.DataFrame:
    from gis.suggest import suggest_supporters
    from karte import views

    ctx = views.sheet_context(store)  # the build's layers, read once
    return suggest_supporters(ctx.register, ctx.cooperators, params=params, only_shareable=shareable_only)


def _empty_suggestions() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (
        "person_id", "person_name", "address", "district_code", "cooperator_id", "cooperator_name",
        "cooperator_role", "cooperator_phone", "cooperator_district_code", "distance_m",
        "person_geometry", "cooperator_geometry")})


# --- decisions ------------------------------------------------------------------------------------

_WRITE = threading.Lock()


def decisions(store: Store, access: Access) -> pd.DataFrame:
    """Every recorded decision the viewer may see (:data:`DECISION_COLUMNS`), newest first;
    empty when none yet. A personal read: as ``access``, written to the access log."""
    check_access(access)
    if DECISIONS_LAYER not in store.layers():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DECISION_COLUMNS})
    from karte import views

    table = pd.DataFrame(views._personal_rows(store, DECISIONS_LAYER, access, None))
    return table.sort_values("decided_at", ascending=False, kind="stable").reset_index(drop=True)


def record_decision(store: Store, access: Access, *, person_id: str, cooperator_id: str,
                    decision: str, params: AnalysisParams | None = None) -> dict:
    """Record that the viewer confirmed (``"confirmed"``) or rejected (``"rejected"``) the open
    suggestion of ``cooperator_id`` for ``person_id``; returns the recorded row.

    Only an open suggestion the viewer can see may be decided (anything else: NotFoundError,
    whose message names no person). The write is logged in the access log.
    """
    check_access(access)
    if decision not in DECISION_JA:
        raise InputError(f"decision は {' / '.join(DECISION_JA)} のどれかです")
    with _WRITE:
        open_ = suggestions(store, access, params=params)
        hit = open_[(open_["person_id"].astype(str) == str(person_id))
                    & (open_["cooperator_id"].astype(str) == str(cooperator_id))]
        if hit.empty:
            raise NotFoundError("その候補はありません（すでに決定済みか、候補が変わりました）")
        row = hit.iloc[0]
        record = {"person_id": str(row["person_id"]), "cooperator_id": str(row["cooperator_id"]),
                  "district_code": row["district_code"], "decision": decision,
                  "distance_m": float(row["distance_m"])}
        record = append_decision(store, record, actor=access.user, route=access.route)
    return record


def append_decision(store: Store, record: dict, *, actor: str, route: str) -> dict:
    """Append one decision to :data:`DECISIONS_LAYER` (numbered ``decision_id``, stamped with
    ``decided_by`` = ``actor`` and ``decided_at`` now, UTC) and log the write; returns the row.
    The layer is rewritten whole through :meth:`Store.write` (atomic in both stores)."""
    old = (pd.DataFrame(store.read(DECISIONS_LAYER)) if DECISIONS_LAYER in store.layers()
           else pd.DataFrame({c: pd.Series(dtype=object) for c in DECISION_COLUMNS}))
    row = {**record, "decision_id": f"D{len(old) + 1:06d}", "decided_by": actor,
           "decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    table = pd.concat([old[list(DECISION_COLUMNS)], pd.DataFrame([row])[list(DECISION_COLUMNS)]],
                      ignore_index=True)
    table = table.astype({c: object for c in DECISION_COLUMNS if c != "distance_m"})
    table["distance_m"] = pd.to_numeric(table["distance_m"], errors="coerce").astype(float)
    store.write({DECISIONS_LAYER: table})
    store.audit(actor=actor, route=route, layer=DECISIONS_LAYER, district=row.get("district_code"),
                rows=1)
    return {c: row[c] for c in DECISION_COLUMNS}
