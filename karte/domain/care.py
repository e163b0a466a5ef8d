"""Households of concern: 気づき → つなぐ → 共有 → 支援, district safety-net meetings and follow-up.

Oshu's chain of district welfare (seed plan 000): ご近所福祉スタッフ notice a household (気づき),
民生委員・児童委員 connect it (つなぐ), the district's 地域セーフティネット会議 shares it and decides who
watches, who helps with daily life and who helps it evacuate (共有), and the coordinators support it
until its problem is solved (支援; Ichinoseki, seed plan 001: 生活課題が解決するまでの支援).

Five personal record layers, every row with ``municipality_code`` and ``district_code`` (row-level
security reads both; district members write and read their own district, coordinators and city
staff their municipality, the public and the prefecture level nothing):

* :data:`CareLayer.CONCERNS` (気づき): one row per household of concern: who noticed it, when,
  where (a point: the address geocoded like the register, a point on the map, or the register
  entry's), the kinds of concern, the urgency, a link to a register entry when the person is on
  it. The row is the **case**: open until it is closed with a reason (支援が終わるまで).
* :data:`CareLayer.REFERRALS` (つなぐ): from whom to whom (a 民生委員, a coordinator, the
  地域包括支援センター, the city), with a status (依頼中 → 受理 → 完了) and its dates.
* :data:`CareLayer.MEETINGS` (共有): a safety-net meeting: district, date, place, attendees by
  role as counts (``attendees_<role>``), their names, participants and households discussed.
* :data:`CareLayer.DECISIONS`: what a meeting decided per household: a watching role (who, how
  often), daily-life roles (雪かき, ゴミ出し, 買い物, other: who), evacuation support confirmed or
  changed (linked to the register's ``supporter_ids``), the responsible person, the next review.
  Rows are only ever appended: two people deciding on one household at the same moment both keep
  their rows (never a silent loss).
* :data:`CareLayer.ACTIONS` (支援): what was done (visits, calls, connecting to a service), when and
  by whom, and the next review.

The vocabularies below are the one place their codes and Japanese labels live.
"""

from __future__ import annotations

from enum import StrEnum

from karte.domain.layers import MUNICIPALITY, Column, LayerSpec


class CareLayer(StrEnum):
    """The record layers of households of concern and safety-net meetings."""

    CONCERNS = "care_concerns"      # 気づき: households of concern (the cases)
    REFERRALS = "care_referrals"    # つなぐ
    MEETINGS = "care_meetings"      # 共有: 地域セーフティネット会議
    DECISIONS = "care_decisions"    # what a meeting decided per household
    ACTIONS = "care_actions"        # 支援: follow-up actions


class CareRole(StrEnum):
    """Who notices, attends, is responsible or acts (a named role, not a person)."""

    NEIGHBOURHOOD_STAFF = "neighbourhood_staff"            # ご近所福祉スタッフ
    WELFARE_COMMISSIONER = "welfare_commissioner"          # 民生委員・児童委員
    NEIGHBOURHOOD_ASSOCIATION = "neighbourhood_association"  # 町会・町内会
    COUNCIL = "council"                                    # 地区社協
    CSW = "csw"                                            # 地域福祉コーディネーター（CSW）
    COMMUNITY_SUPPORT_CENTRE = "community_support_centre"  # 地域包括支援センター
    CITY = "city"                                          # 市
    OTHER = "other"                                        # その他


CARE_ROLE_JA = {
    CareRole.NEIGHBOURHOOD_STAFF: "ご近所福祉スタッフ",
    CareRole.WELFARE_COMMISSIONER: "民生委員・児童委員",
    CareRole.NEIGHBOURHOOD_ASSOCIATION: "町会・町内会",
    CareRole.COUNCIL: "地区社協",
    CareRole.CSW: "地域福祉コーディネーター（CSW）",
    CareRole.COMMUNITY_SUPPORT_CENTRE: "地域包括支援センター",
    CareRole.CITY: "市",
    CareRole.OTHER: "その他",
}

