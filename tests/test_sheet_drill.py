"""Drill and confidential sheets on real-looking data (issue #15 items 5 and 6): risk order keyed
to the map, same names told apart, contacts, every shelter lettered, nothing below 7 pt, a memo
column to write in, the unconsented counted; and every edition renders for districts with no
support-needers, entries without address or location, empty rosters and services, no shelter."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from conftest import copy_store
from test_sheets import pages_of, squash, text_of

from gis.risk import risk_keys, risk_order
from karte.cli.common import cli_access
from karte.domain.schema import Consent
from karte.render.pdf_layout import LEFT, MIN_PT, RIGHT
from karte.render.sheet_pages import BY_SHELTER_COLUMNS, BY_SUPPORTER_COLUMNS, MEMO_MIN_PT, REGISTER_COLUMNS
from karte.services.sheets import print_sheets
from karte.store import GeoPackageStore

USER = "drill.test"
EDITIONS = ("public", "confidential", "drill")


def access():
    return cli_access("cli:sheets", user=USER)


def font_sizes(pdf: Path) -> list[float]:
    """Every font size set in the PDF's content streams (``/F1 9 Tf``), A4: no page scaling."""
    from pypdf import PdfReader

    sizes = []
    for page in PdfReader(pdf).pages:
        data = page.get_contents().get_data()
        sizes += [float(s) for s in re.findall(rb"/F[\w+]+\s+([\d.]+)\s+Tf", data)]
    return sizes


# --- the risk order (pure) -------------------------------------------------------------------------

def test_risk_order_puts_life_devices_bedridden_and_unassigned_first():
    reg = pd.DataFrame({
        "person_id": ["P1", "P2", "P3", "P4", "P5", "P6", "P7"],
        "medical_devices": [None, "人工呼吸器", "たん吸引", "人工呼吸器", "在宅酸素", None,
                            "在宅酸素・たん吸引"],
        "mobility": ["independent", "walk_with_help", "bedridden", "walk_with_help", "bedridden", "bedridden",
                     "independent"],
        "supporter_ids": ["C1", "C1", None, None, None, "", "C2"],
        "care_level": ["要介護5", None, "要介護3", "要介護1", None, "要介護4", None],
    })
    order = list(risk_order(reg)["person_id"])
    # たん吸引 + 寝たきり first; then the ventilators (the one nobody goes to first), then the
    # multi-device row (its most urgent device counts), then oxygen, then bedridden, then the rest
    assert order == ["P3", "P4", "P2", "P7", "P5", "P6", "P1"]
    keys = risk_keys(reg)
    assert keys.loc[6, "device"] == 3 and keys.loc[5, "no_supporter"] == 1
    assert keys.loc[0, "no_supporter"] == 0


def test_risk_order_of_an_empty_register_is_empty():
    assert risk_order(pd.DataFrame(columns=["person_id", "mobility"])).empty


# --- layout constants ------------------------------------------------------------------------------

def test_drill_tables_fit_the_page_and_leave_a_memo_column_of_30_mm():
    for columns in (BY_SUPPORTER_COLUMNS, BY_SHELTER_COLUMNS, REGISTER_COLUMNS):
        assert sum(c.width for c in columns) <= RIGHT - LEFT + 0.5
    for columns in (BY_SUPPORTER_COLUMNS, BY_SHELTER_COLUMNS):
        memo = [c for c in columns if c.title == "メモ"]
        assert memo and memo[0].width >= MEMO_MIN_PT >= 85


# --- the demo's S01 --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def store(demo, tmp_path_factory) -> GeoPackageStore:
    path = tmp_path_factory.mktemp("drillstore") / "karte.gpkg"
    return GeoPackageStore(copy_store(demo[1] / "karte.gpkg", path))


