"""``gis`` is pure: it imports no project package, and every coded word comes from the caller.

Two checks. Every module of ``gis/`` is parsed (not imported) and may not import ``karte`` or
``api``, neither at the top nor inside a function. Then the analyses that read coded columns run
with a made-up :class:`gis.vocab.Vocabulary` on tiny hand-built frames (EPSG:6678, metres):
other consent words, ``|`` between ids, another frequency table, another care mobility and
another evacuation-help word. They must give the answer that vocabulary implies, and karte's own
words must mean nothing to them.

The world (detour factor 1.0 where distances matter):

====  ========  ========  =========  ===========  =========
id    point     consent   supporters  mobility     plan
====  ========  ========  =========  ===========  =========
P1    (0, 0)    ja        K1|K2       trage        done
P2    (50, 0)   nein      K2          wheelchair   done
P3    (0, 50)   amtlich   -           -            open
P4    (0, 70)   nein      -           independent  done
====  ========  ========  =========  ===========  =========

Cooperators (point, help kinds, capacity): K1 (10, 0) evakuierung|schnee 1; K2 (0, 10)
evacuation 1 (karte's word: not willing here); K3 (0, 60) schnee|evakuierung 2.
"""

from __future__ import annotations

import ast
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from gis.coverage import active_salons, salon_coverage
from gis.crs import METRIC
from gis.gaps import assigned_supporters, evacuation_gaps, needs_care, supporter_load
from gis.params import AnalysisParams
from gis.suggest import suggest_supporters
from gis.vocab import Vocabulary

GIS = Path(__file__).resolve().parent.parent / "gis"
FORBIDDEN = ("karte", "api")

VOCAB = Vocabulary(
    consent_shareable={"ja": True, "nein": False, "amtlich": True},
    frequency_per_month={"täglich": 30.0, "jährlich": 1 / 12},
    care_mobility=frozenset({"trage"}),
    list_separator="|",
    evacuation_help="evakuierung",
)
STRAIGHT = AnalysisParams(detour_factor=1.0)


# --- 1. no project imports -------------------------------------------------------------------

