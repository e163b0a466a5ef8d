"""Synthetic demo data of the 地域福祉サポーター topic: supporters, help requests, a past winter of
dispatches and activities, its snowfalls and the points they earned.

Like :mod:`karte.synthetic`, everything is fictional and seeded: names come from the same lists
of common names, phone numbers use the unassigned ``000`` exchange, and the demo says it is
synthetic. The model (per district, drawn with a generator seeded by ``seed``):

* **supporters**: every cooperator with the role 地域福祉サポーター becomes a registered supporter
  (linked by ``cooperator_id``, same name, phone and home), plus 4–8 new residents at random
  points of the district, weighted by population. Activities drawn independently (雪かき 45 %,
  見守り 40 %, 声がけ 35 %, ゴミ出し 30 %, 買い物 30 %, 避難支援 30 %, …); availability: every day
  (30 %) or 2–5 weekdays, mornings, afternoons or both (snow clearers often early morning);
  season: all year 70 %, winter only 15 % (snow clearing), outside winter 15 %; reach 300–1,000 m
  on foot (3 km for drivers); capacity 1–4; status 登録 80 %, 申請中 8 %, 休止 7 %, 退会 5 %.
* **requests**: about one per 30 elderly people living alone in the district (Poisson), 60 %
  from support-needers of the register (their place and name, linked by ``person_id``), the rest
  from other residents. Kinds: 雪かき (降雪のたび) 35 %, 見守り・声がけ (毎週) 15 %, ゴミ出し (毎週)
  15 %, 買い物 (毎週) 15 %, 移送 / 届け物 / 短時間の保育 (1回) 17 %, 健康体操の指導 (毎週) 3 %.
* **history**: last winter (``data_date``'s fiscal year minus one, 12-01 to 03-31) had 10
  snowfalls; 70 % of the snow requests had a supporter then, who cleared after most snowfalls
  (activities and points), and every snow dispatch ended with the season, so the snow requests
  are open again for this winter with last winter's supporter known (continuity). Half of the
  weekly requests have an active dispatch since spring with weekly activities up to
  ``data_date``; 30 % of the one-off requests are done and closed. A few supporters exchanged
  points; one activity recorded twice was corrected by a reversing entry.

:func:`write_demo` writes the six layers into a store after the build (``karte demo``); the
points ledger is append-only, so a store whose ledger already has entries keeps them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from karte.domain.access import SHAREABLE
from karte.domain.layers import MUNICIPALITY, Layer, join_list
from karte.domain.schema import Role
from karte.domain.supporters import (
    DRIVEN,
    WEEKDAYS,
    Activity,
    DispatchStatus,
    EntryKind,
    MenuKind,
    Recurrence,
    RequestStatus,
    Season,
    SupporterStatus,
    Training,
    award,
    fiscal_year_of,
    format_hours,
)
from karte.domain.supporters import Layer as SupporterLayer
from karte.store.base import Store
from karte.synthetic import DEMO_DATA_DATE, GIVEN_NAMES, SURNAMES

#: The user the demo's records are written by.
DEMO_USER = "demo"
#: How often a supporter offers each activity (independent draws; at least one is kept).
ACTIVITY_RATES = {
    Activity.SNOW: 0.45, Activity.WATCHING: 0.40, Activity.GREETING: 0.35, Activity.RUBBISH: 0.30,
    Activity.SHOPPING: 0.30, Activity.EVACUATION: 0.30, Activity.TRAFFIC_SAFETY: 0.15,
    Activity.DELIVERY: 0.15, Activity.TRANSPORT: 0.10, Activity.INSTRUCTION: 0.10, Activity.CHILDCARE: 0.08,
}
#: What residents ask for: (activity, recurrence, share).
REQUEST_KINDS = (
    (Activity.SNOW, Recurrence.EVERY_SNOWFALL, 0.35), (Activity.WATCHING, Recurrence.WEEKLY, 0.08),
    (Activity.GREETING, Recurrence.WEEKLY, 0.07), (Activity.RUBBISH, Recurrence.WEEKLY, 0.15),
    (Activity.SHOPPING, Recurrence.WEEKLY, 0.15), (Activity.TRANSPORT, Recurrence.ONCE, 0.08),
    (Activity.DELIVERY, Recurrence.ONCE, 0.05), (Activity.CHILDCARE, Recurrence.ONCE, 0.04),
    (Activity.INSTRUCTION, Recurrence.WEEKLY, 0.03),
)
HOURS = {"morning": [(540, 720)], "afternoon": [(780, 1020)], "both": [(540, 720), (780, 1020)],
         "early": [(360, 540)], "evening": [(1020, 1140)]}


@dataclass(frozen=True)
class SupporterDemo:
    """The six layers of the topic, ready for :meth:`karte.store.base.Store.write`."""

    supporters: gpd.GeoDataFrame
    requests: gpd.GeoDataFrame
    dispatches: pd.DataFrame
    activities: pd.DataFrame
    ledger: pd.DataFrame
    snowfalls: pd.DataFrame

    def layers(self) -> dict[str, pd.DataFrame]:
        return {SupporterLayer.SUPPORTERS: self.supporters, SupporterLayer.REQUESTS: self.requests,
                SupporterLayer.DISPATCHES: self.dispatches, SupporterLayer.ACTIVITIES: self.activities,
                SupporterLayer.LEDGER: self.ledger, SupporterLayer.SNOWFALLS: self.snowfalls}


def write_demo(store: Store, *, seed: int, data_date: dt.date | None = None) -> SupporterDemo:
    """Generate the topic's demo data from the store's build (small areas, districts, register,
    cooperators) and write it, as the store's trusted user (the build pipeline).

    Call it after the build (``karte.build.build_demo``). The points ledger is written only when
    the store has no entry yet: it is append-only (a second ``karte demo`` on PostGIS could not
    replace it, and must not). Returns what was generated.
    """
    data_date = data_date or DEMO_DATA_DATE
    names = set(store.layers())
    demo = generate(store.read(Layer.SMALL_AREAS), store.read(Layer.REGISTER), store.read(Layer.COOPERATORS),
                    seed=seed, data_date=data_date)
    layers = demo.layers()
    if SupporterLayer.LEDGER in names and len(store.read(SupporterLayer.LEDGER)):
        layers.pop(SupporterLayer.LEDGER)
    store.write(layers)
    return demo


def generate(small_areas: gpd.GeoDataFrame, register: gpd.GeoDataFrame, cooperators: gpd.GeoDataFrame, *,
             seed: int, data_date: dt.date = DEMO_DATA_DATE) -> SupporterDemo:
    """The demo's supporters, requests and history (all EPSG:6678), deterministic for ``seed``."""
    rng = np.random.default_rng([seed, 14])
    supporters = _supporters(small_areas, cooperators, rng, data_date)
    requests = _requests(small_areas, register, rng, data_date)
    history = _History(supporters, requests, rng, data_date)
    history.last_winter()
    history.this_year()
    return SupporterDemo(supporters, history.requests, history.frame("dispatches"),
                         history.frame("activities"), history.ledger(), history.snowfall_frame())


