"""Individual evacuation plans, drills and safety confirmation: what each viewer gets and may do.

**Plans (個別避難計画).** One plan per support-needer (``evacuation_plans``, key ``EP-<person>``),
written by coordinators and the district's members (own district) and city staff, read as the
viewer (the store filters and logs). A plan starts from what the register knows (supporters,
shelter, needs, consent) and adds what the register does not (the emergency contact, how and by
which way to evacuate, what to take, the consent to share the plan, dates of making and review).
The register's plan status is derived from the plans (:mod:`karte.snapshot`). Which plans to make
first is ranked as the Cabinet Office's guidance (令和3年 個別避難計画作成の取組指針) orders it:
the hazard at home, the person's condition, living alone or with elderly family only, no
supporter yet (:func:`priority`), each with its reasons.

**Drills (訓練).** City staff or a coordinator start a drill for one or more districts; supporters
and district members mark each person (無事を確認・避難済み・不在・支援が必要・未確認) on a phone
(:func:`record_marks`: each mark carries the id the device gave it, so a mark sent twice is stored
once); the dashboard (:func:`status`) and the report (:func:`report`) are computed from the marks
each time they are asked for (nothing cached: marks are personal). A drill's roll is the register
rows of its districts that supporters hold: shareable entries, and in disaster mode every entry
of the district.

**Public outputs** are counts only (:func:`public_summary`: drills held, share confirmed,
suppressed when small); the activity indicators take :func:`fiscal_year_counts`.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import io
import math
import re
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.sparse.csgraph import dijkstra

from gis.network import WalkNetwork
from karte.assemble import fiscal_year, fiscal_year_label
from karte.domain.access import SHAREABLE, Access, Level
from karte.domain.drills import (
    DRILL_LEADERS,
    DRILLS,
    HAZARD_LAYERS,
    LESSONS,
    MARK_COLOUR,
    MARK_JA,
    MARKS,
    PLAN_ITEMS_JA,
    PLANS,
    REVIEW_MONTHS,
    DrillKind,
    EvacuationMeans,
    MarkStatus,
    first_plans,
    unique_marks,
)
from karte.domain.errors import AccessDenied, ConflictError, InputError, NotFoundError, StoreError
from karte.domain.layers import LIST_SEPARATOR, MUNICIPALITY, Layer, join_list, split_list
from karte.domain.schema import (
    CONSENT_JA,
    MOBILITY_JA,
    PLAN_STATUS_JA,
    ROLE_JA,
    Consent,
    Mobility,
    PlanStatus,
    Role,
)
from karte.indicators import drill_counts
from karte.render.drill_report import DistrictReport, DrillReport
from karte.render.plan_pdf import MAP_ASPECT, PlanMap, PlanPrint
from karte.render.webmap import to_web_geojson
from karte.services import disaster
from karte.services.disaster import jst_text, with_modes
from karte.services.personal import read_records
from karte.services.suppression import small
from karte.snapshot import Snapshot, current
from karte.store.base import Store
from karte.walknet import read_walk_network

JST = ZoneInfo("Asia/Tokyo")
#: Who may start and end drills (and see every district's drills).
LEADERS = frozenset(Level(v) for v in DRILL_LEADERS)
#: Levels that see personal rows and so the drill and plan pages.
PERSONAL_LEVELS = frozenset({Level.CITY_STAFF, Level.COORDINATOR, Level.DISTRICT_MEMBER})
#: The plan statuses a saved plan may have (a person without a plan is 未作成).
PLAN_STATES = (PlanStatus.IN_PROGRESS, PlanStatus.DONE)
#: Free-text fields of a plan and their longest length.
TEXT_MAX = 500
#: A device's mark id: a UUID (hex with or without dashes).
DEVICE_ID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
#: Marks timed this far in the future (device clocks run fast) are refused.
CLOCK_SLACK = dt.timedelta(minutes=5)
#: Marks made on paper or offline arrive late: those made before the drill ended (or within
#: this after its start, for clocks) are accepted.
LATE_MARKS = dt.timedelta(hours=12)
#: Points of a hazard area containing the home (:func:`priority`): more than all else together.
HAZARD_POINTS = 8
#: A plan whose review is due within this many days is listed (overdue ones always).
DUE_WITHIN_DAYS = 30
#: The paper drill sheet's two tick columns (:mod:`karte.services.copies`) as mark statuses.
PAPER_TICKS = {"confirmed": MarkStatus.SAFE, "arrived": MarkStatus.EVACUATED}
#: The statuses that count as confirmed, as stored.
CONFIRMED_VALUES = [s.value for s in MarkStatus if s.confirmed]
_NAMESPACE = uuid.UUID("2f0c7c55-54b1-4b3c-9c62-6d1d8e3a1919")
_TO_LONLAT = Transformer.from_crs(6678, 4326, always_xy=True)


# ===================================================================================================
# plans
# ===================================================================================================

def check_personal(access: Access, district: str | None = None) -> None:
    """:class:`AccessDenied` unless the viewer may see personal rows (of ``district``)."""
    if access.level not in PERSONAL_LEVELS:
        raise AccessDenied("個別避難計画と訓練の画面は、ログインした市職員・コーディネーター・"
                           "地区社協の方が使えます")
    if district is not None and not access.may_see_district_rows(district):
        raise AccessDenied("この地区の個人情報を見る権限がありません")


def check_district(snap: Snapshot, code: str) -> None:
    if code not in snap.kartes:
        raise NotFoundError(f"地区 {code} はありません")


def plans(store: Store, access: Access, *, district: str | None = None) -> list[dict]:
    """The plans the viewer may see (of ``district``), read as the viewer (logged)."""
    if not access.sees_personal:
        return []
    return first_plans(_rows(store, PLANS, access, district=district))


def register(store: Store, access: Access, district: str, *, snap: Snapshot | None = None) -> list[dict]:
    """The district's register rows the viewer may see (logged), plan status from the plans."""
    return read_records(store, Layer.REGISTER, access, district=district, snap=snap)


def supporters(store: Store, access: Access) -> dict[str, dict]:
    """cooperator_id -> ``name``, ``phone``, ``role_ja``, ``district_code`` of the cooperators the
    viewer may see (one logged read)."""
    out = {}
    for c in read_records(store, Layer.COOPERATORS, access):
        role = c.get("role")
        out[str(c["cooperator_id"])] = {
            "cooperator_id": str(c["cooperator_id"]), "name": c.get("name") or "",
            "phone": c.get("phone") or "",
            "role_ja": ROLE_JA[Role(role)] if role in Role._value2member_map_ else (role or ""),
            "district_code": c.get("district_code"), "x": c.get("x"), "y": c.get("y")}
    return out


def needs_text(row: dict) -> str:
    """What care the register says a person needs, in one line (要介護3・身体 1級・在宅酸素・車いす)."""
    mobility = row.get("mobility")
    parts = [row.get("care_level"), " ".join(str(x) for x in (row.get("disability_kind"),
                                                              row.get("disability_grade")) if _has(x)),
             row.get("medical_devices"),
             MOBILITY_JA[Mobility(mobility)] if mobility in Mobility._value2member_map_
             and mobility != Mobility.INDEPENDENT else None]
    if row.get("intractable_disease") is True:
        parts.append("難病")
    if row.get("infant") is True:
        parts.append("乳幼児")
    return "・".join(str(p) for p in parts if _has(p))


def _means_for(row: dict) -> str:
    return {Mobility.WHEELCHAIR: EvacuationMeans.WHEELCHAIR, Mobility.BEDRIDDEN: EvacuationMeans.CARRIED,
            Mobility.WALK_WITH_HELP: EvacuationMeans.WALK_WITH_HELP}.get(
        row.get("mobility"), EvacuationMeans.WALK).value


