"""Printed district sheets, checked with the poppler tools a person would use (pdffonts,
pdftotext, pdfinfo, pdftoppm) on the real Aomori demo."""

from __future__ import annotations

import math
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from karte.cli import app
from karte.cli.common import cli_access
from karte.domain.access import PUBLIC, Access, Level
from karte.domain.errors import AccessDenied
from karte.domain.schema import Consent, Edition
from karte.services.sheets import district_sheet_pdf, print_sheets
from karte.store import GeoPackageStore

USER = "yamada.test"


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def text_of(pdf: Path, *, layout: bool = False) -> str:
    return run("pdftotext", *(["-layout"] if layout else []), "-enc", "UTF-8", str(pdf), "-")


def pages_of(pdf: Path) -> list[str]:
    return text_of(pdf).split("\f")[:-1]


def page_count(pdf: Path) -> int:
    return int(re.search(r"Pages:\s+(\d+)", run("pdfinfo", str(pdf))).group(1))


def whole_word(kana: str, text: str) -> bool:
    """``kana`` in ``text`` as a whole name (ヤマダ キヨ is not in ヤマダ キヨシ)."""
    return re.search(rf"(?<![ァ-ヶー]){re.escape(kana)}(?![ァ-ヶー])", text) is not None


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def store(demo, tmp_path_factory) -> GeoPackageStore:
    """A copy of the demo store (the sheets' reads are logged in it)."""
    _, folder = demo
    path = tmp_path_factory.mktemp("sheets") / "karte.gpkg"
    with sqlite3.connect(folder / "karte.gpkg") as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    return GeoPackageStore(path)


def sheets_command(districts, all_, edition, paper, out, store, user) -> int:
    """``karte sheets ...`` through the command line; returns the exit status."""
    args = ["sheets", *districts, *(["--all"] if all_ else []), "--edition", edition, "--paper", paper,
            "--out", str(out), "--store", str(store), "--user", user]
    return CliRunner().invoke(app, args).exit_code


def access_of(user: str):
    return cli_access("cli:sheets", user=user)


@pytest.fixture(scope="module")
def public_all(store, tmp_path_factory) -> Path:
    """``karte sheets --all``: every district, public edition, both cores."""
    out = tmp_path_factory.mktemp("public")
    assert sheets_command([], True, "public", "A4", out, str(store.path), USER) == 0
    return out


