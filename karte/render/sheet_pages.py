"""The pages of one district sheet, per edition.

Every edition: page 1 (title, map, base statistics with the city beside) and page 2 (gap
summary, cooperators by role, services, shelters). The confidential edition adds the cooperator
roster with contacts and the consented register; the drill edition adds the roster, the register
by supporter (who goes to whom) and by shelter (who goes where), with roll-call boxes and the
person's register id beside each box. Personal pages carry 取扱注意 with the printing time and the
user on every page, and a numbered copy (the hand-out ledger) its number, register version and due
date as text and QR code (:func:`copy_mark`).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from zoneinfo import ZoneInfo

from reportlab.lib.colors import black, white

from karte.domain.schema import ROLE_JA, SYNTHETIC_JA, Edition, is_standin, short_address
from karte.render.pdf_fonts import safe_text
from karte.render.pdf_layout import (
    BOTTOM,
    HEADING_H,
    INK,
    LEFT,
    MUTED,
    RIGHT,
    TOP,
    Column,
    Group,
    PageWriter,
    Strong,
    rows_per_page,
    wrap,
)
from karte.render.sheet_map import draw_map
from karte.render.sheet_model import DistrictSheet

JST = ZoneInfo("Asia/Tokyo")

#: Row heights (points) of the personal tables; the page count of a sheet follows from them.
ROSTER_ROW = 16.0
REGISTER_ROW = 21.0
DRILL_ROW = 21.0
HEADER_ROW = 15.0
SUMMARY_ROW = 14.0
SERVICE_ROW = 20.0

BAND_H = 21.0  # the 取扱注意 band of the personal editions
RUNNING_H = 20.0  # the running header of pages after the first
#: Where a personal page's body starts (below the band and the running header).
PERSONAL_TOP = TOP - BAND_H - RUNNING_H
#: Rows of the roster and of the register on a page (the first page of the section, after its
#: heading, and the pages it carries over to, after the "(続き)" line, hold the same number).
ROSTER_ROWS_PER_PAGE = rows_per_page(row_h=ROSTER_ROW, header_h=HEADER_ROW,
                                     top=PERSONAL_TOP - HEADING_H)
REGISTER_ROWS_PER_PAGE = rows_per_page(row_h=REGISTER_ROW, header_h=HEADER_ROW,
                                       top=PERSONAL_TOP - HEADING_H)

ROSTER_COLUMNS = (
    Column("区分", 100), Column("氏名", 92), Column("電話", 78), Column("できる支援", 191),
    Column("定員", 32, "right"), Column("担当", 46, "right"),
)
#: The register (confidential edition): No. is the risk order (:mod:`gis.risk`), as on the map.
REGISTER_COLUMNS = (
    Column("No.", 22, "right"), Column("氏名・フリガナ", 84), Column("住所", 92), Column("必要な支援", 82),
    Column("支援者・電話", 82), Column("緊急連絡先", 74), Column("避難先", 72), Column("計画", 31, "center"),
)
#: The drill pages: roll-call box, number (risk order over register id), ..., a memo column of
#: at least 30 mm (85 pt) to write in.
BY_SUPPORTER_COLUMNS = (
    Column("確認", 24, check=True), Column("番号", 44), Column("氏名・フリガナ", 88), Column("住所", 78),
    Column("必要な支援", 80), Column("緊急連絡先", 68), Column("避難先", 66), Column("メモ", 91),
)
BY_SHELTER_COLUMNS = (
    Column("到着", 24, check=True), Column("番号", 44), Column("氏名・フリガナ", 88),
    Column("必要な支援", 94), Column("支援者・電話", 96), Column("緊急連絡先", 76), Column("メモ", 117),
)
#: The narrowest memo column of the drill pages, points (30 mm).
MEMO_MIN_PT = 30 / 25.4 * 72


#: Printed under an empty register (a district where nobody has consented yet).
NOBODY = "名簿の提供に同意した要支援者はいません。"


def write_sheet(w: PageWriter, sheet: DistrictSheet) -> None:
    """Lay out every page of ``sheet`` on the writer (which must be fresh)."""
    _page_one(w, sheet)
    w.new_page()
    _summary_page(w, sheet)
    if sheet.options.edition is Edition.CONFIDENTIAL:
        w.new_page()
        _roster(w, sheet)
        w.new_page()
        _register(w, sheet)
    elif sheet.options.edition is Edition.DRILL:
        w.new_page()
        _roster(w, sheet)
        w.new_page()
        _by_supporter(w, sheet)
        w.new_page()
        _by_shelter(w, sheet)


def header_for(sheet: DistrictSheet):
    """The running header: the title block on page 1, a one-line header after; the 取扱注意 band
    with printing time and user on every page of a personal edition."""
    options = sheet.options

    def header(w: PageWriter) -> float:
        y = personal_band(w, options)
        if w.pages == 1:
            return _title_block(w, sheet, y)
        w.text(LEFT, y - 11, f"{sheet.name}（{sheet.code}）", 10.5, bold=True)
        w.text(RIGHT, y - 11, f"{sheet.karte['fiscal_year_label']} 地区シート・{options.edition.ja}",
               8.5, color=MUTED, align="right")
        w.canvas.setStrokeColor(MUTED)
        w.canvas.setLineWidth(0.5)
        w.canvas.line(LEFT, y - 16, RIGHT, y - 16)
        return y - RUNNING_H

    return header


def personal_band(w: PageWriter, options) -> float:
    """The black 取扱注意 band with the printing time (JST) and the user, at the top of every
    page of a personal edition (sheets, contents, blank pages); return where the page goes on."""
    if not options.edition.personal:
        return TOP
    printed = options.printed_at.astimezone(JST).strftime("%Y-%m-%d %H:%M")
    c = w.canvas
    c.setFillColor(INK)
    c.rect(LEFT, TOP - 17, RIGHT - LEFT, 17, stroke=0, fill=1)
    w.text(LEFT + 6, TOP - 12.5, "取扱注意", 11, color=white, bold=True)
    w.text(LEFT + 62, TOP - 12, "個人情報を含みます。目的外の利用・複写を禁止。使用後は回収・廃棄",
           7.5, color=white)
    w.text(RIGHT - 6, TOP - 12, f"印刷 {printed} JST　印刷者 {options.user}", 7.5, color=white,
           align="right")
    return TOP - BAND_H


def footer_for(sheet: DistrictSheet, font: str):
    k = sheet.karte
    text = safe_text(f"地区カルテ 地区シート　{sheet.code} {sheet.name}　データ時点 {k['data_date']}"
                     + ("　※合成データを含む" if k.get("synthetic") else ""))
    options = sheet.options

    def footer(canvas, number: int, total: int) -> None:
        canvas.setFillColor(MUTED)
        canvas.setFont(font, 7.5)
        canvas.drawString(LEFT, FOOTER_Y, text)
        if options.edition.personal:
            canvas.drawCentredString((LEFT + RIGHT) / 2 + 110, FOOTER_Y, "取扱注意")
        canvas.setFont(font, 9)
        canvas.drawRightString(page_number_x(options.copy_id), FOOTER_Y, f"{number} / {total}")
        if options.copy_id:
            copy_mark(canvas, font, copy_id=options.copy_id, register_version=options.register_version,
                      due_back=options.due_back)

    return footer


#: The baseline of the footer line (page number, the sheet's name, 取扱注意).
FOOTER_Y = 22.0
#: The copy number's QR code, points (10 mm, 21 modules of 0.47 mm: a phone camera reads it at a
#: hand's length), in the bottom right corner between the body (which ends at BOTTOM) and the
#: 4 mm a printer cannot print along the paper's edge.
QR_PT = 28.0
QR_GAP = 6.0


def page_number_x(copy_id: str | None) -> float:
    """Where the page number ends: at the right margin, or left of a copy's QR code."""
    return RIGHT - QR_PT - QR_GAP if copy_id else RIGHT


