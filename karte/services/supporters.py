"""地域福祉サポーター: what the volunteer centre, the CSWs, city staff and the district councils get
of the supporters topic, and what they may do with it.

* **Who**: coordinators (the volunteer centre's staff, the CSWs: 登録・派遣調整) and city staff
  register supporters and requests, match, dispatch, record activities and keep the points
  (:data:`PLANNERS`); district members see their own district's supporters and requests, read
  only; the public and the prefecture level see counts per district (supporters by menu kind,
  requests met and unmet), small counts suppressed (:func:`public_counts`).
* **Rows are read as the viewer** (:mod:`karte.services.personal`: the store filters them, and
  logs every read with the real user), never from a cache; rows are written with
  :meth:`~karte.store.base.Store.append_rows` / ``update_row`` as the acting user (ids from the
  store, the access-log row in the same transaction, optimistic versions). None of these layers
  is a snapshot layer: recording an activity does not recompute the city's analyses.
* **Matching** (:func:`match_requests`): all open requests of a district or the city at once, by
  :func:`gis.matching.match` (most requests met, then least walking, the same supporter as before
  preferred), with the reasons of each suggestion and, for each unmet request, why and where one
  more supporter would help most (:func:`gis.matching.recruit_sites`). In the snow season
  (:func:`karte.analysis.season`) winter-only supporters are in, summer-only ones out, 雪かき
  requests are matched, and walking reach shrinks by the winter factor (driving does not).
* **Points** (:func:`record_activity`, :func:`redeem_points`, :func:`reverse_entry`): an
  append-only ledger; an activity done earns points by the rule table
  (:data:`karte.domain.supporters.POINT_RULES`, season multipliers), a correction is a reversing
  entry, the balance is the sum of the entries (:func:`balance`), and :func:`statement` is the
  yearly statement a supporter gets (PDF: :func:`statement_pdf`).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd
import shapely

from gis import crs
from gis.matching import REASONS, MatchParams, MatchResult, match, recruit_sites
from gis.network import WalkNetwork
from gis.overlay import locate_points
from gis.params import AnalysisParams
from gis.suggest import unsuggested
from karte.analysis import JST, Season, season, season_note
from karte.domain import supporters as topic
from karte.domain.access import Access, Level
from karte.domain.errors import AccessDenied, ConflictError, InputError, KarteError, NotFoundError
from karte.domain.layers import LAYERS as REGISTRY
from karte.domain.layers import MUNICIPALITY, Layer, join_list, split_list
from karte.domain.schema import VOCABULARY
from karte.domain.supporters import (
    ACTIVITY_JA,
    DRIVEN,
    ENTRY_JA,
    MENU_JA,
    RECURRENCE_JA,
    REQUEST_STATUS_JA,
    SEASON_JA,
    STATUS_JA,
    TRAINING_JA,
    WINTER_ONLY,
    Activity,
    DispatchStatus,
    EntryKind,
    MenuKind,
    Recurrence,
    RequestStatus,
    SupporterStatus,
    award,
    day_numbers,
    fiscal_year_of,
    format_hours,
    hours_ja,
    parse_hours,
    request_problems,
    supporter_problems,
    weekdays_ja,
)
from karte.domain.supporters import Layer as L
from karte.importing.geocode import TownGeocoder
from karte.indicators import supporter_counts
from karte.render.points_statement import StatementData, points_statement_pdf
from karte.services.personal import read_records, read_rows
from karte.services.suppression import small
from karte.snapshot import current
from karte.store.base import Store

#: Who registers, matches, dispatches and keeps the points (コーディネーター・CSW, 市職員).
PLANNERS = frozenset({Level.COORDINATOR, Level.CITY_STAFF})
#: Who sees supporters and requests at all (district members: their own district, read only).
VIEWERS = PLANNERS | {Level.DISTRICT_MEMBER}
#: Why a request is unmet, as coordinators read it (:data:`gis.matching.REASONS`).
REASON_JA = {
    "no_location": "場所が不明",
    "no_kind": "その活動をする人がいない",
    "no_time": "時間が合わない",
    "too_far": "近くにいない",
    "at_capacity": "受け持ちがいっぱい",
}
assert set(REASON_JA) == set(REASONS)
#: What a suggestion or an unmet request shows of the request.
SHOWN_REQUEST = ("request_id", "district_code", "requester_name", "address", "activity", "recurrence",
                 "starts_on")
#: Matching: a supporter who helped this requester before counts as this many metres nearer;
#: pairs are searched this far (a farther supporter is "too far" with no distance given).
CONTINUITY_M = 300.0
SEARCH_M = 3000.0
#: Walking reach of a supporter recruited where :func:`gis.matching.recruit_sites` suggests, when no
#: registered supporter offers the activity (metres).
DEFAULT_REACH_M = 600.0
#: How many places per activity the recruiting map suggests: the one where one more supporter
#: would reach most unmet requests (for a single site the greedy choice is the optimum).
RECRUIT_SITES = 1
#: How many suggestions and unmet requests the whole city's page lists (a district's: all).
CITY_ROWS = 40


def check_planner(access: Access) -> None:
    """:class:`AccessDenied` unless the viewer registers and dispatches (coordinators, city staff)."""
    if access.level not in PLANNERS:
        raise AccessDenied("地域福祉サポーターの登録・派遣はコーディネーターと市職員が行います")


def check_viewer(access: Access, district: str | None = None) -> None:
    """:class:`AccessDenied` unless the viewer may see supporters and requests (of ``district``)."""
    if access.level not in VIEWERS:
        raise AccessDenied("地域福祉サポーターの名簿と依頼は、権限のある利用者だけが見られます")
    if access.level == Level.DISTRICT_MEMBER and district not in (None, access.district):
        raise AccessDenied("ほかの地区のサポーターと依頼は見られません")


def today_jst() -> dt.date:
    return dt.datetime.now(JST).date()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --- reading, as the viewer ----------------------------------------------------------------------

def _records(store: Store, layer: str, access: Access, *, district: str | None = None) -> list[dict]:
    """Rows of a record layer the viewer may see (logged by the store); none before the first."""
    if str(layer) not in store.layers():
        return []
    return read_records(store, str(layer), access, district=district)


def _frame(store: Store, layer: str, access: Access, *, district: str | None = None) -> gpd.GeoDataFrame:
    if str(layer) not in store.layers():
        return gpd.GeoDataFrame({"geometry": []}, geometry="geometry", crs=crs.METRIC)
    return read_rows(store, str(layer), access, district=district)


def _row(store: Store, layer: str, key: str, *, access: Access) -> dict:
    """One row by its key, as the viewer (logged); :class:`NotFoundError` when absent, also when
    the layer has no row at all yet (a store without supporters is not a broken store)."""
    if str(layer) not in store.layers():
        raise NotFoundError(f"{REGISTRY[str(layer)].title_ja}に {key} はありません")
    return store.read_row(str(layer), key, access=access)


def _trusted(store: Store, layer: str) -> pd.DataFrame:
    """A whole layer as the store's trusted user, for counts only (never shown as rows)."""
    if str(layer) not in store.layers():
        return pd.DataFrame()
    return store.read(str(layer))


def supporters(store: Store, access: Access, *, district: str | None = None) -> list[dict]:
    """The supporters the viewer may see (district members: their own district), with Japanese
    labels (``activities_ja``, ``status_ja``, ``season_ja``, ``availability_ja``) and ``active``
    (dispatches in progress)."""
    check_viewer(access, district)
    if access.level == Level.DISTRICT_MEMBER:
        district = access.district
    rows = _records(store, L.SUPPORTERS, access, district=district)
    load = Counter(d["supporter_id"] for d in _records(store, L.DISPATCHES, access)
                   if d.get("status") == DispatchStatus.ACTIVE)
    for row in rows:
        row.update(_supporter_labels(row))
        row["active"] = load.get(row["supporter_id"], 0)
    return sorted(rows, key=lambda r: (r.get("district_code") or "", r["supporter_id"]))


def _supporter_labels(row: dict) -> dict:
    acts = split_list(row.get("activities"))
    return {
        "activities_ja": "・".join(ACTIVITY_JA.get(a, a) for a in acts),
        "menu_ja": "・".join(MENU_JA.get(m, m) for m in split_list(row.get("menu_kinds"))),
        "status_ja": STATUS_JA.get(row.get("status"), row.get("status") or ""),
        "season_ja": SEASON_JA.get(row.get("season"), "通年"),
        "availability_ja": f"{weekdays_ja(row.get('weekdays'))} {_hours(row.get('hours'))}",
        "training_ja": "、".join(_training(t) for t in split_list(row.get("training"))),
    }


