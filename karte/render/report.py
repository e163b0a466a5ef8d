"""The annual progress report (年度の進捗報告) as a PDF: indicators against their targets, the plan
table with its marks and legend, the evaluations, the trend of the karte's figures, and what every
figure comes from.

Drawn with ReportLab through :class:`karte.render.pdf_layout.PageWriter` (IPAexGothic embedded and
subset, text extractable), from the prepared data of :func:`karte.services.history.report_data`
(suppressed for the public already). A4 portrait; the plan table wraps its item texts and repeats
its heading on every page.
"""

from __future__ import annotations

import io

from reportlab.lib.colors import HexColor

from karte.render.charts import format_value
from karte.render.pdf_fonts import register_font
from karte.render.pdf_layout import (
    BOTTOM,
    INK,
    LEFT,
    MUTED,
    RIGHT,
    RULE,
    TOP,
    Column,
    Group,
    PageWriter,
    Strong,
    wrap,
)

VALUE = HexColor("#1f5fa8")
PATH = HexColor("#a05a00")
GRID = HexColor("#d9dde0")
ON_TRACK = {True: "順調", False: "遅れ", None: "—"}
TREND_KEYS = (
    ("elderly_rate", "高齢化率"),
    ("with_supporter_rate", "支援者ありの割合"),
    ("plan_done_rate", "個別避難計画の作成率"),
    ("coverage_rate", "サロン徒歩圏カバー率"),
    ("gap_rate", "避難支援に空白がある割合"),
)


def progress_report_pdf(data: dict) -> bytes:
    """The report of ``data`` (:func:`karte.services.history.report_data`) as PDF bytes."""
    font = register_font()
    buffer = io.BytesIO()
    title = f"地域福祉の進捗報告 {data['year_label']}　{data['name']}"
    sources = data.get("sources") or {}

    def header(w: PageWriter) -> float:
        w.text(LEFT, TOP - 12, title, 13, bold=True)
        note = "公開版（少人数は秘匿）" if data.get("public") else "関係者版"
        w.text(RIGHT, TOP - 12, note, 8, color=MUTED, align="right")
        w.canvas.setStrokeColor(INK)
        w.canvas.setLineWidth(0.8)
        w.canvas.line(LEFT, TOP - 18, RIGHT, TOP - 18)
        return TOP - 24

    def footer(canvas, number: int, total: int) -> None:
        canvas.setFont(font, 7.5)
        canvas.setFillColor(MUTED)
        census = next((i["line"] for i in sources.get("items", []) if i["key"] == "census"), "")
        canvas.drawString(LEFT, 22, f"karte 地区カルテ　{census}")
        canvas.drawRightString(RIGHT, 22, f"{number} / {total}")

    w = PageWriter(buffer, paper="A4", font=font, header=header, footer=footer, title=title, author="karte")
    w.new_page()
    _indicators(w, data)
    _plan(w, data)
    _evaluations(w, data)
    _trend(w, data)
    _sources(w, sources)
    w.finish()
    return buffer.getvalue()


# --- sections ---------------------------------------------------------------------------------------


def _indicators(w: PageWriter, data: dict) -> None:
    items = data.get("indicators", [])
    w.heading("1 活動指標と目標", note=f"{data['year_label']}時点")
    if not items:
        w.paragraph("指標はまだ登録されていません。")
        return
    columns = (
        Column("指標", 168),
        Column("基準", 70, "right"),
        Column("実績", 78, "right"),
        Column("目標", 86, "right"),
        Column("達成度", 52, "right"),
        Column("経路", 40, "center"),
        Column("出所", 45),
    )
    rows = []
    for item in items:
        unit = item["unit"]
        latest = item.get("latest") or {}
        target = next(
            (
                t
                for t in item["targets"]
                if latest.get("fiscal_year") is None or t["fiscal_year"] >= latest["fiscal_year"]
            ),
            item["targets"][-1] if item["targets"] else None,
        )
        rows.append(
            [
                item["name"],
                _year_value(item.get("baseline_year"), item.get("baseline"), unit),
                _year_value(latest.get("fiscal_year"), latest.get("value"), unit),
                _year_value(target["fiscal_year"], target["value"], unit) if target else "—",
                _percent(target.get("attainment")) if target else "—",
                Strong("遅れ") if latest.get("on_track") is False else ON_TRACK[latest.get("on_track")],
                "自動計算" if item["source"] == "computed" else "入力",
            ]
        )
    w.table(columns, rows, size=8.2, row_h=24, continued="1 活動指標と目標（続き）")
    w.paragraph(
        "達成度: 基準値から目標値までの道のりのうち実績が進んだ割合（100% で目標達成）。"
        "経路: 基準から目標への直線の経路に対して、その年度の実績が届いていれば「順調」、"
        "届いていなければ「遅れ」。",
        7.5,
    )
    charts = [i for i in items if any(isinstance(v["value"], int | float) for v in i["values"])]
    if charts:
        w.space(6)
        width, height, gap = (RIGHT - LEFT - 12) / 2, 112.0, 12.0
        for i in range(0, len(charts), 2):
            w.ensure(height + 8)
            top = w.y
            for j, item in enumerate(charts[i : i + 2]):
                _chart(w, item, LEFT + j * (width + gap), top, width, height)
            w.y = top - height - 8
        w.paragraph("● 実績（青の実線）　◇ 目標（茶の菱形）　- - 基準から目標への直線の経路", 7.5)


