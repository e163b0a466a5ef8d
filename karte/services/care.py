"""Households of concern and district safety-net meetings, as a viewer may see and record them.

Oshu's chain (気づき → つなぐ → 共有 → 支援, seed plan 000) on the record layers of
:mod:`karte.domain.care`: a household of concern is noticed and recorded (a **case**), connected
to someone (a referral), shared at the district's 地域セーフティネット会議 where roles are decided
(watching, daily life, evacuation support, a responsible person, the next review), and supported
until the case is closed with a reason (Ichinoseki, seed plan 001).

Who: district members (地区社協: the ご近所福祉スタッフ and 民生委員 of their district) read and write
their own district; coordinators and city staff every district of their municipality; the public
and the prefecture level see counts only (:func:`public_summary`, small counts suppressed). Every
row is read from the store as the viewer (the store filters it and writes the access-log row with
the real user) and written as the acting user (:meth:`~karte.store.base.Store.append_rows`,
``update_row`` with the version that was read: the second of two edits of one case gets
:class:`~karte.domain.errors.ConflictError`, never a silent loss).

Unconsented register entries (issue 16, item 9): a case or decision may be linked to a register
entry (``person_id``). Below city staff, a link to an entry the viewer may not see is removed
from every output, and an evacuation decision on such an entry is not shown at all.

Evacuation support decided at a meeting changes the register: a coordinator or city staff member
recording it updates ``register.supporter_ids`` at once, as themselves (the register is a snapshot
layer, so the gap analysis is redone on the next request and the gap closes on the district
page); a district member may not change the register, so their decision is recorded as waiting
(``pending``) until a coordinator applies it on the overview page.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import Transformer

from gis import crs
from karte.assemble import fiscal_year, fiscal_year_label
from karte.domain import care
from karte.domain.access import SHAREABLE, SUPPRESSED, Access, Level
from karte.domain.care import (
    ACTION_JA,
    ATTENDEE_COLUMNS,
    CARE_ROLE_JA,
    CLOSE_REASON_JA,
    CONCERN_JA,
    DECISION_JA,
    EVACUATION_JA,
    FREQUENCY_JA,
    REFERRAL_STATUS_JA,
    REFERRAL_TARGET_JA,
    REGISTER_STATUS_JA,
    URGENCY_JA,
    URGENCY_SHORT,
    CareLayer,
    CaseStatus,
    DecisionKind,
    Evacuation,
    ReferralStatus,
    RegisterStatus,
    japanese_date,
    label,
)
from karte.domain.errors import AccessDenied, ConflictError, InputError, NotFoundError
from karte.domain.layers import Layer, join_list, split_list
from karte.domain.schema import ROLE_JA, HelpKind, short_address
from karte.importing.care import ledger_headers, neutralised  # noqa: F401 (the downloads use it)
from karte.importing.geocode import default_geocoder
from karte.importing.points import locate_with_tolerance
from karte.importing.values import ValueProblem, parse_date
from karte.indicators import care_counts
from karte.render.care_map import care_map, care_overlay
from karte.render.meeting_sheet import MeetingSheet, SheetHousehold, render_meeting_sheet
from karte.render.webmap import ASSETS, Basemap, map_parts
from karte.services.district_data import check_district
from karte.services.personal import read_records
from karte.services.suppression import small
from karte.snapshot import Snapshot, current
from karte.store.base import Store

JST = ZoneInfo("Asia/Tokyo")
#: Who reads and writes the records (地区社協 in their district, コーディネーター, 市職員).
CARE_LEVELS = frozenset({Level.CITY_STAFF, Level.COORDINATOR, Level.DISTRICT_MEMBER})
#: Who sees every district's cases and applies district members' evacuation decisions.
PLANNERS = frozenset({Level.CITY_STAFF, Level.COORDINATOR})
_ATTR = {CareLayer.CONCERNS: "concerns", CareLayer.REFERRALS: "referrals", CareLayer.MEETINGS: "meetings",
         CareLayer.DECISIONS: "decisions", CareLayer.ACTIONS: "actions"}
#: How many times a register update is read again and retried when another user saved first.
REGISTER_RETRIES = 5


# --- who may -----------------------------------------------------------------------------------------

def check_access(access: Access, district: str | None = None) -> None:
    """Raise :class:`AccessDenied` unless ``access`` may see the records (of ``district``)."""
    if access.level not in CARE_LEVELS:
        raise AccessDenied("見守り・セーフティネットの記録は、地区社協・コーディネーター・"
                           "市職員だけが使えます")
    if district is not None and not access.may_see_district_rows(district):
        raise AccessDenied(f"地区 {district} の見守り・セーフティネットの記録を見る権限がありません")


def check_planner(access: Access) -> None:
    """Raise :class:`AccessDenied` unless ``access`` is a coordinator or city staff."""
    if access.level not in PLANNERS:
        raise AccessDenied("この画面はコーディネーターと市職員だけが使えます")


def today_jst() -> dt.date:
    return dt.datetime.now(JST).date()


def _now() -> str:
    """When a row is recorded (UTC): to the microsecond, so "the latest" of rows recorded in one
    second, in different layers, is still the one recorded last."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class FormError(InputError):
    """A form (or a command's input) with problems; nothing was written. ``problems`` are the
    messages, each naming the field as the page labels it."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        more = len(self.problems) - 3
        head = "、".join(self.problems[:3]) + (f" ほか {more} 件" if more > 0 else "")
        super().__init__(f"入力を確認してください（{len(self.problems)} 件）: {head}")


# --- reading ---------------------------------------------------------------------------------------

@dataclass
class CareRows:
    """What one viewer read of the care layers (one district or all they may see), as dicts; and
    the register rows they may see of the same area, by ``person_id``, when they were read."""

    concerns: list[dict] = field(default_factory=list)
    referrals: list[dict] = field(default_factory=list)
    meetings: list[dict] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    people: dict[str, dict] | None = None


def read_care(store: Store, access: Access, *, district: str | None = None,
              layers: tuple[str, ...] = tuple(CareLayer), people: bool = False) -> CareRows:
    """The care rows ``access`` may see (of ``district``, or every one they may see), each layer
    read from the store as the viewer (filtered and logged there). ``people``: also read the
    register of the same area (what the pages show of a linked person). Links to register entries
    the viewer may not see are removed (see the module docstring)."""
    check_access(access, district)
    present = set(store.layers())
    rows = CareRows()
    for layer in layers:
        if layer in present:
            setattr(rows, _ATTR[CareLayer(layer)], read_records(store, layer, access, district=district))
    linked = any(r.get("person_id") for r in (*rows.concerns, *rows.decisions))
    if (people or (linked and access.level != Level.CITY_STAFF)) and Layer.REGISTER in present:
        rows.people = {str(p["person_id"]): p
                       for p in read_records(store, Layer.REGISTER, access, district=district)}
    _redact(rows, access)
    return rows


def _redact(rows: CareRows, access: Access) -> None:
    """Below city staff: no id of a register entry the viewer may not see (an evacuation decision
    on one is left out whole: it would say the person is on the register)."""
    if access.level == Level.CITY_STAFF:
        return
    visible = set(rows.people or ())
    for concern in rows.concerns:
        if concern.get("person_id") and str(concern["person_id"]) not in visible:
            concern["person_id"] = None
    kept = []
    for decision in rows.decisions:
        if decision.get("person_id") and str(decision["person_id"]) not in visible:
            if decision.get("kind") == DecisionKind.EVACUATION:
                continue
            decision["person_id"] = None
        kept.append(decision)
    rows.decisions = kept


def _order(row: dict, at: str, key: str) -> tuple:
    """When a row was recorded, for "the latest": its time, then its id's number."""
    ident = str(row.get(key) or "")
    digits = re.search(r"(\d+)$", ident)
    return (str(row.get(at) or ""), int(digits.group(1)) if digits else 0, ident)