def _hours(text) -> str:
    try:
        return hours_ja(text)
    except ValueError:
        return str(text)


def _training(item: str) -> str:
    code, _, on = item.partition(":")
    label = TRAINING_JA.get(code, code)
    return f"{label}（{on}）" if on else label


def requests(store: Store, access: Access, *, district: str | None = None) -> list[dict]:
    """The help requests the viewer may see, with labels and their active supporter, if any."""
    check_viewer(access, district)
    if access.level == Level.DISTRICT_MEMBER:
        district = access.district
    rows = _records(store, L.REQUESTS, access, district=district)
    active = {d["request_id"]: d for d in _records(store, L.DISPATCHES, access, district=district)
              if d.get("status") == DispatchStatus.ACTIVE}
    last = _last_done(_records(store, L.ACTIVITIES, access, district=district))
    linked = {str(r["person_id"]) for r in rows if r.get("person_id")}
    visible = ({str(r["person_id"]) for r in read_records(store, Layer.REGISTER, access, district=district)}
               if linked else set())
    for row in rows:
        if row.get("person_id") and str(row["person_id"]) not in visible:
            row["person_id"] = None  # who else is on the register is not the viewer's to learn
        row.update(_request_labels(row))
        dispatch = active.get(row["request_id"])
        row["dispatch_id"] = dispatch["dispatch_id"] if dispatch else None
        row["supporter_id"] = dispatch["supporter_id"] if dispatch else None
        row["last_done_on"] = last.get(row["request_id"])
        row["next_ja"] = _next(row)
    return sorted(rows, key=lambda r: (r.get("district_code") or "", r["request_id"]))


def _request_labels(row: dict) -> dict:
    return {
        "activity_ja": ACTIVITY_JA.get(row.get("activity"), row.get("activity") or ""),
        "recurrence_ja": RECURRENCE_JA.get(row.get("recurrence"), row.get("recurrence") or ""),
        "status_ja": REQUEST_STATUS_JA.get(row.get("status"), row.get("status") or ""),
        "when_ja": _when(row),
    }


def _when(row: dict) -> str:
    if row.get("recurrence") == Recurrence.ONCE and row.get("starts_on"):
        day = dt.date.fromisoformat(row["starts_on"])
        return f"{day.month}月{day.day}日（{'月火水木金土日'[day.weekday()]}） {_hours(row.get('hours'))}"
    if row.get("recurrence") == Recurrence.EVERY_SNOWFALL:
        return f"降雪の後 {_hours(row.get('hours'))}"
    return f"{weekdays_ja(row.get('weekdays'))} {_hours(row.get('hours'))}"


def _next(row: dict) -> str:
    """When a recurring request is due next (a one-off or closed request: empty): a weekly one on
    its next weekday after the last visit, an every-snowfall one after the next snowfall."""
    if row.get("status") not in (RequestStatus.OPEN, RequestStatus.DISPATCHED):
        return ""
    if row.get("recurrence") == Recurrence.EVERY_SNOWFALL:
        return "次の降雪の後"
    if row.get("recurrence") != Recurrence.WEEKLY:
        return ""
    after = row.get("last_done_on") or row.get("starts_on") or row.get("received_on")
    if not after:
        return ""
    day = dt.date.fromisoformat(after) + dt.timedelta(days=1 if row.get("last_done_on") else 0)
    days = day_numbers(row.get("weekdays"))
    while day.weekday() not in days:
        day += dt.timedelta(days=1)
    return f"次回 {day.month}月{day.day}日（{'月火水木金土日'[day.weekday()]}）"


def _last_done(activities: list[dict]) -> dict[str, str]:
    out: dict[str, str] = {}
    for a in activities:
        if a.get("done") and a.get("done_on") and a["done_on"] > out.get(a["request_id"], ""):
            out[a["request_id"]] = a["done_on"]
    return out


# --- matching ------------------------------------------------------------------------------------

@dataclass
class MatchView:
    """What :func:`match_requests` found, ready for a page, the command line or JSON."""

    district: str | None
    winter: bool
    season: Season
    result: MatchResult
    suggestions: list[dict]
    unmet: list[dict]
    recruit: list[dict]
    waiting: list[dict]
    supporters: dict[str, dict] = field(repr=False)
    requests: dict[str, dict] = field(repr=False)

    @property
    def counts(self) -> dict[str, int]:
        by = Counter(u["reason"] for u in self.unmet)
        return {"open": len(self.suggestions) + len(self.unmet), "met": len(self.suggestions),
                "unmet": len(self.unmet), "waiting": len(self.waiting),
                **{f"unmet_{r}": by.get(r, 0) for r in REASONS}}

    def as_json(self) -> dict:
        """The match without names or addresses (ids, kinds, distances, reasons): what
        ``karte match --json`` prints and the API returns."""
        keep_s = ("request_id", "supporter_id", "district_code", "activity", "distance_m", "overlap_min",
                  "continuity", "reasons")
        keep_u = ("request_id", "district_code", "activity", "reason", "reason_ja", "detail_ja", "nearest_m")
        return {
            "district": self.district, "winter": self.winter,
            "season": "冬期（積雪期）の条件" if self.winter else "通常期の条件",
            "season_today": self.season.label_ja,
            "solver": self.result.solver, "seconds": round(self.result.seconds, 3), "counts": self.counts,
            "total_distance_m": round(self.result.total_distance_m, 1),
            "suggestions": [{k: s[k] for k in keep_s} for s in self.suggestions],
            "unmet": [{k: u[k] for k in keep_u} for u in self.unmet],
            "recruit": [{k: r[k] for k in ("activity", "activity_ja", "rank", "place", "gain", "lon", "lat")}
                        for r in self.recruit],
        }


def match_params(*, winter: bool, analysis: AnalysisParams | None = None) -> MatchParams:
    """The engine's parameters: in the snow season walking reach shrinks by the winter factor
    (walking in snow), except for activities done by car."""
    analysis = analysis or AnalysisParams()
    scale = tuple((a.value, analysis.winter_factor) for a in Activity if a not in DRIVEN) if winter else ()
    return MatchParams(detour_factor=analysis.detour_factor, max_m=SEARCH_M, continuity_m=CONTINUITY_M,
                       reach_scale=scale)


@dataclass
class MatchInputs:
    """What the engine is given for one match (:func:`match_inputs`): its requests and supporters
    frames and parameters, the rows they came from (as the viewer read them) and the open
    requests that wait (out of season, past their end)."""

    requests: gpd.GeoDataFrame
    supporters: gpd.GeoDataFrame
    params: MatchParams
    winter: bool
    season: Season
    rows: gpd.GeoDataFrame = field(repr=False)
    roster: gpd.GeoDataFrame = field(repr=False)
    waiting: list[dict] = field(default_factory=list)


def match_inputs(store: Store, access: Access, *, district: str | None = None, winter: bool | None = None,
                 today: dt.date | None = None) -> MatchInputs:
    """The engine's inputs for the open requests of ``district`` (or the city): registered
    supporters of every district with their load (dispatches in progress), availability for the
    season, and for each request the supporters who helped its requester before. Personal rows
    are read as the viewer (logged)."""
    check_planner(access)
    today = today or today_jst()
    now = season(today)
    winter = now.winter if winter is None else bool(winter)
    sups = _frame(store, L.SUPPORTERS, access)
    reqs = _frame(store, L.REQUESTS, access, district=district)
    dispatches = _records(store, L.DISPATCHES, access)
    activities = _records(store, L.ACTIVITIES, access)
    load = Counter(d["supporter_id"] for d in dispatches if d.get("status") == DispatchStatus.ACTIVE)
    previous = _previous(reqs, dispatches, activities)
    open_rows, waiting = [], []
    records = reqs.drop(columns=reqs.geometry.name).to_dict("records") if len(reqs) else []
    for i, row in enumerate(records):
        if row.get("status") != RequestStatus.OPEN:
            continue
        why = _waiting(row, winter=winter, today=today)
        if why:
            waiting.append({**row, **_request_labels(row), "waiting_ja": why})
        else:
            open_rows.append(i)
    registered = sups[sups["status"] == SupporterStatus.REGISTERED] if len(sups) else sups
    return MatchInputs(_engine_requests(reqs.iloc[open_rows], previous) if len(reqs) else _no_requests(),
                       _engine_supporters(registered, load, winter=winter), match_params(winter=winter),
                       winter, now, reqs, sups, waiting)


