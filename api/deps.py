"""FastAPI dependencies: the web settings, the store, the acting user's access, CSRF.

Routes take what they need as parameters::

    @router.get("/x")
    def x(store: StoreDep, access: AccessDep): ...

    @router.get("/staff-only")
    def y(access: Annotated[Access, Depends(require_level(Level.CITY_STAFF, Level.COORDINATOR))]): ...

HTML forms: put ``csrf_token(request)`` in a hidden ``csrf`` field, and call
``check_csrf(request, form["csrf"])`` before acting on the POST.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from api.auth import user_from_session, user_from_token
from api.errors import ApiError
from karte.domain.access import PUBLIC, Access, Level
from karte.services import disaster
from karte.settings import Settings
from karte.snapshot import municipalities
from karte.store.base import Store
from karte.store.scoped import scoped
from karte.users import User, UserFile


class WebSettings(Settings):
    """The web app's settings on top of :class:`karte.settings.Settings` (``KARTE_*`` variables)."""

    #: Key that signs session cookies (and keys the login throttle's hashes) (KARTE_SECRET_KEY).
    #: Empty: a random key per start, for the demo only: ``karte serve`` outside the demo refuses
    #: to start without one. Every worker of a deployment needs the same key.
    secret_key: str = ""
    #: Host names the app answers to and builds absolute links (OGC API) with (KARTE_ALLOWED_HOSTS,
    #: comma-separated; ``*.example.jp`` for a domain's hosts). A request naming another Host gets
    #: a 400. Empty: this machine only (localhost, 127.0.0.1, ::1, and ``testserver`` for tests).
    allowed_hosts: str = ""
    #: Write tracebacks to the server log (KARTE_DEBUG). Off: an unexpected error logs its class,
    #: route and request id only, never a message (which could quote data).
    debug: bool = False
    #: Password checks (Argon2id, 64 MiB each) that may run at once; more are answered 429.
    login_concurrency: int = 2
    #: Keep the login throttle in the store (``login_attempts``), shared by every worker process
    #: (KARTE_SHARED_THROTTLE; ``karte serve --workers N`` sets it for N > 1).
    shared_throttle: bool = False
    #: Users file (KARTE_USERS_FILE); default WORKSPACE/users.json.
    users_file: Path | None = None
    #: Send the session cookie over HTTPS only (KARTE_HTTPS_ONLY); set it behind TLS.
    https_only: bool = False
    #: Threads that run the routes in one worker process (KARTE_THREADS). Two: the coordinator's
    #: district page at 16 connections gave 184 req/s with one thread, 155 with two, 144 with
    #: four, 125 with eight (the threads queue for the GIL); two keep pages answered while one
    #: thread prints a sheet or reads an upload. More throughput comes from more worker processes.
    threads: int = 2
    #: Lifetime of a login session and of a bearer token, hours.
    session_hours: float = 12.0
    token_hours: float = 12.0
    #: Basemap of the pages' maps: gsi_pale (GSI 淡色地図) or none.
    basemap: str = "gsi_pale"
    #: Any other XYZ tile server (KARTE_TILE_URL, e.g. a council's own) and its attribution
    #: (KARTE_TILE_ATTRIBUTION); empty: the basemap named above.
    tile_url: str = ""
    tile_attribution: str = ""


def web_settings(settings: Settings | None = None) -> WebSettings:
    """``settings`` as :class:`WebSettings` (the web fields read from the environment)."""
    if isinstance(settings, WebSettings):
        return settings
    if settings is None:
        return WebSettings()
    return WebSettings(**settings.model_dump())


def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


#: The query parameter and the cookie that choose the municipality in view on a store holding
#: several (``?m=02201``; the chooser in the page header sets the cookie).
MUNICIPALITY_PARAM = "m"
MUNICIPALITY_COOKIE = "karte_m"
#: The path parameter of the OGC API's per-municipality landing pages (:mod:`api.routes.ogc`).
MUNICIPALITY_PATH = "municipality"


def get_store(request: Request) -> Store:
    """The app's store (``app.state.store``, opened once in :func:`api.app.create_app`); on a
    store holding several municipalities, the view of the one in view
    (:func:`municipality_in_view`), so every district code a route is given means that
    municipality's district."""
    store = request.app.state.store
    return scoped(store, municipality_in_view(request, current_access(request)))


def municipality_in_view(request: Request, access: Access) -> str | None:
    """The municipality a request shows, on a store holding several (None on a store of one):
    the viewer's own when they belong to one (city staff, coordinators, district members: asking
    for another is a 403); else (the public, the prefecture level) the one asked for by
    ``?m=`` (or the OGC API's ``/ogc/m/{code}``), else the one chosen before (cookie), else
    the first by code. An unknown code is a 404. Put in ``request.state.karte_municipalities``
    (code, names) for the page header."""
    store = request.app.state.store
    names = municipalities(store)
    asked = request.path_params.get(MUNICIPALITY_PATH) or request.query_params.get(MUNICIPALITY_PARAM)
    if asked is not None and names and asked not in names:
        raise ApiError(404, f"市町村コード {asked[:8]} はこのシステムにありません")
    if len(names) <= 1:
        return None
    if access.municipality:
        if asked is not None and asked != access.municipality:
            raise ApiError(403, "所属する市町村のほかは見られません")
        chosen = access.municipality
    else:
        remembered = request.cookies.get(MUNICIPALITY_COOKIE)
        chosen = asked or (remembered if remembered in names else None) or next(iter(names))
    request.state.karte_municipalities = (chosen, names)
    return chosen


