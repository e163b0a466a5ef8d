"""The snow season (積雪期): ``karte.analysis.current_params`` by the date and ``KARTE_WINTER``, the
note pages and sheets print, and the winter setting changing the coverage figures of the page
and the sheet (the build snapshot is recomputed when the season turns)."""

from __future__ import annotations

import datetime as dt

import pytest
from api_fixtures import demo_store, pdf_text

from gis.params import AnalysisParams
from karte import snapshot
from karte.analysis import current_params, season, season_note
from karte.domain.access import PUBLIC
from karte.domain.errors import InputError
from karte.services.kartes import karte_view
from karte.services.sheets import district_sheet_pdf
from karte.settings import Settings


def settings(**values) -> Settings:
    return Settings(**{"winter_start": "12-01", "winter_end": "03-31", "winter": "auto", **values})


@pytest.mark.parametrize(("day", "winter"), [
    (dt.date(2026, 11, 30), False), (dt.date(2026, 12, 1), True), (dt.date(2027, 1, 15), True),
    (dt.date(2027, 3, 31), True), (dt.date(2027, 4, 1), False), (dt.date(2027, 7, 1), False),
])
def test_the_season_by_date_runs_over_the_new_year(day, winter):
    assert season(day, settings=settings()).winter is winter
    assert current_params(day, settings=settings()) == AnalysisParams(winter=winter)


def test_a_season_within_one_year_and_the_forced_settings():
    inside = settings(winter_start="01-10", winter_end="02-20")
    assert season(dt.date(2027, 2, 1), settings=inside).winter
    assert not season(dt.date(2026, 12, 20), settings=inside).winter
    on = season(dt.date(2026, 7, 1), settings=settings(winter="on"))
    assert on.winter and on.forced and "KARTE_WINTER=on" in on.why_ja
    off = season(dt.date(2027, 1, 15), settings=settings(winter="OFF"))
    assert not off.winter and off.forced


@pytest.mark.parametrize("bad", [{"winter": "maybe"}, {"winter_start": "13-01"}, {"winter_end": "02-30"},
                                 {"winter_start": "december"}])
def test_a_misconfigured_season_is_said(bad):
    with pytest.raises(InputError, match="KARTE_WINTER"):
        season(dt.date(2027, 1, 1), settings=settings(**bad))


def test_the_note_says_which_distances_are_used():
    winter = season(dt.date(2026, 12, 15), settings=settings())
    note = season_note(current_params(dt.date(2026, 12, 15), settings=settings()), winter)
    assert note["winter"] and note["salon_walk_m"] == 350 and note["normal_salon_walk_m"] == 500
    assert note["text"].startswith("冬期（積雪期）の徒歩圏で集計しています: サロンまで 350 m（通常 500 m）")
    assert "12月15日は積雪期（12月1日〜3月31日）の期間内" in note["text"]
    summer = season_note(AnalysisParams())
    assert summer["label"] == "通常期" and "500 m" in summer["text"] and not summer["why"]


def test_the_winter_setting_changes_the_page_and_the_sheet(demo, monkeypatch):
    """The district page's karte and the printed sheet take their figures from the build snapshot,
    computed with ``current_params()``: KARTE_WINTER=on shrinks the salon walk to 350 m, which
    leaves more elderly people uncovered, and the sheet prints the distance it used."""
    store = demo_store(demo)
    figures = {}
    for mode in ("off", "on"):
        monkeypatch.setenv("KARTE_WINTER", mode)
        snap = snapshot.current(store)
        assert snap.params.winter is (mode == "on")
        karte = karte_view(store, "S05", PUBLIC, include_personal=False)
        text = pdf_text(district_sheet_pdf(store, "S05"))
        city = snap.coverage()[1]["uncovered_elderly"]
        figures[mode] = (karte["coverage"]["uncovered_elderly"], city, text)
    summer, winter = figures["off"], figures["on"]
    assert winter[0] > summer[0]          # the district page's uncovered elderly (S05)
    assert winter[1] > summer[1]          # the city's
    assert "徒歩 350m 以内" in winter[2] and "徒歩 500m 以内" in summer[2]
