"""``karte import`` of the concerns and safety-net meetings (issue 13): the record kinds of this topic.

Each kind is a :class:`karte.importing.records.RecordKind` registered with
:func:`karte.importing.records.register` when this module is imported.

* ``karte import meetings FILE``: a council's ledger of 地域セーフティネット会議 (開催日, 地区, 会場,
  参加者数, the attendees by role, 検討世帯数, 内容) into ``care_meetings``;
* ``karte import concerns FILE``: a ledger of households of concern (番号, 気づいた日, 地区, 世帯,
  住所, 気づいた人, 気になること, 緊急度, 内容, 対応, 担当者, 次回確認日, 状況, 終了日, 終了理由) into
  ``care_concerns``; the 対応 of a row becomes a follow-up action (``care_actions``).

CSV (UTF-8, UTF-8 with BOM, CP932) or ``.xlsx``, Japanese or English headers (the tables below;
the first name of each field is the header ``karte meetings export`` and ``karte cases export``
write, so an export loads back). The same rules as every import: every problem with file, row and
column; a file with any problem (a bad date, an unknown district, a duplicated id …) loads nothing;
the changes per district are shown before they are written. Rows are appended as the importing
user (ids from the store unless the file gives them); loading the same file again adds nothing:
a row whose id, or (without an id) whose district, date and place (meetings) or district, date and
household (concerns) match a stored row with the same content is unchanged, and one that matches
with other content is refused.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import shapely

import karte.domain.layers  # noqa: F401 - the registry first: it imports the topic modules itself
from gis import crs
from karte.domain import care
from karte.domain.access import Access
from karte.domain.care import CareLayer, CareRole
from karte.domain.errors import InputError
from karte.domain.layers import MUNICIPALITY, Layer, join_list
from karte.domain.schema import LocationPrecision
from karte.importing.api import ImportReport, PreparedImport, _format_changes
from karte.importing.diff import ChangeReport
from karte.importing.encoding import ENCODING_JA
from karte.importing.geocode import Geocoder, default_geocoder
from karte.importing.headers import HeaderMatch, header_key
from karte.importing.points import _TO_METRIC, district_lookup, locate_with_tolerance
from karte.importing.records import RecordKind, register
from karte.importing.rows import Findings, Row
from karte.importing.tables import RawTable, read_table
from karte.importing.values import ValueProblem, clean_name, nfkc, parse_code, parse_date, parse_int
from karte.store.base import Store

#: The district column (地区社協 alone is an attendee column of the meetings ledger).
DISTRICT = ("地区", "地区コード", "地区名", "district_code", "district")

#: Attendee columns: role -> accepted headers (the first is the export's).
ATTENDEE_HEADERS: dict[str, tuple[str, ...]] = {
    CareRole.NEIGHBOURHOOD_STAFF: ("ご近所福祉スタッフ", "ご近所福祉スタッフ数"),
    CareRole.WELFARE_COMMISSIONER: ("民生委員・児童委員", "民生委員", "民生委員数"),
    CareRole.NEIGHBOURHOOD_ASSOCIATION: ("町会・町内会", "町会", "町内会"),
    CareRole.COUNCIL: ("地区社協", "地区社協役員"),
    CareRole.CSW: ("コーディネーター", "CSW", "地域福祉コーディネーター"),
    CareRole.COMMUNITY_SUPPORT_CENTRE: ("地域包括支援センター", "包括"),
    CareRole.CITY: ("市職員", "市"),
    CareRole.OTHER: ("その他の参加者", "その他"),
}

#: field -> accepted headers, Japanese and English (the first is what the export writes).
MEETING_FIELDS: dict[str, tuple[str, ...]] = {
    "meeting_id": ("会議番号", "番号", "id", "meeting_id"),
    "held_on": ("開催日", "開催年月日", "日付", "held_on", "date"),
    "district_code": DISTRICT,
    "place": ("会場", "場所", "開催場所", "place"),
    "participants": ("参加者数", "参加人数", "出席者数", "participants"),
    **{care.ATTENDEE_COLUMNS[CareRole(role)]: (*names, care.ATTENDEE_COLUMNS[CareRole(role)])
       for role, names in ATTENDEE_HEADERS.items()},
    "attendee_names": ("参加者氏名", "出席者氏名", "attendee_names"),
    "households": ("検討世帯数", "検討した世帯数", "世帯数", "households"),
    "summary": ("内容", "協議内容", "議題", "summary"),
}
MEETING_REQUIRED = ("held_on", "district_code")

CONCERN_FIELDS: dict[str, tuple[str, ...]] = {
    "concern_id": ("番号", "世帯番号", "id", "concern_id"),
    "noticed_on": ("気づいた日", "発見日", "日付", "noticed_on"),
    "district_code": DISTRICT,
    "household": ("世帯", "世帯名", "対象世帯", "氏名", "household"),
    "address": ("住所", "所在地", "address"),
    "person_id": ("名簿番号", "要支援者番号", "person_id"),
    "noticed_by": ("気づいた人", "発見者", "noticed_by"),
    "noticed_by_role": ("気づいた人の区分", "発見者の区分", "noticed_by_role"),
    "kinds": ("気になること", "種類", "課題", "kinds"),
    "urgency": ("緊急度", "urgency"),
    "summary": ("内容", "気づいた内容", "summary"),
    "response": ("対応", "対応内容", "response"),
    "responsible": ("担当者", "担当", "responsible"),
    "next_review": ("次回確認日", "次回確認", "next_review"),
    "status": ("状況", "状態", "status"),
    "closed_on": ("終了日", "closed_on"),
    "close_reason": ("終了理由", "close_reason"),
}
CONCERN_REQUIRED = ("noticed_on", "district_code", "household")

#: A spreadsheet formula in a cell would run in Excel: exported text starting with one of these
#: gets a leading apostrophe (and an import takes it off again).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# --- words as people write them -------------------------------------------------------------------

def _lookup(labels: dict, extra: dict[str, str]) -> dict[str, str]:
    table = {_word(str(k)): str(k) for k in labels}
    table.update({_word(v): str(k) for k, v in labels.items()})
    table.update({_word(k): str(v) for k, v in extra.items()})
    return table


def _word(text: str) -> str:
    return nfkc(text).casefold().replace(" ", "")


ROLE_WORDS = _lookup(care.CARE_ROLE_JA, {
    "ご近所": CareRole.NEIGHBOURHOOD_STAFF, "近所福祉スタッフ": CareRole.NEIGHBOURHOOD_STAFF,
    "民生委員": CareRole.WELFARE_COMMISSIONER, "児童委員": CareRole.WELFARE_COMMISSIONER,
    "民生児童委員": CareRole.WELFARE_COMMISSIONER, "町会": CareRole.NEIGHBOURHOOD_ASSOCIATION,
    "町内会": CareRole.NEIGHBOURHOOD_ASSOCIATION, "自治会": CareRole.NEIGHBOURHOOD_ASSOCIATION,
    "社協": CareRole.COUNCIL, "地区社協役員": CareRole.COUNCIL, "csw": CareRole.CSW,
    "コーディネーター": CareRole.CSW, "地域福祉コーディネーター": CareRole.CSW,
    "包括": CareRole.COMMUNITY_SUPPORT_CENTRE, "市職員": CareRole.CITY,
})
KIND_WORDS = _lookup(care.CONCERN_JA, {
    "孤立": care.ConcernKind.ISOLATION, "閉じこもり": care.ConcernKind.ISOLATION,
    "困窮": care.ConcernKind.POVERTY, "認知症": care.ConcernKind.DEMENTIA, "虐待": care.ConcernKind.ABUSE,
    "ゴミ屋敷": care.ConcernKind.HOARDING, "見守り": care.ConcernKind.WATCHING,
    "避難": care.ConcernKind.EVACUATION, "災害時の避難": care.ConcernKind.EVACUATION,
})
URGENCY_WORDS = _lookup(care.URGENCY_SHORT, {
    "高い": "high", "至急": "high", "すぐ": "high", "中程度": "medium", "普通": "medium",
    "低い": "low", "見守り": "low", **{v: k for k, v in care.URGENCY_JA.items()}})
STATUS_WORDS = _lookup(care.CASE_STATUS_JA, {"継続": "open", "対応中": "open", "支援中": "open",
                                             "完了": "closed", "終結": "closed", "解決": "closed"})
REASON_WORDS = _lookup(care.CLOSE_REASON_JA, {"解決": "solved", "つながった": "connected",
                                              "入所": "institution", "入院": "institution",
                                              "死去": "deceased", "拒否": "declined"})


def parse_word(table: dict[str, str], what: str, choices: dict):
    """A parser of one controlled word (``table``: word -> code); its message lists ``choices``."""
    def parse(text: str) -> str:
        key = _word(text)
        if key in table:
            return table[key]
        raise ValueProblem(f"{what}が読めません ({'・'.join(choices.values())})", f"unknown {what}")
    return parse


def parse_kinds(text: str) -> list[str]:
    """``孤立・閉じこもり;認知症の疑い`` -> codes (``;``, ``,``, ``、``, ``/`` or spaces between;
    ``・`` belongs to the labels)."""
    out: list[str] = []
    for word in re.split(r"[;,、/\s]+", nfkc(text)):
        if not word:
            continue
        code = KIND_WORDS.get(_word(word))
        if code is None:
            raise ValueProblem(f"気になることが読めません ({'・'.join(care.CONCERN_JA.values())})",
                               "unknown kind of concern")
        if code not in out:
            out.append(code)
    return out


def unformula(text: str) -> str:
    """A cell as exported (:func:`neutralised`) back to its text."""
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START:
        return text[1:]
    return text


def neutralised(value) -> str:
    """``value`` as a spreadsheet cell that never runs as a formula (a leading apostrophe)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


