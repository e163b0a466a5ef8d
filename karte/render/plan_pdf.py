"""Individual evacuation plans (個別避難計画) printed on A4: one person per page, or a district's batch.

Handed prepared data (:class:`PlanPrint`, built by :mod:`karte.services.drills` from what the
viewer may see); draws with ReportLab through :class:`karte.render.pdf_layout.PageWriter` with
IPAexGothic embedded. Every page carries 取扱注意 with the printing time and the user (a plan is
personal data: 第49条の15 lets it go only to the supporters, on the person's consent), the items
of the plan, the supporters and their phones, and a small map of the way from home to the shelter
(small-area outlines, the route, home and shelter, a scale bar), drawn as vectors.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

import shapely
from reportlab.lib.colors import HexColor, white

from karte.render.pdf_fonts import register_font
from karte.render.pdf_layout import INK, LEFT, MUTED, RIGHT, RULE, TOP, Column, PageWriter, wrap

ROUTE = HexColor("#b2182b")
HOME = HexColor("#1f3b57")
SHELTER = HexColor("#1b7837")
OUTLINE = HexColor("#b5b5b5")
BAND = HexColor("#1a1a1a")
LABEL_W = 128.0
MAP_H = 215.0
#: Width ÷ height of the plan's map: the data's extent should have it, so the map is filled.
MAP_ASPECT = (RIGHT - LEFT) / MAP_H
_SCALE_STEPS = (50, 100, 200, 250, 500, 1000, 2000, 2500, 5000)


@dataclass
class PlanMap:
    """What the plan's map shows (EPSG:6678 metres): ``extent`` (minx, miny, maxx, maxy), small-area
    ``outlines`` and their ``labels`` (name, (x, y)), the ``route`` (home first), ``home``,
    ``shelter`` and its name, the route's length."""

    extent: tuple[float, float, float, float]
    outlines: list
    labels: list[tuple[str, tuple[float, float]]]
    route: list[tuple[float, float]]
    home: tuple[float, float]
    shelter: tuple[float, float]
    shelter_name: str
    metres: int


@dataclass
class PlanPrint:
    """One person's plan as printed (already what the viewer may see)."""

    person_id: str
    name: str
    kana: str
    address: str
    birth: str
    district: str
    status_ja: str
    register_needs: str
    #: (label, text) of the plan's items, in print order
    items: list[tuple[str, str]]
    #: (name, role, phone) of the supporters
    supporters: list[tuple[str, str, str]]
    map: PlanMap | None
    printed_at: dt.datetime
    printed_by: str
    route_note: str = ""
    extra: dict = field(default_factory=dict)


def plans_pdf(plans: list[PlanPrint], *, title: str = "個別避難計画") -> tuple[bytes, int]:
    """The PDF of ``plans`` (each starts on a new page) and its page count. An empty list prints
    one page that says there is no plan to print."""
    font = register_font()
    buf = io.BytesIO()
    current: dict = {"plan": plans[0] if plans else None}

    def header(w: PageWriter) -> float:
        plan = current["plan"]
        c = w.canvas
        c.setFillColor(BAND)
        c.rect(LEFT, TOP - 18, RIGHT - LEFT, 18, stroke=0, fill=1)
        w.text(LEFT + 6, TOP - 13, "取扱注意　個別避難計画（個人情報）", 10, color=white, bold=True)
        if plan is not None:
            stamp = f"印刷 {plan.printed_at:%Y-%m-%d %H:%M} JST・{plan.printed_by}"
            w.text(RIGHT - 6, TOP - 13, stamp, 8, color=white, align="right")
        return TOP - 26

    def footer(canvas, number: int, total: int) -> None:
        canvas.setFont(font, 7.5)
        canvas.setFillColor(MUTED)
        canvas.drawString(LEFT, 22, "本人の同意に基づき避難支援等関係者に提供する計画です"
                                    "（災害対策基本法 第49条の15）。秘密を守り、不要になったら"
                                    "返却・廃棄してください。")
        canvas.drawRightString(RIGHT, 22, f"{number} / {total}")

    w = PageWriter(buf, paper="A4", font=font, header=header, footer=footer, title=title,
                   author="karte (地区カルテ)")
    if not plans:
        w.new_page()
        w.heading(title)
        w.paragraph("印刷する個別避難計画はありません"
                    "（計画が作成されていないか、閲覧の権限がありません）。", 10, color=INK)
    for plan in plans:
        current["plan"] = plan
        w.new_page()
        _one(w, plan)
    w.finish()
    data = buf.getvalue()
    return data, max(1, w.pages)


def _one(w: PageWriter, plan: PlanPrint) -> None:
    w.y -= 16
    w.text(LEFT, w.y, "個別避難計画", 16, bold=True)
    w.text(LEFT + 112, w.y, f"{plan.name}　様", 14, bold=True)
    w.text(RIGHT, w.y, f"作成状況: {plan.status_ja or '—'}", 10, align="right")
    w.y -= 8
    w.table((Column("ふりがな", 130), Column("生年月日", 120), Column("住所", 200), Column("地区", 89)),
            [(plan.kana, plan.birth, plan.address, plan.district)], size=9, row_h=22)
    w.y -= 4
    _item(w, "名簿に記載の状態", plan.register_needs or "—")
    w.heading("避難支援者", keep=40)
    w.table((Column("氏名", 140), Column("区分", 200), Column("電話", 199)),
            [s for s in plan.supporters] or [], size=9.5, row_h=18,
            empty="避難支援者が決まっていません。地区で支援者を決めてください。")
    w.heading("計画の内容", keep=60)
    for label, text in plan.items:
        _item(w, label, text or "—")
    _map(w, plan)


