"""The coordinator notebook runs end to end, reads the store it is given without changing it, and
what it prints agrees with an independent check.

The notebook is executed with nbclient in a kernel that is this very interpreter (the venv's
python): a kernelspec naming ``sys.executable`` is written to a temporary ``JUPYTER_PATH``, so
the test does not depend on which kernels happen to be installed on the machine. The notebook is
pointed (``KARTE_NOTEBOOK_STORE``) at a folder holding a copy of the demo store, as a user would
point it at a real one (issue #15: it used to build the demo over it). The test checks that the
store's layers are byte for byte what they were (only the access log grows: the store records
the notebook's reads of personal rows), then recomputes the notebook's main figures its own way
(plain pandas, a full distance matrix) from that store before comparing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_store

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "outreach_planning.ipynb"
KERNEL = "karte-test-venv"


def test_notebook_is_committed_without_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has no code cells"
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    # Japanese headings for the coordinator
    headings = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown"]
    assert sum(any("\u3040" <= ch <= "\u9fff" for ch in h) for h in headings if h.startswith("#")) >= 7


@pytest.fixture(scope="module")
def executed(demo, tmp_path_factory):
    import nbformat
    from nbclient import NotebookClient

    root = tmp_path_factory.mktemp("notebook")
    spec = root / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "karte venv (test)", "language": "python"}))
    work = root / "store"
    work.mkdir()
    copy_store(demo[1] / "karte.gpkg", work / "karte.gpkg")
    files = sorted(p.name for p in work.iterdir())
    before = _tables(work / "karte.gpkg")
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(root / "jupyter"))
    mp.setenv("KARTE_NOTEBOOK_STORE", str(work))  # the folder, as a user would give it
    mp.setenv("KARTE_NOTEBOOK_DIR", str(work))  # where older versions built the demo, over the store
    mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        nb = nbformat.read(NOTEBOOK, as_version=4)
        started = time.perf_counter()
        NotebookClient(nb, kernel_name=KERNEL, timeout=300,
                       resources={"metadata": {"path": str(root)}}).execute()
        seconds = time.perf_counter() - started
    finally:
        mp.undo()
    return nb, work, seconds, {"files": files, "tables": before}


#: The store's own access log: the only table a reader's visit may add to.
AUDIT = "karte_audit"


def _tables(path: Path) -> dict[str, str]:
    """Every table of a GeoPackage as a digest of its rows in rowid order (an SQL dump per table)."""
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                           " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        out = {}
        for name in names:
            digest = hashlib.sha256()
            for row in con.execute(f'SELECT * FROM "{name}" ORDER BY rowid'):
                digest.update(repr(row).encode())
            out[name] = digest.hexdigest()
        return out


def result_of(nb) -> dict:
    cell = next(c for c in nb.cells if "result" in c.metadata.get("tags", []))
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    line = next(ln for ln in text.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_notebook_runs_and_draws(executed):
    nb, _, seconds, _ = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs)
    assert images >= 7  # density, coverage, ranking of districts, gaps, people, suggestions, outreach, sites
    assert seconds < 120


def test_notebook_figures_agree_with_an_independent_count(executed):
    from gis.crs import METRIC
    from gis.mesh import jis_mesh, population_surface
    from karte.domain.schema import VOCABULARY
    from karte.store import open_store

    nb, work, _, _ = executed
    result = result_of(nb)
    code = result["district"]
    store = open_store(work / "karte.gpkg")

    # elderly and coverage: pieces' points against every monthly-or-more salon, full matrix
    small = store.read("small_areas")
    assert result["elderly"] == pytest.approx(
        float((small["age_65_74"] + small["age_75_plus"])[small["district_code"] == code].sum()))
    surface = population_surface(small[small["district_code"] == code], jis_mesh(small))
    services = store.read("services").to_crs(METRIC)
    monthly = services[(services["kind"] == "salon")
                       & services["frequency"].isin(["weekly", "biweekly", "monthly"])]
    xy = surface[["x", "y"]].to_numpy()
    sxy = np.column_stack([monthly.geometry.x, monthly.geometry.y])
    nearest = np.hypot(xy[:, None, 0] - sxy[None, :, 0], xy[:, None, 1] - sxy[None, :, 1]).min(axis=1)
    covered = surface["elderly"].to_numpy()[nearest * 1.3 <= 500].sum()
    assert result["covered_elderly"] == pytest.approx(covered)
    winter_covered = surface["elderly"].to_numpy()[nearest * 1.3 <= 350].sum()
    assert result["winter_coverage_elderly"] == pytest.approx(winter_covered / surface["elderly"].sum())

    # gap counts from the register by plain pandas
    reg = store.read("register")
    mine = reg[reg["district_code"] == code]
    known = set(store.read("cooperators")["cooperator_id"])
    assert result["persons"] == len(mine)
    assert result["gap_counts"]["no_consent"] == (~mine["consent"].isin(["consented", "ordinance"])).sum()
    assert result["gap_counts"]["no_plan"] == (mine["plan_status"] != "done").sum()
    no_supporter = [not any(c in known for c in VOCABULARY.split(s)) for s in mine["supporter_ids"]]
    assert result["gap_counts"]["no_supporter"] == sum(no_supporter)

    # suggestions: people of the district without a supporter, who may be shared, within 300 m
    coop = store.read("cooperators").set_index("cooperator_id")
    by_id = mine.set_index("person_id")
    shareable_unsupported = set(mine.loc[np.array(no_supporter)
                                         & mine["consent"].isin(["consented", "ordinance"]).to_numpy(),
                                         "person_id"])
    for person, cooperator, distance in result["suggestions"]:
        assert person in shareable_unsupported
        assert "evacuation" in VOCABULARY.split(coop.loc[cooperator, "help_kinds"])
        straight = by_id.geometry[person].distance(coop.geometry[cooperator])
        assert distance == pytest.approx(straight * 1.3, abs=1e-3)
        assert distance <= 300 + 1e-6
    assert result["suggestions"], "the chosen district should get some suggestions"

    # sites and outreach: ranked, each gain positive and never more than the uncovered elderly
    assert result["site_gains"] == sorted(result["site_gains"], reverse=True)
    assert 0 < sum(result["site_gains"]) <= result["elderly"] - result["covered_elderly"] + 1e-6
    assert result["top_scores"] == sorted(result["top_scores"], reverse=True)
    assert len(result["top_cells"]) == 10


def test_notebook_reads_of_personal_rows_are_logged(executed):
    from karte.store import open_store

    _, work, _, _ = executed
    log = open_store(work / "karte.gpkg").audit_log()
    mine = log[log["route"] == "notebook:outreach_planning"]
    # the store logs each read itself: the count as city staff, the lists as the coordinator
    assert sorted(zip(mine["layer"], mine["actor"], mine["level"], strict=True)) == [
        ("cooperators", "csw-demo", "coordinator"), ("register", "aggregate-job", "city_staff"),
        ("register", "csw-demo", "coordinator")]
    assert (mine["rows"] > 0).all() and set(mine["action"]) == {"read"}


def test_notebook_reads_the_given_store_and_changes_none_of_its_layers(executed):
    nb, work, _, before = executed
    after = _tables(work / "karte.gpkg")
    assert after.keys() == before["tables"].keys()
    changed = sorted(name for name in after if after[name] != before["tables"][name])
    assert changed in ([], [AUDIT]), changed  # only the access log may grow
    # no new file beside it but SQLite's own journal of that log
    new = sorted(set(p.name for p in work.iterdir()) - set(before["files"]))
    assert set(new) <= {"karte.gpkg-wal", "karte.gpkg-shm"}, new
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "読み取り専用で開きました" in text and "デモのストアを" not in text


def test_notebook_refuses_a_folder_without_a_store(tmp_path):
    """Pointed at a folder with no store, the notebook stops: it never builds one there."""
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup = "".join(c.source + "\n" for c in nb.cells[:4] if c.cell_type == "code")
    setup = setup.replace("import japanize_matplotlib", "# import japanize_matplotlib")
    empty = tmp_path / "empty"
    empty.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("KARTE_NOTEBOOK_STORE", str(empty))
    try:
        with pytest.raises(FileNotFoundError, match="ストアがありません"):
            exec(compile(setup, "outreach_planning.ipynb", "exec"), {})
    finally:
        mp.undo()
    assert list(empty.iterdir()) == []


def test_notebook_names_people_and_places(executed):
    from karte.store import open_store

    nb, work, _, _ = executed
    result = result_of(nb)
    store = open_store(work / "karte.gpkg")
    reg = store.read("register")
    mine = reg[(reg["district_code"] == result["district"]) & reg["consent"].isin(["consented", "ordinance"])]
    assert result["listed_names"] and set(result["listed_names"]) <= set(mine["name"])
    assert set(result["suggested_names"]) <= set(mine["name"])
    areas = set(store.read("small_areas")["name"])
    assert result["top_places"] and set(result["top_places"]) <= areas
    # the tables shown hold no person id, and the places column names the 町丁・字
    shown = "".join(o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code"
                    for o in c.outputs)
    ids = set(reg["person_id"].astype(str))
    assert not [i for i in re.findall(r"P\d{4,}", shown) if i in ids]
    assert "町丁・字（付近）" in shown and result["top_places"][0] in shown
