"""The evacuation-support gaps of a snapshot are analysed when first needed, and their district
counts are kept in the store per build (:attr:`karte.snapshot.Snapshot.district_gaps`): a cold
process prints a public sheet from them, with the same text as from a fresh analysis; a new
build (a register written) is analysed again; nothing about a person is kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from api_fixtures import pdf_text

from karte import snapshot
from karte.analysis import current_params
from karte.cli.common import cli_access
from karte.domain.schema import Edition
from karte.render.sheet_model import SheetOptions
from karte.render.sheets import render_sheet
from karte.services.sheets import build_sheet, print_sheets
from karte.snapshot import DISTRICT_GAPS_PRODUCT, PRODUCTS_LAYER, Snapshot, frame_of_text, frame_text
from karte.store import GeoPackageStore

pytest_plugins = ["pg_fixtures"]


def text_of(pdf: Path) -> str:
    return pdf_text(pdf.read_bytes())


@pytest.fixture
def store(demo_copy) -> GeoPackageStore:
    return demo_copy


def analysed(store) -> Snapshot:
    """The store's build with the gaps analysed from scratch (no kept products, no cache)."""
    snap = Snapshot.load(store, stamp=store.stamp(), params=current_params())
    snap._analysed()
    return snap


def kept_products(store) -> dict[str, str]:
    rows = store.read(PRODUCTS_LAYER)
    return dict(zip(rows["product"], rows["value"], strict=True))


def test_frame_text_gives_the_frame_back_exactly():
    frame = pd.DataFrame({"persons": [3, 0, 3], "no_plan": [1, 0, 1],
                          "rate_no_plan": [1 / 3, np.nan, 0.1 + 0.2]},
                         index=pd.Index(["S01", "S02", "city"], name="district_code"))
    back = frame_of_text(frame_text(frame))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert "NaN" not in frame_text(frame)  # strict JSON: a missing rate is null


def test_the_kept_district_gaps_are_the_analysed_ones(store):
    snap = snapshot.current(store)
    gaps = snap.district_gaps
    assert DISTRICT_GAPS_PRODUCT in kept_products(store)
    fresh = analysed(store)
    pd.testing.assert_frame_equal(gaps, fresh.district_gaps, check_exact=True)
    snapshot.clear()  # as another process: decoded from the store, equal to the analysis
    again = snapshot.current(store)
    pd.testing.assert_frame_equal(again.district_gaps, fresh._analysed().district_gaps, check_exact=True)
    assert again._gaps is None  # nobody was analysed for it


def test_a_cold_process_prints_a_public_sheet_without_the_gap_analysis(store, tmp_path):
    assert len(snapshot.current(store).district_gaps)  # kept for this build, if it was not yet
    out = tmp_path / "cold"
    script = textwrap.dedent(f"""
        import sys
        import karte.snapshot
        from pathlib import Path
        from karte.services.sheets import print_sheets
        from karte.store import GeoPackageStore

        def refuse(*args, **kwargs):
            raise AssertionError("the gaps of every person were analysed")

        karte.snapshot.evacuation_gaps = refuse
        print_sheets(GeoPackageStore({str(store.path)!r}), ["S01"], out=Path({str(out)!r}))
        print("scipy.spatial" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "False"  # the k-d tree is for the analysis only

    fresh = analysed(store)
    coverages, city = fresh.coverage()
    sheet = build_sheet(fresh, "S01", options=SheetOptions(edition=Edition.PUBLIC),
                        coverage=coverages["S01"], city_coverage=city)
    expected = tmp_path / "fresh.pdf"
    expected.write_bytes(render_sheet(sheet)[0])
    assert "要支援者（名簿登録）" in text_of(expected)
    assert text_of(out / "S01-public.pdf") == text_of(expected)


def test_a_register_written_is_analysed_again(store):
    before = snapshot.current(store).district_gaps
    register = store.read("register")
    store.write({"register": register.iloc[1:]})  # a snapshot layer: a new build
    snapshot.clear()
    after = snapshot.current(store)
    gaps = after.district_gaps
    assert int(gaps.loc["city", "persons"]) == int(before.loc["city", "persons"]) - 1
    pd.testing.assert_frame_equal(gaps, analysed(store).district_gaps, check_exact=True)


def test_nothing_about_a_person_is_kept(store, tmp_path):
    register = store.read("register")
    res = print_sheets(store, ["S01", "S02"], out=tmp_path, edition="drill",
                       access=cli_access("cli:sheets", user="gaps.test"), workers=2)
    assert res.files["S01"].exists()
    # the drill sheets need the persons' flags: analysed here once, before the workers were forked
    assert snapshot.current(store)._gaps is not None
    kept = "\n".join(kept_products(store).values())
    assert DISTRICT_GAPS_PRODUCT in kept_products(store)
    for pid in register["person_id"].astype(str):
        assert f'"{pid}"' not in kept


@pytest.mark.postgis
def test_postgis_keeps_the_district_gaps_too(pg_store, store, monkeypatch):
    from karte.store.cli import import_store

    import_store(store.path, pg_store)
    snapshot.clear()
    gaps = snapshot.current(pg_store).district_gaps
    fresh = analysed(store).district_gaps
    pd.testing.assert_frame_equal(gaps, fresh, check_exact=True)
    snapshot.clear()

    def refuse(*args, **kwargs):
        raise AssertionError("analysed again")

    monkeypatch.setattr(snapshot, "evacuation_gaps", refuse)
    pd.testing.assert_frame_equal(snapshot.current(pg_store).district_gaps, fresh, check_exact=True)