#: Short role names where space is tight (the printed attendance boxes).
CARE_ROLE_SHORT = {
    CareRole.NEIGHBOURHOOD_STAFF: "ご近所福祉スタッフ", CareRole.WELFARE_COMMISSIONER: "民生委員",
    CareRole.NEIGHBOURHOOD_ASSOCIATION: "町会", CareRole.COUNCIL: "地区社協", CareRole.CSW: "CSW",
    CareRole.COMMUNITY_SUPPORT_CENTRE: "地域包括", CareRole.CITY: "市", CareRole.OTHER: "その他",
}


class ConcernKind(StrEnum):
    """Kinds of concern (気になること); a household may have several."""

    ISOLATION = "isolation"      # 孤立・閉じこもり
    HIKIKOMORI = "hikikomori"    # ひきこもり
    POVERTY = "poverty"          # 生活困窮
    DEMENTIA = "dementia"        # 認知症の疑い
    ABUSE = "abuse"              # 虐待の疑い
    HOARDING = "hoarding"        # ごみ屋敷
    WATCHING = "watching"        # 見守りが必要
    EVACUATION = "evacuation"    # 災害時の避難に不安
    OTHER = "other"              # その他


CONCERN_JA = {
    ConcernKind.ISOLATION: "孤立・閉じこもり",
    ConcernKind.HIKIKOMORI: "ひきこもり",
    ConcernKind.POVERTY: "生活困窮",
    ConcernKind.DEMENTIA: "認知症の疑い",
    ConcernKind.ABUSE: "虐待の疑い",
    ConcernKind.HOARDING: "ごみ屋敷",
    ConcernKind.WATCHING: "見守りが必要",
    ConcernKind.EVACUATION: "災害時の避難に不安",
    ConcernKind.OTHER: "その他",
}


class Urgency(StrEnum):
    """How soon someone should act."""

    HIGH = "high"        # 高: すぐに
    MEDIUM = "medium"    # 中: 次の会議までに
    LOW = "low"          # 低: 見守りを続ける


URGENCY_JA = {Urgency.HIGH: "高（すぐに対応）", Urgency.MEDIUM: "中", Urgency.LOW: "低（見守り）"}
URGENCY_SHORT = {Urgency.HIGH: "高", Urgency.MEDIUM: "中", Urgency.LOW: "低"}


class CaseStatus(StrEnum):
    OPEN = "open"        # 対応中
    CLOSED = "closed"    # 終了


CASE_STATUS_JA = {CaseStatus.OPEN: "対応中", CaseStatus.CLOSED: "終了"}


class CloseReason(StrEnum):
    """Why a case ended (支援の終了理由)."""

    SOLVED = "solved"              # 課題が解決した
    CONNECTED = "connected"        # 制度・サービスにつながった
    MOVED = "moved"                # 転居
    INSTITUTION = "institution"    # 施設入所・入院
    DECEASED = "deceased"          # 死亡
    DECLINED = "declined"          # 本人が支援を望まない
    OTHER = "other"                # その他


CLOSE_REASON_JA = {
    CloseReason.SOLVED: "課題が解決した",
    CloseReason.CONNECTED: "制度・サービスにつながった",
    CloseReason.MOVED: "転居",
    CloseReason.INSTITUTION: "施設入所・入院",
    CloseReason.DECEASED: "死亡",
    CloseReason.DECLINED: "本人が支援を望まない",
    CloseReason.OTHER: "その他",
}


class ReferralTarget(StrEnum):
    """To whom a household is connected (つなぐ先)."""

    WELFARE_COMMISSIONER = "welfare_commissioner"          # 民生委員・児童委員
    CSW = "csw"                                            # 地域福祉コーディネーター
    COMMUNITY_SUPPORT_CENTRE = "community_support_centre"  # 地域包括支援センター
    CITY = "city"                                          # 市（担当課）


REFERRAL_TARGET_JA = {
    ReferralTarget.WELFARE_COMMISSIONER: "民生委員・児童委員",
    ReferralTarget.CSW: "地域福祉コーディネーター",
    ReferralTarget.COMMUNITY_SUPPORT_CENTRE: "地域包括支援センター",
    ReferralTarget.CITY: "市（担当課）",
}


