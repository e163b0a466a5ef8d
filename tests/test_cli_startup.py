"""The command line starts without the heavy libraries only some commands use (issue 17).

``karte sheets`` imports only its own command module (:func:`karte.cli.main`), ``karte --help``
every one of :mod:`karte.cli`; the analyses on Dask, the census update (tobler, statsmodels)
and the web server are imported by the commands that use them, and the users file hashes no
password until someone logs in. Each check runs in a fresh interpreter, since this test process
has imported them all.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Modules ``import karte.cli`` must not load: each is imported inside the commands that use it.
LAZY = (
    "dask",
    "distributed",
    "tobler",
    "statsmodels",
    "uvicorn",
    "karte.census.update",
)


def _loaded_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_command_line_loads_none_of_the_heavy_modules():
    loaded = _loaded_after("import karte.cli; karte.cli.app")
    assert "karte.cli.sheets" in loaded  # the check looks at a real import of every command module
    assert not loaded & set(LAZY), sorted(loaded & set(LAZY))


def test_a_command_loads_its_own_module_only_and_every_command_is_listed():
    """``karte sheets …`` builds the application with :mod:`karte.cli.sheets` alone; the table
    of :data:`karte.cli.COMMANDS` names exactly the commands the modules register."""
    from typer.main import get_command

    import karte.cli as cli

    every = list(get_command(cli.make_app()).commands)
    assert sorted(every) == sorted(c for names in cli.COMMANDS.values() for c in names)
    for command in every:
        assert command in get_command(cli.make_app(command)).commands
    loaded = _loaded_after("import sys; sys.argv = ['karte', 'sheets', '--help']\n"
                           "from karte.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass")
    others = {f"karte.cli.{m}" for m in cli.COMMANDS} - {"karte.cli.sheets", "karte.cli.copies"}
    assert "karte.cli.sheets" in loaded and not loaded & others, sorted(loaded & others)


#: Modules printing a sheet does not need: the web maps (folium, its tile-provider list), the graph
#: routines of walking networks (imported by the functions that use them), and the yearly trends
#: with the import pipeline behind them (the sheet's district check and sources block live in
#: :mod:`karte.services.district_data`).
SHEET_UNNEEDED = ("folium", "branca", "xyzservices", "karte.render.map_elements", "scipy.sparse.csgraph",
                  "karte.services.history", "karte.importing", "karte.services.kartes",
                  "networkx", "gis.network")


def test_the_sheet_service_loads_no_web_map_no_graph_routines_and_no_import_pipeline():
    loaded = _loaded_after("import karte.services.sheets, karte.snapshot, karte.render.webmap, gis.distance, "
                           "gis.coverage")
    assert "karte.services.district_data" in loaded  # the check looks at the sheet's real imports
    assert not loaded & set(SHEET_UNNEEDED), sorted(loaded & set(SHEET_UNNEEDED))
    # they load when a map is drawn, a karte viewed
    drawn = _loaded_after("from karte.render.webmap import offline_map; import karte.services.kartes; "
                          "offline_map((140.7, 40.8, 140.8, 40.9), asset_base='a', basemap='none')")
    assert {"folium", "karte.render.map_elements", "karte.services.history"} <= drawn


def test_the_lazy_modules_do_load_when_imported():
    # guards the list above: a misspelt name would make the first test pass for nothing
    loaded = _loaded_after("import " + ", ".join(m for m in LAZY if m not in ("dask", "distributed")))
    assert set(LAZY) - {"dask", "distributed"} <= loaded
    assert {"tobler", "statsmodels"} <= loaded
    assert importlib.util.find_spec("dask") and importlib.util.find_spec("distributed")


def test_help_exits_0_and_lists_every_command():
    done = subprocess.run([sys.executable, "-m", "karte.cli", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    for command in ("demo", "build", "sheets", "analyse", "census", "users", "serve", "drill", "cases",
                    "match"):
        assert f" {command} " in done.stdout, command


def test_importing_the_users_file_hashes_no_password():
    """An Argon2 hash (0.5 s) made at import was paid by every command and every server start."""
    code = ("import time; t = time.process_time(); import karte.users as u; "
            "print(u._dummy_hash.cache_info().currsize)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