# --- names and places ------------------------------------------------------------------------

def _name(rng: np.random.Generator) -> tuple[str, str]:
    s, sk = SURNAMES[rng.integers(len(SURNAMES))]
    g, gk = GIVEN_NAMES[rng.integers(10, len(GIVEN_NAMES))]
    return f"{s} {g}", f"{sk} {gk}"


def _phone(rng: np.random.Generator) -> str:
    head = "090" if rng.random() < 0.6 else "017"
    return f"{head}-000-{rng.integers(0, 10000):04d}"


def _point_in(geom, rng: np.random.Generator):
    minx, miny, maxx, maxy = geom.bounds
    for _ in range(200):
        p = shapely.Point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
        if geom.contains(p):
            return p
    return geom.representative_point()


def _weights(areas: pd.DataFrame, column: str) -> np.ndarray:
    w = pd.to_numeric(areas[column], errors="coerce").fillna(0).to_numpy(dtype=float) + 0.5
    return w / w.sum()


def _date(rng: np.random.Generator, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=int(rng.integers(0, max(1, (last - first).days + 1))))


# --- supporters ------------------------------------------------------------------------------

def _supporters(small_areas, cooperators, rng, data_date: dt.date) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    linked = cooperators[cooperators["role"] == Role.WELFARE_SUPPORTER.value]
    for code, areas in small_areas.groupby("district_code", sort=True):
        areas = areas[areas.geometry.notna()]
        if areas.empty:
            continue
        municipality = areas[MUNICIPALITY].iloc[0] if MUNICIPALITY in areas.columns else None
        own = linked[linked["district_code"] == code]
        for _, coop in own.iterrows():
            if coop.geometry is None or coop.geometry.is_empty:
                continue
            kana = ""
            rows.append(_supporter(rng, data_date, code, municipality, coop["name"], kana, coop["phone"],
                                   _area_address(areas, coop.geometry), coop["cooperator_id"]))
            geoms.append(coop.geometry)
        for _ in range(int(rng.integers(4, 9))):
            area = areas.iloc[int(rng.choice(len(areas), p=_weights(areas, "population")))]
            name, kana = _name(rng)
            point = _point_in(area.geometry, rng)
            address = f"青森県青森市{area['name']}{rng.integers(1, 40)}-{rng.integers(1, 30)}"
            rows.append(_supporter(rng, data_date, code, municipality, name, kana, _phone(rng), address,
                                   None))
            geoms.append(point)
    out = gpd.GeoDataFrame(rows, geometry=geoms, crs=small_areas.crs)
    out.insert(0, "supporter_id", [f"SP{i:06d}" for i in range(1, len(out) + 1)])
    return out


