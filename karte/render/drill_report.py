"""The drill report (訓練報告書) on A4: what a safety-confirmation or evacuation-guidance drill showed.

Handed prepared data (:class:`DrillReport`, built by :mod:`karte.services.drills` from what the
viewer may see). Page one sums the drill up per district (people, confirmed, the minutes until
half and all of them were confirmed); then, per district, the counts by status, the people not
reached, the supporters who could not reach theirs, and the lessons entered. It names people, so
every page carries 取扱注意 with the printing time and the user.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from reportlab.lib.colors import HexColor, white

from karte.render.pdf_fonts import register_font
from karte.render.pdf_layout import INK, LEFT, MUTED, RIGHT, TOP, Column, PageWriter, Strong

BAND = HexColor("#1a1a1a")


@dataclass
class DistrictReport:
    """One district of a drill, as the report prints it."""

    code: str
    name: str
    total: int
    confirmed: int
    #: (status label, people) in the vocabulary's order
    counts: list[tuple[str, int]]
    minutes_to_half: float | None
    minutes_to_all: float | None
    #: (name, address, supporters, last status) of people not confirmed
    not_reached: list[tuple[str, str, str, str]]
    #: (supporter, role, people not reached, their names) of supporters who could not reach theirs
    supporters_short: list[tuple[str, str, int, str]]
    #: (when, who, text) of the lessons entered
    lessons: list[tuple[str, str, str]]
    #: one dict per person (for the CSV): name, address, supporters, status_ja, confirmed_at, minutes…
    people: list[dict] = field(default_factory=list)
    marks: int = 0


@dataclass
class DrillReport:
    drill_id: str
    name: str
    kind_ja: str
    started: str
    ended: str
    printed_at: dt.datetime
    printed_by: str
    districts: list[DistrictReport]
    participants: int = 0


def minutes_text(value: float | None) -> str:
    """``12.5`` -> ``12.5 分``; None -> ``未達``."""
    return "未達" if value is None else f"{value:g} 分"


def report_pdf(rep: DrillReport) -> tuple[bytes, int]:
    """The report as PDF bytes and its page count."""
    font = register_font()
    buf = io.BytesIO()

    def header(w: PageWriter) -> float:
        c = w.canvas
        c.setFillColor(BAND)
        c.rect(LEFT, TOP - 18, RIGHT - LEFT, 18, stroke=0, fill=1)
        w.text(LEFT + 6, TOP - 13, f"取扱注意　訓練報告書　{rep.name}", 10, color=white, bold=True)
        w.text(RIGHT - 6, TOP - 13, f"印刷 {rep.printed_at:%Y-%m-%d %H:%M} JST・{rep.printed_by}", 8,
               color=white, align="right")
        return TOP - 26

    def footer(canvas, number: int, total: int) -> None:
        canvas.setFont(font, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(LEFT, 22, "個人情報を含みます。訓練の関係者のみで共有し、"
                                    "不要になったら廃棄してください。")
        canvas.drawRightString(RIGHT, 22, f"{number} / {total}")

    w = PageWriter(buf, paper="A4", font=font, header=header, footer=footer, title=f"訓練報告書 {rep.name}",
                   author="karte (地区カルテ)")
    w.new_page()
    w.y -= 18
    w.text(LEFT, w.y, f"訓練報告書　{rep.name}", 16, bold=True)
    w.y -= 16
    w.text(LEFT, w.y, f"{rep.kind_ja}　開始 {rep.started}　終了 {rep.ended}　（{rep.drill_id}）", 9.5,
           color=MUTED)
    w.y -= 6
    w.heading("地区ごとのまとめ", note=f"記録した支援者 {rep.participants} 人")
    rows = []
    for d in rep.districts:
        share = f"{d.confirmed / d.total * 100:.0f}%" if d.total else "—"
        rows.append((f"{d.name}（{d.code}）", f"{d.total}人", f"{d.confirmed}人", share,
                     minutes_text(d.minutes_to_half), minutes_text(d.minutes_to_all),
                     Strong(f"{len(d.not_reached)}人") if d.not_reached else "0人", str(d.marks)))
    w.table((Column("地区", 130), Column("対象者", 52, "right"), Column("確認", 52, "right"),
             Column("確認率", 48, "right"), Column("半数確認まで", 70, "right"),
             Column("全員確認まで", 70, "right"), Column("未確認", 52, "right"),
             Column("記録数", 65, "right")),
            rows, size=9, row_h=18)
    w.paragraph("確認 = 「無事を確認」「避難済み」「支援が必要」のいずれかが最後の記録の方。"
                "半数・全員確認までの時間は訓練の開始から、その人数目の方が確認された時刻まで。", 8)
    for d in rep.districts:
        _district(w, d)
    w.finish()
    return buf.getvalue(), w.pages


def _district(w: PageWriter, d: DistrictReport) -> None:
    w.new_page()
    w.y -= 16
    w.text(LEFT, w.y, f"{d.name}（{d.code}）", 14, bold=True)
    w.text(RIGHT, w.y, f"対象 {d.total}人・確認 {d.confirmed}人・半数 {minutes_text(d.minutes_to_half)}・"
                       f"全員 {minutes_text(d.minutes_to_all)}", 9.5, align="right")
    w.y -= 4
    w.heading("状態ごとの人数")
    w.table((Column("状態", 200), Column("人数", 80, "right")), [(k, f"{n}人") for k, n in d.counts],
            size=9.5, row_h=16)
    w.heading("確認できなかった方", note=f"{len(d.not_reached)}人")
    w.table((Column("氏名", 90), Column("住所", 170), Column("支援者", 170), Column("最後の記録", 109)),
            d.not_reached, size=9, row_h=20, continued="確認できなかった方（続き）",
            empty="全員の安否を確認できました。")
    w.heading("担当の方を確認できなかった支援者", note=f"{len(d.supporters_short)}人")
    w.table((Column("支援者", 90), Column("区分", 130), Column("人数", 40, "right"),
             Column("確認できなかった方", 279)),
            [(n, r, f"{k}人", names) for n, r, k, names in d.supporters_short], size=9, row_h=20,
            continued="担当の方を確認できなかった支援者（続き）", empty="該当する支援者はいません。")
    w.heading("教訓・気づいたこと", note=f"{len(d.lessons)}件")
    if not d.lessons:
        w.paragraph("入力された教訓はありません。訓練のページから入力できます。", 9, color=INK)
    for when, who, text in d.lessons:
        w.paragraph(f"{when}　{who}", 8, color=MUTED)
        w.paragraph(text, 9.5, color=INK)
