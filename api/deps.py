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
from karte.settings import Settings
from karte.store.base import Store
from karte.users import User, UserFile


class WebSettings(Settings):
    """The web app's settings on top of :class:`karte.settings.Settings` (``KARTE_*`` variables)."""

    #: Key that signs session cookies and bearer tokens (KARTE_SECRET_KEY). Empty: a random key
    #: per server start (everyone is logged out on restart). Set it when several workers serve.
    secret_key: str = ""
    #: Users file (KARTE_USERS_FILE); default WORKSPACE/users.json.
    users_file: Path | None = None
    #: Send the session cookie over HTTPS only (KARTE_HTTPS_ONLY); set it behind TLS.
    https_only: bool = False
    #: Threads that run the routes in one worker process (KARTE_THREADS).
    threads: int = 4
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


def get_store(request: Request) -> Store:
    """The app's store (``app.state.store``), opened once in :func:`api.app.create_app`."""
    return request.app.state.store


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
    :data:`karte.domain.access.PUBLIC` (level public) when nobody is logged in."""
    user = current_user(request)
    route = route_name(request)
    if user is None:
        return Access(user=PUBLIC.user, level=Level.PUBLIC, route=route)
    return user.access(route)


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
