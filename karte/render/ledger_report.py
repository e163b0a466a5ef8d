"""The yearly report of a district's hand-out ledger (名簿の配布記録 年次報告), as PDF.

One fiscal year (年度, April to March) of one district: how many copies of the register were
made, handed over, returned, destroyed, opened, and which were still out when the year ended (or
on the day the report was made, for the current year), with each copy's holder, purpose, legal
basis, due date and the hand-overs and returns of the year. It names holders, so it is itself
marked 取扱注意; a line for the reviewer's signature closes it (the yearly check 第49条の12 asks of
the city).

Drawn from what it is handed (:class:`LedgerReport`, prepared by :mod:`karte.services.copies`).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from reportlab.lib.colors import white

from karte.render.pdf_fonts import register_font
from karte.render.pdf_layout import INK, LEFT, MUTED, RIGHT, TOP, Column, PageWriter, Strong
from karte.render.sheet_pages import FOOTER_Y, JST, date_ja

BAND_H = 21.0

COPY_COLUMNS = (
    Column("複製番号", 50), Column("種類", 74), Column("作成日", 48), Column("提供先", 80),
    Column("目的・根拠", 66), Column("返却期限", 48), Column("状態", 56), Column("回収・廃棄", 48),
    Column("人数", 25, "right"), Column("版", 44),
)
EVENT_COLUMNS = (Column("日時", 130), Column("複製番号", 60), Column("記録", 90), Column("相手・担当", 259))


@dataclass(frozen=True)
class ReportRow:
    """One copy in the report (dates in JST)."""

    copy_id: str
    kind_ja: str
    made: dt.date
    made_by: str
    holder: str
    purpose_ja: str
    basis_ja: str
    due: dt.date
    state_ja: str
    outstanding: bool
    overdue: bool
    closed: dt.date | None
    persons: int
    version: str
    superseded: bool
    #: (when, in JST; what; who) of the year's events
    events: list[tuple[dt.datetime, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class LedgerReport:
    """A district's ledger for fiscal year ``year`` (``start`` to ``end``), as of ``cut``."""

    district: str
    district_name: str
    year: int
    start: dt.date
    end: dt.date
    cut: dt.date
    rows: list[ReportRow]
    user: str
    printed_at: dt.datetime


def fiscal_year_ja(year: int) -> str:
    """``2026年度（令和8年度）``."""
    era = year - 2018
    return f"{year}年度（令和{'元' if era == 1 else era}年度）"


def render_report(report: LedgerReport) -> bytes:
    """The report as PDF bytes: summary, the copies, the year's hand-overs and returns, sign-off."""
    font = register_font()
    buf = io.BytesIO()
    printed = report.printed_at.astimezone(JST).strftime("%Y-%m-%d %H:%M")

    def header(w: PageWriter) -> float:
        c = w.canvas
        c.setFillColor(INK)
        c.rect(LEFT, TOP - 17, RIGHT - LEFT, 17, stroke=0, fill=1)
        w.text(LEFT + 6, TOP - 12.5, "取扱注意", 11, color=white, bold=True)
        w.text(LEFT + 62, TOP - 12, "提供先の氏名を含みます。目的外の利用・複写を禁止", 7.5, color=white)
        w.text(RIGHT - 6, TOP - 12, f"作成 {printed} JST　作成者 {report.user}", 7.5, color=white,
               align="right")
        y = TOP - BAND_H
        if w.pages > 1:
            w.text(LEFT, y - 11, f"名簿の配布記録 {fiscal_year_ja(report.year)}　{report.district_name}"
                   f"（{report.district}）", 10.5, bold=True)
            y -= 20
        return y

    def footer(canvas, number: int, total: int) -> None:
        canvas.setFillColor(MUTED)
        canvas.setFont(font, 7.5)
        canvas.drawString(LEFT, FOOTER_Y, f"地区カルテ 名簿の配布記録 年次報告　{report.district}　"
                                          f"{fiscal_year_ja(report.year)}")
        canvas.setFont(font, 9)
        canvas.drawRightString(RIGHT, FOOTER_Y, f"{number} / {total}")

    w = PageWriter(buf, paper="A4", font=font, header=header, footer=footer,
                   title=f"名簿の配布記録 {report.district} {report.year}年度", author=report.user)
    w.new_page()
    _title(w, report)
    _summary(w, report)
    _copies(w, report)
    _events(w, report)
    _sign_off(w)
    w.finish()
    return buf.getvalue()