# --- reading a ledger -----------------------------------------------------------------------------

class _Row(Row):
    """A row of a care ledger: the headers come from this module's tables, not the built kinds'."""

    def __init__(self, number: int, cells: list[str], match: HeaderMatch, fields: dict, findings: Findings):
        super().__init__(number, cells, match, "care", findings)
        self._fields = fields

    def column(self, field: str) -> str:
        if field in self.match.names:
            return self.match.names[field]
        names = self._fields.get(field)
        return names[0] if names else field

    def text(self, field: str) -> str:
        return unformula(super().text(field))


def _rows(table: RawTable, fields: dict, required: tuple[str, ...], findings: Findings) -> list[_Row]:
    """The ledger's data rows under its header row (the first of the first ten non-blank rows
    naming two fields); unknown columns are warned about, missing required ones are problems."""
    lookup = {}
    for name, names in fields.items():
        for text in (*names, name):
            lookup.setdefault(header_key(text), name)
    header_at = None
    seen = 0
    for i, (_n, cells) in enumerate(table.rows):
        if not any(str(c).strip() for c in cells):
            continue
        if len({lookup[k] for k in map(header_key, cells) if k in lookup}) >= 2:
            header_at = i
            break
        seen += 1
        if seen >= 10:
            break
    if header_at is None:
        examples = "、".join(names[0] for names in fields.values())
        findings.error(None, None, f"見出し行が見つかりません (見出しの例: {examples})",
                       "no header row found")
        return []
    number, header = table.rows[header_at]
    columns: dict[str, int] = {}
    written: dict[str, str] = {}
    before = len(findings.problems)
    for j, raw in enumerate(header):
        text = str(raw).strip().strip("\u3000")
        if not text:
            continue
        name = lookup.get(header_key(text))
        if name is None:
            findings.warn(number, text, "この列は取り込み対象外のため読み込みません",
                          "unknown column, not loaded")
        elif name in columns:
            findings.error(number, text, f"列「{written[name]}」と同じ項目 ({name}) を指しています",
                           f"two columns name the same field {name}")
        else:
            columns[name], written[name] = j, text
    for name in required:
        if name not in columns:
            findings.error(number, fields[name][0],
                           f"必要な列がありません (見出しの例: {'、'.join(fields[name][:3])})",
                           f"required column {name} missing")
    if len(findings.problems) > before:
        return []
    match = HeaderMatch(number, columns, written, [])
    rows = []
    for n, cells in table.rows[header_at + 1:]:
        if any(str(c).strip(" \t\r\n\u3000") for c in cells):
            rows.append(_Row(n, cells, match, fields, findings))
    return rows