class ReferralStatus(StrEnum):
    OPEN = "open"            # 依頼中
    ACCEPTED = "accepted"    # 受理
    CLOSED = "closed"        # 完了


REFERRAL_STATUS_JA = {ReferralStatus.OPEN: "依頼中", ReferralStatus.ACCEPTED: "受理",
                      ReferralStatus.CLOSED: "完了"}


class DecisionKind(StrEnum):
    """What a safety-net meeting decided for a household (one row each)."""

    SHARED = "shared"            # 共有した（役割の変更なし）
    WATCHING = "watching"        # 見守り: who, how often
    SNOW = "snow"                # 雪かき: who
    RUBBISH = "rubbish"          # ゴミ出し: who
    SHOPPING = "shopping"        # 買い物: who
    LIFE_OTHER = "life_other"    # その他の生活支援: what, who
    EVACUATION = "evacuation"    # 避難支援: supporter confirmed or changed
    RESPONSIBLE = "responsible"  # 担当者


DECISION_JA = {
    DecisionKind.SHARED: "共有",
    DecisionKind.WATCHING: "見守り",
    DecisionKind.SNOW: "雪かき",
    DecisionKind.RUBBISH: "ゴミ出し",
    DecisionKind.SHOPPING: "買い物",
    DecisionKind.LIFE_OTHER: "その他の生活支援",
    DecisionKind.EVACUATION: "避難支援",
    DecisionKind.RESPONSIBLE: "担当者",
}
#: Daily-life roles (見守り・生活支援の役割分担): a "who" each.
LIFE_ROLES = (DecisionKind.SNOW, DecisionKind.RUBBISH, DecisionKind.SHOPPING)


class Frequency(StrEnum):
    """How often a household is watched (見守りの頻度)."""

    DAILY = "daily"
    FEW_WEEKLY = "few_weekly"
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"
    AS_NEEDED = "as_needed"


FREQUENCY_JA = {Frequency.DAILY: "毎日", Frequency.FEW_WEEKLY: "週2〜3回", Frequency.WEEKLY: "週1回",
                Frequency.BIWEEKLY: "隔週", Frequency.MONTHLY: "月1回", Frequency.AS_NEEDED: "随時"}


class Evacuation(StrEnum):
    """An evacuation-support decision on a register entry's supporters."""

    CONFIRMED = "confirmed"  # 支援者を確認（加える／そのまま）
    CHANGED = "changed"      # 支援者を変更（前の支援者を外して加える）


EVACUATION_JA = {Evacuation.CONFIRMED: "支援者を確認", Evacuation.CHANGED: "支援者を変更"}


class RegisterStatus(StrEnum):
    """Where an evacuation decision stands against the register (``register.supporter_ids``)."""

    APPLIED = "applied"      # 名簿に反映済み
    PENDING = "pending"      # コーディネーターの確認待ち (recorded by a district member)
    REJECTED = "rejected"    # 反映しない (the coordinator declined it)


REGISTER_STATUS_JA = {RegisterStatus.APPLIED: "名簿に反映済み",
                      RegisterStatus.PENDING: "名簿への反映待ち（コーディネーターの確認）",
                      RegisterStatus.REJECTED: "名簿に反映しない"}


class ActionKind(StrEnum):
    """Follow-up actions (支援の記録)."""

    VISIT = "visit"          # 訪問
    PHONE = "phone"          # 電話
    REFERRAL = "referral"    # 関係機関へつないだ
    SERVICE = "service"      # 制度・サービスの利用
    CASE_MEETING = "case_meeting"  # ケース検討会議 (Aomori's CSW)
    OTHER = "other"          # その他


ACTION_JA = {ActionKind.VISIT: "訪問", ActionKind.PHONE: "電話", ActionKind.REFERRAL: "関係機関へつないだ",
             ActionKind.SERVICE: "制度・サービスの利用", ActionKind.CASE_MEETING: "ケース検討会議",
             ActionKind.OTHER: "その他"}

#: Attendee count columns of a meeting, one per role (``attendees_neighbourhood_staff`` …).
ATTENDEE_COLUMNS = {role: f"attendees_{role.value}" for role in CareRole}

