"""Login sessions and bearer tokens.

* Passwords: Argon2id hashes in the users file (:mod:`karte.users`, argon2-cffi).
* Browsers: Starlette's ``SessionMiddleware``, a cookie signed with itsdangerous (HMAC; the
  cookie holds the user name, a stamp that changes with the password, and the CSRF token, never
  a password), ``HttpOnly``, ``SameSite=Lax``, ``Secure`` with ``KARTE_HTTPS_ONLY``. Logging in
  replaces the whole session (no fixation).
* API clients: ``POST /api/token`` returns a bearer token, an itsdangerous
  ``URLSafeTimedSerializer`` signature of the user name and stamp, valid ``token_hours``.
  Removing the user or changing their password ends every session and token.

Why these: itsdangerous is what Starlette's own sessions use (a Pallets project), so one well
kept signing library serves both; a stateless signed token needs no token table in either store.
"""

from __future__ import annotations

import time

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from karte.users import User

_TOKEN_SALT = "karte-api-token"


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.secret_key, salt=_TOKEN_SALT)


def issue_token(request: Request, user: User) -> str:
    """A bearer token for ``user`` (valid ``token_hours``)."""
    return _serializer(request).dumps({"u": user.name, "s": user.stamp})


def user_from_token(request: Request, token: str) -> User | None:
    max_age = int(request.app.state.settings.token_hours * 3600)
    try:
        data = _serializer(request).loads(token, max_age=max_age)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    user = request.app.state.users.get(str(data.get("u")))
    if user is None or user.stamp != data.get("s"):
        return None
    return user


def user_from_session(request: Request) -> User | None:
    if "session" not in request.scope:
        return None
    name = request.session.get("user")
    if not name:
        return None
    user = request.app.state.users.get(name)
    if user is None or user.stamp != request.session.get("stamp"):
        request.session.pop("user", None)
        return None
    return user


def login(request: Request, user: User) -> None:
    """Start a fresh session for ``user`` (a new CSRF token, nothing kept from before)."""
    import secrets

    request.session.clear()
    request.session.update({"user": user.name, "stamp": user.stamp, "at": int(time.time()),
                            "csrf": secrets.token_urlsafe(32)})


def logout(request: Request) -> None:
    request.session.clear()


class LoginThrottle:
    """Refuse further password attempts for a user name from one client after ``limit``
    failures within ``window_s`` seconds (in memory, per server process): online guessing gets
    ``limit`` tries per window, on top of Argon2's cost per try. A success clears the count."""

    def __init__(self, limit: int = 10, window_s: float = 900.0):
        import threading

        self.limit = limit
        self.window_s = window_s
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def _key(self, request: Request, username: str) -> tuple[str, str]:
        host = request.client.host if request.client else "?"
        return host, username.lower()

    def retry_after(self, request: Request, username: str) -> int:
        """Seconds until the next attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            times = self._failures.get(self._key(request, username), [])
            recent = [t for t in times if now - t < self.window_s]
            if len(recent) < self.limit:
                return 0
            return int(self.window_s - (now - recent[0])) + 1

    def failed(self, request: Request, username: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:  # bound the memory: forget old entries
                self._failures = {k: v for k, v in self._failures.items() if now - v[-1] < self.window_s}
            self._failures.setdefault(self._key(request, username), []).append(now)

    def succeeded(self, request: Request, username: str) -> None:
        with self._lock:
            self._failures.pop(self._key(request, username), None)