@dataclass
class Ledger:
    """What a ledger file holds, checked: rows ready to append, and what they change."""

    layer: str
    rows: list[dict] = field(default_factory=list)
    #: per appended concern (by index into ``rows``): follow-up actions to append after it
    actions: dict[int, list[dict]] = field(default_factory=dict)
    unchanged: int = 0


@dataclass
class CarePrepared(PreparedImport):
    """A validated care ledger: what :func:`apply_ledger` appends."""

    ledger: Ledger | None = None


@dataclass
class CareImportReport(ImportReport):
    """The import report of a care ledger (its title is the record kind's)."""

    title: str = ""

    def format(self, *, verbose: bool = False) -> str:
        if self.encoding == "xlsx":
            enc = "Excel (.xlsx)" + (f" シート「{self.sheet}」" if self.sheet else "") + "、"
        elif self.encoding:
            enc = f"文字コード {ENCODING_JA.get(self.encoding, self.encoding)}、"
        else:
            enc = ""
        lines = [f"{self.title}: {self.file} ({enc}{self.rows:,} 行)", *self.notes]
        if self.problems:
            lines.append(f"エラー {len(self.problems)} 件 (何も読み込んでいません):")
            lines += ["  " + p.format(verbose=verbose) for p in self.problems]
        if self.warnings:
            lines.append(f"注意 {len(self.warnings)} 件:")
            lines += ["  " + p.format(verbose=verbose) for p in self.warnings]
        if not self.problems:
            lines += _format_changes(self.changes)
            if self.written:
                lines.append("ストアに書き込みました。")
            elif self.dry_run and self.changed:
                lines.append("--dry-run のため書き込んでいません。")
        return "\n".join(lines)


