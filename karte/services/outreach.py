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
concern and the last visit (:func:`karte.services.care.open_concerns_by_area` and the outreach
visits, read as the viewer).

The ranking is by rate (share of the place's elderly, the default) or by count
(:func:`gis.outreach.outreach_priority`; both scores and ranks always shown). A ranked place
opens on its own page (:func:`place_page`): the people there the viewer may see (support-needers
with their gaps, open households of concern), a small map, and its outreach visits, with the form
that records one (:func:`record_visit`: the record layer ``outreach_visits`` of
:mod:`karte.domain.outreach`, appended through the store as the viewer). When no suggestion is
open, :func:`empty_reason` says why and what would help. See ``docs/outreach.md``.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd

from gis.coverage import salon_coverage
from gis.mesh import jis_mesh, population_surface
from gis.outreach import ORDERS, outreach_priority, outreach_units
from gis.params import AnalysisParams
from gis.siting import VENUE_PATTERN, candidate_venues, site_salons
from gis.suggest import suggest_supporters
from karte.analysis import current_params, evacuation_gaps, season, season_note
from karte.domain.access import Access, Level
from karte.domain.care import CareLayer, CaseStatus, japanese_date
from karte.domain.errors import AccessDenied, InputError, NotFoundError
from karte.domain.gaps import BY_KEY, primary_gap
from karte.domain.layers import LAYERS, Layer, split_list
from karte.domain.outreach import VISIT_RESULT_JA, VISITS
from karte.domain.schema import ROLE_JA, VOCABULARY, Role, short_address
from karte.render.outreach_map import outreach_map, place_map
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
#: The orderings of the ranking (:data:`gis.outreach.ORDERS`), as the page's chooser names them.
ORDER_JA = {"rate": "割合（高齢者に占める割合）", "count": "人数"}
assert set(ORDER_JA) == set(ORDERS)
#: The columns of an outreach visit (the record layer's declared schema).
VISIT_COLUMNS = LAYERS[VISITS].column_names


def check_access(access: Access) -> None:
    """Raise :class:`~karte.domain.errors.AccessDenied` unless the viewer may plan outreach."""
    if access.level not in OUTREACH_LEVELS:
        raise AccessDenied("アウトリーチの画面はコーディネーターと市職員だけが使えます")


# --- ranking --------------------------------------------------------------------------------------

def outreach_ranking(store: Store, access: Access, *, by: str = "rate",
                     params: AnalysisParams | None = None) -> gpd.GeoDataFrame:
    """Small areas ranked for coordinator visits (:func:`gis.outreach.outreach_priority`), EPSG:6678.

    Columns: ``rank``, ``score`` (of ``by``: ``"rate"`` or ``"count"``), ``rank_rate``,
    ``score_rate``, ``rank_count``, ``score_count``, ``key_code``, ``name`` (町丁・字),
    ``district_code``, ``district_name``, ``elderly`` (65+), ``elderly_alone``,
    ``uncovered_elderly`` (estimates, rounded to people), ``unsupported`` (support-needers without a
    supporter, counted whatever their consent), ``rate_<part>`` and ``points_<part>``; sorted by
    rank, places with nothing to visit for (no rank) last. Counts, no personal rows: no access-log
    entry.
    """
    check_access(access)
    if by not in ORDERS:
        raise InputError(f"並べ替えは {' / '.join(ORDER_JA.values())} のどちらかです")
    params = params or AnalysisParams()
    snap = current(store)
    ranked = snap.memo(("outreach:ranking", params, by), lambda: _rank(snap, params, by=by))
    areas = layer_view(store, "small_areas", access)[["key_code", "name", "geometry"]]
    districts = layer_view(store, "districts", access)[["district_code", "district_name"]]
    out = areas.merge(ranked, on="key_code", how="inner").merge(districts, on="district_code",
                                                               how="left")
    out = out.sort_values(["rank", "key_code"], kind="stable", na_position="last").reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=areas.crs)