def _area_address(areas, point) -> str:
    hit = areas[areas.geometry.contains(point)]
    name = hit["name"].iloc[0] if len(hit) else areas["name"].iloc[0]
    return f"青森県青森市{name}"


def _supporter(rng, data_date, district, municipality, name, kana, phone, address, cooperator_id) -> dict:
    acts = [a for a, rate in ACTIVITY_RATES.items() if rng.random() < rate]
    if not acts:
        acts = [Activity.WATCHING]
    season = rng.choice([Season.ALL, Season.WINTER, Season.NON_WINTER], p=[0.7, 0.15, 0.15])
    if season == Season.WINTER and Activity.SNOW not in acts:
        acts.append(Activity.SNOW)
    if season == Season.NON_WINTER:
        acts = [a for a in acts if a != Activity.SNOW] or [Activity.WATCHING]
    acts = [a for a in Activity if a in acts]  # vocabulary order
    if rng.random() < 0.3:
        days: list[str] = []
    else:
        days = sorted(rng.choice(7, size=int(rng.integers(2, 6)), replace=False).tolist())
        days = [WEEKDAYS[d] for d in days]
    slot = "early" if Activity.SNOW in acts and rng.random() < 0.5 else str(
        rng.choice(["morning", "afternoon", "both", "evening"], p=[0.35, 0.3, 0.3, 0.05]))
    windows = sorted(HOURS[slot] + (HOURS["morning"] if slot == "early" and rng.random() < 0.5 else []))
    status = rng.choice(list(SupporterStatus), p=[0.08, 0.8, 0.07, 0.05])
    applied = _date(rng, dt.date(2025, 4, 1), data_date - dt.timedelta(days=20))
    registered = applied + dt.timedelta(days=int(rng.integers(14, 46)))
    if status == SupporterStatus.APPLIED:
        registered_on, since = None, applied
    else:
        registered_on = min(registered, data_date)
        since = (registered_on if status == SupporterStatus.REGISTERED
                 else _date(rng, registered_on, data_date))
    training = []
    if status != SupporterStatus.APPLIED:
        taken = [Training.BASIC]
        taken += [Training.SNOW_SAFETY] * (Activity.SNOW in acts) + [Training.DEMENTIA] * (rng.random() < 0.3)
        taken += [Training.TRANSPORT] * (Activity.TRANSPORT in acts)
        for i, course in enumerate(taken):
            on = registered_on if i == 0 else _date(rng, registered_on, data_date)
            training.append(f"{course.value}:{on.isoformat()}")
    # the menu is what they registered for: their activities' items, and often a general one too
    wanted = {a.menu for a in acts}
    if rng.random() < 0.3:
        wanted.add(MenuKind.ELDERLY)
    if rng.random() < 0.15 and wanted & {MenuKind.WATCHING, MenuKind.TRANSPORT, MenuKind.ELDERLY}:
        wanted.add(MenuKind.DISABILITY)
    menu = [m.value for m in MenuKind if m in wanted]
    driven = any(a in DRIVEN for a in acts)
    return {
        MUNICIPALITY: municipality, "district_code": district, "cooperator_id": cooperator_id,
        "name": name, "kana": kana or None, "phone": phone, "address": address,
        "menu_kinds": join_list(menu), "activities": join_list(a.value for a in acts),
        "weekdays": join_list(days), "hours": format_hours(windows), "season": str(season),
        "reach_m": float(3000 if driven else int(rng.integers(6, 21)) * 50),
        "capacity": int(rng.integers(1, 5)), "status": str(status), "applied_on": applied.isoformat(),
        "registered_on": registered_on.isoformat() if registered_on else None,
        "status_since": since.isoformat(), "training": join_list(training), "notes": None,
    }


