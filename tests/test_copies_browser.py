"""The hand-out ledger in a real browser on a phone-sized page: headless Debian Chromium through
Playwright, offline (every request but the local server's is aborted).

A coordinator opens the scan page, types a copy's number (the camera needs ``BarcodeDetector``,
which Chromium on Linux does not have: the page says so and typing works), and records its
return; the camera path is exercised with a stand-in detector and Chromium's fake camera. A district
member enters the ticks of a paper drill sheet, which reach the drill records (a stand-in for
issue 19's). Screenshots go to the test's tmp folder and to /tmp/shots."""

from __future__ import annotations

from pathlib import Path

import api_fixtures as fx
import browser_fixtures as bx
import pytest
from api_fixtures import OWN
from test_copies import empty_ledger

from karte.domain.access import Access, Level
from karte.domain.copies import State
from karte.services import copies
from karte.services.sheets import district_sheet_pdf

#: A fake camera, so the scan page's permission prompt and stream work headless.
CAMERA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.slow


class FakeDrills:
    def __init__(self):
        self.written = []

    def open_drills(self, store, access, district):
        return [{"drill_id": "DR7", "name": "安否確認訓練 12月", "started_at": "2026-12-01T00:00:00+00:00"}]

    def record_paper_marks(self, store, access, drill_id, marks):
        self.written.append((drill_id, list(marks)))
        return len(marks)


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    """(base URL, Api, {kind: copy id}) of a uvicorn over a private copy of the demo with two copies
    of S05 (a confidential and a drill sheet) printed by the coordinator."""
    folder = tmp_path_factory.mktemp("copies-browser")
    web = fx.make_api(empty_ledger(fx.copy_demo(demo, folder)), folder, basemap="none")
    web.app.state.drill_records = FakeDrills()
    csw = Access("coordinator", Level.COORDINATOR, route="test")
    made = {}
    for edition in ("confidential", "drill"):
        district_sheet_pdf(web.store, OWN, edition=edition, access=csw)
        made[edition] = copies.ledger(web.store, csw)[0].copy_id
    with bx.serving(web.app) as base:
        yield base, web, made


@pytest.fixture(scope="module")
def browser():
    with bx.chromium(*CAMERA) as b:
        yield b


@pytest.fixture
def phone(browser, server):
    """A phone-sized page (touch, 390 x 844) that can reach only the local server."""
    base = server[0]
    context = bx.local_context(browser, base, viewport=PHONE, device_scale_factor=2, is_mobile=True,
                               has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.blocked, page.errors = context.blocked, errors
    yield page
    context.close()


def _shot(page, tmp_path: Path, name: str) -> None:
    bx.shot(page, tmp_path, name, full=True)


def _login(page, base: str, role: str, target: str) -> None:
    bx.login(page, base, role, target)


def _fits(page) -> None:
    """Nothing wider than the phone: no sideways scrolling of the page."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"page is {width}px wide on a {PHONE['width']}px phone"


def test_a_copy_is_returned_by_typing_its_number_on_a_phone(phone, server, tmp_path):
    base, web, made = server
    copy_id = made["confidential"]
    _login(phone, base, "coordinator", "/copies/scan")
    # Linux Chromium has no BarcodeDetector: the page says so, and typing is the way
    assert phone.locator("#scan-start").is_hidden()
    assert "入力してください" in phone.locator("#scan-status").inner_text()
    _fits(phone)
    _shot(phone, tmp_path, "copies-scan-phone")
    phone.fill("#copy-id", copy_id.lower().replace("k", "k "))  # as a hurried person types it
    phone.click("form.typed button[type=submit]")
    phone.wait_for_url(f"**/copies/{copy_id}")
    assert phone.locator("#copy-id").inner_text() == copy_id
    assert "作成済み" in phone.locator("#copy-state").inner_text()
    _fits(phone)
    box = phone.locator("#do-returned").bounding_box()
    assert box["height"] >= 44 and box["width"] >= 200  # a thumb's button
    phone.fill("form.act input[name=person] >> nth=0", "民生委員 山田")
    phone.click("#do-returned")
    phone.wait_for_url(f"**/copies/{copy_id}?done=returned")
    assert "回収済み" in phone.locator("#copy-state").inner_text()
    assert "回収を記録しました" in phone.content() and "民生委員 山田" in phone.content()
    _fits(phone)
    _shot(phone, tmp_path, "copies-returned-phone")
    view = copies.copy_view(web.store, web.access("staff"), copy_id)
    assert view.state is State.RETURNED and view.events[-1]["person"] == "民生委員 山田"
    assert view.events[-1]["recorded_by"] == "coordinator" and view.events[-1]["via"] == "web:copies_event"
    assert phone.errors == [] and phone.blocked == []


def test_the_camera_path_opens_the_copy_it_reads(phone, server, tmp_path):
    """BarcodeDetector stood in by a script that 'reads' the drill copy's number from Chromium's
    fake camera: the page starts the camera, reads, and opens that copy."""
    base, _, made = server
    copy_id = made["drill"]
    phone.context.grant_permissions(["camera"], origin=base)
    phone.add_init_script("""
        window.BarcodeDetector = class {
            constructor(options) { this.formats = options.formats; }
            async detect(source) {
                return source.readyState >= 2 ? [{rawValue: "COPY", format: "qr_code"}] : [];
            }
        };""".replace("COPY", copy_id))
    _login(phone, base, "coordinator", "/copies/scan")
    assert phone.locator("#scan-start").is_visible()
    phone.click("#scan-start")
    phone.wait_for_url(f"**/copies/{copy_id}", timeout=15_000)
    assert phone.locator("#copy-id").inner_text() == copy_id
    assert phone.errors == []


def test_a_member_enters_the_ticks_of_a_paper_drill_sheet(phone, server, tmp_path):
    base, web, made = server
    copy_id = made["drill"]
    _login(phone, base, "member", "/copies/scan")
    phone.fill("#copy-id", copy_id)
    phone.click("form.typed button[type=submit]")
    phone.wait_for_url(f"**/copies/{copy_id}/marks")  # a member goes straight to the ticks
    boxes = phone.locator("input[name=tick_confirmed]")
    assert boxes.count() > 5
    _fits(phone)
    ids = [boxes.nth(i).get_attribute("value") for i in range(3)]
    for i in range(3):
        boxes.nth(i).check()
    phone.locator("input[name=tick_arrived]").nth(0).check()
    _shot(phone, tmp_path, "copies-marks-phone")
    phone.click("form.marks button[type=submit]")
    phone.wait_for_url(f"**/copies/{copy_id}/marks?entered=4")
    assert "4 件を訓練の記録に入力しました" in phone.content()
    [(drill_id, marks)] = web.app.state.drill_records.written
    assert drill_id == "DR7"
    assert sorted((m.person_id, m.tick) for m in marks) == sorted(
        [(p, "confirmed") for p in ids] + [(ids[0], "arrived")])
    assert {m.entered_by for m in marks} == {"member"}
    assert phone.errors == [] and phone.blocked == []
