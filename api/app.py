"""The web app: ``create_app()`` builds it (uvicorn: ``uvicorn --factory api.app:create_app``).

What it holds: the store (opened once), the web settings (:class:`api.deps.WebSettings`), the
users file, the server-side sessions (:class:`karte.users.Sessions`, in the store), the login
throttle and the Argon2 gate (:mod:`api.auth`), the signing key, Starlette's signed cookie (the
session token and the CSRF token), the one error format (:mod:`api.errors`), and the routers:
auth, the JSON/GeoJSON/CSV/PDF API, OGC API - Features, the API reference page, and the Japanese
HTML pages. Leaflet and the other map assets are served from the package (``/static``), never
from a CDN; the OpenAPI reference page (``/api/docs``) is rendered without Swagger UI's CDN scripts.

Every answer passes :class:`SecurityHeaders`: ``Content-Security-Policy`` (scripts only from the
app itself or carrying this answer's nonce, no plug-ins, no framing by other sites),
``X-Content-Type-Options``, ``Referrer-Policy``, ``X-Frame-Options``, and ``Cache-Control:
no-store`` on everything but the static files and the build-versioned map scripts (``/maps/``,
whose route says how long they keep; ``private, no-store`` for a logged-in user). The
nonce reaches the pages without their templates naming it: the template loader adds it to every
``<script`` tag written in a template file (:class:`ScriptNonces`), and ``base.html`` adds it to
folium's own inline scripts (the ``nonced`` filter); a script that arrives in data (escaped, so
never a tag) gets none. Requests for another host than ``KARTE_ALLOWED_HOSTS`` are refused (400)
before any route runs, so no forged ``Host`` reaches a link.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import logging
import re
import secrets
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import jinja2
import orjson
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2.ext import Extension
from markupsafe import Markup
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from api import errors
from api.auth import LoginGate, LoginThrottle, MemoryLedger, StoreLedger
from api.deps import WebSettings, allowed_hosts, web_settings
from api.routes import (
    apidocs,
    auth,
    care,
    copies,
    districts,
    drills,
    history,
    ogc,
    outreach,
    pages,
    supporters,
    tiles,
)
from karte.render.webmap import Basemap
from karte.services import drills as drill_records
from karte.settings import Settings
from karte.snapshot import current, municipalities
from karte.store import open_store
from karte.store.base import Store
from karte.store.scoped import scoped
from karte.users import Sessions, UserFile, users_file

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
        # (SQLite, zlib), which stretches every request (WebSettings.threads: measured)
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
    app.state.sessions = Sessions(store, app.state.users)
    # the drill records' entry point the hand-out ledger's scan page hands paper marks to
    # (api.routes.copies: open_drills, record_paper_marks)
    app.state.drill_records = drill_records
    app.state.secret_key = settings.secret_key or secrets.token_urlsafe(32)
    app.state.templates = _templates()
    app.state.login_throttle = LoginThrottle(
        app.state.secret_key, ledger=StoreLedger(store) if settings.shared_throttle else MemoryLedger())
    app.state.login_gate = LoginGate(settings.login_concurrency)
    # the cookie carries the session token (the session itself is in the store) and the CSRF token
    app.add_middleware(SessionMiddleware, secret_key=app.state.secret_key, session_cookie="karte_session",
                       max_age=int(settings.session_hours * 3600), same_site="lax",
                       https_only=settings.https_only)
    # pages and GeoJSON are text with much repetition: gzip sends the city page as ~39 kB, not 214 kB
    # level 4: a 98 kB page in 0.62 ms and 16.3 kB; 6 took 0.91 ms for 15.3 kB, 9 twice that for 1% less
    app.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=4)
    errors.install(app)
    app.add_middleware(SecurityHeaders, policy=content_security_policy(settings, app.state.templates))
    app.add_middleware(errors.CatchAll, debug=settings.debug)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings))

    for routes in (auth, districts, ogc, tiles, apidocs, pages, outreach, history, care, supporters, drills,
                   copies):
        app.include_router(routes.router)
    if STATIC.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# --- templates and the Content-Security-Policy --------------------------------------------------------

#: A ``<script ...>`` start tag (its attributes in group 1).
_SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)
_TYPE = re.compile(r"""\btype\s*=\s*["']?([^"'\s>]*)""", re.IGNORECASE)
_CODE_TYPES = {"", "module", "text/javascript", "application/javascript", "text/ecmascript",
               "application/ecmascript"}


def _with_nonce(html: str, nonce: str) -> str:
    """``html`` with ``nonce`` on every script start tag that runs code and has none yet (data
    blocks such as ``type="application/json"`` are never run and stay as they are)."""
    def one(m: re.Match) -> str:
        attrs = m.group(1)
        kind = _TYPE.search(attrs)
        data = kind is not None and kind.group(1).lower() not in _CODE_TYPES
        if data or re.search(r"\bnonce\s*=", attrs, re.IGNORECASE):
            return m.group(0)
        return f'<script nonce="{nonce}"{attrs}>'

    return _SCRIPT_TAG.sub(one, html)
#: Inline event handlers in the template files (``onchange="this.form.submit()"``).
_HANDLER = re.compile(r'\son[a-z]+\s*=\s*"([^"]*)"', re.IGNORECASE)


class ScriptNonces(Extension):
    """Give every ``<script`` tag written in a template file this answer's CSP nonce, as the
    template is loaded (its source, not what it renders: a value inserted at render time is
    escaped and never a tag, and if it were it would get no nonce)."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return _with_nonce(source, "{{ csp_nonce() }}")


@jinja2.pass_context
def _csp_nonce(context) -> str:
    request = context.get("request")
    state = getattr(request, "scope", {}).get("state", {}) if request is not None else {}
    return state.get("csp_nonce", "")


def _nonced(html, nonce: str) -> Markup:
    """Trusted HTML (folium's map header) with the nonce on its inline scripts."""
    return Markup(_with_nonce(str(html or ""), nonce))


def _json_text(value, **_) -> str:
    """``tojson``'s encoder: numpy numbers as numbers (as the json module writes a numpy float),
    NaN as null (the json module's NaN is no JSON: the browser's JSON.parse refuses it)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _templates() -> Jinja2Templates:
    # the templates ship with the code: no stat() of every template file on every page
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             extensions=[ScriptNonces], auto_reload=False)
    env.globals["csp_nonce"] = _csp_nonce
    env.filters["nonced"] = _nonced
    # JSON in pages (the personal map layers) by orjson: compact, UTF-8 letters rather than six-byte
    # \u escapes, in a tenth of the json module's time; Jinja's tojson still escapes <, >, & and '
    # so nothing can close the <script> it sits in
    env.policies["json.dumps_function"] = _json_text
    env.policies["json.dumps_kwargs"] = {}
    return Jinja2Templates(env=env)


def handler_hashes(templates: Jinja2Templates) -> list[str]:
    """CSP hashes of the inline event handlers the template files hold (``'unsafe-hashes'``
    allows exactly these texts, nothing else inline)."""
    found = set()
    for name in templates.env.list_templates(extensions=["html"]):
        source = templates.env.loader.get_source(templates.env, name)[0]
        found.update(m.group(1) for m in _HANDLER.finditer(source))
    return sorted("'sha256-" + base64.b64encode(hashlib.sha256(h.encode()).digest()).decode() + "'"
                  for h in found)


def content_security_policy(settings: WebSettings, templates: Jinja2Templates) -> str:
    """The policy, with ``{nonce}`` standing for each answer's nonce. Images from the app, from
    ``data:`` URLs (Leaflet's) and from the basemap's tile server; styles may be inline (folium
    and Leaflet set them; a style cannot run code); scripts only from the app or with the nonce."""
    tiles = Basemap.from_settings(settings).url
    origin = ""
    if tiles:
        parts = urlsplit(tiles.replace("{s}", "a"))
        origin = f" {parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") else ""
        if "{s}" in tiles:  # Leaflet's subdomains
            origin = " " + " ".join(f"{parts.scheme}://{urlsplit(tiles.replace('{s}', x)).netloc}"
                                    for x in "abc")
    hashes = handler_hashes(templates)
    script = "script-src 'self' 'nonce-{nonce}'" + (" 'unsafe-hashes' " + " ".join(hashes) if hashes else "")
    return "; ".join([
        "default-src 'self'", script, "style-src 'self' 'unsafe-inline'", f"img-src 'self' data:{origin}",
        "font-src 'self' data:", "connect-src 'self'", "object-src 'none'", "base-uri 'self'",
        "form-action 'self'", "frame-ancestors 'self'"])


class SecurityHeaders:
    """A nonce per answer (``request.state.csp_nonce``) and the headers every answer carries (see
    the module docstring). Pure ASGI: streaming answers pass untouched."""

    def __init__(self, app, *, policy: str):
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        path = scope.get("path", "")
        static = path.startswith("/static/")
        versioned = path.startswith("/maps/")  # a build's map scripts: their routes say how long to keep
        headers = dict(scope.get("headers") or [])
        personal = b"authorization" in headers or b"karte_session=" in headers.get(b"cookie", b"")
        extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                 (b"x-frame-options", b"SAMEORIGIN"),
                 (b"content-security-policy", self.policy.replace("{nonce}", nonce).encode())]
        if static:
            extra.append((b"cache-control", b"public, max-age=3600"))
        else:
            extra.append((b"vary", b"Authorization, Cookie"))
            if not versioned:
                extra.append((b"cache-control", b"private, no-store" if personal else b"no-store"))
        names = {name for name, _ in extra}

        async def sending(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + extra
            await send(message)

        await self.app(scope, receive, sending)


def _warm(store: Store) -> None:
    """Load the build snapshot before the first request asks, then move every object alive now
    (the snapshot's frames, the modules) out of the garbage collector's reach (``gc.freeze``):
    a full collection otherwise walks those few hundred thousand objects again, stopping every
    request for about 50–100 ms a few times a minute under load. Frozen objects are still freed
    by reference counting; only cycles among them stay until the process ends."""
    try:
        if store.exists():  # a store of several municipalities: the one the pages open on
            names = municipalities(store)
            snap = current(scoped(store, next(iter(names)) if len(names) > 1 else None))
            snap.coverage()
            snap.gaps_at_hand(persons=True)  # the first personal page would analyse every person
    except Exception as exc:  # a cold cache is no failure: the first request computes it
        log.warning("warm-up skipped: %s", type(exc).__name__)
    gc.collect()
    gc.freeze()


__all__ = ["WebSettings", "create_app"]
