"""The API's one error format, and the mapping of karte errors to it (done once, here).

Every error answer, whatever raised it, is JSON of this shape (HTML pages get the same text in a
small Japanese page)::

    {"status": 404, "code": "not_found", "message": "地区 X はありません", "detail": [...]}

``message`` is safe to show to the user: it never holds personal data, a stack trace or a
database message. ``detail`` (optional) lists the invalid request parameters
(``{"loc": [...], "msg": "..."}``) for a 422/400. HTML pages get ``error.html``: the same message
on a styled Japanese page with a way back (the top page; the login form for a 401).

Unexpected exceptions become a 500 with a generic message and the request's id
(``X-Request-ID``, also on the page) in :class:`CatchAll`, a middleware inside Starlette's own
error handler: that handler re-raises what it handles, and uvicorn would then write the whole
traceback (with database messages that may quote data) to the server log. Here the log gets the
exception's class, the route and the request id only, unless ``KARTE_DEBUG`` is on.
"""

from __future__ import annotations

import html
import logging
import secrets
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from karte.domain.errors import KarteError

log = logging.getLogger("karte.api")

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
         413: "too_large", 415: "unsupported_media_type", 422: "invalid_parameter",
         429: "too_many_requests", 500: "server_error", 503: "unavailable"}

TITLE_JA = {400: "リクエストが正しくありません", 401: "ログインが必要です", 403: "権限がありません",
            404: "見つかりません", 405: "この方法では使えません", 409: "競合しました",
            413: "大きすぎます", 422: "パラメータが正しくありません", 429: "しばらくお待ちください",
            500: "サーバーエラー", 503: "利用できません"}
#: What the user can do next, per status (the error page's second paragraph).
HINT_JA = {401: "ログインすると見られます。", 403: "この情報を見る権限がある利用者でログインしてください。",
           404: "アドレスを確かめるか、トップページから探してください。",
           429: "少し時間をおいてからもう一度お試しください。",
           500: "もう一度お試しください。続くときは、下の番号を添えて管理者に連絡してください。",
           503: "しばらくしてからもう一度お試しください。"}


class ApiError(Exception):
    """An error with an HTTP status and a user-safe message (raise it from routes)."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 detail: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.detail = detail
        self.headers = headers


def error_body(status: int, message: str, *, code: str | None = None, detail: list | None = None) -> dict:
    body = {"status": status, "code": code or CODES.get(status, "error"), "message": message}
    if detail:
        body["detail"] = detail
    return body


def status_of(exc: KarteError) -> int:
    """HTTP status of a karte error: the ``status`` its class declares (:mod:`karte.domain.errors`)."""
    return int(exc.status)


def _wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith(("/api", "/ogc")) or path.endswith((".json", ".geojson", ".csv", ".pdf")):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept


def respond(request: Request, status: int, message: str, *, code: str | None = None,
            detail: list | None = None, headers: dict | None = None):
    if _wants_html(request):
        return HTMLResponse(error_page(request, status, message), status_code=status, headers=headers)
    return JSONResponse(error_body(status, message, code=code, detail=detail), status_code=status,
                        headers=headers)


def request_id(request: Request) -> str:
    """This request's id (set by :class:`CatchAll`; shown on error pages and in the log)."""
    return str(request.scope.get("karte_request_id") or "")


def error_page(request: Request, status: int, message: str) -> str:
    """The styled Japanese error page (``error.html`` in the site's frame), or a plain page when
    even that cannot be drawn (the template itself failing must not hide the error)."""
    title = TITLE_JA.get(status, "エラー")
    path = request.url.path
    hint = HINT_JA.get(status, "")
    if hint and hint.rstrip("。") in message:  # the message says it already
        hint = ""
    context = {"status": status, "title": f"{status} {title}", "heading": title, "message": message,
               "hint": hint, "request_id": request_id(request), "user": None,
               "path": path, "menu": [], "map": None,
               "login": f"/login?next={quote(path, safe='/')}" if status == 401 else None}
    templates = getattr(request.app.state, "templates", None)
    if templates is not None:
        try:
            return templates.get_template("error.html").render({"request": request, **context})
        except Exception as exc:  # the plain page below still answers
            log.warning("error page not drawn: %s", type(exc).__name__)
    return (f'<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>{status} {title}'
            f'</title><meta name="viewport" content="width=device-width, initial-scale=1"></head>'
            f'<body><h1>{status} {title}</h1><p>{html.escape(message)}</p>'
            f'<p><a href="/">トップへ戻る</a></p></body></html>')


UNEXPECTED = "サーバーで予期しないエラーが起きました。管理者に連絡してください"


class CatchAll:
    """Give every request an id (``X-Request-ID``) and answer an unexpected exception with the
    one 500 format, logging its class, route and request id only (with ``debug``, the traceback
    too). Installed by :func:`install`; pure ASGI, so streaming answers pass untouched."""

    def __init__(self, app, *, debug: bool = False):
        self.app = app
        self.debug = debug

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = secrets.token_hex(6)
        scope["karte_request_id"] = rid
        started = False

        async def sending(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            route = getattr(scope.get("route"), "name", None) or "?"
            if self.debug:
                log.exception("unexpected %s on %s (request %s)", type(exc).__name__, route, rid)
            else:  # the class name only: a message or a traceback could quote data
                log.error("unexpected %s on %s (request %s)", type(exc).__name__, route, rid)
            if started:  # the answer is under way: nothing more to say
                return
            response = respond(Request(scope), 500, UNEXPECTED)
            await response(scope, receive, sending)


def install(app: FastAPI) -> None:
    """Map every error to the one format (call once in :func:`api.app.create_app`)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return respond(request, exc.status, exc.message, code=exc.code, detail=exc.detail,
                       headers=exc.headers)

    @app.exception_handler(KarteError)
    async def _karte_error(request: Request, exc: KarteError):
        status = status_of(exc)
        if status >= 500:
            log.warning("store unavailable on %s: %s", _route(request), type(exc).__name__)
            return respond(request, status, "データの保管場所に接続できません。しばらくしてから"
                                            "もう一度お試しください。")
        return respond(request, status, str(exc).splitlines()[0][:300])

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        detail = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
                  for e in exc.errors()]
        where = ", ".join(".".join(d["loc"][1:] or d["loc"]) for d in detail) or "request"
        # OGC API - Features answers invalid query parameters with 400
        status = 400 if request.url.path.startswith("/ogc") else 422
        return respond(request, status, f"パラメータが正しくありません: {where}", detail=detail,
                       code="invalid_parameter")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else TITLE_JA.get(exc.status_code, "エラー")
        if exc.status_code == 404 and message == "Not Found":
            message = "ページが見つかりません"
        elif exc.status_code == 405 and message == "Method Not Allowed":
            message = "この方法（HTTP メソッド）では使えません"
        return respond(request, exc.status_code, message, headers=getattr(exc, "headers", None))

    # unexpected exceptions: CatchAll (added by api.app.create_app), not an exception handler:
    # Starlette re-raises what its handler for Exception answers, and the server logs it whole


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "name", None) or "?"
