"""The controlled vocabularies of the data model, one registry each, with their Japanese labels.

One English name per concept, with the Japanese term beside it. Layer names and columns are in
:mod:`karte.domain.layers`; gap kinds in :mod:`karte.domain.gaps`. The full column-by-column
description lives in ``docs/data-model.md``; keep the two in step.
"""

from __future__ import annotations

from enum import StrEnum

from gis.vocab import Vocabulary


class Consent(StrEnum):
    """Consent to share the register entry with district supporters in normal times."""

    CONSENTED = "consented"          # 同意
    REFUSED = "refused"              # 不同意
    NO_ANSWER = "no_answer"          # 未回答
    ORDINANCE = "ordinance"          # 条例による推定同意 (deemed consent under a municipal ordinance)

    @property
    def ja(self) -> str:
        return CONSENT_JA[self]

    @property
    def shareable(self) -> bool:
        """May the row be shown to district supporters in normal times?"""
        return self in (Consent.CONSENTED, Consent.ORDINANCE)


CONSENT_JA = {
    Consent.CONSENTED: "同意",
    Consent.REFUSED: "不同意",
    Consent.NO_ANSWER: "未回答",
    Consent.ORDINANCE: "条例による推定同意",
}


class PlanStatus(StrEnum):
    """Individual evacuation plan (個別避難計画) status."""

    DONE = "done"            # 作成済
    IN_PROGRESS = "in_progress"  # 作成中
    NONE = "none"            # 未作成


PLAN_STATUS_JA = {PlanStatus.DONE: "作成済", PlanStatus.IN_PROGRESS: "作成中", PlanStatus.NONE: "未作成"}


class LocationPrecision(StrEnum):
    """How precisely a row's point is known."""

    EXACT = "exact"   # address point or coordinates given
    TOWN = "town"     # placed at its town's (町丁・字) representative point
    NONE = "none"     # no location


class Role(StrEnum):
    """Cooperator roles (共助協力者の区分)."""

    COUNCIL_OFFICER = "council_officer"            # 地区社協役員
    WELFARE_COMMISSIONER = "welfare_commissioner"  # 民生委員・児童委員
    CHIEF_CHILD_COMMISSIONER = "chief_child_commissioner"  # 主任児童委員
    COMMUNITY_SUPPORT_CENTRE = "community_support_centre"  # 地域包括支援センター職員
    NEIGHBOURHOOD_OFFICER = "neighbourhood_officer"  # 町会・町内会役員
    FIRE_CORPS = "fire_corps"                      # 消防団員
    WELFARE_SUPPORTER = "welfare_supporter"        # 地域福祉サポーター
    NEIGHBOURHOOD_STAFF = "neighbourhood_staff"    # ご近所福祉スタッフ (Oshu: notices, 気づき)


ROLE_JA = {
    Role.COUNCIL_OFFICER: "地区社協役員",
    Role.WELFARE_COMMISSIONER: "民生委員・児童委員",
    Role.CHIEF_CHILD_COMMISSIONER: "主任児童委員",
    Role.COMMUNITY_SUPPORT_CENTRE: "地域包括支援センター職員",
    Role.NEIGHBOURHOOD_OFFICER: "町会・町内会役員",
    Role.FIRE_CORPS: "消防団員",
    Role.WELFARE_SUPPORTER: "地域福祉サポーター",
    Role.NEIGHBOURHOOD_STAFF: "ご近所福祉スタッフ",
}


class HelpKind(StrEnum):
    """Kinds of help a cooperator offers (Aomori's 地域福祉サポーター categories)."""

    ELDERLY = "elderly"          # 高齢者支援
    DISABILITY = "disability"    # 障がい者支援
    CHILDCARE = "childcare"      # 子育て支援
    HEALTH = "health"            # 健康づくり
    WATCHING = "watching"        # 見守り
    SAFETY = "safety"            # 防犯・交通安全
    EVACUATION = "evacuation"    # 避難支援
    SNOW = "snow"                # 除雪
    TRANSPORT = "transport"      # 移送


HELP_JA = {
    HelpKind.ELDERLY: "高齢者支援",
    HelpKind.DISABILITY: "障がい者支援",
    HelpKind.CHILDCARE: "子育て支援",
    HelpKind.HEALTH: "健康づくり",
    HelpKind.WATCHING: "見守り",
    HelpKind.SAFETY: "防犯・交通安全",
    HelpKind.EVACUATION: "避難支援",
    HelpKind.SNOW: "除雪",
    HelpKind.TRANSPORT: "移送",
}


class ServiceKind(StrEnum):
    """Mutual-aid services (共助サービス)."""

    SALON = "salon"                  # サロン・茶話会
    WATCHING = "watching"            # 見守り・声がけ
    SNOW = "snow"                    # 雪かき
    RUBBISH = "rubbish"              # ゴミ出し
    SHOPPING = "shopping"            # 買い物
    CHILDCARE = "childcare"          # 短時間の託児
    PARENTING = "parenting"          # 子育て相談
    EXERCISE = "exercise"            # 運動教室
    HOBBY = "hobby"                  # 趣味の教室
    HEALTH = "health"                # 健康教室


