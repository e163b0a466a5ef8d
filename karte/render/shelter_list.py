"""The sealed shelter list (封印名簿): everyone whose shelter it is, consented or not, for
disaster use only.

Many cities keep, at each designated shelter, a sealed envelope with the full list of the
support-needers who evacuate there; it is opened only when a disaster strikes or is imminent
(災害対策基本法 第49条の11第3項: then the register may be used without consent to protect life).
Page 1 is the cover that goes on top inside the envelope (what it is, when it may be opened, the
boxes for sealing and for the opening to be written in); the list follows. Every page carries
the copy number as text and QR code (scanned to record the opening in the ledger).

Drawn from what it is handed (:class:`SealedList`, prepared by :mod:`karte.services.copies`).
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from reportlab.lib.colors import white

from karte.domain.schema import CONSENT_JA, MOBILITY_JA, Consent, Mobility
from karte.render.pdf_fonts import register_font
from karte.render.pdf_layout import INK, LEFT, MUTED, RIGHT, TOP, Column, PageWriter
from karte.render.sheet_pages import FOOTER_Y, JST, copy_mark, date_ja, page_number_x

#: Row height of the list (points): two lines of 8 pt in the address and needs columns.
ROW_H = 21.0
BAND_H = 21.0

COLUMNS = (
    Column("No.", 20, "right"), Column("番号", 40), Column("氏名", 58), Column("フリガナ", 70),
    Column("生年月日", 50), Column("住所", 90), Column("必要な支援", 80), Column("移動", 38),
    Column("同意", 30), Column("支援者（電話）", 63),
)


@dataclass(frozen=True)
class SealedPerson:
    """One person on the sealed list, as the city's staff read them."""

    person_id: str
    name: str
    kana: str
    address: str
    birth_date: str
    needs: str
    mobility: str
    consent: str
    district: str
    supporters: str


@dataclass(frozen=True)
class SealedList:
    """Everything a sealed shelter list prints."""

    shelter_id: str
    shelter_name: str
    welfare: bool
    district: str
    district_name: str
    people: list[SealedPerson]
    copy_id: str
    register_version: str
    holder: str
    due_back: dt.date
    user: str
    printed_at: dt.datetime
    data_date: str = ""
    paper: str = "A4"


def render_sealed_list(sealed: SealedList) -> bytes:
    """The sealed list as PDF bytes: the cover, then the people (sorted as given)."""
    font = register_font()
    buf = io.BytesIO()
    printed = sealed.printed_at.astimezone(JST).strftime("%Y-%m-%d %H:%M")

    def header(w: PageWriter) -> float:
        c = w.canvas
        c.setFillColor(INK)
        c.rect(LEFT, TOP - 17, RIGHT - LEFT, 17, stroke=0, fill=1)
        w.text(LEFT + 6, TOP - 12.5, "封印名簿・災害時のみ開封", 11, color=white, bold=True)
        w.text(LEFT + 150, TOP - 12, "同意のない方を含みます。目的外の開封・複写を禁止", 7.5, color=white)
        w.text(RIGHT - 6, TOP - 12, f"印刷 {printed} JST　印刷者 {sealed.user}", 7.5, color=white,
               align="right")
        y = TOP - BAND_H
        if w.pages > 1:
            w.text(LEFT, y - 11, f"{sealed.shelter_name}　避難行動要支援者名簿（封印）", 10.5, bold=True)
            w.text(RIGHT, y - 11, f"複製番号 {sealed.copy_id}", 8.5, color=MUTED, align="right")
            y -= 20
        return y

    def footer(canvas, number: int, total: int) -> None:
        canvas.setFillColor(MUTED)
        canvas.setFont(font, 7.5)
        canvas.drawString(LEFT, FOOTER_Y, f"封印名簿　{sealed.shelter_id}　データ時点 {sealed.data_date}")
        canvas.setFont(font, 9)
        canvas.drawRightString(page_number_x(sealed.copy_id), FOOTER_Y, f"{number} / {total}")
        copy_mark(canvas, font, copy_id=sealed.copy_id, register_version=sealed.register_version,
                  due_back=sealed.due_back)

    w = PageWriter(buf, paper=sealed.paper, font=font, header=header, footer=footer,
                   title=f"封印名簿 {sealed.shelter_name}", author=sealed.user)
    w.new_page()
    _cover(w, sealed)
    w.new_page()
    rows = [(str(i), p.person_id, p.name, p.kana, p.birth_date, p.address, p.needs,
             MOBILITY_JA.get(Mobility(p.mobility), "") if p.mobility in Mobility._value2member_map_ else "",
             _consent(p.consent), p.supporters) for i, p in enumerate(sealed.people, start=1)]
    w.heading("避難行動要支援者名簿（この避難所へ避難する方・全員）", note=f"{len(rows)} 人　フリガナ順")
    w.table(COLUMNS, rows, size=8, row_h=ROW_H, continued="名簿（続き）",
            empty="この避難所を避難先とする要支援者はいません。")
    w.finish()
    return buf.getvalue()


def _cover(w: PageWriter, sealed: SealedList) -> None:
    kind = "福祉避難所" if sealed.welfare else "指定避難所"
    y = w.y
    w.text(LEFT, y - 30, "避難行動要支援者名簿（封印）", 22, bold=True)
    w.text(LEFT, y - 54, f"{sealed.shelter_name}（{kind}・{sealed.shelter_id}）", 14)
    where = f"{sealed.district_name}（{sealed.district}）" if sealed.district else "地区外"
    w.text(LEFT, y - 72, f"所在地区 {where}　掲載 {len(sealed.people)} 人　保管先 {sealed.holder}", 10.5)
    w.y = y - 84
    w.paragraph(
        "この封筒には、この避難所を避難先とする避難行動要支援者の全員（名簿の提供に同意していない方を含む）の"
        "名簿が入っています。災害が発生し、または発生するおそれがあり、生命・身体を守るために必要なとき"
        "（災害対策基本法 第49条の11第3項）以外は開封しないでください。開封した名簿の内容は秘密です"
        "（第49条の13）。", 10, color=INK)
    w.space(6)
    w.paragraph(f"複製番号 {sealed.copy_id}　名簿の版 {sealed.register_version}　"
                f"差し替え（返却）期限 {date_ja(sealed.due_back)}", 10, color=INK)
    w.space(10)
    w.heading("封印", keep=80)
    _boxes(w, ("封印した日", "封印した人（所属・氏名）", "保管場所"))
    w.space(10)
    w.heading("開封の記録", note="開封したら市へ連絡し、QRを読み取って開封を記録してください", keep=120)
    _boxes(w, ("開封した日時", "開封した人（所属・氏名）", "立会人", "理由（災害名・避難情報）"))
    w.space(10)
    w.heading("返却・廃棄", keep=80)
    _boxes(w, ("返却・廃棄した日", "返却を受けた人・廃棄の方法"))


def _boxes(w: PageWriter, labels: tuple[str, ...]) -> None:
    """Ruled lines to write on, one per label."""
    c = w.canvas
    for label in labels:
        w.y -= 26
        w.text(LEFT + 4, w.y + 6, label, 9.5)
        c.setStrokeColor(MUTED)
        c.setLineWidth(0.6)
        c.line(LEFT + 160, w.y + 3, RIGHT, w.y + 3)


def _consent(value: str) -> str:
    if value in (Consent.CONSENTED, Consent.ORDINANCE):
        return "同意" if value == Consent.CONSENTED else "条例"
    return CONSENT_JA.get(Consent(value), value) if value in Consent._value2member_map_ else value


__all__ = ["SealedList", "SealedPerson", "render_sealed_list"]
