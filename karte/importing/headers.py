"""The one table of accepted column headers, per file kind.

Each field of a kind lists the header names accepted for it, Japanese and English. Headers are
compared after :func:`header_key` (NFKC, case-folded, spaces, ``_``, ``-`` and ``.`` removed), so
``Birth Date``, ``birth_date`` and ``生年月日`` in full- or half-width all match. A header that
matches nothing is reported (and its column not loaded); two headers naming one field are an
error. ``docs/import/README.md`` prints this table (:func:`markdown_table`); a test keeps the two
in step.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from karte.domain.errors import Problem

#: Where a row is: the same in every point kind.
LOCATION_FIELDS: dict[str, tuple[str, ...]] = {
    "address": ("住所", "所在地", "現住所", "address"),
    "latitude": ("緯度", "lat", "latitude", "y(緯度)"),
    "longitude": ("経度", "lon", "lng", "long", "longitude", "x(経度)"),
    # 平面直角座標系 (第X系): survey convention, X is northing and Y is easting
    "plane_x": ("X座標", "平面直角座標X", "northing", "plane_x"),
    "plane_y": ("Y座標", "平面直角座標Y", "easting", "plane_y"),
}
DISTRICT_FIELD: dict[str, tuple[str, ...]] = {
    "district_code": ("地区コード", "地区", "地区社協", "地区名", "district_code", "district"),
}

FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "register": {
        "person_id": ("名簿番号", "整理番号", "管理番号", "番号", "宛名番号", "id", "person_id"),
        "name": ("氏名", "名前", "氏名(漢字)", "name"),
        "kana": ("フリガナ", "ふりがな", "カナ氏名", "氏名カナ", "氏名(カナ)", "kana"),
        **LOCATION_FIELDS,
        "birth_date": ("生年月日", "誕生日", "birth_date", "birthdate", "date_of_birth"),
        "care_level": ("要介護度", "要介護状態区分", "介護度", "care_level"),
        "disability_kind": ("障害種別", "障がい種別", "障害の種類", "disability_kind"),
        "disability_grade": ("障害等級", "障がい等級", "等級", "disability_grade"),
        "elderly_only_household": ("高齢者のみ世帯", "高齢者世帯", "elderly_only_household"),
        "intractable_disease": ("難病", "指定難病", "intractable_disease"),
        "infant": ("乳幼児", "infant"),
        "medical_devices": ("医療機器", "医療的ケア", "medical_devices"),
        "mobility": ("移動", "移動の状況", "歩行", "mobility"),
        "consent": ("同意", "同意状況", "同意の有無", "情報提供同意", "consent"),
        "consent_date": ("同意日", "回答日", "consent_date"),
        "supporter_ids": ("支援者", "支援者番号", "避難支援者", "supporter_ids", "supporters"),
        "plan_status": ("個別避難計画", "個別計画", "計画", "plan_status"),
        "shelter_id": ("避難所", "避難所ID", "避難先", "shelter_id", "shelter"),
        "emergency_contact": ("緊急連絡先", "緊急時連絡先", "emergency_contact"),
        **DISTRICT_FIELD,
        "key_code": ("小地域コード", "KEY_CODE", "key_code"),
    },
    "cooperators": {
        "cooperator_id": ("協力者番号", "番号", "id", "cooperator_id"),
        "role": ("区分", "役職", "役割", "role"),
        "name": ("氏名", "名前", "name"),
        "phone": ("電話番号", "電話", "連絡先", "phone", "tel"),
        **LOCATION_FIELDS,
        "help_kinds": ("できる支援", "支援内容", "支援の種類", "help_kinds", "help"),
        "capacity": ("支援可能人数", "支援できる人数", "人数", "capacity"),
        **DISTRICT_FIELD,
    },
    "services": {
        "service_id": ("サービス番号", "番号", "id", "service_id"),
        "kind": ("種類", "種別", "kind"),
        "name": ("名称", "サービス名", "活動名", "name"),
        "operator": ("実施主体", "運営", "主催", "operator"),
        "venue": ("会場", "場所", "venue"),
        **LOCATION_FIELDS,
        "frequency": ("頻度", "開催頻度", "frequency"),
        "schedule": ("日程", "開催日時", "schedule"),
        "contact": ("連絡先", "問い合わせ", "問合せ先", "contact"),
        "target": ("対象", "対象者", "target"),
        **DISTRICT_FIELD,
    },
    "shelters": {
        "shelter_id": ("共通ID", "避難所ID", "番号", "id", "shelter_id"),
        "name": ("施設・場所名", "施設名", "名称", "name"),
        **LOCATION_FIELDS,
        "welfare": ("福祉避難所", "welfare"),
        "accepts": ("受入対象者", "accepts"),
        "note": ("備考", "note"),
    },
    "stats": {
        "key_code": ("KEY_CODE", "小地域コード", "町丁コード", "key_code"),
        "area_name": ("町丁・字", "町丁字名", "NAME", "小地域名", "area_name"),
        "population": ("人口", "人口総数", "総数", "総数、年齢「不詳」含む", "人口(総数)", "population"),
        "households": ("世帯数", "世帯総数", "households"),
        "age_0_14": ("0〜14歳", "0~14歳", "年少人口", "age_0_14"),
        "age_15_64": ("15〜64歳", "15~64歳", "生産年齢人口", "age_15_64"),
        "age_65_74": ("65〜74歳", "65~74歳", "前期高齢者", "age_65_74"),
        "age_75_plus": ("75歳以上", "後期高齢者", "age_75_plus"),
        "elderly_alone": ("一人暮らし高齢者", "高齢単身世帯", "elderly_alone"),
        "disabled": ("障がい者", "障害者", "障害者数", "disabled"),
    },
    "districts": {
        "key_code": ("KEY_CODE", "小地域コード", "key_code"),
        "district_code": ("地区コード", "コード", "district_code", "code"),
        "district_name": ("地区名", "名称", "district_name", "name"),
    },
}

#: Fields that must have a column (the row checks then say which cells are empty).
REQUIRED: dict[str, tuple[str, ...]] = {
    "register": ("person_id", "name", "birth_date", "consent"),
    "cooperators": ("cooperator_id", "role", "name"),
    "services": ("service_id", "kind", "name"),
    "shelters": ("shelter_id", "name"),
    "stats": ("key_code",),
    "districts": ("district_code", "district_name"),
}

#: e-Stat code columns that carry no data for us (accepted silently in e-Stat tables).
ESTAT_IGNORED = ("HYOSYO", "CITYNAME", "HTKSYORI", "HTKSAKI", "GASSAN")

_DROP = re.compile(r"[\s_\-.・･]")


def header_key(text: str) -> str:
    """The comparable form of a header: NFKC, case-folded, without spaces and ``_ - . ・``."""
    key = unicodedata.normalize("NFKC", str(text)).casefold()
    key = key.replace("〜", "~").replace("～", "~")
    return _DROP.sub("", key)


def _lookup(kind: str) -> dict[str, str]:
    table: dict[str, str] = {}
    for field, names in FIELDS[kind].items():
        for name in (*names, field):
            table.setdefault(header_key(name), field)
    return table


@dataclass(frozen=True)
class HeaderMatch:
    """How the columns of a file map to fields."""

    row: int                      # the header's row number
    fields: dict[str, int]        # field -> column index
    names: dict[str, str]         # field -> the header as written in the file
    unknown: list[str]            # headers that match no field


def match_headers(kind: str, header: list[str], *, row: int, source: str,
                  problems: list[Problem], warnings: list[Problem],
                  ignore: tuple[str, ...] = ()) -> HeaderMatch:
    """Map a header row to fields; record duplicates and missing required columns as problems,
    unknown columns as warnings."""
    lookup = _lookup(kind)
    ignored = {header_key(x) for x in ignore}
    fields: dict[str, int] = {}
    names: dict[str, str] = {}
    unknown: list[str] = []
    for j, raw in enumerate(header):
        text = str(raw).strip().strip("\u3000")
        if not text:
            continue
        key = header_key(text)
        field = lookup.get(key)
        if field is None:
            if key not in ignored:
                unknown.append(text)
            continue
        if field in fields:
            problems.append(Problem(source, row, text,
                                    f"列「{names[field]}」と同じ項目 ({field}) を指しています",
                                    f"two columns name the same field {field}"))
            continue
        fields[field] = j
        names[field] = text
    for text in unknown:
        warnings.append(Problem(source, row, text, "この列は取り込み対象外のため読み込みません",
                                "unknown column, not loaded"))
    for field in REQUIRED[kind]:
        if field not in fields:
            accepted = "、".join(FIELDS[kind][field][:4])
            problems.append(Problem(source, row, FIELDS[kind][field][0],
                                    f"必要な列がありません (見出しの例: {accepted})",
                                    f"required column {field} missing"))
    return HeaderMatch(row, fields, names, unknown)


def find_header_row(kind: str, rows: list[tuple[int, list[str]]], *, within: int = 10) -> int | None:
    """Index (into ``rows``) of the header row: the first of the first ``within`` non-blank rows in
    which at least two cells name fields of ``kind`` (title lines above it are skipped)."""
    lookup = _lookup(kind)
    seen = 0
    for i, (_number, cells) in enumerate(rows):
        if not any(str(c).strip() for c in cells):
            continue
        hits = {lookup[k] for k in (header_key(c) for c in cells) if k in lookup}
        if len(hits) >= 2:
            return i
        seen += 1
        if seen >= within:
            break
    return None


def export_header(kind: str, field: str) -> str:
    """The header karte writes for ``field`` of ``kind`` (its first accepted name, so the file
    reads back with :func:`match_headers`)."""
    return FIELDS[kind][field][0]


def markdown_table(kind: str) -> str:
    """The accepted headers of ``kind`` as a Markdown table (printed in the docs)."""
    lines = ["| field | accepted headers | required |", "|---|---|---|"]
    for field, names in FIELDS[kind].items():
        req = "yes" if field in REQUIRED[kind] else ""
        lines.append(f"| `{field}` | {', '.join(names)} | {req} |")
    return "\n".join(lines)
