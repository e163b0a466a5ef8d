"""The hand-out ledger of register copies (issue 20) on the GeoPackage store: every personal sheet,
CSV and sealed list is a numbered copy with its number on every page (text and QR code), the
ledger's state follows from its events, copies of an older register version are flagged, and only
who may see the register sees the ledger.

PDFs are checked as a person would: pdftotext for the text, pages rendered by pdftoppm and their
QR codes decoded by zxing-cpp (the reader a phone would be)."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import copy_store

from karte.domain.access import PUBLIC, Access, Level
from karte.domain.copies import COPIES, EVENTS, Basis, CopyKind, Event, HolderKind, Purpose, Scope, State
from karte.domain.errors import AccessDenied, ConflictError, InputError, NotFoundError
from karte.services import copies
from karte.services.copies import CopyRequest
from karte.services.sheets import district_sheet_pdf, print_sheets
from karte.store import GeoPackageStore

USER = "sato.test"
CSW = Access(USER, Level.COORDINATOR, route="cli:sheets")
STAFF = Access("staff.test", Level.CITY_STAFF, route="test")
MEMBER = Access("member.test", Level.DISTRICT_MEMBER, "S05", route="test")
COPY_TEXT = re.compile(r"複製番号 (K\d{6})")

pytestmark = pytest.mark.slow  # over the session's demo build


@pytest.fixture
def store(demo, tmp_path) -> GeoPackageStore:
    """A private copy of the demo store with an empty ledger (the ledger is written to it)."""
    return empty_ledger(GeoPackageStore(copy_store(demo[1] / "karte.gpkg", tmp_path / "karte.gpkg")))


def empty_ledger(store):
    """``store`` with no copies and no events: the session's demo is shared, and the web tests of
    other modules print personal sheets from it, which since issue 20 records copies in it. A test
    copy is emptied by the store's own whole-layer write (what a restore does; PostGIS would refuse)."""
    from karte.domain.copies import LAYERS as LEDGER

    kinds = {"text": object, "integer": "Int64", "float": float, "boolean": "boolean"}
    present = set(store.layers())
    empty = {spec.name: pd.DataFrame({c.name: pd.Series(dtype=kinds[c.kind]) for c in spec.columns})
             for spec in LEDGER if spec.name in present}
    if empty:
        store.write(empty)
    return store


def pages_of(pdf: Path | bytes) -> list[str]:
    args = ["pdftotext", "-layout", "-enc", "UTF-8", "-" if isinstance(pdf, bytes) else str(pdf), "-"]
    done = subprocess.run(args, input=pdf if isinstance(pdf, bytes) else None, capture_output=True,
                          check=True)
    return done.stdout.decode("utf-8").split("\f")[:-1]