def _rank(snap: Snapshot, params: AnalysisParams, *, by: str = "rate") -> pd.DataFrame:
    """The ranking of the small areas (the same steps as :func:`karte.analyse._ranking`)."""
    covered = _covered(snap, params)
    gaps, _, _ = _gaps(snap, params)
    units = outreach_units(covered, gaps, by="key_code")
    ranked = outreach_priority(units, by=by)
    for col in ("elderly_alone", "uncovered_elderly"):
        ranked[col] = ranked[col].round().astype(int)
    return ranked


def _covered(snap: Snapshot, params: AnalysisParams) -> gpd.GeoDataFrame:
    """Salon coverage of the city's population surface (1/8 mesh cut by the small areas) for
    ``params``, once per build: the ranking (either order) and the salon sites share it."""
    def compute():
        small = snap.small_areas
        surface = snap.memo(("outreach:surface", params.mesh_level),  # the same in either season
                            lambda: population_surface(small, jis_mesh(small, level=params.mesh_level)))
        return salon_coverage(surface, snap.services, vocab=VOCABULARY, params=params)

    return snap.memo(("outreach:covered", params), compute)


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


# --- why no suggestion ----------------------------------------------------------------------------

def empty_reason(store: Store, access: Access, *, district: str | None,
                 params: AnalysisParams | None = None) -> dict:
    """Why the list of open suggestions (of ``district``, or the city) is empty, and what would
    help: ``{"why": [...], "help": [...]}`` (Japanese sentences; counts and place names only, no
    person). Call it when :func:`suggestions` gave none.

    The reasons are the matching engine's (:func:`gis.suggest.unsuggested`, as
    :func:`karte.services.supporters.evacuation_unmatched` counts them): everyone in reach at
    capacity (raise capacity: how many willing cooperators of the district are full), nobody
    willing within reach (recruit near the places where those people live), no location, nobody
    offers evacuation help; decisions already recorded (those people are not suggested again);
    and, for a district, the neighbouring districts whose willing cooperators still have room.
    """
    check_access(access)
    params = params or AnalysisParams()
    snap = current(store)
    shareable_only = access.level != Level.CITY_STAFF
    found = supporters.unmatched_frame(snap, shareable_only=shareable_only)
    if district is not None:
        found = found[found["district_code"] == district]
    counts = {r: int(n) for r, n in found["reason"].value_counts().items()}
    inputs = snap.analysis_inputs()
    register, coops = inputs["register"], inputs["cooperators"]
    gaps, _, _ = _gaps(snap, params)
    lacking = gaps[gaps["no_supporter"].to_numpy(dtype=bool)]
    if district is not None:
        lacking = lacking[lacking["district_code"] == district]
    where = "この地区" if district is not None else "市内"
    why: list[str] = []
    help_: list[str] = []
    waiting = sum(counts.values())
    if len(lacking) == 0:
        why.append(f"{where}には支援者が決まっていない要支援者がいません。")
        return {"why": why, "help": help_}
    decided = _decided_count(store, access, district)
    if waiting == 0:
        shared = "" if access.level == Level.CITY_STAFF else "（名簿の提供に同意した方・条例による方のうち）"
        why.append(f"支援者が決まっていない要支援者 {len(lacking):,} 人{shared}は、候補がすべて決定済みか、"
                   "候補を出せる方がいません。")
        if decided:
            why.append(f"決定を記録した {decided:,} 人には候補を出し直しません"
                       "（名簿の取り込みで反映されます）。")
        if access.level != Level.CITY_STAFF:
            help_.append("名簿の提供に同意していない方への提案は市職員の画面にだけ出ます。"
                         "同意の確認を進めてください。")
        return {"why": why, "help": help_}
    labels = supporters.REASON_JA
    why.append(f"支援者が決まっていない要支援者 {waiting:,} 人に候補がいません: "
               + "、".join(f"{labels.get(r, r)} {n:,} 人" for r, n in counts.items()) + "。")
    load = snap.supporter_load
    in_scope = coops if district is None else coops[coops["district_code"] == district]
    willing, spare = _load_of(load, in_scope["cooperator_id"])
    full = int((willing & (spare <= 0)).sum())
    if counts.get("at_capacity"):
        why.append(f"近くの避難支援者は受け持ちがいっぱいです（{where}の避難支援者 "
                   f"{int(willing.sum()):,} 人のうち {full:,} 人が上限に達しています）。")
        help_.append(f"受け持ちの上限を見直す: 上限に達している避難支援者 {full:,} 人に、もう一人受け持てるか"
                     "相談する（共助協力者名簿の「受け持ち」）。")
    places = _places_of(register, found, snap, reasons=("too_far", "at_capacity"))
    if places:
        help_.append("避難支援者を募る: " + "、".join(f"{name}（{n} 人）" for name, n in places)
                     + " の付近（候補のいない要支援者が多い町丁・字）。")
    if district is not None:
        near = _neighbour_room(snap, coops, load, district)
        if near:
            help_.append("隣の地区の避難支援者に頼む: " + "、".join(
                f"{name}（{code}）で受け持ちに余裕のある方 {n:,} 人" for code, name, n in near) + "。")
        elif counts.get("at_capacity") or counts.get("too_far"):
            help_.append("隣の地区にも受け持ちに余裕のある避難支援者はいません。")
    if counts.get("no_location"):
        help_.append(f"所在地が不明な {counts['no_location']:,} 人: 住所を確かめて名簿を更新する。")
    if counts.get("no_kind"):
        help_.append("避難支援のできる協力者が登録されていません: 協力者の「できること」に"
                     "避難支援を加えるか、新たに募る。")
    if decided:
        why.append(f"決定を記録した {decided:,} 人には候補を出し直しません。")
    return {"why": why, "help": help_}