# --- requests --------------------------------------------------------------------------------

def _requests(small_areas, register, rng, data_date: dt.date) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    kinds = [(a, r) for a, r, _ in REQUEST_KINDS]
    shares = np.array([s for _, _, s in REQUEST_KINDS])
    shares = shares / shares.sum()
    # requests linked to the register come from people who consented to its sharing: a request
    # is read by coordinators and district members, who must not learn who else is on the register
    located = register[register.geometry.notna() & ~register.geometry.is_empty
                       & register["consent"].isin(SHAREABLE)]
    for code, areas in small_areas.groupby("district_code", sort=True):
        areas = areas[areas.geometry.notna()]
        if areas.empty:
            continue
        municipality = areas[MUNICIPALITY].iloc[0] if MUNICIPALITY in areas.columns else None
        alone = float(pd.to_numeric(areas["elderly_alone"], errors="coerce").fillna(0).sum())
        people = located[located["district_code"] == code]
        for _ in range(int(rng.poisson(max(alone / 30.0, 3.0)))):
            activity, recurrence = kinds[int(rng.choice(len(kinds), p=shares))]
            if len(people) and rng.random() < 0.6:
                person = people.iloc[int(rng.integers(len(people)))]
                person_id, name, address, point = (person["person_id"], person["name"], person["address"],
                                                   person.geometry)
            else:
                area = areas.iloc[int(rng.choice(len(areas), p=_weights(areas, "elderly_alone")))]
                person_id, name = None, _name(rng)[0]
                address = f"青森県青森市{area['name']}{rng.integers(1, 40)}-{rng.integers(1, 30)}"
                point = _point_in(area.geometry, rng)
            rows.append(_request(rng, data_date, code, municipality, person_id, name, address, activity,
                                 recurrence))
            geoms.append(point)
    out = gpd.GeoDataFrame(rows, geometry=geoms, crs=small_areas.crs)
    out.insert(0, "request_id", [f"RQ{i:06d}" for i in range(1, len(out) + 1)])
    return out


