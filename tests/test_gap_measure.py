"""The city map's gap measure maps one gap kind (issue #15, item 1).

The default gap measure (``/?measure=gap_rate``: 支援者が決まっていない) must separate the 42 demo
districts into at least four classes (read back from the rendered legend and the map's fills);
each kind's per-district count and rate must equal a recount from the register; small counts and
the rates beside them are hidden from the public as ``at_risk``/``gap_rate`` are; the any-gap
figure stays in the table with its explanation; GeoPackage and PostGIS give the same figures.
"""

from __future__ import annotations

import html as htmllib
import json
import re

import api_fixtures as fx
import numpy as np
import pandas as pd
import pytest

from karte import snapshot
from karte.assemble import GAP_COLUMNS, gap_column, gap_rate_column
from karte.domain.access import PUBLIC, SUPPRESSED, Access, Level
from karte.domain.gaps import ANALYSED, AT_RISK
from karte.domain.schema import VOCABULARY
from karte.render.overview import MEASURES, PALETTE
from karte.services.pages import ANY_GAP_NOTE, MEASURE_COLUMNS, district_figures

pytest_plugins = ["pg_fixtures"]
pytestmark = pytest.mark.slow

STAFF = Access(user="gap-staff", level=Level.CITY_STAFF, route="test:gaps")
MEMBER = Access(user="gap-member", level=Level.DISTRICT_MEMBER, district=fx.OWN, route="test:gaps")
#: A threshold high enough that the demo's smaller gap counts are hidden.
HIGH = 20
#: A legend range as the city map prints it: "25.2% 〜 30.2%（9地区）".
RANGE = re.compile(r"(\d+\.\d)% 〜 (\d+\.\d)%（(\d+)地区）")


@pytest.fixture(scope="module")
def site(demo, tmp_path_factory) -> fx.Api:
    folder = tmp_path_factory.mktemp("gapmap")
    return fx.make_api(fx.copy_demo(demo, folder), folder, basemap="none")


@pytest.fixture(scope="module")
def strict(site, tmp_path_factory) -> fx.Api:
    """The same store served with a high suppression threshold."""
    return fx.make_api(site.store, tmp_path_factory.mktemp("gapmap-strict"), basemap="none",
                       suppress_max=HIGH)


def _legend(page: str) -> str:
    return re.search(r'<details open class="karte-legend".*?</details>', page, re.S).group(0)


def _fills(page: str) -> list[str]:
    """The fill colour of every district polygon of the city map (the GeoJSON folium inlines)."""
    return re.findall(r'"fill": "(#[0-9a-fA-F]{6})"', page)


def _cells(page: str) -> dict[str, list[str]]:
    """District name -> the texts of its row's number cells in the city table."""
    out = {}
    rows = re.findall(r'<tr><td><a href="/districts/[^"]+">([^<]+)</a></td>(.*?)</tr>', page, re.S)
    for name, rest in rows:
        out[htmllib.unescape(name)] = re.findall(r'<td class="n[^"]*">([^<]*)</td>', rest)
    return out


# --- the map separates districts ------------------------------------------------------------------

def test_default_gap_measure_spreads_the_districts_over_four_classes(site):
    r = site.browser("anonymous").get("/", params={"measure": "gap_rate"})
    assert r.status_code == 200
    page = r.text
    legend = _legend(page)
    assert "支援者が決まっていない" in legend and "分母は地区の要支援者全員" in legend
    ranges = [(float(lo), float(hi), int(n)) for lo, hi, n in RANGE.findall(legend)]
    districts = len(site.store.read("districts"))
    assert districts == 42
    assert len([n for *_, n in ranges if n > 0]) >= 4, ranges
    assert sum(n for *_, n in ranges) == districts  # nothing hidden at the default threshold
    assert all(lo < hi for lo, hi, _ in ranges)  # no empty or tied range
    assert [lo for lo, _, _ in ranges] == sorted(lo for lo, _, _ in ranges)
    # the map itself: as many fill colours as legend ranges, each used as often as it says
    fills = _fills(page)
    assert len(fills) == districts
    counts = pd.Series(fills).value_counts()
    assert len(counts) == len(ranges) >= 4
    assert sorted(counts.tolist()) == sorted(n for *_, n in ranges)
    assert set(counts.index) <= set(PALETTE)


def test_the_ranges_hold_the_districts_rates(site):
    """Each district's rate (from the register) lies in the range of the colour it is drawn in."""
    page = site.browser("anonymous").get("/", params={"measure": "gap_rate"}).text
    figures = district_figures(site.store, STAFF, max_small=2).set_index("district_name")
    ranges = [(float(lo), float(hi)) for lo, hi, _ in RANGE.findall(_legend(page))]
    for name, cells in _cells(page).items():
        rate = figures.loc[name, gap_rate_column("no_supporter")]
        assert cells[0] == f"{rate:.1%}"
        assert any(lo - 0.05 <= rate * 100 <= hi + 0.05 for lo, hi in ranges), name


