"""CSV downloads come back (issue #15, item 4): a district's register, roster or service list
downloaded from the web imports again with ``--district`` and changes nothing; ``--district``
leaves other districts alone, ``upsert`` deletes nothing, and a mass deletion (or a header-only
file) is refused without ``--allow-mass-delete``. On the GeoPackage store and on PostGIS."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import api_fixtures as fx
import pandas as pd
import pytest
import shapely
from api_fixtures import OWN

from karte import snapshot
from karte.cli.data import EXIT_ERROR, EXIT_OK, import_command
from karte.domain.schema import (
    CONSENT_JA,
    FREQUENCY_JA,
    HELP_JA,
    MOBILITY_JA,
    PLAN_STATUS_JA,
    ROLE_JA,
    SERVICE_JA,
)
from karte.importing import export
from karte.importing.api import ImportValidationError, import_file
from karte.importing.headers import FIELDS
from karte.importing.values import (
    parse_consent,
    parse_date,
    parse_frequency,
    parse_help_kinds,
    parse_mobility,
    parse_plan_status,
    parse_role,
    parse_service_kind,
)

pytest_plugins = ["pg_fixtures"]

OTHER_DISTRICT = "S06"


# --- helpers --------------------------------------------------------------------------------------

def download(web, role: str, table: str, code: str = OWN) -> bytes:
    r = web.client(role).get(f"/api/districts/{code}/tables/{table}.csv")
    assert r.status_code == 200, r.text
    return r.content


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(("\ufeff" + buf.getvalue()).encode("utf-8"))
    return path


def cli(store, kind: str, path: Path, capsys, **options) -> tuple[int, str]:
    code = import_command(kind, path, str(store.location), yes=True, **options)
    out = capsys.readouterr()
    return code, out.out + out.err


def frozen(store, layer: str) -> pd.DataFrame:
    """The layer's rows as comparable text (geometry as WKB hex), sorted by id."""
    frame = store.read(layer)
    key = frame.columns[0]
    geometry = frame.geometry.name
    out = frame.drop(columns=[geometry]).astype(object).where(frame.notna(), None).astype(str)
    out["wkb"] = [shapely.to_wkb(g, hex=True) if g is not None else "" for g in frame.geometry]
    return out.sort_values(key).reset_index(drop=True)


@pytest.fixture
def web(demo, tmp_path):
    """A private copy of the demo store (these tests write) served with a user of every role."""
    snapshot.clear()
    yield fx.make_api(fx.copy_demo(demo, tmp_path / "web"), tmp_path / "web")
    snapshot.clear()


# --- the round trip -------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "table"), [("coordinator", "register"), ("member", "register"),
                                             ("staff", "register"), ("member", "cooperators"),
                                             ("anonymous", "services")])
def test_a_downloaded_table_imports_back_with_district_and_changes_nothing(web, tmp_path, capsys, role,
                                                                            table):
    before = frozen(web.store, table)
    path = tmp_path / f"{OWN}-{table}.csv"
    path.write_bytes(download(web, role, table))
    header = rows_of(path.read_bytes())[0]
    assert set(header) <= {name for names in FIELDS[table].values() for name in names}
    assert {"緯度", "経度", "地区コード"} <= set(header)
    code, out = cli(web.store, table, path, capsys, district=OWN)
    assert code == EXIT_OK, out
    assert "変更はありません" in out and "削除" not in out.replace("削除しません", ""), out
    pd.testing.assert_frame_equal(frozen(web.store, table), before)


def test_register_download_uses_import_headers_labels_ids_and_coordinates(web):
    rows = rows_of(download(web, "staff", "register"))
    header, body = rows[0], rows[1:]
    store = web.store.read("register", district=OWN).set_index("person_id")
    assert len(body) == len(store) and header[0] == "名簿番号"
    col = {h: i for i, h in enumerate(header)}
    assert not {"consent_ja", "plan_ja", "supporters", "walk_with_help"} & set(header)
    labels = set(CONSENT_JA.values())
    assert {r[col["同意"]] for r in body} <= labels
    assert {r[col["移動"]] for r in body} <= set(MOBILITY_JA.values()) | {""}
    with_supporters = [r for r in body if r[col["支援者"]]]
    assert with_supporters
    for r in with_supporters:  # ids, not names
        assert r[col["支援者"]].split("、") == store.loc[r[0], "supporter_ids"].split(";")
    for r in body[:20]:
        assert float(r[col["緯度"]]) == pytest.approx(40.8, abs=0.4)
        assert parse_date(r[col["生年月日"]]).isoformat() == store.loc[r[0], "birth_date"]
        assert r[col["生年月日"]].startswith(("昭和", "平成", "令和", "大正"))
    assert any(r[col["緊急連絡先"]] for r in body), "the demo register has 緊急連絡先"
    assert all(c != "nan" for r in body for c in r)