def project_imports(path: Path) -> list[str]:
    """Every import of a forbidden package in one module, as "line: module"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""] if node.level == 0 else []
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__")):
            modules = [node.args[0].value]
        else:
            continue
        found += [f"{node.lineno}: {m}" for m in modules if m.split(".")[0] in FORBIDDEN]
    return found


def test_the_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import numpy\n\ndef f():\n    from karte.store.base import split_list\n"
                      "    import api.app\n    return importlib.import_module('karte.x')\n")
    assert project_imports(module) == ["4: karte.store.base", "5: api.app", "6: karte.x"]


def test_gis_imports_no_project_package():
    modules = sorted(GIS.rglob("*.py"))
    assert len(modules) > 10
    bad = {str(p.relative_to(GIS.parent)): found for p in modules if (found := project_imports(p))}
    assert bad == {}


# --- 2. a made-up vocabulary -----------------------------------------------------------------

def points(coords, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=[shapely.Point(c) for c in coords], crs=METRIC)


def register() -> gpd.GeoDataFrame:
    return points([(0, 0), (50, 0), (0, 50), (0, 70)],
                  person_id=["P1", "P2", "P3", "P4"], district_code=["A"] * 4,
                  consent=["ja", "nein", "amtlich", "nein"],
                  supporter_ids=["K1|K2", "K2", "", None],
                  mobility=["trage", "wheelchair", None, "independent"],
                  plan_status=["done", "done", "open", "done"])


def cooperators() -> gpd.GeoDataFrame:
    frame = points([(10, 0), (0, 10), (0, 60)], cooperator_id=["K1", "K2", "K3"],
                   district_code=["A"] * 3,
                   help_kinds=["evakuierung|schnee", "evacuation", "schnee|evakuierung"],
                   capacity=[1, 1, 2])
    frame["capacity"] = frame["capacity"].astype("Int64")
    return frame


def shelters() -> gpd.GeoDataFrame:
    return points([(0, 100)], shelter_id=["W"], welfare=[True])


def sites() -> gpd.GeoDataFrame:
    return points([(50, 50)], site_id=["E"], hazard_earthquake=[True])


def test_coverage_counts_salons_by_the_given_frequency_table():
    services = points([(100, 0), (2000, 10), (2000, 0)], service_id=["s1", "s2", "s3"],
                      kind=["salon", "salon", "class"], frequency=["täglich", "jährlich", "täglich"])
    assert active_salons(services, vocab=VOCAB)["service_id"].tolist() == ["s1"]
    assert active_salons(services, vocab=VOCAB, min_per_month=0)["service_id"].tolist() == ["s1", "s2"]
    surface = points([(0, 0), (2000, 0)], x=[0.0, 2000.0], y=[0.0, 0.0], elderly=[10.0, 20.0])
    cov = salon_coverage(surface, services, vocab=VOCAB, params=STRAIGHT)
    assert cov["salon_id"].tolist() == ["s1", "s1"]
    assert cov["covered"].tolist() == [True, False]
    yearly = salon_coverage(surface, services, vocab=VOCAB,
                            params=AnalysisParams(detour_factor=1.0, min_salon_per_month=0))
    assert yearly["covered"].tolist() == [True, True]


def test_frequency_words_outside_the_table_are_all_listed():
    services = points([(0, 0), (1, 0), (2, 0)], kind=["salon"] * 3,
                      frequency=["weekly", "täglich", "monthly"])  # karte's words mean nothing here
    with pytest.raises(ValueError, match=r"\['monthly', 'weekly'\]"):
        active_salons(services, vocab=VOCAB)


def test_gap_helpers_follow_the_given_words():
    reg, coop = register(), cooperators()
    assert needs_care(reg, vocab=VOCAB).tolist() == [True, False, False, False]  # not wheelchair
    pairs = assigned_supporters(reg, vocab=VOCAB)
    assert list(zip(pairs["row"], pairs["cooperator_id"], strict=True)) == [(0, "K1"), (0, "K2"), (1, "K2")]
    load = supporter_load(reg, coop, vocab=VOCAB)
    assert load["load"].to_dict() == {"K1": 1, "K2": 2, "K3": 0}
    assert load["overloaded"].to_dict() == {"K1": False, "K2": True, "K3": False}
    assert load["willing"].to_dict() == {"K1": True, "K2": False, "K3": True}


def test_evacuation_gaps_follow_the_given_words():
    gaps = evacuation_gaps(register(), cooperators(), shelters(), sites(), vocab=VOCAB,
                           params=STRAIGHT).set_index("person_id")
    assert gaps["no_consent"].to_dict() == {"P1": False, "P2": True, "P3": False, "P4": True}
    assert gaps["supporters"].to_dict() == {"P1": 2, "P2": 1, "P3": 0, "P4": 0}
    assert gaps["supporter_overloaded"].to_dict() == {"P1": False, "P2": True, "P3": False, "P4": False}
    assert gaps["no_plan"].to_dict() == {"P1": False, "P2": False, "P3": True, "P4": False}
    # P1 needs care (trage): the welfare shelter, 100 m; the others the emergency site
    assert gaps.loc["P1", "needs_care"] and gaps.loc["P1", "shelter_m"] == pytest.approx(100)
    assert gaps.loc["P2", "shelter_m"] == pytest.approx(50)
    assert gaps.loc["P1", "supporter_m"] == pytest.approx(10)


def test_consent_words_outside_the_vocabulary_are_input_problems():
    reg = register()
    reg.loc[0, "consent"] = "consented"  # karte's word
    reg.loc[1, "consent"] = "vielleicht"
    with pytest.raises(ValueError) as err:
        evacuation_gaps(reg, cooperators(), shelters(), sites().drop(columns="hazard_earthquake"),
                        vocab=VOCAB)
    text = str(err.value)
    assert "['consented', 'vielleicht']" in text and "hazard_earthquake" in text
    with pytest.raises(ValueError, match=r"\['consented', 'vielleicht'\]"):
        suggest_supporters(reg, cooperators(), vocab=VOCAB, only_shareable=True)


def test_suggestions_follow_the_given_words():
    reg, coop = register(), cooperators()
    everyone = suggest_supporters(reg, coop, vocab=VOCAB, params=STRAIGHT)
    # K1 is full (P1), K2 offers karte's "evacuation", not "evakuierung": only K3 (room for two)
    assert list(zip(everyone["person_id"], everyone["cooperator_id"], strict=True)) == [
        ("P3", "K3"), ("P4", "K3")]
    assert everyone["distance_m"].tolist() == pytest.approx([10, 10])
    shareable = suggest_supporters(reg, coop, vocab=VOCAB, params=STRAIGHT, only_shareable=True)
    assert shareable["person_id"].tolist() == ["P3"]  # P4 said "nein"
