"""地域福祉サポーター: registration, help wanted, dispatch, activities and volunteer points.

Aomori's outline (``004_*``) proposes a register of residents who help in what they can do
(地域福祉サポーター), a volunteer centre that registers and dispatches them (登録・派遣; the CSW's
派遣調整), matching of "wanting to help" with "needing help" (助けたいニーズと助けられたいニーズの
マッチング) and volunteer points by the kind of help given (ボランティアポイント). This module holds
the topic's vocabularies (with their Japanese labels) and its record layers
(:class:`karte.domain.layers.LayerSpec`), added to the one registry by
:mod:`karte.domain.layers`:

==========================  ==================================================================
layer                       what
==========================  ==================================================================
``supporters``              the register of supporters: menu kinds, concrete activities,
                            availability (weekdays, hours, season), home point and reach,
                            capacity, status with dates, training (personal)
``help_requests``           help wanted by a resident: activity, recurrence, time windows,
                            place, the requester's register link, status (personal)
``supporter_dispatches``    a coordinator's confirmed match (派遣) of a supporter to a request
``supporter_activities``    what a supporter did for a dispatch: date, hours or visits, done
``point_ledger``            the volunteer points ledger: append-only, corrections only as
                            reversing entries (enforced by the database on PostGIS)
``snowfalls``               snowfalls recorded by the coordinators: "unmet after the last
                            snowfall" is measured from them (no district)
==========================  ==================================================================

Every row carries ``municipality_code`` and ``district_code`` (the district row-level security
reads). Who may see them: city staff every row of their municipality; coordinators every row of
their municipality (they register, match and dispatch); district members their own district's
rows (read only); the public and the prefecture level none (they get counts per district,
suppressed when small: :mod:`karte.services.supporters`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from enum import StrEnum

from karte.domain.layers import MUNICIPALITY, Column, LayerSpec, split_list

# --- vocabularies -----------------------------------------------------------------------------


class MenuKind(StrEnum):
    """The 想定メニュー of the 地域福祉サポーター outline: what a supporter registers for."""

    ELDERLY = "elderly"                    # 高齢者支援全般
    DISABILITY = "disability"              # 障がい者支援全般
    CHILDCARE = "childcare"                # 子育て支援全般
    HEALTH = "health"                      # 健康づくり全般
    WATCHING = "watching"                  # 見守り・声がけ支援
    SAFETY = "safety"                      # 防犯・交通安全
    EVACUATION_SNOW = "evacuation_snow"    # 避難支援・雪かき
    TRANSPORT = "transport"                # 移送支援

    @property
    def ja(self) -> str:
        return MENU_JA[self]


MENU_JA = {
    MenuKind.ELDERLY: "高齢者支援全般",
    MenuKind.DISABILITY: "障がい者支援全般",
    MenuKind.CHILDCARE: "子育て支援全般",
    MenuKind.HEALTH: "健康づくり全般",
    MenuKind.WATCHING: "見守り・声がけ支援",
    MenuKind.SAFETY: "防犯・交通安全",
    MenuKind.EVACUATION_SNOW: "避難支援・雪かき",
    MenuKind.TRANSPORT: "移送支援",
}


class ActivityGroup(StrEnum):
    """The five kinds of volunteering of 【ボランティア内容】 (plus disaster help from the menu)."""

    SAFETY_NET = "safety_net"      # 安心ボランティア
    DAILY_LIFE = "daily_life"      # 生活支援ボランティア
    TRAVEL = "travel"              # 交通ボランティア
    CHILDREARING = "childrearing"  # 子育てボランティア
    SKILLS = "skills"              # 特技ボランティア
    DISASTER = "disaster"          # 災害時の支援（想定メニュー「避難支援・雪かき」）


GROUP_JA = {
    ActivityGroup.SAFETY_NET: "安心ボランティア",
    ActivityGroup.DAILY_LIFE: "生活支援ボランティア",
    ActivityGroup.TRAVEL: "交通ボランティア",
    ActivityGroup.CHILDREARING: "子育てボランティア",
    ActivityGroup.SKILLS: "特技ボランティア",
    ActivityGroup.DISASTER: "災害時の支援",
}


class Activity(StrEnum):
    """A concrete activity (【ボランティア内容】): what a supporter does and a resident asks for.

    ``evacuation`` (避難支援) is not in the 【ボランティア内容】 list; it comes from the menu item
    避難支援・雪かき and is what the evacuation-supporter suggestions look for.
    """

    WATCHING = "watching"              # 見守り
    GREETING = "greeting"              # 声がけ
    TRAFFIC_SAFETY = "traffic_safety"  # 交通安全
    RUBBISH = "rubbish"                # ゴミ出し
    SHOPPING = "shopping"              # 買い物
    SNOW = "snow"                      # 雪かき
    TRANSPORT = "transport"            # 移送
    DELIVERY = "delivery"              # 届け物
    CHILDCARE = "childcare"            # 短時間の保育
    INSTRUCTION = "instruction"        # 健康体操・趣味講座の指導
    EVACUATION = "evacuation"          # 避難支援

    @property
    def ja(self) -> str:
        return ACTIVITY_JA[self]

    @property
    def group(self) -> ActivityGroup:
        return ACTIVITY_GROUP[self]

    @property
    def menu(self) -> MenuKind:
        return ACTIVITY_MENU[self]


ACTIVITY_JA = {
    Activity.WATCHING: "見守り",
    Activity.GREETING: "声がけ",
    Activity.TRAFFIC_SAFETY: "交通安全",
    Activity.RUBBISH: "ゴミ出し",
    Activity.SHOPPING: "買い物",
    Activity.SNOW: "雪かき",
    Activity.TRANSPORT: "移送",
    Activity.DELIVERY: "届け物",
    Activity.CHILDCARE: "短時間の保育",
    Activity.INSTRUCTION: "健康体操・趣味講座の指導",
    Activity.EVACUATION: "避難支援",
}
ACTIVITY_GROUP = {
    Activity.WATCHING: ActivityGroup.SAFETY_NET, Activity.GREETING: ActivityGroup.SAFETY_NET,
    Activity.TRAFFIC_SAFETY: ActivityGroup.SAFETY_NET, Activity.RUBBISH: ActivityGroup.DAILY_LIFE,
    Activity.SHOPPING: ActivityGroup.DAILY_LIFE, Activity.SNOW: ActivityGroup.DAILY_LIFE,
    Activity.TRANSPORT: ActivityGroup.TRAVEL, Activity.DELIVERY: ActivityGroup.TRAVEL,
    Activity.CHILDCARE: ActivityGroup.CHILDREARING, Activity.INSTRUCTION: ActivityGroup.SKILLS,
    Activity.EVACUATION: ActivityGroup.DISASTER,
}
#: The menu item an activity belongs to (a supporter's menu kinds include those of their activities).
ACTIVITY_MENU = {
    Activity.WATCHING: MenuKind.WATCHING, Activity.GREETING: MenuKind.WATCHING,
    Activity.TRAFFIC_SAFETY: MenuKind.SAFETY, Activity.RUBBISH: MenuKind.ELDERLY,
    Activity.SHOPPING: MenuKind.ELDERLY, Activity.SNOW: MenuKind.EVACUATION_SNOW,
    Activity.TRANSPORT: MenuKind.TRANSPORT, Activity.DELIVERY: MenuKind.TRANSPORT,
    Activity.CHILDCARE: MenuKind.CHILDCARE, Activity.INSTRUCTION: MenuKind.HEALTH,
    Activity.EVACUATION: MenuKind.EVACUATION_SNOW,
}
#: Activities done by car or van: the winter shortening of walking reach does not apply.
DRIVEN = frozenset({Activity.TRANSPORT})
#: Activities that only happen in the snow season.
WINTER_ONLY = frozenset({Activity.SNOW})


class SupporterStatus(StrEnum):
    """Registration status (登録の状況); only ``registered`` supporters are matched."""

    APPLIED = "applied"        # 申請中
    REGISTERED = "registered"  # 登録
    SUSPENDED = "suspended"    # 休止
    WITHDRAWN = "withdrawn"    # 退会

    @property
    def ja(self) -> str:
        return STATUS_JA[self]


STATUS_JA = {SupporterStatus.APPLIED: "申請中", SupporterStatus.REGISTERED: "登録",
             SupporterStatus.SUSPENDED: "休止", SupporterStatus.WITHDRAWN: "退会"}


class Season(StrEnum):
    """When a supporter can help; "winter" is the configured snow season (積雪期,
    ``KARTE_WINTER_START`` to ``KARTE_WINTER_END``)."""

    ALL = "all"                # 通年
    WINTER = "winter"          # 冬期（積雪期）のみ
    NON_WINTER = "non_winter"  # 冬期以外のみ

    def covers(self, winter: bool) -> bool:
        return self is Season.ALL or (self is Season.WINTER) == winter


SEASON_JA = {Season.ALL: "通年", Season.WINTER: "冬期（積雪期）のみ", Season.NON_WINTER: "冬期以外のみ"}


class Recurrence(StrEnum):
    """How often help is wanted (依頼の頻度)."""

    ONCE = "once"                        # 1回
    WEEKLY = "weekly"                    # 毎週
    EVERY_SNOWFALL = "every_snowfall"    # 降雪のたび


RECURRENCE_JA = {Recurrence.ONCE: "1回", Recurrence.WEEKLY: "毎週", Recurrence.EVERY_SNOWFALL: "降雪のたび"}


class RequestStatus(StrEnum):
    """Where a request for help is (依頼の状況)."""

    OPEN = "open"              # 受付（未派遣）
    DISPATCHED = "dispatched"  # 派遣中
    CLOSED = "closed"          # 完了
    CANCELLED = "cancelled"    # 取下げ


REQUEST_STATUS_JA = {RequestStatus.OPEN: "受付（未派遣）", RequestStatus.DISPATCHED: "派遣中",
                     RequestStatus.CLOSED: "完了", RequestStatus.CANCELLED: "取下げ"}


class DispatchStatus(StrEnum):
    ACTIVE = "active"          # 派遣中
    ENDED = "ended"            # 終了


DISPATCH_STATUS_JA = {DispatchStatus.ACTIVE: "派遣中", DispatchStatus.ENDED: "終了"}


class EntryKind(StrEnum):
    """Kinds of point ledger entries (ポイント台帳の区分)."""

    EARNED = "earned"        # 付与 (by an activity)
    REDEEMED = "redeemed"    # 交換 (points given back for goods or a donation: negative)
    REVERSAL = "reversal"    # 訂正（取消）: the exact opposite of one earlier entry


ENTRY_JA = {EntryKind.EARNED: "付与", EntryKind.REDEEMED: "交換", EntryKind.REVERSAL: "訂正（取消）"}


class Training(StrEnum):
    """Training a supporter has taken (受講した研修)."""

    BASIC = "basic"                    # 地域福祉サポーター基礎研修
    DEMENTIA = "dementia"              # 認知症サポーター養成講座
    SNOW_SAFETY = "snow_safety"        # 除雪作業安全講習
    FIRST_AID = "first_aid"            # 普通救命講習
    CHILDCARE = "childcare"            # 子育て支援員研修
    TRANSPORT = "transport"            # 移送ボランティア講習


TRAINING_JA = {Training.BASIC: "基礎研修", Training.DEMENTIA: "認知症サポーター養成講座",
               Training.SNOW_SAFETY: "除雪作業安全講習", Training.FIRST_AID: "普通救命講習",
               Training.CHILDCARE: "子育て支援員研修", Training.TRANSPORT: "移送ボランティア講習"}

#: Weekdays as stored (``weekdays`` columns, ``;``-joined), Monday first (Python's weekday()).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_JA = dict(zip(WEEKDAYS, "月火水木金土日", strict=True))


# --- availability: weekdays and hours -------------------------------------------------------

_WINDOW = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


def parse_hours(text: str | None) -> list[tuple[int, int]]:
    """``"09:00-12:00;13:30-16:00"`` -> ``[(540, 720), (810, 960)]`` (minutes after midnight);
    empty -> ``[]`` (any time). Raises ``ValueError`` for an impossible window (a time past
    24:00, minutes past 59, an end not after its start)."""
    out = []
    for part in [p.strip() for p in str(text or "").split(";") if p.strip()]:
        m = _WINDOW.match(part)
        if not m:
            raise ValueError(f"not a time window HH:MM-HH:MM: {part!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if m1 > 59 or m2 > 59 or h1 > 24 or h2 > 24 or (h1 == 24 and m1) or (h2 == 24 and m2):
            raise ValueError(f"no such time: {part!r}")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            raise ValueError(f"the window ends before it starts: {part!r}")
        out.append((start, end))
    return sorted(out)


def format_hours(windows) -> str:
    """``[(540, 720)]`` -> ``"09:00-12:00"`` (the stored form)."""
    return ";".join(f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in windows)


def hours_ja(text: str | None) -> str:
    """The stored hours as people read them: ``9:00〜12:00、13:30〜16:00``; ``時間指定なし``."""
    windows = _merged(parse_hours(text))
    if not windows:
        return "時間指定なし"
    return "、".join(f"{a // 60}:{a % 60:02d}〜{b // 60}:{b % 60:02d}" for a, b in windows)


def weekdays_ja(text: str | None) -> str:
    """``"mon;wed"`` -> ``月・水``; empty -> ``曜日指定なし``."""
    days = [d for d in str(text or "").split(";") if d]
    return "・".join(WEEKDAY_JA.get(d, d) for d in days) if days else "曜日指定なし"


def day_numbers(text: str | None) -> frozenset[int]:
    """``"mon;wed"`` -> ``{0, 2}``; empty -> every day."""
    days = [d for d in str(text or "").split(";") if d]
    return frozenset(WEEKDAYS.index(d) for d in days) if days else frozenset(range(7))


#: Less than this many minutes a week of availability is no availability.
MIN_WEEKLY_MINUTES = 30


def availability_problems(*, activities, weekdays: str | None, hours: str | None,
                          season: str | None) -> list[tuple[str, str, str]]:
    """What makes a supporter's availability impossible, as ``(field, ja, en)``: hours that are no
    time window, an unknown weekday or season, less than :data:`MIN_WEEKLY_MINUTES` a week, or
    only 雪かき offered but only outside the snow season. The import and the web form both ask."""
    out: list[tuple[str, str, str]] = []
    try:
        windows = parse_hours(hours)
    except ValueError:
        out.append(("hours", "時間帯が正しくありません（例 9:00-12:00。終わりは始まりより後、24:00まで）",
                    "impossible time window"))
        windows = None
    days = [d for d in str(weekdays or "").split(";") if d]
    if any(d not in WEEKDAYS for d in days):
        out.append(("weekdays", "曜日が読めません（月・火・水・木・金・土・日）", "unknown weekday"))
    if season not in (None, "") and season not in Season._value2member_map_:
        out.append(("season", "季節が読めません（通年・冬期のみ・冬期以外のみ）", "unknown season"))
    elif windows is not None:
        per_day = sum(b - a for a, b in _merged(windows)) if windows else 1440
        if per_day * (len(set(days)) or 7) < MIN_WEEKLY_MINUTES:
            out.append(("hours", f"活動できる時間が週{MIN_WEEKLY_MINUTES}分に満たず、"
                                 "活動できる時がありません", "less than half an hour a week"))
    acts = set(activities or ())
    if season == Season.NON_WINTER.value and acts and acts <= WINTER_ONLY:
        out.append(("season", "雪かきだけの登録で「冬期以外のみ」では活動できる時がありません",
                    "snow clearing only, but not in winter"))
    return out


def request_problems(*, activity: str | None, recurrence: str | None, weekdays: str | None,
                     hours: str | None, starts_on: str | None,
                     ends_on: str | None) -> list[tuple[str, str, str]]:
    """What makes a help request impossible, as ``(field, ja, en)``: hours that are no time window,
    an unknown weekday, 降雪のたび for anything but 雪かき, a one-off request without its date, or
    an end before the start."""
    out = availability_problems(activities=None, weekdays=weekdays, hours=hours, season=None)
    if recurrence == Recurrence.EVERY_SNOWFALL.value and activity not in (None, Activity.SNOW.value):
        out.append(("recurrence", "「降雪のたび」は雪かきの依頼だけに使えます",
                    "every snowfall is for snow only"))
    if recurrence == Recurrence.ONCE.value and not starts_on:
        out.append(("starts_on", "1回の依頼には日付が必要です", "a one-off request needs its date"))
    if starts_on and ends_on and ends_on < starts_on:
        out.append(("ends_on", "終了日が開始日より前です", "ends before it starts"))
    return out


def supporter_problems(values: dict) -> list[tuple[str, str, str]]:
    """Every problem of a supporter's values (codes, as stored), as ``(field, ja, en)``."""
    out = []
    acts = split_list(values.get("activities"))
    if not acts:
        out.append(("activities", "できる活動を一つ以上選んでください", "no activity"))
    if any(a not in Activity._value2member_map_ for a in acts):
        out.append(("activities", "活動の種類が読めません", "unknown activity"))
    if any(m not in MenuKind._value2member_map_ for m in split_list(values.get("menu_kinds"))):
        out.append(("menu_kinds", "メニューの種類が読めません", "unknown menu kind"))
    if not str(values.get("name") or "").strip():
        out.append(("name", "氏名が空です", "name missing"))
    if values.get("status") not in SupporterStatus._value2member_map_:
        out.append(("status", "登録の状況が読めません（申請中・登録・休止・退会）", "unknown status"))
    for name, lo in (("reach_m", 50.0), ("capacity", 0)):
        v = values.get(name)
        if v is not None and (not isinstance(v, int | float) or v < lo):
            out.append((name, f"{lo:g} 以上の数で入力してください", f"must be at least {lo}"))
    for name in ("applied_on", "registered_on", "status_since"):
        if values.get(name) and not _is_date(values[name]):
            out.append((name, "日付が読めません（例 2026-04-01）", "not a date"))
    if values.get("status") in (SupporterStatus.REGISTERED, SupporterStatus.SUSPENDED) and not values.get(
            "registered_on"):
        out.append(("registered_on", "登録日が必要です", "registration date missing"))
    out += availability_problems(activities=acts, weekdays=values.get("weekdays"), hours=values.get("hours"),
                                 season=values.get("season") or "all")
    return out


