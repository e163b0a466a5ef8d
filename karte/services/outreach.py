"""What the outreach page shows a coordinator: the priority ranking of small areas, supporter
suggestions, and the confirm/reject decisions on them.

Thin wrappers over :mod:`gis.outreach` and :mod:`gis.suggest`. The analyses run on the whole
city's layers once per build (:meth:`karte.snapshot.Snapshot.memo`); what is shown of persons
comes from the viewer's own reads of the store (filtered and logged there), and a suggestion is
shown only when the viewer may see both people. Only coordinators and city staff may use any of
it (:data:`OUTREACH_LEVELS`).

Decisions (確認 / 見送り) are rows of the personal record layer ``supporter_decisions``
(:data:`karte.domain.layers.LAYERS`; ids only, never names), appended through the store as the
deciding user (:meth:`karte.store.base.Store.append_rows`: the id comes from the database, the
write and its access-log row are one transaction, several server processes lose nothing). A
confirmation records that the coordinator has asked both people and they agreed; it does not
change the register: the assignment reaches ``register.supporter_ids`` when the city imports its
updated register (``karte import``), and until then the person is listed as confirmed rather
than suggested again. Nothing is assigned without a confirmation.

Below city staff no output carries the id of a register entry the viewer may not see (issue 16,
item 9): a decision city staff recorded on a person who did not consent is left out of the
decisions a coordinator is shown. Per ranked place the page also shows its open households of
concern and the last visit to them (:func:`karte.services.care.open_concerns_by_area`, read as
the viewer).
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd

from gis.coverage import salon_coverage
from gis.mesh import jis_mesh, population_surface
from gis.outreach import outreach_priority, outreach_units
from gis.params import AnalysisParams
from gis.suggest import suggest_supporters
from karte.analysis import evacuation_gaps
from karte.domain.access import Access, Level
from karte.domain.care import japanese_date
from karte.domain.errors import AccessDenied, InputError, NotFoundError
from karte.domain.layers import LAYERS, Layer
from karte.domain.schema import ROLE_JA, VOCABULARY, Role
from karte.render.outreach_map import outreach_map
from karte.render.webmap import ASSETS, Basemap, map_parts
from karte.services import care, supporters
from karte.services.layers import layer_view
from karte.services.personal import read_records, read_rows
from karte.snapshot import Snapshot, current
from karte.store.base import Store

#: Who may see the outreach page (コーディネーター, 市職員).
OUTREACH_LEVELS = (Level.COORDINATOR, Level.CITY_STAFF)
#: The columns of a decision (the record layer's declared schema).
DECISION_COLUMNS = LAYERS[Layer.DECISIONS].column_names
DECISION_JA = {"confirmed": "確認済み", "rejected": "見送り"}


def check_access(access: Access) -> None:
    """Raise :class:`~karte.domain.errors.AccessDenied` unless the viewer may plan outreach."""
    if access.level not in OUTREACH_LEVELS:
        raise AccessDenied("アウトリーチの画面はコーディネーターと市職員だけが使えます")


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
    params = params or AnalysisParams()
    snap = current(store)
    ranked = snap.memo(("outreach:ranking", params), lambda: _rank(snap, params))
    areas = layer_view(store, "small_areas", access)[["key_code", "name", "geometry"]]
    districts = layer_view(store, "districts", access)[["district_code", "district_name"]]
    out = areas.merge(ranked, on="key_code", how="inner").merge(districts, on="district_code",
                                                               how="left")
    out = out.sort_values(["rank", "key_code"], kind="stable").reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=areas.crs)


def _rank(snap: Snapshot, params: AnalysisParams) -> pd.DataFrame:
    small = snap.small_areas
    surface = population_surface(small, jis_mesh(small, level=params.mesh_level))
    covered = salon_coverage(surface, snap.services, vocab=VOCABULARY, params=params)
    gaps, _, _ = _gaps(snap, params)
    units = outreach_units(covered, gaps, by="key_code")
    ranked = outreach_priority(units)
    for col in ("elderly_alone", "uncovered_elderly"):
        ranked[col] = ranked[col].round().astype(int)
    return ranked


def _gaps(snap: Snapshot, params: AnalysisParams):
    """(person gaps, district gaps, supporter load) of the whole city for ``params``, computed once
    per snapshot (personal: used for counts only)."""
    def compute():
        inputs = snap.analysis_inputs()
        return evacuation_gaps(inputs["register"], inputs["cooperators"], snap.shelters,
                               snap.emergency_sites, snap.districts, params=params)

    return snap.memo(("outreach:gaps", params), compute)


# --- suggestions ----------------------------------------------------------------------------------

def suggestions(store: Store, access: Access, *, district: str | None = None,
                params: AnalysisParams | None = None) -> pd.DataFrame:
    """Open supporter suggestions (:func:`gis.suggest.suggest_supporters`) the viewer may see.

    For coordinators only register entries that may be shared (同意 / 条例) are considered; city
    staff see suggestions for every entry. A suggestion is listed only when both the person and
    the cooperator are rows the store gives the viewer (each read logged there).
    People with a decision already recorded are left out (see :func:`decisions`).

    Columns: ``person_id``, ``person_name``, ``address``, ``district_code``, ``cooperator_id``,
    ``cooperator_name``, ``cooperator_role``, ``cooperator_phone``, ``cooperator_district_code``,
    ``distance_m`` (walking, rounded), and the two points (``person_geometry``,
    ``cooperator_geometry``, EPSG:6678) for the map.
    """
    check_access(access)
    params = params or AnalysisParams()
    shareable_only = access.level != Level.CITY_STAFF
    snap = current(store)
    found = snap.memo(("outreach:suggest", params, shareable_only),
                      lambda: _suggest(snap, params, shareable_only))
    if district is not None:
        found = found[found["district_code"] == district]
    if found.empty:
        return _empty_suggestions()
    people = read_rows(store, Layer.REGISTER, access, district=district)
    coops = read_rows(store, Layer.COOPERATORS, access)
    people = people.set_index(people["person_id"].astype(str))
    coops = coops.set_index(coops["cooperator_id"].astype(str))
    seen = found[found["person_id"].astype(str).isin(people.index)
                 & found["cooperator_id"].astype(str).isin(coops.index)]
    decided = _decided(store, access)
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


def _suggest(snap: Snapshot, params: AnalysisParams, shareable_only: bool) -> pd.DataFrame:
    inputs = snap.analysis_inputs()
    return suggest_supporters(inputs["register"], inputs["cooperators"], vocab=VOCABULARY, params=params,
                              only_shareable=shareable_only)


def _empty_suggestions() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in (
        "person_id", "person_name", "address", "district_code", "cooperator_id", "cooperator_name",
        "cooperator_role", "cooperator_phone", "cooperator_district_code", "distance_m",
        "person_geometry", "cooperator_geometry")})


# --- decisions ------------------------------------------------------------------------------------

def decisions(store: Store, access: Access) -> pd.DataFrame:
    """Every recorded decision the viewer may see (:data:`DECISION_COLUMNS`), newest first;
    empty when none yet. A personal read: as ``access``, logged by the store.

    Below city staff, only decisions on register entries the viewer may see: one that city staff
    recorded on a person who did not consent would show that person's id (the register, read as
    the viewer, decides; that read is logged too)."""
    check_access(access)
    if Layer.DECISIONS not in store.layers():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DECISION_COLUMNS})
    table = pd.DataFrame(read_rows(store, Layer.DECISIONS, access))
    if not table.empty and access.level != Level.CITY_STAFF:
        visible = {str(r["person_id"]) for r in read_records(store, Layer.REGISTER, access)}
        table = table[table["person_id"].astype(str).isin(visible)]
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DECISION_COLUMNS})
    return table.sort_values(["decided_at", "decision_id"], ascending=False,
                             kind="stable").reset_index(drop=True)


def _decided(store: Store, access: Access) -> set[str]:
    """Ids of the persons with a decision (whoever may see them): they are not suggested again."""
    if Layer.DECISIONS not in store.layers():
        return set()
    return {str(r["person_id"]) for r in read_records(store, Layer.DECISIONS, access)}


def record_decision(store: Store, access: Access, *, person_id: str, cooperator_id: str,
                    decision: str, params: AnalysisParams | None = None) -> dict:
    """Record that the viewer confirmed (``"confirmed"``) or rejected (``"rejected"``) the open
    suggestion of ``cooperator_id`` for ``person_id``; returns the row as stored.

    Only an open suggestion the viewer can see may be decided (anything else: NotFoundError,
    whose message names no person). The row is appended as the viewer, id from the store.
    """
    check_access(access)
    if decision not in DECISION_JA:
        raise InputError(f"decision は {' / '.join(DECISION_JA)} のどれかです")
    open_ = suggestions(store, access, params=params)
    hit = open_[(open_["person_id"].astype(str) == str(person_id))
                & (open_["cooperator_id"].astype(str) == str(cooperator_id))]
    if hit.empty:
        raise NotFoundError("その候補はありません（すでに決定済みか、候補が変わりました）")
    row = hit.iloc[0]
    record = {"person_id": str(row["person_id"]), "cooperator_id": str(row["cooperator_id"]),
              "district_code": row["district_code"], "decision": decision,
              "distance_m": float(row["distance_m"]), "decided_by": access.user,
              "decided_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    stored = store.append_rows(Layer.DECISIONS, [record], access=access)[0]
    return {c: stored[c] for c in DECISION_COLUMNS}


# --- the page -------------------------------------------------------------------------------------

#: How many ranked small areas the outreach list shows; how many the citywide map draws (a
#: district's map draws all of its areas); how many suggestions the citywide list shows.
RANKED_ROWS = 30
MAP_AREAS = 150
SUGGESTION_ROWS = 40


def outreach_page(store: Store, access: Access, *, district: str | None, basemap: Basemap) -> dict:
    """Outreach planning (coordinators and city staff): the ranking on a map and as a list,
    supporter suggestions to confirm or reject, the decisions made."""
    check_access(access)
    codes = current(store).codes
    if district is not None and district not in codes:
        raise NotFoundError(f"地区 {district} はありません")
    ranking = outreach_ranking(store, access)
    places = care.open_concerns_by_area(store, access)
    ranking["open_concerns"] = [places.get(k, {}).get("open_concerns", 0) for k in ranking["key_code"]]
    visits = [places.get(k, {}).get("last_visit") or "" for k in ranking["key_code"]]
    ranking["last_visit"] = [japanese_date(v, short=True) for v in visits]  # R8.11.28（2026-11-28）
    shown = ranking if district is None else ranking[ranking["district_code"] == district]
    found = suggestions(store, access, district=district)
    listed = found if district is not None else found.head(SUGGESTION_ROWS)
    drawn = shown if district is not None else shown[shown["rank"] <= MAP_AREAS]
    m = outreach_map(drawn, listed, asset_base=ASSETS, basemap=basemap)
    names = dict(zip(ranking["district_code"], ranking["district_name"], strict=False))
    made = decisions(store, access)
    if district is not None:
        made = made[made["district_code"] == district]
    return {
        "map": map_parts(m),
        "ranking": shown.drop(columns=shown.geometry.name).head(RANKED_ROWS).to_dict("records"),
        "ranked_total": int((shown["score"] > 0).sum()),
        "suggestions": listed.drop(columns=["person_geometry", "cooperator_geometry"]).to_dict("records"),
        "suggestions_total": len(found), "map_areas": len(drawn),
        "decisions": made.head(50).to_dict("records"), "decision_ja": DECISION_JA,
        "concerns_total": int(shown["open_concerns"].sum()),
        # why the others get no suggestion, and the persons the viewer may see with their reason
        "unmatched": supporters.evacuation_unmatched(store, access, district=district),
        "district": district, "districts": [(c, names.get(c, c)) for c in codes],
    }