@pytest.fixture(scope="module")
def confidential(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("confidential")
    return print_sheets(store, ["S01", "S05"], edition="confidential", access=access_of(USER), out=out)


@pytest.fixture(scope="module")
def drill(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("drill")
    return print_sheets(store, ["S01"], edition="drill", access=access_of(USER), out=out, workers=1)


def karte_of(store, code):
    from karte.build import read_karte

    return read_karte(store, code)


def shareable(store, code):
    reg = store.read("register", district=code)
    return reg[reg["consent"].map(lambda c: Consent(c).shareable)], reg


# --- fonts -------------------------------------------------------------------------------------

def test_japanese_font_is_embedded_and_subset(public_all):
    rows = run("pdffonts", str(public_all / "S01-public.pdf")).splitlines()[2:]
    assert rows, "no fonts listed"
    for row in rows:
        name, *_rest = row.split()
        emb, sub, _uni = row.split()[-5:-2]
        assert "IPAexGothic" in name and re.match(r"[A-Z]{6}\+", name), row
        assert (emb, sub) == ("yes", "yes"), row  # no Helvetica or other unembedded font


def test_font_ships_with_a_python_dependency_not_the_system():
    from karte.render.pdf_fonts import font_path

    path = font_path()
    assert "site-packages" in path.parts and path.name == "ipaexg.ttf"
    assert not str(path).startswith("/usr/share/fonts")
    assert (path.parent / "IPA_Font_License_Agreement_v1.0.txt").is_file()


def test_no_character_falls_back_to_a_missing_glyph(store, public_all, confidential):
    from karte.render.pdf_fonts import MISSING, missing_glyphs

    texts = []
    for layer, cols in (("register", ("name", "kana", "address")), ("cooperators", ("name",)),
                        ("services", ("name", "venue", "schedule", "target")),
                        ("shelters", ("name", "address")), ("small_areas", ("name",)),
                        ("districts", ("district_name",))):
        frame = store.read(layer)
        texts += [str(v) for c in cols for v in frame[c].dropna()]
    assert missing_glyphs("".join(texts)) == set()
    for pdf in (public_all / "all-public.pdf", confidential.files["S01"]):
        assert MISSING not in text_of(pdf)


def test_characters_the_font_lacks_become_a_geta_mark_not_a_box():
    from karte.render.pdf_fonts import MISSING, safe_text

    assert safe_text("西田沢") == "西田沢"
    assert safe_text("a\U0001F600b") == f"a{MISSING}b"  # an emoji IPAexGothic does not have


# --- public edition ------------------------------------------------------------------------------

def test_public_sheet_has_district_name_year_and_population(store, public_all):
    karte = karte_of(store, "S01")
    text = text_of(public_all / "S01-public.pdf")
    population = next(m["value"] for m in karte["base"] if m["key"] == "population")
    assert karte["district"]["name"] in text and "S01" in text
    assert f"{population:,} 人" in text
    assert karte["fiscal_year_label"] in text and "2026年10月1日" in text
    city = next(m["city"] for m in karte["base"] if m["key"] == "population")
    assert f"{city:,} 人" in text  # the city's value beside the district's
    for heading in ("基礎情報", "空白・課題のまとめ", "共助協力者", "共助サービス", "避難所",
                    "サロンの徒歩圏", "徒歩圏外で高齢者が住むところ", "福祉避難所"):
        assert heading in text, heading


def test_page_one_prints_the_sources_and_the_census_gap(store, public_all):
    """Every figure's source and date, and why the city total is not the census's own, on the
    first page (the map gives way to it: the sheet stays two pages)."""
    karte = karte_of(store, "S31")
    first = squash(pages_of(public_all / "S31-public.pdf")[0])
    assert "出典と基準日" in first
    for line in karte["sources"]["lines"][:-1]:   # the analysis line is renewed at print time
        assert squash(line) in first, line
    census = karte["sources"]["census_total"]
    assert census["population"]["gap"] > 0 and squash(census["note"]) in first
    assert census["district"]["text"] and squash(census["district"]["text"]) in first


def test_public_edition_contains_no_register_or_roster_names(store, public_all):
    text = squash(text_of(public_all / "all-public.pdf"))
    register = store.read("register")
    leaked = [n for n in set(register["name"]) | set(register["kana"]) if squash(n) in text]
    assert leaked == []
    coop = store.read("cooperators")
    assert [n for n in set(coop["name"]) if squash(n) in text] == []
    public_numbers = set(store.read("services")["contact"])  # a service's contact is public
    assert [p for p in set(coop["phone"]) - public_numbers if p in text] == []


def test_public_edition_suppresses_small_counts(store, public_all):
    karte = karte_of(store, "S01")
    small = [r for r in karte["cooperators"]["by_role"] if 1 <= r["count"] <= 2]
    assert small, "the demo should have a role with 1 or 2 cooperators in S01"
    page = pages_of(public_all / "S01-public.pdf")[0]
    for r in small:
        assert re.search(rf"{r['label']}\s+秘匿", page), r["label"]


def test_public_sheets_are_two_pages_and_the_merged_pdf_has_contents(store, public_all):
    kartes = store.read("kartes")
    codes = sorted(kartes["district_code"])
    files = sorted(p.name for p in public_all.glob("S*-public.pdf"))
    assert files == [f"{c}-public.pdf" for c in codes]
    assert all(page_count(public_all / f) == 2 for f in files)
    merged = public_all / "all-public.pdf"
    # one contents page and its blank back, so that every district starts on a front side
    assert page_count(merged) == 2 + 2 * len(codes)
    pages = pages_of(merged)
    toc = pages[0]
    assert "目次" in toc and "白紙" in pages[1]
    for code, name in zip(kartes["district_code"], kartes["karte_json"].str.extract(
            r'"name": "([^"]+)"')[0], strict=True):
        assert code in toc and name in toc
    assert "3〜4" in toc and "85〜86" in toc  # the first and the last district's pages
    assert f"{codes[-1]} " in pages[84] and re.search(r"\b1\s*/\s*2\b", pages[84])

    from pypdf import PdfReader

    outline = PdfReader(merged).outline
    assert [o.title for o in outline][:2] == ["目次", f"S01 {karte_of(store, 'S01')['district']['name']}"]
    assert len(outline) == 1 + len(codes)


def test_public_sheets_are_not_logged_as_personal_exports(store, public_all):
    log = store.audit_log()
    assert not ((log["route"] == "cli:sheets") & (log["district"] == "S03")).any()


# --- confidential edition ------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["S01", "S05"])
def test_confidential_lists_exactly_the_consented_people_of_the_district(store, confidential, code):
    pdf = confidential.files[code]
    text = text_of(pdf)
    flat = squash(text)
    ok, reg = shareable(store, code)
    # every shareable person, by name and by address (names repeat; addresses identify)
    for p in ok.itertuples():
        assert squash(p.name) in flat and squash(p.kana) in flat
        assert squash(p.address.removeprefix("青森県青森市")) in flat, p.person_id
    hidden = reg[~reg["person_id"].isin(ok["person_id"])]
    shown_addresses = {a.removeprefix("青森県青森市") for a in ok["address"]}
    checked = 0
    for p in hidden.itertuples():
        address = p.address.removeprefix("青森県青森市")
        if address not in shown_addresses:
            assert squash(address) not in flat, p.person_id
            checked += 1
    assert checked >= 10  # refused and unanswered people of this district really were checked
    # the register's heading counts the shareable people
    assert re.search(rf"同意した方）\s+{len(ok)} 人（同意のない {len(reg) - len(ok)} 人は載せていません）",
                     text_of(pdf, layout=True))
    # nobody of another district
    others = store.read("register")
    others = others[(others["district_code"] != code)]
    own = set(reg["kana"]) | set(store.read("cooperators", district=code)["name"])
    assert [k for k in set(others["kana"]) - own if whole_word(k, text)] == []


def test_confidential_pages_are_marked_with_time_and_user(confidential):
    pages = pages_of(confidential.files["S01"])
    assert len(pages) == confidential.pages["S01"]
    for page in pages:
        assert "取扱注意" in page and f"印刷者 {USER}" in page
        assert re.search(r"印刷 \d{4}-\d\d-\d\d \d\d:\d\d JST", page)
        # a numbered copy of the hand-out ledger (tests/test_copies.py checks the ledger)
        assert f"複製番号 {confidential.copies['S01']}" in page


def test_confidential_page_count_follows_the_row_counts(store, confidential):
    from karte.render import sheet_pages as sp
    from karte.render.pdf_layout import CONTINUED_H, rows_per_page
    from karte.render.sheet_pages import REGISTER_ROWS_PER_PAGE, ROSTER_ROWS_PER_PAGE

    assert ROSTER_ROWS_PER_PAGE >= 40 and REGISTER_ROWS_PER_PAGE >= 30  # dense enough to carry
    # a page the table carries over to holds as many rows as the section's first page
    for rows, row_h in ((ROSTER_ROWS_PER_PAGE, sp.ROSTER_ROW), (REGISTER_ROWS_PER_PAGE, sp.REGISTER_ROW)):
        assert rows == rows_per_page(row_h=row_h, header_h=sp.HEADER_ROW,
                                     top=sp.PERSONAL_TOP - CONTINUED_H)
    for code in ("S01", "S05"):
        ok, _ = shareable(store, code)
        roster = store.read("cooperators", district=code)
        # the public part: 2 pages, 3 when its shelter list (with the shelters outside the
        # district that the register sends people to) carries over
        pages = pages_of(confidential.files[code])
        public = next(i for i, page in enumerate(pages) if "共助協力者名簿（連絡先）" in page)
        assert public in (2, 3)
        expected = (public + math.ceil(len(roster) / ROSTER_ROWS_PER_PAGE)
                    + math.ceil(len(ok) / REGISTER_ROWS_PER_PAGE))
        assert page_count(confidential.files[code]) == confidential.pages[code] == expected
    # contents, then each district from a front side (a blank back after an odd page count)
    assert page_count(confidential.merged) == confidential.merged_pages == 2 + sum(
        n + n % 2 for n in confidential.pages.values())


def test_merged_personal_edition_prints_duplex_with_every_page_marked(store, confidential):
    pages = pages_of(confidential.merged)
    for page in pages:  # contents and blank pages too
        assert "取扱注意" in page and f"印刷者 {USER}" in page, page[:200]
    toc = pages[0]
    start = 3
    for code in ("S01", "S05"):
        n = confidential.pages[code]
        assert re.search(rf"(?s){code}\s.*?\s{n}\s+{start}〜{start + n - 1}", toc), code
        first = pages[start - 1]
        assert start % 2 == 1 and f"{code} " in first and re.search(rf"\b1\s*/\s*{n}\b", first)
        if n % 2:
            assert "白紙" in pages[start + n - 1]
        start += n + n % 2


def test_confidential_roster_has_contacts(store, confidential):
    text = text_of(confidential.files["S05"])
    roster = store.read("cooperators", district="S05")
    for c in roster.itertuples():
        assert c.phone in text


def test_confidential_exports_are_logged_with_counts_only(store, confidential):
    log = store.audit_log()
    ok, reg = shareable(store, "S05")
    mine = log[(log["route"] == "cli:sheets") & (log["district"] == "S05")]
    reads = mine[mine["action"] == "read"]
    assert set(reads["layer"]) == {"register", "cooperators"}
    assert (reads.loc[reads["layer"] == "register", "rows"] == len(ok)).all()
    # the sheet is a numbered copy: one row appended to the hand-out ledger, logged as a count
    assert mine.loc[mine["action"] != "read", ["layer", "action", "rows"]].values.tolist() == [
        ["copies", "append", 1]]
    assert (mine["actor"] == USER).all()
    assert not set(reg["name"]) & set(log.astype(str).to_numpy().ravel())


def test_personal_files_are_readable_by_the_owner_only(confidential):
    assert confidential.files["S01"].stat().st_mode & 0o077 == 0
    assert confidential.merged.stat().st_mode & 0o077 == 0


# --- drill edition -------------------------------------------------------------------------------

def test_drill_groups_people_by_supporter_and_by_shelter(store, drill):
    pdf = drill.files["S01"]
    pages = pages_of(pdf)
    text = "\f".join(pages)
    ok, _ = shareable(store, "S01")
    by_supporter = text[text.index("支援者別"):text.index("避難先別")]
    by_shelter = text[text.index("避難先別"):]
    for p in ok.itertuples():  # everyone appears in both lists
        assert squash(p.kana) in squash(by_supporter) and squash(p.kana) in squash(by_shelter)
    coop = store.read("cooperators").set_index("cooperator_id")
    from karte.domain.layers import split_list

    supporters = {s for ids in ok["supporter_ids"] for s in split_list(ids)}
    for sid in supporters:  # one group per supporter, with the phone number
        assert f"■ {coop.loc[sid, 'name']}" in by_supporter and coop.loc[sid, "phone"] in by_supporter
    if (ok["supporter_ids"].map(lambda s: not split_list(s))).any():
        assert "支援者が決まっていない方" in by_supporter
    shelters = store.read("shelters").set_index("shelter_id")
    for sid in set(ok["shelter_id"].dropna()):
        assert shelters.loc[sid, "name"] in squash(by_shelter)
    assert "確認" in by_supporter and "到着" in by_shelter and "訓練日" in text
    assert all("取扱注意" in page and USER in page for page in pages)


def test_drill_has_a_roll_call_box_per_person(store, drill):
    """Each listed person gets an empty box: count the square paths on the list pages."""
    from pypdf import PdfReader

    ok, _ = shareable(store, "S01")
    from karte.domain.layers import split_list

    rows = sum(max(1, len(split_list(s))) for s in ok["supporter_ids"]) + len(ok)
    reader = PdfReader(drill.files["S01"])
    boxes = 0
    for page in reader.pages[3:]:  # after map, summary and roster
        content = page.get_contents().get_data().decode("latin-1")
        boxes += len(re.findall(r" 10 10 re", content))
    assert boxes == rows


# --- paper, access, command --------------------------------------------------------------------

def test_a3_is_the_same_sheet_enlarged(store, tmp_path, confidential):
    res = print_sheets(store, ["S01"], edition="public", paper="A3", out=tmp_path)
    info = run("pdfinfo", str(res.files["S01"]))
    assert "841.89 x 1190.55" in info and res.files["S01"].name == "S01-public-A3.pdf"
    assert page_count(res.files["S01"]) == 2


def test_access_rules_for_the_web(store):
    data = district_sheet_pdf(store, "S02", edition="public", access=PUBLIC)
    assert data.startswith(b"%PDF") and b"IPAexGothic" in data
    with pytest.raises(AccessDenied):
        district_sheet_pdf(store, "S02", edition="confidential", access=PUBLIC)
    member = Access("m", Level.DISTRICT_MEMBER, "S02", route="web:sheet_pdf")
    with pytest.raises(AccessDenied):
        district_sheet_pdf(store, "S03", edition="drill", access=member)
    before = len(store.audit_log())
    assert district_sheet_pdf(store, "S02", edition="confidential", access=member).startswith(b"%PDF")
    log = store.audit_log().iloc[before:]
    # read as the member, by the store: the register and the roster, both of the member's district
    assert set(log["route"]) == {"web:sheet_pdf"} and set(log["district"]) == {"S02"}
    assert set(log["actor"]) == {"m"} and set(log["level"]) == {"district_member"}
    assert {"register", "cooperators"} <= set(log["layer"])


def test_city_staff_still_print_only_shareable_rows(store, tmp_path):
    staff = Access("staff", Level.CITY_STAFF)
    res = print_sheets(store, ["S05"], edition="confidential", access=staff, out=tmp_path)
    ok, reg = shareable(store, "S05")
    assert len(ok) < len(reg)
    assert re.search(rf"同意した方）\s+{len(ok)} 人（同意のない {len(reg) - len(ok)} 人",
                     text_of(res.files["S05"], layout=True))


def test_command_errors_are_clear(store, tmp_path):
    base = ["--out", str(tmp_path), "--store", str(store.path), "--user", USER]
    errors = ""
    for args in (["sheets"], ["sheets", "S01", "--all"], ["sheets", "S01", "--edition", "secret"],
                 ["sheets", "S99"], ["sheets", "S01", "--paper", "B5"]):
        result = CliRunner().invoke(app, [*args, *base])
        assert result.exit_code == 1, args
        errors += result.stderr
    assert "--all" in errors and "public / confidential / drill" in errors and "S99" in errors
    assert "A4" in errors
    assert list(tmp_path.glob("*.pdf")) == []


def test_map_page_renders_with_ink_and_colour(public_all, tmp_path):
    from PIL import Image

    run("pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(public_all / "S20-public.pdf"),
        str(tmp_path / "p"))
    image = Image.open(next(tmp_path.glob("p*.png"))).convert("RGB")
    w, h = image.size
    map_area = image.crop((int(w * 0.06), int(h * 0.15), int(w * 0.94), int(h * 0.65)))
    colours = map_area.getcolors(maxcolors=1 << 16)
    dark = sum(n for n, (r, g, b) in colours if r + g + b < 150)
    tinted = sum(n for n, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 40)
    total = map_area.width * map_area.height
    assert dark > 0.002 * total and tinted > 0.02 * total


def test_map_colours_differ_in_greyscale():
    from karte.render import sheet_map as m

    def grey(c):
        return 0.299 * c.red + 0.587 * c.green + 0.114 * c.blue

    fills = [grey(c) for c in (m.CATCHMENT, m.CELL, m.CELL_HATCH, m.SALON, m.INK)]
    assert all(abs(a - b) >= 0.05 for i, a in enumerate(fills) for b in fills[i + 1:])
    assert grey(m.CATCHMENT) < 0.97  # visible on white paper


def test_scale_bar_is_a_round_length_near_a_fifth_of_the_map():
    from karte.render.sheet_map import scale_bar_length

    assert scale_bar_length(0.1, 500) == 1000  # 0.1 pt per metre: a fifth of 500 pt is 1 km
    assert scale_bar_length(1.0, 500) == 100
    assert scale_bar_length(0.02, 540) in (5000, 10000)


def test_cell_text_wraps_at_natural_breaks_and_never_starts_a_line_with_a_bracket():
    import io

    from reportlab.pdfgen.canvas import Canvas

    from karte.render.pdf_fonts import register_font
    from karte.render.pdf_layout import fit, wrap

    canvas, font = Canvas(io.BytesIO()), register_font()
    width = canvas.stringWidth("ゴミ出し支援（大字八ツ役字芦谷町会館", font, 8)
    lines = wrap(canvas, "ゴミ出し支援（大字八ツ役字芦谷町会館）", font, 8, width + 1)
    assert len(lines) == 2 and not lines[1].startswith("）") and "".join(lines).endswith("館）")
    assert wrap(canvas, "隔月 土曜 10:00〜12:00", font, 8, 70) == ["隔月 土曜", "10:00〜12:00"]
    text, size = fit(canvas, "地域包括支援センター職員", font, 9, 100)
    assert size < 9 and canvas.stringWidth(text, font, size) <= 100
    text, size = fit(canvas, "とても長い名前" * 10, font, 9, 100)
    assert text.endswith("…") and canvas.stringWidth(text, font, size) <= 100


def test_a3_prints_the_true_scale_of_the_enlarged_map(store, tmp_path, public_all):
    a3 = print_sheets(store, ["S05"], edition="public", paper="A3", out=tmp_path, workers=1)

    def scale(pdf):
        return int(re.search(r"1:([\d,]+)", pages_of(pdf)[0]).group(1).replace(",", ""))

    a4_scale, a3_scale = scale(public_all / "S05-public.pdf"), scale(a3.files["S05"])
    assert a3_scale < a4_scale  # the same map, larger on paper: a larger scale (1:n, smaller n)
    assert a4_scale / a3_scale == pytest.approx(math.sqrt(2), rel=0.04)


def test_map_polygons_are_generalised_to_the_scale():
    """A sliver between two small areas (a road gap) closes; a small hole goes, a large one stays."""
    import shapely

    from karte.render.sheet_map import _rings

    left, right = shapely.box(0, 0, 100, 100), shapely.box(101, 0, 200, 100)  # 1 m gap
    pit = shapely.box(20, 20, 22, 22)  # 4 m²
    lake = shapely.box(120, 20, 170, 70)  # 2 500 m²
    geom = shapely.union_all([left.difference(pit), right.difference(lake)])
    assert len(list(_rings([geom], 0.0, None))) == 4  # as stored: two parts, two holes
    rings = list(_rings([geom], 0.0, None, close=2.0))
    assert len(rings) == 2  # one outline and the lake
    assert shapely.Polygon(rings[1]).area == pytest.approx(lake.area)
    assert shapely.Polygon(rings[0]).area == pytest.approx(200 * 100)


def test_batch_reports_progress_and_uses_both_cores(store, tmp_path):
    import os

    seen = []
    res = print_sheets(store, ["S01", "S02", "S03", "S04"], edition="public", out=tmp_path,
                       workers=2, progress=lambda stage, done, total: seen.append((stage, done, total)))
    stages = {stage for stage, _, _ in seen}
    assert stages == {"render", "merge"} or stages == {"analysis", "render", "merge"}
    renders = [(d, t) for s, d, t in seen if s == "render"]
    assert renders == [(i, 4) for i in range(1, 5)]
    assert seen[-1] == ("merge", 1, 1)
    assert res.processes == min(2, os.cpu_count() or 1)  # the sheets were drawn by two workers


def test_sheet_prints_in_a_fresh_process_without_touching_system_fonts(store, tmp_path):
    """The web's first request (no batch before) and a machine without CJK fonts: a fresh
    interpreter renders a sheet while an audit hook refuses every file under the system's font
    folders (this machine has IPAGothic there; the sheets must not need it)."""
    import sys
    import textwrap

    out = tmp_path / "web.pdf"
    script = textwrap.dedent(f"""
        import sys
        FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/etc/fonts")

        def hook(event, args):
            if event == "open" and isinstance(args[0], str) and args[0].startswith(FONT_DIRS):
                raise PermissionError("system font read: " + args[0])
            if event == "os.listdir" and args and str(args[0]).startswith(FONT_DIRS):
                raise PermissionError("system font folder listed: " + str(args[0]))

        sys.addaudithook(hook)
        from pathlib import Path
        from karte.domain.access import Access, Level
        from karte.services.sheets import district_sheet_pdf
        from karte.store import GeoPackageStore

        data = district_sheet_pdf(GeoPackageStore({str(store.path)!r}), "S07",
                                  edition="confidential", access=Access("web.user", Level.COORDINATOR))
        Path({str(out)!r}).write_bytes(data)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                   timeout=300)
    fonts = run("pdffonts", str(out)).splitlines()[2:]
    assert fonts and all("IPAexGothic" in f and f.split()[-5:-3] == ["yes", "yes"] for f in fonts)
    text = text_of(out)
    assert "取扱注意" in text and "印刷者 web.user" in text


def test_an_empty_register_prints_a_note_not_a_blank_form(store, tmp_path):
    from karte.analysis import Coverage
    from karte.render.sheet_model import SheetOptions
    from karte.render.sheet_pages import NOBODY, ROSTER_ROWS_PER_PAGE
    from karte.render.sheets import render_sheet
    from karte.services.personal import read_rows
    from karte.services.sheets import build_sheet, personal_rows, supporter_index
    from karte.snapshot import current

    snap = current(store)
    access = access_of(USER)
    rows = personal_rows(store, "S18", access, supporter_index(read_rows(store, "cooperators", access)))
    city = {"uncovered_elderly_share": None, "uncovered_75_plus_share": None}
    for edition, lists in ((Edition.CONFIDENTIAL, 1), (Edition.DRILL, 2)):
        sheet = build_sheet(snap, "S18", options=SheetOptions(edition=edition, user=USER),
                            coverage=Coverage("S18"), city_coverage=city, personal=rows)
        sheet.register = []
        data, pages = render_sheet(sheet)
        pdf = tmp_path / f"{edition.value}.pdf"
        pdf.write_bytes(data)
        assert squash(text_of(pdf)).count(squash(NOBODY)) == lists
        roster = math.ceil(len(sheet.roster) / ROSTER_ROWS_PER_PAGE)
        assert pages == page_count(pdf) == 2 + roster + lists  # map, summary, roster, a page a list