def _no_requests() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"request_id": [], "kind": []}, geometry=[], crs=crs.METRIC)


def match_requests(store: Store, access: Access, *, district: str | None = None, winter: bool | None = None,
                   today: dt.date | None = None, network: WalkNetwork | None = None,
                   recruit: bool = True) -> MatchView:
    """Suggest a supporter for every open request of ``district`` (or the whole city) at once.

    Supporters of every district may serve (distance decides, not the district line); requests
    out of season (雪かき outside the snow season) or past their end wait and are listed apart.
    ``winter`` overrides the season in force (:func:`karte.analysis.season`); ``network`` gives
    walking distances along a network. Personal rows are read as the viewer (logged).
    """
    inputs = match_inputs(store, access, district=district, winter=winter, today=today)
    params, winter, now, reqs, sups = inputs.params, inputs.winter, inputs.season, inputs.rows, inputs.roster
    waiting = inputs.waiting
    registered = sups[sups["status"] == SupporterStatus.REGISTERED] if len(sups) else sups
    result = match(inputs.requests, inputs.supporters, params=params, network=network)

    by_request = {r["request_id"]: r for r in reqs.drop(columns=reqs.geometry.name).to_dict("records")} \
        if len(reqs) else {}
    where = dict(zip(reqs["request_id"], reqs.geometry, strict=True)) if len(reqs) else {}
    by_supporter = {r["supporter_id"]: r for r in sups.drop(columns=sups.geometry.name).to_dict("records")} \
        if len(sups) else {}
    home = dict(zip(sups["supporter_id"], sups.geometry, strict=True)) if len(sups) else {}
    scale = dict(params.reach_scale)
    alternatives = defaultdict(list)
    for c in result.candidates.to_dict("records"):
        alternatives[c["request_id"]].append(c)
    suggestions = []
    for a in result.assignments.to_dict("records"):
        req, sup = by_request[a["request_id"]], by_supporter[a["supporter_id"]]
        reasons = _reasons_ja(req, sup, a, reach_scale=scale.get(req["activity"], 1.0))
        others = [c for c in alternatives[a["request_id"]] if c["supporter_id"] != a["supporter_id"]][:3]
        suggestions.append({
            **{k: req.get(k) for k in SHOWN_REQUEST},
            **_request_labels(req), "supporter_id": a["supporter_id"], "supporter_name": sup.get("name"),
            "supporter_phone": sup.get("phone"), "supporter_district": sup.get("district_code"),
            "distance_m": round(float(a["distance_m"])), "overlap_min": int(a["overlap_min"]),
            "continuity": bool(a["continuity"]), "reasons": reasons,
            "alternatives": [{"supporter_id": c["supporter_id"],
                              "name": by_supporter[c["supporter_id"]].get("name"),
                              "distance_m": round(float(c["distance_m"])),
                              "continuity": bool(c["continuity"])}
                             for c in others],
            "request_xy": _xy(where.get(a["request_id"])), "supporter_xy": _xy(home.get(a["supporter_id"])),
        })
    unmet = []
    for u in result.unmet.to_dict("records"):
        req = by_request[u["request_id"]]
        unmet.append({
            **{k: req.get(k) for k in SHOWN_REQUEST},
            **_request_labels(req), "reason": u["reason"], "reason_ja": REASON_JA[u["reason"]],
            "detail_ja": _unmet_ja(u, req),
            "nearest_m": None if pd.isna(u["nearest_m"]) else round(u["nearest_m"]),
            "request_xy": _xy(where.get(u["request_id"])),
        })
    view = MatchView(district, winter, now, result, suggestions, unmet, [], waiting, by_supporter, by_request)
    if recruit and unmet:
        view.recruit = _recruit(store, view, registered, where, params, network=network)
    return view


def _waiting(row: dict, *, winter: bool, today: dt.date) -> str:
    """Why an open request is not matched now (empty: it is)."""
    snowy = row.get("activity") in WINTER_ONLY or row.get("recurrence") == Recurrence.EVERY_SNOWFALL
    if snowy and not winter:
        return "積雪期に調整します"
    if row.get("ends_on") and row["ends_on"] < today.isoformat():
        return "希望の期間が過ぎています（取下げか期間の変更を）"
    return ""


def _previous(reqs: pd.DataFrame, dispatches: list[dict], activities: list[dict]) -> dict[str, set[str]]:
    """Supporters who helped each request's requester before (this request or another of theirs:
    the same register person, else the same name and address)."""
    helped: dict[str, set[str]] = defaultdict(set)
    for d in dispatches:
        helped[d["request_id"]].add(d["supporter_id"])
    for a in activities:
        if a.get("done"):
            helped[a["request_id"]].add(a["supporter_id"])
    if not len(reqs):
        return {}
    key_of = {r: (p if isinstance(p, str) and p else f"{n}|{a}")
              for r, p, n, a in zip(reqs["request_id"], reqs.get("person_id", [None] * len(reqs)),
                                    reqs["requester_name"], reqs["address"], strict=True)}
    by_person: dict[str, set[str]] = defaultdict(set)
    for rid, key in key_of.items():
        by_person[key] |= helped.get(rid, set())
    return {rid: by_person[key] | helped.get(rid, set()) for rid, key in key_of.items()}


def _engine_requests(reqs: gpd.GeoDataFrame, previous: dict[str, set[str]]) -> gpd.GeoDataFrame:
    days, windows = [], []
    for rec, start, weekdays, hours in zip(reqs["recurrence"], reqs["starts_on"], reqs["weekdays"],
                                           reqs["hours"], strict=True):
        if rec == Recurrence.ONCE and isinstance(start, str) and start:
            days.append([dt.date.fromisoformat(start).weekday()])
        else:
            days.append(sorted(day_numbers(weekdays)))
        windows.append(parse_hours(hours))
    return gpd.GeoDataFrame({
        "request_id": reqs["request_id"].astype(str).to_numpy(), "kind": reqs["activity"].to_numpy(),
        "days": pd.Series(days, dtype=object).to_numpy(),
        "windows": pd.Series(windows, dtype=object).to_numpy(),
        "previous": [frozenset(previous.get(r, ())) for r in reqs["request_id"]],
    }, geometry=reqs.geometry.to_numpy(), crs=reqs.crs or crs.METRIC)


def _engine_supporters(sups: gpd.GeoDataFrame, load: Counter, *, winter: bool) -> gpd.GeoDataFrame:
    if not len(sups):
        return gpd.GeoDataFrame({"supporter_id": [], "kinds": [], "capacity": []}, geometry=[],
                                crs=crs.METRIC)
    return gpd.GeoDataFrame({
        "supporter_id": sups["supporter_id"].astype(str).to_numpy(),
        "kinds": [frozenset(split_list(a)) for a in sups["activities"]],
        "days": pd.Series([sorted(day_numbers(w)) for w in sups["weekdays"]], dtype=object).to_numpy(),
        "windows": pd.Series([parse_hours(h) for h in sups["hours"]], dtype=object).to_numpy(),
        "available": [topic.Season(s or "all").covers(winter) for s in sups["season"]],
        "reach_m": pd.to_numeric(sups["reach_m"], errors="coerce").to_numpy(dtype=float),
        "capacity": pd.to_numeric(sups["capacity"], errors="coerce").to_numpy(dtype=float),
        "load": [load.get(s, 0) for s in sups["supporter_id"]],
    }, geometry=sups.geometry.to_numpy(), crs=sups.crs or crs.METRIC)


def _reasons_ja(req: dict, sup: dict, a: dict, *, reach_scale: float) -> list[str]:
    reach = float(sup.get("reach_m") or SEARCH_M) * reach_scale
    note = "（冬期は短縮）" if reach_scale != 1.0 else ""
    out = [f"{ACTIVITY_JA.get(req['activity'], req['activity'])}ができる",
           f"時間が重なる（週{a['overlap_min'] / 60:g}時間）: "
           f"{weekdays_ja(sup.get('weekdays'))} {_hours(sup.get('hours'))}",
           f"徒歩 {a['distance_m']:,.0f} m（活動範囲 {reach:,.0f} m{note}）",
           f"受け持ち {int(a['load'])}/{int(a['capacity'])} 件 → この派遣で残り {int(a['spare'])} 件"]
    if a["continuity"]:
        out.append("以前にもこの方を担当（継続）")
    return out