def _title(w: PageWriter, report: LedgerReport) -> None:
    y = w.y
    w.text(LEFT, y - 26, "名簿の配布記録　年次報告", 20, bold=True)
    w.text(LEFT, y - 46, f"{report.district_name}（{report.district}）　{fiscal_year_ja(report.year)}", 13)
    as_of = "年度末" if report.cut >= report.end else f"{date_ja(report.cut)}（作成日）"
    w.text(LEFT, y - 62, f"対象期間 {date_ja(report.start)}〜{date_ja(report.end)}　状態は{as_of}時点", 9,
           color=MUTED)
    w.y = y - 70
    w.paragraph("避難行動要支援者名簿の複製（取扱注意・訓練用の地区シート、名簿CSV、封印名簿）について、"
                "作成・提供・回収・廃棄を記録したものです（災害対策基本法 第49条の12・第49条の13）。"
                "この年度に作成した複製と、年度の初めに未回収だった複製を載せています。", 8.5)


def _summary(w: PageWriter, report: LedgerReport) -> None:
    rows = report.rows
    in_year = [r for r in rows if r.made >= report.start]
    events = [e for r in rows for e in r.events]

    def count(what: str) -> int:
        return sum(1 for _, kind, _ in events if kind == what)

    outstanding = [r for r in rows if r.outstanding]
    w.heading("集計", keep=120)
    cols = (Column("項目", 300), Column("件数", 80, "right"))
    table = [
        ("この年度に作成した複製", f"{len(in_year)} 部"),
        ("前年度から未回収で引き継いだ複製", f"{len(rows) - len(in_year)} 部"),
        ("手渡しの記録", f"{count('手渡し')} 件"),
        ("回収した複製", f"{count('回収')} 部"),
        ("廃棄した複製", f"{count('廃棄')} 部"),
        ("開封した封印名簿", f"{count('開封')} 部"),
        ("未回収（配布中・未配布）", f"{len(outstanding)} 部"),
        ("　うち返却期限を過ぎたもの", _strong_if(sum(r.overdue for r in outstanding), "部")),
        ("　うち名簿の古い版（現在の名簿と内容が違う）",
         _strong_if(sum(r.superseded for r in outstanding), "部")),
    ]
    w.table(cols, table, size=9.5, row_h=15)


def _copies(w: PageWriter, report: LedgerReport) -> None:
    w.heading("複製の一覧", note="作成順　状態の太字は返却期限切れ・古い版")
    rows = [(r.copy_id, r.kind_ja, _short(r.made), r.holder, f"{r.purpose_ja}・{r.basis_ja}", _short(r.due),
             Strong(r.state_ja + ("・期限切れ" if r.overdue else "") + ("・古い版" if r.superseded else ""))
             if (r.overdue or r.superseded) else r.state_ja,
             _short(r.closed) if r.closed else "", str(r.persons), r.version)
            for r in report.rows]
    w.table(COPY_COLUMNS, rows, size=7.5, row_h=20, continued="複製の一覧（続き）",
            empty="この年度の複製はありません。")


def _events(w: PageWriter, report: LedgerReport) -> None:
    events = sorted(((when, r.copy_id, what, who) for r in report.rows for when, what, who in r.events),
                    key=lambda e: (e[0], e[1]))
    w.heading("この年度の受け渡し・回収・廃棄", note=f"{len(events)} 件　日時順")
    w.table(EVENT_COLUMNS, [(f"{date_ja(t.date())} {t:%H:%M}", c, what, who) for t, c, what, who in events],
            size=8.5,
            row_h=15, continued="受け渡し・回収・廃棄（続き）", empty="記録はありません。")


def _sign_off(w: PageWriter) -> None:
    w.heading("確認", keep=60)
    w.y -= 28
    w.text(LEFT + 4, w.y, "確認日　　　　年　　月　　日　　　確認者（所属・氏名）", 10)
    w.canvas.setStrokeColor(MUTED)
    w.canvas.line(LEFT + 280, w.y - 3, RIGHT, w.y - 3)


def _short(day: dt.date) -> str:
    return day.strftime("%Y-%m-%d")


def _strong_if(n: int, unit: str):
    text = f"{n} {unit}"
    return Strong(text) if n else text


__all__ = ["LedgerReport", "ReportRow", "fiscal_year_ja", "render_report"]