def _chart(w: PageWriter, item: dict, x: float, top: float, width: float, height: float) -> None:
    c = w.canvas
    unit = item["unit"]
    values = [
        (v["fiscal_year"], float(v["value"])) for v in item["values"] if isinstance(v["value"], int | float)
    ]
    targets = [
        (t["fiscal_year"], float(t["value"])) for t in item["targets"] if isinstance(t["value"], int | float)
    ]
    base = item.get("baseline")
    path = ([(item["baseline_year"], float(base))] if isinstance(base, int | float) else []) + sorted(targets)
    w.text(x, top - 10, f"{item['name']}（{unit}）", 8, bold=True)
    years = sorted({y for y, _ in values} | {y for y, _ in path})
    numbers = [v for _, v in values] + [v for _, v in path]
    if not years:
        return
    left, right, ytop, ybottom = x + 34, x + width - 6, top - 18, top - height + 14
    lo = 0.0 if min(numbers) >= 0 else min(numbers)
    hi = max(numbers) * 1.1 or 1.0
    x0, x1 = years[0], years[-1]

    def px(year):
        return left + (right - left) * ((year - x0) / (x1 - x0) if x1 > x0 else 0.5)

    def py(v):
        return ybottom + (ytop - ybottom) * (v - lo) / (hi - lo)

    c.setLineWidth(0.4)
    c.setStrokeColor(GRID)
    for k in range(4):
        v = lo + (hi - lo) * k / 3
        c.line(left, py(v), right, py(v))
        w.text(
            left - 3,
            py(v) - 2.5,
            format_value(round(v, 1) if unit == "%" else round(v), unit),
            6,
            color=MUTED,
            align="right",
        )
    for year in years:
        w.text(px(year), ybottom - 9, _short(year), 6.5, color=MUTED, align="center")
    if len(path) >= 2:
        c.setStrokeColor(PATH)
        c.setLineWidth(1.2)
        c.setDash(4, 3)
        p = c.beginPath()
        p.moveTo(px(path[0][0]), py(path[0][1]))
        for a, b in path[1:]:
            p.lineTo(px(a), py(b))
        c.drawPath(p, stroke=1, fill=0)
        c.setDash()
    for a, b in targets:
        c.setStrokeColor(PATH)
        c.setFillColor(HexColor("#ffffff"))
        p = c.beginPath()
        p.moveTo(px(a), py(b) + 4)
        p.lineTo(px(a) + 4, py(b))
        p.lineTo(px(a), py(b) - 4)
        p.lineTo(px(a) - 4, py(b))
        p.close()
        c.drawPath(p, stroke=1, fill=1)
    c.setStrokeColor(VALUE)
    c.setFillColor(VALUE)
    c.setLineWidth(1.6)
    if len(values) >= 2:
        p = c.beginPath()
        p.moveTo(px(values[0][0]), py(values[0][1]))
        for a, b in values[1:]:
            p.lineTo(px(a), py(b))
        c.drawPath(p, stroke=1, fill=0)
    for a, b in values:
        c.circle(px(a), py(b), 2, stroke=0, fill=1)