def qr_codes(pdf: Path, folder: Path, dpi: int = 100) -> list[list[str]]:
    """The QR codes a reader finds on each page, rendered at ``dpi``."""
    import zxingcpp
    from PIL import Image

    prefix = folder / f"qr-{pdf.stem}"
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(pdf), str(prefix)], check=True)
    images = sorted(folder.glob(f"{prefix.name}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [[r.text for r in zxingcpp.read_barcodes(Image.open(p))] for p in images]


def shareable(store, code):
    reg = store.read("register", district=code)
    return reg[reg["consent"].isin(["consented", "ordinance"])], reg


def by_id(views) -> dict[str, copies.CopyView]:
    return {v.copy_id: v for v in views}


# --- every personal sheet and export is a numbered copy ------------------------------------------

def test_every_page_of_a_personal_sheet_carries_its_copy_number_as_text_and_qr(store, tmp_path):
    result = print_sheets(store, ["S01", "S05"], edition="drill", access=CSW, out=tmp_path / "out",
                          workers=1)
    assert set(result.copies) == {"S01", "S05"} and len(set(result.copies.values())) == 2
    ledger = by_id(copies.ledger(store, CSW))
    for code, copy_id in result.copies.items():
        row = ledger[copy_id].row
        assert (row["district_code"], row["kind"], row["made_by"]) == (code, "drill", USER)
        assert row["file"] == f"{code}-drill.pdf" and row["purpose"] == Purpose.DRILL
        ok, _ = shareable(store, code)
        assert row["persons"] == len(ok) and set(ledger[copy_id].person_ids) == set(ok["person_id"])
        pages = pages_of(result.files[code])
        assert len(pages) == result.pages[code]
        for page in pages:
            assert COPY_TEXT.findall(page) == [copy_id], page[-400:]
            assert f"名簿の版 {row['register_version']}" in page
        assert qr_codes(result.files[code], tmp_path) == [[copy_id]] * len(pages)
        fonts = subprocess.run(["pdffonts", str(result.files[code])], capture_output=True, text=True,
                               check=True).stdout.splitlines()[2:]
        assert fonts and all("IPAexGothic" in f and f.split()[-5:-3] == ["yes", "yes"] for f in fonts)
    # the merged bundle: the contents list both numbers, every district page (and blank back) its own
    merged = pages_of(result.merged)
    assert all(c in merged[0] for c in result.copies.values())
    marks = [COPY_TEXT.findall(p) for p in merged]
    toc = result.merged_pages - sum(n + n % 2 for n in result.pages.values())
    assert all(m == [] for m in marks[:toc])
    expected = [[result.copies[c]] for c in ("S01", "S05")
                for _ in range(result.pages[c] + result.pages[c] % 2)]
    assert marks[toc:] == expected


def test_web_sheets_and_personal_csvs_are_copies_held_by_who_made_them(store):
    before = len(store.audit_log())
    member = replace(MEMBER, route="web:sheet_pdf")
    data = district_sheet_pdf(store, "S05", edition="confidential", access=member)
    pages = pages_of(data)
    numbers = {n for page in pages for n in COPY_TEXT.findall(page)}
    assert len(numbers) == 1 and all(COPY_TEXT.search(page) for page in pages)
    csv_member = copies.record_export(store, replace(MEMBER, route="web:karte_csv"), kind="csv",
                                      district="S05", layer="register", rows=90)
    csv_staff = copies.record_export(store, replace(STAFF, route="web:karte_csv"), kind="csv",
                                     district="S05", layer="register", rows=127)
    roster = copies.record_export(store, STAFF, kind="csv", district="S05", layer="cooperators", rows=30)
    ledger = by_id(copies.ledger(store, STAFF, district="S05"))
    assert set(ledger) == {*numbers, csv_member, csv_staff, roster}
    ok, everyone = shareable(store, "S05")
    sheet = ledger[numbers.pop()]
    assert (sheet.kind, sheet.holder, sheet.holder_kind, sheet.state) == (
        CopyKind.CONFIDENTIAL, "member.test", HolderKind.OFFICE, State.MADE)
    assert sheet.row["made_via"] == "web:sheet_pdf"
    # what each CSV lists: its maker's view of the register (city staff: everyone)
    assert (ledger[csv_member].row["scope"], ledger[csv_member].row["persons"]) == (Scope.SHAREABLE, len(ok))
    assert (ledger[csv_staff].row["scope"], ledger[csv_staff].row["persons"]) == (Scope.ALL, len(everyone))
    assert split(ledger[csv_staff].row["basis"]) == [Basis.INTERNAL]
    assert split(ledger[csv_member].row["basis"]) == [Basis.CONSENT, Basis.ORDINANCE]
    assert ledger[roster].kind is CopyKind.CSV_COOPERATORS and ledger[roster].row["persons"] == 0
    # each copy is an append by its maker, in the access log (counts only)
    log = store.audit_log().iloc[before:]
    appends = log[(log["layer"] == COPIES) & (log["action"] == "append")]
    assert sorted(appends["actor"]) == ["member.test", "member.test", "staff.test", "staff.test"]
    assert set(appends["district"]) == {"S05"}


def split(text):
    return [v for v in str(text).split(";") if v]


def test_out_only_lists_exactly_the_copies_not_returned_or_destroyed(store, tmp_path):
    made = print_sheets(store, ["S01", "S02", "S03", "S04", "S05"], edition="confidential", access=CSW,
                        out=tmp_path, workers=1, merge=False).copies
    ids = [made[c] for c in ("S01", "S02", "S03", "S04", "S05")]
    copies.record_event(store, CSW, ids[0], Event.HANDED_OVER, person="民生委員 山田")
    copies.record_event(store, CSW, ids[1], Event.RETURNED, person="町会長")
    copies.record_event(store, CSW, ids[2], Event.DESTROYED, note="シュレッダー")
    copies.record_event(store, CSW, ids[3], Event.HANDED_OVER, person="地区社協")
    copies.record_event(store, CSW, ids[3], Event.RETURNED)
    copies.record_event(store, CSW, ids[3], Event.DESTROYED)
    out = copies.ledger(store, CSW, outstanding=True)
    assert {v.copy_id for v in out} == {ids[0], ids[4]}
    states = {v.copy_id: v.state for v in copies.ledger(store, CSW)}
    assert states == {ids[0]: State.OUT, ids[1]: State.RETURNED, ids[2]: State.DESTROYED,
                      ids[3]: State.DESTROYED, ids[4]: State.MADE}
    assert by_id(out)[ids[0]].holder == "民生委員 山田"


# --- register versions -----------------------------------------------------------------------------

def test_a_copy_of_an_older_register_version_is_flagged_after_the_register_changes(store, tmp_path):
    made = print_sheets(store, ["S05", "S06"], edition="confidential", access=CSW, out=tmp_path,
                        workers=1, merge=False).copies
    district_sheet_pdf(store, "S05", edition="confidential", access=CSW)
    staff_csv = copies.record_export(store, STAFF, kind="csv", district="S05", layer="register", rows=127)
    returned = next(v.copy_id for v in copies.ledger(store, CSW, district="S05")
                    if v.copy_id not in (made["S05"], staff_csv))
    copies.record_event(store, CSW, returned, Event.RETURNED)
    assert not any(v.superseded for v in copies.ledger(store, STAFF))

    # someone who did not consent moves: only what lists everyone (the staff's CSV) is out of date
    ok, everyone = shareable(store, "S05")
    hidden = everyone[~everyone["person_id"].isin(ok["person_id"])].iloc[0]
    row = store.read_row("register", hidden["person_id"], access=STAFF)
    store.update_row("register", hidden["person_id"], {"address": row["address"] + "（転居）"},
                     version=row["version"], access=STAFF)
    flagged = {v.copy_id for v in copies.ledger(store, STAFF) if v.superseded}
    assert flagged == {staff_csv}

    # a listed person's supporter changes: every outstanding S05 copy is out of date, S06's is not
    person = ok.iloc[0]["person_id"]
    row = store.read_row("register", person, access=STAFF)
    store.update_row("register", person, {"plan_status": "done" if row["plan_status"] != "done" else "none"},
                     version=row["version"], access=STAFF)
    views = by_id(copies.ledger(store, STAFF))
    assert {c for c, v in views.items() if v.superseded} == {made["S05"], staff_csv}
    assert views[made["S06"]].superseded is False and views[made["S06"]].current_version == views[
        made["S06"]].row["register_version"]
    assert views[returned].superseded is False  # back in the office: nothing to replace
    assert views[made["S05"]].current_version != views[made["S05"]].row["register_version"]
    assert {v.copy_id for v in copies.ledger(store, STAFF, superseded=True)} == {made["S05"], staff_csv}


def test_the_version_is_a_digest_of_the_rows_whatever_their_dtypes():
    import geopandas as gpd
    import shapely

    frame = gpd.GeoDataFrame({"person_id": ["P2", "P1"], "name": ["乙", "甲"], "infant": [False, True],
                              "capacity": [2, 3], "consent": ["consented", "ordinance"]},
                             geometry=[shapely.Point(1.004, 2), None], crs="EPSG:6678")
    same = frame.assign(infant=frame["infant"].astype(object), capacity=frame["capacity"].astype(float))
    assert copies.digest({"register": frame}) == copies.digest({"register": same.iloc[::-1]})
    assert len(copies.digest({"register": frame})) == 8
    for changed in (frame.assign(name=["乙", "丙"]), frame.iloc[:1],
                    frame.set_geometry([shapely.Point(1.1, 2), None])):
        assert copies.digest({"register": changed}) != copies.digest({"register": frame})


# --- events -------------------------------------------------------------------------------------

def test_events_follow_the_copy_and_refuse_what_cannot_happen(store, tmp_path):
    copy_id = print_sheets(store, ["S05"], edition="confidential", access=CSW, out=tmp_path,
                           copy=CopyRequest(holder_kind="council", holder_name="S05地区社協",
                                            due_back=dt.date.today() + dt.timedelta(days=20))).copies["S05"]
    view = copies.copy_view(store, CSW, copy_id)
    assert (view.state, view.holder, view.holder_kind, view.overdue) == (State.MADE, "S05地区社協", "council",
                                                                         False)
    with pytest.raises(InputError, match="封印名簿"):
        copies.record_event(store, CSW, copy_id, Event.OPENED)
    with pytest.raises(InputError):
        copies.record_event(store, CSW, copy_id, Event.VOIDED)  # the program's, not a person's
    view = copies.record_event(store, CSW, f" k{copy_id[1:]} ", "handed_over", person="会長 木村",
                               holder_kind="council", due_back=dt.date.today() + dt.timedelta(days=3))
    assert (view.state, view.holder, view.due_back) == (
        State.OUT, "会長 木村", (dt.date.today() + dt.timedelta(days=3)).isoformat())
    later = dt.date.today() + dt.timedelta(days=10)
    assert copies.copy_view(store, CSW, copy_id, today=later).overdue  # the new due date counts
    assert [v.copy_id for v in copies.ledger(store, CSW, overdue=True, today=later)] == [copy_id]
    assert copies.ledger(store, CSW, overdue=True) == []
    view = copies.record_event(store, CSW, copy_id, Event.RETURNED, person="会長 木村")
    assert view.state is State.RETURNED and not view.overdue
    with pytest.raises(ConflictError, match="回収済み"):
        copies.record_event(store, CSW, copy_id, Event.RETURNED)
    with pytest.raises(ConflictError):
        copies.record_event(store, CSW, copy_id, Event.HANDED_OVER, person="x")
    view = copies.record_event(store, CSW, copy_id, Event.DESTROYED, note="溶解")
    assert view.state is State.DESTROYED
    assert [e["event"] for e in view.events] == ["handed_over", "returned", "destroyed"]
    with pytest.raises(NotFoundError):
        copies.record_event(store, CSW, "K999999", Event.RETURNED)
    with pytest.raises(InputError, match="K と数字6桁"):
        copies.record_event(store, CSW, "P000001", Event.RETURNED)
    assert copies.normalise_id("https://karte.example/copies/K000012/") == "K000012"
    assert copies.normalise_id("Ｋ０００　０１２") == "K000012"


def test_the_ledger_is_append_only(store, tmp_path):
    copy_id = print_sheets(store, ["S05"], edition="drill", access=CSW, out=tmp_path).copies["S05"]
    copies.record_event(store, CSW, copy_id, Event.RETURNED)
    row = store.read_row(COPIES, copy_id, access=STAFF)
    with pytest.raises(AccessDenied):
        store.update_row(COPIES, copy_id, {"holder_name": "改ざん"}, version=row["version"], access=STAFF)
    event = store.read_records(EVENTS, access=STAFF)[0]
    with pytest.raises(AccessDenied):
        store.update_row(EVENTS, event["event_id"], {"event": "handed_over"}, version=1, access=STAFF)
    assert copies.copy_view(store, CSW, copy_id).state is State.RETURNED


def test_a_failed_drawing_leaves_its_copy_void(store, monkeypatch):
    from karte.services import sheets

    def broken(sheet):
        raise RuntimeError("printer on fire")

    monkeypatch.setattr(sheets, "render_sheet", broken)
    with pytest.raises(RuntimeError):
        district_sheet_pdf(store, "S05", edition="confidential", access=CSW)
    views = copies.ledger(store, CSW)
    assert len(views) == 1 and views[0].state is State.VOID
    assert copies.ledger(store, CSW, outstanding=True) == []
    with pytest.raises(ConflictError):
        copies.record_event(store, CSW, views[0].copy_id, Event.HANDED_OVER, person="x")


# --- who sees what ------------------------------------------------------------------------------

def test_the_ledger_is_personal_data_with_the_levels_of_the_register(store, tmp_path):
    district_sheet_pdf(store, "S05", edition="drill", access=MEMBER)
    other = print_sheets(store, ["S06"], edition="drill", access=CSW, out=tmp_path).copies["S06"]
    assert [v.row["district_code"] for v in copies.ledger(store, MEMBER)] == ["S05"]
    assert {v.row["district_code"] for v in copies.ledger(store, CSW)} == {"S05", "S06"}
    with pytest.raises(AccessDenied):
        copies.ledger(store, MEMBER, district="S06")
    with pytest.raises(NotFoundError):
        copies.record_event(store, MEMBER, other, Event.RETURNED)
    for nobody in (PUBLIC, Access("pref", Level.PREFECTURE)):
        with pytest.raises(AccessDenied):
            copies.ledger(store, nobody)
    other_city = Access("csw2", Level.COORDINATOR, municipality="02202")
    assert copies.ledger(store, other_city) == []
    with pytest.raises(AccessDenied, match="市職員"):
        copies.sealed_list(store, CSW, "E0220100157121")
    copies.record_event(store, CSW, other, Event.HANDED_OVER, person="町会")
    # reads of the ledger are logged with the reader, counts only
    before = len(store.audit_log())
    copies.ledger(store, replace(CSW, route="cli:copies"))
    log = store.audit_log().iloc[before:]
    assert set(log["layer"]) == {COPIES, EVENTS} and set(log["actor"]) == {USER}
    assert set(log["route"]) == {"cli:copies"} and set(log["action"]) == {"read"}


def test_public_counts_show_no_holder_and_no_person(store, tmp_path):
    print_sheets(store, ["S05", "S06"], edition="drill", access=CSW, out=tmp_path, workers=1)
    counts = {r["district_code"]: r for r in copies.ledger_counts(store)}
    assert set(counts) == {"S05", "S06"}
    assert counts["S05"] == {"municipality_code": "02201", "district_code": "S05", "made": 1,
                             "outstanding": 1, "overdue": 0, "superseded": 0}


# --- requests --------------------------------------------------------------------------------------

def test_what_the_maker_says_is_checked_and_completed():
    today = dt.date(2026, 12, 1)
    shareable_listing = copies.listing_of(CopyKind.CONFIDENTIAL, district="S05", municipality="02201",
                                          level=Level.COORDINATOR)
    done = copies.complete(CopyRequest(), CopyKind.CONFIDENTIAL, shareable_listing, CSW,
                           consents=["consented", "consented"], today=today)
    assert (done.holder_kind, done.holder_name, done.purpose, done.basis, done.due_back) == (
        "office", USER, "normal", ("consent",), dt.date(2027, 3, 31))
    drill = copies.complete(CopyRequest(holder_kind="cooperator", holder_name="山田"), CopyKind.DRILL,
                            shareable_listing, CSW, consents=["ordinance"], today=today)
    assert (drill.purpose, drill.basis, drill.due_back) == ("drill", ("ordinance",), dt.date(2026, 12, 15))
    spring = copies.complete(CopyRequest(), CopyKind.CONFIDENTIAL, shareable_listing, CSW,
                             today=dt.date(2027, 4, 1))
    assert spring.due_back == dt.date(2028, 3, 31)
    everyone = copies.listing_of(CopyKind.CSV_REGISTER, district="S05", municipality="02201",
                                 level=Level.CITY_STAFF)
    assert everyone.scope is Scope.ALL
    bad = [
        (CopyRequest(purpose="normal", basis=("disaster",)), shareable_listing, "目的が災害時"),
        (CopyRequest(basis=("consent",)), everyone, "同意のない方を含む"),
        (CopyRequest(due_back=dt.date(2026, 11, 30)), shareable_listing, "過ぎています"),
        (CopyRequest(purpose="holiday"), shareable_listing, "目的は"),
        (CopyRequest(holder_kind="friend"), shareable_listing, "提供先の種類"),
        (CopyRequest(holder_kind="cooperator"), shareable_listing, "提供先（受け取る人"),
        (CopyRequest(holder_name="x" * 201), shareable_listing, "長すぎます"),
        (CopyRequest(basis=("goodwill",)), shareable_listing, "根拠は"),
    ]
    for request, listing, message in bad:
        with pytest.raises(InputError, match=re.escape(message)):
            copies.complete(request, CopyKind.CONFIDENTIAL, listing, CSW, today=today)
    disaster = copies.complete(CopyRequest(purpose="disaster"), CopyKind.CONFIDENTIAL, shareable_listing, CSW,
                               today=today)
    assert disaster.basis == ("disaster",) and disaster.due_back == dt.date(2026, 12, 31)


# --- sealed shelter lists ----------------------------------------------------------------------

def test_a_sealed_shelter_list_lists_everyone_and_records_its_opening(store, tmp_path):
    register = store.read("register")
    counts = register.groupby("shelter_id")["consent"].agg(
        lambda c: (~c.isin(["consented", "ordinance"])).sum())
    shelter = counts[counts >= 3].index[0]
    people = register[register["shelter_id"] == shelter]
    copy, data = copies.sealed_list(store, STAFF, shelter)
    pdf = tmp_path / "sealed.pdf"
    pdf.write_bytes(data)
    pages = pages_of(pdf)
    text = re.sub(r"\s+", "", "".join(pages))
    for p in people.itertuples():  # everyone, consented or not, by id and name
        assert p.person_id in text and re.sub(r"\s+", "", p.name) in text
    others = register[(register["shelter_id"] != shelter) & ~register["person_id"].isin(people["person_id"])]
    assert not [pid for pid in others["person_id"] if re.search(rf"{pid}(?!\d)", text)]
    assert all(set(COPY_TEXT.findall(page)) == {copy["copy_id"]} for page in pages)
    assert qr_codes(pdf, tmp_path) == [[copy["copy_id"]]] * len(pages)
    assert "災害時のみ開封" in pages[0] and "開封の記録" in pages[0]
    view = copies.copy_view(store, CSW, copy["copy_id"])  # the coordinators see it in the ledger
    assert (view.kind, view.row["purpose"], view.row["basis"], view.row["scope"]) == (
        CopyKind.SEALED, "disaster", "disaster", "all")
    assert view.holder_kind == "shelter" and view.row["persons"] == len(people)
    assert view.row["district_code"] == next(s["district_code"] for s in copies.shelters(store)
                                             if s["shelter_id"] == shelter)
    opened = copies.record_event(store, CSW, copy["copy_id"], Event.OPENED, person="避難所長",
                                 note="大雨特別警報")
    assert opened.state is State.OPENED and opened.state.outstanding
    assert opened.events[-1]["note"] == "大雨特別警報"
    assert copies.record_event(store, CSW, copy["copy_id"], Event.RETURNED).state is State.RETURNED
    with pytest.raises(NotFoundError):
        copies.sealed_list(store, STAFF, "E000")


# --- the yearly report -----------------------------------------------------------------------------

def test_the_yearly_report_lists_the_years_copies_and_what_became_of_them(store, tmp_path):
    made = print_sheets(store, ["S05"], edition="confidential", access=CSW, out=tmp_path).copies["S05"]
    gone = copies.record_export(store, CSW, kind="csv", district="S05", layer="register", rows=90)
    copies.record_event(store, CSW, made, Event.HANDED_OVER, person="民生委員 山田")
    copies.record_event(store, CSW, gone, Event.DESTROYED, person="佐藤", note="ファイル削除")
    this_year = copies.fiscal_year_of(copies.today_jst())
    text = "".join(pages_of(copies.yearly_report(store, CSW, "S05", this_year)))
    assert "名簿の配布記録" in text and f"{this_year}年度" in text and "取扱注意" in text
    assert made in text and gone in text and "民生委員 山田" in text and "廃棄" in text
    assert re.search(r"この年度に作成した複製\s+2\s*部", text)
    assert re.search(r"未回収（配布中・未配布）\s+1\s*部", text)
    # the next year: the copy still out is carried over, the destroyed one is not listed
    later = dt.date(this_year + 1, 6, 1)
    text = "".join(pages_of(copies.yearly_report(store, CSW, "S05", this_year + 1, today=later)))
    assert made in text and gone not in text
    assert re.search(r"前年度から未回収で引き継いだ複製\s+1\s*部", text)
    assert re.search(r"返却期限を過ぎたもの\s+1\s*部", text)  # due at the end of the year it was made
    with pytest.raises(AccessDenied):
        copies.yearly_report(store, MEMBER, "S05", this_year)
    with pytest.raises(NotFoundError):
        copies.yearly_report(store, CSW, "S99", this_year)


# --- paper drill marks back into data ------------------------------------------------------------

class FakeDrills:
    """Stands in for the drill records of issue 19: one drill running in S05."""

    def __init__(self):
        self.written: list = []

    def open_drills(self, store, access, district):
        return [{"drill_id": "DR1", "name": "安否確認訓練", "started_at": "2026-12-01T00:00:00+00:00"}] \
            if district == "S05" else []

    def record_paper_marks(self, store, access, drill_id, marks):
        self.written.append((drill_id, access.user, list(marks)))
        return len(marks)


def test_drill_sheet_tick_boxes_carry_the_persons_id_and_paper_marks_reach_the_drill(store, tmp_path):
    copy_id = print_sheets(store, ["S05"], edition="drill", access=CSW, out=tmp_path).copies["S05"]
    pdf = tmp_path / "S05-drill.pdf"
    ok, _ = shareable(store, "S05")
    lists = "\n".join(pages_of(pdf)[3:])  # the by-supporter and by-shelter pages
    for p in ok.itertuples():  # each row: the box's person id beside the name
        assert len(re.findall(rf"{p.person_id}\s+{re.escape(p.name.split()[0])}", lists)) >= 2, p.person_id
    _, people = copies.copy_people(store, MEMBER, copy_id)
    assert sorted(p["person_id"] for p in people) == sorted(ok["person_id"])
    drills = FakeDrills()
    when = dt.datetime.now(copies.JST).replace(second=0, microsecond=0)
    first, second = people[0]["person_id"], people[1]["person_id"]
    ticks = {first: {"confirmed", "arrived"}, second: ["confirmed"]}
    marks = copies.enter_paper_marks(store, MEMBER, copy_id, ticks, drill_id="DR1", drills=drills,
                                     marked_at=when)
    assert [(m.person_id, m.tick) for m in marks] == sorted([(first, "arrived"), (first, "confirmed"),
                                                            (second, "confirmed")])
    assert drills.written == [("DR1", "member.test", marks)]
    assert {m.marked_at for m in marks} == {when.astimezone(dt.UTC).isoformat(timespec="seconds")}
    assert {(m.copy_id, m.district_code, m.entered_by) for m in marks} == {(copy_id, "S05", "member.test")}
    events = copies.copy_view(store, CSW, copy_id).events
    assert [(e["event"], e["note"]) for e in events] == [("marked", "訓練 DR1 に 3 件")]
    # what does not fit is refused, and nothing reaches the drill
    others = store.read("register")
    stranger = others[others["district_code"] != "S05"].iloc[0]["person_id"]
    for ticks, drill, error in (({stranger: ["confirmed"]}, "DR1", InputError),
                                ({first: ["waved"]}, "DR1", InputError),
                                ({}, "DR1", InputError),
                                ({first: ["confirmed"]}, "DR9", NotFoundError)):
        with pytest.raises(error):
            copies.enter_paper_marks(store, MEMBER, copy_id, ticks, drill_id=drill, drills=drills)
    with pytest.raises(InputError, match="未来"):
        copies.paper_marks(store, MEMBER, copy_id, {first: ["confirmed"]},
                           marked_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    confidential = district_sheet_pdf(store, "S05", edition="confidential", access=MEMBER)
    other_id = COPY_TEXT.search(pages_of(confidential)[0]).group(1)
    with pytest.raises(InputError, match="訓練用"):
        copies.copy_people(store, MEMBER, other_id)
    assert len(drills.written) == 1


def test_ledger_views_never_carry_the_listed_ids_out(store, tmp_path):
    print_sheets(store, ["S05"], edition="drill", access=CSW, out=tmp_path)
    view = copies.ledger(store, CSW)[0]
    assert view.person_ids and "person_ids" not in view.row and "person_ids" not in view.as_dict()
    assert not re.search(r"P\d{6}", str(view.as_dict()))
    assert isinstance(pd.Timestamp(view.row["made_at"]), pd.Timestamp)


# --- the command line ---------------------------------------------------------------------------

def run_cli(*args: str):
    from typer.testing import CliRunner

    from karte.cli import app

    return CliRunner().invoke(app, list(args))


def test_the_commands_of_the_ledger(store, tmp_path):
    at = ["--store", str(store.path), "--user", USER]
    r = run_cli("sheets", "S05", "S06", "--edition", "confidential", "--out", str(tmp_path / "sheets"),
                "--for", "S05地区社協", "--holder-kind", "council", "--due", "2099-03-31", *at)
    assert r.exit_code == 0, r.output
    ledger = by_id(copies.ledger(store, CSW))
    assert f"複製番号: {min(ledger)}〜{max(ledger)}（2 部）" in r.output
    assert {(v.holder, v.holder_kind, v.due_back) for v in ledger.values()} == {
        ("S05地区社協", "council", "2099-03-31")}
    s05 = next(c for c, v in ledger.items() if v.row["district_code"] == "S05")
    s06 = next(c for c, v in ledger.items() if v.row["district_code"] == "S06")
    r = run_cli("copies", "hand", s05, "--to", "民生委員 山田", "--holder-kind", "cooperator", *at)
    assert r.exit_code == 0, r.output
    r = run_cli("copies", "return", s06, "--by", "会長", *at)
    assert r.exit_code == 0 and f"複製 {s06}: 回収を記録しました" in r.output
    r = run_cli("copies", "--out-only", "--json", *at)
    assert r.exit_code == 0, r.output
    listed = json.loads(r.stdout)
    assert [c["copy_id"] for c in listed] == [s05] and listed[0]["holder"] == "民生委員 山田"
    assert "person_ids" not in listed[0]
    r = run_cli("copies", "--district", "S06", *at)
    assert r.exit_code == 0 and s06 in r.output and "回収済み" in r.output and s05 not in r.output
    assert run_cli("copies", "--overdue", "--json", *at).stdout.strip() == "[]"
    r = run_cli("copies", "return", s06, *at)
    assert r.exit_code == 1 and "回収済み" in r.stderr
    assert run_cli("copies", "destroy", s06, "--note", "シュレッダー", *at).exit_code == 0
    r = run_cli("copies", "report", "S05", "--year", str(copies.fiscal_year_of(copies.today_jst())),
                "--out", str(tmp_path / "reports"), *at)
    assert r.exit_code == 0, r.output
    report = next((tmp_path / "reports").glob("copies-S05-*.pdf"))
    assert report.stat().st_mode & 0o077 == 0 and s05 in "".join(pages_of(report))
    r = run_cli("copies", "sealed", "E0220100157121", "--out", str(tmp_path / "sealed"), *at)
    assert r.exit_code == 0, r.output
    sealed = next((tmp_path / "sealed").glob("sealed-E0220100157121-K*.pdf"))
    assert sealed.stat().st_mode & 0o077 == 0
    r = run_cli("copies", "open", sealed.stem.rsplit("-", 1)[1], "--by", "避難所長", "--note", "大雨", *at)
    assert r.exit_code == 0 and "開封" in r.output
    for bad in (["copies", "return", "X1", *at], ["copies", "report", "S99", "--year", "2026", *at],
                ["copies", "hand", s05, "--due", "31.3.2099", *at]):
        r = run_cli(*bad)
        assert r.exit_code == 1 and "エラー" in r.stderr, bad


def test_a_paper_mark_appears_in_its_drills_status(store, tmp_path):
    """With the drill records of issue 19 (``karte.services.drills`` offers ``open_drills`` and
    ``record_paper_marks``, the :class:`karte.services.copies.DrillRecords` calls): a tick entered
    from a paper drill copy is in that drill's status, 確認 as 無事を確認 and 到着 as 避難済み, once
    however often the same paper is entered."""
    from karte.services import drills

    drill = drills.start_drill(store, CSW, ["S05"], name="安否確認訓練（紙）")
    copy_id = print_sheets(store, ["S05"], edition="drill", access=CSW, out=tmp_path).copies["S05"]
    _, people = copies.copy_people(store, MEMBER, copy_id)
    ticks = {people[0]["person_id"]: ["confirmed"], people[1]["person_id"]: ["arrived"]}
    for _ in range(2):  # the same paper entered twice
        copies.enter_paper_marks(store, MEMBER, copy_id, ticks, drill_id=drill["drill_id"], drills=drills)
    status = drills.status(store, CSW, drill["drill_id"], district="S05")
    counts = {c["key"]: c["count"] for c in status["counts"]}
    assert (counts["safe"], counts["evacuated"], status["confirmed"]) == (1, 1, 2)
    assert status["total"] == len(people)
    assert {p["person_id"] for p in status["not_reached"]} == {p["person_id"] for p in people[2:]}