def _item(w: PageWriter, label: str, text: str, size: float = 9.5) -> None:
    """One item: the label on the left, the text wrapped on the right; the row as tall as the text."""
    width = RIGHT - LEFT - LABEL_W - 8
    lines = []
    for part in str(text).splitlines() or [""]:
        lines += wrap(w.canvas, part, w.font, size, width) or [""]
    lead = size * 1.4
    h = max(18.0, lead * len(lines) + 6)
    w.ensure(h)
    c = w.canvas
    c.setFillColor(HexColor("#f0f0f0"))
    c.rect(LEFT, w.y - h, LABEL_W, h, stroke=0, fill=1)
    w.text(LEFT + 4, w.y - 4 - size, label, 8.5, bold=True)
    y = w.y - 4 - size
    for line in lines:
        w.text(LEFT + LABEL_W + 6, y, line, size)
        y -= lead
    w.y -= h
    c.setStrokeColor(RULE)
    c.setLineWidth(0.3)
    c.line(LEFT, w.y, RIGHT, w.y)


def _map(w: PageWriter, plan: PlanPrint) -> None:
    w.heading("自宅から避難先までの道順", note=plan.route_note, keep=MAP_H + 10)
    if plan.map is None:
        w.paragraph("地図を描けません: " + plan.route_note, 9, color=INK)
        return
    m = plan.map
    x0, y1 = LEFT, w.y - 4
    width, height = RIGHT - LEFT, MAP_H
    y0 = y1 - height
    minx, miny, maxx, maxy = m.extent
    scale = min(width / (maxx - minx), height / (maxy - miny))
    ox = x0 + (width - (maxx - minx) * scale) / 2
    oy = y0 + (height - (maxy - miny) * scale) / 2

    def pt(x: float, y: float) -> tuple[float, float]:
        return ox + (x - minx) * scale, oy + (y - miny) * scale

    c = w.canvas
    c.saveState()
    c.setStrokeColor(INK)
    c.setLineWidth(0.6)
    c.rect(x0, y0, width, height, stroke=1, fill=0)
    frame = c.beginPath()
    frame.rect(x0, y0, width, height)
    c.clipPath(frame, stroke=0, fill=0)
    c.setStrokeColor(OUTLINE)
    c.setLineWidth(0.5)
    for geom in m.outlines:
        for ring in _rings(geom):
            path = c.beginPath()
            first = True
            for x, y in ring:
                px, py = pt(x, y)
                (path.moveTo if first else path.lineTo)(px, py)
                first = False
            c.drawPath(path, stroke=1, fill=0)
    for name, (x, y) in m.labels:
        px, py = pt(x, y)
        w.text(px, py, name, 6.5, color=MUTED, align="center")
    c.setStrokeColor(ROUTE)
    c.setLineWidth(2.4)
    c.setLineCap(1)
    c.setLineJoin(1)
    path = c.beginPath()
    for i, (x, y) in enumerate(m.route):
        px, py = pt(x, y)
        (path.moveTo if i == 0 else path.lineTo)(px, py)
    c.drawPath(path, stroke=1, fill=0)
    hx, hy = pt(*m.home)
    c.setFillColor(HOME)
    c.setStrokeColor(white)
    c.setLineWidth(1)
    c.rect(hx - 5, hy - 5, 10, 10, stroke=1, fill=1)
    sx, sy = pt(*m.shelter)
    c.setFillColor(SHELTER)
    tri = c.beginPath()
    tri.moveTo(sx, sy + 7)
    tri.lineTo(sx - 6.5, sy - 5)
    tri.lineTo(sx + 6.5, sy - 5)
    tri.close()
    c.drawPath(tri, stroke=1, fill=1)
    c.restoreState()
    _label(w, hx, hy, "自宅", HOME, x0 + width)
    _label(w, sx, sy, m.shelter_name, SHELTER, x0 + width)
    _scale_bar(w, x0 + 8, y0 + 8, scale)
    w.text(RIGHT - 6, y0 + 8, f"道のり 約 {m.metres:,} m", 8.5, align="right")
    w.y = y0 - 6


def _label(w: PageWriter, x: float, y: float, text: str, color, right: float) -> None:
    """A symbol's label on a white halo, right of it, or left of it when it would leave the map."""
    size = 8.5
    width = w.canvas.stringWidth(text, w.font, size)
    left = x + 9 if x + 9 + width < right - 4 else x - 9 - width
    c = w.canvas
    c.saveState()
    c.setFillColor(white)
    c.setFillAlpha(0.8)
    c.rect(left - 2, y - 5, width + 4, size + 4, stroke=0, fill=1)
    c.restoreState()
    w.text(left, y - 3, text, size, bold=True, color=color)


def _scale_bar(w: PageWriter, x: float, y: float, scale: float) -> None:
    metres = next((s for s in _SCALE_STEPS if s * scale >= 60), _SCALE_STEPS[-1])
    length = metres * scale
    c = w.canvas
    c.setFillColor(white)
    c.rect(x - 3, y - 3, length + 40, 13, stroke=0, fill=1)
    c.setStrokeColor(INK)
    c.setLineWidth(1.2)
    c.line(x, y, x + length, y)
    c.line(x, y, x, y + 4)
    c.line(x + length, y, x + length, y + 4)
    w.text(x + length + 4, y, f"{metres} m" if metres < 1000 else f"{metres / 1000:g} km", 7.5)


def _rings(geom) -> list[list[tuple[float, float]]]:
    """The boundary lines of a polygon or line geometry as coordinate lists."""
    out = []
    for part in shapely.get_parts(shapely.boundary(geom) if geom.geom_type.endswith("Polygon") else geom):
        if part.is_empty:
            continue
        for line in shapely.get_parts(part):
            out.append(list(line.coords))
    return out
