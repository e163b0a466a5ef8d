"""``karte import`` of the supporters and help requests (issue 14): the record kinds of this topic.

Each kind is a :class:`karte.importing.records.RecordKind` registered with
:func:`karte.importing.records.register` when this module is imported.

* ``karte import supporters FILE`` (地域福祉サポーター): the volunteer centre's register, one row
  per supporter: number, name, contact, home (address or coordinates), menu kinds, activities,
  weekdays, hours, season, reach, capacity, status with its dates, training.
* ``karte import requests FILE`` (支援の依頼): help wanted, one row per request: number, requester
  (and their register number when they have one), place, activity, recurrence, weekdays, hours,
  dates, status.

CSV (UTF-8, BOM, CP932) or ``.xlsx``, Japanese or English headers (:data:`FIELDS`), values as
people type them (雪かき・見守り、月水金、9時〜12時、冬期のみ、令和8年4月1日 …). As every import:
every problem is reported at once with file, row and column, and nothing is written when there
is any (an unknown activity, an impossible availability, a number twice in the file …); the
changes per district are shown before they are written.

Rows are written **as records**, not as a whole layer: a number new to the store is appended,
a known one whose values differ is updated (with the version read, so an edit made on the web
meanwhile is a conflict, not a silent loss), and supporters or requests missing from the file
stay as they are (a supporter leaves by the status 退会, a request by 取下げ). Each write is in
the access log under the importing user.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import shapely

from karte.domain.access import Access
from karte.domain.errors import ConflictError, InputError
from karte.domain.layers import MUNICIPALITY, Layer, join_list, split_list
from karte.domain.schema import LocationPrecision
from karte.domain.supporters import (
    ACTIVITY_JA,
    MENU_JA,
    RECURRENCE_JA,
    REQUEST_STATUS_JA,
    SEASON_JA,
    STATUS_JA,
    TRAINING_JA,
    WEEKDAYS,
    Activity,
    MenuKind,
    Recurrence,
    RequestStatus,
    Season,
    SupporterStatus,
    Training,
    format_hours,
    request_problems,
    supporter_problems,
)
from karte.domain.supporters import Layer as L
from karte.importing import records
from karte.importing.api import ImportReport, PreparedImport
from karte.importing.diff import ChangeReport, normal, same_geometry
from karte.importing.geocode import default_geocoder
from karte.importing.headers import DISTRICT_FIELD, LOCATION_FIELDS, HeaderMatch, header_key
from karte.importing.points import Located, district_lookup, parse_location, place, resolve_district
from karte.importing.rows import Findings, Row
from karte.importing.tables import RawTable, read_table
from karte.importing.values import (
    ValueProblem,
    clean_kana,
    clean_name,
    nfkc,
    parse_code,
    parse_date,
    parse_float,
    parse_int,
    parse_list,
    parse_phone,
)
from karte.store.base import Store

#: Accepted headers per kind (compared after :func:`karte.importing.headers.header_key`).
FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "supporters": {
        "supporter_id": ("サポーター番号", "登録番号", "番号", "id", "supporter_id"),
        "name": ("氏名", "名前", "name"),
        "kana": ("フリガナ", "ふりがな", "カナ", "kana"),
        "phone": ("電話番号", "電話", "連絡先", "phone", "tel"),
        **LOCATION_FIELDS,
        **DISTRICT_FIELD,
        "cooperator_id": ("協力者番号", "cooperator_id"),
        "menu_kinds": ("登録メニュー", "メニュー", "想定メニュー", "menu_kinds", "menu"),
        "activities": ("できる活動", "活動", "ボランティア内容", "活動内容", "activities"),
        "weekdays": ("曜日", "活動できる曜日", "weekdays", "days"),
        "hours": ("時間帯", "活動できる時間", "時間", "hours"),
        "season": ("季節", "活動できる季節", "時期", "season"),
        "reach_m": ("活動範囲", "活動範囲(m)", "行ける距離", "reach_m", "reach"),
        "capacity": ("受け持ち", "受け持ち件数", "担当できる件数", "capacity"),
        "status": ("状況", "登録状況", "status"),
        "applied_on": ("申請日", "applied_on"),
        "registered_on": ("登録日", "registered_on"),
        "status_since": ("状況の日付", "休止日", "退会日", "status_since"),
        "training": ("研修", "受講した研修", "受講歴", "training"),
        "notes": ("備考", "notes"),
    },
    "requests": {
        "request_id": ("依頼番号", "受付番号", "番号", "id", "request_id"),
        "requester_name": ("依頼者", "依頼者氏名", "氏名", "requester_name", "name"),
        "person_id": ("名簿番号", "要支援者番号", "person_id"),
        "phone": ("電話番号", "電話", "連絡先", "phone", "tel"),
        **LOCATION_FIELDS,
        **DISTRICT_FIELD,
        "activity": ("依頼内容", "内容", "活動", "activity", "kind"),
        "recurrence": ("頻度", "recurrence"),
        "weekdays": ("曜日", "希望曜日", "weekdays", "days"),
        "hours": ("時間帯", "希望時間", "時間", "hours"),
        "starts_on": ("希望日", "開始日", "日付", "starts_on"),
        "ends_on": ("終了日", "ends_on"),
        "status": ("状況", "status"),
        "received_on": ("受付日", "received_on"),
        "closed_on": ("完了日", "closed_on"),
        "notes": ("備考", "notes"),
    },
}
REQUIRED = {"supporters": ("supporter_id", "name", "activities"),
            "requests": ("request_id", "requester_name", "activity")}
KIND_JA = {"supporters": "地域福祉サポーター", "requests": "支援の依頼"}
LAYER_OF = {"supporters": L.SUPPORTERS, "requests": L.REQUESTS}
KEY_OF = {"supporters": "supporter_id", "requests": "request_id"}


# --- words as people write them ------------------------------------------------------------------

def _lookup(labels: dict, extra: dict[str, str]) -> dict[str, str]:
    table = {header_key(str(k)): str(k) for k in labels}
    table.update({header_key(v): str(k) for k, v in labels.items()})
    table.update({header_key(k): str(v) for k, v in extra.items()})
    return table


_ACTIVITY = _lookup(ACTIVITY_JA, {
    "声かけ": Activity.GREETING, "あいさつ": Activity.GREETING, "見守り活動": Activity.WATCHING,
    "交通安全指導": Activity.TRAFFIC_SAFETY, "ごみ出し": Activity.RUBBISH, "ゴミだし": Activity.RUBBISH,
    "買物": Activity.SHOPPING, "買い物代行": Activity.SHOPPING, "除雪": Activity.SNOW,
    "雪下ろし": Activity.SNOW,
    "雪寄せ": Activity.SNOW, "送迎": Activity.TRANSPORT, "移送支援": Activity.TRANSPORT,
    "配達": Activity.DELIVERY, "保育": Activity.CHILDCARE, "託児": Activity.CHILDCARE,
    "短時間保育": Activity.CHILDCARE, "指導": Activity.INSTRUCTION, "健康体操": Activity.INSTRUCTION,
    "趣味講座": Activity.INSTRUCTION, "避難": Activity.EVACUATION,
})
_MENU = _lookup(MENU_JA, {
    "高齢者支援": MenuKind.ELDERLY, "障がい者支援": MenuKind.DISABILITY, "障害者支援": MenuKind.DISABILITY,
    "子育て支援": MenuKind.CHILDCARE, "健康づくり": MenuKind.HEALTH, "見守り": MenuKind.WATCHING,
    "見守り・声かけ支援": MenuKind.WATCHING, "防犯": MenuKind.SAFETY, "交通安全": MenuKind.SAFETY,
    "避難支援": MenuKind.EVACUATION_SNOW, "雪かき": MenuKind.EVACUATION_SNOW, "移送": MenuKind.TRANSPORT,
})
_SEASON = _lookup(SEASON_JA, {"": Season.ALL, "通年": Season.ALL, "一年中": Season.ALL, "冬期": Season.WINTER,
                              "冬のみ": Season.WINTER, "冬": Season.WINTER, "積雪期のみ": Season.WINTER,
                              "冬期以外": Season.NON_WINTER, "冬以外": Season.NON_WINTER,
                              "冬期を除く": Season.NON_WINTER})
_STATUS = _lookup(STATUS_JA, {"登録済": SupporterStatus.REGISTERED, "登録済み": SupporterStatus.REGISTERED,
                              "申請": SupporterStatus.APPLIED, "休止中": SupporterStatus.SUSPENDED})
_RECURRENCE = _lookup(RECURRENCE_JA, {
    "一回": Recurrence.ONCE, "単発": Recurrence.ONCE, "1回のみ": Recurrence.ONCE, "週1回": Recurrence.WEEKLY,
    "毎週1回": Recurrence.WEEKLY, "降雪時": Recurrence.EVERY_SNOWFALL,
    "雪が降ったら": Recurrence.EVERY_SNOWFALL, "降雪ごと": Recurrence.EVERY_SNOWFALL})
_REQUEST_STATUS = _lookup(REQUEST_STATUS_JA, {
    "受付": RequestStatus.OPEN, "受付中": RequestStatus.OPEN, "未派遣": RequestStatus.OPEN,
    "派遣": RequestStatus.DISPATCHED, "取下げ": RequestStatus.CANCELLED, "取り下げ": RequestStatus.CANCELLED,
    "終了": RequestStatus.CLOSED})
_TRAINING = _lookup(TRAINING_JA, {"基礎": Training.BASIC, "サポーター研修": Training.BASIC,
                                  "認知症サポーター": Training.DEMENTIA, "除雪講習": Training.SNOW_SAFETY,
                                  "救命講習": Training.FIRST_AID, "子育て支援員": Training.CHILDCARE,
                                  "移送講習": Training.TRANSPORT})
_DAY = {"月": "mon", "火": "tue", "水": "wed", "木": "thu", "金": "fri", "土": "sat", "日": "sun"}
_DAY_WORDS = {"平日": WEEKDAYS[:5], "土日": WEEKDAYS[5:], "週末": WEEKDAYS[5:], "毎日": (), "全日": (),
              "": ()}
_DAY_SPLIT = re.compile(r"[・,、;/\s]+")


def _words(text: str, table: dict[str, str], ja: str, en: str) -> list[str]:
    """Every word of a list cell through ``table``; one unknown word is a problem for the cell."""
    out: list[str] = []
    for word in parse_list(text):
        # "・" joins words in a list (買い物・ゴミ出し) but is also part of some names
        # (健康体操・趣味講座の指導): the whole word first, then its parts
        parts = [word] if header_key(word) in table else [p for p in word.split("・") if p]
        for part in parts:
            code = table.get(header_key(part))
            if code is None:
                raise ValueProblem(ja, en)
            if code not in out:
                out.append(code)
    return out


def parse_activities(text: str) -> list[str]:
    """``雪かき、見守り`` -> ``["snow", "watching"]`` (vocabulary order); an unknown activity fails."""
    found = _words(text, _ACTIVITY, f"活動の種類が読めません（{'・'.join(ACTIVITY_JA.values())} のいずれか）",
                   "unknown activity kind")
    return [a.value for a in Activity if a.value in found]


def parse_menu(text: str) -> list[str]:
    found = _words(text, _MENU, f"メニューが読めません（{'・'.join(MENU_JA.values())} のいずれか）",
                   "unknown menu kind")
    return [m.value for m in MenuKind if m.value in found]


def parse_weekdays(text: str) -> list[str]:
    """``月水金``, ``月・水・金``, ``平日``, ``土日``, ``mon;wed`` -> codes; ``毎日`` or empty: every day."""
    s = nfkc(text).replace("曜日", "").replace("曜", "")
    days: list[str] = []
    for part in [p for p in _DAY_SPLIT.split(s) if p] or [""]:
        if part in _DAY_WORDS:
            days += _DAY_WORDS[part]
        elif part.lower() in WEEKDAYS:
            days.append(part.lower())
        elif all(ch in _DAY for ch in part):
            days += [_DAY[ch] for ch in part]
        else:
            raise ValueProblem("曜日が読めません（月〜日、平日、土日、毎日）", "unknown weekday")
    return [d for d in WEEKDAYS if d in days]


_HOUR = re.compile(r"(\d{1,2})(?:[:時](\d{2})?分?)?")


def parse_hours_text(text: str) -> str:
    """``9:00〜12:00、13時-16時`` -> ``09:00-12:00;13:00-16:00``; empty: any time. An impossible window
    (past 24:00, an end before its start) fails."""
    s = nfkc(text).replace("〜", "-").replace("~", "-").replace("－", "-").replace("から", "-")
    windows = []
    for part in [p.strip() for p in re.split(r"[、,;/]", s) if p.strip()]:
        ends = [e.strip() for e in part.split("-")]
        if len(ends) != 2 or not all(_HOUR.fullmatch(e) for e in ends):
            raise ValueProblem("時間帯が読めません（例 9:00-12:00、9時〜12時）", "not a time window")
        (h1, m1), (h2, m2) = (_HOUR.fullmatch(e).groups() for e in ends)
        a, b = int(h1) * 60 + int(m1 or 0), int(h2) * 60 + int(m2 or 0)
        if int(m1 or 0) > 59 or int(m2 or 0) > 59 or b > 24 * 60 or a >= b:
            raise ValueProblem("時間帯がありえません（終わりは始まりより後、24:00まで）",
                               "impossible time window")
        windows.append((a, b))
    return format_hours(sorted(windows))


def parse_reach(text: str) -> float:
    """``800``, ``800m``, ``1.5km`` -> metres (50 m to 20 km)."""
    s = nfkc(text).lower().replace(" ", "").replace(",", "")
    factor = 1000.0 if s.endswith("km") else 1.0
    s = s.removesuffix("km").removesuffix("m").removesuffix("メートル")
    value = parse_float(s) * factor
    if not 50 <= value <= 20_000:
        raise ValueProblem("活動範囲は 50 m〜20 km で入力してください", "reach out of range")
    return value


def parse_training(text: str) -> list[str]:
    """``基礎研修(2026-04-01)、除雪作業安全講習`` -> ``["basic:2026-04-01", "snow_safety"]``."""
    out = []
    for part in [p for p in re.split(r"[、,;/\n]", nfkc(text)) if p.strip()]:
        m = re.fullmatch(r"\s*(.+?)\s*(?:[:(（]\s*(.+?)\s*[)）]?)?\s*", part)
        name, when = (m.group(1), m.group(2)) if m else (part, None)
        code = _TRAINING.get(header_key(name))
        if code is None:
            raise ValueProblem(f"研修の名前が読めません（{'・'.join(TRAINING_JA.values())}）",
                               "unknown training")
        out.append(f"{code}:{parse_date(when).isoformat()}" if when else code)
    return out


def _choice(table: dict[str, str], ja: str, en: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        code = table.get(header_key(text))
        if code is None:
            raise ValueProblem(ja, en)
        return code
    return parse


parse_season = _choice(_SEASON, "季節が読めません（通年・冬期のみ・冬期以外のみ）", "unknown season")
parse_status = _choice(_STATUS, "登録の状況が読めません（申請中・登録・休止・退会）", "unknown status")
parse_recurrence = _choice(_RECURRENCE, "頻度が読めません（1回・毎週・降雪のたび）", "unknown recurrence")
parse_request_status = _choice(_REQUEST_STATUS, "状況が読めません（受付・派遣中・完了・取下げ）",
                               "unknown request status")


def _iso(row: Row, field: str, today: dt.date, *, future: bool = False) -> str | None:
    day = row.parse(field, parse_date)
    if day is None:
        return None
    if not future and day > today:
        row.error(field, "未来の日付です", "date in the future")
    return day.isoformat()


# --- rows ----------------------------------------------------------------------------------------

class _Row(Row):
    """A row of this topic's files (their headers are :data:`FIELDS`, not the built kinds')."""

    def column(self, field: str) -> str:
        if field in self.match.names:
            return self.match.names[field]
        names = FIELDS[self.kind].get(field)
        return names[0] if names else field


def _header(kind: str, table: RawTable, findings: Findings) -> tuple[HeaderMatch | None, list[_Row]]:
    """Find and match the header row (the first of the first ten rows naming two fields), then
    the non-blank rows after it."""
    lookup: dict[str, str] = {}
    for name, names in FIELDS[kind].items():
        for text in (*names, name):
            lookup.setdefault(header_key(text), name)
    start = None
    for i, (_n, cells) in enumerate(table.rows[:10]):
        if len({lookup[k] for k in map(header_key, cells) if k in lookup}) >= 2:
            start = i
            break
    if start is None:
        examples = "、".join(names[0] for names in FIELDS[kind].values())
        findings.error(None, None, f"見出し行が見つかりません（見出しの例: {examples}）", "no header row")
        return None, []
    number, header = table.rows[start]
    fields: dict[str, int] = {}
    names: dict[str, str] = {}
    unknown: list[str] = []
    for j, raw in enumerate(header):
        text = str(raw).strip().strip("\u3000")
        if not text:
            continue
        name = lookup.get(header_key(text))
        if name is None:
            unknown.append(text)
            findings.warn(number, text, "この列は取り込み対象外のため読み込みません",
                          "unknown column, not loaded")
        elif name in fields:
            findings.error(number, text, f"列「{names[name]}」と同じ項目 ({name}) を指しています",
                           f"two columns name the same field {name}")
        else:
            fields[name], names[name] = j, text
    for name in REQUIRED[kind]:
        if name not in fields:
            findings.error(number, FIELDS[kind][name][0], "必要な列がありません",
                           f"required column {name} missing")
    match = HeaderMatch(number, fields, names, unknown)
    if findings.problems:
        return match, []
    rows = [_Row(n, cells, match, kind, findings) for n, cells in table.rows[start + 1:]
            if any(str(c).strip(" \t\r\n\u3000") for c in cells)]
    return match, rows


def _supporter(row: Row, today: dt.date, cooperator_ids: frozenset[str] | None) -> dict:
    values = {
        "supporter_id": row.parse("supporter_id", parse_code, required=True),
        "name": clean_name(row.text("name")) or None,
        "kana": clean_kana(row.text("kana")) or None,
        "phone": row.parse("phone", parse_phone) or None,
        "address": clean_name(row.text("address")) or None,
        "cooperator_id": row.parse("cooperator_id", parse_code) or None,
        "activities": join_list(row.parse("activities", parse_activities, required=True, default=[])),
        "menu_kinds": join_list(row.parse("menu_kinds", parse_menu, default=[])),
        "weekdays": join_list(row.parse("weekdays", parse_weekdays, default=[])),
        "hours": row.parse("hours", parse_hours_text, default=""),
        "season": row.parse("season", parse_season, default=Season.ALL.value),
        "reach_m": row.parse("reach_m", parse_reach),
        "capacity": row.parse("capacity", parse_int),
        "status": row.parse("status", parse_status, default=SupporterStatus.REGISTERED.value),
        "applied_on": _iso(row, "applied_on", today),
        "registered_on": _iso(row, "registered_on", today),
        "status_since": _iso(row, "status_since", today),
        "training": join_list(row.parse("training", parse_training, default=[])),
        "notes": clean_name(row.text("notes")) or None,
    }
    if not values["name"]:
        row.error("name", "氏名が空です", "name missing")
    known = cooperator_ids is None or values["cooperator_id"] in cooperator_ids
    if values["cooperator_id"] and not known:
        row.error("cooperator_id", "共助協力者の名簿にない番号です", "not in the roster")
    if not values["menu_kinds"] and values["activities"]:
        acts = split_list(values["activities"])
        values["menu_kinds"] = join_list(dict.fromkeys(Activity(a).menu.value for a in acts))
    if values["reach_m"] is None:
        values["reach_m"] = 3000.0 if Activity.TRANSPORT.value in split_list(values["activities"]) else 800.0
    if values["capacity"] is None:
        values["capacity"] = 2
    active = values["status"] != SupporterStatus.APPLIED
    if active and not values["registered_on"] and row.has("registered_on"):
        row.error("registered_on", "登録日がありません（状況が申請中でない方は必要です）",
                  "registration date missing")
    values["registered_on"] = values["registered_on"] or (today.isoformat() if values["status"] !=
                                                          SupporterStatus.APPLIED else None)
    values["status_since"] = values["status_since"] or values["registered_on"] or values["applied_on"]
    _cross_checks(row, supporter_problems(values))
    return values


def _request(row: Row, today: dt.date, person_ids: frozenset[str] | None) -> dict:
    values = {
        "request_id": row.parse("request_id", parse_code, required=True),
        "requester_name": clean_name(row.text("requester_name")) or None,
        "person_id": row.parse("person_id", parse_code) or None,
        "phone": row.parse("phone", parse_phone) or None,
        "address": clean_name(row.text("address")) or None,
        "activity": (row.parse("activity", parse_activities, required=True, default=[]) or [None])[0],
        "recurrence": row.parse("recurrence", parse_recurrence),
        "weekdays": join_list(row.parse("weekdays", parse_weekdays, default=[])),
        "hours": row.parse("hours", parse_hours_text, default=""),
        "starts_on": _iso(row, "starts_on", today, future=True),
        "ends_on": _iso(row, "ends_on", today, future=True),
        "status": row.parse("status", parse_request_status, default=RequestStatus.OPEN.value),
        "received_on": _iso(row, "received_on", today) or today.isoformat(),
        "closed_on": _iso(row, "closed_on", today),
        "notes": clean_name(row.text("notes")) or None,
    }
    if len(parse_list(row.text("activity"))) > 1 and row.ok:
        row.error("activity", "依頼は一行に一つの活動にしてください", "one activity per request")
    if not values["requester_name"]:
        row.error("requester_name", "依頼者の氏名が空です", "requester missing")
    if values["recurrence"] is None:
        values["recurrence"] = (Recurrence.EVERY_SNOWFALL.value if values["activity"] == Activity.SNOW
                                else Recurrence.ONCE.value if values["starts_on"]
                                else Recurrence.WEEKLY.value)
    if values["person_id"] and person_ids is not None and values["person_id"] not in person_ids:
        row.error("person_id", "要支援者名簿にない番号です", "not in the register")
    _cross_checks(row, request_problems(
        activity=values["activity"], recurrence=values["recurrence"], weekdays=values["weekdays"],
        hours=values["hours"], starts_on=values["starts_on"], ends_on=values["ends_on"]))
    return values


def _cross_checks(row: Row, found: list[tuple[str, str, str]]) -> None:
    """The checks across a row's values (:func:`karte.domain.supporters.supporter_problems` …),
    each at its own column, except where a cell was already unreadable (said once is enough)."""
    failed = {p.column for p in row.findings.problems if p.row == row.number}
    for field, ja, en in found:
        if row.column(field) not in failed:
            row.error(field, ja, en)


# --- prepare and apply ---------------------------------------------------------------------------

@dataclass
class _Report(ImportReport):
    """The import report of this topic's kinds (named by :data:`KIND_JA`)."""

    notes_after: list[str] = dataclasses.field(default_factory=list)

    def format(self, *, verbose: bool = False) -> str:
        enc = ("Excel (.xlsx)" + (f" シート「{self.sheet}」" if self.sheet else "") if self.encoding == "xlsx"
               else f"文字コード {self.encoding}" if self.encoding else "")
        lines = [f"{KIND_JA[self.kind]}: {self.file} ({enc}、{self.rows:,} 行)", *self.notes]
        if self.problems:
            lines.append(f"エラー {len(self.problems)} 件 (何も読み込んでいません):")
            lines += ["  " + p.format(verbose=verbose) for p in self.problems]
        if self.warnings:
            lines.append(f"注意 {len(self.warnings)} 件:")
            lines += ["  " + p.format(verbose=verbose) for p in self.warnings]
        if not self.problems:
            if not self.changed:
                lines.append("変更はありません (ストアはそのままです)。")
            for c in self.changes:
                if c.changed:
                    lines.append(f"変更 ({c.layer}): 追加 {c.added:,}、更新 {c.updated:,}、"
                                 f"変更なし {c.unchanged:,}")
                    lines.append("  地区        追加    更新")
                    lines += [f"  {d:<10}{a:>6}{u:>8}" for d, a, _r, u in c.table()]
            lines += self.notes_after
            if self.written:
                lines.append("ストアに書き込みました。")
            elif self.dry_run and self.changed:
                lines.append("--dry-run のため書き込んでいません。")
        return "\n".join(lines)


