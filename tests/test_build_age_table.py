"""`karte build --age-table`: a supplied e-Stat age table replaces the synthetic age bands."""

from __future__ import annotations

import json

from conftest import copy_store
from typer.testing import CliRunner

from karte.cli import app
from karte.store import GeoPackageStore

AGES = [(a, a + 4) for a in range(0, 100, 5)]


def write_estat(path, small_areas):
    """An e-Stat-layout CSV (CP932, two header rows): 1 person per 5-year band, except that the
    first area's 80-84 cell is concealed."""
    codes = ["KEY_CODE", "HYOSYO", "CITYNAME", "NAME", "HTKSYORI", "HTKSAKI", "GASSAN"]
    codes += [f"T000849{i:03d}" for i in range(1, len(AGES) + 2)]
    labels = [""] * 7 + [f"総数{lo}～{hi}歳" for lo, hi in AGES] + ["総数100歳以上"]
    lines = [",".join(codes), ",".join(labels)]
    for i, row in enumerate(small_areas.itertuples()):
        cells = ["1"] * (len(AGES) + 1)
        if i == 0:
            cells[16] = "*"
        lines.append(",".join([row.key_code, "1", "青森市", row.name, "", "", "", *cells]))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp932"))


def test_build_with_age_table(demo, small_areas, tmp_path):
    _, folder = demo
    store_path = tmp_path / "k.gpkg"
    copy_store(folder / "karte.gpkg", store_path)
    write_estat(tmp_path / "age.csv", small_areas)
    res = CliRunner().invoke(app, ["build", "--store", str(store_path), "--age-table",
                                   str(tmp_path / "age.csv")])
    assert res.exit_code == 0, res.output
    store = GeoPackageStore(store_path)
    sa = store.read("small_areas").set_index("key_code")
    first = small_areas["key_code"].iloc[0]
    assert sa.loc[first, "age_75_plus"] is None or sa.isna().loc[first, "age_75_plus"]
    others = sa.drop(index=first)
    assert (others["age_0_14"] == 3).all() and (others["age_75_plus"] == 6).all()
    assert not sa["synthetic_age"].astype(bool).any()
    karte = json.loads(store.read("kartes")["karte_json"].iloc[0])
    assert "age_bands" not in karte["synthetic"]
    assert "register" in karte["synthetic"]  # the demo register is still synthetic