def copy_mark(canvas, font: str, *, copy_id: str, register_version: str | None = None,
              due_back: dt.date | None = None) -> None:
    """A numbered copy's mark on one page: its number as a QR code in the bottom right corner
    (what the ledger's phone page scans) and as text beside it, above the footer line, with the
    register version it lists and, below the footer line, the date it is due back. Plain text, so
    ``pdftotext`` finds 「複製番号 K000012」 on every page."""
    qr_code(canvas, copy_id, RIGHT - QR_PT, BOTTOM - QR_PT - 1.5, QR_PT)
    x = RIGHT - QR_PT - QR_GAP
    label = f"複製番号 {copy_id}"
    if register_version:
        label += f"　名簿の版 {register_version}"
    canvas.setFillColor(INK)
    canvas.setFont(font, 8)
    canvas.drawRightString(x, FOOTER_Y + 8.5, safe_text(label))
    note = "複写・転送禁止"
    if due_back is not None:
        note = f"返却期限 {date_ja(due_back)}　" + note
    canvas.setFillColor(MUTED)
    canvas.setFont(font, 7)
    canvas.drawRightString(x, FOOTER_Y - 8.5, safe_text(note))


def qr_code(canvas, text: str, x: float, y: float, size: float) -> None:
    """``text`` as a QR code (error correction M) of ``size`` points at (``x``, ``y``), its dark
    modules filled as one path (no quiet zone: the page around it is white). Drawn on the canvas
    directly: a ReportLab ``Drawing`` would reference Helvetica, an unembedded font, in the PDF."""
    count, runs = _qr_runs(text)
    box = size / count
    path = canvas.beginPath()
    for r, c, n in runs:
        path.rect(x + c * box, y + size - (r + 1) * box, n * box, box)
    canvas.saveState()
    canvas.setFillColor(black)
    canvas.drawPath(path, stroke=0, fill=1)
    canvas.restoreState()