@dataclass
class _Plan:
    """The rows an import appends and the rows it updates (key -> (version read, changes))."""

    layer: str
    key: str
    append: list[dict]
    update: dict[str, tuple[int, dict]]


def _prepare(kind: str, store: Store, path: Path, access: Access, options: dict) -> PreparedImport:
    today = options.get("today") or dt.date.today()
    report = _Report(kind, path.name)
    findings = Findings(path.name)
    table = read_table(path, sheet=options.get("sheet"), encoding=options.get("encoding"))
    report.encoding, report.sheet = table.encoding, table.sheet
    present = set(store.layers())
    districts = store.read(Layer.DISTRICTS) if Layer.DISTRICTS in present else None
    small = store.read(Layer.SMALL_AREAS) if Layer.SMALL_AREAS in present else None
    if districts is None:
        raise InputError(f"ストア {store.location} に地区がありません。先に karte build を実行してください")
    person_ids = cooperator_ids = None
    if kind == "requests" and Layer.REGISTER in present:
        person_ids = frozenset(store.read(Layer.REGISTER, access=access)["person_id"].astype(str))
    if kind == "supporters" and Layer.COOPERATORS in present:
        cooperator_ids = frozenset(store.read(Layer.COOPERATORS, access=access)["cooperator_id"].astype(str))
    _match, rows = _header(kind, table, findings)
    geocoder = default_geocoder()
    lookup = district_lookup(districts)
    kept, values, located, given = [], [], [], []
    for row in rows:
        record = (_supporter(row, today, cooperator_ids) if kind == "supporters"
                  else _request(row, today, person_ids))
        loc = parse_location(row, geocoder)
        district = resolve_district(row, lookup)
        kept.append(row)
        values.append(record)
        located.append(loc if loc is not None else Located(LocationPrecision.NONE))
        given.append(district)
    key = KEY_OF[kind]
    first: dict[str, int] = {}
    for row, record in zip(kept, values, strict=True):
        if record.get(key) in first:
            row.error(key, f"番号が {first[record[key]]} 行目と重複しています", "duplicate id")
        elif record.get(key):
            first[record[key]] = row.number
    city = shapely.union_all(shapely.make_valid(districts.geometry.to_numpy())).buffer(300)
    placed = place(located, kept, city=city, districts=districts, small_areas=small, district_map=None)
    for i, (row, record) in enumerate(zip(kept, values, strict=True)):
        found = placed.district_code[i]
        if given[i] and found and given[i] != found and located[i].precision == LocationPrecision.EXACT:
            row.error("district_code", f"座標は地区 {found} にありますが、地区欄は {given[i]} です",
                      "coordinates lie in another district")
        record["district_code"] = given[i] or found
        if placed.geometry.iloc[i] is None and not placed.outside[i]:
            row.error("address", "場所が分かりません（住所か緯度・経度が必要です）", "no location")
        elif not record["district_code"] and not placed.outside[i]:
            row.error("district_code", "地区が決まりません（地区欄で指定してください）", "no district")
        record["geometry"] = placed.geometry.iloc[i]
        record[MUNICIPALITY] = access.municipality
    report.rows = len(kept)
    report.problems = sorted(findings.problems, key=lambda p: (p.row or 0))
    report.warnings = sorted(findings.warnings, key=lambda p: (p.row or 0))
    prepared = PreparedImport(report, access=access)
    if report.problems:
        return prepared
    plan = _plan(kind, store, access, values, report)
    prepared.layers = {plan.layer: pd.DataFrame(values)}
    prepared.plan = plan  # read by _apply
    return prepared