def _decided_count(store: Store, access: Access, district: str | None) -> int:
    made = decisions(store, access)
    if district is not None and len(made):
        made = made[made["district_code"] == district]
    return int(made["person_id"].nunique()) if len(made) else 0


def _places_of(register: pd.DataFrame, found: pd.DataFrame, snap: Snapshot, *, reasons: tuple[str, ...],
               top: int = 3) -> list[tuple[str, int]]:
    """The small areas (name, people) where most of the people without a candidate for
    ``reasons`` live (counts of the engine's rows; names of places, not of people)."""
    if found.empty:
        return []
    ids = found.loc[found["reason"].isin(reasons), "person_id"].astype(str)
    if ids.empty or "key_code" not in register.columns:
        return []
    keys = register.set_index(register["person_id"].astype(str))["key_code"].reindex(ids).dropna()
    names = dict(zip(snap.small_areas["key_code"], snap.small_areas["name"], strict=False)) \
        if "name" in snap.small_areas.columns else {}
    counted = keys.value_counts().head(top)
    return [(str(names.get(k, k)), int(n)) for k, n in counted.items()]


def _load_of(load: pd.DataFrame, cooperator_ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(willing to help evacuate, spare places) of these cooperators from the snapshot's supporter
    load; a cooperator the load does not know is not willing, and an unknown spare is NaN (neither
    full nor with room)."""
    ids = cooperator_ids.astype(str)
    table = load.reindex(ids) if len(load) else pd.DataFrame(index=ids)
    willing = (table["willing"].fillna(False).astype(bool) if "willing" in table
               else pd.Series(False, index=ids))
    spare = pd.to_numeric(table.get("spare", pd.Series(index=ids, dtype=float)), errors="coerce")
    return willing, spare


def _neighbour_room(snap: Snapshot, coops: pd.DataFrame, load: pd.DataFrame, district: str
                    ) -> list[tuple[str, str, int]]:
    """Districts touching ``district`` with willing cooperators who have room: (code, name, how many)."""
    districts = snap.districts
    mine = districts[districts["district_code"] == district]
    if mine.empty or not len(load):
        return []
    shape = mine.geometry.union_all().buffer(1.0)
    others = districts[(districts["district_code"] != district) & districts.intersects(shape)]
    out = []
    for row in others.sort_values("district_code").itertuples():
        theirs = coops.loc[coops["district_code"] == row.district_code, "cooperator_id"]
        willing, spare = _load_of(load, theirs)
        room = willing & (spare > 0)
        if int(room.sum()):
            out.append((str(row.district_code), str(getattr(row, "district_name", row.district_code)),
                        int(room.sum())))
    return out


# --- visits ---------------------------------------------------------------------------------------

def visits(store: Store, access: Access, *, key_code: str | None = None,
           district: str | None = None) -> list[dict]:
    """The outreach visits the viewer may see (of one place, or every one), newest first; read as
    the viewer (filtered and logged by the store)."""
    check_access(access)
    if VISITS not in store.layers():
        return []
    rows = read_records(store, VISITS, access, district=district)
    if key_code is not None:
        rows = [r for r in rows if str(r.get("key_code")) == str(key_code)]
    for r in rows:
        r["result_ja"] = VISIT_RESULT_JA.get(r.get("result"), r.get("result") or "")
        r["visited_ja"] = japanese_date(r.get("visited_on"))
    return sorted(rows, key=lambda r: (str(r.get("visited_on") or ""), str(r.get("visit_id") or "")),
                  reverse=True)


def last_visits(store: Store, access: Access) -> dict[str, str]:
    """Per small area, the date of the last outreach visit the viewer may see."""
    out: dict[str, str] = {}
    for r in visits(store, access):
        key, day = r.get("key_code"), r.get("visited_on")
        if key and day:
            out[str(key)] = max(out.get(str(key), ""), str(day))
    return out


def record_visit(store: Store, access: Access, key_code: str, form, *, today: dt.date | None = None
                 ) -> dict:
    """Record an outreach visit to the small area ``key_code`` (date, result, next step); the row
    as stored (appended as the viewer, id from the store). Problems: :class:`care.FormError`
    naming each field as the page labels it; nothing written."""
    check_access(access)
    today = today or care.today_jst()
    place = _place(store, key_code)
    f = care.Form(form)
    row = {"district_code": place["district_code"], "key_code": place["key_code"],
           "visited_on": f.date("visited_on", "訪問日", required=True, not_after=today),
           "result": f.choice("result", "結果", VISIT_RESULT_JA, required=True),
           "next_step": f.text("next_step", "次の対応", limit=200),
           "recorded_by": access.user,
           "recorded_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    f.check()
    stored = store.append_rows(VISITS, [row], access=access)[0]
    return {c: stored.get(c) for c in VISIT_COLUMNS}


def _place(store: Store, key_code: str) -> dict:
    """The small area ``key_code`` (``key_code``, ``name``, ``district_code``, ``geometry``)."""
    small = current(store).small_areas
    hit = small[small["key_code"].astype(str) == str(key_code)]
    if hit.empty:
        raise NotFoundError(f"町丁・字 {key_code} はありません")
    row = hit.iloc[0]
    return {"key_code": str(row["key_code"]), "name": str(row.get("name", key_code)),
            "district_code": str(row["district_code"]), "geometry": row.geometry}


# --- the page -------------------------------------------------------------------------------------

#: How many ranked small areas the outreach list shows; how many the citywide map draws (a
#: district's map draws all of its areas); how many suggestions the citywide list shows.
RANKED_ROWS = 30
MAP_AREAS = 150
SUGGESTION_ROWS = 40


def outreach_page(store: Store, access: Access, *, district: str | None, basemap: Basemap,
                  by: str = "rate") -> dict:
    """Outreach planning (coordinators and city staff): the ranking on a map and as a list (by rate
    or by count), supporter suggestions to confirm or reject (or why there are none), the
    decisions made.

    The list holds the places with something to visit for (a rank); its heading's two figures are
    the rows shown and the places ranked in the scope (``shown_rows`` ≤ ``ranked_total``); in the
    city view the highest rank never exceeds ``ranked_total``. A district's list numbers its places
    1… (``district_rank``) beside their rank in the city."""
    check_access(access)
    codes = current(store).codes
    if district is not None and district not in codes:
        raise NotFoundError(f"地区 {district} はありません")
    ranking = outreach_ranking(store, access, by=by)
    _with_visits(store, access, ranking)
    in_scope = ranking if district is None else ranking[ranking["district_code"] == district]
    ranked = in_scope[in_scope["rank"].notna()].copy()
    ranked["district_rank"] = (ranked["score"].rank(method="min", ascending=False).astype(int)
                               if len(ranked) else pd.Series(dtype=int))
    found = suggestions(store, access, district=district)
    listed = found if district is not None else found.head(SUGGESTION_ROWS)
    drawn = in_scope if district is not None else ranked[ranked["rank"] <= MAP_AREAS]
    m = outreach_map(drawn, listed, asset_base=ASSETS, basemap=basemap)
    names = dict(zip(ranking["district_code"], ranking["district_name"], strict=False))
    made = decisions(store, access)
    if district is not None:
        made = made[made["district_code"] == district]
    unmatched = supporters.evacuation_unmatched(store, access, district=district)
    rows = ranked.drop(columns=ranked.geometry.name).head(RANKED_ROWS)
    return {
        "map": map_parts(m),
        "ranking": _records(rows), "shown_rows": len(rows),
        "ranked_total": len(ranked), "places_total": len(in_scope),
        "by": by, "orders": list(ORDER_JA.items()), "order_ja": ORDER_JA[by],
        "suggestions": listed.drop(columns=["person_geometry", "cooperator_geometry"]).to_dict("records"),
        "suggestions_total": len(found), "map_areas": len(drawn[drawn["rank"].notna()]),
        "empty_reason": None if len(found) else empty_reason(store, access, district=district),
        "decisions": made.head(50).to_dict("records"), "decision_ja": DECISION_JA,
        "concerns_total": int(in_scope["open_concerns"].sum()),
        # why the others get no suggestion, and the persons the viewer may see with their reason
        "unmatched": unmatched,
        "district": district, "districts": [(c, names.get(c, c)) for c in codes],
        "sites": salon_sites(store, access, district=district) if district is not None else None,
    }


#: How many venues for a new salon a district's outreach page proposes.
SALON_SITES = 3


def salon_sites(store: Store, access: Access, *, district: str, k: int = SALON_SITES) -> dict:
    """Where a new salon would reach the most of ``district``'s elderly now outside every salon's
    walking distance, with the walking distance of the season in force (積雪期: shorter): the
    maximal covering location problem over the designated shelters and the halls among the
    emergency sites (:func:`gis.siting.candidate_venues`, :func:`gis.siting.site_salons`; exact
    with CBC when small). Aggregates only (estimated people per venue), once per build.

    Returns ``{"season", "walk_m", "method", "elderly", "covered", "sites": [{"rank", "name",
    "gain", "cumulative"}], "before", "after"}`` (shares of the district's elderly)."""
    check_access(access)
    snap = current(store)
    params = current_params()

    def compute() -> dict:
        covered = _covered(snap, params)
        demand = covered[covered["district_code"] == district]
        venues = candidate_venues({"shelters": snap.shelters, "emergency_sites": snap.emergency_sites},
                                  name_pattern={"shelters": None, "emergency_sites": VENUE_PATTERN})
        sites = site_salons(demand, venues, k=k, params=params)
        elderly = float(demand["elderly"].sum())
        now = float(demand.loc[demand["covered"], "elderly"].sum())
        gains = [float(g) for g in sites["gain"]]
        return {
            "season": season_note(params, season())["text"], "walk_m": params.salon_walk_m,
            "method": ("厳密解（整数計画）" if str(sites["method"].iloc[0]) == "exact" else "貪欲法")
            if len(sites) else "",
            "elderly": round(elderly), "covered": round(now),
            "sites": [{"rank": int(r), "name": str(n), "gain": round(g), "cumulative": round(c)}
                      for r, n, g, c in zip(sites["rank"], sites["name"], gains, sites["cumulative_gain"],
                                            strict=True)],
            "before": now / elderly if elderly else None,
            "after": (now + sum(gains)) / elderly if elderly else None,
        }

    return snap.memo(("outreach:sites", district, params, k), compute)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts, missing values (``<NA>``, NaN) as None (a template tests them)."""
    return [{k: (None if _missing(v) else v) for k, v in row.items()} for row in frame.to_dict("records")]


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _with_visits(store: Store, access: Access, ranking: pd.DataFrame) -> None:
    """Adds ``open_concerns`` and ``last_visit`` (short 和暦 with the ISO date: the latest of a
    visit to an open household there and an outreach visit to the place) in place."""
    places = care.open_concerns_by_area(store, access)
    outreach_last = last_visits(store, access)
    ranking["open_concerns"] = [places.get(k, {}).get("open_concerns", 0) for k in ranking["key_code"]]
    last = [max(places.get(k, {}).get("last_visit") or "", outreach_last.get(str(k), ""))
            for k in ranking["key_code"]]
    ranking["last_visit"] = [japanese_date(v, short=True) for v in last]  # R8.11.28（2026-11-28）


def place_page(store: Store, access: Access, key_code: str, *, basemap: Basemap) -> dict:
    """One ranked place for coordinators and city staff: its figures in both rankings, the people
    there the viewer may see (support-needers with their gaps; open households of concern; each
    read as the viewer, logged), a small map, and its outreach visits."""
    check_access(access)
    place = _place(store, key_code)
    code = place["district_code"]
    snap = current(store)
    figures = {}
    for by in ORDERS:
        ranking = outreach_ranking(store, access, by=by)
        hit = ranking[ranking["key_code"].astype(str) == place["key_code"]]
        if not hit.empty:
            figures = {**_records(hit.drop(columns=hit.geometry.name).iloc[:1])[0], **figures}
            figures[f"total_{by}"] = int(ranking["rank"].notna().sum())
    people = read_rows(store, Layer.REGISTER, access, district=code)
    if len(people) and "key_code" in people.columns:
        people = people[people["key_code"].astype(str) == place["key_code"]]
    people = people.reset_index(drop=True)
    flags = snap.person_flags(people["person_id"]) if len(people) else None
    persons = []
    for i, row in enumerate(people.to_dict("records")):
        flag = flags.iloc[i].to_dict() if flags is not None else {}
        kinds = [BY_KEY[k] for k in split_list(flag.get("gap_kinds")) if k in BY_KEY]
        persons.append({"person_id": row["person_id"], "name": row.get("name"),
                        "address": short_address(row.get("address")),
                        "gaps": "、".join(k.short_label for k in kinds) or "空白なし",
                        "colour": primary_gap(flag).colour if flag else "#2e7d32"})
    rows = care.read_care(store, access, district=code, layers=(CareLayer.CONCERNS,))
    concerns = [c for c in rows.concerns if str(c.get("key_code")) == place["key_code"]
                and (c.get("status") or CaseStatus.OPEN) == CaseStatus.OPEN]
    area = gpd.GeoDataFrame({"name": [place["name"]]}, geometry=[place["geometry"]],
                            crs=snap.small_areas.crs)
    person_points = gpd.GeoDataFrame(
        {"tip": [f"{p['name']}（{p['gaps']}）" for p in persons], "colour": [p["colour"] for p in persons]},
        geometry=people.geometry.to_numpy() if len(people) else [], crs=area.crs)
    concern_points = gpd.GeoDataFrame(
        {"tip": [str(c.get("household") or "") for c in concerns]},
        geometry=[c.get("geometry") for c in concerns], crs=area.crs)
    m = place_map(area, person_points, concern_points, asset_base=ASSETS, basemap=basemap)
    return {
        "place": {k: v for k, v in place.items() if k != "geometry"},
        "district_name": snap.kartes.get(code, {}).get("district", {}).get("name", code)
        if isinstance(snap.kartes.get(code), dict) else code,
        "figures": figures, "persons": persons,
        "concerns": [{"concern_id": c["concern_id"], "household": c.get("household"),
                      "urgency": c.get("urgency"), "noticed_on": japanese_date(c.get("noticed_on"))}
                     for c in concerns],
        "visits": visits(store, access, key_code=place["key_code"], district=code),
        "results": list(VISIT_RESULT_JA.items()), "map": map_parts(m),
        "today": care.today_jst().isoformat(),
    }