@functools.lru_cache(maxsize=256)
def _qr_runs(text: str) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """(modules per side, the dark runs (row, column, length)) of ``text``'s QR code, computed once
    per copy number: a copy prints it on every page, and encoding costs more than drawing."""
    from reportlab.graphics.barcode.qr import QrCodeWidget

    widget = QrCodeWidget(text, barLevel="M", barBorder=0)
    widget.qr.make()
    runs = []
    for r, row in enumerate(widget.qr.modules):
        c = 0
        for dark, run in itertools.groupby(bool(m) for m in row):
            n = len(list(run))
            if dark:
                runs.append((r, c, n))
            c += n
    return len(widget.qr.modules), tuple(runs)


def date_ja(day: dt.date) -> str:
    """``2027年（令和9年）3月31日``: the Western year with the Japanese era beside it."""
    era = day.year - 2018
    return f"{day.year}年（令和{'元' if era == 1 else era}年）{day.month}月{day.day}日"


# --- page 1 ----------------------------------------------------------------------------------------

def _title_block(w: PageWriter, sheet: DistrictSheet, y: float) -> float:
    k = sheet.karte
    options = sheet.options
    w.text(LEFT, y - 24, sheet.name, 24, bold=True)
    name_w = w.canvas.stringWidth(sheet.name, w.font, 24)
    place = (k["district"].get("municipality") or {}).get("name")  # S01 is in every municipality
    w.text(LEFT + name_w + 10, y - 24, f"{sheet.code}　{place}" if place else sheet.code, 14, color=MUTED)
    date = dt.date.fromisoformat(k["data_date"])
    w.text(LEFT, y - 42, f"{k['fiscal_year_label']}　地区カルテ 地区シート　"
           f"データ時点 {date.year}年{date.month}月{date.day}日", 10.5)
    badge = options.edition.ja
    bw = w.canvas.stringWidth(badge, w.font, 12) + 16
    c = w.canvas
    c.setStrokeColor(INK)
    c.setLineWidth(1.2)
    c.setFillColor(INK if options.edition.personal else white)
    c.rect(RIGHT - bw, y - 27, bw, 21, stroke=1, fill=1)
    w.text(RIGHT - bw / 2, y - 21, badge, 12, bold=True, align="center",
           color=white if options.edition.personal else INK)
    note = (f"個人情報は含みません。1〜{options.max_small} の数は「秘匿」と表示"
            if not options.edition.personal else
            "名簿は提供に同意した方（条例による推定同意を含む）のみ")
    w.text(RIGHT, y - 42, note, 7.5, color=MUTED, align="right")
    y -= 50
    notes = []
    if k["district"].get("standin") or is_standin(sheet.name):
        notes.append("地区割りは代替（仮）で、実際の地区社協の区域ではありません。")
    if k.get("synthetic"):
        names = "・".join(SYNTHETIC_JA.get(s, s) for s in k["synthetic"])
        notes.append(f"合成データ（架空）: {names}。境界・人口・世帯数・避難所は実データ。")
    for line in wrap(w.canvas, "※ " + "".join(notes), w.font, 7.2, RIGHT - LEFT) if notes else []:
        w.text(LEFT, y - 8, line, 7.2, color=MUTED)
        y -= 10
    return y - 2


