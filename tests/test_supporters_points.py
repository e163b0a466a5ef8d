"""Volunteer points: the rule table, and the yearly statement PDF that adds up (read back from the
PDF itself), plus the topic's vocabularies and availability rules."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess

import pytest
from api_fixtures import pdf_text
from pypdf import PdfReader

from karte.domain import supporters as topic
from karte.domain.layers import LAYERS, RECORD_LAYERS
from karte.domain.supporters import (
    POINT_RULES,
    WINTER_MULTIPLIERS,
    Activity,
    availability_problems,
    award,
    fiscal_year_of,
    hours_ja,
    parse_hours,
    request_problems,
    weekdays_ja,
)
from karte.render.points_statement import StatementData, points_statement_pdf

# --- vocabularies and rules ---------------------------------------------------------------------

def test_every_activity_has_a_label_a_group_a_menu_and_a_rule():
    assert {a.ja for a in Activity} >= {"見守り", "声がけ", "交通安全", "ゴミ出し", "買い物", "雪かき",
                                       "移送", "届け物", "短時間の保育", "健康体操・趣味講座の指導"}
    assert {m.ja for m in topic.MenuKind} == {
        "高齢者支援全般", "障がい者支援全般", "子育て支援全般", "健康づくり全般", "見守り・声がけ支援",
        "防犯・交通安全", "避難支援・雪かき", "移送支援"}
    for a in Activity:
        assert a.group in topic.GROUP_JA and a.menu in topic.MENU_JA and a in POINT_RULES
    assert set(WINTER_MULTIPLIERS) <= set(Activity) and WINTER_MULTIPLIERS[Activity.SNOW] > 1


def test_the_topic_layers_are_personal_records_with_a_district_and_a_municipality():
    names = [str(e.name) for e in topic.LAYERS]
    assert set(names) <= RECORD_LAYERS
    prefixes = [e.id_prefix for e in topic.LAYERS]
    assert len(set(prefixes)) == len(prefixes)
    for entry in topic.LAYERS:
        assert LAYERS[str(entry.name)].personal
        assert "municipality_code" in entry.column_names
        assert entry.district_column is None or "district_code" in entry.column_names
    assert LAYERS["point_ledger"].updaters == ()  # nobody changes an entry


@pytest.mark.parametrize(("activity", "hours", "visits", "winter", "points"), [
    ("snow", 1.0, None, False, 100),
    ("snow", 1.0, None, True, 150),
    ("snow", 1.1, None, True, 225),      # a started half hour counts: 1.5 h × 100 × 1.5
    ("snow", 0.2, None, False, 50),      # at least half an hour
    ("watching", None, 3, True, 150),    # no winter multiplier for watching
    ("shopping", None, 1, True, 60),     # 50 × 1.2
    ("delivery", None, 1, True, 48),     # 40 × 1.2
    ("transport", None, None, False, 80),
])
def test_points_by_the_rule_table(activity, hours, visits, winter, points):
    got = award(activity, hours=hours, visits=visits, winter=winter)
    assert got.points == points
    assert got.rule_ja.startswith(Activity(activity).ja)
    assert ("冬期" in got.rule_ja) == (got.multiplier != 1.0)


def test_hours_weekdays_and_impossible_availability():
    assert parse_hours("09:00-12:00;13:00-15:30") == [(540, 720), (780, 930)]
    assert hours_ja("06:00-09:00;09:00-12:00") == "6:00〜12:00"  # adjacent windows read as one
    assert weekdays_ja("mon;fri") == "月・金" and weekdays_ja("") == "曜日指定なし"
    for bad in ("12:00-09:00", "24:30-25:00", "9:60-10:00", "noon"):
        with pytest.raises(ValueError):
            parse_hours(bad)
    fields = lambda found: [f for f, _, _ in found]  # noqa: E731
    snow_summer = availability_problems(activities=["snow"], weekdays="", hours="", season="non_winter")
    assert fields(snow_summer) == ["season"]
    assert fields(availability_problems(activities=["watching"], weekdays="mon", hours="09:00-09:15",
                                        season="all")) == ["hours"]
    moon = availability_problems(activities=["watching"], weekdays="moon", hours="", season="all")
    assert fields(moon) == ["weekdays"]
    assert availability_problems(activities=["snow", "watching"], weekdays="", hours="07:00-08:00",
                                 season="non_winter") == []
    assert fields(request_problems(activity="shopping", recurrence="every_snowfall", weekdays="", hours="",
                                   starts_on=None, ends_on=None)) == ["recurrence"]
    assert fields(request_problems(activity="transport", recurrence="once", weekdays="", hours="",
                                   starts_on=None, ends_on=None)) == ["starts_on"]


def test_fiscal_years():
    assert fiscal_year_of(dt.date(2027, 3, 31)) == 2026 and fiscal_year_of(dt.date(2027, 4, 1)) == 2027
    assert topic.fiscal_year_ja(2026) == "令和8年度（2026年度）"


# --- the statement ------------------------------------------------------------------------------

def statement(lines: int = 60) -> StatementData:
    """Two pages of entries: earned, redeemed and a reversal, from a balance brought forward."""
    rows, balance = [], 1234
    for i in range(lines):
        if i == 20:
            kind, points, what = "redeemed", -500, ""
        elif i == 30:
            kind, points, what = "reversal", -150, "PT000031 の取消"
        else:
            kind, points, what = "earned", 50 + 25 * (i % 5), f"雪かき {1 + i % 3}時間"
        balance += points
        day = dt.date(2026, 4, 1) + dt.timedelta(days=5 * i)
        rows.append({"entry_id": f"PT{i + 1:06d}", "entry_on": day.isoformat(), "kind": kind,
                     "kind_ja": topic.ENTRY_JA[topic.EntryKind(kind)], "what": what,
                     "rule": "雪かき 100pt/時間 × 1時間" if kind == "earned" else "", "note": "",
                     "points": points, "balance": balance})
    totals = {k: sum(r["points"] for r in rows if r["kind"] == k) for k in ("earned", "redeemed", "reversal")}
    return StatementData(supporter_id="SP000042", name="佐藤 花子", district_code="S05",
                         district_name="（仮）石江地区", fiscal_year=2026, opening=1234, lines=rows,
                         totals=totals, closing=balance, issued_on=dt.date(2027, 4, 5),
                         rules=[(a.ja, r.points, r.unit_ja, WINTER_MULTIPLIERS.get(a))
                                for a, r in POINT_RULES.items()])


def _number(text: str) -> int:
    return int(text.replace(",", "").replace("+", "").replace("pt", "").strip())


def test_the_statement_pdf_adds_up():
    data = statement()
    buf = io.BytesIO()
    pages = points_statement_pdf(data, buf)
    pdf = buf.getvalue()
    assert pages == len(PdfReader(io.BytesIO(pdf)).pages) >= 2
    text = pdf_text(pdf)
    assert "ボランティアポイント明細書" in text and "佐藤 花子 様" in text and "令和8年度（2026年度）" in text
    assert "発行日 令和9年4月5日" in text
    # the summary: brought forward + earned + exchanged + corrected = closing, as printed
    summary = re.search(r"繰越 ([\d,]+) pt \+ 付与 ([+\-\d,]+) pt \+ 交換 ([+\-\d,]+) pt"
                        r" \+ 訂正 ([+\-\d,]+) pt = 年度末残高 ([\d,]+) pt", text)
    assert summary, text[:800]
    opening, earned, redeemed, reversed_, closing = (_number(g) for g in summary.groups())
    assert (opening, earned, redeemed, reversed_, closing) == (
        data.opening, data.totals["earned"], data.totals["redeemed"], data.totals["reversal"], data.closing)
    assert opening + earned + redeemed + reversed_ == closing
    # every entry line: the balance is the previous balance plus its points
    line = r"^\s*(\d{4}-\d{2}-\d{2})\s+(PT\d{6})\s+\S+.*?\s([+\-][\d,]+)\s+([\d,]+)\s*$"
    lines = re.findall(line, text, re.M)
    assert len(lines) == len(data.lines)
    running = opening
    for _, entry, points, after in lines:
        running += _number(points)
        assert _number(after) == running, entry
    assert running == closing


def test_the_statement_embeds_its_font():
    buf = io.BytesIO()
    points_statement_pdf(statement(3), buf)
    done = subprocess.run(["pdffonts", "-"], input=buf.getvalue(), capture_output=True, check=True)
    fonts = done.stdout.decode()
    assert "IPAexGothic" in fonts
    row = next(line for line in fonts.splitlines() if "IPAexGothic" in line).split()
    assert row[-5:-2] == ["yes", "yes", "yes"]  # embedded, subset, unicode map