class _Context:
    """What checking a ledger needs from the store, read once as the importing user."""

    def __init__(self, store: Store, access: Access, today: dt.date):
        self.store = store
        self.access = access
        self.today = today
        names = set(store.layers())
        if Layer.DISTRICTS not in names:
            raise InputError(f"ストア {store.location} に地区がありません。"
                             "先に karte build を実行してください")
        self.districts = store.read(Layer.DISTRICTS)
        self.lookup = district_lookup(self.districts)
        self.names = names

    def existing(self, layer: str) -> list[dict]:
        if layer not in self.names:
            return []
        rows = self.store.read_records(layer, access=self.access)
        return [r for r in rows if r.get(MUNICIPALITY) in (None, self.access.municipality)]

    def district(self, row: _Row) -> str | None:
        text = row.text("district_code")
        code = self.lookup.get(nfkc(text).replace(" ", "").casefold()) if text else None
        if text and code is None:
            row.error("district_code", "この地区はカルテにありません (地区コードか地区名を確認してください)",
                      "unknown district")
        return code


def _date(row: _Row, field: str, ctx: _Context, *, required: bool = False,
          future: bool = False) -> str | None:
    day = row.parse(field, parse_date, required=required)
    if day is None:
        return None
    if not future and day > ctx.today:
        row.error(field, "未来の日付です", "date in the future")
        return None
    return day.isoformat()


def _text(row: _Row, field: str, limit: int = 1000) -> str | None:
    text = clean_name(row.text(field)) if row.has(field) else ""
    if len(text) > limit:
        row.error(field, f"{limit}文字までにしてください", f"longer than {limit} characters")
        return None
    return text or None


def _check_ids(rows: list[_Row], records: list[dict], key: str) -> None:
    first: dict[str, int] = {}
    for row, record in zip(rows, records, strict=True):
        value = record.get(key)
        if not value:
            continue
        if value in first:
            row.error(key, f"番号が {first[value]} 行目と重複しています", "duplicate id")
        else:
            first[value] = row.number


