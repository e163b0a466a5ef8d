"""Tiny hand-built worlds for the analysis tests (EPSG:6678, metres), with answers known by hand.

The world: three 1000 m × 1000 m districts side by side, A [0, 1000], B [1000, 2000] and
C [2000, 3000] (all y in [0, 1000]).

Small areas (population split evenly over area):

========  ========  ===========  ==========  =====  =====  =============
key       district  x range      population  65-74  75+    elderly alone
========  ========  ===========  ==========  =====  =====  =============
a1        A         0-1000       1000        240    160    80
b1        B         1000-1500    1500        360    240    60
b2        B         1500-2000    500         120    80     20
c1        C         2000-3000    300         0      0      0   (zero elderly)
========  ========  ===========  ==========  =====  =====  =============

On a 500 m square grid every piece's population point is its cell centre (250 + 500 i, 250 + 500 j).

Services: s1 a monthly salon exactly on the A/B border at (1000, 500) (coded to A); s2 a
bimonthly salon at (250, 250); s3 a weekly exercise class at (250, 750) (not a salon); s4 an
on-request salon at (2250, 250) in C. With the defaults (detour 1.3, 500 m) s1 covers the four
cell centres at 353.55 m straight = 459.62 m walking: cells 1_0, 1_1 (A) and 2_0, 2_1 (B).
Nothing else counts, so B has no salon of its own yet 75 % coverage, and C has no elderly.

Shelters: sh1 (500, 100) ordinary; sh2 (2900, 900) welfare. Emergency sites: e1 (300, 400) and
e3 (1500, 200) for earthquakes, e2 (1800, 100) for tsunami only.

Cooperators (help kinds, capacity): C1 (300, 500) A evacuation;snow 3; C2 (900, 100) A evacuation 1;
C3 (2500, 500) C evacuation 1; C4 (600, 620) A watching 3 (not willing); C5 (1800, 900) B
evacuation, capacity unknown; C6 (700, 700) A evacuation 1 (unassigned).

Register (expected gaps with the defaults):

====  ============  ========  ==========  =========  ========  ===========================================
id    point         district  consent     supporters plan      gaps
====  ============  ========  ==========  =========  ========  ===========================================
P1    (300, 300)    A         consented   C1         done      none (C1 260 m, e1 130 m)
P2    (600, 600)    A         refused     -          none      no_consent, no_supporter, no_plan
P3    (1100, 100)   B         consented   C2 (in A)  done      none (C2 260 m, e3 536 m)
P4    none          A         consented   C1         in_prog.  no_location, no_plan
P5    (2100, 900)   C         consented   C3         done      supporter_far (735 m), overloaded, no_shelter
P6    (2600, 600)   C         ordinance   C3;C9      done      supporter_overloaded (C9 does not exist)
P7    EMPTY         C         no_answer   -          none      no_consent, no_location, no_supporter, no_plan
P8    (1200, 800)   B         consented   C5         done      supporter_far (790 m); wheelchair -> sh2
P9    (1700, 800)   B         consented   C5;C1      done      none (C5 184 m is near though C1 is far)
====  ============  ========  ==========  =========  ========  ===========================================

C1 carries P1, P4, P9 (3 = capacity), C2 carries P3 (1 = capacity), C3 carries P5, P6 (2 > 1:
overloaded), C5 carries P8, P9 (capacity unknown: never overloaded, never suggested).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.crs import METRIC


def square(x0, y0, x1, y1):
    return shapely.MultiPolygon([shapely.box(x0, y0, x1, y1)])


def districts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"district_code": ["A", "B", "C"], "district_name": ["甲", "乙", "丙"]},
        geometry=[square(0, 0, 1000, 1000), square(1000, 0, 2000, 1000),
                  square(2000, 0, 3000, 1000)],
        crs=METRIC,
    )


def small_areas() -> gpd.GeoDataFrame:
    rows = [
        # key, district, population, 0-14, 15-64, 65-74, 75+, alone, box
        ("a1", "A", 1000, 100, 500, 240, 160, 80, (0, 0, 1000, 1000)),
        ("b1", "B", 1500, 150, 750, 360, 240, 60, (1000, 0, 1500, 1000)),
        ("b2", "B", 500, 50, 250, 120, 80, 20, (1500, 0, 2000, 1000)),
        ("c1", "C", 300, 100, 200, 0, 0, 0, (2000, 0, 3000, 1000)),
    ]
    frame = pd.DataFrame([r[:8] for r in rows], columns=[
        "key_code", "district_code", "population", "age_0_14", "age_15_64", "age_65_74",
        "age_75_plus", "elderly_alone"])
    for col in frame.columns[2:]:
        frame[col] = frame[col].astype("Int64")
    frame["concealed"] = False
    return gpd.GeoDataFrame(frame, geometry=[square(*r[8]) for r in rows], crs=METRIC)


def services() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "service_id": ["s1", "s2", "s3", "s4"],
            "kind": ["salon", "salon", "exercise", "salon"],
            "name": ["境サロン", "隔月サロン", "体操教室", "随時サロン"],
            "frequency": ["monthly", "bimonthly", "weekly", "on_request"],
            "district_code": ["A", "A", "A", "C"],
        },
        geometry=shapely.points([(1000, 500), (250, 250), (250, 750), (2250, 250)]),
        crs=METRIC,
    )


def shelters() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"shelter_id": ["sh1", "sh2"], "name": ["小学校", "福祉センター"], "welfare": [False, True]},
        geometry=shapely.points([(500, 100), (2900, 900)]),
        crs=METRIC,
    )


def emergency_sites() -> gpd.GeoDataFrame:
    frame = pd.DataFrame({"site_id": ["e1", "e2", "e3"], "name": ["公園", "高台", "広場"]})
    for hazard in ("flood", "landslide", "storm_surge", "earthquake", "tsunami", "fire",
                   "inland_flood", "volcano"):
        frame[f"hazard_{hazard}"] = False
    frame["hazard_earthquake"] = [True, False, True]
    frame["hazard_tsunami"] = [False, True, False]
    return gpd.GeoDataFrame(frame, geometry=shapely.points([(300, 400), (1800, 100), (1500, 200)]),
                            crs=METRIC)


def cooperators() -> gpd.GeoDataFrame:
    rows = [
        ("C1", "A", "evacuation;snow", 3, (300, 500)),
        ("C2", "A", "evacuation", 1, (900, 100)),
        ("C3", "C", "evacuation", 1, (2500, 500)),
        ("C4", "A", "watching", 3, (600, 620)),
        ("C5", "B", "evacuation", None, (1800, 900)),
        ("C6", "A", "evacuation", 1, (700, 700)),
    ]
    frame = pd.DataFrame([r[:4] for r in rows],
                         columns=["cooperator_id", "district_code", "help_kinds", "capacity"])
    frame["capacity"] = frame["capacity"].astype("Int64")
    frame["role"] = "welfare_supporter"
    return gpd.GeoDataFrame(frame, geometry=shapely.points([r[4] for r in rows]), crs=METRIC)


def register() -> gpd.GeoDataFrame:
    empty = shapely.Point()
    rows = [
        # id, point, district, key, consent, supporters, plan, care, mobility
        ("P1", shapely.Point(300, 300), "A", "a1", "consented", "C1", "done", None, "independent"),
        ("P2", shapely.Point(600, 600), "A", "a1", "refused", "", "none", None, "walk_with_help"),
        ("P3", shapely.Point(1100, 100), "B", "b1", "consented", "C2", "done", "要支援1", "independent"),
        ("P4", None, "A", "a1", "consented", "C1", "in_progress", None, "independent"),
        ("P5", shapely.Point(2100, 900), "C", "c1", "consented", "C3", "done", "要介護2", "walk_with_help"),
        ("P6", shapely.Point(2600, 600), "C", "c1", "ordinance", "C3;C9", "done", "要介護４",
         "walk_with_help"),
        ("P7", empty, "C", "c1", "no_answer", None, "none", None, "independent"),
        ("P8", shapely.Point(1200, 800), "B", "b1", "consented", "C5", "done", None, "wheelchair"),
        ("P9", shapely.Point(1700, 800), "B", "b2", "consented", "C5;C1", "done", None, "independent"),
    ]
    frame = pd.DataFrame([(r[0], *r[2:]) for r in rows], columns=[
        "person_id", "district_code", "key_code", "consent", "supporter_ids", "plan_status",
        "care_level", "mobility"])
    frame["medical_devices"] = None
    frame["location_precision"] = ["exact" if r[1] is not None and not r[1].is_empty else "none"
                                   for r in rows]
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([r[1] for r in rows], crs=METRIC))


#: Expected gaps of the world's register with the default parameters.
EXPECTED_GAPS = {
    "P1": set(),
    "P2": {"no_consent", "no_supporter", "no_plan"},
    "P3": set(),
    "P4": {"no_location", "no_plan"},
    "P5": {"supporter_far", "supporter_overloaded", "no_shelter"},
    "P6": {"supporter_overloaded"},
    "P7": {"no_consent", "no_location", "no_supporter", "no_plan"},
    "P8": {"supporter_far"},
    "P9": set(),
}


def points(coords, **columns) -> gpd.GeoDataFrame:
    """Points with extra columns, in METRIC."""
    return gpd.GeoDataFrame(columns, geometry=shapely.points(np.asarray(coords, dtype=float)),
                            crs=METRIC)
