"""Individual evacuation plans (個別避難計画), drills and safety confirmation, disaster mode.

The record layers of this topic (:class:`karte.domain.layers.LayerSpec`), added to the one
registry by :mod:`karte.domain.layers`, and the topic's own vocabularies.

* ``evacuation_plans`` (personal, read by the build snapshot): one plan per support-needer, the
  items municipalities use (災害対策基本法 第49条の14: who helps, where to and how, what care is
  needed, the emergency contact) with its own consent to share the plan (第49条の15). The
  register's plan status (作成済 / 作成中 / 未作成) is *derived* from it: a person with a plan in
  karte has the plan's status, a person without one keeps the status the city imported. Plans are
  found by ``person_id`` (ids come from the store); should two ever exist for one person (two
  servers saving the first plan at the same moment), the one with the lowest id is the plan
  (:func:`first_plans`), everywhere.
* ``drills`` (personal: it names who started and ended it): a safety-confirmation or
  evacuation-guidance drill (安否確認訓練・避難誘導訓練) of one or more districts, started and ended
  by city staff or a coordinator. The lead district is ``district_code``, all of them
  ``districts``; the layer has no district rule (a drill spans districts: every user with
  personal rows reads their municipality's drills, the services show a district member those of
  their district).
* ``drill_marks`` (personal): one row per mark a supporter or district member made on their
  phone: whom, which status, when on the device, when received, by whom, and ``client_id``, the
  id the device gave the mark. Marks are only ever added; the latest mark of a person is their
  status. A mark the device sends again (after a dropped connection) is recognised by its
  ``client_id`` and not stored again; every count keeps one mark per ``client_id``
  (:func:`unique_marks`), so even two copies written by two servers at the same instant count
  once.
* ``drill_lessons`` (personal: free text may name people): what the drill taught.
* ``disaster_modes`` (personal: it names who switched; read by the build snapshot): a district
  in disaster mode (第49条の11第3項:
  in a disaster the register may be given to the supporters without consent to protect life),
  from ``started_at`` until ``stopped_at`` (by hand) or ``ends_at`` (the set time). A whole-city
  start writes one row per district, so a district can end before the others.
"""

from __future__ import annotations

from enum import StrEnum

from karte.domain.layers import MUNICIPALITY, Column, LayerSpec

#: Layer names of this topic.
PLANS = "evacuation_plans"
DRILLS = "drills"
MARKS = "drill_marks"
LESSONS = "drill_lessons"
MODES = "disaster_modes"

#: Plans, marks and lessons are written by the people who make them: coordinators and city staff
#: anywhere, district members in their own district (:meth:`karte.domain.access.Access.may_write`).
PEOPLE_WHO_PLAN = ("city_staff", "coordinator", "district_member")
#: Drills are started and ended by city staff or a coordinator.
DRILL_LEADERS = ("city_staff", "coordinator")

#: Id prefixes of plans and marks (the store numbers them: EP000001, MK000001).
PLAN_PREFIX = "EP"
MARK_PREFIX = "MK"


def first_plans(plans):
    """One plan per person (``(municipality_code, person_id)``) out of ``plans`` (dicts): the one
    with the lowest ``plan_id``."""
    out: dict[tuple, dict] = {}
    for plan in sorted(plans, key=lambda p: str(p.get("plan_id"))):
        out.setdefault((plan.get(MUNICIPALITY), str(plan.get("person_id"))), plan)
    return list(out.values())


def unique_marks(marks):
    """``marks`` (dicts, in the order to keep) with one mark per ``client_id`` (the first); marks
    without one are all kept."""
    seen: set = set()
    out = []
    for mark in marks:
        key = mark.get("client_id") or None
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(mark)
    return out


class MarkStatus(StrEnum):
    """What a supporter found when they went to a person during a drill (or a disaster)."""

    SAFE = "safe"                # 無事を確認
    EVACUATED = "evacuated"      # 避難済み
    ABSENT = "absent"            # 不在
    NEEDS_HELP = "needs_help"    # 支援が必要
    UNCONFIRMED = "unconfirmed"  # 未確認

    @property
    def ja(self) -> str:
        return MARK_JA[self]

    @property
    def confirmed(self) -> bool:
        """Was the person's state found out (safe, evacuated, or in need of help)? Absent and
        unconfirmed people are still to be reached."""
        return self in CONFIRMED


MARK_JA = {MarkStatus.SAFE: "無事を確認", MarkStatus.EVACUATED: "避難済み", MarkStatus.ABSENT: "不在",
           MarkStatus.NEEDS_HELP: "支援が必要", MarkStatus.UNCONFIRMED: "未確認"}
#: Map and button colours (colour-blind safe pairs, distinct in greyscale too).
MARK_COLOUR = {MarkStatus.SAFE: "#1b7837", MarkStatus.EVACUATED: "#2166ac", MarkStatus.ABSENT: "#e08214",
               MarkStatus.NEEDS_HELP: "#b2182b", MarkStatus.UNCONFIRMED: "#8c8c8c"}
#: The states in which a person counts as confirmed (reached).
CONFIRMED = frozenset({MarkStatus.SAFE, MarkStatus.EVACUATED, MarkStatus.NEEDS_HELP})
#: A person nobody has marked yet: shown as 未確認 in counts and on the map.
NOT_MARKED = MarkStatus.UNCONFIRMED