def _compare(rows: list[_Row], records: list[dict], existing: list[dict], *, key: str,
             natural: tuple[str, ...], columns: tuple[str, ...], label: str) -> list[bool]:
    """For each record: is it already stored (same id, or same natural key, and the same content)?
    A match with other content is a problem on its row (the file would change a stored record)."""
    by_id = {str(r[key]): r for r in existing if r.get(key)}
    by_natural: dict[tuple, list[dict]] = {}
    for r in existing:
        by_natural.setdefault(tuple(r.get(c) for c in natural), []).append(r)
    seen: dict[tuple, int] = {}
    out = []
    for row, record in zip(rows, records, strict=True):
        same = False
        if record.get(key):
            stored = by_id.get(str(record[key]))
            if stored is not None:
                same = _same(stored, record, columns)
                if not same:
                    row.error(key, "この番号の記録はすでにあり、内容が違います (番号を確認してください)",
                              "id already stored with other content")
        else:
            natural_key = tuple(record.get(c) for c in natural)
            if natural_key in seen:
                row.error(None,
                          f"{seen[natural_key]} 行目と同じ{label}です "
                          "(別の記録なら番号の列で区別してください)",
                          "the same record twice")
            seen.setdefault(natural_key, row.number)
            stored_rows = by_natural.get(natural_key, [])
            if stored_rows:
                same = any(_same(s, record, columns) for s in stored_rows)
                if not same:
                    row.error(None, f"同じ{label}がすでに記録されていて、内容が違います "
                                    "(番号の列で別の記録と分かるようにしてください)",
                                    "stored with other content")
        out.append(same)
    return out


def _same(stored: dict, record: dict, columns: tuple[str, ...]) -> bool:
    def norm(v):
        if v is None or (isinstance(v, float) and v != v) or v == "":
            return ""
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    return all(norm(stored.get(c)) == norm(record.get(c)) for c in columns)


def _report(kind: RecordKind, path: Path, table: RawTable | None) -> CareImportReport:
    report = CareImportReport(kind.kind, path.name, title=kind.title_ja)
    if table is not None:
        report.encoding, report.sheet = table.encoding, table.sheet
    return report


def _finish(report: CareImportReport, findings: Findings, ledger: Ledger, records: list[dict],
            access: Access) -> CarePrepared:
    report.problems = sorted(findings.problems, key=lambda p: p.row or 0)
    report.warnings = sorted(findings.warnings, key=lambda p: p.row or 0)
    prepared = CarePrepared(report, access=access, ledger=ledger)
    if report.problems:
        return prepared
    change = ChangeReport(ledger.layer, unchanged=ledger.unchanged)
    for record in ledger.rows:
        change.count(record.get("district_code"), "added")
    report.changes = [change]
    return prepared


# --- meetings -------------------------------------------------------------------------------------

MEETING_COMPARED = ("held_on", "district_code", "place", "participants", "households", "summary",
                    "attendee_names", *care.ATTENDEE_COLUMNS.values())


