"""計画・指標 in a real browser (issue 12): headless Debian Chromium through Playwright, offline.

The charts are inline SVG drawn on the server (nothing from a CDN; the browser may reach only the
local server): each has a text alternative and a table; the plan table shows its marks with the
legend; a coordinator edits a cell through the page; the layout holds on a tablet held upright.
"""

from __future__ import annotations

from pathlib import Path

import api_fixtures as fx
import browser_fixtures as bx
import pytest
from api_fixtures import OWN

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("history-browser")
    web = fx.make_api(fx.copy_demo(demo, folder), folder, basemap="none")
    with bx.serving(web.app) as base:
        yield base, web


@pytest.fixture(scope="module")
def browser():
    with bx.chromium() as b:
        yield b


def _page(browser, base: str, *, width: int = 1280, height: int = 900):
    context = bx.local_context(browser, base, viewport={"width": width, "height": height})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, context.blocked, errors


def _shot(page, tmp_path: Path, name: str) -> None:
    bx.shot(page, tmp_path, name, full=True)


def test_the_plan_page_draws_accessible_charts_and_the_marked_table(browser, server, tmp_path):
    base, _ = server
    context, page, blocked, errors = _page(browser, base)
    page.goto(f"{base}/plan")
    charts = page.locator("section.indicator svg[role=img]")
    assert charts.count() == 6
    first = charts.first
    labelled = first.get_attribute("aria-labelledby").split()
    assert (
        page.locator(f"[id='{labelled[0]}']").text_content()
        and page.locator(f"[id='{labelled[1]}']").count() == 1
    )
    assert first.locator("polyline").count() >= 1 and first.locator("circle").count() >= 2
    box = first.bounding_box()
    assert box["width"] > 200 and box["height"] > 80
    page.locator("section.indicator details summary").first.click()
    assert page.locator("section.indicator table").first.is_visible()
    assert page.locator("table.plan tbody tr").count() > 20
    assert "★" in page.locator("table.plan").inner_text()
    assert page.locator("ul.legend li").count() == 8
    _shot(page, tmp_path, "history_plan_desktop")
    assert not blocked and not errors, (blocked, errors)
    context.close()


def test_a_coordinator_edits_a_cell_through_the_page(browser, server, tmp_path):
    base, web = server
    context, page, _, errors = _page(browser, base)
    page.goto(f"{base}/login?next=/plan")
    page.fill("#username", "coordinator")
    page.fill("#password", fx.PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url(f"{base}/plan")
    page.locator("table.plan td.cell a").first.click()
    page.wait_for_selector("#mark-editor input[name=marks]")
    page.fill("#mark-editor input[name=marks]", "◎")
    page.locator("#mark-editor button[type=submit]").click()
    page.wait_for_selector("p.notice.ok")
    assert "保存しました" in page.locator("p.notice.ok").inner_text()
    marks = web.store.read_full("plan_marks")
    assert (marks["marks"] == "◎").sum() >= 1 and "coordinator" in set(marks["updated_by"])
    assert not errors, errors
    context.close()


@pytest.mark.parametrize("url", ["/plan", f"/districts/{OWN}/plan", f"/districts/{OWN}"])
def test_the_pages_hold_on_a_tablet(browser, server, tmp_path, url):
    base, _ = server
    context, page, blocked, errors = _page(browser, base, width=800, height=1200)
    page.goto(base + url)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 800 + 1, f"{url}: the page scrolls sideways ({width}px)"
    for chart in page.locator("svg.chart").all()[:4]:
        box = chart.bounding_box()
        assert box is None or box["x"] + box["width"] <= 800
    _shot(page, tmp_path, "history_tablet_" + url.strip("/").replace("/", "_"))
    assert not blocked and not errors, (blocked, errors)
    context.close()