def _request(rng, data_date, district, municipality, person_id, name, address, activity, recurrence) -> dict:
    if recurrence == Recurrence.EVERY_SNOWFALL:
        days: list[str] = []
        windows = [(360, 600)] if rng.random() < 0.7 else [(420, 720)]
        starts = dt.date(data_date.year - (data_date.month < 12), 11, 15)
        received = _date(rng, starts - dt.timedelta(days=200), starts)
    elif recurrence == Recurrence.WEEKLY:
        picked = rng.choice(5, size=int(rng.integers(1, 3)), replace=False)
        days = [WEEKDAYS[d] for d in sorted(picked.tolist())]
        windows = [HOURS["morning"][0]] if rng.random() < 0.6 else [(840, 960)]
        received = _date(rng, dt.date(data_date.year, 3, 1), data_date - dt.timedelta(days=10))
        starts = received + dt.timedelta(days=int(rng.integers(3, 15)))
    else:
        starts = data_date + dt.timedelta(days=int(rng.integers(-90, 45)))
        days = [WEEKDAYS[starts.weekday()]]
        windows = [(540, 660)] if rng.random() < 0.5 else [(780, 900)]
        received = starts - dt.timedelta(days=int(rng.integers(5, 20)))
    return {
        MUNICIPALITY: municipality, "district_code": district, "person_id": person_id, "requester_name": name,
        "phone": _phone(rng), "address": address, "activity": activity.value, "recurrence": recurrence.value,
        "weekdays": join_list(days), "hours": format_hours(windows), "starts_on": starts.isoformat(),
        "ends_on": None, "status": RequestStatus.OPEN.value, "received_on": received.isoformat(),
        "closed_on": None, "notes": None,
    }


# --- history: dispatches, activities, points, snowfalls ---------------------------------------