def plan_page(store: Store, access: Access, code: str, person_id: str, *, today: dt.date | None = None,
              network: WalkNetwork | None = None) -> dict:
    """Everything the plan form of one person shows: ``person`` (the register row), ``plan`` (the
    stored plan, or None), ``values`` (what the form starts from: the plan, else the register's
    defaults), ``supporters`` (options: the cooperators the viewer may see, assigned ones first),
    ``shelters`` (options: the nearest and the welfare shelters), ``route`` (home to the chosen
    shelter), ``can_edit``, ``items`` (labels)."""
    check_personal(access, code)
    snap = current(store)
    check_district(snap, code)
    person = _person(store, access, code, person_id)
    stored = _plan_of(store, access, code, person_id)
    if stored is not None:  # with its version, for the form's next save
        stored = store.read_row(PLANS, stored["plan_id"], access=with_modes(snap, access))
    values = _defaults(person, today=today) if stored is None else {k: stored.get(k) for k in PLAN_ITEMS_JA}
    coops = supporters(store, access)
    chosen = split_list(values.get("supporter_ids"))
    options = sorted(coops.values(), key=lambda c: (c["cooperator_id"] not in chosen,
                                                    c["district_code"] != code, _distance(person, c),
                                                    c["cooperator_id"]))[:40]
    return {
        "person": person, "plan": stored, "values": values, "code": code,
        "district_name": snap.district_name(code),
        "supporters": options, "chosen": [coops.get(s, {"cooperator_id": s, "name": s, "phone": "",
                                                       "role_ja": ""}) for s in chosen],
        "shelters": _shelter_options(snap, person, values.get("shelter_id")),
        "route": route_of(snap, person, values.get("shelter_id"), network=network),
        "can_edit": _may_edit(access, code, person),
        "items": PLAN_ITEMS_JA, "means": [(m.value, m.ja) for m in EvacuationMeans],
        "states": [(s.value, PLAN_STATUS_JA[s]) for s in PLAN_STATES],
        "consents": [(c.value, CONSENT_JA[c]) for c in Consent],
        "needs_register": needs_text(person),
    }


def save_plan(store: Store, access: Access, code: str, person_id: str, form: dict, *,
              version: int | None = None, today: dt.date | None = None) -> dict:
    """Create (``version`` None) or change the person's plan from ``form`` (the plan items, text)
    as ``access``; return the stored row. Every problem of the form at once as one
    :class:`InputError`; :class:`ConflictError` when someone saved first (their plan is kept)."""
    check_personal(access, code)
    snap = current(store)
    check_district(snap, code)
    person = _person(store, access, code, person_id)
    if not _may_edit(access, code, person):
        raise AccessDenied("この方の個別避難計画を書く権限がありません")
    today = today or _today()
    values = _clean_plan(snap, form, today=today, staff=access.level == Level.CITY_STAFF)
    if version is None:
        values.setdefault("made_on", today.isoformat())
        if not values.get("review_due"):
            values["review_due"] = _plus_months(dt.date.fromisoformat(values["made_on"]), REVIEW_MONTHS)
        row = {"person_id": person_id, "district_code": code, **values, "made_by": access.user}
        with _lock(store, "plans"):  # one plan per person: look, then write, one saver at a time
            if _plan_of(store, access, code, person_id) is not None:
                raise ConflictError("この方の個別避難計画は他の方が先に作成しました。"
                                    "画面を読み込み直してから続けてください")
            return store.append_rows(PLANS, [row], access=access)[0]
    stored = _plan_of(store, access, code, person_id)
    if stored is None:
        raise NotFoundError("この方の個別避難計画はありません（または権限がありません）")
    reviewed = values.get("reviewed_on")
    if reviewed and reviewed != stored.get("reviewed_on") and values.get("review_due", "") in (
            "", stored.get("review_due") or ""):  # reviewed now, next review not set by hand: a year on
        values["review_due"] = _plus_months(dt.date.fromisoformat(reviewed), REVIEW_MONTHS)
    changes = {k: v for k, v in values.items() if (stored.get(k) or "") != (v or "")}
    if not changes:
        return stored
    store.update_row(PLANS, stored["plan_id"], changes, version=int(version), access=access)
    return {**stored, **changes}