@pytest.fixture(scope="module")
def sheets(store, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("drillsheets")
    files = {}
    for edition in EDITIONS:
        result = print_sheets(store, ["S01"], edition=edition, access=access(), out=out, workers=1,
                              merge=False)
        files[edition] = result.files["S01"]
    return files


def test_nothing_on_any_edition_is_below_7_pt(sheets):
    for edition, pdf in sheets.items():
        sizes = font_sizes(pdf)
        assert sizes, edition
        assert min(sizes) >= MIN_PT - 1e-6, (edition, sorted(sizes)[:5])


def _shareable(store, code):
    reg = store.read("register", district=code)
    return reg[reg["consent"].map(lambda c: Consent(c).shareable)], reg


def _numbers(text: str) -> list[tuple[int, str]]:
    return [(int(n), pid) for pid, n in re.findall(r"(P\d{6})\s+No\.(\d+)", text)]


def test_people_are_numbered_in_risk_order_with_the_unassigned_first(store, sheets):
    ok, _ = _shareable(store, "S01")
    pages = pages_of(sheets["drill"])
    by_supporter = "\n".join(p for p in pages if "支援者別" in p)
    found = _numbers(by_supporter)
    # the numbers are a permutation of 1..n and the same person keeps the same number everywhere
    number_of = dict((pid, n) for n, pid in found)
    assert sorted(number_of.values()) == list(range(1, len(ok) + 1))
    assert set(number_of) == set(ok["person_id"])
    by_shelter = "\n".join(p for p in pages if "避難先別" in p)
    assert all(number_of[pid] == n for n, pid in _numbers(by_shelter))
    # No. 1 .. n follow the risk keys: never a less urgent person before a more urgent one
    keys = risk_keys(ok.set_index("person_id", drop=False))
    ranked = sorted(number_of, key=number_of.get)
    factors = ("device", "mobility", "no_supporter", "care")
    rows = [tuple(-keys.loc[pid, k] for k in factors) for pid in ranked]
    assert rows == sorted(rows)
    assert number_of[ranked[0]] == 1 and keys.loc[ranked[0], "device"] == 3  # a life-sustaining device
    # the first group printed is the people nobody is assigned to, most urgent first
    first_group = by_supporter.split("■ 支援者が決まっていない方", 1)[1].split("■", 1)[0]
    unassigned = [pid for _, pid in _numbers(first_group)]
    assert unassigned and unassigned == sorted(unassigned, key=number_of.get)
    nobody = ok["supporter_ids"].isna() | (ok["supporter_ids"] == "")
    assert set(unassigned) <= set(ok.loc[nobody, "person_id"])


def test_the_map_numbers_the_people_of_the_personal_editions(sheets):
    from karte.render.sheet_map import PERSON  # noqa: F401  (the colour exists)

    one = {edition: text_of(pdf).split("\f")[0] for edition, pdf in sheets.items()}
    assert "数字は名簿の No." in one["drill"] and "数字は名簿の No." in one["confidential"]
    assert "数字は名簿の No." not in one["public"]  # no person on the public map


def test_same_names_are_told_apart_by_age_and_town(store, sheets):
    ok, _ = _shareable(store, "S01")
    twins = ok[ok.duplicated("name", keep=False)]
    assert len(twins) >= 2  # the demo has them (佐藤 一郎 ×2, 工藤 武 ×2 in the data)
    flat = squash(text_of(sheets["drill"]))
    for p in twins.itertuples():
        born = pd.Timestamp(p.birth_date)
        assert re.search(re.escape(squash(p.name)) + r"（\d+歳）", flat), p.name
        town = p.address.removeprefix("青森県青森市").split("大字")[-1].split("字")[0]
        town = re.sub(r"[0-9].*$", "", town)
        assert squash(p.kana) + "・" + town in flat, (p.name, town)
        assert born.year > 1900
    # a name that nobody else on the sheet has gets no age
    single = ok[~ok.duplicated("name", keep=False)].iloc[0]
    assert not re.search(re.escape(squash(single["name"])) + r"（\d+歳）", flat)


def test_supporters_sharing_a_name_get_their_id(store, sheets):
    coop = store.read("cooperators", district="S01")
    same = coop[coop.duplicated("name", keep=False)]
    assert len(same) >= 2
    flat = squash(text_of(sheets["confidential"]))
    for c in same.itertuples():
        assert f"{squash(c.name)}（{c.cooperator_id}）" in flat


def test_unconsented_people_are_counted_not_listed(store, sheets):
    ok, reg = _shareable(store, "S01")
    missing = len(reg) - len(ok)
    assert missing > 0
    for edition in ("confidential", "drill"):
        text = squash(text_of(sheets[edition]))
        assert f"同意のない{missing}人は載せていません" in text, edition
        for p in reg[~reg["person_id"].isin(ok["person_id"])].itertuples():
            assert squash(p.kana) not in text or p.kana in set(ok["kana"])
    # a supporter whose 担当 counts people not on this sheet says how many and why
    everyone = store.read("register")
    counts: dict[str, int] = {}
    for ids, consent in zip(everyone["supporter_ids"], everyone["consent"], strict=True):
        for sid in str(ids or "").split(";"):
            if sid and sid != "nan" and not Consent(consent).shareable:
                counts[sid] = counts.get(sid, 0) + 1
    lines = text_of(sheets["drill"], layout=True).splitlines()
    groups = [line.strip() for line in lines if line.strip().startswith("■ ") and "担当" in line
              and "決まっていない" not in line]
    coop = store.read("cooperators").set_index("cooperator_id")
    checked = 0
    for line in groups:
        sid = next(c for c in coop.index if coop.loc[c, "phone"] in line)
        if counts.get(sid):
            assert f"同意のない方 {counts[sid]} 人" in line, line
            checked += 1
        else:
            assert "同意のない方" not in line, line
    assert checked


def test_every_shelter_used_has_a_letter(store, sheets):
    ok, _ = _shareable(store, "S01")
    pages = pages_of(sheets["drill"])
    by_shelter = "\n".join(p for p in pages if "避難先別" in p)
    groups = re.findall(r"^■ (.+)$", by_shelter, flags=re.M)
    named = [g for g in groups if "決まっていない" not in g]
    assert named and all(re.match(r"[A-Z]+ ", g) for g in named), named
    shelters = store.read("shelters").set_index("shelter_id")
    used = {s for s in ok["shelter_id"].dropna() if s in shelters.index}
    assert len(named) == len(used)
    # every shelter used is in the shelter table (page 2 and what it carries over to) with its
    # letter; those outside the district are marked 地区外
    table = text_of(sheets["drill"], layout=True).split("共助協力者名簿（連絡先）")[0]
    assert {s for s in used if shelters.loc[s, "name"] in table} == used
    letters = {g.split(" ", 1)[0] for g in named}
    assert all(re.search(rf"^\s*{letter}\s+\S", table, flags=re.M) for letter in letters)
    outside = re.search(r"名簿の避難先で地区外 (\d+) か所", table)
    assert outside and table.count("地区外") >= int(outside.group(1)) + 1


def test_emergency_contact_is_printed_and_a_dash_when_absent(store, tmp_path):
    st = GeoPackageStore(copy_store(store.path, tmp_path / "karte.gpkg"))
    reg = st.read("register")
    ok = reg[(reg["district_code"] == "S02") & reg["consent"].map(lambda c: Consent(c).shareable)]
    target = ok.index[0]
    reg["emergency_contact"] = None
    reg.loc[target, "emergency_contact"] = "青森 花子（長女）017-000-9999"
    st.write({"register": reg})
    result = print_sheets(st, ["S02"], edition="drill", access=access(), out=tmp_path, workers=1, merge=False)
    flat = squash(text_of(result.files["S02"]))
    assert "青森花子（長女）" in flat and "017-000-9999" in flat
    assert "緊急連絡先" in flat and "—" in flat


# --- robustness ------------------------------------------------------------------------------------

def _empty_square(districts: gpd.GeoDataFrame, register: gpd.GeoDataFrame, code: str, side: float = 300.0):
    """A square inside district ``code`` with no register entry in it."""
    import numpy as np

    area = districts[districts["district_code"] == code].geometry.union_all()
    minx, miny, maxx, maxy = area.bounds
    for x in np.arange(minx, maxx, side / 2):
        for y in np.arange(miny, maxy, side / 2):
            sq = shapely.box(x, y, x + side, y + side)
            if area.contains(sq) and not register.geometry.intersects(sq).any():
                return sq
    raise AssertionError("no empty square")


def _polygons_leaving_a_district_empty(st: GeoPackageStore, folder: Path) -> Path:
    """The store's districts as polygons, with a square of S01 that holds nobody cut out as S99."""
    districts, reg = st.read("districts"), st.read("register")
    square = _empty_square(districts, reg, "S01")
    polygons = gpd.GeoDataFrame(
        {"district_code": [*districts["district_code"], "S99"],
         "district_name": [*districts["district_name"], "（仮）空の地区"]},
        geometry=[g.difference(square) if c == "S01" else g
                  for c, g in zip(districts["district_code"], districts.geometry, strict=True)] + [square],
        crs=districts.crs)
    polygons.to_file(folder / "polygons.geojson", driver="GeoJSON")
    return folder / "polygons.geojson"


@pytest.fixture(scope="module")
def awkward(demo, tmp_path_factory):
    """The demo rebuilt on district polygons with an empty district (S99: nobody, no roster, no
    service, no shelter), plus an entry with coordinates but no address and one without a
    location, and a district whose roster and services are empty."""
    from karte.build import Inputs, rebuild
    from karte.settings import REPO_DATA

    folder = tmp_path_factory.mktemp("awkward")
    st = GeoPackageStore(copy_store(demo[1] / "karte.gpkg", folder / "karte.gpkg"))
    polygons = _polygons_leaving_a_district_empty(st, folder)
    reg = st.read("register")
    ok = reg["consent"].map(lambda c: Consent(c).shareable).to_numpy(dtype=bool)
    s02 = reg.index[(reg["district_code"] == "S02").to_numpy() & ok]
    reg.loc[s02[0], "address"] = None  # coordinates, no address
    reg.loc[s02[1], "geometry"] = None  # an address, no location
    reg.loc[s02[2], "address"] = None
    reg.loc[s02[2], "geometry"] = None
    coop, services = st.read("cooperators"), st.read("services")
    st.write({"register": reg, "cooperators": coop[coop["district_code"] != "S03"],
              "services": services[services["district_code"] != "S03"]})
    rebuild(st, Inputs.shipped(REPO_DATA, district_polygons=polygons), seed=2026)
    return st, folder


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_edition_renders_for_awkward_districts(awkward, edition, tmp_path):
    st, _ = awkward
    assert (st.read("register", district="S99")).empty
    assert st.read("cooperators", district="S03").empty and st.read("services", district="S03").empty
    result = print_sheets(st, ["S99", "S02", "S03"], edition=edition, access=access(), out=tmp_path,
                          workers=1, merge=True)
    assert set(result.files) == {"S99", "S02", "S03"} and result.merged is not None
    for code, pdf in result.files.items():
        assert min(font_sizes(pdf)) >= MIN_PT - 1e-6, code
    s99 = text_of(result.files["S99"])
    assert "空の地区" in s99
    assert "地区内に指定避難所はありません" in s99 and "登録された共助サービスはありません" in s99
    if edition != "public":
        assert "名簿の提供に同意した要支援者はいません" in s99
        assert "登録された共助協力者はいません" in text_of(result.files["S03"])
        s02 = squash(text_of(result.files["S02"]))
        assert "nan" not in s02.lower()
        reg = st.read("register", district="S02")
        unlocated = reg[reg.geometry.isna() | reg.geometry.is_empty]
        assert len(unlocated) >= 2
        for p in unlocated.itertuples():
            if Consent(p.consent).shareable:
                assert squash(p.kana) in s02  # listed even without a place on the map


def test_karte_build_with_district_polygons_leaving_a_district_empty(demo, tmp_path):
    """``karte build --district-polygons`` (no patch): the district with nobody gets a karte."""
    from typer.testing import CliRunner

    from karte.build import read_karte
    from karte.cli import app

    st = GeoPackageStore(copy_store(demo[1] / "karte.gpkg", tmp_path / "karte.gpkg"))
    polygons = _polygons_leaving_a_district_empty(st, tmp_path)
    result = CliRunner().invoke(app, ["build", "--store", str(st.path), "--district-polygons", str(polygons)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    karte = read_karte(st, "S99")
    assert karte["register"]["total"] == 0 and karte["register"]["shareable"] == 0