def test_the_demo_register_has_fake_emergency_contacts(web):
    register = web.store.read("register")
    contacts = register["emergency_contact"].dropna()
    assert 0.7 < len(contacts) / len(register) < 0.95
    assert contacts.str.fullmatch(r"\S+ 0[789]0-0000-\d{4}").all()


def test_aggregate_tables_have_japanese_headers(web):
    base = rows_of(download(web, "anonymous", "base"))
    assert base[0] == list(export.AGGREGATE_HEADERS["base"].values())
    summary = rows_of(download(web, "anonymous", "register_summary"))
    assert summary[0] == list(export.AGGREGATE_HEADERS["summary"].values())
    assert all(h.isascii() is False for h in base[0] + summary[0])


def test_every_label_the_export_writes_reads_back():
    for labels, parse in ((CONSENT_JA, parse_consent), (PLAN_STATUS_JA, parse_plan_status),
                          (MOBILITY_JA, parse_mobility), (ROLE_JA, parse_role),
                          (SERVICE_JA, parse_service_kind), (FREQUENCY_JA, parse_frequency)):
        for key, label in labels.items():
            assert str(parse(label)) == str(key), label
    joined = export.cell("help_kinds", ";".join(str(k) for k in HELP_JA))
    assert parse_help_kinds(joined) == [str(k) for k in HELP_JA]


@pytest.mark.parametrize("day", ["1926-12-24", "1926-12-25", "1989-01-07", "1989-01-08", "2019-04-30",
                                 "2019-05-01", "1941-06-27", "2026-12-01"])
def test_wareki_dates_read_back(day):
    text = export.wareki_date(day)
    assert parse_date(text) == dt.date.fromisoformat(day), text


# --- --district, upsert and the mass-delete guard ------------------------------------------------

def test_district_import_leaves_other_districts_byte_identical(web, tmp_path, capsys):
    before = frozen(web.store, "register")
    rows = rows_of(download(web, "staff", "register"))
    name = rows[0].index("氏名")
    rows[1][name] = rows[1][name] + "（改）"
    code, out = cli(web.store, "register", write_rows(tmp_path / "r.csv", rows), capsys, district=OWN)
    assert code == EXIT_OK and "更新 1" in out, out
    after = frozen(web.store, "register")
    district = before.columns.get_loc("district_code")
    others_before = before[before.iloc[:, district] != OWN].reset_index(drop=True)
    others_after = after[after.iloc[:, district] != OWN].reset_index(drop=True)
    assert len(others_before) > 4000
    pd.testing.assert_frame_equal(others_after, others_before)
    changed = after[after["person_id"] == rows[1][0]]["name"].iloc[0]
    assert changed.endswith("（改）")


def test_a_row_of_another_district_is_an_error_naming_row_and_column(web, tmp_path, capsys):
    before = frozen(web.store, "register")
    path = tmp_path / "r.csv"
    path.write_bytes(download(web, "staff", "register"))
    code, out = cli(web.store, "register", path, capsys, district=OTHER_DISTRICT)
    assert code == EXIT_ERROR
    assert f"r.csv 2行目 列「地区コード」: 地区 {OTHER_DISTRICT} だけの取り込み" in out, out
    pd.testing.assert_frame_equal(frozen(web.store, "register"), before)


def test_upsert_adds_and_updates_and_deletes_nothing(web, tmp_path, capsys):
    total = len(web.store.read("register"))
    rows = rows_of(download(web, "staff", "register"))
    five = [rows[0], *rows[1:6]]
    name = rows[0].index("氏名")
    five[1][name] = "新しい 名前"
    new = list(five[2])
    new[0] = "P999999"
    five.append(new)
    code, out = cli(web.store, "register", write_rows(tmp_path / "five.csv", five), capsys, mode="upsert")
    assert code == EXIT_OK, out
    assert "追加 1、削除 0、更新 1" in out, out
    assert len(web.store.read("register")) == total + 1


@pytest.mark.parametrize("district", [None, OWN])
def test_a_five_row_file_is_refused_unless_mass_delete_is_allowed(web, tmp_path, capsys, district):
    register = web.store.read("register")
    in_scope = len(register) if district is None else int((register["district_code"] == OWN).sum())
    before = frozen(web.store, "register")
    rows = rows_of(download(web, "staff", "register"))
    path = write_rows(tmp_path / "five.csv", rows[:6])
    code, out = cli(web.store, "register", path, capsys, district=district)
    assert code == EXIT_ERROR
    assert "five.csv: 取り込むと" in out and f"{in_scope:,} 件のうち {in_scope - 5:,} 件が削除" in out, out
    assert "--allow-mass-delete" in out
    pd.testing.assert_frame_equal(frozen(web.store, "register"), before)
    code, out = cli(web.store, "register", path, capsys, district=district, allow_mass_delete=True)
    assert code == EXIT_OK, out
    after = web.store.read("register")
    assert len(after) == len(register) - (in_scope - 5)