class DrillKind(StrEnum):
    """The two drills the plans ask districts to hold (地域で安否確認・避難誘導訓練を行う)."""

    SAFETY_CHECK = "safety_check"  # 安否確認訓練
    EVACUATION = "evacuation"      # 避難誘導訓練

    @property
    def ja(self) -> str:
        return DRILL_KIND_JA[self]


DRILL_KIND_JA = {DrillKind.SAFETY_CHECK: "安否確認訓練", DrillKind.EVACUATION: "避難誘導訓練"}


class EvacuationMeans(StrEnum):
    """How the person gets to safety (避難の方法)."""

    WALK = "walk"                      # 徒歩
    WALK_WITH_HELP = "walk_with_help"  # 付き添って徒歩
    WHEELCHAIR = "wheelchair"          # 車いす
    CAR = "car"                        # 自動車
    CARRIED = "carried"                # 担架・おんぶ
    STAY = "stay"                      # 自宅の上の階へ（垂直避難）

    @property
    def ja(self) -> str:
        return MEANS_JA[self]


MEANS_JA = {EvacuationMeans.WALK: "徒歩", EvacuationMeans.WALK_WITH_HELP: "付き添って徒歩",
            EvacuationMeans.WHEELCHAIR: "車いす", EvacuationMeans.CAR: "自動車",
            EvacuationMeans.CARRIED: "担架・おんぶ", EvacuationMeans.STAY: "自宅の上の階へ（垂直避難）"}

#: Hazard-area layers the plan ranking looks for (polygons a city puts in the store, e.g. from
#: 国土数値情報 洪水浸水想定区域 / 土砂災害警戒区域): hazard -> (layer, Japanese name).
HAZARD_LAYERS = {"flood": ("hazard_flood", "洪水浸水想定区域"),
                 "landslide": ("hazard_landslide", "土砂災害警戒区域")}

#: A plan is due for review this many months after it was made or last reviewed (unless its
#: ``review_due`` says otherwise); municipalities review yearly.
REVIEW_MONTHS = 12

#: The items of a plan as users read them, in form and print order (column -> label).
PLAN_ITEMS_JA = {
    "status": "作成状況",
    "needs": "配慮が必要なこと（心身の状況・コミュニケーション）",
    "medical": "医療・服薬・医療機器",
    "supporter_ids": "避難支援者",
    "supporter_note": "支援者の役割分担・連絡方法",
    "emergency_name": "緊急連絡先（氏名）",
    "emergency_relation": "緊急連絡先（続柄）",
    "emergency_phone": "緊急連絡先（電話）",
    "shelter_id": "避難先（指定避難所）",
    "destination_note": "避難先の補足（親戚宅など）",
    "means": "避難の方法",
    "route_note": "避難経路・注意する場所",
    "belongings": "持ち出す物",
    "consent": "計画の提供への同意",
    "consent_date": "同意日",
    "made_on": "作成日",
    "reviewed_on": "見直し日",
    "review_due": "次の見直し",
    "note": "備考",
}

_PLAN_TEXT = ("needs", "medical", "supporter_ids", "supporter_note", "emergency_name", "emergency_relation",
              "emergency_phone", "shelter_id", "destination_note", "means", "route_note", "belongings")

#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec(PLANS, "plan_id", "個別避難計画", personal=True, records=True, snapshot=True,
              id_prefix=PLAN_PREFIX, writers=PEOPLE_WHO_PLAN, columns=(
                  Column("plan_id"), Column("person_id"), Column(MUNICIPALITY), Column("district_code"),
                  Column("status"), *(Column(c) for c in _PLAN_TEXT), Column("consent"),
                  Column("consent_date"), Column("made_on"), Column("reviewed_on"), Column("review_due"),
                  Column("made_by"), Column("note"))),
    LayerSpec(DRILLS, "drill_id", "訓練", personal=True, records=True, id_prefix="DR", district_column=None,
              writers=DRILL_LEADERS, columns=(
        Column("drill_id"), Column(MUNICIPALITY), Column("district_code"), Column("districts"),
        Column("name"), Column("kind"), Column("started_at"), Column("ended_at"), Column("started_by"),
        Column("ended_by"), Column("note"))),
    LayerSpec(MARKS, "mark_id", "訓練の安否確認", personal=True, records=True, id_prefix=MARK_PREFIX,
              writers=PEOPLE_WHO_PLAN, updaters=("city_staff",), columns=(
                  Column("mark_id"), Column(MUNICIPALITY), Column("district_code"), Column("drill_id"),
                  Column("person_id"), Column("status"), Column("marked_at"), Column("received_at"),
                  Column("marked_by"), Column("client_id"), Column("note"))),
    LayerSpec(LESSONS, "lesson_id", "訓練の教訓", personal=True, records=True, id_prefix="LS",
              writers=PEOPLE_WHO_PLAN, columns=(
                  Column("lesson_id"), Column(MUNICIPALITY), Column("district_code"), Column("drill_id"),
                  Column("text"), Column("entered_by"), Column("entered_at"))),
    LayerSpec(MODES, "mode_id", "災害時モード", personal=True, records=True, snapshot=True, id_prefix="DM",
              writers=("city_staff",), columns=(
                  Column("mode_id"), Column(MUNICIPALITY), Column("district_code"), Column("scope"),
                  Column("started_at"), Column("ends_at"), Column("stopped_at"), Column("started_by"),
                  Column("stopped_by"), Column("reason"))),
)
