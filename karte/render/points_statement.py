"""The yearly volunteer-points statement of one 地域福祉サポーター (ボランティアポイント明細書), A4.

Drawn from prepared data (:class:`StatementData`, made by :func:`karte.services.supporters.statement`):
the supporter, the fiscal year, the balance brought forward, every entry of the year with its
running balance, the totals per kind, the closing balance, and the rule table the points were
given by. The figures add up on the page: brought forward + 付与 + 交換 + 訂正 = 年度末残高, and
each line's balance is the previous one plus its points (the tests read the PDF back and check).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import BinaryIO

from karte.domain.supporters import ENTRY_JA, EntryKind, fiscal_year_ja
from karte.render.pdf_fonts import register_font
from karte.render.pdf_layout import LEFT, MUTED, RIGHT, TOP, Column, PageWriter, Strong

FOOTER_Y = 22.0


@dataclass(frozen=True)
class StatementData:
    """One supporter's statement of one fiscal year (everything the page prints)."""

    supporter_id: str
    name: str
    district_code: str
    district_name: str
    fiscal_year: int
    opening: int
    #: entries of the year, oldest first: entry_id, entry_on, kind, kind_ja, what, rule, note,
    #: points, balance (after the entry)
    lines: list[dict]
    #: points per entry kind in the year (``earned``, ``redeemed``, ``reversal``)
    totals: dict[str, int]
    closing: int
    issued_on: dt.date
    #: (activity, points, unit, winter multiplier or None) of the rule table
    rules: list[tuple] = field(default_factory=list)
    synthetic: bool = False


def points_statement_pdf(data: StatementData, target: BinaryIO) -> int:
    """Write the statement to ``target`` (a binary file); the number of pages."""
    font = register_font()
    period = f"{data.fiscal_year}年4月1日〜{data.fiscal_year + 1}年3月31日"

    def header(w: PageWriter) -> float:
        y = TOP
        w.text(LEFT, y - 20, "ボランティアポイント明細書", 18, bold=True)
        w.text(RIGHT, y - 18, fiscal_year_ja(data.fiscal_year), 11, align="right")
        w.text(LEFT, y - 38, f"{data.name} 様　（サポーター番号 {data.supporter_id}・{data.district_name}）",
               11)
        w.text(LEFT, y - 53, f"対象期間 {period}　発行日 {_date_ja(data.issued_on)}", 8.5, color=MUTED)
        if data.synthetic:
            w.text(RIGHT, y - 53, "※デモ用の合成データです", 8.5, color=MUTED, align="right")
        return y - 62

    def footer(canvas, number, total):
        canvas.setFont(font, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(LEFT, FOOTER_Y, "地域福祉サポーター ボランティアポイント（ボランティアセンター）")
        canvas.drawRightString(RIGHT, FOOTER_Y, f"{number} / {total}")

    w = PageWriter(target, paper="A4", font=font, header=header, footer=footer,
                   title=f"ボランティアポイント明細書 {data.supporter_id} {data.fiscal_year}年度")
    w.new_page()
    w.heading("年間のまとめ", keep=120)
    earned = data.totals.get(EntryKind.EARNED.value, 0)
    redeemed = data.totals.get(EntryKind.REDEEMED.value, 0)
    reversed_ = data.totals.get(EntryKind.REVERSAL.value, 0)
    summary = [
        ("前年度からの繰越", _pt(data.opening)),
        (f"{ENTRY_JA[EntryKind.EARNED]}（活動によるポイント）", _pt(earned, sign=True)),
        (f"{ENTRY_JA[EntryKind.REDEEMED]}", _pt(redeemed, sign=True)),
        (f"{ENTRY_JA[EntryKind.REVERSAL]}", _pt(reversed_, sign=True)),
        ("年度末残高", Strong(_pt(data.closing))),
    ]
    w.table([Column("項目", 260), Column("ポイント", 120, "right")], summary, row_h=17)
    w.paragraph(f"繰越 {_pt(data.opening)} + 付与 {_pt(earned, sign=True)} + 交換 {_pt(redeemed, sign=True)}"
                f" + 訂正 {_pt(reversed_, sign=True)} = 年度末残高 {_pt(data.closing)}")
    w.space(6)
    w.heading("明細", note=f"{len(data.lines)} 件", keep=60)
    columns = [Column("日付", 60), Column("番号", 56), Column("区分", 50), Column("内容", 118),
               Column("基準", 161), Column("ポイント", 46, "right"), Column("残高", 48, "right")]
    rows = [("", "", "繰越", "前年度からの繰越", "", "", _n(data.opening))]
    for line in data.lines:
        what = line["what"] or line["note"]
        if line["what"] and line["note"]:
            what = f"{line['what']}（{line['note']}）"
        rows.append((line["entry_on"], line["entry_id"], line["kind_ja"], what, line["rule"],
                     _n(line["points"], sign=True), _n(line["balance"])))
    w.table(columns, rows, size=8, row_h=16, continued="明細（続き）", empty="この年度の記録はありません")
    w.space(8)
    w.heading("ポイントの基準", keep=40 + 14 * len(data.rules))
    rule_rows = [(activity, f"{points} pt / {unit}", f"冬期 × {winter:g}" if winter else "")
                 for activity, points, unit, winter in data.rules]
    w.table([Column("活動", 200), Column("基準", 110, "right"), Column("季節の割増", 110, "right")],
            rule_rows, size=8.5, row_h=14)
    w.paragraph("時間で数える活動は30分単位（始めた30分を1単位）、回数で数える活動は1回ごとです。"
                "冬期（積雪期）の割増は活動日が積雪期の期間内のときに付きます。訂正は元の記録を消さず、"
                "同じポイントを差し引く記録で行います。")
    w.finish()
    return w.pages


def _n(value: int, *, sign: bool = False) -> str:
    return f"{value:+,}" if sign and value else f"{value:,}"


def _pt(value: int, *, sign: bool = False) -> str:
    return f"{_n(value, sign=sign)} pt"


def _date_ja(day: dt.date) -> str:
    era = f"令和{day.year - 2018}年" if day >= dt.date(2019, 5, 1) else f"{day.year}年"
    return f"{era}{day.month}月{day.day}日（{day.isoformat()}）"
