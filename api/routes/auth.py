"""Login and logout (browser sessions), bearer tokens for API clients, who am I."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from api import auth
from api.deps import AccessDep, UsersDep, check_csrf, csrf_token
from api.errors import ApiError
from karte.domain.access import LEVEL_JA
from karte.users import UserFile

router = APIRouter(tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Me(BaseModel):
    user: str
    level: str
    level_ja: str
    district: str | None
    logged_in: bool


def _safe_next(target: str | None) -> str:
    """Only a local path (no scheme, no host: no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse, include_in_schema=False, name="login_form")
def login_form(request: Request, next: str | None = None, error: str | None = None):
    return request.app.state.templates.TemplateResponse(
        request, "login.html",
        {"csrf": csrf_token(request), "next": _safe_next(next), "error": error == "1",
         "user": None, "title": "ログイン", "path": "/login", "outreach": False, "map": None})


@router.post("/login", include_in_schema=False, name="login")
def login_submit(
    request: Request,
    users: UsersDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=512)] = "/",
):
    check_csrf(request, csrf)
    user = _verify(request, users, username, password)
    if user is None:
        target = f"/login?error=1&next={quote(_safe_next(next), safe='/')}"
        return RedirectResponse(target, status_code=303)
    auth.login(request, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False, name="logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=256)]):
    check_csrf(request, csrf)
    auth.logout(request)
    return RedirectResponse("/", status_code=303)


@router.post("/api/token", response_model=Token, name="token",
             summary="Bearer トークンを得る (user name and password as form fields)",
             responses={401: {"description": "利用者名かパスワードが違います"},
                        429: {"description": "失敗が続いたため一時的に受け付けません"}})
def token(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    users: UsersDep,
) -> Token:
    """OAuth2-style password grant: ``username`` and ``password`` form fields; answer
    ``{"access_token": ..., "token_type": "bearer", "expires_in": seconds}``. Send it as
    ``Authorization: Bearer <token>``; ``POST /api/logout`` with it ends it. Ten wrong passwords
    for one name from one client within 15 minutes: 429 until the window has passed; after ten
    wrong passwords for one name from anywhere, each further try waits longer (up to a minute).
    The token ends with a password change, the user's removal or a change of their level,
    district or municipality."""
    user = _verify(request, users, username, password)
    if user is None:
        raise ApiError(401, "利用者名かパスワードが違います", headers={"WWW-Authenticate": "Bearer"})
    hours = request.app.state.settings.token_hours
    return Token(access_token=auth.issue_token(request, user), expires_in=int(hours * 3600))


def _verify(request: Request, users: UserFile, username: str, password: str):
    """The user if the password is right; a 429 while this client or name must wait (the
    throttle) or while every password check is busy (the gate)."""
    try:
        return auth.verify_password(request, username, password)
    except auth.Throttled as exc:
        wait = exc.wait
        when = f"{wait} 秒" if wait < 120 else f"{wait // 60 + 1} 分ほど"
        raise ApiError(429, f"ログインの失敗が続いたため、{when}待ってからお試しください",
                       headers={"Retry-After": str(wait)}) from None
    except auth.Busy:
        raise ApiError(429, "ログインが混み合っています。少し待ってからお試しください",
                       headers={"Retry-After": "1"}) from None


@router.post("/api/logout", status_code=204, name="token_logout", summary="Bearer トークンを終了する",
             responses={401: {"description": "トークンがありません"}})
def token_logout(request: Request) -> Response:
    """End the bearer token sent in ``Authorization: Bearer <token>`` (its copies stop working)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or not auth.revoke_token(request, token.strip()):
        raise ApiError(401, "終了できるトークンがありません", headers={"WWW-Authenticate": "Bearer"})
    return Response(status_code=204)


@router.get("/api/me", response_model=Me, name="me", summary="いまの利用者と権限")
def me(access: AccessDep) -> Me:
    return Me(user=access.user, level=str(access.level), level_ja=LEVEL_JA[access.level],
              district=access.district, logged_in=access.user != "anonymous")
