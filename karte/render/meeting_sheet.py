"""The printed sheet of a district's 地域セーフティネット会議 (取扱注意): what the meeting reviews and a
form for what it decides.

Page one: the title, the date, place and recorder to fill in, attendance by role (boxes), the
attendees' names; then one block per household to review (overdue and most urgent first): what is
known (kinds, watching, daily-life roles, evacuation support, responsible person, next review, the
last events) beside blank cells for today's decisions; and at the end a blank table for households
noticed since the last meeting. Every page carries the 取扱注意 band with the printing time and the
user (as the confidential district sheet does). Handed plain data by
:func:`karte.services.care.meeting_sheet_pdf`; nothing here reads a store or applies an access rule.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from reportlab.lib.colors import white

from karte.domain.schema import Edition
from karte.render.pdf_fonts import register_font, safe_text
from karte.render.pdf_layout import INK, LEFT, MUTED, RIGHT, Column, Group, PageWriter, Strong
from karte.render.sheet_model import SheetOptions
from karte.render.sheet_pages import RUNNING_H, personal_band


@dataclass(frozen=True)
class SheetHousehold:
    """One household to review, as the reader may see it (texts ready to print)."""

    number: int
    household: str
    address: str
    kinds: str
    urgency: str
    responsible: str
    next_review: str
    overdue: bool
    person: str = ""
    watching: str = ""
    life: str = ""
    evacuation: str = ""
    last: list[str] = field(default_factory=list)


@dataclass
class MeetingSheet:
    """Everything printed on one meeting sheet."""

    code: str
    name: str
    year_label: str
    user: str
    printed_at: dt.datetime
    attendee_roles: list[str]
    households: list[SheetHousehold]
    synthetic: bool = False


#: Row heights (points): a household's block is its group row and :data:`BLOCK_ROWS` rows.
ROW_H = 21.0
BLOCK_ROWS = 7
COLUMNS = (Column("項目", 78), Column("これまで", 213), Column("今日の決定（記入）", 248))
NEW_COLUMNS = (Column("世帯（呼び名）・住所", 165), Column("気づいた人", 86), Column("気になること", 120),
               Column("内容", 168))
NEW_ROWS = 6


def render_meeting_sheet(sheet: MeetingSheet) -> bytes:
    """The sheet as PDF bytes (A4, IPAexGothic embedded)."""
    font = register_font()
    buf = io.BytesIO()
    options = SheetOptions(edition=Edition.CONFIDENTIAL, user=sheet.user, printed_at=sheet.printed_at)
    writer = PageWriter(buf, paper="A4", font=font, header=_header(sheet, options), footer=_footer(sheet,
                                                                                                   font),
                        title=f"地域セーフティネット会議 記録用紙 {sheet.code} {sheet.name}",
                        author=sheet.user)
    writer.new_page()
    _attendance(writer, sheet)
    _households(writer, sheet)
    _new_households(writer)
    writer.finish()
    return buf.getvalue()


def _header(sheet: MeetingSheet, options: SheetOptions):
    def header(w: PageWriter) -> float:
        y = personal_band(w, options)
        if w.pages == 1:
            w.text(LEFT, y - 22, "地域セーフティネット会議　記録用紙", 18, bold=True)
            w.text(LEFT, y - 40, f"{sheet.name}（{sheet.code}）　{sheet.year_label}", 11)
            badge = "取扱注意"
            bw = w.canvas.stringWidth(badge, w.font, 12) + 16
            c = w.canvas
            c.setFillColor(INK)
            c.rect(RIGHT - bw, y - 27, bw, 21, stroke=0, fill=1)
            w.text(RIGHT - bw / 2, y - 21, badge, 12, bold=True, align="center", color=white)
            w.text(RIGHT, y - 40, "気になる世帯の情報を含みます。会議の後は回収してください", 7.5,
                   color=MUTED,
                   align="right")
            return y - 50
        w.text(LEFT, y - 11, f"地域セーフティネット会議　{sheet.name}（{sheet.code}）", 10.5, bold=True)
        w.text(RIGHT, y - 11, f"{sheet.year_label}　記録用紙・取扱注意", 8.5, color=MUTED, align="right")
        w.canvas.setStrokeColor(MUTED)
        w.canvas.setLineWidth(0.5)
        w.canvas.line(LEFT, y - 16, RIGHT, y - 16)
        return y - RUNNING_H

    return header


def _footer(sheet: MeetingSheet, font: str):
    text = safe_text(f"地区カルテ　地域セーフティネット会議 記録用紙　{sheet.code} {sheet.name}"
                     + ("　※合成データを含む" if sheet.synthetic else ""))

    def footer(canvas, number: int, total: int) -> None:
        canvas.setFillColor(MUTED)
        canvas.setFont(font, 7.5)
        canvas.drawString(LEFT, 22, text)
        canvas.drawCentredString((LEFT + RIGHT) / 2 + 110, 22, "取扱注意")
        canvas.setFont(font, 9)
        canvas.drawRightString(RIGHT, 22, f"{number} / {total}")

    return footer


def _attendance(w: PageWriter, sheet: MeetingSheet) -> None:
    c = w.canvas
    c.setStrokeColor(INK)
    c.setLineWidth(0.5)
    w.y -= 4
    w.text(LEFT, w.y - 13, "開催日　令和　　年　　月　　日（　　）　　　時　　分 〜　　時　　分", 10.5)
    w.y -= 24
    w.text(LEFT, w.y - 13, "会場", 10.5)
    c.line(LEFT + 28, w.y - 16, LEFT + 290, w.y - 16)
    w.text(LEFT + 310, w.y - 13, "記録者", 10.5)
    c.line(LEFT + 350, w.y - 16, RIGHT, w.y - 16)
    w.y -= 26
    w.heading("参加者（区分ごとの人数）", keep=70)
    roles = [*sheet.attendee_roles, "合計"]
    width = (RIGHT - LEFT) / len(roles)
    w.table([Column(r, width, "center") for r in roles], [[""] * len(roles)], size=8, row_h=26, header_h=18)
    w.text(LEFT, w.y - 14, "参加者の氏名", 9, color=MUTED)
    for i in range(2):
        y = w.y - 17 - i * 20
        c.line(LEFT + 62, y, RIGHT, y)
    w.y -= 46


def _households(w: PageWriter, sheet: MeetingSheet) -> None:
    n = len(sheet.households)
    overdue = sum(h.overdue for h in sheet.households)
    note = f"{n}世帯" + (f"（うち確認日を過ぎた世帯 {overdue}）" if overdue else "")
    w.heading("検討する世帯（確認日を過ぎた世帯・緊急度の高い世帯から）", note=note,
              keep=ROW_H * (BLOCK_ROWS + 2))
    if not sheet.households:
        w.paragraph("対応中の気になる世帯はありません。新たに気づいた世帯は最後の表に書いてください。", 9.5)
        return
    for h in sheet.households:
        head = f"{h.number}. {h.household}　{h.address}　緊急度 {h.urgency}"
        if h.person:
            head += f"　名簿: {h.person}"
        w.ensure(ROW_H * (BLOCK_ROWS + 1) + 8)
        review = Strong(f"{h.next_review}（過ぎています）") if h.overdue else h.next_review
        rows = [Group(head),
                ["気になること", h.kinds, ""],
                ["見守り", h.watching or "未定", "誰が：　　　　　　頻度："],
                ["生活支援", h.life or "—", "雪かき・ゴミ出し・買い物・その他："],
                ["避難支援", h.evacuation or "—", "支援者の確認・変更："],
                ["担当者", h.responsible, ""],
                ["次回確認日", review, "令和　　年　　月　　日"],
                ["経過", "／".join(h.last), "メモ："]]
        w.table(COLUMNS, rows, size=8.5, row_h=ROW_H, header_h=15, continued="（検討する世帯の続き）")
        w.y -= 8


def _new_households(w: PageWriter) -> None:
    w.heading("新たに気づいた世帯（会議で話題になった世帯）", keep=NEW_ROWS * ROW_H + 20)
    w.table(NEW_COLUMNS, [[""] * len(NEW_COLUMNS) for _ in range(NEW_ROWS)], row_h=ROW_H + 4)
    w.paragraph("記入した内容は、地区カルテの「見守り・セーフティネット」の画面で会議の記録として入力してください。"
                "この用紙は会議の後に回収し、入力が済んだら廃棄してください。", 8.5)


__all__ = ["BLOCK_ROWS", "MeetingSheet", "SheetHousehold", "render_meeting_sheet"]