def _clean_plan(snap: Snapshot, form: dict, *, today: dt.date, staff: bool) -> dict:
    """The plan items of ``form`` checked and normalised; every problem at once. Below city staff
    a plan is recorded only with a consent to share it (a plan without one is the city's to keep,
    as the register entry without consent is: PostGIS refuses it the same way)."""
    problems: list[str] = []
    out: dict[str, str] = {}
    status = str(form.get("status") or PlanStatus.IN_PROGRESS.value)
    if status not in {s.value for s in PLAN_STATES}:
        problems.append(f"{PLAN_ITEMS_JA['status']}は「作成中」か「作成済」です")
    out["status"] = status
    means = str(form.get("means") or "")
    if means and means not in EvacuationMeans._value2member_map_:
        problems.append(f"{PLAN_ITEMS_JA['means']}の値が正しくありません")
    out["means"] = means
    consent = str(form.get("consent") or "")
    if consent not in Consent._value2member_map_:
        problems.append(f"{PLAN_ITEMS_JA['consent']}を選んでください")
    elif not staff and consent not in SHAREABLE:
        problems.append("提供に同意のない計画は市職員が記録します（同意を得てから記録してください）")
    out["consent"] = consent
    shelter = str(form.get("shelter_id") or "")
    if shelter and shelter not in set(snap.shelters["shelter_id"].astype(str)):
        problems.append(f"{PLAN_ITEMS_JA['shelter_id']}が見つかりません")
    out["shelter_id"] = shelter
    ids = form.get("supporter_ids") or ""
    ids = ids if isinstance(ids, list | tuple) else split_list(str(ids).replace(",", LIST_SEPARATOR))
    ids = [str(i).strip() for i in ids if str(i).strip()]
    if any(not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", i) for i in ids):
        problems.append(f"{PLAN_ITEMS_JA['supporter_ids']}の指定が正しくありません")
    out["supporter_ids"] = join_list(dict.fromkeys(ids))
    for key in ("needs", "medical", "supporter_note", "emergency_name", "emergency_relation",
                "emergency_phone", "destination_note", "route_note", "belongings", "note"):
        text = str(form.get(key) or "").strip()
        if len(text) > TEXT_MAX:
            problems.append(f"{PLAN_ITEMS_JA[key]}は{TEXT_MAX}文字以内で入力してください")
        out[key] = text
    if out["emergency_phone"] and not re.fullmatch(r"[0-9０-９()（）+\-－ ]{6,20}", out["emergency_phone"]):
        problems.append(f"{PLAN_ITEMS_JA['emergency_phone']}は電話番号（数字とハイフン）で入力してください")
    for key in ("consent_date", "made_on", "reviewed_on", "review_due"):
        text = str(form.get(key) or "").strip()
        if text:
            try:
                day = dt.date.fromisoformat(text)
            except ValueError:
                problems.append(f"{PLAN_ITEMS_JA[key]}は日付（例: 2027-04-01）で入力してください")
                continue
            if key in ("consent_date", "made_on", "reviewed_on") and day > today:
                problems.append(f"{PLAN_ITEMS_JA[key]}が未来の日付です")
            out[key] = day.isoformat()
        elif key != "made_on":
            out[key] = ""
    if problems:
        raise InputError("個別避難計画を保存できません: " + "／".join(problems))
    return out


def _defaults(person: dict, *, today: dt.date | None = None) -> dict:
    """A new plan as the register describes the person (what the form starts from)."""
    today = today or _today()
    return {
        "status": PlanStatus.IN_PROGRESS.value, "needs": needs_text(person),
        "medical": person.get("medical_devices") or "", "supporter_ids": person.get("supporter_ids") or "",
        "supporter_note": "", "emergency_name": "", "emergency_relation": "", "emergency_phone": "",
        "shelter_id": person.get("shelter_id") or "", "destination_note": "", "means": _means_for(person),
        "route_note": "", "belongings": "お薬手帳・常備薬、眼鏡・補聴器、懐中電灯、飲み水",
        "consent": person.get("consent") or Consent.NO_ANSWER.value,
        "consent_date": person.get("consent_date") or "", "made_on": today.isoformat(), "reviewed_on": "",
        "review_due": _plus_months(today, REVIEW_MONTHS), "note": "",
    }


def _person(store: Store, access: Access, code: str, person_id: str) -> dict:
    for row in register(store, access, code):
        if str(row["person_id"]) == str(person_id):
            return row
    raise NotFoundError("この地区の名簿に指定の方はいません（または閲覧の権限がありません）")


def _plan_of(store: Store, access: Access, code: str, person_id: str) -> dict | None:
    mine = [p for p in plans(store, access, district=code) if str(p["person_id"]) == str(person_id)]
    return mine[0] if mine else None


def _may_edit(access: Access, code: str, person: dict) -> bool:
    """Plans are written by those who may see the person in normal times (in disaster mode a
    district member reads unconsented plans, but writes none)."""
    if not access.may_write(PLANS, code):
        return False
    return access.level == Level.CITY_STAFF or person.get("consent") in SHAREABLE


# -- the plans of a district ---------------------------------------------------------------------------

def district_plans(store: Store, access: Access, code: str, *, today: dt.date | None = None) -> dict:
    """The district's plan work for its page: ``counts`` (people by plan status, from the plans),
    ``people`` (every person the viewer may see with their status and plan dates), ``priority``
    (who to make a plan for first, with reasons), ``due`` (plans due for review), ``hazards``
    (which hazard layers the ranking used)."""
    check_personal(access, code)
    snap = current(store)
    check_district(snap, code)
    today = today or _today()
    people = register(store, access, code)
    by_person = {str(p["person_id"]): p for p in plans(store, access, district=code)}
    rows = []
    for person in sorted(people, key=lambda r: (str(r.get("kana") or ""), str(r["person_id"]))):
        plan = by_person.get(str(person["person_id"]))
        status = person.get("plan_status") or PlanStatus.NONE.value
        rows.append({**_public_fields(person), "status": status,
                     "status_ja": PLAN_STATUS_JA.get(PlanStatus(status), status)
                     if status in PlanStatus._value2member_map_ else status,
                     "in_karte": plan is not None, "made_on": (plan or {}).get("made_on") or "",
                     "review_due": _due_of(plan) if plan else "",
                     "can_edit": _may_edit(access, code, person)})
    counts = {s.value: 0 for s in PlanStatus}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    hazards = _hazards(store)
    return {"code": code, "district_name": snap.district_name(code), "people": rows,
            "counts": [(PLAN_STATUS_JA[s], counts.get(s.value, 0)) for s in PlanStatus],
            "priority": priority(store, access, district=code, people=people, hazards=hazards,
                                 planned=set(by_person)),
            "due": due_plans(store, access, district=code, today=today, plan_rows=list(by_person.values()),
                             people=people),
            "hazards": [HAZARD_LAYERS[h][1] for h in hazards]}


def priority(store: Store, access: Access, *, district: str | None = None, people: list[dict] | None = None,
             hazards: dict | None = None, planned: set[str] | None = None,
             limit: int | None = None) -> list[dict]:
    """People without a finished plan, most urgent first, each with ``score``, ``reasons`` and
    ``in_karte`` (whether a plan was begun in karte; ``planned``: the ids of those who have one).

    The order of the Cabinet Office's guidance (内閣府 令和3年5月 取組指針: ハザードの状況、心身の
    状況、独居等の居住実態、社会的孤立), as points that keep it: the hazard at home (8 for each of
    a flood and a landslide area containing the home, where such a layer is in the store; more
    than all the rest together), the person's condition (4: 要介護3以上, 寝たきり・車いす, a medical
    device, 身体1・2級 or 療育A; 2: other care levels and disabilities; 1: needs help walking, an
    intractable disease, an infant), living with elderly family only (2; the register's
    高齢者のみ世帯, which includes living alone), no supporter yet (1). Ties: more reasons first,
    then by kana.
    """
    if people is None:
        if district is None:
            raise ValueError("priority: district or people")
        people = register(store, access, district)
    hazards = _hazards(store) if hazards is None else hazards
    inside = _inside_hazards(people, hazards)
    out = []
    for person in people:
        if person.get("plan_status") == PlanStatus.DONE.value:
            continue
        reasons: list[tuple[int, str]] = []
        for hazard in inside.get(str(person["person_id"]), ()):
            reasons.append((HAZARD_POINTS, f"自宅が{HAZARD_LAYERS[hazard][1]}内"))
        need = _need_points(person)
        if need:
            reasons.append(need)
        if person.get("elderly_only_household") is True:
            reasons.append((2, "高齢者のみの世帯（ひとり暮らしを含む）"))
        if not split_list(person.get("supporter_ids")):
            reasons.append((1, "避難支援者が決まっていない"))
        score = sum(p for p, _ in reasons)
        status = person.get("plan_status") or PlanStatus.NONE.value
        label = PLAN_STATUS_JA[PlanStatus(status)] if status in PlanStatus._value2member_map_ else status
        out.append({**_public_fields(person), "score": score, "reasons": [r for _, r in reasons],
                    "in_karte": str(person["person_id"]) in (planned or ()), "status": status,
                    "status_ja": label})
    out.sort(key=lambda r: (-r["score"], -len(r["reasons"]), str(r.get("kana") or ""), r["person_id"]))
    return out[:limit] if limit else out


def plans_listing(store: Store, access: Access, *, district: str | None = None, due: bool = False,
                  today: dt.date | None = None) -> list[dict]:
    """The plans in karte the viewer may see (of ``district``), for the command line: person,
    district, status, dates, ``overdue``; ``due``: only those due for review
    (:data:`DUE_WITHIN_DAYS`)."""
    check_personal(access, district)
    snap = current(store)
    if district is not None:
        check_district(snap, district)
    today = today or _today()
    people = {str(r["person_id"]): r for r in read_records(store, Layer.REGISTER, access, district=district)}
    horizon = today + dt.timedelta(days=DUE_WITHIN_DAYS)
    out = []
    for plan in plans(store, access, district=district):
        person = people.get(str(plan["person_id"]), {})
        review = _due_of(plan)
        day = dt.date.fromisoformat(review) if review else None
        if due and (day is None or day > horizon):
            continue
        state = plan.get("status")
        out.append({"plan_id": plan["plan_id"], "person_id": str(plan["person_id"]),
                    "name": person.get("name") or "", "district_code": plan.get("district_code"),
                    "status": state, "status_ja": PLAN_STATUS_JA[PlanStatus(state)]
                    if state in PlanStatus._value2member_map_ else (state or ""),
                    "made_on": plan.get("made_on") or "", "reviewed_on": plan.get("reviewed_on") or "",
                    "review_due": review, "overdue": day is not None and day < today,
                    "supporters": len(split_list(plan.get("supporter_ids"))),
                    "shelter_id": plan.get("shelter_id") or ""})
    out.sort(key=lambda r: (str(r["district_code"]), r["review_due"] or "9999", r["person_id"]))
    return out


def _need_points(person: dict) -> tuple[int, str] | None:
    care = str(person.get("care_level") or "")
    grade = str(person.get("disability_grade") or "")
    mobility = person.get("mobility")
    heavy_care = care.startswith("要介護") and care[-1:] in "345"
    if heavy_care or mobility in (Mobility.BEDRIDDEN, Mobility.WHEELCHAIR) \
            or _has(person.get("medical_devices")) or grade in ("1級", "2級", "A"):
        return 4, f"支援の必要が大きい（{needs_text(person)}）"
    if care or _has(person.get("disability_kind")):
        return 2, f"介護・障がいの支援が必要（{needs_text(person)}）"
    if mobility == Mobility.WALK_WITH_HELP or person.get("intractable_disease") is True \
            or person.get("infant") is True:
        return 1, f"配慮が必要（{needs_text(person)}）"
    return None


def due_plans(store: Store, access: Access, *, district: str | None = None, today: dt.date | None = None,
              within_days: int = DUE_WITHIN_DAYS, plan_rows: list[dict] | None = None,
              people: list[dict] | None = None) -> list[dict]:
    """Plans whose review is due within ``within_days`` (overdue ones first): ``due``,
    ``overdue`` and the person's name where the viewer may see it."""
    today = today or _today()
    rows = plan_rows if plan_rows is not None else plans(store, access, district=district)
    names = {}
    for person in people or []:
        names[str(person["person_id"])] = person
    horizon = today + dt.timedelta(days=within_days)
    out = []
    for plan in rows:
        due = _due_of(plan)
        if not due or dt.date.fromisoformat(due) > horizon:
            continue
        person = names.get(str(plan["person_id"]), {})
        out.append({"plan_id": plan["plan_id"], "person_id": plan["person_id"],
                    "district_code": plan.get("district_code"), "name": person.get("name") or "",
                    "kana": person.get("kana") or "", "due": due, "due_ja": _date_ja(due),
                    "overdue": dt.date.fromisoformat(due) < today, "status": plan.get("status")})
    out.sort(key=lambda r: (r["due"], r["person_id"]))
    return out


def _due_of(plan: dict) -> str:
    """When the plan is to be reviewed: its ``review_due``, else a year after it was last reviewed
    or made."""
    if plan.get("review_due"):
        return str(plan["review_due"])
    base = plan.get("reviewed_on") or plan.get("made_on")
    try:
        return _plus_months(dt.date.fromisoformat(str(base)), REVIEW_MONTHS) if base else ""
    except ValueError:
        return ""


def _public_fields(person: dict) -> dict:
    """What a list of people shows of a register row."""
    return {"person_id": str(person["person_id"]), "name": person.get("name") or "",
            "kana": person.get("kana") or "", "address": _short_address(person.get("address")),
            "district_code": person.get("district_code"), "needs": needs_text(person),
            "consent": person.get("consent"), "x": person.get("x"), "y": person.get("y")}


# -- hazards -------------------------------------------------------------------------------------------

def _hazards(store: Store) -> dict[str, gpd.GeoDataFrame]:
    """The hazard-area layers in the store (public polygons, read as the trusted user)."""
    present = set(store.layers())
    out = {}
    for hazard, (layer, _) in HAZARD_LAYERS.items():
        if layer in present:
            frame = store.read(layer)
            if isinstance(frame, gpd.GeoDataFrame) and len(frame):
                out[hazard] = frame.to_crs(6678) if frame.crs and frame.crs.to_epsg() != 6678 else frame
    return out


def _inside_hazards(people: list[dict], hazards: dict[str, gpd.GeoDataFrame]) -> dict[str, list[str]]:
    """person_id -> the hazards whose areas contain the person's home point."""
    located = [p for p in people if p.get("x") is not None and p.get("y") is not None]
    if not hazards or not located:
        return {}
    points = shapely.points([p["x"] for p in located], [p["y"] for p in located])
    out: dict[str, list[str]] = {}
    for hazard, frame in hazards.items():
        geoms = frame.geometry.to_numpy()
        tree = shapely.STRtree(geoms)
        hits, _ = tree.query(points, predicate="intersects")
        for i in sorted(set(hits.tolist())):
            out.setdefault(str(located[i]["person_id"]), []).append(hazard)
    return out


def import_hazard(store: Store, hazard: str, frame: gpd.GeoDataFrame) -> int:
    """Put hazard-area polygons (flood or landslide) into the store as its layer, whole, in
    EPSG:6678 (the trusted pipeline writes it, like any import); return the polygon count."""
    if hazard not in HAZARD_LAYERS:
        raise InputError(f"ハザードの種類は {' / '.join(HAZARD_LAYERS)} です（指定: {hazard}）")
    if not isinstance(frame, gpd.GeoDataFrame) or frame.crs is None:
        raise InputError("ハザード区域は座標参照系のあるポリゴンのファイルで指定してください")
    polys = frame[frame.geometry.notna() & frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if not len(polys):
        raise InputError("ハザード区域のファイルにポリゴンがありません")
    out = gpd.GeoDataFrame({"hazard": [hazard] * len(polys)},
                           geometry=shapely.make_valid(polys.to_crs(6678).geometry.to_numpy()), crs=6678)
    out = out[out.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    store.write({HAZARD_LAYERS[hazard][0]: out})
    return len(out)


# -- the route home -> shelter ----------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def _network_at(path: str, mtime: float) -> WalkNetwork:
    return read_walk_network(path)


def walk_network(path: str | Path | None) -> WalkNetwork | None:
    """The walking network file at ``path`` (GraphML or OSM), read once per file version; None
    without one (routes are then straight lines)."""
    if not path:
        return None
    path = Path(path)
    if not path.is_file():
        raise InputError(f"歩行ネットワークのファイルがありません: {path.name}")
    return _network_at(str(path), path.stat().st_mtime)


def route_of(snap: Snapshot, person: dict, shelter_id: str | None, *,
             network: WalkNetwork | None = None) -> dict | None:
    """The walking route from the person's home to the shelter: ``coords`` (EPSG:6678, home first),
    ``metres``, ``along_network`` (False: a straight line, when no network is given or it does
    not connect them), ``shelter`` (name, address, welfare). None without both points."""
    shelter = _shelter(snap, shelter_id)
    if shelter is None or person.get("x") is None or person.get("y") is None:
        return None
    home = np.array([[float(person["x"]), float(person["y"])]])
    goal = np.array([[shelter["x"], shelter["y"]]])
    coords, metres, along = [tuple(home[0]), tuple(goal[0])], float(np.hypot(*(goal[0] - home[0]))), False
    if network is not None:
        path = _network_path(network, home, goal)
        if path is not None:
            coords, metres, along = path[0], path[1], True
    return {"coords": coords, "metres": round(metres), "along_network": along, "shelter": shelter,
            "walk_minutes": max(1, round(metres / 50))}  # 50 m a minute: an elderly walker's pace


def _network_path(network: WalkNetwork, home: np.ndarray, goal: np.ndarray):
    """(coordinates, metres) of the shortest path along ``network`` (straight snaps at both ends),
    or None when the network does not connect the two points."""
    (a,), (da,) = network.snap(home)
    (b,), (db,) = network.snap(goal)
    dist, pred = dijkstra(network.matrix, directed=False, indices=int(a), return_predecessors=True)
    if not np.isfinite(dist[b]):
        return None
    nodes = [int(b)]
    while nodes[-1] != int(a):
        nodes.append(int(pred[nodes[-1]]))
        if nodes[-1] < 0:
            return None
    nodes.reverse()
    coords = [tuple(home[0]), *[tuple(network.xy[n]) for n in nodes], tuple(goal[0])]
    return coords, float(da + dist[b] + db)


def _shelter(snap: Snapshot, shelter_id: str | None) -> dict | None:
    if not shelter_id:
        return None
    hit = snap.shelters[snap.shelters["shelter_id"].astype(str) == str(shelter_id)]
    if not len(hit):
        return None
    row = hit.iloc[0]
    geom = row.geometry
    if geom is None or geom.is_empty:
        return None
    return {"shelter_id": str(shelter_id), "name": str(row.get("name") or ""),
            "address": str(row.get("address") or ""), "welfare": bool(row.get("welfare")),
            "x": float(geom.x), "y": float(geom.y)}


def _shelter_options(snap: Snapshot, person: dict, chosen: str | None) -> list[dict]:
    """Shelters to choose from: the chosen one, the eight nearest, the four nearest welfare ones."""
    shelters = snap.shelters[snap.shelters.geometry.notna()]
    if person.get("x") is None or not len(shelters):
        near = shelters.head(12)
    else:
        d = np.hypot(shelters.geometry.x - float(person["x"]), shelters.geometry.y - float(person["y"]))
        order = np.argsort(d.to_numpy())
        welfare = shelters["welfare"].fillna(False).astype(bool).to_numpy()
        picks = list(order[:8]) + [i for i in order if welfare[i]][:4]
        near = shelters.iloc[list(dict.fromkeys(picks))]
    out = []
    for r in near.itertuples():
        distance = (round(math.hypot(r.geometry.x - float(person["x"]), r.geometry.y - float(person["y"])))
                    if person.get("x") is not None else None)
        out.append({"shelter_id": str(r.shelter_id), "name": str(r.name), "welfare": bool(r.welfare),
                    "metres": distance})
    if chosen and chosen not in {o["shelter_id"] for o in out}:
        found = _shelter(snap, chosen)
        if found:
            out.insert(0, {"shelter_id": chosen, "name": found["name"], "welfare": found["welfare"],
                           "metres": None})
    return out


def _distance(person: dict, coop: dict) -> float:
    if None in (person.get("x"), person.get("y"), coop.get("x"), coop.get("y")):
        return math.inf
    return math.hypot(float(person["x"]) - float(coop["x"]), float(person["y"]) - float(coop["y"]))


# -- printing --------------------------------------------------------------------------------------

def plan_prints(store: Store, access: Access, code: str, *, person_id: str | None = None,
                network: WalkNetwork | None = None, now: dt.datetime | None = None) -> list[PlanPrint]:
    """The plans to print (one person, or every plan of the district the viewer may see), as
    :class:`karte.render.plan_pdf.PlanPrint`, each with its map (small-area outlines around the
    route, the route, home and shelter)."""
    check_personal(access, code)
    snap = current(store)
    check_district(snap, code)
    people = {str(r["person_id"]): r for r in register(store, access, code)}
    rows = plans(store, access, district=code)
    if person_id is not None:
        rows = [p for p in rows if str(p["person_id"]) == str(person_id)]
        if not rows:
            raise NotFoundError("この方の個別避難計画はありません（または権限がありません）")
    coops = supporters(store, access) if rows else {}
    printed_at = (now or dt.datetime.now(dt.UTC)).astimezone(JST)
    out = []
    for plan in sorted(rows, key=lambda p: (str(people.get(str(p["person_id"]), {}).get("kana") or ""),
                                              str(p["person_id"]))):
        person = people.get(str(plan["person_id"]))
        if person is None:  # the plan of someone no longer on the register the viewer sees
            continue
        route = route_of(snap, person, plan.get("shelter_id"), network=network)
        helpers = [coops.get(s, {"name": s, "phone": "", "role_ja": ""})
                   for s in split_list(plan.get("supporter_ids"))]
        out.append(PlanPrint(
            person_id=str(plan["person_id"]), name=person.get("name") or "", kana=person.get("kana") or "",
            address=person.get("address") or "", birth=_date_ja(person.get("birth_date")),
            district=f"{snap.district_name(code)}（{code}）",
            status_ja=PLAN_STATUS_JA.get(PlanStatus(plan.get("status")), "") if plan.get("status")
            in PlanStatus._value2member_map_ else "",
            register_needs=needs_text(person), items=_print_items(plan, route),
            supporters=[(h.get("name") or "", h.get("role_ja") or "", h.get("phone") or "") for h in helpers],
            map=_plan_map(snap, person, route), printed_at=printed_at, printed_by=access.user,
            route_note=("歩行ネットワークに沿った経路" if route and route["along_network"] else
                        "直線（歩行ネットワークなし）") if route else "避難先または自宅の位置がありません"))
    return out


def _print_items(plan: dict, route: dict | None) -> list[tuple[str, str]]:
    shelter = route["shelter"] if route else None
    means = plan.get("means")
    relation = f"（{plan['emergency_relation']}）" if plan.get("emergency_relation") else ""
    name = f"{plan.get('emergency_name') or ''}{relation}"
    contact = "　".join(x for x in (name, plan.get("emergency_phone")) if x)
    if shelter:
        place = f"{shelter['name']}{'（福祉避難所）' if shelter['welfare'] else ''}　{shelter['address']}"
    else:
        place = plan.get("shelter_id") or "未定"
    way = f"約 {route['metres']:,} m・徒歩 約{route['walk_minutes']}分　" if route else ""
    due = _due_of(plan)
    dates = [f"作成 {_date_ja(plan['made_on'])}" if plan.get("made_on") else "",
             f"見直し {_date_ja(plan['reviewed_on'])}" if plan.get("reviewed_on") else "",
             f"次回 {_date_ja(due)}" if due else ""]
    return [
        ("配慮が必要なこと", plan.get("needs") or ""),
        ("医療・服薬・医療機器", plan.get("medical") or ""),
        ("支援者の役割分担・連絡方法", plan.get("supporter_note") or ""),
        ("緊急連絡先", contact),
        ("避難先", place),
        ("避難先の補足", plan.get("destination_note") or ""),
        ("避難の方法", EvacuationMeans(means).ja if means in EvacuationMeans._value2member_map_ else ""),
        ("経路", way + (plan.get("route_note") or "")),
        ("持ち出す物", plan.get("belongings") or ""),
        ("計画の提供への同意", CONSENT_JA[Consent(plan["consent"])]
         if plan.get("consent") in Consent._value2member_map_ else ""),
        ("作成日・見直し", "　".join(d for d in dates if d)),
        ("備考", plan.get("note") or ""),
    ]


def _plan_map(snap: Snapshot, person: dict, route: dict | None) -> PlanMap | None:
    if route is None:
        return None
    xs, ys = zip(*route["coords"], strict=True)
    pad = max(150.0, 0.15 * max(max(xs) - min(xs), max(ys) - min(ys)))
    box = [min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad]
    w, h = box[2] - box[0], box[3] - box[1]
    if w / h < MAP_ASPECT:  # widen (or heighten) around the centre to the map's shape
        grow = (h * MAP_ASPECT - w) / 2
        box[0], box[2] = box[0] - grow, box[2] + grow
    else:
        grow = (w / MAP_ASPECT - h) / 2
        box[1], box[3] = box[1] - grow, box[3] + grow
    box = tuple(box)
    area = shapely.box(*box)
    small = snap.small_areas
    hits = small[small.geometry.intersects(area)]
    outlines = [shapely.intersection(g, area) for g in hits.geometry]
    labels = [(str(n), shapely.point_on_surface(g)) for n, g in zip(hits["name"], outlines, strict=True)
              if g is not None and not g.is_empty and g.area > 0.02 * area.area]
    return PlanMap(extent=box, outlines=[g for g in outlines if not g.is_empty],
                   labels=[(n, (p.x, p.y)) for n, p in labels], route=list(route["coords"]),
                   home=route["coords"][0], shelter=route["coords"][-1],
                   shelter_name=route["shelter"]["name"],
                   metres=route["metres"])


# ===================================================================================================
# drills
# ===================================================================================================

def start_drill(store: Store, access: Access, districts: Sequence[str], *, name: str,
                kind: str = DrillKind.SAFETY_CHECK.value, started_at: dt.datetime | None = None) -> dict:
    """Start a drill of ``districts`` as ``access`` (city staff or a coordinator); the stored row."""
    if access.level not in LEADERS:
        raise AccessDenied("訓練を始められるのは市職員とコーディネーターです")
    snap = current(store)
    codes = [str(d).strip() for d in districts if str(d).strip()]
    problems = []
    if not codes:
        problems.append("訓練する地区を選んでください")
    unknown = [c for c in codes if c not in snap.kartes]
    if unknown:
        raise NotFoundError(f"地区 {', '.join(unknown)} はありません")
    name = str(name or "").strip()
    if not name or len(name) > 100:
        problems.append("訓練の名前を100文字以内で入力してください")
    if kind not in DrillKind._value2member_map_:
        problems.append("訓練の種類は 安否確認訓練 か 避難誘導訓練 です")
    if problems:
        raise InputError("訓練を始められません: " + "／".join(problems))
    at = _aware(started_at) or dt.datetime.now(dt.UTC)
    codes = list(dict.fromkeys(codes))
    row = {"district_code": codes[0], "districts": join_list(codes), "name": name, "kind": kind,
           "started_at": _iso(at), "ended_at": "", "started_by": access.user, "ended_by": "", "note": ""}
    return store.append_rows(DRILLS, [row], access=access)[0]


def local_time(text: str | None) -> dt.datetime | None:
    """A time as people type it (``2027-06-07T10:00`` or ``2027-06-07 10:00``, JST unless it
    names a zone) as an aware datetime; None for nothing. :class:`InputError` when unreadable."""
    text = str(text or "").strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError as exc:
        raise InputError("開始日時は 2027-06-07T10:00 の形で入力してください") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=JST)


def end_drill(store: Store, access: Access, drill_id: str, *, now: dt.datetime | None = None) -> dict:
    """End drill ``drill_id`` (city staff or a coordinator): ``ended_at`` and ``ended_by``."""
    if access.level not in LEADERS:
        raise AccessDenied("訓練を終えられるのは市職員とコーディネーターです")
    row = store.read_row(DRILLS, drill_id, access=access)
    if row.get("ended_at"):
        return row
    changes = {"ended_at": _iso(_aware(now) or dt.datetime.now(dt.UTC)), "ended_by": access.user}
    store.update_row(DRILLS, drill_id, changes, version=int(row["version"]), access=access)
    return {**row, **changes}


def drills_for(store: Store, access: Access, *, district: str | None = None,
               snap: Snapshot | None = None) -> list[dict]:
    """The drills the viewer may see, newest first (a district member: those of their district;
    ``district``: those of that district), each with ``codes``, ``active``, ``kind_ja`` and times
    for people."""
    if not access.sees_personal:
        return []
    out = []
    for row in _rows(store, DRILLS, access, snap=snap):
        codes = split_list(row.get("districts")) or [row.get("district_code")]
        if access.level == Level.DISTRICT_MEMBER and access.district not in codes:
            continue
        if district is not None and district not in codes:
            continue
        kind = row.get("kind")
        out.append({**row, "codes": codes, "active": not row.get("ended_at"),
                    "kind_ja": DrillKind(kind).ja if kind in DrillKind._value2member_map_ else (kind or ""),
                    "started_ja": jst_text(row.get("started_at")), "ended_ja": jst_text(row.get("ended_at"))})
    out.sort(key=lambda r: (str(r.get("started_at") or ""), str(r["drill_id"])), reverse=True)
    return out


def drill_of(store: Store, access: Access, drill_id: str, *, district: str | None = None,
             snap: Snapshot | None = None) -> dict:
    """One drill the viewer may see (of ``district``), else :class:`NotFoundError`."""
    check_personal(access, district)
    for row in drills_for(store, access, snap=snap):
        if row["drill_id"] == drill_id:
            if district is not None and district not in row["codes"]:
                break
            return row
    raise NotFoundError("指定の訓練はありません（または閲覧の権限がありません）")


def roll(store: Store, access: Access, drill: dict, district: str) -> list[dict]:
    """The people of ``district`` the drill goes to, as the viewer may see them: the register rows
    supporters hold (shareable; in disaster mode every row of the district), by kana, each with
    ``supporters`` (names) and ``supporter_ids``."""
    if not access.may_see_district_rows(district):
        return []
    people = register(store, access, district)
    lifted = with_modes(current(store), access).in_disaster(district)
    coops = supporters(store, access)
    out = []
    for p in people:
        if not (lifted or p.get("consent") in SHAREABLE):
            continue
        ids = split_list(p.get("supporter_ids"))
        out.append({**_public_fields(p), "supporter_ids": ids,
                    "supporters": [coops[i]["name"] if i in coops else "（地区外の支援者）" for i in ids]})
    out.sort(key=lambda r: (str(r["kana"]), r["person_id"]))
    return out


def _roll_ids(access: Access, district: str, snap: Snapshot) -> set[str]:
    """The ids of the drill's roll in ``district`` for ``access`` (what a mark is checked against),
    from the build snapshot: no personal read per mark, and nothing shown: a mark of anyone else is
    refused with one message whether the person exists or not."""
    if not access.may_see_district_rows(district):
        return set()
    reg = snap.analysis_inputs()["register"]
    here = (reg["district_code"] == district).to_numpy().copy()
    if MUNICIPALITY in reg.columns:
        here &= (reg[MUNICIPALITY].astype(object) == access.municipality).to_numpy()
    if not with_modes(snap, access).in_disaster(district):
        here &= reg["consent"].isin(SHAREABLE).to_numpy()
    return set(reg.loc[here, "person_id"].astype(str))


def marks_of(store: Store, access: Access, drill_id: str, district: str, *,
             snap: Snapshot | None = None) -> list[dict]:
    """The drill's marks in ``district`` the viewer may see (logged), oldest first, one per
    device id (:func:`karte.domain.drills.unique_marks`)."""
    rows = [m for m in _rows(store, MARKS, access, district=district, snap=snap)
            if m.get("drill_id") == drill_id]
    rows.sort(key=lambda m: (str(m.get("received_at") or ""), str(m["mark_id"])))
    rows = unique_marks(rows)
    rows.sort(key=lambda m: (str(m.get("marked_at") or ""), str(m.get("received_at") or ""),
                             str(m["mark_id"])))
    return rows


def latest(marks: Iterable[dict]) -> dict[str, dict]:
    """person_id -> their latest mark (marks come oldest first)."""
    out: dict[str, dict] = {}
    for m in marks:
        out[str(m["person_id"])] = m
    return out


def record_marks(store: Store, access: Access, drill_id: str, marks: Sequence[dict], *,
                 now: dt.datetime | None = None) -> dict:
    """Store the marks a device sends: each ``{"id": <uuid the device made>, "person_id",
    "district", "status", "marked_at": <ISO time on the device>}``. Each is stored once whatever
    the number of times it is sent: a mark whose device id is stored already is not written again
    (look and write under a lock per stripe of device ids in this process; marks written twice by
    two servers at the same instant are counted once, :func:`marks_of`). Returns ``received`` (stored now),
    ``duplicates`` (stored before), ``rejected`` (``{"id", "reason"}``: the device drops them and
    says why)."""
    snap = current(store)
    drill = drill_of(store, access, drill_id, snap=snap)
    now = _aware(now) or dt.datetime.now(dt.UTC)
    started = _instant(drill["started_at"])
    ended = _instant(drill.get("ended_at"))
    visible: dict[str, set[str]] = {}
    rows, rejected = [], []
    for mark in marks[:500]:
        raw = str(mark.get("id") or "")
        mid = str(uuid.UUID(raw)) if DEVICE_ID.fullmatch(raw) else raw
        person = str(mark.get("person_id") or "")
        district = str(mark.get("district") or mark.get("district_code") or "")
        state = str(mark.get("status") or "")
        when = _instant(mark.get("marked_at"))
        reason = _mark_problem(access, drill, mid=raw, district=district, state=state, when=when, now=now,
                               started=started, ended=ended)
        if reason is None:
            if district not in visible:
                visible[district] = _roll_ids(access, district, snap)
            if person not in visible[district]:
                reason = "この方は訓練の名簿にいません（または閲覧の権限がありません）"
        if reason is not None:
            rejected.append({"id": raw, "reason": reason})
            continue
        rows.append({"district_code": district, "drill_id": drill_id, "person_id": person, "status": state,
                     "marked_at": _iso(when), "received_at": _iso(now), "marked_by": access.user,
                     "client_id": mid, "note": str(mark.get("note") or "")[:200]})
    received, duplicates = [], []
    if rows:
        with contextlib.ExitStack() as held:  # the stripes of these device ids: look, then write
            for stripe in sorted({_stripe(r["client_id"]) for r in rows}):
                held.enter_context(_lock(store, f"marks:{drill_id}:{stripe}"))
            stored = {m.get("client_id") for d in {r["district_code"] for r in rows}
                      for m in marks_of(store, access, drill_id, d, snap=snap)}
            new, seen = [], set()
            for row in rows:
                if row["client_id"] in stored or row["client_id"] in seen:
                    duplicates.append(row["client_id"])
                else:
                    seen.add(row["client_id"])
                    new.append(row)
            if new:
                store.append_rows(MARKS, new, access=access)
            received = [r["client_id"] for r in new]
    return {"received": received, "duplicates": duplicates, "rejected": rejected}


#: Marks with different device ids are written in parallel; the same id (a mark sent again while
#: its first send is still being written) waits for the first: one lock per stripe of ids.
STRIPES = 64


def _stripe(client_id: str) -> int:
    return uuid.UUID(client_id).int % STRIPES if DEVICE_ID.fullmatch(client_id) else 0


def _mark_problem(access: Access, drill: dict, *, mid: str, district: str, state: str, when, now, started,
                  ended) -> str | None:
    """Why a mark cannot be taken (None: it can)."""
    if not DEVICE_ID.fullmatch(mid):
        return "記録の番号が正しくありません"
    if state not in MarkStatus._value2member_map_:
        return "状態の値が正しくありません"
    if district not in drill["codes"]:
        return "この訓練の地区ではありません"
    if not access.may_write(MARKS, district):
        return "この地区の記録をつける権限がありません"
    if when is None or when > now + CLOCK_SLACK or (started is not None and when < started - CLOCK_SLACK):
        return "記録した時刻が訓練の時間外です（端末の時計を確かめてください）"
    if ended is not None and when > ended + CLOCK_SLACK:
        return "訓練の終了後に記録されています"
    if ended is not None and now > ended + LATE_MARKS:
        return "訓練の終了から時間が経っているため受け付けられません"
    return None


_PRESENT: set[tuple[str, str]] = set()


def _present(store: Store, layer: str) -> bool:
    """Is record layer ``layer`` in the store? Asked of the store until it is (a record layer, once
    written, stays), then remembered: every page and every mark would otherwise ask."""
    if (store.location, layer) in _PRESENT:
        return True
    if layer in store.layers():
        _PRESENT.add((store.location, layer))
        return True
    return False


def _rows(store: Store, layer: str, access: Access, *, district: str | None = None,
          snap: Snapshot | None = None) -> list[dict]:
    """The viewer's rows of record layer ``layer`` (logged; none before the layer's first row)."""
    if not _present(store, layer):
        return []
    try:
        return read_records(store, layer, access, district=district, snap=snap)
    except StoreError:
        _PRESENT.discard((store.location, layer))  # a store emptied and built again: ask again
        if layer in store.layers():
            raise
        return []


def _trusted(store: Store, layer: str) -> pd.DataFrame:
    """The whole record layer as the store's trusted user reads it (counts only; empty before its
    first row)."""
    if not _present(store, layer):
        return pd.DataFrame()
    try:
        return store.read(layer)
    except StoreError:
        _PRESENT.discard((store.location, layer))
        if layer in store.layers():
            raise
        return pd.DataFrame()


_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(store: Store, name: str) -> threading.Lock:
    """One lock per store and ``name`` in this process (look-then-write steps)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((store.location, name), threading.Lock())


def status(store: Store, access: Access, drill_id: str, *, district: str,
           now: dt.datetime | None = None) -> dict:
    """The live dashboard of one district of a drill, as the viewer may see it: ``counts`` (by
    status, people nobody has marked counted as 未確認), ``total``, ``confirmed``, ``share``,
    ``elapsed_s``, ``not_reached`` (people not confirmed yet: name, address, supporters, last
    status), ``points`` (lon/lat and status of each located person), ``marks`` (how many)."""
    drill = drill_of(store, access, drill_id, district=district)
    now = _aware(now) or dt.datetime.now(dt.UTC)
    people = roll(store, access, drill, district)
    marks = marks_of(store, access, drill_id, district)
    last = latest(marks)
    counts = {s.value: 0 for s in MarkStatus}
    not_reached, points = [], []
    for p in people:
        mark = last.get(p["person_id"])
        state = mark["status"] if mark else MarkStatus.UNCONFIRMED.value
        counts[state] += 1
        if not MarkStatus(state).confirmed:
            not_reached.append({"person_id": p["person_id"], "name": p["name"], "address": p["address"],
                                "supporters": p["supporters"], "status": state,
                                "status_ja": MARK_JA[MarkStatus(state)] if mark else "まだ記録なし"})
        if p.get("x") is not None:
            lon, lat = _TO_LONLAT.transform(float(p["x"]), float(p["y"]))
            points.append({"person_id": p["person_id"], "lon": round(lon, 6), "lat": round(lat, 6),
                           "s": state, "name": p["name"], "marked": mark is not None})
    started = _instant(drill["started_at"])
    until = _instant(drill.get("ended_at")) or now
    confirmed = sum(counts[s.value] for s in MarkStatus if s.confirmed)
    return {"drill_id": drill_id, "name": drill["name"], "district": district, "kind_ja": drill["kind_ja"],
            "active": drill["active"], "started_ja": drill["started_ja"],
            "elapsed_s": max(0, int((until - started).total_seconds())) if started else 0,
            "total": len(people), "confirmed": confirmed,
            "share": round(confirmed / len(people), 4) if people else None,
            "counts": [{"key": s.value, "label": MARK_JA[s], "count": counts[s.value],
                        "colour": MARK_COLOUR[s]} for s in MarkStatus],
            "unmarked": sum(1 for p in people if p["person_id"] not in last),
            "not_reached": not_reached, "points": points, "marks": len(marks)}


def mark_page(store: Store, access: Access, drill_id: str, district: str) -> dict:
    """The marking page of a phone: the drill, the people grouped by supporter (those without one
    last) with each one's latest status, and the statuses to choose from."""
    drill = drill_of(store, access, drill_id, district=district)
    people = roll(store, access, drill, district)
    last = latest(marks_of(store, access, drill_id, district))
    groups: dict[str, list[dict]] = {}
    for p in people:
        mark = last.get(p["person_id"])
        item = {**p, "status": mark["status"] if mark else "",
                "status_ja": MARK_JA[MarkStatus(mark["status"])] if mark else "未記録"}
        label = "・".join(p["supporters"]) if p["supporters"] else "支援者が決まっていない方"
        groups.setdefault(label, []).append(item)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0] == "支援者が決まっていない方", kv[0]))
    return {"drill": drill, "district": district, "groups": ordered, "total": len(people),
            "statuses": [{"key": s.value, "label": MARK_JA[s], "colour": MARK_COLOUR[s]} for s in MarkStatus],
            "can_mark": access.may_write(MARKS, district)}