class _History:
    """Dispatches and activities of the past winter and of this year up to ``data_date``."""

    def __init__(self, supporters, requests, rng, data_date: dt.date):
        self.supporters = supporters
        self.requests = requests.copy()
        self.rng = rng
        self.data_date = data_date
        self.rows: dict[str, list[dict]] = {"dispatches": [], "activities": []}
        self.snowfalls: list[dict] = []
        self.by_district = {code: group for code, group in supporters[
            supporters["status"].isin([SupporterStatus.REGISTERED.value, SupporterStatus.SUSPENDED.value,
                                       SupporterStatus.WITHDRAWN.value])].groupby("district_code")}
        self.active = dict.fromkeys(supporters["supporter_id"], 0)

    def frame(self, name: str) -> pd.DataFrame:
        rows = self.rows[name]
        prefix = {"dispatches": "DP", "activities": "SA"}[name]
        key = {"dispatches": "dispatch_id", "activities": "activity_id"}[name]
        out = pd.DataFrame(rows)
        out.insert(0, key, [f"{prefix}{i:06d}" for i in range(1, len(out) + 1)])
        return out

    def _helper(self, request, activity: str, *, winter: bool, on: dt.date) -> pd.Series | None:
        """The nearest supporter of the request's district who offers ``activity``, is available in
        the season and has room (the demo's coordinator was greedy: the solver does better)."""
        local = self.by_district.get(request["district_code"])
        if local is None:
            return None
        columns = zip(local["activities"], local["season"], local["supporter_id"], local["capacity"],
                      local["registered_on"], strict=True)
        fits = local[[activity in str(a).split(";") and Season(s).covers(winter) and self.active[sid] < cap
                      and reg is not None and reg <= on.isoformat() for a, s, sid, cap, reg in columns]]
        if fits.empty:
            return None
        d = fits.geometry.distance(request.geometry)
        return fits.loc[d.idxmin()]

    def _dispatch(self, request, supporter, decided: dt.date, status: DispatchStatus,
                  ended: dt.date | None = None, why: str | None = None) -> int:
        self.rows["dispatches"].append({
            MUNICIPALITY: request[MUNICIPALITY], "district_code": request["district_code"],
            "request_id": request["request_id"], "supporter_id": supporter["supporter_id"],
            "activity": request["activity"], "status": status.value,
            "distance_m": round(float(supporter.geometry.distance(request.geometry)) * 1.3, 1),
            "reasons": "デモデータ（合成）", "decided_by": DEMO_USER,
            "decided_at": f"{decided.isoformat()}T10:00:00+09:00",
            "ended_on": ended.isoformat() if ended else None, "end_reason": why})
        return len(self.rows["dispatches"])

    def _activity(self, request, supporter, dispatch: int, day: dt.date, *, winter: bool, done: bool = True,
                  note: str | None = None) -> None:
        hourly = request["activity"] in ("snow", "childcare", "instruction", "traffic_safety")
        hours = float(self.rng.choice([0.5, 1.0, 1.5, 2.0])) if hourly else None
        self.rows["activities"].append({
            MUNICIPALITY: request[MUNICIPALITY], "district_code": request["district_code"],
            "dispatch_id": f"DP{dispatch:06d}", "request_id": request["request_id"],
            "supporter_id": supporter["supporter_id"], "activity": request["activity"],
            "done_on": day.isoformat(), "hours": hours, "visits": None if hourly else 1, "done": done,
            "winter": winter, "note": note, "recorded_by": DEMO_USER,
            "recorded_at": f"{day.isoformat()}T18:00:00+09:00"})

    def last_winter(self) -> None:
        """Last winter: ten snowfalls; 70 % of the snow requests had a supporter who cleared after
        most of them; every snow dispatch ended with the season."""
        year = fiscal_year_of(self.data_date) - 1
        start, end = dt.date(year, 12, 1), dt.date(year + 1, 3, 31)
        falls = sorted({_date(self.rng, start + dt.timedelta(days=4), end - dt.timedelta(days=20))
                        for _ in range(10)})
        for day in falls:
            self.snowfalls.append({"fell_on": day.isoformat(), "depth_cm": float(self.rng.integers(8, 45)),
                                   "note": None})
        snow = self.requests[self.requests["activity"] == Activity.SNOW.value]
        for _, request in snow.iterrows():
            if self.rng.random() >= 0.7:
                continue
            helper = self._helper(request, Activity.SNOW.value, winter=True, on=start - dt.timedelta(days=10))
            if helper is None:
                continue
            self.active[helper["supporter_id"]] += 1
            number = self._dispatch(request, helper, start - dt.timedelta(days=10), DispatchStatus.ENDED,
                                    end, "冬期の終了")
            for day in falls:
                if self.rng.random() < 0.85:
                    cleared = day + dt.timedelta(days=int(self.rng.integers(0, 2)))
                    self._activity(request, helper, number, cleared, winter=True)
        for sid in self.active:  # the winter is over: nobody is busy with snow any more
            self.active[sid] = 0

    def this_year(self) -> None:
        """This fiscal year up to ``data_date``: half the weekly requests dispatched since spring with
        weekly visits; 30 % of the one-off requests done and closed."""
        for index, request in self.requests.iterrows():
            recurrence = request["recurrence"]
            starts = dt.date.fromisoformat(request["starts_on"])
            if recurrence == Recurrence.WEEKLY.value and self.rng.random() < 0.5 and starts < self.data_date:
                helper = self._helper(request, request["activity"], winter=False, on=starts)
                if helper is None or helper["status"] != SupporterStatus.REGISTERED.value:
                    continue
                self.active[helper["supporter_id"]] += 1
                number = self._dispatch(request, helper, starts, DispatchStatus.ACTIVE)
                self.requests.loc[index, "status"] = RequestStatus.DISPATCHED.value
                day = starts
                while day < self.data_date:
                    done = self.rng.random() < 0.92
                    self._activity(request, helper, number, day, winter=False, done=done,
                                   note=None if done else "本人不在のため中止")
                    day += dt.timedelta(days=7)
            elif recurrence == Recurrence.ONCE.value and starts < self.data_date and self.rng.random() < 0.3:
                helper = self._helper(request, request["activity"], winter=False, on=starts)
                if helper is None or helper["status"] != SupporterStatus.REGISTERED.value:
                    continue
                number = self._dispatch(request, helper, starts - dt.timedelta(days=3), DispatchStatus.ENDED,
                                        starts, "完了")
                self._activity(request, helper, number, starts, winter=False)
                self.requests.loc[index, ["status", "closed_on"]] = [RequestStatus.CLOSED.value,
                                                                     starts.isoformat()]

    def ledger(self) -> pd.DataFrame:
        """Points earned by every done activity, a few exchanges, and one correction."""
        activities = self.frame("activities")
        ids = self.supporters["supporter_id"]
        district_of = dict(zip(ids, self.supporters["district_code"], strict=True))
        town_of = dict(zip(ids, self.supporters[MUNICIPALITY], strict=True))
        rows = []
        for a in activities[activities["done"]].itertuples(index=False):
            got = award(a.activity, hours=a.hours, visits=a.visits, winter=bool(a.winter))
            day = dt.date.fromisoformat(a.done_on)
            rows.append(self._entry(a.supporter_id, district_of, town_of, day, EntryKind.EARNED, got.points,
                                    activity_id=a.activity_id, rule=got.rule_ja))
        if rows:  # an activity entered twice by mistake, corrected by a reversing entry
            twice = dict(rows[len(rows) // 2])
            twice["note"] = "二重に入力"
            rows.append(twice)
            rows.append({**twice, "entry_kind": EntryKind.REVERSAL.value, "points": -twice["points"],
                         "reverses": f"PT{len(rows):06d}", "rule": None, "note": "二重入力の取消"})
        earned = pd.DataFrame(rows)
        exchange_day = dt.date(fiscal_year_of(self.data_date), 3, 25)
        if len(earned):  # exchanges within the balance on the day (a balance never goes negative)
            then = earned[earned["entry_on"] <= exchange_day.isoformat()]
            balance = then.groupby("supporter_id")["points"].sum()
            for sid in balance[balance >= 800].index:
                if self.rng.random() < 0.3:
                    rows.append(self._entry(sid, district_of, town_of, exchange_day, EntryKind.REDEEMED, -500,
                                            note="地元商店の商品券と交換"))
        out = pd.DataFrame(rows)
        out.insert(0, "entry_id", [f"PT{i:06d}" for i in range(1, len(out) + 1)])
        return out

    @staticmethod
    def _entry(sid, district_of, town_of, day: dt.date, kind: EntryKind, points: int, *,
               activity_id=None, rule=None, note=None) -> dict:
        return {MUNICIPALITY: town_of[sid], "district_code": district_of[sid], "supporter_id": sid,
                "entry_on": day.isoformat(), "fiscal_year": fiscal_year_of(day), "entry_kind": kind.value,
                "points": int(points), "activity_id": activity_id, "reverses": None, "rule": rule,
                "note": note, "recorded_by": DEMO_USER, "recorded_at": f"{day.isoformat()}T18:30:00+09:00"}

    def snowfall_frame(self) -> pd.DataFrame:
        municipality = self.supporters[MUNICIPALITY].dropna()
        code = municipality.iloc[0] if len(municipality) else None
        out = pd.DataFrame([{MUNICIPALITY: code, **row, "recorded_by": DEMO_USER,
                             "recorded_at": f"{row['fell_on']}T07:00:00+09:00"} for row in self.snowfalls])
        out.insert(0, "snowfall_id", [f"SF{i:06d}" for i in range(1, len(out) + 1)])
        return out