def test_a_header_only_file_is_refused_even_with_yes_unless_mass_delete_is_allowed(web, tmp_path, capsys):
    before = frozen(web.store, "register")
    rows = rows_of(download(web, "staff", "register"))
    path = write_rows(tmp_path / "empty.csv", rows[:1])
    code, out = cli(web.store, "register", path, capsys)
    assert code == EXIT_ERROR and "empty.csv: データの行が 1 行もありません" in out, out
    pd.testing.assert_frame_equal(frozen(web.store, "register"), before)
    code, out = cli(web.store, "register", path, capsys, allow_mass_delete=True)
    assert code == EXIT_OK, out
    assert len(web.store.read("register")) == 0


def test_the_command_line_takes_district_upsert_and_allow_mass_delete(web, tmp_path):
    from typer.testing import CliRunner

    from karte.cli import app

    rows = rows_of(download(web, "staff", "register"))
    path = write_rows(tmp_path / "two.csv", rows[:3])
    store = str(web.store.location)
    runner = CliRunner()
    refused = runner.invoke(app, ["import", "register", str(path), "--store", store, "--district", OWN,
                                  "--yes"])
    assert refused.exit_code == EXIT_ERROR and "--allow-mass-delete" in refused.output, refused.output
    upsert = runner.invoke(app, ["import", "register", str(path), "--store", store, "--upsert", "--yes"])
    assert upsert.exit_code == EXIT_OK and "変更はありません" in upsert.output, upsert.output
    allowed = runner.invoke(app, ["import", "register", str(path), "--store", store, "--district", OWN,
                                  "--allow-mass-delete", "--yes"])
    assert allowed.exit_code == EXIT_OK, allowed.output
    assert int((web.store.read("register")["district_code"] == OWN).sum()) == 2


def test_a_small_deletion_is_not_refused(web, tmp_path, capsys):
    rows = rows_of(download(web, "staff", "register"))
    code, out = cli(web.store, "register", write_rows(tmp_path / "r.csv", rows[:-1]), capsys, district=OWN)
    assert code == EXIT_OK and "削除 1" in out, out


def test_a_neutralised_formula_cell_imports_back_as_it_was(web, tmp_path, capsys):
    from karte.domain.access import Access, Level

    staff = Access("staff", Level.CITY_STAFF, route="test")
    person = web.store.read("register", district=OWN).iloc[0]["person_id"]
    row = web.store.read_row("register", person, access=staff)
    web.store.update_row("register", person, {"name": "=1+2"}, version=row["version"], access=staff)
    snapshot.clear()
    path = tmp_path / "r.csv"
    path.write_bytes(download(web, "staff", "register"))
    assert "'=1+2" in path.read_text(encoding="utf-8-sig")
    code, out = cli(web.store, "register", path, capsys, district=OWN)
    assert code == EXIT_OK and "変更はありません" in out, out


# --- PostGIS --------------------------------------------------------------------------------------

@pytest.fixture
def pg_web(pg_store, demo, tmp_path):
    from karte.store.cli import import_store

    import_store(demo[1] / "karte.gpkg", pg_store)
    snapshot.clear()
    yield fx.make_api(pg_store, tmp_path / "pgweb")
    snapshot.clear()


@pytest.mark.postgis
def test_postgis_round_trip_guard_and_emergency_contact(pg_web, demo, tmp_path):
    store = pg_web.store
    gpkg = fx.demo_store(demo).read("register").set_index("person_id")["emergency_contact"]
    stored = store.read("register").set_index("person_id")["emergency_contact"]
    assert stored.notna().sum() > 1000
    pd.testing.assert_series_equal(stored.sort_index(), gpkg.sort_index(), check_dtype=False)
    for role, table in (("coordinator", "register"), ("member", "cooperators")):
        path = tmp_path / f"{table}.csv"
        path.write_bytes(download(pg_web, role, table))
        report = import_file(store, table, path, district=OWN)
        assert not report.changed and not report.written, report.format()
    before = len(store.read("register"))
    rows = rows_of(download(pg_web, "staff", "register"))
    with pytest.raises(ImportValidationError) as err:
        import_file(store, "register", write_rows(tmp_path / "five.csv", rows[:6]))
    assert "five.csv" in err.value.report.format() and f"{before:,} 件のうち" in err.value.report.format()
    assert len(store.read("register")) == before
    # an emergency contact written through the import is kept (in the row's extra) and reads back
    col = rows[0].index("緊急連絡先")
    rows[1][col] = "長女 090-0000-1234"
    report = import_file(store, "register", write_rows(tmp_path / "ec.csv", rows), district=OWN)
    assert report.written and report.changes[0].updated == 1
    again = store.read("register").set_index("person_id")
    assert again.loc[rows[1][0], "emergency_contact"] == "長女 090-0000-1234"
    assert not import_file(store, "register", tmp_path / "ec.csv", district=OWN).changed