def _unmet_ja(u: dict, req: dict) -> str:
    act = ACTIVITY_JA.get(req.get("activity"), req.get("activity") or "")
    reason = u["reason"]
    if reason == "no_location":
        return "依頼の場所（住所）が分かりません。住所を確認してください"
    if reason == "no_kind":
        return f"{act}をする登録サポーターがいません"
    if reason == "no_time":
        return (f"{act}をするサポーター {u['offering']} 人は、いずれも依頼の曜日・時間帯（{_when(req)}）に"
                "活動できません")
    if reason == "too_far":
        near = f"（最も近い人まで徒歩 {u['nearest_m']:,.0f} m）" if not pd.isna(u["nearest_m"]) else \
            f"（徒歩 {SEARCH_M:,.0f} m 以内にいません）"
        return f"その時間に{act}ができる {u['in_time']} 人は、いずれも活動範囲の外です{near}"
    taken = f"、うち {u['taken']} 人はこの調整で他の依頼に割り当て" if u["taken"] else ""
    return f"近くで{act}ができる {u['near']} 人はすべて受け持ちがいっぱいです{taken}"


def _xy(geom) -> tuple[float, float] | None:
    if geom is None or geom.is_empty:
        return None
    return float(geom.x), float(geom.y)


def _recruit(store: Store, view: MatchView, registered: gpd.GeoDataFrame, where: dict, params: MatchParams,
             *, network: WalkNetwork | None) -> list[dict]:
    """Per activity with unmet requests: where one more supporter would reach most of them
    (candidate homes: the small areas' representative points of the district or the city)."""
    snap = current(store)
    areas = snap.small_areas
    if view.district is not None:
        areas = areas[areas["district_code"] == view.district]
    pop = pd.to_numeric(areas["population"], errors="coerce").fillna(0)
    areas = areas[pop.to_numpy() > 0]
    if areas.empty:
        return []
    candidates = gpd.GeoDataFrame({"key_code": areas["key_code"].to_numpy(),
                                   "place": areas["name"].to_numpy(),
                                   "district_code": areas["district_code"].to_numpy()},
                                  geometry=areas.geometry.representative_point().to_numpy(), crs=areas.crs)
    scale = dict(params.reach_scale)
    out = []
    unmet = [u for u in view.unmet if u["reason"] != "no_location"]
    for activity in sorted({u["activity"] for u in unmet}):
        points = [where[u["request_id"]] for u in unmet if u["activity"] == activity]
        offering = (registered[[activity in split_list(a) for a in registered["activities"]]]
                    if len(registered) else registered)
        reach = float(pd.to_numeric(offering["reach_m"], errors="coerce").median()) if len(offering) \
            else DEFAULT_REACH_M
        reach = (reach if reach == reach else DEFAULT_REACH_M) * scale.get(activity, 1.0)
        demand = gpd.GeoDataFrame(geometry=points, crs=candidates.crs)
        sites = recruit_sites(demand, candidates, reach_m=reach, k=RECRUIT_SITES,
                              detour_factor=params.detour_factor, network=network,
                              method="greedy" if RECRUIT_SITES == 1 else "auto")
        lonlat = sites.to_crs(crs.WGS84) if len(sites) else sites
        for (_, site), (_, ll) in zip(sites.iterrows(), lonlat.iterrows(), strict=True):
            out.append({"activity": activity, "activity_ja": ACTIVITY_JA.get(activity, activity),
                        "rank": int(site["rank"]), "place": site["place"],
                        "district_code": site["district_code"],
                        "gain": int(site["gain"]), "reach_m": round(reach), "unmet": len(points),
                        "x": float(site.geometry.x), "y": float(site.geometry.y),
                        "lon": round(float(ll.geometry.x), 5), "lat": round(float(ll.geometry.y), 5)})
    return sorted(out, key=lambda r: (-r["gain"], r["activity"], r["rank"]))


# --- writing: supporters and requests ------------------------------------------------------------

#: Fields of a supporter a form or a file sets (the rest is the store's or derived).
SUPPORTER_FIELDS = tuple(c.name for c in topic.SUPPORTER_COLUMNS[2:])
REQUEST_FIELDS = tuple(c.name for c in topic.REQUEST_COLUMNS[2:])


def _raise(problems: list[tuple[str, str, str]], what: str) -> None:
    if problems:
        raise InputError(f"{what}を保存できません: " + "、".join(f"{f}: {ja}" for f, ja, _ in problems))


def _place(store: Store, point) -> str | None:
    """The district a point lies in (the build's districts), or None."""
    if point is None:
        return None
    districts = current(store).districts
    found = locate_points(gpd.GeoDataFrame(geometry=[point], crs=crs.METRIC), districts, "district_code")
    return found.iloc[0]


def save_supporter(store: Store, access: Access, values: dict, *, point=None, supporter_id: str | None = None,
                   version: int | None = None) -> dict:
    """Register a supporter (no ``supporter_id``: a new row, id from the store) or change one
    (``supporter_id`` and the ``version`` that was read). ``values`` are codes as stored;
    ``point`` the home (EPSG:6678; the district follows from it unless given)."""
    check_planner(access)
    values = {k: v for k, v in values.items() if k in SUPPORTER_FIELDS}
    acts = split_list(values.get("activities"))
    if acts and all(a in Activity._value2member_map_ for a in acts):  # stored in the vocabulary's order
        values["activities"] = join_list(a.value for a in Activity if a.value in acts)
        if not values.get("menu_kinds"):
            menus = {Activity(a).menu for a in acts}
            values["menu_kinds"] = join_list(m.value for m in MenuKind if m in menus)
    values.setdefault("season", "all")
    values["status"] = values.get("status") or SupporterStatus.APPLIED.value
    if values.get("cooperator_id"):  # a 共助協力者 registering: their roster entry fills the gaps
        coop = _cooperator(store, access, values["cooperator_id"])
        values["name"] = values.get("name") or coop.get("name")
        values["phone"] = values.get("phone") or coop.get("phone")
        if point is None and supporter_id is None and coop.get("geometry") is not None:
            point = coop["geometry"]
            values.setdefault("district_code", coop.get("district_code"))
    if point is not None and not values.get("district_code"):
        values["district_code"] = _place(store, point)
    problems = supporter_problems(values)
    if supporter_id is None and point is None:
        problems.append(("address", "住所（または共助協力者の番号）が必要です", "no home"))
    _raise(problems, "サポーター")
    if point is not None:
        values["geometry"] = point
    if supporter_id is None:
        values.setdefault("applied_on", today_jst().isoformat())
        values.setdefault("status_since", values["applied_on"])
        return store.append_rows(L.SUPPORTERS, [values], access=access)[0]
    if version is None:
        raise InputError("変更には読み込んだ版 (version) が必要です")
    old = _row(store, L.SUPPORTERS, supporter_id, access=access)
    if values.get("status") != old.get("status") and "status_since" not in values:
        values["status_since"] = today_jst().isoformat()
    changes = {k: v for k, v in values.items() if k == "geometry" or old.get(k) != v}
    if not changes:
        return old
    store.update_row(L.SUPPORTERS, supporter_id, changes, version=int(version), access=access)
    return _row(store, L.SUPPORTERS, supporter_id, access=access)


def _cooperator(store: Store, access: Access, cooperator_id: str) -> dict:
    """The roster entry a supporter is linked to (read as the viewer); :class:`InputError` when the
    viewer's roster has no such number."""
    try:
        return store.read_row(Layer.COOPERATORS, cooperator_id, access=access)
    except (NotFoundError, KarteError):
        raise InputError(f"共助協力者の名簿に番号 {cooperator_id} はありません") from None


