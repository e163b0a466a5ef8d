"""Screenshots of every page, as each kind of user sees it, for docs/img/pages/.

    .venv/bin/python scripts/screenshots.py [--store PATH.gpkg] [--out docs/img/pages]

Builds the demo into a temporary folder (unless ``--store`` names a GeoPackage; it is copied, not
changed), serves the web app on a free localhost port with one user per access level, opens each
page of the site menu and of a district page in headless Debian Chromium (offline: only the local
server is reachable, so maps show no basemap tiles) at desktop (1280 px) and tablet (768 px) width,
and writes full-page PNGs and an index (``README.md``) into ``--out``. Run it after changing a page
and commit the result; docs/web.md links the index.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SIZES = {"desktop": {"width": 1280, "height": 860}, "tablet": {"width": 768, "height": 1024}}
PASSWORD = "screenshots-only-1"
DISTRICT = "S05"
#: (user name, access level, district, Japanese description, the pages shot: None = every page
#: the user is offered). The coordinator sees every page; the others the pages that differ for them.
USERS = (
    ("anonymous", None, None, "ログインしていない人", ("/", f"/districts/{DISTRICT}")),
    ("member", "district_member", DISTRICT, f"地区社協の役員（{DISTRICT}）", (f"/districts/{DISTRICT}",)),
    ("coordinator", "coordinator", None, "コーディネーター（CSW）", None),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="GeoPackage to show (copied; default: build the demo)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "pages")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="karte-shots-"))
    try:
        store = _store(args.store, folder)
        app = _app(store, folder)
        args.out.mkdir(parents=True, exist_ok=True)
        for old in args.out.glob("*.png"):
            old.unlink()
        with _serving(app) as base:
            rows = _shoot(base, args.out)
        _index(args.out, rows)
        print(f"{len(rows)} screenshots in {args.out}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _store(given: Path | None, folder: Path):
    from karte.build import Inputs, build_demo
    from karte.settings import REPO_DATA
    from karte.store import GeoPackageStore

    path = folder / "karte.gpkg"
    if given is not None:
        shutil.copy(given, path)
        return GeoPackageStore(path)
    store = GeoPackageStore(path)
    build_demo(store, Inputs.shipped(REPO_DATA), seed=2026)
    return store


def _app(store, folder: Path):
    from api.app import create_app
    from api.deps import WebSettings
    from karte.users import UserFile

    users = UserFile(folder / "users.json")
    for name, level, district, _, _ in USERS:
        if level is not None:
            users.add(name, PASSWORD, level=level, district=district)
    web = WebSettings(workspace=folder, users_file=folder / "users.json",
                      secret_key="screenshots-only-" + "x" * 24, basemap="none")
    return create_app(web, store=store, warm=True)


class _serving:
    """uvicorn in a thread on a free port (a context manager yielding the base URL)."""

    def __init__(self, app):
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))

    def __enter__(self) -> str:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _pages(page, base: str) -> list[tuple[str, str]]:
    """(path, label) of the pages this user is offered: the city page, the menu, one district
    page and its links."""
    found = [("/", "全体図")]
    page.goto(f"{base}/")
    for link in page.locator("nav a").all():
        href, label = link.get_attribute("href") or "", link.inner_text().strip()
        if href.startswith("/") and not href.startswith(("/api", "/docs", "/login", "/logout")) \
                and (href, label) not in found and href != "/":
            found.append((href, label))
    found.append((f"/districts/{DISTRICT}", f"地区のページ（{DISTRICT}）"))
    page.goto(f"{base}/districts/{DISTRICT}")
    for link in page.locator(f"a[href^='/districts/{DISTRICT}/']").all():
        href, label = link.get_attribute("href") or "", link.inner_text().strip()
        if not href.endswith((".pdf", ".csv")) and "?" not in href and all(href != f for f, _ in found):
            found.append((href, label))
    return found


def _shoot(base: str, out: Path) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, level, _, who, only in USERS:
            for size, viewport in SIZES.items():
                context = browser.new_context(viewport=viewport, locale="ja-JP", timezone_id="Asia/Tokyo")
                context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                              else route.abort())
                page = context.new_page()
                if level is not None:
                    page.goto(f"{base}/login")
                    page.fill("#username", name)
                    page.fill("#password", PASSWORD)
                    page.click("button[type=submit]")
                    page.wait_for_load_state("networkidle")
                for path, label in _pages(page, base):
                    if only is not None and path not in only:
                        continue
                    page.goto(f"{base}{path}")
                    page.wait_for_load_state("networkidle")
                    slug = path.strip("/").replace("/", "-") or "city"
                    file = out / f"{name}-{slug}-{size}.png"
                    page.screenshot(path=str(file), full_page=True)
                    _shrink(file)
                    rows.append({"file": file.name, "who": who, "page": label, "path": path, "size": size,
                                 "status": page.title()})
                context.close()
        browser.close()
    return rows


def _shrink(file: Path) -> None:
    """256 colours (Pillow's median cut): a page is flat colours and text, so this keeps it legible
    at about a third of the size."""
    from PIL import Image

    with Image.open(file) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(file, optimize=True)


def _index(out: Path, rows: list[dict]) -> None:
    lines = ["# Screenshots of the pages", "",
             "Made by `scripts/screenshots.py` on the demo store (offline: no basemap tiles). "
             "Desktop: 1280 px wide; tablet: 768 px.", "",
             "| user | page | path | desktop | tablet |", "|---|---|---|---|---|"]
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        seen.setdefault((r["who"], r["path"], r["page"]), {})[r["size"]] = r["file"]
    for (who, path, label), files in seen.items():
        cells = [f"[png]({files[s]})" if s in files else "" for s in SIZES]
        lines.append(f"| {who} | {label} | `{path}` | {' | '.join(cells)} |")
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