STATS_ROW = 14.5
SOURCES_SIZE = 7.0  # the sources line under the base statistics (the map gives way to it)
STATS_RIGHT = LEFT + 370
ROLES_LEFT = STATS_RIGHT + 14


def _page_one(w: PageWriter, sheet: DistrictSheet) -> None:
    """Title, the map, base statistics (left) and cooperators by role (right)."""
    w.new_page()
    sources = _sources_text(sheet)
    sources_h = len(wrap(w.canvas, sources, w.font, SOURCES_SIZE, RIGHT - LEFT)) * SOURCES_SIZE * 1.45
    stats_h = 24 + HEADER_ROW + STATS_ROW * len(sheet.karte["base"]) + 30 + sources_h
    top = w.y - 4
    height = top - BOTTOM - stats_h
    draw_map(w.canvas, sheet.map, x=LEFT, y=top - height, w=RIGHT - LEFT, h=height, font=w.font,
             zoom=w.zoom)
    w.y = top - height - 2
    below = w.y
    _base_stats(w, sheet)
    after_stats = w.y
    w.y = below
    _roles(w, sheet)
    w.y = min(w.y, after_stats)
    if sources:
        w.paragraph(sources, SOURCES_SIZE)


def _base_stats(w: PageWriter, sheet: DistrictSheet) -> None:
    w.heading("基礎情報", note="市全体と比較", keep=0, x1=STATS_RIGHT)
    cols = (Column("項目", 128), Column("地区", 62, "right"), Column("地区の率", 58, "right"),
            Column("市全体", 70, "right"), Column("市の率", 52, "right"))
    rows = []
    for m in sheet.karte["base"]:
        value = m["value"]  # an int, or the suppression mark (a string) in the public edition
        hidden = isinstance(value, str)
        if "share_of_city" in m:
            rate = f"市の {_pct(m['share_of_city'])}" if not hidden else ""
            city_rate = ""
        else:
            rate = _pct(m.get("rate")) if not hidden else ""
            city_rate = _pct(m.get("city_rate"))
        rows.append((m["label"], _count(value, m["unit"]), rate, _count(m["city"], m["unit"]),
                     city_rate))
    w.table(cols, rows, size=9, row_h=STATS_ROW)
    w.paragraph("率: 年齢区分と高齢者は年齢のわかる人口に対して、一人暮らし高齢者は高齢者に対して、"
                "障がい者・要支援者は人口に対して、同意は要支援者に対しての割合。", 7,
                width=STATS_RIGHT - LEFT)


def _roles(w: PageWriter, sheet: DistrictSheet) -> None:
    coop = sheet.karte["cooperators"]
    w.heading("共助協力者", note="人数", keep=0, x0=ROLES_LEFT)
    cols = (Column("区分", 112), Column("人数", RIGHT - ROLES_LEFT - 112, "right"))
    rows = [(label, _count(n, "人")) for label, n in sheet.role_rows]
    rows.append(("合計", _count(coop["total"], "人")))
    rows.append(("避難支援で受け持てる人数", _count(coop["evacuation_capacity"], "人")))
    w.table(cols, rows, size=9, row_h=STATS_ROW, x=ROLES_LEFT)
    note = ("氏名・連絡先は取扱注意版に載ります。" if not sheet.options.edition.personal
            else "氏名・連絡先は協力者名簿のページに。")
    w.paragraph(note, 7, width=RIGHT - ROLES_LEFT, x=ROLES_LEFT)