def save_request(store: Store, access: Access, values: dict, *, point=None, request_id: str | None = None,
                 version: int | None = None) -> dict:
    """Record a help request (or change one: ``request_id`` and ``version``). ``values`` are codes;
    ``point`` the place (EPSG:6678)."""
    check_planner(access)
    values = {k: v for k, v in values.items() if k in REQUEST_FIELDS}
    values["status"] = values.get("status") or RequestStatus.OPEN.value
    if point is not None and not values.get("district_code"):
        values["district_code"] = _place(store, point)
    problems = request_problems(activity=values.get("activity"), recurrence=values.get("recurrence"),
                                weekdays=values.get("weekdays"), hours=values.get("hours"),
                                starts_on=values.get("starts_on"), ends_on=values.get("ends_on"))
    if values.get("activity") not in Activity._value2member_map_:
        problems.append(("activity", "依頼の活動の種類が読めません", "unknown activity"))
    if values.get("recurrence") not in Recurrence._value2member_map_:
        problems.append(("recurrence", "頻度が読めません（1回・毎週・降雪のたび）", "unknown recurrence"))
    if not str(values.get("requester_name") or "").strip():
        problems.append(("requester_name", "依頼者の氏名が空です", "requester missing"))
    _raise(problems, "依頼")
    if point is not None:
        values["geometry"] = point
    if request_id is None:
        values.setdefault("received_on", today_jst().isoformat())
        return store.append_rows(L.REQUESTS, [values], access=access)[0]
    if version is None:
        raise InputError("変更には読み込んだ版 (version) が必要です")
    store.update_row(L.REQUESTS, request_id, values, version=int(version), access=access)
    return _row(store, L.REQUESTS, request_id, access=access)


# --- dispatch and activity -----------------------------------------------------------------------

def dispatch(store: Store, access: Access, *, request_id: str, supporter_id: str,
             today: dt.date | None = None) -> dict:
    """Confirm a match (派遣): the supporter goes to the request. The pair must fit now (the same
    tests as the match: kind, season and time, reach, spare capacity); the request becomes
    派遣中. Returns the dispatch row as stored."""
    check_planner(access)
    today = today or today_jst()
    req = _row(store, L.REQUESTS, request_id, access=access)
    if req.get("status") != RequestStatus.OPEN:
        raise ConflictError("この依頼は受付中ではありません（すでに派遣中・完了・取下げ）。"
                            "読み込み直してください")
    sup = _row(store, L.SUPPORTERS, supporter_id, access=access)
    if sup.get("status") != SupporterStatus.REGISTERED:
        raise InputError("登録中（状況「登録」）のサポーターだけを派遣できます")
    winter = season(today).winter
    why = _waiting(req, winter=winter, today=today)
    if why:
        raise InputError(f"この依頼はいま派遣を調整できません: {why}")
    active = [d for d in _records(store, L.DISPATCHES, access) if d.get("status") == DispatchStatus.ACTIVE]
    load = Counter(d["supporter_id"] for d in active)
    previous = {d["supporter_id"] for d in _records(store, L.DISPATCHES, access)
                if d.get("request_id") == request_id}
    reqs = gpd.GeoDataFrame([{k: v for k, v in req.items() if k != "geometry"}],
                            geometry=[req.get("geometry")], crs=crs.METRIC)
    sups = gpd.GeoDataFrame([{k: v for k, v in sup.items() if k != "geometry"}],
                            geometry=[sup.get("geometry")], crs=crs.METRIC)
    params = match_params(winter=winter)
    result = match(_engine_requests(reqs, {request_id: previous}),
                   _engine_supporters(sups, load, winter=winter), params=params)
    if result.met != 1:
        u = result.unmet.iloc[0].to_dict()
        raise InputError(f"このサポーターは派遣できません: {REASON_JA[u['reason']]}（{_unmet_ja(u, req)}）")
    a = result.assignments.iloc[0].to_dict()
    reasons = _reasons_ja(req, sup, a, reach_scale=dict(params.reach_scale).get(req["activity"], 1.0))
    store.update_row(L.REQUESTS, request_id, {"status": RequestStatus.DISPATCHED.value},
                     version=int(req["version"]), access=access)
    row = {"request_id": request_id, "supporter_id": supporter_id, "district_code": req.get("district_code"),
           MUNICIPALITY: req.get(MUNICIPALITY), "activity": req.get("activity"),
           "status": DispatchStatus.ACTIVE.value, "distance_m": round(float(a["distance_m"]), 1),
           "reasons": " / ".join(reasons), "decided_by": access.user, "decided_at": _now()}
    try:
        return store.append_rows(L.DISPATCHES, [row], access=access)[0]
    except Exception:  # the dispatch was not written: the request is open again
        fresh = _row(store, L.REQUESTS, request_id, access=access)
        store.update_row(L.REQUESTS, request_id, {"status": RequestStatus.OPEN.value},
                         version=int(fresh["version"]), access=access)
        raise


def end_dispatch(store: Store, access: Access, *, dispatch_id: str, reason: str = "",
                 today: dt.date | None = None, reopen: bool = True) -> dict:
    """End a dispatch (the supporter stops going); the request is open again for another
    supporter unless it is done (``reopen=False`` closes it)."""
    check_planner(access)
    today = today or today_jst()
    d = _row(store, L.DISPATCHES, dispatch_id, access=access)
    if d.get("status") != DispatchStatus.ACTIVE:
        raise ConflictError("この派遣はすでに終了しています")
    store.update_row(L.DISPATCHES, dispatch_id, {"status": DispatchStatus.ENDED.value,
                                                 "ended_on": today.isoformat(), "end_reason": reason or None},
                     version=int(d["version"]), access=access)
    req = _row(store, L.REQUESTS, d["request_id"], access=access)
    if req.get("status") == RequestStatus.DISPATCHED:
        change = ({"status": RequestStatus.OPEN.value} if reopen else
                  {"status": RequestStatus.CLOSED.value, "closed_on": today.isoformat()})
        store.update_row(L.REQUESTS, d["request_id"], change, version=int(req["version"]), access=access)
    return _row(store, L.DISPATCHES, dispatch_id, access=access)


def close_request(store: Store, access: Access, *, request_id: str, cancelled: bool = False,
                  note: str = "", today: dt.date | None = None) -> dict:
    """Close a request (完了) or withdraw it (取下げ); its dispatch in progress ends."""
    check_planner(access)
    today = today or today_jst()
    req = _row(store, L.REQUESTS, request_id, access=access)
    if req.get("status") in (RequestStatus.CLOSED, RequestStatus.CANCELLED):
        raise ConflictError("この依頼はすでに完了か取下げです")
    for d in _records(store, L.DISPATCHES, access):
        if d.get("request_id") == request_id and d.get("status") == DispatchStatus.ACTIVE:
            end_dispatch(store, access, dispatch_id=d["dispatch_id"],
                         reason="取下げ" if cancelled else "完了", today=today, reopen=False)
            req = _row(store, L.REQUESTS, request_id, access=access)
    status = RequestStatus.CANCELLED if cancelled else RequestStatus.CLOSED
    change = {"status": status.value, "closed_on": today.isoformat()}
    if note:
        change["notes"] = (f"{req['notes']} / " if req.get("notes") else "") + note
    if req.get("status") != status:
        store.update_row(L.REQUESTS, request_id, change, version=int(req["version"]), access=access)
    return _row(store, L.REQUESTS, request_id, access=access)


def record_activity(store: Store, access: Access, *, dispatch_id: str, done_on: dt.date, done: bool = True,
                    hours: float | None = None, visits: int | None = None, note: str = "",
                    today: dt.date | None = None) -> dict:
    """Record what a supporter did for a dispatch, and what follows: points by the rule table when
    it was done (an ``earned`` entry in the ledger), a one-off request closed (the dispatch ends),
    a weekly or every-snowfall request kept going. Returns ``{"activity", "entry", "request"}``."""
    check_planner(access)
    d = _row(store, L.DISPATCHES, dispatch_id, access=access)
    if d.get("status") != DispatchStatus.ACTIVE:
        raise ConflictError("終了した派遣には活動を記録できません")
    if done_on > (today or today_jst()):
        raise InputError("活動日が未来の日付です")
    if hours is not None and not 0 < float(hours) <= 24:
        raise InputError("時間は 0 より大きく 24 以下で入力してください")
    if visits is not None and int(visits) < 1:
        raise InputError("回数は 1 以上で入力してください")
    winter = season(done_on).winter
    activity = {
        "dispatch_id": dispatch_id, "request_id": d["request_id"], "supporter_id": d["supporter_id"],
        "district_code": d.get("district_code"), MUNICIPALITY: d.get(MUNICIPALITY), "activity": d["activity"],
        "done_on": done_on.isoformat(), "hours": float(hours) if hours is not None else None,
        "visits": int(visits) if visits is not None else None, "done": bool(done), "winter": winter,
        "note": note or None, "recorded_by": access.user, "recorded_at": _now()}
    stored = store.append_rows(L.ACTIVITIES, [activity], access=access)[0]
    entry = None
    if done:
        got = award(d["activity"], hours=hours, visits=visits, winter=winter)
        sup = _row(store, L.SUPPORTERS, d["supporter_id"], access=access)
        entry = _append_entry(store, access, sup, done_on, EntryKind.EARNED, got.points,
                              activity_id=stored["activity_id"], rule=got.rule_ja)
    req = _row(store, L.REQUESTS, d["request_id"], access=access)
    if done and req.get("recurrence") == Recurrence.ONCE:
        end_dispatch(store, access, dispatch_id=dispatch_id, reason="完了", today=done_on, reopen=False)
        req = _row(store, L.REQUESTS, d["request_id"], access=access)
    return {"activity": stored, "entry": entry, "request": req}


