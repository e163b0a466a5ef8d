"""The architecture's rules, checked: who may import whom, and one registry per vocabulary.

``docs/architecture.md`` explains the layers; the import rules are import-linter contracts in
``pyproject.toml`` (``[tool.importlinter]``), run here so a change that breaks one fails the suite.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import gis_fixtures as fx

import gis.gaps
from karte.domain import gaps as gap_registry
from karte.domain.layers import LAYERS, RECORD_LAYERS
from karte.domain.schema import VOCABULARY

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is a dev dependency (pyproject)"
    done = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_the_analysis_emits_only_gap_kinds_the_registry_knows():
    out = gis.gaps.evacuation_gaps(fx.register(), fx.cooperators(), fx.shelters(), fx.emergency_sites(),
                                   vocab=VOCABULARY)
    boolean = {c for c in out.columns if out[c].dtype == bool and c not in ("needs_care", "at_risk")}
    assert boolean <= set(gap_registry.BY_KEY), boolean - set(gap_registry.BY_KEY)
    assert set(gis.gaps.GAP_KINDS) == set(gap_registry.ANALYSED)


def test_every_gap_kind_has_a_label_and_a_colour_and_a_place_in_the_colour_order():
    priorities = [k.priority for k in gap_registry.GAP_KINDS]
    assert len(set(priorities)) == len(priorities)
    for kind in gap_registry.GAP_KINDS:
        assert kind.label and kind.colour.startswith("#") and kind.short_label
        assert "{" not in kind.text(supporter_m=300.0)


def test_record_layers_declare_their_schema():
    for name in RECORD_LAYERS:
        spec = LAYERS[name]
        assert spec.columns[0].name == spec.key and spec.id_prefix
        assert spec.personal or spec.district_column is None or spec.writers


#: Imports of project modules inside functions that stay there, each for a measured reason.
LAZY_ALLOWED = {
    ("karte/store/__init__.py", "karte.store.postgis"),     # +0.4 s at start for every GeoPackage user
    ("karte/store/cli.py", "karte.store.postgis_models"),   # the same, for db_current
    ("karte/store/cli.py", "karte.store.postgis"),
    ("karte/cli/census.py", "karte.census.update"),         # tobler + statsmodels: +2 s for every command
    ("karte/render/webmap.py", "karte.render.map_elements"),  # folium: +0.3 s for sheets and GeoJSON
}


def test_project_imports_sit_at_the_top_of_the_module():
    hidden = []
    for path in sorted([*ROOT.joinpath("karte").rglob("*.py"), *ROOT.joinpath("gis").rglob("*.py"),
                        *ROOT.joinpath("api").rglob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if "/migrations/" in rel:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module and inner.level == 0:
                    module = inner.module
                elif isinstance(inner, ast.Import):
                    module = inner.names[0].name
                else:
                    continue
                if module.split(".")[0] in ("karte", "gis", "api") and (rel, module) not in LAZY_ALLOWED:
                    hidden.append(f"{rel}:{inner.lineno} {module}")
    assert not hidden, hidden