# --- page 2 ----------------------------------------------------------------------------------------

def _summary_page(w: PageWriter, sheet: DistrictSheet) -> None:
    w.heading("空白・課題のまとめ", note="地区と市全体の割合")
    cols = (Column("項目", 260), Column("地区", 95, "right"), Column("地区の割合", 92, "right"),
            Column("市の割合", 92, "right"))
    walk = sheet.map.walk_m
    rows: list = [Group(f"サロンの徒歩圏（徒歩 {walk:.0f}m 以内）")]
    for label, value, rate, city in sheet.coverage_rows:
        rows.append((label, _count(value, "人"), _pct(rate), _pct(city)))
    rows.append(Group("避難支援（要支援者に対する割合）"))
    for label, value, rate, city in sheet.gap_rows:
        rows.append((label, _count(value, "人"), _pct(rate), _pct(city)))
    w.table(cols, rows, size=9.5, row_h=SUMMARY_ROW)
    w.space(4)

    k = sheet.karte
    w.heading("共助サービス", note="地図の番号はサロン（月1回以上は塗りつぶし）", keep=40)
    cols = (Column("地図", 24, "center"), Column("種類", 66), Column("名称", 138), Column("会場", 96),
            Column("日時", 86), Column("対象", 54), Column("連絡先", 75))
    rows = [(str(sheet.salon_numbers.get(s["service_id"], "")), s["kind_ja"], s["name"], s["venue"],
             s["schedule"] or s["frequency_ja"], s["target"], s["contact"]) for s in k["services"]]
    if rows:
        w.table(cols, rows, size=8.5, row_h=SERVICE_ROW, continued="共助サービス（続き）")
    else:
        w.paragraph("登録された共助サービスはありません。", 9, color=INK)
    w.space(4)

    sites = k["emergency_sites"]["count"]
    outside = f"・名簿の避難先で地区外 {len(sheet.outside_shelters)} か所" if sheet.outside_shelters else ""
    w.heading("避難所", note=f"地区内の指定避難所 {len(k['shelters'])} か所・指定緊急避難場所 {sites} か所"
              + outside, keep=40)
    cols = (Column("記号", 30, "center"), Column("名称", 160), Column("住所", 170), Column("種別", 70),
            Column("受入対象", 109))
    rows = [(sheet.shelter_labels.get(s["shelter_id"], ""), s["name"], short_address(s["address"]),
             "福祉避難所" if s["welfare"] else "指定避難所", s.get("accepts") or "")
            for s in k["shelters"]]
    rows += [(s["label"], s["name"], s["address"], "福祉避難所" if s["welfare"] else "指定避難所",
              "・".join(x for x in ("地区外" if s["in_map"] else "地区外（地図の外）", s["accepts"]) if x))
             for s in sheet.outside_shelters]
    if rows:
        w.table(cols, rows, size=8.5, row_h=SUMMARY_ROW, continued="避難所（続き）")
    else:
        w.paragraph("地区内に指定避難所はありません（近くの地区の避難所を地図に灰色で示します）。", 9,
                    color=INK)


def _sources_text(sheet: DistrictSheet) -> str:
    """What each figure comes from and as of when, and why the city total differs from the
    census's own (the build's ``sources`` block: :func:`karte.history.sources_block`)."""
    block = sheet.karte.get("sources") or {}
    lines = list(block.get("lines") or [])
    census = block.get("census_total") or {}
    if census.get("note"):
        lines.append(census["note"])
    if (census.get("district") or {}).get("text"):
        lines.append(census["district"]["text"])
    return "出典と基準日　" + "／".join(lines) if lines else ""


# --- personal pages --------------------------------------------------------------------------------