# --- points --------------------------------------------------------------------------------------

def _append_entry(store: Store, access: Access, sup: dict, on: dt.date, kind: EntryKind, points: int, *,
                  activity_id=None, reverses=None, rule=None, note=None) -> dict:
    row = {"supporter_id": sup["supporter_id"], "district_code": sup.get("district_code"),
           MUNICIPALITY: sup.get(MUNICIPALITY), "entry_on": on.isoformat(), "fiscal_year": fiscal_year_of(on),
           "entry_kind": kind.value, "points": int(points), "activity_id": activity_id, "reverses": reverses,
           "rule": rule, "note": note or None, "recorded_by": access.user, "recorded_at": _now()}
    return store.append_rows(L.LEDGER, [row], access=access)[0]


def ledger(store: Store, access: Access, *, supporter_id: str | None = None,
           district: str | None = None) -> list[dict]:
    """Ledger entries the viewer may see (of one supporter), oldest first, with ``entry_ja``."""
    check_viewer(access, district)
    rows = _records(store, L.LEDGER, access, district=district if district else
                    (access.district if access.level == Level.DISTRICT_MEMBER else None))
    if supporter_id is not None:
        rows = [r for r in rows if r["supporter_id"] == supporter_id]
    for r in rows:
        r["entry_ja"] = ENTRY_JA.get(r["entry_kind"], r["entry_kind"])
    return sorted(rows, key=lambda r: (r["entry_on"], r["entry_id"]))


def balance(entries: list[dict]) -> int:
    """A supporter's points: the sum of their ledger entries (nothing else is kept)."""
    return int(sum(int(e["points"]) for e in entries))


def redeem_points(store: Store, access: Access, *, supporter_id: str, points: int, note: str = "",
                  today: dt.date | None = None) -> dict:
    """Exchange ``points`` (交換: a negative entry), no more than the balance."""
    check_planner(access)
    today = today or today_jst()
    if int(points) <= 0:
        raise InputError("交換するポイントは 1 以上で入力してください")
    sup = _row(store, L.SUPPORTERS, supporter_id, access=access)
    have = balance(ledger(store, access, supporter_id=supporter_id))
    if int(points) > have:
        raise InputError(f"残高（{have:,} pt）を超えて交換できません")
    return _append_entry(store, access, sup, today, EntryKind.REDEEMED, -int(points), note=note)


def reverse_entry(store: Store, access: Access, *, entry_id: str, note: str,
                  today: dt.date | None = None) -> dict:
    """Correct an entry by its exact opposite (訂正: nothing is changed or deleted); an entry is
    reversed once at most and a reversal is not reversed (enter the right entry again instead)."""
    check_planner(access)
    today = today or today_jst()
    if not note.strip():
        raise InputError("訂正の理由を入力してください")
    entry = _row(store, L.LEDGER, entry_id, access=access)
    if entry["entry_kind"] == EntryKind.REVERSAL:
        raise InputError("訂正の記録は取り消せません（正しい記録を改めて入力してください）")
    others = ledger(store, access, supporter_id=entry["supporter_id"])
    if any(e.get("reverses") == entry_id for e in others):
        raise ConflictError("この記録はすでに訂正されています")
    sup = _row(store, L.SUPPORTERS, entry["supporter_id"], access=access)
    return _append_entry(store, access, sup, today, EntryKind.REVERSAL, -int(entry["points"]),
                         reverses=entry_id, activity_id=entry.get("activity_id"), note=note)


def statement(store: Store, access: Access, *, supporter_id: str, fiscal_year: int,
              today: dt.date | None = None) -> StatementData:
    """The yearly statement of one supporter: balance brought forward, every entry of the fiscal
    year with a running balance, the totals per kind and the closing balance (which is the
    opening plus the year's entries, by construction and checked)."""
    check_planner(access)
    today = today or today_jst()
    sup = _row(store, L.SUPPORTERS, supporter_id, access=access)
    entries = ledger(store, access, supporter_id=supporter_id)
    acts = {a["activity_id"]: a for a in _records(store, L.ACTIVITIES, access)
            if a["supporter_id"] == supporter_id}
    before = [e for e in entries if int(e["fiscal_year"]) < fiscal_year]
    year = [e for e in entries if int(e["fiscal_year"]) == fiscal_year]
    opening = balance(before)
    running = opening
    lines = []
    for e in year:
        running += int(e["points"])
        act = acts.get(e.get("activity_id") or "")
        what = ""
        if act:
            amount = f"{act['hours']:g}時間" if act.get("hours") else f"{act.get('visits') or 1}回"
            what = f"{ACTIVITY_JA.get(act['activity'], act['activity'])} {amount}"
        if e["entry_kind"] == EntryKind.REVERSAL:
            what = f"{e['reverses']} の取消" + (f"（{what}）" if what else "")
        lines.append({"entry_id": e["entry_id"], "entry_on": e["entry_on"], "kind": e["entry_kind"],
                      "kind_ja": ENTRY_JA.get(e["entry_kind"], e["entry_kind"]), "what": what,
                      "rule": e.get("rule") or "", "note": e.get("note") or "", "points": int(e["points"]),
                      "balance": running})
    totals = {k.value: sum(int(e["points"]) for e in year if e["entry_kind"] == k) for k in EntryKind}
    closing = opening + sum(totals.values())
    assert closing == running == balance(before + year)
    meta = store.meta() if "meta" in store.layers() else {}
    return StatementData(
        supporter_id=supporter_id, name=sup.get("name") or "", district_code=sup.get("district_code") or "",
        district_name=_district_name(store, sup.get("district_code")), fiscal_year=fiscal_year,
        opening=opening, lines=lines, totals=totals, closing=closing, issued_on=today,
        rules=[(ACTIVITY_JA[r.activity], r.points, r.unit_ja, topic.WINTER_MULTIPLIERS.get(r.activity))
               for r in topic.POINT_RULES.values()],
        # the demo's supporters come from its synthetic roster (karte.synthetic_supporters)
        synthetic=any(name in str(meta.get("synthetic_layers", "")) for name in ("supporters", "cooperators"))
        or any(e.get("recorded_by") == "demo" for e in entries))


def _district_name(store: Store, code) -> str:
    try:
        return current(store).district_name(code)
    except Exception:  # a district the build does not know: its code is enough
        return str(code or "")


def statement_pdf(store: Store, access: Access, *, supporter_id: str, fiscal_year: int,
                  today: dt.date | None = None) -> bytes:
    """:func:`statement` as a PDF (A4, IPAexGothic embedded), for the supporter."""
    data = statement(store, access, supporter_id=supporter_id, fiscal_year=fiscal_year, today=today)
    out = io.BytesIO()
    points_statement_pdf(data, out)
    return out.getvalue()


# --- snow ----------------------------------------------------------------------------------------

def record_snowfall(store: Store, access: Access, *, fell_on: dt.date, depth_cm: float | None = None,
                    note: str = "", today: dt.date | None = None) -> dict:
    """Record a snowfall (降雪): every-snowfall requests want clearing after it."""
    check_planner(access)
    if fell_on > (today or today_jst()):
        raise InputError("降雪日が未来の日付です")
    if depth_cm is not None and not 0 <= float(depth_cm) <= 500:
        raise InputError("積雪の深さは 0〜500 cm で入力してください")
    row = {"fell_on": fell_on.isoformat(), "depth_cm": None if depth_cm is None else float(depth_cm),
           "note": note or None, "recorded_by": access.user, "recorded_at": _now()}
    return store.append_rows(L.SNOWFALLS, [row], access=access)[0]


