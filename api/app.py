"""The web app: ``create_app()`` builds it (uvicorn: ``uvicorn --factory api.app:create_app``).

What it holds: the store (opened once), the web settings (:class:`api.deps.WebSettings`), the
users file, the signing key, Starlette's signed-cookie sessions, the one error format
(:mod:`api.errors`), and the routers: auth, the JSON/GeoJSON/CSV/PDF API, OGC API - Features,
the API reference page, and the Japanese HTML pages (``api.routes.pages``, when present).
Leaflet and the other map assets are served from the package (``/static``), never from a CDN;
the OpenAPI reference page (``/api/docs``) is rendered here without Swagger UI's CDN scripts.
"""

from __future__ import annotations

import logging
import secrets
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware

from api import errors
from api.auth import LoginThrottle
from api.deps import WebSettings, web_settings
from api.routes import apidocs, auth, care, copies, districts, drills, history, ogc, pages, supporters, tiles
from karte.settings import Settings
from karte.snapshot import current
from karte.store import open_store
from karte.store.base import Store
from karte.users import UserFile, users_file

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "karte" / "render" / "static"
VERSION = "1.0"

log = logging.getLogger("karte.api")

DESCRIPTION = """
地区カルテ（青森市の地区社協ごとのカルテ）の API です。

* JSON: 地区の一覧、地区カルテ（`/api/districts/{code}`）
* GeoJSON: 地区ごとのレイヤ（`/api/districts/{code}/layers/{layer}.geojson`）、
  市全体（`/api/layers/{layer}.geojson`）
* CSV: カルテの表（`/api/districts/{code}/tables/{table}.csv`）
* PDF: 地区シート（`/districts/{code}/sheet.pdf`）
* OGC API - Features: `/ogc`（QGIS や GDAL の OAPIF ドライバで読めます）

公開（ログインなし）では集計値だけを返します。
1 人以上 KARTE_SUPPRESS_MAX（既定 2）人以下の人数は「秘匿」と表示します。
個人情報（要支援者名簿・協力者の連絡先）は権限のある利用者だけに、閲覧記録を残して返します。
ログイン: ブラウザは `/login`、API は `POST /api/token` で得た Bearer トークン。
"""


def create_app(settings: Settings | None = None, *, store: Store | None = None,
               warm: bool = True) -> FastAPI:
    """The karte web app.

    Parameters
    ----------
    settings
        Settings (default: from the environment, ``KARTE_*``); plain :class:`karte.settings.Settings`
        are completed to :class:`api.deps.WebSettings` from the environment.
    store
        The store to serve (default: ``open_store`` of the settings: ``KARTE_DATABASE_URL`` or
        the workspace GeoPackage).
    warm
        Run the coverage analysis in the background at start-up, so the first map is quick.
    """
    settings = web_settings(settings)
    if store is None:
        store = open_store(None, settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # routes are plain functions run on a thread pool; with 40 threads (anyio's default) all
        # busy in one process they queue for the GIL behind each other's many short releases
        # (SQLite, zlib), which stretches every request; a few threads keep both cores busy
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        if warm:
            threading.Thread(target=_warm, args=(store,), daemon=True, name="karte-warm").start()
        yield
        close = getattr(store, "close", None)
        if callable(close):
            close()

    app = FastAPI(title="地区カルテ API (karte)", version=VERSION, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json", lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.users = UserFile(settings.users_file or users_file(settings))
    app.state.secret_key = settings.secret_key or secrets.token_urlsafe(32)
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    # JSON in pages (the personal map layers) as UTF-8 letters, not six-byte \u escapes; Jinja
    # still escapes <, >, & and ' so nothing can close the <script> it sits in
    app.state.templates.env.policies["json.dumps_kwargs"] = {"ensure_ascii": False}
    app.state.login_throttle = LoginThrottle()
    app.add_middleware(SessionMiddleware, secret_key=app.state.secret_key, session_cookie="karte_session",
                       max_age=int(settings.session_hours * 3600), same_site="lax",
                       https_only=settings.https_only)
    # pages and GeoJSON are text with much repetition: gzip sends the city page as ~39 kB, not 214 kB
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)  # 9 costs 2x the CPU for 1% less
    errors.install(app)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        if request.headers.get("authorization") or "karte_session" in request.cookies:
            response.headers["Cache-Control"] = "private, no-store"
        return response

    for routes in (auth, districts, ogc, tiles, apidocs, pages, history, care, supporters, drills, copies):
        app.include_router(routes.router)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _warm(store: Store) -> None:
    try:
        if store.exists():
            current(store).coverage()
    except Exception as exc:  # a cold cache is no failure: the first request computes it
        log.warning("warm-up skipped: %s", type(exc).__name__)


__all__ = ["WebSettings", "create_app"]