def prepare_meetings(store: Store, path: Path, access: Access, options: dict) -> CarePrepared:
    """Read and check a meetings ledger (see the module docstring); write nothing."""
    kind = MEETINGS
    table = read_table(path, sheet=options.get("sheet"), encoding=options.get("encoding"))
    report = _report(kind, path, table)
    findings = Findings(path.name)
    ctx = _Context(store, access, options.get("today") or dt.date.today())
    rows = _rows(table, MEETING_FIELDS, MEETING_REQUIRED, findings)
    records: list[dict] = []
    kept: list[_Row] = []
    for row in rows:
        record = {"meeting_id": row.parse("meeting_id", parse_code) if row.has("meeting_id") else None,
                  "district_code": ctx.district(row), "held_on": _date(row, "held_on", ctx, required=True),
                  "place": _text(row, "place", 200), "attendee_names": _text(row, "attendee_names"),
                  "summary": _text(row, "summary", 4000)}
        counts = {}
        for column in care.ATTENDEE_COLUMNS.values():
            counts[column] = row.parse(column, parse_int) if row.has(column) else None
        record.update(counts)
        given = row.parse("participants", parse_int) if row.has("participants") else None
        total = sum(v for v in counts.values() if v)
        if given is not None and given < total:
            row.error("participants", f"参加者数 ({given}) が区分ごとの人数の合計 ({total}) より少ないです",
                      "participants fewer than the attendees by role")
        record["participants"] = given if given is not None else (total if any(
            v is not None for v in counts.values()) else None)
        record["households"] = row.parse("households", parse_int) if row.has("households") else None
        if not row.text("district_code"):
            row.error("district_code", "値が空です (必須の項目です)", "required cell is empty")
        records.append(record)
        kept.append(row)
    report.rows = len(records)
    _check_ids(kept, records, "meeting_id")
    ledger = Ledger(str(CareLayer.MEETINGS))
    if not findings.problems:
        stored = _compare(kept, records, ctx.existing(CareLayer.MEETINGS), key="meeting_id",
                          natural=("district_code", "held_on", "place"), columns=MEETING_COMPARED,
                          label="会議 (地区・開催日・会場)")
        now = _now()
        for record, same in zip(records, stored, strict=True):
            if same:
                ledger.unchanged += 1
                continue
            ledger.rows.append({k: v for k, v in {**record, "recorded_by": access.user,
                                                  "recorded_at": now}.items() if v is not None})
    return _finish(report, findings, ledger, records, access)


# --- concerns -------------------------------------------------------------------------------------

CONCERN_COMPARED = ("noticed_on", "district_code", "household", "address", "person_id", "kinds",
                    "urgency", "summary", "noticed_by_role", "noticed_by_name", "responsible_name",
                    "next_review", "status", "closed_on", "close_reason")