def test_every_gap_kind_has_a_measure_and_the_old_url_works(site):
    kinds = {spec.gap for spec in MEASURES.values() if spec.gap}
    assert kinds == set(ANALYSED)
    assert MEASURE_COLUMNS["gap_rate"] == (gap_rate_column("no_supporter"), gap_column("no_supporter"), False)
    c = site.browser("anonymous")
    for key, spec in MEASURES.items():
        if not spec.gap:
            continue
        r = c.get("/", params={"measure": key})
        assert r.status_code == 200, key
        assert f'<option value="{key}" selected>' in r.text
        assert spec.label in _legend(r.text)
    assert c.get("/", params={"measure": "gap_rate"}).status_code == 200


def test_the_table_keeps_the_any_gap_figure_explained(site):
    page = site.browser("anonymous").get("/", params={"measure": "gap_rate"}).text
    assert f'<th class="n">{AT_RISK.label}</th>' in page
    assert ANY_GAP_NOTE in htmllib.unescape(page)
    figures = district_figures(site.store, STAFF, max_small=2).set_index("district_name")
    cells = _cells(page)
    assert len(cells) == 42
    for name, texts in cells.items():
        assert texts[1] == f"{figures.loc[name, 'gap_rate']:.1%}", name  # any gap, beside the kind
    # not on the other measures
    other = site.browser("anonymous").get("/", params={"measure": "ageing"}).text
    assert AT_RISK.label not in other.split('id="tables"')[1].split("</table>")[0]


# --- the per-kind figures -------------------------------------------------------------------------

def test_per_kind_columns_equal_a_recount_from_the_register(site):
    figures = district_figures(site.store, STAFF, max_small=2).set_index("district_code")
    assert set(GAP_COLUMNS) <= set(figures.columns)
    register = site.store.read("register")
    known = set(site.store.read("cooperators")["cooperator_id"])
    register = register.assign(
        no_consent=~register["consent"].isin(["consented", "ordinance"]),
        no_plan=register["plan_status"] != "done",
        no_supporter=[not any(c in known for c in VOCABULARY.split(s)) for s in register["supporter_ids"]])
    by_district = register.groupby("district_code")
    # the kinds a plain recount gives, independently of the analysis
    for kind in ("no_consent", "no_plan", "no_supporter"):
        expected = by_district[kind].sum()
        for code, n in expected.items():
            assert figures.loc[code, gap_column(kind)] == n, (kind, code)
    # every kind: the analysis' per-person flags, counted per district
    flags = snapshot.current(site.store).person_flags(register["person_id"].astype(str).tolist())
    joined = register[["person_id", "district_code"]].astype(str).join(flags, on="person_id")
    persons = by_district.size()
    for kind in ANALYSED:
        counts = joined.groupby("district_code")[kind].apply(lambda s: int(s.astype(bool).sum()))
        for code in figures.index:
            n = int(counts.get(code, 0))
            assert figures.loc[code, gap_column(kind)] == n, (kind, code)
            total = int(persons.get(code, 0))
            rate = figures.loc[code, gap_rate_column(kind)]
            assert (rate is None or rate != rate) if total == 0 else rate == pytest.approx(n / total)
    assert (figures["support_needers"] == persons.reindex(figures.index).fillna(0)).all()


# --- suppression ------------------------------------------------------------------------------------

def test_small_gap_counts_are_hidden_from_the_public_and_cannot_be_worked_out(site):
    exact = district_figures(site.store, STAFF, max_small=HIGH).set_index("district_code")
    shown = district_figures(site.store, PUBLIC, max_small=HIGH).set_index("district_code")
    hidden_any = 0
    for kind in ANALYSED:
        count, rate = gap_column(kind), gap_rate_column(kind)
        for code in exact.index:
            n, s = exact.loc[code, count], shown.loc[code, count]
            if 1 <= n <= HIGH:  # primary
                assert s == SUPPRESSED, (kind, code, n)
            if s == SUPPRESSED or shown.loc[code, "support_needers"] == SUPPRESSED:
                assert shown.loc[code, rate] is None, (kind, code)  # a rate would give it back
            else:
                assert s == n and shown.loc[code, rate] == pytest.approx(exact.loc[code, rate])
        hidden = (shown[count] == SUPPRESSED).sum()
        hidden_any += hidden
        # the city's count of every kind is public (its rate is on every karte): one hidden
        # district alone would be the city's count minus the others
        assert hidden != 1, kind
    assert hidden_any > 0, "the threshold should hide some of the demo's gap counts"
    # a district member sees their own district exactly, the others as the public does
    member = district_figures(site.store, MEMBER, max_small=HIGH).set_index("district_code")
    for column in GAP_COLUMNS:
        assert member.loc[fx.OWN, column] == exact.loc[fx.OWN, column]
        others = [c for c in exact.index if c != fx.OWN]
        assert member.loc[others, column].tolist() == shown.loc[others, column].tolist()