def get_users(request: Request) -> UserFile:
    return request.app.state.users


def route_name(request: Request) -> str:
    """``web:<route name>``: the route recorded in the access log."""
    route = request.scope.get("route")
    return f"web:{getattr(route, 'name', None) or request.url.path}"


def current_user(request: Request) -> User | None:
    """The logged-in user: from ``Authorization: Bearer <token>`` (API clients) or the session
    cookie (browsers); None when anonymous. A bad or expired token is a 401, not anonymity."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "Authorization ヘッダは Bearer トークンにしてください",
                           headers={"WWW-Authenticate": "Bearer"})
        user = user_from_token(request, token.strip())
        if user is None:
            raise ApiError(401, "トークンが無効か期限切れです。もう一度ログインしてください",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return user
    return user_from_session(request)


def current_access(request: Request) -> Access:
    """The acting user's :class:`~karte.domain.access.Access` with ``route`` set to this route's name;
    :data:`karte.domain.access.PUBLIC` (level public) when nobody is logged in. Worked out once
    per request (the store and the route's level check both ask)."""
    known = getattr(request.state, "karte_access", None)
    if known is None:
        known = request.state.karte_access = _access(request)
    return known


def _access(request: Request) -> Access:
    user = current_user(request)
    route = route_name(request)
    if user is None:
        return Access(user=PUBLIC.user, level=Level.PUBLIC, route=route)
    # the districts in disaster mode widen a member's view of their own district; every page
    # says so in its banner (base.html)
    store = request.app.state.store
    if user.municipality and len(municipalities(store)) > 1:
        store = scoped(store, user.municipality)
    access = disaster.effective_access(store, user.access(route))
    request.state.karte_disaster = disaster.banner(store, access)
    return access


def require_level(*levels: Level | str):
    """A dependency that returns the :class:`Access` if its level is one of ``levels``; else 401
    (nobody logged in) or 403 (logged in with another level)."""
    wanted = {Level(str(v)) for v in levels}

    def dependency(request: Request) -> Access:
        access = current_access(request)
        if access.level in wanted:
            return access
        if access.user == PUBLIC.user and access.level == Level.PUBLIC:
            raise ApiError(401, "ログインが必要です", headers={"WWW-Authenticate": "Bearer"})
        raise ApiError(403, "この操作をする権限がありません")

    return dependency


def max_small(request: Request) -> int:
    return request.app.state.settings.suppress_max


# --- hosts and absolute links ---------------------------------------------------------------------

#: The hosts of ``KARTE_ALLOWED_HOSTS`` when it is empty: this machine (and Starlette's test client).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]", "testserver")


def allowed_hosts(settings: WebSettings) -> list[str]:
    """The host names the app answers to (``KARTE_ALLOWED_HOSTS``, else :data:`LOCAL_HOSTS`)."""
    hosts = [h.strip().lower() for h in settings.allowed_hosts.split(",") if h.strip()]
    return hosts or list(LOCAL_HOSTS)


def host_allowed(host: str, hosts: list[str]) -> bool:
    """Is ``host`` (without its port) one of ``hosts`` (``*.example.jp`` matches its subdomains)?"""
    host = host.lower()
    return any(h == "*" or h == host or (h.startswith("*.") and host.endswith(h[1:])) for h in hosts)


def public_base_url(request: Request) -> str:
    """The absolute base URL for links in answers (``https://karte.example.jp``, no trailing slash).

    The request's own scheme and ``Host`` when that host is allowed (the app refuses others before
    any route runs); otherwise the first allowed host that is a plain name. Never an unlisted
    ``Host`` header: a forged one must not reach a link a client follows. Route authors (OGC API)
    build ``href`` values on this, not on ``request.base_url``."""
    hosts = allowed_hosts(request.app.state.settings)
    url = request.base_url
    if url.hostname and host_allowed(url.hostname, hosts):
        return str(url).rstrip("/")
    fixed = next((h for h in hosts if "*" not in h), "localhost")
    return f"{url.scheme}://{fixed}"


# --- CSRF (synchroniser token kept in the signed session) ----------------------------------------

def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use); put it in a hidden ``csrf`` form field."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, token: str | None) -> None:
    """Raise a 403 unless ``token`` is this session's CSRF token (compared in constant time)."""
    expected = request.session.get("csrf")
    if not expected or not token or not hmac.compare_digest(str(expected), str(token)):
        raise ApiError(403, "フォームの有効期限が切れたか、正しくない送信です。ページを読み込み直してから"
                            "もう一度お試しください", code="csrf")


# --- annotated shorthands for route signatures ----------------------------------------------------

StoreDep = Annotated[Store, Depends(get_store)]
AccessDep = Annotated[Access, Depends(current_access)]
UsersDep = Annotated[UserFile, Depends(get_users)]
SettingsDep = Annotated[WebSettings, Depends(get_settings)]
MaxSmallDep = Annotated[int, Depends(max_small)]