def _plan(w: PageWriter, data: dict) -> None:
    view = data.get("plan") or {}
    plan = view.get("plan")
    w.heading("2 計画の年次表", note=plan["name"] if plan else "")
    if not plan:
        w.paragraph("計画の年次表はまだ取り込まれていません（karte plan import）。")
        return
    legend = "　".join(f"{m['symbol']} {m['label']}" for m in view["legend"]) + "　- 該当なし　⇒ 包括先"
    w.paragraph("凡例: " + legend, 7.5, color=INK)
    if plan.get("source"):
        w.paragraph("出典: " + plan["source"], 7.5)
    years = view["years"]
    year_w = min(34.0, 200.0 / max(1, len(years)))
    section_w = 70.0
    item_w = RIGHT - LEFT - section_w - year_w * len(years)
    columns = (
        Column("項目", item_w),
        *[Column(y["label"], year_w, "center") for y in years],
        Column("担当", section_w),
    )
    rows: list = []
    for goal in view["goals"]:
        rows.append(Group(f"{goal['no']} {goal['text']}"))
        for promotion in goal["promotions"]:
            rows.append([f"({promotion['no']}) {promotion['text']}", *[""] * len(years), ""])
            for item in promotion["items"]:
                text = f"{item['no']}{item['text']}" + (
                    f"⇒{item['merged_into']}に包括" if item["merged_into"] else ""
                )
                rows.append([text, *[cell["text"] for cell in item["cells"]], item["section"]])
    w.table(columns, rows, size=7.6, row_h=20, continued="2 計画の年次表（続き）")


def _evaluations(w: PageWriter, data: dict) -> None:
    notes = data.get("evaluations", [])
    w.heading("3 評価", note="成果と課題（内部評価・外部評価）")
    if not notes:
        w.paragraph(f"{data['year_label']}とその前年度の評価はまだ記録されていません。")
        return
    for e in notes:
        w.ensure(40)
        w.y -= 12
        w.text(
            LEFT,
            w.y,
            f"{e['year_label']}　目標{e['goal_no']} {e.get('goal', '')}　{e['kind_ja']}"
            + (f"（{e['evaluator']}）" if e.get("evaluator") else ""),
            8.8,
            bold=True,
        )
        w.y -= 2
        for label, lines in (("成果", e["achievements"]), ("課題", e["issues"])):
            for line in lines:
                _bullet(w, f"【{label}】{line}")


def _bullet(w: PageWriter, text: str) -> None:
    for i, line in enumerate(wrap(w.canvas, text, w.font, 8.2, RIGHT - LEFT - 14)):
        w.ensure(12)
        w.y -= 11.5
        w.text(LEFT + (6 if i == 0 else 14), w.y, ("・" if i == 0 else "") + line, 8.2)


def _trend(w: PageWriter, data: dict) -> None:
    trend = data.get("trend") or {}
    years = trend.get("years", [])
    w.heading("4 カルテの推移", note=trend.get("name", ""))
    if not years:
        w.paragraph("年度別の記録はまだありません。")
        return
    columns = (
        Column("項目", 150),
        *[Column(y["short"] + ("（合成）" if y["synthetic"] else ""), 70, "right") for y in years],
    )
    rows = []
    for key, label in TREND_KEYS:
        rows.append([label, *[format_value(_rate(y["district"].get(key)), "%") for y in years]])
    w.table(columns, rows[: len(TREND_KEYS)], size=8, row_h=16)
    for note in trend.get("notes", []):
        w.paragraph(note, 7.5)


def _sources(w: PageWriter, sources: dict) -> None:
    w.heading("出典と基準日", keep=40)
    for line in sources.get("lines", []):
        w.paragraph(line, 7.8, color=INK)
    w.ensure(14)
    w.canvas.setStrokeColor(RULE)
    w.canvas.line(LEFT, max(BOTTOM, w.y - 4), RIGHT, max(BOTTOM, w.y - 4))


# --- helpers ------------------------------------------------------------------------------------------


def _year_value(year, value, unit: str) -> str:
    if value is None:
        return "—"
    return f"{_short(year)} {format_value(value, unit)}" if year else format_value(value, unit)


def _percent(v) -> str:
    return "—" if v is None else f"{v * 100:.0f}%"


def _rate(v):
    return v * 100 if isinstance(v, int | float) else v


def _short(year) -> str:
    try:
        year = int(year)
    except (TypeError, ValueError):
        return ""
    return f"R{year - 2018}" if year >= 2019 else f"H{year - 1988}" if year >= 1989 else str(year)