def snow_page(store: Store, access: Access, *, district: str | None = None, today: dt.date | None = None,
              network: WalkNetwork | None = None) -> dict:
    """The coordinators' snow page: the season, the snowfalls, open snow-clearing requests (with
    the winter match and why some are unmet), supporters who clear snow with their winter reach,
    and the requests not yet cleared after the last snowfall."""
    check_planner(access)
    today = today or today_jst()
    now = season(today)
    falls = sorted(_records(store, L.SNOWFALLS, access), key=lambda r: r["fell_on"], reverse=True)
    last = next((f for f in falls if f["fell_on"] <= today.isoformat()), None)
    view = match_requests(store, access, district=district, winter=True, today=today, network=network)
    snow = Activity.SNOW.value
    sups = [s for s in supporters(store, access)
            if snow in split_list(s.get("activities")) and s.get("status") == SupporterStatus.REGISTERED
            and topic.Season(s.get("season") or "all").covers(True)]
    factor = AnalysisParams().winter_factor
    for s in sups:
        s["winter_reach_m"] = round(float(s.get("reach_m") or DEFAULT_REACH_M) * factor)
    reqs = [r for r in requests(store, access, district=district) if r.get("activity") == snow]
    this_winter = last is not None and _same_winter(last["fell_on"], today, now)
    if district is not None:  # the district's own, and whoever the match or a dispatch sends there
        involved = {s["supporter_id"] for s in view.suggestions} | {r["supporter_id"] for r in reqs
                                                                     if r.get("supporter_id")}
        sups = [s for s in sups if s.get("district_code") == district or s["supporter_id"] in involved]
    after = []
    if this_winter:
        for r in reqs:
            if r.get("status") not in (RequestStatus.OPEN, RequestStatus.DISPATCHED):
                continue
            done = r.get("last_done_on")
            if done is None or done < last["fell_on"]:
                after.append({**r, "state_ja": "派遣中・未報告" if r.get("supporter_id") else "担当なし"})
    by_id = {s["supporter_id"]: s for s in sups}
    for r in after:
        r["supporter_name"] = by_id.get(r.get("supporter_id"), {}).get("name")
    snap = current(store)
    if district is not None and district not in snap.codes:
        raise NotFoundError(f"地区 {district} はありません")
    return {"season": now, "note": season_note(AnalysisParams(winter=True), now), "snowfalls": falls[:20],
            "districts": [(c, snap.district_name(c)) for c in snap.codes],
            "last_snowfall": last, "this_winter": this_winter,
            "match": view, "snow_suggestions": [s for s in view.suggestions if s["activity"] == snow],
            "snow_unmet": [u for u in view.unmet if u["activity"] == snow],
            "snow_waiting": [w for w in view.waiting if w.get("activity") == snow],
            "supporters": sups, "requests": reqs, "after_snowfall": after, "winter_factor": factor,
            "shown": CITY_ROWS if district is None else None}


def _same_winter(day: str, today: dt.date, now: Season) -> bool:
    """Did it snow on ``day`` in the winter ``today`` belongs to (the snow season, or what is left
    of it in spring)? Winters are told apart by the fiscal year of their January: a snowfall of
    December 2026 and one of March 2027 are the same winter, one of March 2026 is not."""
    d = dt.date.fromisoformat(day)
    winter_of = (lambda x: x.year + 1 if x.month >= 7 else x.year)  # noqa: E731 - the winter's January
    return winter_of(d) == winter_of(today) and d <= today


# --- counts for everyone -------------------------------------------------------------------------

def public_counts(store: Store, access: Access, *, max_small: int, today: dt.date | None = None) -> dict:
    """Counts per district for every viewer: registered supporters (total and by menu kind) and
    requests met (派遣中・完了) and unmet (受付中) in the fiscal year. Public and prefecture viewers get
    counts from 1 to ``max_small`` as 秘匿 (:func:`karte.services.suppression.small`). Counts
    only: read as the store's trusted user, nothing personal leaves."""
    today = today or today_jst()
    fy = fiscal_year_of(today)
    snap = current(store)
    towns = set(snap.districts[MUNICIPALITY].dropna()) if MUNICIPALITY in snap.districts.columns else set()
    sups = _own(_trusted(store, L.SUPPORTERS), towns)
    reqs = _own(_trusted(store, L.REQUESTS), towns)
    aggregate = access.level in (Level.PUBLIC, Level.PREFECTURE)
    hide = (lambda n: small(int(n), max_small)) if aggregate else int
    rows = []
    registered = sups[sups["status"] == SupporterStatus.REGISTERED] if len(sups) else sups
    start, end = dt.date(fy, 4, 1).isoformat(), dt.date(fy + 1, 3, 31).isoformat()
    if len(reqs):
        recent = reqs[(reqs["received_on"].fillna("") <= end)
                      & (reqs["closed_on"].isna() | (reqs["closed_on"].fillna("") >= start))]
    else:
        recent = reqs
    total = Counter()
    for code in snap.codes:
        mine = registered[registered["district_code"] == code] if len(registered) else registered
        asked = recent[recent["district_code"] == code] if len(recent) else recent
        menu = Counter(m for v in (mine["menu_kinds"] if len(mine) else []) for m in split_list(v))
        served = [RequestStatus.DISPATCHED, RequestStatus.CLOSED]
        met = int(asked["status"].isin(served).sum()) if len(asked) else 0
        unmet = int((asked["status"] == RequestStatus.OPEN).sum()) if len(asked) else 0
        row = {"district_code": code, "district_name": snap.district_name(code),
               "supporters": hide(len(mine)),
               "requests_met": hide(met), "requests_unmet": hide(unmet),
               **{f"menu_{m.value}": hide(menu.get(m.value, 0)) for m in MenuKind}}
        total.update({"supporters": len(mine), "requests_met": met, "requests_unmet": unmet,
                      **{f"menu_{m.value}": menu.get(m.value, 0) for m in MenuKind}})
        rows.append(row)
    return {"fiscal_year": fy, "rows": rows, "city": {k: hide(v) for k, v in total.items()},
            "menus": [(f"menu_{m.value}", m.ja) for m in MenuKind], "suppressed": aggregate}


def _own(frame: pd.DataFrame, towns: set) -> pd.DataFrame:
    if not len(frame) or not towns or MUNICIPALITY not in frame.columns:
        return frame
    return frame[frame[MUNICIPALITY].isin(towns)]


def fiscal_year_counts(store: Store, fiscal_year: int, *, municipality: str) -> dict[str, int]:
    """The topic's activity indicators of one fiscal year (April to March) for the indicators
    (issue 12): counts only, read as the store's trusted user.

    Keys: ``supporters_registered`` (registered at the end of the year: registered by then and
    not suspended or withdrawn by then), ``supporters_new`` (registered during the year),
    ``requests_received``, ``requests_dispatched`` (dispatches decided), ``activities`` (done),
    ``activity_hours`` (hours of the done activities counted in hours, rounded), ``snow_activities``,
    ``points`` (net points awarded: earned less reversals) and ``points_redeemed``.
    """
    def of(layer):
        frame = _trusted(store, layer)
        if len(frame) and MUNICIPALITY in frame.columns:
            frame = frame[frame[MUNICIPALITY] == municipality]
        return frame

    return supporter_counts(of(L.SUPPORTERS), of(L.REQUESTS), of(L.DISPATCHES), of(L.ACTIVITIES),
                            of(L.LEDGER), fiscal_year)


# --- the evacuation suggestions: why nobody -----------------------------------------------------

def unmatched_frame(snap, *, shareable_only: bool) -> pd.DataFrame:
    """:func:`gis.suggest.unsuggested` on the whole register and roster, once per build and
    audience (seconds of matching). Ids and reasons only; the snapshot holds the whole register
    for the analyses anyway, and what a viewer is shown of persons is filtered by their own read."""
    inputs = snap.analysis_inputs()
    return snap.memo(("unsuggested", shareable_only), lambda: unsuggested(
        inputs["register"], inputs["cooperators"], vocab=VOCABULARY, params=snap.params,
        only_shareable=shareable_only))