# -- the report ---------------------------------------------------------------------------------------

def report(store: Store, access: Access, drill_id: str, *, now: dt.datetime | None = None) -> DrillReport:
    """The drill report of every district of the drill the viewer may see (logged reads): per
    district the people, how many were confirmed and when half and all of them were, who was
    not reached, the supporters who could not reach theirs, the lessons entered."""
    drill = drill_of(store, access, drill_id)
    now = _aware(now) or dt.datetime.now(dt.UTC)
    started = _instant(drill["started_at"])
    coops = supporters(store, access)
    lessons = [r for r in _rows(store, LESSONS, access) if r.get("drill_id") == drill_id]
    districts = []
    participants: set[str] = set()
    snap = current(store)
    for code in drill["codes"]:
        if not access.may_see_district_rows(code):
            continue
        people = roll(store, access, drill, code)
        marks = marks_of(store, access, drill_id, code)
        participants |= {str(m["marked_by"]) for m in marks}
        last = latest(marks)
        first_confirmed: dict[str, dt.datetime] = {}
        for m in marks:
            if MarkStatus(m["status"]).confirmed and m["person_id"] not in first_confirmed:
                first_confirmed[m["person_id"]] = _instant(m["marked_at"])
        times = sorted(t for pid, t in first_confirmed.items()
                       if pid in last and MarkStatus(last[pid]["status"]).confirmed and t is not None)
        total = len(people)
        counts = {s.value: 0 for s in MarkStatus}
        rows = []
        for p in people:
            mark = last.get(p["person_id"])
            state = mark["status"] if mark else MarkStatus.UNCONFIRMED.value
            counts[state] += 1
            at = first_confirmed.get(p["person_id"]) if mark and MarkStatus(state).confirmed else None
            rows.append({"person_id": p["person_id"], "name": p["name"], "address": p["address"],
                         "supporters": "・".join(p["supporters"]), "status": state,
                         "status_ja": MARK_JA[MarkStatus(state)] if mark else "記録なし",
                         "confirmed_at": jst_text(_iso(at)) if at else "",
                         "minutes": round((at - started).total_seconds() / 60, 1) if at and started else None,
                         "marked_by": mark["marked_by"] if mark else ""})
        half = _time_to(times, math.ceil(total / 2), started) if total else None
        whole = _time_to(times, total, started) if total else None
        unreached_by: dict[str, list[str]] = {}
        for p in people:
            mark = last.get(p["person_id"])
            if mark and MarkStatus(mark["status"]).confirmed:
                continue
            for sid in p["supporter_ids"]:
                unreached_by.setdefault(sid, []).append(p["name"])
        districts.append(DistrictReport(
            code=code, name=snap.district_name(code), total=total, confirmed=len(times),
            counts=[(MARK_JA[s], counts[s.value]) for s in MarkStatus],
            minutes_to_half=half, minutes_to_all=whole,
            not_reached=[(r["name"], r["address"], r["supporters"], r["status_ja"]) for r in rows
                         if not MarkStatus(r["status"]).confirmed or r["status_ja"] == "記録なし"],
            supporters_short=[(coops.get(sid, {}).get("name") or "（地区外の支援者）",
                               coops.get(sid, {}).get("role_ja") or "", len(names), "・".join(names))
                              for sid, names in sorted(unreached_by.items(),
                                                       key=lambda kv: (-len(kv[1]), kv[0]))],
            lessons=[(jst_text(r.get("entered_at")), r.get("entered_by") or "", r.get("text") or "")
                     for r in lessons if r.get("district_code") == code],
            people=rows, marks=len(marks)))
    if not districts:
        raise AccessDenied("この訓練の地区の個人情報を見る権限がありません")
    return DrillReport(drill_id=drill_id, name=drill["name"], kind_ja=drill["kind_ja"],
                       started=drill["started_ja"], ended=drill["ended_ja"] or "（実施中）",
                       printed_at=now.astimezone(JST), printed_by=access.user, districts=districts,
                       participants=len(participants))