#: Who writes and changes the rows: everyone who sees them, district members in their district.
_WRITERS = ("city_staff", "coordinator", "district_member")


def _spec(layer: CareLayer, key: str, title_ja: str, prefix: str, columns: tuple[Column, ...], *,
          geometry: str | None = None) -> LayerSpec:
    return LayerSpec(layer, key, title_ja, personal=True, records=True, id_prefix=prefix,
                     geometry=geometry, writers=_WRITERS, updaters=_WRITERS,
                     columns=(Column(key), Column(MUNICIPALITY), Column("district_code"), *columns))


#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = (
    _spec(CareLayer.CONCERNS, "concern_id", "気になる世帯（気づき）", "CN", (
        Column("household"), Column("address"), Column("location_precision"), Column("key_code"),
        Column("person_id"), Column("kinds"), Column("urgency"), Column("summary"),
        Column("noticed_on"), Column("noticed_by_role"), Column("noticed_by_name"),
        Column("noticed_by_cooperator_id"), Column("responsible_role"), Column("responsible_name"),
        Column("next_review"), Column("status"), Column("closed_on"), Column("close_reason"),
        Column("close_note"), Column("recorded_by"), Column("recorded_at")), geometry="Point"),
    _spec(CareLayer.REFERRALS, "referral_id", "つなぎ（紹介）", "RF", (
        Column("concern_id"), Column("referred_on"), Column("from_role"), Column("from_name"),
        Column("to_kind"), Column("to_name"), Column("status"), Column("accepted_on"),
        Column("closed_on"), Column("note"), Column("recorded_by"), Column("recorded_at"))),
    _spec(CareLayer.MEETINGS, "meeting_id", "地域セーフティネット会議", "MT", (
        Column("held_on"), Column("place"), Column("participants", "integer"),
        *(Column(c, "integer") for c in ATTENDEE_COLUMNS.values()),
        Column("attendee_names"), Column("households", "integer"), Column("summary"),
        Column("recorded_by"), Column("recorded_at"))),
    _spec(CareLayer.DECISIONS, "decision_id", "会議での決定（世帯ごと）", "MD", (
        Column("meeting_id"), Column("concern_id"), Column("kind"), Column("who_role"),
        Column("who_name"), Column("cooperator_id"), Column("frequency"), Column("detail"),
        Column("person_id"), Column("evacuation"), Column("replaces_id"), Column("register_status"),
        Column("next_review"), Column("decided_by"), Column("decided_at"))),
    _spec(CareLayer.ACTIONS, "action_id", "支援の記録", "AC", (
        Column("concern_id"), Column("acted_on"), Column("kind"), Column("actor_role"),
        Column("actor_name"), Column("note"), Column("next_review"), Column("recorded_by"),
        Column("recorded_at"))),
)

#: Layer name -> registry entry, for this topic's code.
SPECS: dict[str, LayerSpec] = {str(s.name): s for s in LAYERS}


def label(table: dict, value, default: str = "") -> str:
    """The Japanese label of a vocabulary code (``value`` itself for an unknown one)."""
    if value is None or value == "":
        return default
    for key, text in table.items():
        if str(key) == str(value):
            return text
    return str(value)


#: Japanese eras (元号) and their first day, newest first (dates are shown in 和暦 with 西暦).
_ERAS = (("令和", "R", (2019, 5, 1)), ("平成", "H", (1989, 1, 8)), ("昭和", "S", (1926, 12, 25)))


def japanese_date(value, *, short: bool = False) -> str:
    """An ISO date as people read it: ``2027-02-10`` -> ``令和9年2月10日（2027-02-10）``, or with
    ``short`` ``R9.2.10（2027-02-10）``; empty for no date, the text itself when it is not one."""
    if value is None or value == "":
        return ""
    text = str(value)[:10]
    try:
        year, month, day = (int(p) for p in text.split("-"))
    except ValueError:
        return str(value)
    for name, letter, start in _ERAS:
        if (year, month, day) >= start:
            n = year - start[0] + 1
            if short:
                return f"{letter}{n}.{month}.{day}（{text}）"
            return f"{name}{'元' if n == 1 else n}年{month}月{day}日（{text}）"
    return text