def evacuation_unmatched(store: Store, access: Access, *, district: str | None = None) -> dict:
    """Why support-needers without a supporter get no suggestion (the same engine as the
    matching): counts per reason (for any viewer of the outreach page) and the persons the viewer
    may see with their reason (read as the viewer, logged).

    Returns ``{"counts": {reason: n}, "labels": REASON_JA, "text": …, "persons": [...]}``; each
    person: ``person_id``, ``name``, ``district_code``, ``reason``, ``reason_ja``, ``detail_ja``.
    """
    check_planner(access)
    snap = current(store)
    shareable_only = access.level != Level.CITY_STAFF
    found = unmatched_frame(snap, shareable_only=shareable_only)
    if district is not None:
        found = found[found["district_code"] == district]
    counts = {r: int((found["reason"] == r).sum()) for r in REASONS if (found["reason"] == r).any()}
    seen = {r["person_id"]: r for r in read_records(store, Layer.REGISTER, access, district=district)}
    persons = []
    for row in found.to_dict("records"):
        person = seen.get(str(row["person_id"]))
        if person is None:
            continue
        persons.append({"person_id": row["person_id"], "name": person.get("name"),
                        "district_code": row["district_code"], "reason": row["reason"],
                        "reason_ja": REASON_JA[row["reason"]], "detail_ja": _evacuation_ja(row, snap.params)})
    parts = [f"{REASON_JA[r]} {n} 人" for r, n in counts.items()]
    text = ("支援者の候補がいない要支援者: " + "、".join(parts)) if parts else ""
    return {"counts": counts, "labels": REASON_JA, "text": text, "persons": persons}


def _evacuation_ja(row: dict, params: AnalysisParams) -> str:
    if row["reason"] == "at_capacity":
        taken = f"（うち {row['taken']} 人は他の方の候補）" if row["taken"] else ""
        return (f"徒歩 {params.suggest_m:,.0f} m 以内の避難支援者 {row['near']} 人は"
                f"受け持ちがいっぱいです{taken}")
    if row["reason"] == "too_far":
        near = f"最も近い人まで徒歩 {row['nearest_m']:,.0f} m" if row["nearest_m"] == row["nearest_m"] else \
            f"徒歩 {3 * params.suggest_m:,.0f} m 以内にもいません"
        return f"徒歩 {params.suggest_m:,.0f} m 以内に避難支援のできる協力者がいません（{near}）"
    if row["reason"] == "no_location":
        return "所在地が不明です"
    return "避難支援のできる協力者が登録されていません"


# --- pages ---------------------------------------------------------------------------------------

def page_vocabularies() -> dict:
    """The choices of the forms (codes and Japanese labels)."""
    return {
        "activities": [(a.value, a.ja) for a in Activity], "menus": [(m.value, m.ja) for m in MenuKind],
        "weekdays": list(topic.WEEKDAY_JA.items()),
        "seasons": [(s.value, SEASON_JA[s]) for s in topic.Season],
        "statuses": [(s.value, s.ja) for s in SupporterStatus],
        "recurrences": [(r.value, RECURRENCE_JA[r]) for r in Recurrence],
        "trainings": [(t.value, TRAINING_JA[t]) for t in topic.Training],
        "reasons": REASON_JA,
    }


def supporters_page(store: Store, access: Access, *, district: str | None, max_small: int,
                    today: dt.date | None = None) -> dict:
    """The supporters page: counts per district for everyone; a district member's own district's
    supporters and requests; for coordinators and city staff the match of the district (or the
    city) with its reasons, the unmet requests and where to recruit, and the forms."""
    today = today or today_jst()
    snap = current(store)
    if district is not None and district not in snap.codes:
        raise NotFoundError(f"地区 {district} はありません")
    now = season(today)
    page = {"counts": public_counts(store, access, max_small=max_small, today=today), "district": district,
            "districts": [(c, snap.district_name(c)) for c in snap.codes], "season": now,
            "season_note": season_note(AnalysisParams(winter=now.winter), now),
            "planner": access.level in PLANNERS, "member": access.level == Level.DISTRICT_MEMBER,
            "vocab": page_vocabularies()}
    if access.level not in VIEWERS:
        return page
    scope = access.district if access.level == Level.DISTRICT_MEMBER else district
    page["district"] = scope
    # the whole city's lists are hundreds of rows with a form each: they wait for a district
    page["listed"] = scope is not None
    page["supporters"] = supporters(store, access, district=scope) if scope is not None else []
    page["requests"] = requests(store, access, district=scope) if scope is not None else []
    if access.level in PLANNERS:
        view = match_requests(store, access, district=scope, today=today)
        page["match"] = view
        page["shown"] = CITY_ROWS if scope is None else None
        page["active_dispatches"] = [r for r in page["requests"] if r.get("dispatch_id")]
        names = {s["supporter_id"]: s["name"] for s in page["supporters"]}
        for r in page["active_dispatches"]:
            known = view.supporters.get(r["supporter_id"], {})
            r["supporter_name"] = names.get(r["supporter_id"]) or known.get("name")
        book = ledger(store, access, district=scope)
        per = defaultdict(int)
        for e in book:
            per[e["supporter_id"]] += int(e["points"])
        for s in page["supporters"]:
            s["balance"] = per.get(s["supporter_id"], 0)
    return page


def supporter_detail(store: Store, access: Access, *, supporter_id: str) -> dict:
    """One supporter for coordinators: the registration (with its version, for the edit form),
    dispatches, activities, the ledger with the balance and the fiscal years of statements."""
    check_planner(access)
    sup = _row(store, L.SUPPORTERS, supporter_id, access=access)
    sup.update(_supporter_labels(sup))
    dispatches = [d for d in _records(store, L.DISPATCHES, access) if d["supporter_id"] == supporter_id]
    acts = [a for a in _records(store, L.ACTIVITIES, access) if a["supporter_id"] == supporter_id]
    for a in acts:
        a["activity_ja"] = ACTIVITY_JA.get(a["activity"], a["activity"])
    for d in dispatches:
        d["activity_ja"] = ACTIVITY_JA.get(d["activity"], d["activity"])
    book = ledger(store, access, supporter_id=supporter_id)
    reversed_ = {e["reverses"] for e in book if e.get("reverses")}
    for e in book:
        e["reversible"] = e["entry_kind"] != EntryKind.REVERSAL and e["entry_id"] not in reversed_
    years = sorted({int(e["fiscal_year"]) for e in book} | {fiscal_year_of(today_jst())}, reverse=True)
    return {"supporter": sup,
            "dispatches": sorted(dispatches, key=lambda d: d["decided_at"] or "", reverse=True),
            "activities": sorted(acts, key=lambda a: (a["done_on"], a["activity_id"]), reverse=True),
            "ledger": book, "balance": balance(book), "years": years, "vocab": page_vocabularies(),
            "hours_text": _hours(sup.get("hours")), "selected": {
                "activities": set(split_list(sup.get("activities"))),
                "weekdays": set(split_list(sup.get("weekdays")))}}


def map_data(store: Store, view: MatchView, *, district: str | None) -> dict:
    """What the page's map draws (EPSG:6678 points; :mod:`karte.render.supporters_map` turns them
    into the browser's GeoJSON): the district outline(s), suggestions (request, supporter, line),
    unmet requests with their reason and the recruiting places."""
    snap = current(store)
    districts = snap.districts
    if district is not None:
        districts = districts[districts["district_code"] == district]
    return {"districts": districts[["district_code", "district_name", districts.geometry.name]],
            "suggestions": view.suggestions, "unmet": view.unmet, "recruit": view.recruit}


def hours_from_form(start: str, end: str, start2: str = "", end2: str = "") -> str:
    """The stored hours from up to two pairs of form times (``"09:00"``); empty: any time."""
    windows = []
    for a, b in ((start, end), (start2, end2)):
        if a or b:
            if not (a and b):
                raise InputError("時間帯は始まりと終わりの両方を入力してください")
            windows.append(parse_hours(f"{a}-{b}")[0] if _time_ok(a, b) else None)
    if any(w is None for w in windows):
        raise InputError("時間帯が正しくありません（終わりは始まりより後）")
    return format_hours(windows)


def _time_ok(a: str, b: str) -> bool:
    try:
        parse_hours(f"{a}-{b}")
        return True
    except ValueError:
        return False


def geocode(address: str):
    """An Aomori address -> its point (EPSG:6678) by the shipped town points (the import's
    geocoder), or :class:`InputError` saying it was not found."""
    try:
        hit = _towns().geocode(address)
    except ValueError as exc:
        raise InputError(getattr(exc, "ja", "住所が見つかりません")) from exc
    point = gpd.GeoSeries([shapely.Point(hit.lon, hit.lat)], crs=crs.WGS84).to_crs(crs.METRIC).iloc[0]
    return point


@functools.cache
def _towns() -> TownGeocoder:
    return TownGeocoder.from_file()
