"""Reading e-Stat's census downloads (issue 23): the fixture set in the real layouts, and the
all-errors report for malformed files."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from karte.census import estat, update
from karte.domain.errors import ValidationError

FIXTURES = Path(__file__).parent / "fixtures" / "estat2020"
CONCEALED, TARGET = "02201103005", "02201103002"


@pytest.fixture(scope="module")
def census():
    return update.read_downloads(FIXTURES, year=2020)


def test_the_fixture_set_reads_as_one_census(census):
    areas = census.areas.set_index("key_code")
    assert len(areas) == 565
    kinds = [f["kind"] for f in census.files]
    assert kinds == ["boundary", "population", "age", "elderly_alone"]
    assert {f["encoding"] for f in census.files} == {"CP932"}
    # the city row (HYOSYO 1) is the census's own total: the small areas add up to it
    assert census.city_rows["02201"] == (275_192, 118_961)
    assert int(areas["population"].sum()) == 275_192 and not census.unplaced
    # names as e-Stat writes them (full-width digits), exclaves dissolved into one area
    assert areas.loc["02201129001", "name"] == "はまなす１丁目"
    assert areas["parts"].max() > 1 and census.areas.crs == "EPSG:6678"


def test_a_concealed_area_is_counted_in_its_merge_target(census):
    areas = census.areas.set_index("key_code")
    assert areas.loc[CONCEALED, "concealed"] and areas.loc[CONCEALED, "merged_into"] == TARGET
    assert areas[["population", "households", "age_0_14", "elderly_alone"]].loc[CONCEALED].isna().all()
    assert not areas.loc[TARGET, "concealed"] and areas.loc[TARGET, "population"] > 0


def test_age_bands_are_real_and_follow_the_2020_layout(census):
    """65～74 is 65歳以上 minus 75歳以上 (the 2020 table has no 5-year columns above 74); the bands and
    年齢不詳 add up to the population."""
    areas = census.areas[~census.areas["concealed"]]
    bands = areas[["age_0_14", "age_15_64", "age_65_74", "age_75_plus"]].sum(axis=1)
    unknown = areas["population"] - bands
    assert (unknown >= 0).all() and int(unknown.sum()) < 0.01 * int(areas["population"].sum())
    assert int(census.areas["age_65_74"].sum()) == 41_325 and int(census.areas["age_75_plus"].sum()) == 48_136
    assert census.real_age and census.real_elderly


def test_the_unzipped_shapefile_with_a_cpg_reads_the_same(tmp_path, census):
    folder = tmp_path / "dl"
    folder.mkdir()
    with zipfile.ZipFile(FIXTURES / "A002005212020DDSWC02201.zip") as zf:
        zf.extractall(folder)
    (folder / "r2ka02201.cpg").write_text("CP932", encoding="ascii")
    for name in ("tblT001081C02.zip", "tblT001082C02.txt"):
        shutil.copy(FIXTURES / name, folder / name)
    again = update.read_downloads(folder, year=2020)
    assert again.areas["name"].tolist() == census.areas["name"].tolist()
    assert again.areas["population"].tolist() == census.areas["population"].tolist()
    assert not again.real_elderly   # no elderly table in this folder: synthetic, and said so


def _copy(tmp_path: Path) -> Path:
    folder = tmp_path / "dl"
    shutil.copytree(FIXTURES, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return folder


def _edit_table(path: Path, edits: dict[tuple[int, int], str], *, drop_cell: int | None = None) -> None:
    """Change cells (row, column) of a CP932 table, counted from 1 as a spreadsheet shows them."""
    lines = path.read_bytes().decode("cp932").split("\r\n")
    for (row, col), value in edits.items():
        cells = lines[row - 1].split(",")
        cells[col - 1] = value
        lines[row - 1] = ",".join(cells)
    if drop_cell is not None:
        lines[drop_cell - 1] = lines[drop_cell - 1].rsplit(",", 1)[0]
    path.write_bytes("\r\n".join(lines).encode("cp932"))


def test_a_malformed_file_is_refused_whole_with_file_row_and_column(tmp_path):
    folder = _copy(tmp_path)
    age = folder / "tblT001082C02.txt"
    _edit_table(age, {(10, 9): "abc", (12, 5): "7", (14, 6): "0220199"}, drop_cell=15)
    with pytest.raises(ValidationError) as info:
        update.read_downloads(folder, year=2020)
    found = {(p.file, p.row, p.column) for p in info.value.problems}
    assert ("tblT001082C02.txt", 10, "T001082002") in found       # not a count
    assert ("tblT001082C02.txt", 12, "HTKSYORI") in found          # not 0, 1 or 2
    assert ("tblT001082C02.txt", 14, "HTKSAKI") in found           # merge target not a small area
    assert ("tblT001082C02.txt", 15, None) in found                # a cell short
    text = info.value.format()
    assert "何も読み込んでいません" in text and "10行目" in text and "列「T001082002」" in text


def test_a_header_that_is_not_e_stat_s_is_named(tmp_path):
    folder = _copy(tmp_path)
    _edit_table(folder / "tblT001084C02.txt", {(1, 5): "HTK"})
    with pytest.raises(ValidationError) as info:
        update.read_downloads(folder, year=2020)
    (problem,) = info.value.problems
    assert (problem.file, problem.row, problem.column) == ("tblT001084C02.txt", 1, "HTKSYORI")


def test_tables_of_another_census_year_are_refused(tmp_path):
    with pytest.raises(ValidationError) as info:
        update.read_downloads(FIXTURES, year=2015)
    assert {p.file for p in info.value.problems} >= {"tblT001082C02.txt"}
    assert all("2020 年の表" in p.message_ja for p in info.value.problems)


def test_a_broken_boundary_attribute_is_reported_by_feature_and_attribute(tmp_path):
    import geopandas as gpd
    import pyogrio

    folder = tmp_path / "dl"
    folder.mkdir()
    with zipfile.ZipFile(FIXTURES / "A002005212020DDSWC02201.zip") as zf:
        zf.extractall(folder)
    shp = folder / "r2ka02201.shp"
    frame = pyogrio.read_dataframe(shp, encoding="CP932")
    frame.loc[4, "KEY_CODE"] = "0220100"            # not 9 or 11 digits
    frame.loc[7, "HCODE"] = 9999
    gpd.GeoDataFrame(frame).to_file(shp, driver="ESRI Shapefile", encoding="CP932")
    problems = []
    assert estat.read_boundary(shp, None, problems) is None
    assert {(p.row, p.column) for p in problems} == {(5, "KEY_CODE"), (8, "HCODE")}