def _roster(w: PageWriter, sheet: DistrictSheet) -> None:
    roster = sheet.roster or []
    w.heading("共助協力者名簿（連絡先）", note=f"{len(roster)} 人　定員: 受け持てる人数　"
              "担当: 割り当て済み（同意のない方・他地区の方を含む）")
    rows = [(r["role_ja"], r.get("label", r["name"]), r["phone"], r["help_ja"],
             "" if r["capacity"] is None else str(r["capacity"]), _load(r)) for r in roster]
    w.table(ROSTER_COLUMNS, rows, size=9, row_h=ROSTER_ROW, header_h=HEADER_ROW,
            continued="共助協力者名簿（続き）", empty="登録された共助協力者はいません。")


#: How the personal pages are numbered (:mod:`gis.risk`).
ORDER_NOTE = "番号は避難の優先順（医療機器・寝たきり・支援者なし・要介護度の順）で、地図の番号と同じです。"


def _listed_note(sheet: DistrictSheet) -> str:
    """「94 人（同意のない 31 人は載せていません）」: the listed, and how many are not (a count:
    the district's support-needers without shareable consent)."""
    people = sheet.register or []
    unlisted = f"（同意のない {sheet.unlisted} 人は載せていません）" if sheet.unlisted else ""
    return f"{len(people)} 人{unlisted}"


def _register(w: PageWriter, sheet: DistrictSheet) -> None:
    people = sheet.register or []
    w.heading("要支援者名簿（同意した方）",
              note=f"{_listed_note(sheet)}　No.: 避難の優先順・地図と同じ")
    rows = [(str(p["number"]), _name(p), p["address"], p["needs"], _supporters(p, phone=True),
             _emergency(p), _shelter_text(p["shelter"]),
             p["plan_ja"] if p["plan_ja"] == "作成済" else Strong(p["plan_ja"]))
            for p in people]
    w.table(REGISTER_COLUMNS, rows, size=9, row_h=REGISTER_ROW, header_h=HEADER_ROW,
            continued="要支援者名簿（続き）", empty=NOBODY)


def _drill_line(w: PageWriter) -> None:
    w.y -= 16
    w.text(LEFT, w.y, "訓練日　　　　年　　月　　日（　）　　記入者　　　　　　　　　　　"
           "開始　　：　　　終了　　：", 9.5)
    w.y -= 6


def _by_supporter(w: PageWriter, sheet: DistrictSheet) -> None:
    """Who goes to whom: first the people nobody is assigned to (most urgent first), then one
    group per supporter, each in risk order."""
    people = sheet.register or []
    w.heading("支援者別　だれが だれのところへ", note=f"{_listed_note(sheet)}　安否・声かけを確認したら□に✓")
    w.paragraph(f"※ {ORDER_NOTE}支援者が決まっていない方を先に載せています。", 7.5, color=INK)
    _drill_line(w)
    groups: dict[str, tuple[dict, list]] = {}
    nobody = []
    for p in people:
        if not p["supporters"]:
            nobody.append(p)
        for s in p["supporters"]:
            groups.setdefault(s["id"], (s, []))[1].append(p)
    rows: list = []
    if nobody:
        rows.append(Group(f"■ 支援者が決まっていない方　{len(nobody)} 人（優先順。当日の担当を決めて記入）"))
        rows += [_visit_row(p) for p in nobody]
    order = {label: i for i, label in enumerate(ROLE_JA.values())}
    for supporter, persons in sorted(groups.values(),
                                     key=lambda g: (order.get(g[0]["role_ja"], 99), g[0]["label"])):
        rows.append(Group(f"■ {supporter['label']}（{supporter['role_ja']}）　{supporter['phone']}"
                          f"　担当 {len(persons)} 人" + _not_listed(sheet, supporter["id"])))
        rows += [_visit_row(p) for p in persons]
    w.table(BY_SUPPORTER_COLUMNS, rows, size=9, row_h=DRILL_ROW, header_h=HEADER_ROW,
            continued="支援者別（続き）", empty=NOBODY)


def _not_listed(sheet: DistrictSheet, supporter_id: str) -> str:
    """「（ほかに同意のない方 2 人・他地区 1 人）」: assigned people this sheet does not list."""
    unconsented, elsewhere = sheet.unlisted_by_supporter.get(str(supporter_id), (0, 0))
    parts = ([f"同意のない方 {unconsented} 人"] if unconsented else []) + (
        [f"他地区 {elsewhere} 人"] if elsewhere else [])
    return f"（ほかに{'・'.join(parts)}は載せていません）" if parts else ""