def _is_date(text) -> bool:
    try:
        dt.date.fromisoformat(str(text))
        return True
    except ValueError:
        return False


def _merged(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(windows):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


# --- volunteer points ------------------------------------------------------------------------


@dataclass(frozen=True)
class PointRule:
    """Points for one activity: per visit (``unit="visit"``) or per hour (``"hour"``)."""

    activity: Activity
    unit: str
    points: int

    @property
    def unit_ja(self) -> str:
        return "回" if self.unit == "visit" else "時間"


#: The rule table (ポイント付与の基準): points per visit or per hour by activity. Hours are counted
#: in half hours (a started half hour counts), so a statement can be checked by hand.
POINT_RULES: dict[Activity, PointRule] = {r.activity: r for r in (
    PointRule(Activity.WATCHING, "visit", 50),
    PointRule(Activity.GREETING, "visit", 30),
    PointRule(Activity.TRAFFIC_SAFETY, "hour", 50),
    PointRule(Activity.RUBBISH, "visit", 30),
    PointRule(Activity.SHOPPING, "visit", 50),
    PointRule(Activity.SNOW, "hour", 100),
    PointRule(Activity.TRANSPORT, "visit", 80),
    PointRule(Activity.DELIVERY, "visit", 40),
    PointRule(Activity.CHILDCARE, "hour", 80),
    PointRule(Activity.INSTRUCTION, "hour", 100),
    PointRule(Activity.EVACUATION, "visit", 50),
)}
#: Season multipliers (季節の割増): in the snow season snow clearing counts 1.5 times (heavy,
#: cold work, and the city's first need), outdoor errands 1.2 times (icy roads).
WINTER_MULTIPLIERS: dict[Activity, float] = {
    Activity.SNOW: 1.5, Activity.RUBBISH: 1.2, Activity.SHOPPING: 1.2, Activity.DELIVERY: 1.2,
    Activity.TRANSPORT: 1.2,
}


@dataclass(frozen=True)
class Award:
    """The points one activity earns, and how (the rule as printed on the statement)."""

    points: int
    units: float
    multiplier: float
    rule_ja: str


def award(activity: str, *, hours: float | None, visits: int | None, winter: bool) -> Award:
    """The points an activity earns by :data:`POINT_RULES` and :data:`WINTER_MULTIPLIERS`.

    Per-hour activities count started half hours (1 h 10 min -> 1.5 h); per-visit activities
    count visits (at least one). The product is rounded half up to whole points.
    """
    act = Activity(activity)
    rule = POINT_RULES[act]
    if rule.unit == "hour":
        units = max(0.5, -(-float(hours or 0) * 2 // 1) / 2)
    else:
        units = float(max(1, int(visits or 1)))
    multiplier = WINTER_MULTIPLIERS.get(act, 1.0) if winter else 1.0
    points = int(rule.points * units * multiplier + 0.5)
    text = f"{act.ja} {rule.points}pt/{rule.unit_ja} × {units:g}{rule.unit_ja}"
    if multiplier != 1.0:
        text += f" × 冬期{multiplier:g}"
    return Award(points, units, multiplier, text)


def fiscal_year_of(day: dt.date) -> int:
    """The fiscal year (年度, April to March) of ``day``: 2027-02-01 -> 2026."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_ja(year: int) -> str:
    """2026 -> ``令和8年度（2026年度）``."""
    return f"令和{year - 2018}年度（{year}年度）" if year >= 2019 else f"{year}年度"


# --- the record layers -----------------------------------------------------------------------

class Layer(StrEnum):
    SUPPORTERS = "supporters"
    REQUESTS = "help_requests"
    DISPATCHES = "supporter_dispatches"
    ACTIVITIES = "supporter_activities"
    LEDGER = "point_ledger"
    SNOWFALLS = "snowfalls"


#: Coordinators (the volunteer centre, CSWs) and city staff register, match and dispatch.
PLANNERS = ("city_staff", "coordinator")

SUPPORTER_COLUMNS = (
    Column("supporter_id"), Column(MUNICIPALITY), Column("district_code"), Column("cooperator_id"),
    Column("name"), Column("kana"), Column("phone"), Column("address"),
    Column("menu_kinds"), Column("activities"), Column("weekdays"), Column("hours"), Column("season"),
    Column("reach_m", "float"), Column("capacity", "integer"),
    Column("status"), Column("applied_on"), Column("registered_on"), Column("status_since"),
    Column("training"), Column("notes"),
)
REQUEST_COLUMNS = (
    Column("request_id"), Column(MUNICIPALITY), Column("district_code"), Column("person_id"),
    Column("requester_name"), Column("phone"), Column("address"), Column("activity"),
    Column("recurrence"), Column("weekdays"), Column("hours"), Column("starts_on"), Column("ends_on"),
    Column("status"), Column("received_on"), Column("closed_on"), Column("notes"),
)
DISPATCH_COLUMNS = (
    Column("dispatch_id"), Column(MUNICIPALITY), Column("district_code"), Column("request_id"),
    Column("supporter_id"), Column("activity"), Column("status"), Column("distance_m", "float"),
    Column("reasons"), Column("decided_by"), Column("decided_at"), Column("ended_on"),
    Column("end_reason"),
)
ACTIVITY_COLUMNS = (
    Column("activity_id"), Column(MUNICIPALITY), Column("district_code"), Column("dispatch_id"),
    Column("request_id"), Column("supporter_id"), Column("activity"), Column("done_on"),
    Column("hours", "float"), Column("visits", "integer"), Column("done", "boolean"),
    Column("winter", "boolean"), Column("note"), Column("recorded_by"), Column("recorded_at"),
)
LEDGER_COLUMNS = (
    Column("entry_id"), Column(MUNICIPALITY), Column("district_code"), Column("supporter_id"),
    Column("entry_on"), Column("fiscal_year", "integer"), Column("entry_kind"),
    Column("points", "integer"), Column("activity_id"), Column("reverses"), Column("rule"),
    Column("note"), Column("recorded_by"), Column("recorded_at"),
)
SNOWFALL_COLUMNS = (
    Column("snowfall_id"), Column(MUNICIPALITY), Column("fell_on"), Column("depth_cm", "float"),
    Column("note"), Column("recorded_by"), Column("recorded_at"),
)

#: Layers a whole-layer write (an import, a restore: ``karte import store``) must leave alone: the
#: points ledger is append-only, and PostGIS refuses the ``DELETE`` a replacement of a ledger with
#: entries starts with (as :data:`karte.domain.copies.NOT_REPLACED`).
NOT_REPLACED = frozenset({Layer.LEDGER.value})

#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = (
    LayerSpec(Layer.SUPPORTERS, "supporter_id", "地域福祉サポーター", personal=True, records=True,
              geometry="Point", id_prefix="SP", writers=PLANNERS, columns=SUPPORTER_COLUMNS),
    LayerSpec(Layer.REQUESTS, "request_id", "支援の依頼", personal=True, records=True,
              geometry="Point", id_prefix="RQ", writers=PLANNERS, columns=REQUEST_COLUMNS),
    LayerSpec(Layer.DISPATCHES, "dispatch_id", "サポーターの派遣", personal=True, records=True,
              id_prefix="DP", writers=PLANNERS, columns=DISPATCH_COLUMNS),
    LayerSpec(Layer.ACTIVITIES, "activity_id", "サポーターの活動記録", personal=True, records=True,
              id_prefix="SA", writers=PLANNERS, columns=ACTIVITY_COLUMNS),
    # append-only: nobody updates or deletes an entry (corrections are reversing entries); the
    # store's rules say so with no updaters, PostGIS refuses UPDATE and DELETE to every role
    LayerSpec(Layer.LEDGER, "entry_id", "ボランティアポイント台帳", personal=True, records=True,
              id_prefix="PT", writers=PLANNERS, updaters=(), columns=LEDGER_COLUMNS),
    # the coordinators' operational record (who recorded which snowfall): kept from the public
    # like the rest of the topic; one per municipality, no district
    LayerSpec(Layer.SNOWFALLS, "snowfall_id", "降雪の記録", personal=True, records=True, id_prefix="SF",
              district_column=None, writers=PLANNERS, columns=SNOWFALL_COLUMNS),
)