def _who(role, name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    role_text = label(CARE_ROLE_JA, role) if role else ""
    if name and role_text and role != care.CareRole.OTHER:
        return f"{name}（{role_text}）"
    return name or role_text


def decision_text(d: dict) -> str:
    """One decision as the pages and the sheet print it."""
    kind = d.get("kind")
    who = _who(d.get("who_role"), d.get("who_name")) or "未定"
    if kind == DecisionKind.SHARED:
        return "共有" + (f"（{d['detail']}）" if d.get("detail") else "")
    if kind == DecisionKind.WATCHING:
        freq = label(FREQUENCY_JA, d.get("frequency"))
        return f"見守り: {who}" + (f"（{freq}）" if freq else "")
    if kind == DecisionKind.LIFE_OTHER:
        return f"{d.get('detail') or 'その他の生活支援'}: {who}"
    if kind == DecisionKind.EVACUATION:
        action = label(EVACUATION_JA, d.get("evacuation"), "支援者を確認")
        status = label(REGISTER_STATUS_JA, d.get("register_status"))
        return f"避難支援: {who}（{action}）" + (f"・{status}" if status else "")
    if kind == DecisionKind.RESPONSIBLE:
        return f"担当者: {who}"
    return f"{label(DECISION_JA, kind)}: {who}"


def build_cases(rows: CareRows, *, today: dt.date, href: str | None = None) -> list[dict]:
    """Each household of concern with what was decided and done, its current state and flags.

    ``responsible``: the latest responsible person (the case's own, or a meeting's 担当者 decision);
    ``next_review``: the review date recorded last (a later meeting may set an earlier date);
    ``overdue``: open with a review date before ``today``; ``no_responsible``, ``no_review``;
    ``roles``: the latest decision of each kind; ``history``: every event, newest first;
    ``last_decision``: the id of the latest decision (a meeting form's "seen" marker).
    ``href`` (``/districts/{code}/care/case?id=``) gives each case its page link.
    """
    by_concern: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for name in ("decisions", "actions", "referrals"):
        for r in getattr(rows, name):
            by_concern[str(r.get("concern_id"))][name].append(r)
    meetings = {str(m["meeting_id"]): m for m in rows.meetings}
    people = rows.people or {}
    iso_today = today.isoformat()
    out = []
    for c in rows.concerns:
        cid = str(c["concern_id"])
        mine = by_concern.get(cid, {})
        decisions = sorted(mine.get("decisions", []), key=lambda d: _order(d, "decided_at", "decision_id"))
        actions = sorted(mine.get("actions", []), key=lambda a: _order(a, "recorded_at", "action_id"))
        referrals = sorted(mine.get("referrals", []), key=lambda r: _order(r, "recorded_at", "referral_id"))
        responsible = []
        if c.get("responsible_name") or c.get("responsible_role"):
            responsible.append((_order(c, "recorded_at", "concern_id"),
                                _who(c.get("responsible_role"), c.get("responsible_name"))))
        responsible += [(_order(d, "decided_at", "decision_id"), _who(d.get("who_role"), d.get("who_name")))
                        for d in decisions if d.get("kind") == DecisionKind.RESPONSIBLE]
        reviews = [(_order(c, "recorded_at", "concern_id"), c["next_review"])] if c.get("next_review") else []
        reviews += [(_order(d, "decided_at", "decision_id"), d["next_review"]) for d in decisions
                    if d.get("next_review")]
        reviews += [(_order(a, "recorded_at", "action_id"), a["next_review"]) for a in actions
                    if a.get("next_review")]
        next_review = max(reviews)[1] if reviews else None
        status = c.get("status") or CaseStatus.OPEN.value
        is_open = status == CaseStatus.OPEN
        roles: dict[str, str] = {}  # the latest decision of each role (each other-support by its name)
        for d in decisions:
            if d.get("kind") not in (DecisionKind.SHARED, DecisionKind.RESPONSIBLE):
                key = d["kind"] if d["kind"] != DecisionKind.LIFE_OTHER else f"life_other:{d.get('detail')}"
                roles[key] = decision_text(d)
        visits = [a.get("acted_on") for a in actions
                  if a.get("kind") == care.ActionKind.VISIT and a.get("acted_on")]
        held = sorted({str(meetings[str(d["meeting_id"])].get("held_on") or "") for d in decisions
                       if str(d.get("meeting_id")) in meetings} - {""})
        overdue = bool(is_open and next_review and next_review < iso_today)
        kinds = split_list(c.get("kinds"))
        person = people.get(str(c.get("person_id"))) if c.get("person_id") else None
        address = short_address(c.get("address")) or (short_address(person.get("address")) if person else "")
        out.append({
            "concern_id": cid, "district_code": c.get("district_code"), "household": c.get("household") or "",
            "address": address,
            "place_text": address
            or ("（地図で指定した位置）" if c.get("x") is not None else "（位置の記録なし）"),
            "kinds": kinds, "kinds_ja": "・".join(label(CONCERN_JA, k) for k in kinds),
            "urgency": c.get("urgency"), "urgency_ja": label(URGENCY_SHORT, c.get("urgency"), "—"),
            "summary": c.get("summary") or "", "noticed_on": c.get("noticed_on"),
            "noticed_by": _who(c.get("noticed_by_role"), c.get("noticed_by_name")),
            "status": status, "status_ja": label(care.CASE_STATUS_JA, status),
            "closed_on": c.get("closed_on"), "close_reason_ja": label(CLOSE_REASON_JA, c.get("close_reason")),
            "close_note": c.get("close_note") or "",
            "responsible": max(responsible)[1] if responsible else "", "next_review": next_review,
            "overdue": overdue, "no_responsible": is_open and not responsible,
            "no_review": is_open and not next_review,
            "roles": list(roles.values()), "role_map": roles, "last_visit": max(visits) if visits else None,
            "last_meeting": held[-1] if held else None,
            "open_referrals": [r for r in referrals if r.get("status") != ReferralStatus.CLOSED],
            "person_id": c.get("person_id"), "person_name": person.get("name") if person else None,
            "key_code": c.get("key_code"), "x": c.get("x"), "y": c.get("y"),
            "last_decision": decisions[-1]["decision_id"] if decisions else "",
            "next_step": _next_step(status, next_review, overdue, c),
            "history": _history(c, decisions, actions, referrals, meetings),
            "href": f"{href}{cid}" if href else "",
        })
    return sorted(out, key=_case_order)


_URGENCY_RANK = {"high": 0, "medium": 1, "low": 2}


def _case_order(case: dict) -> tuple:
    return (case["status"] != CaseStatus.OPEN, not case["overdue"], _URGENCY_RANK.get(case["urgency"], 3),
            case["next_review"] or "9999", case["noticed_on"] or "", case["concern_id"])


def _next_step(status: str, next_review: str | None, overdue: bool, concern: dict) -> str:
    if status != CaseStatus.OPEN:
        reason = label(CLOSE_REASON_JA, concern.get("close_reason"))
        return "終了" + (f"（{reason}）" if reason else "")
    if overdue:
        return f"確認日 {japanese_date(next_review, short=True)} を過ぎています"
    if next_review:
        return f"次回確認 {japanese_date(next_review, short=True)}"
    return "次回確認日が決まっていません"


def _history(c: dict, decisions: list[dict], actions: list[dict], referrals: list[dict],
             meetings: dict[str, dict]) -> list[dict]:
    events = [{"date": c.get("noticed_on"), "what": "気づき",
               "text": "、".join(p for p in (_who(c.get("noticed_by_role"), c.get("noticed_by_name")),
                                            c.get("summary")) if p), "by": c.get("recorded_by")}]
    for d in decisions:
        meeting = meetings.get(str(d.get("meeting_id")), {})
        events.append({"date": meeting.get("held_on") or str(d.get("decided_at") or "")[:10],
                       "what": "会議", "text": decision_text(d), "by": d.get("decided_by"),
                       "kind": d.get("kind"),
                       "review": d.get("next_review"), "meeting_id": d.get("meeting_id")})
    for a in actions:
        events.append({"date": a.get("acted_on"), "what": label(ACTION_JA, a.get("kind"), "支援"),
                       "text": "、".join(p for p in (_who(a.get("actor_role"), a.get("actor_name")),
                                                    a.get("note"))
                                        if p), "by": a.get("recorded_by"), "review": a.get("next_review")})
    for r in referrals:
        events.append({"date": r.get("referred_on"), "what": "つなぐ",
                       "text": f"{_who(r.get('from_role'), r.get('from_name')) or '—'} → "
                               f"{label(REFERRAL_TARGET_JA, r.get('to_kind'))}"
                               + (f"（{r['to_name']}）" if r.get("to_name") else "")
                               + f"・{label(REFERRAL_STATUS_JA, r.get('status'))}"
                               + (f"、{r['note']}" if r.get("note") else ""), "by": r.get("recorded_by")})
    if c.get("status") == CaseStatus.CLOSED:
        events.append({"date": c.get("closed_on"), "what": "終了",
                       "text": label(CLOSE_REASON_JA, c.get("close_reason"))
                               + (f"、{c['close_note']}" if c.get("close_note") else ""),
                               "by": c.get("updated_by")})
    return sorted(events, key=lambda e: str(e.get("date") or ""), reverse=True)


def meeting_rows(rows: CareRows) -> list[dict]:
    """The meetings, newest first, each with the households discussed (names as the viewer may see
    them) and its decisions."""
    names = {str(c["concern_id"]): c.get("household") or c["concern_id"] for c in rows.concerns}
    by_meeting: dict[str, list[dict]] = defaultdict(list)
    for d in rows.decisions:
        by_meeting[str(d.get("meeting_id"))].append(d)
    out = []
    for m in rows.meetings:
        decided = sorted(by_meeting.get(str(m["meeting_id"]), []), key=lambda d: _order(d, "decided_at",
                                                                                        "decision_id"))
        households = list(dict.fromkeys(str(d.get("concern_id")) for d in decided if d.get("concern_id")))
        attendees = {role: m.get(col) for role, col in ATTENDEE_COLUMNS.items() if m.get(col)}
        out.append({
            "meeting_id": m["meeting_id"], "district_code": m.get("district_code"),
            "held_on": m.get("held_on"),
            "place": m.get("place") or "", "participants": m.get("participants"),
            "households": m.get("households"),
            "attendees": [(CARE_ROLE_JA[care.CareRole(r)], n) for r, n in attendees.items()],
            "attendee_names": m.get("attendee_names") or "", "summary": m.get("summary") or "",
            "discussed": [{"concern_id": h, "household": names.get(h, "（閲覧できない世帯）"),
                           "decisions": [decision_text(d) for d in decided if str(d.get("concern_id")) == h]}
                          for h in households],
            "recorded_by": m.get("recorded_by"),
        })
    return sorted(out, key=lambda m: (str(m["held_on"] or ""), str(m["meeting_id"])), reverse=True)


# --- forms ---------------------------------------------------------------------------------------------

class Form:
    """Values of a submitted form (``name -> value`` or ``name -> [values]``), read field by field;
    every problem is collected (:attr:`problems`) so the page can show all of them at once."""

    def __init__(self, data: Mapping[str, object]):
        self.data = data
        self.problems: list[str] = []

    def values(self, name: str) -> list[str]:
        value = self.data.get(name)
        if value is None:
            return []
        items = value if isinstance(value, list | tuple) else [value]
        return [str(v).strip() for v in items if str(v).strip()]

    def raw(self, name: str) -> str:
        found = self.values(name)
        return found[-1] if found else ""

    def text(self, name: str, what: str, *, limit: int = 200, required: bool = False) -> str | None:
        text = self.raw(name).replace("\r\n", "\n")
        if not text:
            if required:
                self.problems.append(f"「{what}」を入力してください")
            return None
        if len(text) > limit:
            self.problems.append(f"「{what}」は{limit}文字までにしてください")
            return None
        return text

    def date(self, name: str, what: str, *, required: bool = False, not_after: dt.date | None = None,
             not_before: dt.date | None = None) -> str | None:
        text = self.raw(name)
        if not text:
            if required:
                self.problems.append(f"「{what}」を入力してください")
            return None
        try:
            day = parse_date(text)
        except ValueProblem as exc:
            self.problems.append(f"「{what}」: {exc.ja}")
            return None
        if not_after is not None and day > not_after:
            self.problems.append(f"「{what}」が未来の日付です")
            return None
        if not_before is not None and day < not_before:
            self.problems.append(f"「{what}」は {japanese_date(not_before.isoformat())} 以降にしてください")
            return None
        return day.isoformat()

    def choice(self, name: str, what: str, table: dict, *, required: bool = False) -> str | None:
        value = self.raw(name)
        if not value:
            if required:
                self.problems.append(f"「{what}」を選んでください")
            return None
        if value not in {str(k) for k in table}:
            self.problems.append(f"「{what}」の値が正しくありません")
            return None
        return value

    def choices(self, name: str, what: str, table: dict, *, required: bool = False) -> list[str]:
        values = list(dict.fromkeys(self.values(name)))
        if not values and required:
            self.problems.append(f"「{what}」を一つ以上選んでください")
        bad = [v for v in values if v not in {str(k) for k in table}]
        if bad:
            self.problems.append(f"「{what}」の値が正しくありません")
        return [v for v in values if v not in bad]

    def count(self, name: str, what: str, *, limit: int = 999) -> int | None:
        text = self.raw(name)
        if not text:
            return None
        try:
            n = int(text.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
        except ValueError:
            self.problems.append(f"「{what}」は 0 以上の整数で入力してください")
            return None
        if not 0 <= n <= limit:
            self.problems.append(f"「{what}」は 0〜{limit} で入力してください")
            return None
        return n

    def number(self, name: str, what: str, low: float, high: float) -> float | None:
        text = self.raw(name)
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            self.problems.append(f"「{what}」が数値ではありません")
            return None
        if not low <= value <= high:
            self.problems.append(f"「{what}」の値が範囲外です")
            return None
        return value

    def check(self) -> None:
        if self.problems:
            raise FormError(self.problems)


# --- writing: households, actions, referrals, closing ----------------------------------------------

@functools.lru_cache(maxsize=1)
def _geocoder():
    return default_geocoder()


def _visible_concern(store: Store, access: Access, code: str, concern_id: str) -> dict:
    """The case ``concern_id`` of district ``code`` as the viewer may see it (with its version);
    NotFoundError (naming nothing) otherwise."""
    try:
        row = store.read_row(CareLayer.CONCERNS, concern_id, access=access)
    except NotFoundError:
        raise NotFoundError("その世帯の記録はありません（または閲覧の権限がありません）") from None
    if row.get("district_code") != code:
        raise NotFoundError("その世帯の記録はありません（または閲覧の権限がありません）")
    return row


def _person(store: Store, access: Access, person_id: str) -> dict | None:
    """The register entry ``person_id`` if the viewer may see it (the read is logged), else None."""
    try:
        return store.read_row(Layer.REGISTER, person_id, access=access)
    except NotFoundError:
        return None


def _place(snap: Snapshot, point) -> tuple[str | None, str | None]:
    """(district, small area) of an EPSG:6678 point (300 m of tolerance, as imports allow)."""
    frame = gpd.GeoDataFrame(geometry=gpd.GeoSeries([point], crs=crs.METRIC))
    district = locate_with_tolerance(frame, snap.districts, "district_code").iloc[0]
    key = locate_with_tolerance(frame, snap.small_areas, "key_code").iloc[0]
    return district, key


#: WGS84 longitude, latitude -> EPSG:6678 metres (one transformer: building one costs ~1 ms).
_TO_METRIC = Transformer.from_crs(crs.WGS84, crs.METRIC, always_xy=True)


def _metric(lon: float, lat: float):
    x, y = _TO_METRIC.transform(lon, lat)
    return shapely.Point(x, y)


def record_concern(store: Store, access: Access, code: str, form: Mapping[str, object], *,
                   today: dt.date | None = None) -> dict:
    """Record a household of concern (気づき) in district ``code`` from the page's form; the row as
    stored (its id from the store). The point: a point picked on the map, else the linked register
    entry's, else the address geocoded to its town (as the register import does), else none.

    Raises :class:`FormError` listing every problem (nothing written)."""
    check_access(access, code)
    snap = current(store)
    check_district(snap, code)
    today = today or today_jst()
    f = Form(form)
    household = f.text("household", "世帯（呼び名）", limit=100, required=True)
    address = f.text("address", "住所", limit=200)
    kinds = f.choices("kinds", "気になること", CONCERN_JA, required=True)
    urgency = f.choice("urgency", "緊急度", URGENCY_JA, required=True)
    summary = f.text("summary", "気づいた内容", limit=2000)
    noticed_on = f.date("noticed_on", "気づいた日", required=True, not_after=today)
    noticed_role = f.choice("noticed_by_role", "気づいた人の区分", CARE_ROLE_JA, required=True)
    noticed_name = f.text("noticed_by_name", "気づいた人の氏名", limit=60)
    responsible_role = f.choice("responsible_role", "担当の区分", CARE_ROLE_JA)
    responsible_name = f.text("responsible_name", "担当者", limit=60)
    next_review = f.date("next_review", "次回確認日",
                         not_before=dt.date.fromisoformat(noticed_on) if noticed_on else None)
    lat = f.number("lat", "地図の位置（緯度）", 20.0, 46.0)
    lon = f.number("lon", "地図の位置（経度）", 122.0, 154.0)
    person_id = f.raw("person_id") or None
    person = _find(store, access, Layer.REGISTER, "person_id", person_id, code) if person_id else None
    if person_id and (person is None or person.get("district_code") != code):
        f.problems.append("「名簿の要支援者」はこの地区の名簿にありません")
        person = None
    # the register entry's point only when it may be shared: a case is seen below city staff,
    # an unconsented person's home is not (city staff place such a case on the map themselves)
    shareable = person is not None and person.get("consent") in SHAREABLE
    point, precision = None, "none"
    if lat is not None and lon is not None:
        point, precision = _metric(lon, lat), "exact"
    elif shareable and person.get("geometry") is not None and not person["geometry"].is_empty:
        point, precision = person["geometry"], person.get("location_precision") or "exact"
    elif address:
        try:
            hit = _geocoder().geocode(address)
        except ValueProblem as exc:
            f.problems.append(f"「住所」: {exc.ja}（地図で位置を指定することもできます）")
        else:
            point, precision = _metric(hit.lon, hit.lat), str(hit.precision)
    key_code = None
    if point is not None:
        district, key_code = _place(snap, point)
        if district != code:
            f.problems.append(f"位置が {snap.district_name(code)} の区域の外です"
                              "（住所か地図の位置を確認してください）")
    helper = _find(store, access, Layer.COOPERATORS, "cooperator_id", noticed_name, code) \
        if noticed_name and noticed_role in _COOPERATOR_ROLES else None
    f.check()
    row = {"district_code": code, "household": household, "address": address, "location_precision": precision,
           "key_code": key_code, "person_id": str(person["person_id"]) if person else None,
           "kinds": join_list(kinds), "urgency": urgency, "summary": summary, "noticed_on": noticed_on,
           "noticed_by_role": noticed_role, "noticed_by_name": noticed_name,
           "noticed_by_cooperator_id": str(helper["cooperator_id"]) if helper is not None else None,
           "responsible_role": responsible_role, "responsible_name": responsible_name,
           "next_review": next_review, "status": CaseStatus.OPEN.value, "recorded_by": access.user,
           "recorded_at": _now()}
    if point is not None:
        row["geometry"] = point
    return store.append_rows(CareLayer.CONCERNS, [row], access=access)[0]


#: Roles whose noticer may be on the cooperator roster (the name then links to the roster entry).
_COOPERATOR_ROLES = {care.CareRole.NEIGHBOURHOOD_STAFF.value, care.CareRole.WELFARE_COMMISSIONER.value,
                     care.CareRole.NEIGHBOURHOOD_ASSOCIATION.value, care.CareRole.COUNCIL.value,
                     care.CareRole.COMMUNITY_SUPPORT_CENTRE.value, care.CareRole.OTHER.value}


def record_action(store: Store, access: Access, code: str, form: Mapping[str, object], *,
                  today: dt.date | None = None) -> dict:
    """Record a follow-up action (支援: a visit, a call …) on an open case; the row as stored."""
    check_access(access, code)
    today = today or today_jst()
    f = Form(form)
    concern = _visible_concern(store, access, code, f.raw("concern_id"))
    if concern.get("status") == CaseStatus.CLOSED:
        raise FormError(["この世帯の対応は終了しています（再開してから記録してください）"])
    acted_on = f.date("acted_on", "日付", required=True, not_after=today)
    row = {"district_code": code, "concern_id": concern["concern_id"], "acted_on": acted_on,
           "kind": f.choice("kind", "支援の種類", ACTION_JA, required=True),
           "actor_role": f.choice("actor_role", "対応した人の区分", CARE_ROLE_JA),
           "actor_name": f.text("actor_name", "対応した人", limit=60),
           "note": f.text("note", "内容", limit=2000),
           "next_review": f.date("next_review", "次回確認日",
                                 not_before=dt.date.fromisoformat(acted_on) if acted_on else None),
           "recorded_by": access.user, "recorded_at": _now()}
    f.check()
    return store.append_rows(CareLayer.ACTIONS, [row], access=access)[0]


def record_referral(store: Store, access: Access, code: str, form: Mapping[str, object], *,
                    today: dt.date | None = None) -> dict:
    """Record a referral (つなぐ) of an open case to a 民生委員, a coordinator, the 地域包括支援センター
    or the city; status 依頼中."""
    check_access(access, code)
    today = today or today_jst()
    f = Form(form)
    concern = _visible_concern(store, access, code, f.raw("concern_id"))
    if concern.get("status") == CaseStatus.CLOSED:
        raise FormError(["この世帯の対応は終了しています（再開してから記録してください）"])
    row = {"district_code": code, "concern_id": concern["concern_id"],
           "referred_on": f.date("referred_on", "つないだ日", required=True, not_after=today),
           "from_role": f.choice("from_role", "つないだ人の区分", CARE_ROLE_JA),
           "from_name": f.text("from_name", "つないだ人", limit=60),
           "to_kind": f.choice("to_kind", "つなぎ先", REFERRAL_TARGET_JA, required=True),
           "to_name": f.text("to_name", "つなぎ先の担当者", limit=60),
           "status": ReferralStatus.OPEN.value, "note": f.text("note", "メモ", limit=2000),
           "recorded_by": access.user, "recorded_at": _now()}
    f.check()
    return store.append_rows(CareLayer.REFERRALS, [row], access=access)[0]


#: Where a referral may go from each status.
_REFERRAL_NEXT = {ReferralStatus.OPEN: (ReferralStatus.ACCEPTED, ReferralStatus.CLOSED),
                  ReferralStatus.ACCEPTED: (ReferralStatus.CLOSED,), ReferralStatus.CLOSED: ()}


def set_referral_status(store: Store, access: Access, code: str, form: Mapping[str, object], *,
                        today: dt.date | None = None) -> int:
    """Move a referral on (依頼中 → 受理 → 完了) if it is still at the version the form was made
    from; the new version. ConflictError when someone else changed it first."""
    check_access(access, code)
    today = today or today_jst()
    f = Form(form)
    status = f.choice("status", "状況", REFERRAL_STATUS_JA, required=True)
    version = f.count("version", "版", limit=2**62)
    day = f.date("on", "日付", not_after=today) or today.isoformat()
    f.check()
    try:
        row = store.read_row(CareLayer.REFERRALS, f.raw("referral_id"), access=access)
    except NotFoundError:
        raise NotFoundError("そのつなぎの記録はありません（または閲覧の権限がありません）") from None
    if row.get("district_code") != code:
        raise NotFoundError("そのつなぎの記録はありません（または閲覧の権限がありません）")
    if version is not None and int(row["version"]) != version:
        raise ConflictError("このつなぎの記録は、画面を開いた後に他の利用者が更新しました。読み直してから"
                            "やり直してください。")
    if status not in _REFERRAL_NEXT.get(ReferralStatus(row.get("status") or "open"), ()):
        raise FormError([f"「{label(REFERRAL_STATUS_JA, row.get('status'))}」から"
                         f"「{label(REFERRAL_STATUS_JA, status)}」には変えられません"])
    changes = {"status": status, ("accepted_on" if status == ReferralStatus.ACCEPTED else "closed_on"): day}
    return store.update_row(CareLayer.REFERRALS, row["referral_id"], changes,
                            version=version if version is not None else int(row["version"]), access=access)


def close_case(store: Store, access: Access, code: str, form: Mapping[str, object], *,
               today: dt.date | None = None) -> int:
    """Close a case with a reason (支援の終了), if it is still at the version the page showed."""
    check_access(access, code)
    today = today or today_jst()
    f = Form(form)
    concern = _visible_concern(store, access, code, f.raw("concern_id"))
    version = f.count("version", "版", limit=2**62)
    reason = f.choice("close_reason", "終了の理由", CLOSE_REASON_JA, required=True)
    noticed = dt.date.fromisoformat(concern["noticed_on"]) if concern.get("noticed_on") else None
    closed_on = f.date("closed_on", "終了日", required=True, not_after=today, not_before=noticed)
    note = f.text("close_note", "終了のメモ", limit=2000)
    if version is None:
        f.problems.append("画面を読み直してからやり直してください（版がありません）")
    f.check()
    if concern.get("status") == CaseStatus.CLOSED and int(concern["version"]) == version:
        raise FormError(["この世帯の対応はすでに終了しています"])
    return store.update_row(CareLayer.CONCERNS, concern["concern_id"],
                            {"status": CaseStatus.CLOSED.value, "closed_on": closed_on,
                             "close_reason": reason,
                             "close_note": note}, version=version, access=access)


def reopen_case(store: Store, access: Access, code: str, form: Mapping[str, object]) -> int:
    """Open a closed case again (the problem came back), at the version the page showed."""
    check_access(access, code)
    f = Form(form)
    concern = _visible_concern(store, access, code, f.raw("concern_id"))
    version = f.count("version", "版", limit=2**62)
    if version is None:
        f.problems.append("画面を読み直してからやり直してください（版がありません）")
    f.check()
    return store.update_row(CareLayer.CONCERNS, concern["concern_id"],
                            {"status": CaseStatus.OPEN.value, "closed_on": None, "close_reason": None,
                             "close_note": None}, version=version, access=access)


# --- writing: a safety-net meeting and its decisions ------------------------------------------------

#: The per-household fields of the meeting form: ``h-<concern_id>-<name>``.
HOUSEHOLD_FIELDS = ("discussed", "seen", "watch_who", "watch_freq", "snow_who", "rubbish_who", "shopping_who",
                    "other_what", "other_who", "evac_person", "evac_supporter", "evac_action",
                    "evac_replaces",
                    "responsible", "next_review", "note")


def household_field(concern_id: str, name: str) -> str:
    """The form field of one household's ``name`` in the meeting form."""
    return f"h-{concern_id}-{name}"


@dataclass
class MeetingResult:
    """What recording a meeting wrote, and what the recorder should know."""

    meeting: dict
    decisions: list[dict]
    #: households on which someone else recorded decisions after the form was opened (both kept)
    notices: list[str]
    #: evacuation decisions applied to the register now, and those waiting for a coordinator
    applied: int = 0
    pending: int = 0


def record_meeting(store: Store, access: Access, code: str, form: Mapping[str, object], *,
                   today: dt.date | None = None) -> MeetingResult:
    """Record a safety-net meeting of district ``code`` and its decisions per household.

    ``form``: ``held_on``, ``place``, ``summary``, ``attendee_names``, ``attendees_<role>`` (counts),
    ``participants`` (default: the sum), ``households_other`` (households discussed that have no
    case here), ``household`` (the ids of the cases on the form) and, per case,
    :data:`HOUSEHOLD_FIELDS` (:func:`household_field`). A case with any value filled in counts as
    discussed. Every problem is reported at once (:class:`FormError`) and nothing is written.

    Decisions are only ever appended, so two people recording decisions on one household at the
    same moment both keep theirs; ``notices`` tells the recorder when decisions were recorded on a
    household after their form was opened (its ``seen`` marker), so they can look. Evacuation
    support decided by a coordinator or city staff changes the register at once (as them; read
    again and retried when someone else saved the entry first); by a district member it waits.
    """
    check_access(access, code)
    snap = current(store)
    check_district(snap, code)
    today = today or today_jst()
    f = Form(form)
    held_on = f.date("held_on", "開催日", required=True, not_after=today)
    counts = {col: f.count(col, f"参加者（{CARE_ROLE_JA[role]}）") for role, col in ATTENDEE_COLUMNS.items()}
    total = sum(v for v in counts.values() if v)
    participants = f.count("participants", "参加者数（合計）", limit=9999)
    if participants is not None and participants < total:
        f.problems.append(f"「参加者数（合計）」が区分ごとの人数の合計（{total}人）より少ないです")
    if participants is None:
        participants = total
    others = f.count("households_other", "ほかに話し合った世帯の数", limit=999) or 0
    meeting = {"district_code": code, "held_on": held_on, "place": f.text("place", "会場", limit=100),
               "participants": participants, **counts,
               "attendee_names": f.text("attendee_names", "参加者の氏名", limit=2000),
               "summary": f.text("summary", "話し合った内容", limit=4000),
               "recorded_by": access.user, "recorded_at": _now()}
    ids = list(dict.fromkeys(f.values("household")))
    filled = [cid for cid in ids if any(f.raw(household_field(cid, n)) for n in HOUSEHOLD_FIELDS
                                        if n not in ("seen", "evac_action", "watch_freq", "evac_person"))]
    rows = read_care(store, access, district=code, layers=(CareLayer.CONCERNS, CareLayer.DECISIONS))
    concerns = {str(c["concern_id"]): c for c in rows.concerns}
    planner = access.level in PLANNERS
    decisions: list[dict] = []
    evacuations: list[tuple[dict, dict]] = []
    for cid in filled:
        concern = concerns.get(cid)
        if concern is None or concern.get("status") == CaseStatus.CLOSED:
            f.problems.append(f"世帯 {cid} はこの地区の対応中の記録にありません（画面を読み直してください）")
            continue
        name = concern.get("household") or cid
        decisions += _household_decisions(store, access, f, concern, name, held_on, planner, evacuations)
    f.check()
    if not held_on:  # pragma: no cover - f.check() raised
        raise FormError(["開催日がありません"])
    notices = _notices(rows.decisions, {cid: f.raw(household_field(cid, "seen")) for cid in filled},
                       concerns, access)
    meeting["households"] = len({d["concern_id"] for d in decisions}) + others
    applied = 0
    for decision, evac in evacuations:  # the register first: nothing else is written if it fails
        if planner:
            _apply_supporter(store, access, evac["person_id"], evac["supporter"], evac["action"],
                             evac["replaces"])
            decision["register_status"] = RegisterStatus.APPLIED.value
            applied += 1
        else:
            decision["register_status"] = RegisterStatus.PENDING.value
    stored = store.append_rows(CareLayer.MEETINGS, [meeting], access=access)[0]
    written: list[dict] = []
    if decisions:
        for d in decisions:
            d["meeting_id"] = stored["meeting_id"]
        try:
            written = store.append_rows(CareLayer.DECISIONS, decisions, access=access)
        except Exception:
            store.delete_row(CareLayer.MEETINGS, stored["meeting_id"], version=stored["version"],
                             access=access)
            raise
    return MeetingResult(stored, written, notices, applied=applied, pending=len(evacuations) - applied)


def _household_decisions(store: Store, access: Access, f: Form, concern: dict, name: str, held_on: str | None,
                         planner: bool, evacuations: list) -> list[dict]:
    """The decision rows of one household (a 共有 row first: it marks the household as discussed
    and carries the note; then one per role decided)."""
    cid = str(concern["concern_id"])

    def field_(n):
        return household_field(cid, n)

    where = f"世帯「{name}」の"
    review = f.date(field_("next_review"), f"{where}次回確認日",
                    not_before=dt.date.fromisoformat(held_on) if held_on else None)
    now = _now()
    base = {"district_code": concern["district_code"], "concern_id": cid, "next_review": review,
            "decided_by": access.user, "decided_at": now}
    rows = [{**base, "kind": DecisionKind.SHARED.value, "detail": f.text(field_("note"), f"{where}メモ",
                                                                         limit=2000)}]
    watcher = f.text(field_("watch_who"), f"{where}見守りをする人", limit=60)
    freq = f.choice(field_("watch_freq"), f"{where}見守りの頻度", FREQUENCY_JA)
    if watcher:
        rows.append({**base, "kind": DecisionKind.WATCHING.value, "who_name": watcher, "frequency": freq})
    elif freq:
        f.problems.append(f"{where}見守りをする人を入力してください")
    for kind, n in ((DecisionKind.SNOW, "snow_who"), (DecisionKind.RUBBISH, "rubbish_who"),
                    (DecisionKind.SHOPPING, "shopping_who")):
        who = f.text(field_(n), f"{where}{DECISION_JA[kind]}をする人", limit=60)
        if who:
            rows.append({**base, "kind": kind.value, "who_name": who})
    what = f.text(field_("other_what"), f"{where}その他の生活支援（内容）", limit=60)
    other = f.text(field_("other_who"), f"{where}その他の生活支援をする人", limit=60)
    if what and other:
        rows.append({**base, "kind": DecisionKind.LIFE_OTHER.value, "detail": what, "who_name": other})
    elif what or other:
        f.problems.append(f"{where}その他の生活支援は、内容とする人の両方を入力してください")
    responsible = f.text(field_("responsible"), f"{where}担当者", limit=60)
    if responsible:
        rows.append({**base, "kind": DecisionKind.RESPONSIBLE.value, "who_name": responsible})
    supporter_id = f.raw(field_("evac_supporter"))
    if supporter_id:
        evac = _evacuation(store, access, f, concern, where, supporter_id)
        if evac is not None:
            row = {**base, "kind": DecisionKind.EVACUATION.value, "who_name": evac["supporter_name"],
                   "who_role": None, "cooperator_id": evac["supporter"], "person_id": evac["person_id"],
                   "evacuation": evac["action"], "replaces_id": evac["replaces"]}
            rows.append(row)
            evacuations.append((row, evac))
    return rows


def _evacuation(store: Store, access: Access, f: Form, concern: dict, where: str,
                supporter_id: str) -> dict | None:
    """The evacuation decision of one household, checked: the register entry (the case's own or
    the one chosen), the supporter (a cooperator the user may see), confirmed or changed."""
    cid = str(concern["concern_id"])
    district = concern["district_code"]
    given = f.raw(household_field(cid, "evac_person")) or concern.get("person_id")
    action = f.choice(household_field(cid, "evac_action"), f"{where}避難支援の決定",
                      EVACUATION_JA) or Evacuation.CONFIRMED.value
    person = _find(store, access, Layer.REGISTER, "person_id", str(given), district) if given else None
    if person is None or person.get("district_code") != district:
        f.problems.append(f"{where}避難支援: 名簿の要支援者を選んでください（この地区の名簿にある人）")
        return None
    supporter = _find(store, access, Layer.COOPERATORS, "cooperator_id", supporter_id, district)
    if supporter is None:
        f.problems.append(f"{where}避難支援: 支援者が協力者名簿にありません（番号か氏名を確認してください）")
        return None
    current_ids = split_list(person.get("supporter_ids"))
    named = f.raw(household_field(cid, "evac_replaces"))
    replaces = None
    if named:
        gone = _find(store, access, Layer.COOPERATORS, "cooperator_id", named, district)
        replaces = str(gone["cooperator_id"]) if gone is not None else named
    if replaces and replaces not in current_ids:
        f.problems.append(f"{where}避難支援: 外す支援者が今の支援者ではありません")
        return None
    if action == Evacuation.CONFIRMED and replaces:
        f.problems.append(f"{where}避難支援: 支援者を外すときは「支援者を変更」を選んでください")
        return None
    return {"person_id": str(person["person_id"]), "supporter": str(supporter["cooperator_id"]),
            "action": action, "replaces": replaces, "supporter_name": supporter.get("name")}


_ID = re.compile(r"^[A-Za-z]{0,4}\d{1,12}$")


def _find(store: Store, access: Access, layer: str, key: str, value: str, district: str) -> dict | None:
    """A register entry or cooperator the viewer may see, by its id, or by its exact name when that
    name is one person's in the district (a tablet's type-ahead gives either); None otherwise."""
    value = value.strip()
    if _ID.match(value):
        try:
            return store.read_row(layer, value, access=access)
        except NotFoundError:
            return None
    found = [r for r in read_records(store, layer, access, district=district)
             if re.sub(r"\s+", "", str(r.get("name") or "")) == re.sub(r"\s+", "", value)]
    if len(found) != 1:
        return None
    return store.read_row(layer, str(found[0][key]), access=access)


def _notices(decisions: list[dict], seen: dict[str, str], concerns: dict[str, dict],
             access: Access) -> list[str]:
    """For each household: decisions recorded after the form's ``seen`` marker by someone else."""
    latest: dict[str, list[dict]] = defaultdict(list)
    for d in decisions:
        latest[str(d.get("concern_id"))].append(d)
    out = []
    for cid, marker in seen.items():
        rows = sorted(latest.get(cid, []), key=lambda d: _order(d, "decided_at", "decision_id"))
        if marker:
            position = next((i for i, d in enumerate(rows) if d["decision_id"] == marker), None)
            newer = rows[position + 1:] if position is not None else []
        else:
            newer = rows
        newer = [d for d in newer if d.get("decided_by") != access.user]
        if newer:
            who = "、".join(dict.fromkeys(str(d.get("decided_by")) for d in newer))
            name = concerns[cid].get("household") or cid
            out.append(f"世帯「{name}」には、フォームを開いた後に {who} さんが決定を記録しています。"
                       "両方とも保存しました。内容が食い違っていないか確認してください。")
    return out


def _apply_supporter(store: Store, access: Access, person_id: str, supporter_id: str, action: str,
                     replaces: str | None) -> str:
    """Put ``supporter_id`` into the register entry's ``supporter_ids`` (``changed``: instead of
    ``replaces``, or of every current supporter) as ``access``; ``"unchanged"`` when it already
    is. The entry is read again and the change made again when another user saved it first, so
    two supporters confirmed at the same moment are both kept."""
    for _ in range(REGISTER_RETRIES):
        person = store.read_row(Layer.REGISTER, person_id, access=access)
        ids = split_list(person.get("supporter_ids"))
        if action == Evacuation.CHANGED:
            ids = [i for i in ids if i != replaces] if replaces else []
        if supporter_id not in ids:
            ids.append(supporter_id)
        if ids == split_list(person.get("supporter_ids")):
            return "unchanged"
        try:
            store.update_row(Layer.REGISTER, person_id, {"supporter_ids": join_list(ids)},
                             version=int(person["version"]), access=access)
            return "applied"
        except ConflictError:
            continue
    raise ConflictError("要支援者名簿のこの人の記録が何度も同時に更新されました。"
                        "少し待ってからやり直してください。")


def decide_pending(store: Store, access: Access, form: Mapping[str, object]) -> dict:
    """A coordinator (or city staff) applies a district member's evacuation decision to the
    register (``approve``) or declines it; returns the decision as it now stands."""
    check_planner(access)
    f = Form(form)
    approve = f.choice("approve", "反映する／しない", {"1": "反映する", "0": "反映しない"}, required=True)
    f.check()
    try:
        row = store.read_row(CareLayer.DECISIONS, f.raw("decision_id"), access=access)
    except NotFoundError:
        raise NotFoundError("その決定の記録はありません（または閲覧の権限がありません）") from None
    if row.get("kind") != DecisionKind.EVACUATION or row.get("register_status") != RegisterStatus.PENDING:
        raise ConflictError("この決定は、すでに名簿に反映されたか、反映しないことになっています。")
    if approve == "1":
        if _person(store, access, str(row.get("person_id"))) is None:
            raise NotFoundError("その要支援者は名簿にありません（または閲覧の権限がありません）")
        _apply_supporter(store, access, str(row["person_id"]), str(row["cooperator_id"]),
                         row.get("evacuation") or Evacuation.CONFIRMED.value, row.get("replaces_id"))
    status = RegisterStatus.APPLIED if approve == "1" else RegisterStatus.REJECTED
    store.update_row(CareLayer.DECISIONS, row["decision_id"], {"register_status": status.value},
                     version=int(row["version"]), access=access)
    return {**row, "register_status": status.value}


# --- pages -----------------------------------------------------------------------------------------------

def _options() -> dict:
    """The choices of the forms, as (code, Japanese) pairs."""
    def pairs(table):
        return [(str(k), v) for k, v in table.items()]
    return {"roles": pairs(CARE_ROLE_JA), "kinds": pairs(CONCERN_JA), "urgencies": pairs(URGENCY_JA),
            "frequencies": pairs(FREQUENCY_JA), "evacuations": pairs(EVACUATION_JA),
            "close_reasons": pairs(CLOSE_REASON_JA), "targets": pairs(REFERRAL_TARGET_JA),
            "action_kinds": pairs(ACTION_JA), "attendees": [(c, CARE_ROLE_JA[r]) for r,
                                                            c in ATTENDEE_COLUMNS.items()]}


def _base_map(store: Store, snap: Snapshot, code: str, basemap: Basemap):
    def build():
        district = snap.layer("districts")
        district = district[district["district_code"] == code]
        salons = snap.salons[snap.salons["district_code"] == code] if len(snap.salons) else snap.salons
        shelters = snap.layer("shelters")
        shelters = shelters[shelters["district_code"] == code]
        return map_parts(care_map(district=district, salons=salons, shelters=shelters, asset_base=ASSETS,
                                  basemap=basemap))

    return snap.memo(("page:care", code, basemap), build)


def _cooperator_options(cooperators: list[dict], people: dict[str, dict]) -> list[dict]:
    rows = []
    for c in cooperators:
        helps = split_list(c.get("help_kinds"))
        role = c.get("role")
        rows.append({"id": c["cooperator_id"], "name": c.get("name") or "",
                     "evacuation": HelpKind.EVACUATION in helps,
                     "role": next((v for k, v in ROLE_JA.items() if str(k) == role), role or "")})
    return sorted(rows, key=lambda r: (not r["evacuation"], r["role"], r["name"]))


def _people_options(people: dict[str, dict], names: dict[str, str]) -> list[dict]:
    out = []
    for p in sorted(people.values(), key=lambda p: (str(p.get("kana") or ""), str(p["person_id"]))):
        supporters = split_list(p.get("supporter_ids"))
        out.append({"id": str(p["person_id"]), "name": p.get("name") or "",
                    "address": short_address(p.get("address")),
                    "supporters": [(s, names.get(s, s)) for s in supporters]})
    return out


def district_care_page(store: Store, code: str, access: Access, *, basemap: Basemap,
                       today: dt.date | None = None) -> dict:
    """The district's 見守り・セーフティネット page: open cases and their next step, the map of the
    households (drawn once; the viewer's households added in the browser), the meetings, and what
    the meeting and household forms offer. Reads the care layers, the register and the roster of
    the district as the viewer (each logged)."""
    check_access(access, code)
    snap = current(store)
    check_district(snap, code)
    today = today or today_jst()
    rows = read_care(store, access, district=code, people=True)
    present = set(store.layers())
    cooperators = read_records(store, Layer.COOPERATORS, access, district=code) \
        if Layer.COOPERATORS in present else []
    names = {str(c["cooperator_id"]): c.get("name") or "" for c in cooperators}
    cases = build_cases(rows, today=today, href=f"/districts/{code}/care/case?id=")
    open_cases = [c for c in cases if c["status"] == CaseStatus.OPEN]
    meetings = meeting_rows(rows)
    year = fiscal_year(today)
    this_year = [m for m in meetings if _year_of(m["held_on"]) == year]
    pending = [d for d in rows.decisions if d.get("kind") == DecisionKind.EVACUATION
               and d.get("register_status") == RegisterStatus.PENDING]
    return {
        "code": code, "name": snap.district_name(code), "today": today.isoformat(),
        "map": _base_map(store, snap, code, basemap), "overlay": care_overlay(open_cases),
        "cases": open_cases, "closed": [c for c in cases if c["status"] != CaseStatus.OPEN][:20],
        "meetings": meetings[:30], "meetings_total": len(meetings),
        "flags": {"open": len(open_cases), "overdue": sum(c["overdue"] for c in open_cases),
                  "no_responsible": sum(c["no_responsible"] for c in open_cases),
                  "no_review": sum(c["no_review"] for c in open_cases), "pending": len(pending)},
        "year": {"label": fiscal_year_label(year), "meetings": len(this_year),
                 "participants": sum(m["participants"] or 0 for m in this_year),
                 "households": sum(m["households"] or 0 for m in this_year)},
        "people": _people_options(rows.people or {}, names),
        "supporters_of": {p["id"]: "、".join(n for _, n in p["supporters"]) or "なし"
                          for p in _people_options(rows.people or {}, names)},
        "cooperators": _cooperator_options(cooperators, rows.people or {}),
        "planner": access.level in PLANNERS, "options": _options(),
    }


def case_page(store: Store, code: str, concern_id: str, access: Access, *,
              today: dt.date | None = None) -> dict:
    """One household's page: what was noticed, decided and done, newest first; its open referrals
    with their versions (for the status buttons); the version of the case (for closing it)."""
    check_access(access, code)
    snap = current(store)
    check_district(snap, code)
    today = today or today_jst()
    concern = _visible_concern(store, access, code, concern_id)
    rows = read_care(store, access, district=code,
                     layers=(CareLayer.MEETINGS, CareLayer.DECISIONS, CareLayer.ACTIONS, CareLayer.REFERRALS))
    rows.concerns = [concern]
    person = _person(store, access, str(concern["person_id"])) if concern.get("person_id") else None
    rows.people = {str(person["person_id"]): person} if person else {}
    _redact(rows, access)
    case = build_cases(rows, today=today)[0]
    referrals = []
    for r in sorted(case["open_referrals"], key=lambda r: str(r.get("referred_on") or "")):
        full = store.read_row(CareLayer.REFERRALS, r["referral_id"], access=access)
        referrals.append({**full, "to_ja": label(REFERRAL_TARGET_JA, full.get("to_kind")),
                          "status_ja": label(REFERRAL_STATUS_JA, full.get("status")),
                          "next": [(str(s), REFERRAL_STATUS_JA[s]) for s in
                                   _REFERRAL_NEXT.get(ReferralStatus(full.get("status") or "open"), ())]})
    return {"code": code, "name": snap.district_name(code), "case": case, "version": int(concern["version"]),
            "referrals": referrals, "today": today.isoformat(), "options": _options()}


def meeting_page(store: Store, code: str, meeting_id: str, access: Access) -> dict:
    """One meeting: attendees by role (counts) and their names, the households discussed and what
    was decided for each."""
    check_access(access, code)
    snap = current(store)
    check_district(snap, code)
    try:
        meeting = store.read_row(CareLayer.MEETINGS, meeting_id, access=access)
    except NotFoundError:
        raise NotFoundError("その会議の記録はありません（または閲覧の権限がありません）") from None
    if meeting.get("district_code") != code:
        raise NotFoundError("その会議の記録はありません（または閲覧の権限がありません）")
    rows = read_care(store, access, district=code, layers=(CareLayer.CONCERNS, CareLayer.DECISIONS))
    rows.meetings = [meeting]
    return {"code": code, "name": snap.district_name(code), "meeting": meeting_rows(rows)[0]}


def overview_page(store: Store, access: Access, *, today: dt.date | None = None) -> dict:
    """The coordinators' overview (コーディネーター, 市職員): per district the open cases, overdue
    reviews, cases without a responsible person, evacuation decisions waiting for the register,
    this fiscal year's meetings; and the lists behind those counts."""
    check_planner(access)
    snap = current(store)
    today = today or today_jst()
    rows = read_care(store, access)
    pending = [d for d in rows.decisions if d.get("kind") == DecisionKind.EVACUATION
               and d.get("register_status") == RegisterStatus.PENDING]
    if pending and rows.people is None and Layer.REGISTER in store.layers():
        rows.people = {str(p["person_id"]): p for p in read_records(store, Layer.REGISTER, access)}
        _redact(rows, access)
        pending = [d for d in rows.decisions if d.get("kind") == DecisionKind.EVACUATION
                   and d.get("register_status") == RegisterStatus.PENDING]
    cases = [c for c in build_cases(rows, today=today) if c["status"] == CaseStatus.OPEN]
    for c in cases:
        c["href"] = f"/districts/{c['district_code']}/care/case?id={c['concern_id']}"
    year = fiscal_year(today)
    meetings = meeting_rows(rows)
    per: dict[str, dict] = {code: {"code": code, "name": snap.district_name(code), "open": 0, "overdue": 0,
                                   "no_responsible": 0, "pending": 0, "meetings": 0, "participants": 0,
                                   "last_meeting": None} for code in snap.codes}
    for c in cases:
        d = per.get(c["district_code"])
        if d is not None:
            d["open"] += 1
            d["overdue"] += c["overdue"]
            d["no_responsible"] += c["no_responsible"]
    for m in meetings:
        d = per.get(m["district_code"])
        if d is None or not m["held_on"]:
            continue
        d["last_meeting"] = max(d["last_meeting"] or "", m["held_on"])
        if fiscal_year(dt.date.fromisoformat(m["held_on"])) == year:
            d["meetings"] += 1
            d["participants"] += m["participants"] or 0
    for p in pending:
        if p.get("district_code") in per:
            per[p["district_code"]]["pending"] += 1
    people = rows.people or {}
    names = {str(c["concern_id"]): c.get("household") for c in rows.concerns}
    waiting = [{"decision_id": p["decision_id"], "district_code": p["district_code"],
                "district_name": snap.district_name(p["district_code"]) if p["district_code"] in per else "",
                "household": names.get(str(p.get("concern_id")), ""),
                "person": (people.get(str(p.get("person_id"))) or {}).get("name", ""),
                "supporter": p.get("who_name") or p.get("cooperator_id"),
                "action": label(EVACUATION_JA, p.get("evacuation")), "by": p.get("decided_by"),
                "at": str(p.get("decided_at") or "")[:10]} for p in pending]
    totals = {k: sum(d[k] for d in per.values()) for k in ("open", "overdue", "no_responsible", "pending",
                                                           "meetings", "participants")}
    return {"districts": list(per.values()), "totals": totals, "year_label": fiscal_year_label(year),
            "overdue": sorted([c for c in cases if c["overdue"]], key=lambda c: c["next_review"] or ""),
            "no_responsible": [c for c in cases if c["no_responsible"]],
            "pending": waiting, "today": today.isoformat(),
            "district_names": {code: snap.district_name(code) for code in snap.codes}}


# --- the printed meeting sheet --------------------------------------------------------------------------

def meeting_sheet_pdf(store: Store, code: str, access: Access, *, today: dt.date | None = None,
                      printed_at: dt.datetime | None = None) -> bytes:
    """The printable sheet of the district's next safety-net meeting (取扱注意): the open cases to
    review (overdue and most urgent first) with their last decisions and blank lines for today's,
    attendance boxes, and a blank table for households noticed since. Read as the viewer (logged)."""
    check_access(access, code)
    snap = current(store)
    check_district(snap, code)
    today = today or today_jst()
    rows = read_care(store, access, district=code, people=True)
    cases = [c for c in build_cases(rows, today=today) if c["status"] == CaseStatus.OPEN]
    households = [SheetHousehold(
        number=i, household=c["household"], address=c["address"], kinds=c["kinds_ja"],
        urgency=c["urgency_ja"], responsible=c["responsible"] or "未定",
        next_review=japanese_date(c["next_review"], short=True) if c["next_review"] else "未定",
        overdue=c["overdue"], person=c["person_name"] or "",
        watching=c["role_map"].get(DecisionKind.WATCHING, ""),
        life="、".join(t for k, t in c["role_map"].items()
                      if k in care.LIFE_ROLES or k.startswith("life_other:")),
        evacuation=c["role_map"].get(DecisionKind.EVACUATION, ""),
        last=_sheet_events(c))
        for i, c in enumerate(cases, start=1)]
    sheet = MeetingSheet(code=code, name=snap.district_name(code),
                         year_label=fiscal_year_label(fiscal_year(today)),
                         user=access.user, printed_at=printed_at or dt.datetime.now(dt.UTC),
                         attendee_roles=[care.CARE_ROLE_SHORT[r] for r in ATTENDEE_COLUMNS],
                         households=households, synthetic=bool(snap.meta.get("synthetic")) and
                         snap.meta.get("synthetic") not in ("", "false", "False", "0"))
    return render_meeting_sheet(sheet)


def _sheet_events(case: dict) -> list[str]:
    """The last three events of a case for the sheet's 経過 (meetings by their 共有 row, visits,
    calls, referrals); the noticing itself when nothing happened since."""
    events = [f"{japanese_date(e['date'], short=True)} {e['what']}: {e['text']}" for e in case["history"]
              if e["what"] != "気づき" and e.get("kind") in (None, DecisionKind.SHARED)][:3]
    return events or [f"{japanese_date(case['noticed_on'], short=True)} 気づき: "
                      f"{case['summary'] or case['noticed_by']}"]


def _year_of(day) -> int | None:
    """The fiscal year of an ISO date (None without one)."""
    return fiscal_year(dt.date.fromisoformat(str(day)[:10])) if day else None


# --- counts: the public, and the indicators of the years -----------------------------------------------

def _trusted(store: Store, layer: str, municipality: str | None) -> list[dict]:
    """Rows of a care layer read by the trusted pipeline, for counts only (never shown)."""
    if layer not in store.layers():
        return []
    return store.read_records(layer, municipality=municipality)


def fiscal_year_counts(store: Store, fiscal_year: int, *, municipality: str | None) -> dict[str, int]:
    """Counts of fiscal year ``fiscal_year`` (April to March) in ``municipality``
    (:func:`karte.indicators.care_counts`: meetings held, participants, households discussed,
    cases opened and closed). The trusted read of the pipeline (:mod:`karte.domain.access`):
    counts only, nothing else leaves this function; the activity indicators count the same way."""
    meetings = pd.DataFrame(_trusted(store, CareLayer.MEETINGS, municipality))
    concerns = pd.DataFrame(_trusted(store, CareLayer.CONCERNS, municipality))
    return care_counts(meetings, concerns, fiscal_year)


def public_summary(store: Store, access: Access, *, year: int | None = None, max_small: int = 2,
                   today: dt.date | None = None) -> dict:
    """Counts per district and kind, for everyone: open cases by kind of concern, cases opened and
    closed, meetings, participants and households discussed in fiscal ``year`` (default: this one).

    The public (and the prefecture level) get counts of households and people from 1 to
    ``max_small`` as :data:`~karte.domain.access.SUPPRESSED`, and a city total is hidden too when a
    district's count in it is, so it cannot be recomputed from the others. Counts only: read by
    the trusted pipeline, no row is returned."""
    snap = current(store)
    municipality = access.municipality or snap.meta.get("municipality") or _only_municipality(snap)
    year = year if year is not None else fiscal_year(today or today_jst())
    start, end = dt.date(year, 4, 1).isoformat(), dt.date(year + 1, 3, 31).isoformat()
    concerns = _trusted(store, CareLayer.CONCERNS, municipality)
    meetings = _trusted(store, CareLayer.MEETINGS, municipality)
    kinds = [str(k) for k in CONCERN_JA]
    per = {code: {"open": 0, **{f"open_{k}": 0 for k in kinds}, "opened": 0, "closed": 0, "meetings": 0,
                  "participants": 0, "households": 0} for code in snap.codes}
    for c in concerns:
        d = per.get(c.get("district_code"))
        if d is None:
            continue
        if (c.get("status") or "open") == CaseStatus.OPEN:
            d["open"] += 1
            for k in split_list(c.get("kinds")):
                if f"open_{k}" in d:
                    d[f"open_{k}"] += 1
        if start <= str(c.get("noticed_on") or "") <= end:
            d["opened"] += 1
        if c.get("status") == CaseStatus.CLOSED and start <= str(c.get("closed_on") or "") <= end:
            d["closed"] += 1
    for m in meetings:
        d = per.get(m.get("district_code"))
        if d is None or not (start <= str(m.get("held_on") or "") <= end):
            continue
        d["meetings"] += 1
        d["participants"] += int(m.get("participants") or 0)
        d["households"] += int(m.get("households") or 0)
    columns = list(next(iter(per.values())).keys()) if per else []
    city = {k: sum(d[k] for d in per.values()) for k in columns}
    public = access.level in (Level.PUBLIC, Level.PREFECTURE)
    if public:
        people = [k for k in columns if k != "meetings"]  # meetings are events, not people
        for d in per.values():
            for k in people:
                d[k] = small(d[k], max_small)
        for k in people:  # complementary: one hidden district in a column would follow from the total
            if any(d[k] == SUPPRESSED for d in per.values()):
                city[k] = SUPPRESSED
    return {"fiscal_year": year, "fiscal_year_label": fiscal_year_label(year),
            "kinds": {k: CONCERN_JA[care.ConcernKind(k)] for k in kinds},
            "suppressed_up_to": max_small if public else None,
            "districts": [{"code": code, "name": snap.district_name(code),
                           **per[code]} for code in snap.codes],
            "city": city}


def _only_municipality(snap: Snapshot) -> str | None:
    codes = snap.districts.get("municipality_code")
    values = set(codes.dropna()) if codes is not None else set()
    return next(iter(values)) if len(values) == 1 else None


# --- lists and ledgers for the command line and downloads ------------------------------------------------

def case_list(store: Store, access: Access, *, district: str | None = None, open_only: bool = False,
              today: dt.date | None = None) -> list[dict]:
    """The cases the viewer may see (of ``district``), JSON-ready: ``karte cases``."""
    snap = current(store)
    if district is not None:
        check_district(snap, district)
    rows = read_care(store, access, district=district)
    cases = build_cases(rows, today=today or today_jst())
    keep = ("concern_id", "district_code", "household", "address", "kinds", "urgency", "status", "noticed_on",
            "noticed_by", "responsible", "next_review", "overdue", "no_responsible", "roles", "last_visit",
            "last_meeting", "person_id", "closed_on", "close_reason_ja", "next_step")
    return [{k: c[k] for k in keep} for c in cases if not open_only or c["status"] == CaseStatus.OPEN]


def meeting_list(store: Store, access: Access, *, district: str | None = None,
                 year: int | None = None) -> list[dict]:
    """The meetings the viewer may see (of ``district``, of fiscal ``year``), JSON-ready, with the
    households discussed and the decisions: ``karte meetings``."""
    snap = current(store)
    if district is not None:
        check_district(snap, district)
    rows = read_care(store, access, district=district, layers=(CareLayer.MEETINGS, CareLayer.DECISIONS,
                                                                CareLayer.CONCERNS))
    out = []
    for m in meeting_rows(rows):
        if year is not None and _year_of(m["held_on"]) != year:
            continue
        out.append({**m, "attendees": dict(m["attendees"]), "fiscal_year": fiscal_year(
            dt.date.fromisoformat(m["held_on"])) if m["held_on"] else None})
    return out


def ledger_table(store: Store, access: Access, kind: str, *, district: str | None = None) -> tuple[list[str],
                                                                                                   list[list]]:
    """A ledger (``meetings`` or ``concerns``) in the headers ``karte import`` reads: (headers, rows),
    read as the viewer (logged). A concern's 対応 holds its follow-up actions, oldest first."""
    if kind not in ("meetings", "concerns"):
        raise InputError("台帳の種類は meetings か concerns です")
    snap = current(store)
    if district is not None:
        check_district(snap, district)
    fields = ledger_headers(kind)
    layers = (CareLayer.MEETINGS,) if kind == "meetings" else (CareLayer.CONCERNS, CareLayer.ACTIONS)
    rows = read_care(store, access, district=district, layers=layers)
    out = []
    if kind == "meetings":
        for m in sorted(rows.meetings, key=lambda m: (str(m.get("held_on") or ""), str(m["meeting_id"]))):
            out.append([m.get(name) for name, _ in fields])
        return [h for _, h in fields], out
    actions: dict[str, list[dict]] = defaultdict(list)
    for a in rows.actions:
        actions[str(a.get("concern_id"))].append(a)
    for c in sorted(rows.concerns, key=lambda c: (str(c.get("noticed_on") or ""), str(c["concern_id"]))):
        done = sorted(actions.get(str(c["concern_id"]), []), key=lambda a: (str(a.get("acted_on") or ""),
                                                                          _order(a, "recorded_at",
                                                                                 "action_id")))
        values = {**c, "noticed_by": c.get("noticed_by_name") or label(CARE_ROLE_JA,
                                                                       c.get("noticed_by_role")),
                  "noticed_by_role": label(CARE_ROLE_JA, c.get("noticed_by_role")),
                  "kinds": ";".join(label(CONCERN_JA, k) for k in split_list(c.get("kinds"))),
                  "urgency": label(URGENCY_SHORT, c.get("urgency")),
                  "status": label(care.CASE_STATUS_JA, c.get("status") or "open"),
                  "close_reason": label(CLOSE_REASON_JA, c.get("close_reason")),
                  "responsible": c.get("responsible_name") or "",
                  "response": "／".join(a.get("note") or label(ACTION_JA, a.get("kind")) for a in done)}
        out.append([values.get(name) for name, _ in fields])
    return [h for _, h in fields], out


# --- the outreach page's places --------------------------------------------------------------------------

def open_concerns_by_area(store: Store, access: Access) -> dict[str, dict]:
    """Per small area (``key_code``): the open cases there and the last visit to any of them, as
    the viewer may see them (for the outreach ranking; read as the viewer, logged)."""
    check_planner(access)
    rows = read_care(store, access, layers=(CareLayer.CONCERNS, CareLayer.ACTIONS))
    open_ids = {str(c["concern_id"]): c.get("key_code") for c in rows.concerns
                if (c.get("status") or "open") == CaseStatus.OPEN and c.get("key_code")}
    out: dict[str, dict] = {}
    for key in open_ids.values():
        out.setdefault(key, {"open_concerns": 0, "last_visit": None})["open_concerns"] += 1
    for a in rows.actions:
        key = open_ids.get(str(a.get("concern_id")))
        if key and a.get("kind") == care.ActionKind.VISIT and a.get("acted_on"):
            slot = out[key]
            slot["last_visit"] = max(slot["last_visit"] or "", a["acted_on"])
    return out