def test_the_public_page_shows_hidden_figures_as_suppressed(strict, site):
    exact = district_figures(site.store, STAFF, max_small=HIGH).set_index("district_name")
    shown = district_figures(site.store, PUBLIC, max_small=HIGH).set_index("district_name")
    kind = max(ANALYSED, key=lambda k: (shown[gap_column(k)] == SUPPRESSED).sum())
    key = next(k for k, spec in MEASURES.items() if spec.gap == kind)
    page = strict.browser("anonymous").get("/", params={"measure": key}).text
    cells = _cells(page)
    hidden = [n for n in shown.index if shown.loc[n, gap_column(kind)] == SUPPRESSED]
    assert hidden
    for name in hidden:
        assert cells[name][0] == SUPPRESSED, name
        exact_text = f"{exact.loc[name, gap_rate_column(kind)]:.1%}"
        assert exact_text not in _tooltip_of(page, name)
    legend = _legend(page)
    assert f"秘匿・データなし（{len(hidden) + _no_figure(shown, kind, hidden)}地区）" in legend
    # the any-gap column follows at_risk's suppression
    for name in shown.index:
        if shown.loc[name, "at_risk"] == SUPPRESSED:
            assert cells[name][1] == SUPPRESSED


def test_the_city_map_is_kept_per_audience(strict):
    """A coordinator's exact map is never served to a district member, nor the member's to the
    public: the page's memo is keyed by the suppression audience."""
    coordinator = strict.browser("coordinator").get("/", params={"measure": "gap_supporter_overloaded"}).text
    member = strict.browser("member").get("/", params={"measure": "gap_supporter_overloaded"}).text
    public = strict.browser("anonymous").get("/", params={"measure": "gap_supporter_overloaded"}).text
    assert SUPPRESSED not in "".join(c[0] for c in _cells(coordinator).values())
    shown = district_figures(strict.store, MEMBER, max_small=HIGH).set_index("district_name")
    hidden = [n for n in shown.index if shown.loc[n, gap_column("supporter_overloaded")] == SUPPRESSED]
    assert hidden
    member_cells, public_cells = _cells(member), _cells(public)
    assert all(member_cells[n][0] == SUPPRESSED for n in hidden)
    own = shown.index[shown["district_code"] == fx.OWN][0] if "district_code" in shown else None
    if own is not None and public_cells[own][0] == SUPPRESSED:
        assert member_cells[own][0] != SUPPRESSED  # their own district exactly


def _no_figure(shown: pd.DataFrame, kind: str, hidden: list[str]) -> int:
    rate = shown[gap_rate_column(kind)]
    return int(sum(1 for name, v in rate.items() if name not in hidden and (v is None or v != v)))


def _tooltip_of(page: str, name: str) -> str:
    tips = [htmllib.unescape(json.loads(f'"{t}"')) for t in re.findall(r'"tip": "((?:[^"\\]|\\.)*)"', page)]
    return next(t for t in tips if f"<b>地区</b> {name}" in t)


# --- both stores -------------------------------------------------------------------------------------

@pytest.mark.postgis
def test_gap_columns_are_the_same_on_postgis(pg_store, demo):
    from karte.store import open_store
    from karte.store.cli import import_store

    import_store(demo[1] / "karte.gpkg", pg_store)
    snapshot.clear()
    try:
        gpkg = open_store(demo[1] / "karte.gpkg")
        for access in (STAFF, PUBLIC):
            a = district_figures(gpkg, access, max_small=HIGH).set_index("district_code").sort_index()
            b = district_figures(pg_store, access, max_small=HIGH).set_index("district_code").sort_index()
            columns = ["support_needers", "at_risk", *GAP_COLUMNS]
            for column in columns:
                left, right = _plain(a[column]), _plain(b[column])
                assert [v is None for v in left] == [v is None for v in right], column
                assert [v for v in left if v is not None] == pytest.approx(
                    [v for v in right if v is not None]), column
    finally:
        snapshot.clear()



def _plain(values) -> list:
    """Numbers as floats, missing as None, ``SUPPRESSED`` as -1 (compared like a number)."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append(None)
        else:
            out.append(-1.0 if v == SUPPRESSED else float(v))
    return out