def _plan(kind: str, store: Store, access: Access, values: list[dict], report: _Report) -> _Plan:
    """Compare the file's rows with the stored ones (read as the importing user)."""
    layer, key = LAYER_OF[kind], KEY_OF[kind]
    stored = {}
    if str(layer) in store.layers():
        for row in store.read_records(layer, access=access):
            stored[str(row[key])] = row
    change = ChangeReport(str(layer))
    plan = _Plan(str(layer), key, [], {})
    for record in values:
        old = stored.get(record[key])
        if old is None:
            plan.append.append(record)
            change.count(record.get("district_code"), "added")
            continue
        diff = {c: v for c, v in record.items() if c != "geometry" and normal(old.get(c)) != normal(v)}
        point = shapely.Point(old["x"], old["y"]) if old.get("x") is not None else None
        if not same_geometry(point, record.get("geometry")):
            diff["geometry"] = record.get("geometry")
        if diff:
            plan.update[record[key]] = (int(_version(store, layer, record[key], access)), diff)
            change.count(record.get("district_code"), "updated")
        else:
            change.unchanged += 1
    left = len(set(stored) - {r[key] for r in values})
    if left:
        report.notes_after.append(f"ファイルにない {KIND_JA[kind]} {left:,} 件はそのままです"
                                  "（退会・取下げは状況の列で指定します）。")
    report.changes = [change]
    return plan