def _visit_row(p: dict):
    return ("", _number(p), _name(p), p["address"], p["needs"], _emergency(p), _shelter_text(p["shelter"]),
            "")


def _by_shelter(w: PageWriter, sheet: DistrictSheet) -> None:
    people = sheet.register or []
    w.heading("避難先別　だれが どこへ", note="到着を確認したら□に✓")
    _drill_line(w)
    groups: dict[str, tuple[dict, list]] = {}
    nowhere = []
    for p in people:
        if p["shelter"] is None:
            nowhere.append(p)
        else:
            groups.setdefault(p["shelter"]["id"], (p["shelter"], []))[1].append(p)
    rows: list = []
    for shelter, persons in sorted(groups.values(), key=lambda g: (
            g[0]["label"] == "", _letter_key(g[0]["label"]), g[0]["name"])):
        kind = "福祉避難所" if shelter["welfare"] else "指定避難所"
        mark = f"{shelter['label']} " if shelter["label"] else ""
        rows.append(Group(f"■ {mark}{shelter['name']}（{kind}）　{shelter['address']}"
                          f"　{len(persons)} 人"))
        rows += [_arrival_row(p) for p in persons]
    if nowhere:
        rows.append(Group(f"■ 避難先が決まっていない方　{len(nowhere)} 人"))
        rows += [_arrival_row(p) for p in nowhere]
    w.table(BY_SHELTER_COLUMNS, rows, size=9, row_h=DRILL_ROW, header_h=HEADER_ROW,
            continued="避難先別（続き）", empty=NOBODY)


def _letter_key(label: str) -> tuple[int, str]:
    return len(label), label  # A … Z, then AA …


def _arrival_row(p: dict):
    return ("", _number(p), _name(p), p["needs"], _supporters(p, phone=True), _emergency(p), "")


#: The register id beside a drill sheet's tick box: what the marks entered from this paper
#: (:func:`karte.services.copies.paper_marks`) and a photo of it are matched on.
ID_W = 44.0


def _id(p: dict) -> str:
    return str(p["person_id"])


def _number(p: dict) -> str:
    """The register id (beside the name: what ticks are entered back by) over the risk-order
    number (as on the map)."""
    return f"{_id(p)}\nNo.{p['number']}" if p.get("number") else _id(p)


def _name(p: dict) -> str:
    """Name over kana; when another person on the sheet has the same name, the age beside the
    name and the town beside the kana (``tell``: (age, town))."""
    tell = p.get("tell")
    if not tell:
        return f"{p['name']}\n{p['kana']}" if p.get("kana") else p["name"]
    age, town = tell
    first = f"{p['name']}（{age}歳）" if age is not None else p["name"]
    second = "・".join(x for x in (p.get("kana"), town) if x)
    return f"{first}\n{second}" if second else first


def _emergency(p: dict) -> str:
    return p.get("emergency") or "—"


# --- formatting ------------------------------------------------------------------------------------

def _load(r: dict) -> str:
    """Assigned people; bold with 超過 when more than the capacity."""
    if r["capacity"] is not None and r["load"] > r["capacity"]:
        return Strong(f"{r['load']} 超過")
    return str(r["load"])


def _supporters(p: dict, *, phone: bool = False) -> str:
    """The supporters' names (told apart when two share a name), with their phones on a second
    line when ``phone``; 未定 in bold when nobody is assigned."""
    if not p["supporters"]:
        return Strong("未定")
    names = "・".join(s.get("label") or s["name"] for s in p["supporters"])
    phones = "・".join(s["phone"] for s in p["supporters"] if s["phone"])
    return f"{names}\n{phones}" if phone and phones else names


def _shelter_text(shelter: dict | None) -> str:
    if shelter is None:
        return Strong("未定")
    mark = f"{shelter['label']} " if shelter["label"] else ""
    return f"{mark}{shelter['name']}" + ("（福祉）" if shelter["welfare"] else "")


def _count(value, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{int(value):,} {unit}"


def _pct(value) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


