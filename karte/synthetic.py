"""Synthetic demo data: support-need register, cooperators and services for Aomori.

Real registers are personal data and cannot be shipped, so the demo generates them
deterministically (seeded) from the real population of each small area. Everything here is
fictional: names are drawn from lists of common Japanese names, phone numbers use the unassigned
``000`` exchange, and every output built from these layers says it is synthetic.

Rates (per small area, drawn with a generator seeded by ``seed``):

* register: Poisson(0.085 × 75+ + 0.015 × 65-74 + 0.05 × disabled) persons, placed uniformly
  at random inside the small area;
* consent: 同意 60 %, 未回答 20 %, 不同意 10 %, 条例による推定同意 10 %;
* evacuation plan: 作成済 35 %, 作成中 20 %, 未作成 45 %;
* emergency contact (緊急連絡先, ``emergency_contact``): 85 % of persons, a relation and a fake
  mobile number (``090-0000-1234``), drawn last from a stream of its own so nothing else moves;
* supporters: 65 % of persons get the nearest evacuation-help cooperator of their district with
  capacity left; the rest are left unassigned (a gap the analysis should find);
* cooperators per district: 6 council officers, one welfare commissioner per 220 households,
  2 chief child commissioners, 1 community support centre worker, 1 neighbourhood officer per 600
  people, 4 fire corps members, 8 community welfare supporters;
* services: salons at the real community venues among the GSI shelter and emergency-site lists
  (市民センター, 分館, 福祉館, 公民館, 集会所, 会館), plus neighbourhood-hall salons at the most
  populous small areas, and other services (watching, snow, childcare, health, …) per district.

Earlier fiscal years (:func:`synthetic_history`, the demo's trend views): the census figures stay
those of the one census every year is built from; the figures that move from year to year are
walked back from the current build, per district and year (seeded): the register 1.5 % smaller a
year, supporters assigned to 3.5 points fewer of its people, individual plans made for 6 points
fewer (the duty to make them dates from 2021), welfare supporters 25 % fewer (a new scheme),
other cooperators 1 % fewer, salons 3 % fewer (and the uncovered elderly 4 % more),
the people with a gap in their support 4 % more, each with a little noise. Every such row is of
kind ``synthetic`` and says so wherever it is shown.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.overlay import locate_points
from karte import history
from karte.domain.history import HistoryKind
from karte.domain.layers import MUNICIPALITY, REGISTER_COLUMNS, join_list
from karte.domain.schema import (
    FREQUENCY_JA,
    Consent,
    HelpKind,
    LocationPrecision,
    PlanStatus,
    Role,
    ServiceKind,
)

#: The demo's data date and fiscal year (令和8年度).
DEMO_DATA_DATE = dt.date(2026, 10, 1)
#: Earlier fiscal years of synthetic history the demo keeps (so trends have five points).
DEMO_HISTORY_YEARS = 4
VENUE_PATTERN = re.compile(r"市民センター|分館|福祉館|公民館|集会所|会館")

SURNAMES = [
    ("佐藤", "サトウ"), ("工藤", "クドウ"), ("木村", "キムラ"), ("佐々木", "ササキ"), ("成田", "ナリタ"),
    ("斎藤", "サイトウ"), ("中村", "ナカムラ"), ("三上", "ミカミ"), ("鈴木", "スズキ"), ("高橋", "タカハシ"),
    ("小山内", "オサナイ"), ("田中", "タナカ"), ("山内", "ヤマウチ"), ("福士", "フクシ"), ("葛西", "カサイ"),
    ("奈良", "ナラ"), ("対馬", "ツシマ"), ("今", "コン"), ("蝦名", "エビナ"), ("長谷川", "ハセガワ"),
    ("山田", "ヤマダ"), ("小笠原", "オガサワラ"), ("相馬", "ソウマ"), ("鳴海", "ナルミ"), ("須藤", "スドウ"),
    ("秋元", "アキモト"), ("竹内", "タケウチ"), ("桜庭", "サクラバ"), ("野呂", "ノロ"), ("外崎", "トノサキ"),
]
GIVEN_NAMES = [
    ("ハナ", "ハナ"), ("キヨ", "キヨ"), ("トシ", "トシ"), ("節子", "セツコ"), ("和子", "カズコ"),
    ("幸子", "サチコ"), ("久子", "ヒサコ"), ("ミツ", "ミツ"), ("正子", "マサコ"), ("文子", "フミコ"),
    ("勇", "イサム"), ("清", "キヨシ"), ("茂", "シゲル"), ("武", "タケシ"), ("博", "ヒロシ"),
    ("昭", "アキラ"), ("實", "ミノル"), ("正雄", "マサオ"), ("一郎", "イチロウ"), ("弘", "ヒロシ"),
    ("陽子", "ヨウコ"), ("恵子", "ケイコ"), ("誠", "マコト"), ("健一", "ケンイチ"), ("美咲", "ミサキ"),
    ("大翔", "ヒロト"), ("結衣", "ユイ"), ("蓮", "レン"), ("悠真", "ユウマ"), ("陽菜", "ヒナ"),
]
CARE_LEVELS = ["要支援1", "要支援2", "要介護1", "要介護2", "要介護3", "要介護4", "要介護5"]
DISABILITY_KINDS = [("身体", ["1級", "2級", "3級", "4級"]), ("知的", ["A", "B"]), ("精神", ["1級", "2級"])]
MEDICAL_DEVICES = ["在宅酸素", "人工呼吸器", "人工透析", "たん吸引"]


@dataclass(frozen=True)
class DemoData:
    register: gpd.GeoDataFrame
    cooperators: gpd.GeoDataFrame
    services: gpd.GeoDataFrame


def generate(
    small_areas: gpd.GeoDataFrame,
    districts: gpd.GeoDataFrame,
    shelters: gpd.GeoDataFrame,
    emergency_sites: gpd.GeoDataFrame,
    *,
    seed: int,
    data_date: dt.date = DEMO_DATA_DATE,
) -> DemoData:
    """Generate the synthetic register, cooperators and services (all EPSG:6678)."""
    rng = np.random.default_rng(seed)
    cooperators = _cooperators(small_areas, districts, rng)
    register = _register(small_areas, cooperators, shelters, rng, data_date)
    services = _services(small_areas, districts, shelters, emergency_sites, rng)
    # last, from a stream of its own: every value seeded before stays as it was
    register["emergency_contact"] = _emergency_contacts(len(register), np.random.default_rng([seed, 7]))
    return DemoData(register=register, cooperators=cooperators, services=services)


#: Who the emergency contact (緊急連絡先) is, with the share of persons who have one.
EMERGENCY_RELATIONS = ("長男", "長女", "次男", "次女", "妻", "夫", "弟", "妹", "甥", "姪", "近所の方")
EMERGENCY_CONTACT_SHARE = 0.85


def _emergency_contacts(n: int, rng: np.random.Generator) -> list[str | None]:
    """緊急連絡先 of ``n`` persons: a relation and a clearly fake mobile number (``090-0000-xxxx``,
    the 0000 exchange is never assigned), or None for about one in seven."""
    out: list[str | None] = []
    for _ in range(n):
        relation = EMERGENCY_RELATIONS[rng.integers(len(EMERGENCY_RELATIONS))]
        number = f"{('090', '080', '070')[rng.integers(3)]}-0000-{rng.integers(0, 10000):04d}"
        out.append(f"{relation} {number}" if rng.random() < EMERGENCY_CONTACT_SHARE else None)
    return out


# --- places -----------------------------------------------------------------------------------

def _points_in(polygons: gpd.GeoSeries, counts: np.ndarray, rng: np.random.Generator) -> list:
    """``counts[i]`` uniform random points inside polygon i, as a flat list in polygon order."""
    out: list = []
    for geom, n in zip(polygons, counts, strict=True):
        if n <= 0:
            continue
        minx, miny, maxx, maxy = geom.bounds
        got: list = []
        shapely.prepare(geom)
        while len(got) < n:
            k = max(16, 4 * (n - len(got)))
            xs = rng.uniform(minx, maxx, k)
            ys = rng.uniform(miny, maxy, k)
            pts = shapely.points(xs, ys)
            got.extend(pts[shapely.contains(geom, pts)][: n - len(got)])
        out.extend(got)
    return out


def _address(area_name: str, rng: np.random.Generator) -> str:
    return f"青森県青森市{area_name}{rng.integers(1, 40)}-{rng.integers(1, 30)}"


def _person_name(rng: np.random.Generator, given_range: slice = slice(None)) -> tuple[str, str]:
    s, sk = SURNAMES[rng.integers(len(SURNAMES))]
    pool = GIVEN_NAMES[given_range]
    g, gk = pool[rng.integers(len(pool))]
    return f"{s} {g}", f"{sk} {gk}"


def _phone(rng: np.random.Generator, mobile: bool = False) -> str:
    head = "090" if mobile else "017"
    return f"{head}-000-{rng.integers(0, 10000):04d}"


# --- cooperators ------------------------------------------------------------------------------

ROLE_HELP = {
    Role.COUNCIL_OFFICER: [HelpKind.ELDERLY, HelpKind.WATCHING, HelpKind.EVACUATION],
    Role.WELFARE_COMMISSIONER: [HelpKind.ELDERLY, HelpKind.DISABILITY, HelpKind.WATCHING,
                                HelpKind.EVACUATION],
    Role.CHIEF_CHILD_COMMISSIONER: [HelpKind.CHILDCARE, HelpKind.WATCHING],
    Role.COMMUNITY_SUPPORT_CENTRE: [HelpKind.ELDERLY, HelpKind.HEALTH],
    Role.NEIGHBOURHOOD_OFFICER: [HelpKind.WATCHING, HelpKind.SAFETY, HelpKind.EVACUATION,
                                 HelpKind.SNOW],
    Role.FIRE_CORPS: [HelpKind.EVACUATION, HelpKind.SAFETY, HelpKind.SNOW],
    Role.WELFARE_SUPPORTER: [HelpKind.ELDERLY, HelpKind.WATCHING, HelpKind.SNOW,
                             HelpKind.TRANSPORT, HelpKind.EVACUATION, HelpKind.HEALTH],
}


def _cooperators(small_areas, districts, rng) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    pop = small_areas["population"].astype("Float64").fillna(0).to_numpy(dtype=float)
    for code in districts["district_code"]:
        inside = (small_areas["district_code"] == code).to_numpy()
        hh = float(small_areas.loc[inside, "households"].astype("Float64").fillna(0).sum())
        people = float(pop[inside].sum())
        counts = {
            Role.COUNCIL_OFFICER: 6,
            Role.WELFARE_COMMISSIONER: max(2, round(hh / 220)),
            Role.CHIEF_CHILD_COMMISSIONER: 2,
            Role.COMMUNITY_SUPPORT_CENTRE: 1,
            Role.NEIGHBOURHOOD_OFFICER: max(2, round(people / 600)),
            Role.FIRE_CORPS: 4,
            Role.WELFARE_SUPPORTER: 8,
        }
        weights = pop[inside] + 1.0
        areas = small_areas.loc[inside]
        for role, n in counts.items():
            picks = rng.choice(len(areas), size=n, p=weights / weights.sum())
            per_area = np.bincount(picks, minlength=len(areas))
            geoms.extend(_points_in(areas.geometry, per_area, rng))
            for _ in range(n):
                offered = ROLE_HELP[role]
                keep = [h for h in offered if rng.random() < 0.8] or offered[:1]
                name, _kana = _person_name(rng, slice(10, 30))
                capacity = int(rng.integers(1, 5)) if HelpKind.EVACUATION in keep else 0
                rows.append({
                    "role": str(role), "name": name, "phone": _phone(rng, mobile=rng.random() < 0.5),
                    "district_code": code, "help_kinds": join_list(keep), "capacity": capacity,
                })
    out = gpd.GeoDataFrame(rows, geometry=geoms, crs=small_areas.crs)
    out.insert(0, "cooperator_id", [f"C{i:05d}" for i in range(1, len(out) + 1)])
    return out


# --- register ---------------------------------------------------------------------------------

def _register(small_areas, cooperators, shelters, rng, data_date) -> gpd.GeoDataFrame:
    known = small_areas[small_areas["population"].notna()]
    lam = (0.085 * known["age_75_plus"].astype(float) + 0.015 * known["age_65_74"].astype(float)
           + 0.05 * known["disabled"].astype(float))
    counts = rng.poisson(lam.to_numpy())
    geoms = _points_in(known.geometry, counts, rng)
    area_idx = np.repeat(np.arange(len(known)), counts)
    rows = []
    for i in area_idx:
        area = known.iloc[i]
        rows.append(_person(area, rng, data_date))
    reg = gpd.GeoDataFrame(rows, geometry=geoms, crs=small_areas.crs)
    reg.insert(0, "person_id", [f"P{i:06d}" for i in range(1, len(reg) + 1)])
    reg["supporter_ids"] = _assign_supporters(reg, cooperators, rng)
    reg["shelter_id"] = _nearest_shelter(reg, shelters, rng)
    return reg[[*REGISTER_COLUMNS, "geometry"]]


def _person(area, rng, data_date) -> dict:
    kind = rng.choice(["old", "young_old", "disabled", "infant"], p=[0.74, 0.1, 0.15, 0.01])
    age = {"old": rng.integers(75, 99), "young_old": rng.integers(65, 75),
           "disabled": rng.integers(18, 65), "infant": rng.integers(0, 3)}[kind]
    birth = data_date - dt.timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
    name, kana = _person_name(rng, slice(0, 20) if kind in ("old", "young_old") else slice(None))
    care = None
    if kind in ("old", "young_old") and rng.random() < 0.7:
        care = CARE_LEVELS[rng.choice(len(CARE_LEVELS), p=[.12, .12, .2, .18, .15, .13, .1])]
    dis_kind = dis_grade = None
    if kind == "disabled" or rng.random() < 0.1:
        k, grades = DISABILITY_KINDS[rng.choice(3, p=[0.6, 0.2, 0.2])]
        dis_kind, dis_grade = k, grades[rng.integers(len(grades))]
    heavy = care in ("要介護4", "要介護5")
    mobility = ("bedridden" if heavy and rng.random() < 0.6 else
                "wheelchair" if (heavy or dis_kind == "身体") and rng.random() < 0.5 else
                "walk_with_help" if care else "independent")
    consent = rng.choice(list(Consent), p=[0.6, 0.1, 0.2, 0.1])
    consent_date = None
    if consent in (Consent.CONSENTED, Consent.REFUSED):
        consent_date = (data_date - dt.timedelta(days=int(rng.integers(10, 1100)))).isoformat()
    return {
        "name": name, "kana": kana, "address": _address(area["name"], rng),
        "location_precision": str(LocationPrecision.EXACT), "birth_date": birth.isoformat(),
        "care_level": care, "disability_kind": dis_kind, "disability_grade": dis_grade,
        "elderly_only_household": bool(kind in ("old", "young_old") and rng.random() < 0.55),
        "intractable_disease": bool(rng.random() < 0.03),
        "infant": bool(kind == "infant"),
        "medical_devices": MEDICAL_DEVICES[rng.integers(4)] if rng.random() < 0.04 else None,
        "mobility": mobility, "consent": str(consent), "consent_date": consent_date,
        "plan_status": str(rng.choice(list(PlanStatus), p=[0.35, 0.2, 0.45])),
        "district_code": area["district_code"], "key_code": area["key_code"],
        "municipality_code": area["municipality_code"],
    }


def _assign_supporters(reg, cooperators, rng) -> list[str]:
    helpers = cooperators[cooperators["help_kinds"].str.contains(HelpKind.EVACUATION.value)]
    left = dict(zip(helpers["cooperator_id"], helpers["capacity"], strict=True))
    out = [""] * len(reg)
    for code, people in reg.groupby("district_code").groups.items():
        local = helpers[helpers["district_code"] == code]
        if local.empty:
            continue
        hx, hy = local.geometry.x.to_numpy(), local.geometry.y.to_numpy()
        ids = local["cooperator_id"].to_numpy()
        for idx in people:
            if rng.random() >= 0.65:
                continue
            p = reg.geometry.loc[idx]
            order = np.argsort(np.hypot(hx - p.x, hy - p.y))
            # mostly the nearest with capacity; sometimes over-assign the nearest (a gap to find)
            choice = next((ids[j] for j in order if left[ids[j]] > 0), None)
            if choice is None or rng.random() < 0.05:
                choice = ids[order[0]]
            left[choice] -= 1
            out[reg.index.get_loc(idx)] = choice
    return out


def _nearest_shelter(reg, shelters, rng) -> list[str | None]:
    sx, sy = shelters.geometry.x.to_numpy(), shelters.geometry.y.to_numpy()
    welfare = shelters["welfare"].to_numpy()
    ids = shelters["shelter_id"].to_numpy()
    out: list[str | None] = []
    for geom, care, mob in zip(reg.geometry, reg["care_level"], reg["mobility"], strict=True):
        if rng.random() < 0.1:
            out.append(None)
            continue
        d = np.hypot(sx - geom.x, sy - geom.y)
        needs_care = mob in ("bedridden", "wheelchair") or care in ("要介護3", "要介護4", "要介護5")
        if needs_care and rng.random() < 0.7:
            d = np.where(welfare, d, np.inf)
        out.append(str(ids[int(np.argmin(d))]))
    return out


# --- services ---------------------------------------------------------------------------------

SALON_FREQ = (["monthly", "biweekly", "weekly", "bimonthly", "quarterly"],
              [0.55, 0.2, 0.1, 0.1, 0.05])
OTHER_SERVICES = [
    (ServiceKind.WATCHING, "見守り・声かけ活動", "高齢者", "weekly"),
    (ServiceKind.SNOW, "冬季の雪かき支援", "高齢者・障がい者", "on_request"),
    (ServiceKind.RUBBISH, "ゴミ出し支援", "高齢者・障がい者", "weekly"),
    (ServiceKind.SHOPPING, "買い物支援", "高齢者", "biweekly"),
    (ServiceKind.CHILDCARE, "ちょこっと託児", "子育て世帯", "monthly"),
    (ServiceKind.PARENTING, "子育て相談会", "子育て世帯", "monthly"),
    (ServiceKind.EXERCISE, "いきいき体操教室", "どなたでも", "weekly"),
    (ServiceKind.HOBBY, "趣味の教室", "どなたでも", "biweekly"),
    (ServiceKind.HEALTH, "健康教室", "どなたでも", "monthly"),
]


def _services(small_areas, districts, shelters, emergency_sites, rng) -> gpd.GeoDataFrame:
    venues = pd.concat([
        shelters[["name", "address", "geometry"]], emergency_sites[["name", "address", "geometry"]]
    ], ignore_index=True)
    venues = venues[venues["name"].str.contains(VENUE_PATTERN)].drop_duplicates("name")
    venues = gpd.GeoDataFrame(venues, geometry="geometry", crs=shelters.crs).reset_index(drop=True)
    venues["district_code"] = locate_points(venues, districts, "district_code")
    venues = venues.dropna(subset=["district_code"])

    # neighbourhood halls (町会館) at the most populous small areas of each district
    halls = []
    for code, areas in small_areas.groupby("district_code"):
        top = areas.sort_values("population", ascending=False, na_position="last").head(
            int(rng.integers(2, 6)))
        for _, a in top.iterrows():
            if pd.isna(a["population"]):
                continue
            base = re.sub(r"[0-9０-９]+丁目$", "", a["name"])
            halls.append({"name": f"{base}町会館", "address": f"青森県青森市{a['name']}",
                          "geometry": a.geometry.representative_point(), "district_code": code})
    halls = gpd.GeoDataFrame(halls, geometry="geometry", crs=small_areas.crs)
    halls = halls.drop_duplicates("name")
    places = pd.concat([venues, halls], ignore_index=True)

    rows, geoms = [], []
    freq, p = SALON_FREQ
    for _, v in places.iterrows():
        if rng.random() < 0.8:
            rows.append(_service(ServiceKind.SALON, f"{v['name']} ふれあいサロン", v, rng.choice(freq, p=p),
                                 "高齢者", rng))
            geoms.append(v.geometry)
    for _code, local in places.groupby("district_code"):
        for kind, label, target, f in OTHER_SERVICES:
            if rng.random() < 0.6:
                v = local.iloc[int(rng.integers(len(local)))]
                rows.append(_service(kind, f"{label}（{v['name']}）", v, f, target, rng))
                geoms.append(v.geometry)
    out = gpd.GeoDataFrame(rows, geometry=geoms, crs=small_areas.crs)
    out.insert(0, "service_id", [f"V{i:04d}" for i in range(1, len(out) + 1)])
    return out


def _service(kind, name, venue, frequency, target, rng) -> dict:
    day = "月火水木金土"[int(rng.integers(6))]
    return {
        "kind": str(kind), "name": name,
        "operator": f"{venue['district_code']}地区社協" if rng.random() < 0.6 else "町会",
        "venue": venue["name"], "frequency": str(frequency),
        "schedule": f"{FREQUENCY_JA[str(frequency)]} {day}曜 10:00〜12:00",
        "contact": _phone(rng), "target": target, "district_code": venue["district_code"],
    }


# --- earlier fiscal years ---------------------------------------------------------------------------

#: Yearly change walked back from the current year (see the module docstring): figure -> (relative
#: change per year back, absolute change of its rate per year back, noise).
_BACK = {
    "support_needers": (-0.015, 0.0, 0.01),
    "consent_shareable": (-0.02, 0.0, 0.01),
    "cooperators": (-0.01, 0.0, 0.01),
    "welfare_supporters": (-0.25, 0.0, 0.05),
    "services": (-0.02, 0.0, 0.0),
    "uncovered_elderly": (0.04, 0.0, 0.01),
    "at_risk": (0.04, 0.0, 0.02),
}


def synthetic_history(current: pd.DataFrame, *, years: int, seed: int) -> pd.DataFrame:
    """``years`` earlier fiscal years of history rows before the ``current`` ones (district rows
    and the municipality's, as :func:`karte.history.history_rows` makes them), walked back with the
    rates of the module docstring; kind ``synthetic``. The municipality's rows are the sums of its
    districts'."""
    if years <= 0 or not len(current):
        return current.iloc[0:0].copy()
    out = []
    districts = current[current["district_code"].fillna(history.CITY) != history.CITY]
    year0 = int(current["fiscal_year"].iloc[0])
    for back in range(years, 0, -1):
        by_municipality: dict[str, list[dict]] = {}
        for row in districts.to_dict("records"):
            code = str(row["district_code"])
            rng = np.random.default_rng([seed, back, *code.encode()])
            figures = _walk_back(history.figures_of(row), back, rng)
            by_municipality.setdefault(row[MUNICIPALITY], []).append(figures)
            out.append({**row, "fiscal_year": year0 - back, "figures": _dumps(figures)})
        for municipality, figures in by_municipality.items():
            city = current[(current["district_code"].fillna(history.CITY) == history.CITY)
                           & (current[MUNICIPALITY] == municipality)]
            template = city.iloc[0].to_dict() if len(city) else {**out[-1], "district_code": history.CITY}
            out.append({**template, "fiscal_year": year0 - back,
                        "figures": _dumps(history.city_figures(figures))})
    frame = pd.DataFrame(out, columns=current.columns)
    frame["kind"] = str(HistoryKind.SYNTHETIC)
    frame["synthetic"] = True
    frame["history_id"] = None
    return frame


def _walk_back(figures: dict, back: int, rng: np.random.Generator) -> dict:
    out = dict(figures)
    for key, (per_year, _, noise) in _BACK.items():
        value = out.get(key)
        if value is None:
            continue
        factor = (1 + per_year) ** back * (1 + rng.normal(0, noise))
        out[key] = max(0, round(value * factor))
    needers = out.get("support_needers") or 0
    out["consent_shareable"] = min(out.get("consent_shareable") or 0, needers)
    for key, points in (("with_supporter", 0.035), ("plan_done", 0.06)):
        rate = figures.get(f"{key}_rate")
        if rate is None:
            continue
        earlier = max(0.0, rate - points * back + rng.normal(0, 0.01))
        out[key] = min(needers, round(needers * earlier))
    if out.get("plan_in_progress") is not None:
        out["plan_in_progress"] = min(needers - (out.get("plan_done") or 0),
                                      round((out["plan_in_progress"] or 0) * (1 - 0.05 * back)))
    if out.get("supporters") is not None and figures.get("with_supporter"):
        share = (out["with_supporter"] or 0) / figures["with_supporter"]
        out["supporters"] = round(out["supporters"] * share)
    if out.get("salons") is not None:
        out["salons"] = max(0, round(out["salons"] * 0.97 ** back + rng.normal(0, 0.3)))
    if out.get("at_risk") is not None:
        out["at_risk"] = min(needers, out["at_risk"])
    if out.get("uncovered_elderly") is not None and out.get("elderly") is not None:
        out["uncovered_elderly"] = min(out["elderly"], out["uncovered_elderly"])
    return history.with_rates(out)


def _dumps(figures: dict) -> str:
    return json.dumps(figures, ensure_ascii=False)


def synthetic_analysis(frame: pd.DataFrame, *, fiscal_year: int, seed: int) -> pd.DataFrame:
    """``frame`` (the history layer) with the analysis figures (uncovered elderly, people with a gap)
    of its synthetic rows walked back from those recorded for ``fiscal_year`` (:data:`_BACK`, seeded),
    where they have none; other rows unchanged."""
    out = frame.copy()
    code = out["district_code"].map(lambda v: history.CITY if v is None or v != v else str(v))
    now = {(str(m), c): history.figures_of(r) for m, c, r in
           zip(out[MUNICIPALITY], code, out.to_dict("records"), strict=True)
           if int(r["fiscal_year"]) == fiscal_year}
    texts = []
    for m, c, r in zip(out[MUNICIPALITY], code, out.to_dict("records"), strict=True):
        figures = history.figures_of(r)
        base = now.get((str(m), c))
        back = fiscal_year - int(r["fiscal_year"])
        if str(r.get("kind")) != HistoryKind.SYNTHETIC or back <= 0 or base is None \
                or figures.get("uncovered_elderly") is not None:
            texts.append(r["figures"])
            continue
        rng = np.random.default_rng([seed, back, 7, *c.encode()])
        for key in ("uncovered_elderly", "at_risk"):
            per_year, _, noise = _BACK[key]
            if base.get(key) is not None:
                figures[key] = max(0, round(base[key] * (1 + per_year) ** back * (1 + rng.normal(0, noise))))
        if figures.get("elderly") is not None and figures.get("uncovered_elderly") is not None:
            figures["uncovered_elderly"] = min(figures["elderly"], figures["uncovered_elderly"])
        if figures.get("support_needers") is not None and figures.get("at_risk") is not None:
            figures["at_risk"] = min(figures["support_needers"], figures["at_risk"])
        texts.append(_dumps(history.with_rates(figures)))
    out["figures"] = texts
    return out