def _version(store: Store, layer: str, key: str, access: Access) -> int:
    return int(store.read_row(layer, key, access=access)["version"])


def _apply(store: Store, prepared: PreparedImport) -> None:
    """Check that nothing planned changed since it was read, then append and update as the
    importing user (each write in the access log)."""
    plan: _Plan = prepared.plan
    access = prepared.access
    moved = [k for k, (version, _) in plan.update.items()
             if _version(store, plan.layer, k, access) != version]
    if moved:
        raise ConflictError(f"取り込みの準備の後に {len(moved)} 件が他の利用者に変更されました"
                            f"（{', '.join(sorted(moved)[:5])}）。もう一度取り込んでください。"
                            "何も書き込んでいません")
    if plan.append:
        store.append_rows(plan.layer, plan.append, access=access)
    for key, (version, changes) in plan.update.items():
        store.update_row(plan.layer, key, changes, version=version, access=access)


def _prepare_supporters(store, path, access, options):
    return _prepare("supporters", store, path, access, options)


def _prepare_requests(store, path, access, options):
    return _prepare("requests", store, path, access, options)


records.register(records.RecordKind("supporters", KIND_JA["supporters"], _prepare_supporters, _apply,
                                    aliases=("supporter", "サポーター", "地域福祉サポーター")))
records.register(records.RecordKind("requests", KIND_JA["requests"], _prepare_requests, _apply,
                                    aliases=("help_requests", "request", "依頼", "支援の依頼")))