def prepare_concerns(store: Store, path: Path, access: Access, options: dict,
                     geocoder: Geocoder | None = None) -> CarePrepared:
    """Read and check a concerns ledger (see the module docstring); write nothing."""
    kind = CONCERNS
    table = read_table(path, sheet=options.get("sheet"), encoding=options.get("encoding"))
    report = _report(kind, path, table)
    findings = Findings(path.name)
    ctx = _Context(store, access, options.get("today") or dt.date.today())
    rows = _rows(table, CONCERN_FIELDS, CONCERN_REQUIRED, findings)
    people = {}
    if any(r.has("person_id") and r.text("person_id") for r in rows) and Layer.REGISTER in ctx.names:
        people = {str(p["person_id"]): p for p in store.read_records(Layer.REGISTER, access=access)}
    geocoder = geocoder or (default_geocoder() if any(r.text("address") for r in rows if r.has("address"))
                            else None)
    role = parse_word(ROLE_WORDS, "区分", care.CARE_ROLE_JA)
    records: list[dict] = []
    kept: list[_Row] = []
    responses: list[str | None] = []
    for row in rows:
        record = {"concern_id": row.parse("concern_id", parse_code) if row.has("concern_id") else None,
                  "district_code": ctx.district(row),
                  "noticed_on": _date(row, "noticed_on", ctx, required=True),
                  "household": _text(row, "household", 100), "address": _text(row, "address", 200),
                  "summary": _text(row, "summary", 4000),
                  "next_review": _date(row, "next_review", ctx, future=True),
                  "closed_on": _date(row, "closed_on", ctx)}
        if not row.text("district_code"):
            row.error("district_code", "値が空です (必須の項目です)", "required cell is empty")
        if not record["household"] and not row.text("household"):
            row.error("household", "値が空です (必須の項目です)", "required cell is empty")
        kinds = row.parse("kinds", parse_kinds) if row.has("kinds") else None
        record["kinds"] = join_list(kinds) if kinds else None
        record["urgency"] = (row.parse("urgency", parse_word(URGENCY_WORDS, "緊急度", care.URGENCY_SHORT))
                             if row.has("urgency") else None)
        status = row.parse("status", parse_word(STATUS_WORDS, "状況", care.CASE_STATUS_JA)) \
            if row.has("status") else None
        reason = row.parse("close_reason", parse_word(REASON_WORDS, "終了理由", care.CLOSE_REASON_JA)) \
            if row.has("close_reason") else None
        if status is None and (record["closed_on"] or reason):
            status = care.CaseStatus.CLOSED.value
        record["status"] = status or care.CaseStatus.OPEN.value
        record["close_reason"] = reason
        closed = record["status"] == care.CaseStatus.CLOSED
        if closed and not record["closed_on"] and not row.text("closed_on"):
            row.error("closed_on", "終了した世帯には終了日が必要です", "a closed case needs its closing date")
        if record["status"] == care.CaseStatus.OPEN and (record["closed_on"] or reason):
            row.error("status", "対応中なのに終了日・終了理由があります", "open case with a closing date")
        if record["closed_on"] and record["noticed_on"] and record["closed_on"] < record["noticed_on"]:
            row.error("closed_on", "気づいた日より前の終了日です", "closed before it was noticed")
        noticed = _text(row, "noticed_by", 100)
        explicit = row.parse("noticed_by_role", role) if row.has("noticed_by_role") and \
            row.text("noticed_by_role") else None
        as_role = ROLE_WORDS.get(_word(noticed)) if noticed else None
        record["noticed_by_role"] = explicit or as_role or (CareRole.OTHER.value if noticed else None)
        record["noticed_by_name"] = None if as_role and not explicit else noticed
        responsible = _text(row, "responsible", 100)
        record["responsible_name"] = responsible
        person = row.parse("person_id", parse_code) if row.has("person_id") else None
        if person:
            if person not in people:
                row.error("person_id",
                          "この名簿番号は要支援者名簿にありません (または閲覧の権限がありません)",
                          "unknown register id")
            else:
                record["person_id"] = person
        record.setdefault("person_id", None)
        record["_person"] = people.get(person) if person else None
        records.append(record)
        kept.append(row)
        response = _text(row, "response", 4000)
        responses.append(response)
    report.rows = len(records)
    _check_ids(kept, records, "concern_id")
    _locate(kept, records, ctx, geocoder, findings)
    ledger = Ledger(str(CareLayer.CONCERNS))
    if not findings.problems:
        stored = _compare(kept, records, ctx.existing(CareLayer.CONCERNS), key="concern_id",
                          natural=("district_code", "noticed_on", "household"), columns=CONCERN_COMPARED,
                          label="世帯 (地区・気づいた日・世帯)")
        now = _now()
        for record, same, response in zip(records, stored, responses, strict=True):
            if same:
                ledger.unchanged += 1
                continue
            record.pop("_person", None)
            if response:
                ledger.actions[len(ledger.rows)] = [{
                    "district_code": record["district_code"], "acted_on": record["noticed_on"],
                    "kind": care.ActionKind.OTHER.value, "note": response, "recorded_by": access.user,
                    "recorded_at": now}]
            ledger.rows.append({k: v for k, v in {**record, "recorded_by": access.user,
                                                  "recorded_at": now}.items() if v is not None})
    if ledger.actions:
        n = sum(map(len, ledger.actions.values()))
        report.notes.append(f"「対応」の {n} 件は支援の記録として追加します")
    return _finish(report, findings, ledger, records, access)