def _time_to(times: list[dt.datetime], k: int, started: dt.datetime | None) -> float | None:
    """Minutes from the start until the ``k``-th person was confirmed (None: not reached)."""
    if started is None or k <= 0 or len(times) < k:
        return None
    return round((times[k - 1] - started).total_seconds() / 60, 1)


REPORT_CSV_HEADER = ("地区", "訓練", "氏名", "住所", "支援者", "最終の状態", "確認時刻", "開始からの分",
                     "記録者")


def report_csv(rep: DrillReport) -> bytes:
    """The report's people as CSV (UTF-8 with BOM, opens in Excel): one row per person."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(REPORT_CSV_HEADER)
    for d in rep.districts:
        for r in d.people:
            writer.writerow([f"{d.name}（{d.code}）", rep.name, _cell(r["name"]), _cell(r["address"]),
                             _cell(r["supporters"]), r["status_ja"], r["confirmed_at"],
                             "" if r["minutes"] is None else r["minutes"], _cell(r["marked_by"])])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _cell(value) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def add_lesson(store: Store, access: Access, drill_id: str, district: str, text: str, *,
               now: dt.datetime | None = None) -> dict:
    """Enter a lesson of the drill for ``district`` (what went well, what to change)."""
    drill_of(store, access, drill_id, district=district)
    text = str(text or "").strip()
    if not text or len(text) > 2000:
        raise InputError("教訓は1〜2000文字で入力してください")
    row = {"district_code": district, "drill_id": drill_id, "text": text, "entered_by": access.user,
           "entered_at": _iso(_aware(now) or dt.datetime.now(dt.UTC))}
    return store.append_rows(LESSONS, [row], access=access)[0]


# -- the copies' paper drill sheets (karte.services.copies.DrillRecords) -----------------------------

def open_drills(store: Store, access: Access, district: str) -> list[dict]:
    """Drills of ``district`` that take marks now (not ended, or ended within :data:`LATE_MARKS`)."""
    now = dt.datetime.now(dt.UTC)
    out = []
    for d in drills_for(store, access, district=district):
        ended = _instant(d.get("ended_at"))
        if ended is None or now <= ended + LATE_MARKS:
            out.append({"drill_id": d["drill_id"], "name": d["name"], "started_at": d["started_at"]})
    return out


def record_paper_marks(store: Store, access: Access, drill_id: str, marks: Sequence) -> int:
    """Write ticks of a paper drill sheet (:class:`karte.services.copies.PaperMark`) into the drill:
    確認 as 無事を確認, 到着 as 避難済み, at the time they were ticked. The same tick entered twice
    is stored once (its id is made from the copy, the person and the column). Returns how many
    were written now."""
    sent = []
    for m in marks:
        status = PAPER_TICKS.get(str(m.tick))
        if status is None:
            raise InputError(f"紙の記入の種類が正しくありません: {m.tick}")
        sent.append({"id": str(uuid.uuid5(_NAMESPACE, f"{m.copy_id}|{m.person_id}|{m.tick}")),
                     "person_id": m.person_id, "district": m.district_code, "status": status.value,
                     "marked_at": m.marked_at, "note": f"紙の訓練シート {m.copy_id} から入力"})
    result = record_marks(store, access, drill_id, sent)
    if result["rejected"]:
        reasons = sorted({r["reason"] for r in result["rejected"]})
        raise InputError("記入を登録できません: " + "／".join(reasons))
    return len(result["received"])


# ===================================================================================================
# public counts and the indicators
# ===================================================================================================

def public_summary(store: Store, *, max_small: int, year: int | None = None) -> dict:
    """Counts only, for everyone: drills held in fiscal ``year`` (default: this one) per district,
    and the share of people confirmed; a count of people from 1 to ``max_small`` is 秘匿 and the
    share beside it hidden (read as the store's trusted user; no person leaves this function)."""
    year = year if year is not None else fiscal_year(_today())
    snap = current(store)
    drills = _year_drills(_trusted(store, DRILLS), year)
    if not len(drills):
        return {"year": year, "year_label": fiscal_year_label(year), "districts": [], "drills": 0}
    marks = _trusted(store, MARKS)
    rows = []
    per_district: dict[str, dict] = {}
    reg = snap.analysis_inputs()["register"]
    for d in drills.itertuples():
        codes = split_list(d.districts) or [d.district_code]
        last = _latest_frame(marks, d.drill_id)
        for code in codes:
            roll_size = int(((reg["district_code"] == code) & reg["consent"].isin(SHAREABLE)).sum())
            mine = last[last["district_code"] == code] if len(last) else last
            confirmed = int(mine["status"].isin(CONFIRMED_VALUES).sum()) if len(mine) else 0
            entry = per_district.setdefault(code, {"held": 0, "persons": 0, "confirmed": 0})
            entry["held"] += 1
            entry["persons"] += roll_size
            entry["confirmed"] += min(confirmed, roll_size)
    for code, e in sorted(per_district.items()):
        missing = e["persons"] - e["confirmed"]
        hide = any(1 <= n <= max_small for n in (e["persons"], e["confirmed"], missing))
        rows.append({"code": code, "name": snap.district_name(code) if code in snap.kartes else code,
                     "held": e["held"], "persons": small(e["persons"], max_small),
                     "confirmed": small(e["confirmed"], max_small),
                     "share": None if hide or not e["persons"] else round(e["confirmed"] / e["persons"], 3)})
    return {"year": year, "year_label": fiscal_year_label(year), "districts": rows, "drills": len(drills)}


def fiscal_year_counts(store: Store, fiscal_year: int, *, municipality: str | None,
                       district: str | None = None) -> dict[str, int]:
    """The activity indicators of fiscal year ``fiscal_year`` (April–March, JST) in
    ``municipality`` (None: every municipality), of ``district`` or the whole municipality
    (:func:`karte.indicators.drill_counts`: drills held, supporters who marked, persons confirmed
    and not reached, participants). Counts only, from the store's trusted read; the activity
    indicators count the same way."""
    frames = []
    for layer in (DRILLS, MARKS, Layer.REGISTER):
        frame = _trusted(store, layer) if layer != Layer.REGISTER else store.read(Layer.REGISTER)
        if municipality is not None and len(frame) and MUNICIPALITY in frame.columns:
            frame = frame[frame[MUNICIPALITY].astype(object) == municipality]
        frames.append(pd.DataFrame(frame))
    return drill_counts(*frames, fiscal_year, district)


def _year_drills(drills: pd.DataFrame, year: int) -> pd.DataFrame:
    if not len(drills):
        return drills
    keep = []
    for value in drills["started_at"]:
        moment = _instant(value)
        keep.append(moment is not None and fiscal_year(moment.astimezone(JST).date()) == year)
    return drills[np.asarray(keep, dtype=bool)]


def _latest_frame(marks: pd.DataFrame, drill_id: str) -> pd.DataFrame:
    """The latest mark of each person in drill ``drill_id`` (a frame)."""
    if not len(marks):
        return marks
    mine = marks[marks["drill_id"] == drill_id]
    if not len(mine):
        return mine
    ordered = mine.sort_values(["marked_at", "received_at", "mark_id"])
    return ordered.drop_duplicates(["district_code", "person_id"], keep="last")


# -- pages ---------------------------------------------------------------------------------------------

def drills_page(store: Store, access: Access, *, max_small: int) -> dict:
    """The drills page: the viewer's drills, what they may start, the districts (for the forms)
    and, for everyone, the public counts; city staff also get the disaster-mode periods."""
    snap = current(store)
    page = {"public": public_summary(store, max_small=max_small),
            "districts": [(c, snap.district_name(c)) for c in snap.codes],
            "kinds": [(k.value, k.ja) for k in DrillKind],
            "can_start": access.level in LEADERS, "drills": [], "modes": [],
            "can_switch": access.level == Level.CITY_STAFF}
    if access.sees_personal:
        page["drills"] = drills_for(store, access)
    if access.level in LEADERS:
        page["modes"] = disaster.modes(store, access)[:50]
    return page


def dashboard_page(store: Store, access: Access, drill_id: str, district: str) -> dict:
    """The dashboard page: the drill, the district's outline (public GeoJSON), the first status
    (the page then asks :func:`status` every few seconds), the statuses' labels and colours."""
    drill = drill_of(store, access, drill_id, district=district)
    snap = current(store)
    outline = snap.districts[snap.districts["district_code"] == district][["district_code", "geometry"]]
    return {"drill": drill, "district": district, "district_name": snap.district_name(district),
            "outline": to_web_geojson(gpd.GeoDataFrame(outline, geometry="geometry",
                                                       crs=snap.districts.crs), tolerance_m=5.0, decimals=5),
            "status": status(store, access, drill_id, district=district),
            "statuses": [{"key": s.value, "label": MARK_JA[s], "colour": MARK_COLOUR[s]} for s in MarkStatus],
            "lessons": [r for r in _rows(store, LESSONS, access, district=district)
                        if r.get("drill_id") == drill_id],
            "can_end": access.level in LEADERS and drill["active"],
            "can_mark": access.may_write(MARKS, district)}


# -- small helpers -------------------------------------------------------------------------------------

def _today() -> dt.date:
    return dt.datetime.now(JST).date()


def _plus_months(day: dt.date, months: int) -> str:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last)).isoformat()
        except ValueError:
            continue
    return day.isoformat()


def _date_ja(value) -> str:
    """``2027-04-01`` as ``2027年4月1日（令和9年）``."""
    if not value:
        return ""
    try:
        day = dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    era = f"令和{day.year - 2018}年" if day.year >= 2019 else (f"平成{day.year - 1988}年" if day.year >= 1989
                                                             else f"昭和{day.year - 1925}年")
    return f"{day.year}年{day.month}月{day.day}日（{era}）"


def _short_address(address) -> str:
    text = str(address or "")
    for prefix in ("青森県青森市",):
        text = text.removeprefix(prefix)
    return text


def _has(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value) != ""


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _instant(value) -> dt.datetime | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")