SERVICE_JA = {
    ServiceKind.SALON: "サロン・茶話会",
    ServiceKind.WATCHING: "見守り・声がけ",
    ServiceKind.SNOW: "雪かき",
    ServiceKind.RUBBISH: "ゴミ出し",
    ServiceKind.SHOPPING: "買い物",
    ServiceKind.CHILDCARE: "短時間の託児",
    ServiceKind.PARENTING: "子育て相談",
    ServiceKind.EXERCISE: "運動教室",
    ServiceKind.HOBBY: "趣味の教室",
    ServiceKind.HEALTH: "健康教室",
}

#: Service frequency -> sessions per month (schedule is kept as one of these words).
FREQUENCY_PER_MONTH = {
    "weekly": 4.0,      # 毎週
    "biweekly": 2.0,    # 隔週
    "monthly": 1.0,     # 毎月
    "bimonthly": 0.5,   # 隔月
    "quarterly": 1 / 3,  # 年4回
    "on_request": 0.0,  # 随時・依頼に応じて
}
FREQUENCY_JA = {
    "weekly": "毎週", "biweekly": "隔週", "monthly": "毎月", "bimonthly": "隔月",
    "quarterly": "年4回", "on_request": "随時",
}

#: Hazard flag columns of emergency sites (GSI 指定緊急避難場所), English name -> source column.
HAZARDS = {
    "flood": "洪水",
    "landslide": "崖崩れ、土石流及び地滑り",
    "storm_surge": "高潮",
    "earthquake": "地震",
    "tsunami": "津波",
    "fire": "大規模な火事",
    "inland_flood": "内水氾濫",
    "volcano": "火山現象",
}

#: Age bands of the base statistics (基礎情報).
AGE_BANDS = ("age_0_14", "age_15_64", "age_65_74", "age_75_plus")
AGE_BANDS_JA = {
    "age_0_14": "0〜14歳", "age_15_64": "15〜64歳", "age_65_74": "65〜74歳", "age_75_plus": "75歳以上",
}


class Mobility(StrEnum):
    """How a support-needer moves (移動の状態)."""

    INDEPENDENT = "independent"        # 自立
    WALK_WITH_HELP = "walk_with_help"  # 歩行介助
    WHEELCHAIR = "wheelchair"          # 車いす
    BEDRIDDEN = "bedridden"            # 寝たきり

    @property
    def ja(self) -> str:
        return MOBILITY_JA[self]

    @property
    def needs_care(self) -> bool:
        """Needs care to evacuate (and so a welfare shelter)."""
        return self in (Mobility.WHEELCHAIR, Mobility.BEDRIDDEN)


MOBILITY_JA = {Mobility.INDEPENDENT: "自立", Mobility.WALK_WITH_HELP: "歩行介助",
               Mobility.WHEELCHAIR: "車いす", Mobility.BEDRIDDEN: "寝たきり"}


class Edition(StrEnum):
    """Editions (版) of the printed district sheet."""

    PUBLIC = "public"              # 公開版: no personal data, small counts suppressed
    CONFIDENTIAL = "confidential"  # 取扱注意: adds the consented register and the roster
    DRILL = "drill"                # 訓練用: register by supporter and by shelter, roll-call boxes

    @property
    def ja(self) -> str:
        return EDITION_JA[self]

    @property
    def personal(self) -> bool:
        """Does this edition list persons (and so need the right to see them)?"""
        return self is not Edition.PUBLIC


EDITION_JA = {Edition.PUBLIC: "公開版", Edition.CONFIDENTIAL: "取扱注意", Edition.DRILL: "訓練用・取扱注意"}

#: The JIS code (全国地方公共団体コード, 5 digits) of Aomori city, the shipped demo's municipality,
#: and the municipality a user or a row belongs to when nothing says otherwise
#: (``KARTE_MUNICIPALITY`` sets another for a deployment).
AOMORI_CITY = "02201"
DEFAULT_MUNICIPALITY = AOMORI_CITY

#: Names of the stand-in districts (not the councils' real areas) start with this.
STANDIN_PREFIX = "（仮）"

#: What every address of the shipped city begins with; lists print the rest.
CITY_PREFIX = "青森県青森市"


def short_address(address) -> str:
    """An address without :data:`CITY_PREFIX`, for lists and maps; ``""`` when there is none
    (None, NaN, pandas' NA or empty)."""
    if address is None:
        return ""
    try:
        if address != address:  # NaN
            return ""
    except TypeError:  # pandas.NA: its comparisons have no truth value
        return ""
    return str(address).removeprefix(CITY_PREFIX)


def is_standin(district_name) -> bool:
    """Is this a stand-in district (built by karte, not the council's own)?"""
    return str(district_name).startswith(STANDIN_PREFIX)


#: What the analyses in :mod:`gis` need to know of these vocabularies.
VOCABULARY = Vocabulary(
    consent_shareable={c.value: c.shareable for c in Consent},
    frequency_per_month=dict(FREQUENCY_PER_MONTH),
    care_mobility=frozenset(m.value for m in Mobility if m.needs_care),
    list_separator=";",
    evacuation_help=HelpKind.EVACUATION.value,
)


#: What a build's ``synthetic`` flags name (the demo's generated parts), as pages and sheets say it.
SYNTHETIC_JA = {
    "age_bands": "年齢構成", "register": "要支援者名簿", "cooperators": "共助協力者",
    "services": "共助サービス", "elderly_alone": "一人暮らし高齢者", "disabled": "障がい者",
}