def _locate(rows: list[_Row], records: list[dict], ctx: _Context, geocoder: Geocoder | None,
            findings: Findings) -> None:
    """Each concern's point: the register entry's when it is linked, else its address geocoded
    (the town's point, as the register import does), else none; and the small area it is in."""
    points: list = []
    for row, record in zip(rows, records, strict=True):
        person = record.get("_person")
        point, precision = None, LocationPrecision.NONE
        if person is not None and person.get("x") is not None:
            point, precision = shapely.Point(person["x"], person["y"]), LocationPrecision(
                person.get("location_precision") or "exact")
        elif record.get("address") and geocoder is not None:
            try:
                hit = geocoder.geocode(record["address"])
            except ValueProblem as exc:
                row.error("address", exc.ja, exc.en)
            else:
                x, y = _TO_METRIC.transform(hit.lon, hit.lat)
                point, precision = shapely.Point(x, y), hit.precision
        points.append(point)
        record["location_precision"] = precision.value
    if findings.problems or not any(p is not None for p in points):
        for record, point in zip(records, points, strict=True):
            record["geometry"] = point
        return
    frame = _points(points)
    small = ctx.store.read(Layer.SMALL_AREAS) if Layer.SMALL_AREAS in ctx.names else None
    keys = list(locate_with_tolerance(frame, small,
                                      "key_code")) if small is not None else [None] * len(points)
    located = list(locate_with_tolerance(frame, ctx.districts, "district_code"))
    for row, record, point, key, district in zip(rows, records, points, keys, located, strict=True):
        record["geometry"] = point
        record["key_code"] = key if point is not None else None
        given = record.get("district_code")
        if point is not None and district and given and district != given:
            row.warn("district_code", f"住所の位置は地区 {district} にありますが、地区欄の "
                                      f"{record['district_code']} を使います", "location in another district")


def _points(points: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=gpd.GeoSeries(points, crs=crs.METRIC))


# --- writing --------------------------------------------------------------------------------------

def apply_ledger(store: Store, prepared: CarePrepared) -> list[dict]:
    """Append the ledger's rows as the importing user (one transaction per layer). When the
    follow-up actions of new concerns cannot be written, the concerns just appended are deleted
    again, so a failed import leaves nothing behind."""
    ledger = prepared.ledger
    access = prepared.access
    if ledger is None or not ledger.rows:
        return []
    stored = store.append_rows(ledger.layer, ledger.rows, access=access)
    actions = []
    for index, rows in ledger.actions.items():
        for action in rows:
            actions.append({**action, "concern_id": stored[index]["concern_id"]})
    if actions:
        try:
            store.append_rows(CareLayer.ACTIONS, actions, access=access)
        except Exception:
            for row in stored:
                store.delete_row(ledger.layer, row[SPECS_KEY[ledger.layer]], version=row["version"],
                                 access=access)
            raise
    return stored


SPECS_KEY = {str(name): spec.key for name, spec in care.SPECS.items()}


# --- exporting ------------------------------------------------------------------------------------

def ledger_headers(kind: str) -> list[tuple[str, str]]:
    """(field, header) of an exported ledger: the first accepted header of each field, so the
    export loads back with ``karte import``."""
    fields = {"meetings": MEETING_FIELDS, "concerns": CONCERN_FIELDS}[kind]
    return [(name, names[0]) for name, names in fields.items()]


def write_ledger(path: Path, headers: list[str], rows: list[list], *, encoding: str = "utf-8-sig") -> Path:
    """Write a ledger as CSV (``encoding``: ``utf-8-sig`` for Excel, ``utf-8`` or ``cp932``) or,
    for a ``.xlsx`` path, as a workbook; cells that would run as formulas are neutralised. The file
    holds personal data: created readable by its owner only."""
    path = Path(path)
    cells = [[neutralised(v) if isinstance(v, str) else v for v in row] for row in rows]
    if path.suffix.lower() == ".xlsx":
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(list(headers))
        for row in cells:
            sheet.append(["" if v is None else v for v in row])
        buf = io.BytesIO()
        book.save(buf)
        data = buf.getvalue()
    else:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(headers)
        writer.writerows([["" if v is None else v for v in row] for row in cells])
        try:
            data = text.getvalue().encode(encoding)
        except UnicodeEncodeError as exc:
            raise InputError(f"{path.name}: {encoding} で書けない文字があります。"
                             "utf-8 を選んでください") from exc
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)
    return path


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


MEETINGS = register(RecordKind("meetings", "地域セーフティネット会議の記録", prepare_meetings, apply_ledger,
                               aliases=("meeting", "会議")))
CONCERNS = register(RecordKind("concerns", "気になる世帯（気づき）の記録", prepare_concerns, apply_ledger,
                               aliases=("concern", "cases", "気づき")))

__all__ = ["CONCERNS", "MEETINGS", "CarePrepared", "apply_ledger", "ledger_headers", "write_ledger"]
