"""Logging in: server-side sessions and bearer tokens, the login throttle, and the Argon2 gate.

* **Passwords**: Argon2id hashes in the users file (:mod:`karte.users`, argon2-cffi). Names are
  compared NFKC-normalised and case-folded (:func:`karte.users.name_key`).
* **Sessions** live in the store (:class:`karte.users.Sessions`, layer ``web_sessions``): a
  browser's signed cookie (Starlette's ``SessionMiddleware``: ``HttpOnly``, ``SameSite=Lax``,
  ``Secure`` with ``KARTE_HTTPS_ONLY``) carries a random session token and the CSRF token, an API
  client a random bearer token; the store keeps their SHA-256. Logging out, a password change,
  removing the user or changing their level, district or municipality ends them at once, in every
  server process; city staff list and end them (``karte users sessions`` / ``end``).
* **Throttle** (:class:`LoginThrottle`): every attempt is checked and recorded in one step (no
  window between reading the count and recording the failure), per client address first, then
  per client and name, then per name with a delay that grows with each failure up to
  :attr:`Rules.name_max_delay_s` (an attacker slows a real user down, never locks them out for
  long). The client address is the socket's peer unless ``karte serve --forwarded-allow-ips``
  names the proxy whose ``X-Forwarded-For`` uvicorn may trust. The state lives in the process
  (:class:`MemoryLedger`) or, when several server processes share the work, in the store
  (:class:`StoreLedger`, layer ``login_attempts``: ``KARTE_SHARED_THROTTLE``).
* **Gate** (:class:`LoginGate`): an Argon2 check takes 64 MiB and tens of milliseconds; at most
  ``KARTE_LOGIN_CONCURRENCY`` (2) run at once, and an attempt that finds them busy is answered
  429 at once, so a flood of logins bounds the server's memory instead of growing it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from karte.domain.access import Access, Level
from karte.domain.errors import ConflictError, KarteError, NotFoundError, StoreError
from karte.domain.security import ATTEMPTS, SessionKind
from karte.users import Sessions, User, name_key

# --- sessions and tokens ----------------------------------------------------------------------------


def _sessions(request: Request) -> Sessions:
    return request.app.state.sessions


def client_address(request: Request) -> str:
    """The client's address as the server sees it (uvicorn replaces the socket's peer with the
    ``X-Forwarded-For`` address only for the proxies ``--forwarded-allow-ips`` names)."""
    return request.client.host if request.client else "?"


def issue_token(request: Request, user: User) -> str:
    """A new bearer token of ``user`` (a session of kind ``token``, valid ``token_hours``)."""
    hours = request.app.state.settings.token_hours
    return _sessions(request).start(user, kind=SessionKind.TOKEN, hours=hours,
                                    client=client_address(request), route="web:token")


def user_from_token(request: Request, token: str) -> User | None:
    return _sessions(request).resolve(token, kind=SessionKind.TOKEN)


def user_from_session(request: Request) -> User | None:
    if "session" not in request.scope:
        return None
    token = request.session.get("sid")
    if not token:
        return None
    user = _sessions(request).resolve(str(token), kind=SessionKind.COOKIE)
    if user is None:
        request.session.pop("sid", None)
    return user


def login(request: Request, user: User) -> None:
    """Start a fresh session for ``user``: the browser's previous one (if any) ends, and the
    cookie gets a new session token and a new CSRF token, nothing kept from before (no fixation)."""
    old = request.session.get("sid")
    if old:
        _sessions(request).end(str(old), kind=SessionKind.COOKIE, reason="replaced", route="web:login")
    hours = request.app.state.settings.session_hours
    token = _sessions(request).start(user, kind=SessionKind.COOKIE, hours=hours,
                                     client=client_address(request), route="web:login")
    request.session.clear()
    request.session.update({"sid": token, "csrf": secrets.token_urlsafe(32)})


def logout(request: Request) -> None:
    """End the browser's session in the store (a copy of the cookie stops working at once) and
    clear the cookie."""
    token = request.session.get("sid")
    if token:
        _sessions(request).end(str(token), kind=SessionKind.COOKIE, reason="logout", route="web:logout")
    request.session.clear()


def revoke_token(request: Request, token: str) -> bool:
    """End a bearer token (``POST /api/logout`` with it)."""
    return _sessions(request).end(token, kind=SessionKind.TOKEN, reason="logout", route="web:logout")


# --- the throttle -----------------------------------------------------------------------------------


class Throttled(Exception):
    """No attempt now: ``wait`` seconds before the next one is allowed."""

    def __init__(self, wait: float):
        super().__init__(f"retry after {wait:.0f} s")
        self.wait = max(1, math.ceil(wait))


@dataclass(frozen=True)
class Rules:
    """How many failed attempts are allowed, and how long to wait after them.

    Failures count for ``window_s``. Per client address: ``client_limit`` failures (any names),
    then a wait that doubles with each further one up to ``client_max_delay_s``. Per client and
    name: ``pair_limit`` failures, then nothing until the oldest leaves the window. Per name, from
    every client: ``name_limit`` failures, then a wait after the latest failure that doubles with
    each further one, up to ``name_max_delay_s``: distributed guessing is slowed to one try per
    minute, and the real user, whose password is right, waits at most that long.
    """

    window_s: float = 900.0
    client_limit: int = 30
    client_max_delay_s: float = 900.0
    pair_limit: int = 10
    name_limit: int = 10
    name_max_delay_s: float = 60.0

    def wait(self, kind: str, failures: list[float], now: float) -> float:
        """Seconds until the next attempt of a subject of ``kind`` (``client``, ``pair``,
        ``name``) with these failure times (pending attempts included) is allowed; 0: now."""
        recent = sorted(t for t in failures if now - t < self.window_s)
        n = len(recent)
        if kind == "pair":
            return 0.0 if n < self.pair_limit else self.window_s - (now - recent[-self.pair_limit])
        limit, cap = ((self.client_limit, self.client_max_delay_s) if kind == "client"
                      else (self.name_limit, self.name_max_delay_s))
        if n < limit:
            return 0.0
        delay = min(cap, 2.0 ** (n - limit))
        return max(0.0, delay - (now - recent[-1]))


@dataclass
class Ticket:
    """One attempt let through: what it recorded, to be settled by :meth:`LoginThrottle.finish`."""

    subjects: dict[str, str]
    at: float
    handle: object = None


class MemoryLedger:
    """The throttle's state in this process: check and record under one lock (atomic)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._times: dict[str, list[float]] = {}

    def begin(self, subjects: dict[str, str], rules: Rules, now: float) -> Ticket:
        with self._lock:
            self._forget(rules, now)
            for kind in ("client", "pair", "name"):  # the client first
                wait = rules.wait(kind, self._times.get(subjects[kind], []), now)
                if wait > 0:
                    raise Throttled(wait)
            for subject in subjects.values():  # recorded as failed until the password is right
                self._times.setdefault(subject, []).append(now)
            return Ticket(subjects, now)

    def finish(self, ticket: Ticket, *, ok: bool | None) -> None:
        """``ok``: the password was right (the attempt and the pair's failures are forgotten);
        False: a failure (kept); None: not tried after all (forgotten)."""
        if ok is False:
            return
        with self._lock:
            for kind, subject in ticket.subjects.items():
                times = self._times.get(subject, [])
                if ok and kind == "pair":
                    times.clear()
                elif ticket.at in times:
                    times.remove(ticket.at)
                if not times:
                    self._times.pop(subject, None)

    def _forget(self, rules: Rules, now: float) -> None:
        if len(self._times) < 10_000:
            return
        self._times = {k: v for k, v in self._times.items() if v and now - max(v) < rules.window_s}


class StoreLedger:
    """The throttle's state in the store (``login_attempts``), shared by every server process.

    Record first, then count (each attempt appends its rows in one transaction, then reads the
    others): the k-th attempt to commit sees at least the k - 1 before it, so no more attempts get
    through than the rules allow, however many processes run them at once. Refused attempts
    delete their rows (they were never tried), a right password deletes the attempt's and the
    pair's rows, and rows older than the window are deleted as they are met. Rows hold keyed
    hashes of the address and the name, never either.
    """

    layer = str(ATTEMPTS.name)
    actor = Access(user="login", level=Level.PUBLIC, route="web:login", municipality=None)

    def __init__(self, store):
        self.store = store

    def begin(self, subjects: dict[str, str], rules: Rules, now: float) -> Ticket:
        mine = self.store.append_rows(self.layer, [{"subject": s, "at": now, "outcome": "tried"}
                                                   for s in subjects.values()], access=self.actor)
        ids = {r["attempt_id"] for r in mine}
        rows = self._rows()
        self._prune(rows, rules, now)
        times: dict[str, list[float]] = {}
        for row in rows:
            if row["attempt_id"] not in ids:
                times.setdefault(row["subject"], []).append(float(row["at"]))
        for kind in ("client", "pair", "name"):
            wait = rules.wait(kind, times.get(subjects[kind], []), now)
            if wait > 0:
                self._delete(mine)
                raise Throttled(wait)
        return Ticket(subjects, now, handle=mine)

    def finish(self, ticket: Ticket, *, ok: bool | None) -> None:
        if ok is False:
            return
        self._delete(ticket.handle)
        if ok:
            pair = ticket.subjects["pair"]
            self._delete([r for r in self._rows() if r["subject"] == pair])

    def _rows(self) -> list[dict]:
        try:
            frame = self.store.read_full(self.layer)
        except StoreError:
            if self.layer in self.store.layers():
                raise
            return []
        return frame[["attempt_id", "subject", "at", "version"]].to_dict(orient="records")

    def _prune(self, rows: list[dict], rules: Rules, now: float) -> None:
        old = [r for r in rows if now - float(r["at"]) >= rules.window_s]
        self._delete(old[:50])  # a few at a time: an attempt never waits for a big clean-up

    def _delete(self, rows) -> None:
        for row in rows or ():
            with contextlib.suppress(ConflictError, NotFoundError):  # deleted meanwhile elsewhere
                self.store.delete_row(self.layer, row["attempt_id"], version=int(row["version"]),
                                      access=self.actor)


class LoginThrottle:
    """Check and record each password attempt at once (:meth:`begin`), settle it after the
    password check (:meth:`finish`). Subjects are keyed hashes (HMAC with the server's secret) of
    the client address, of the address and the normalised name, and of the name."""

    def __init__(self, secret: str, *, rules: Rules | None = None, ledger=None,
                 clock: Callable[[], float] = time.time):
        self.rules = rules or Rules()
        self.ledger = ledger or MemoryLedger()
        self.clock = clock
        self._key = hashlib.sha256(("karte-login-throttle:" + secret).encode()).digest()

    def subjects(self, client: str, username: str) -> dict[str, str]:
        name = name_key(username)

        def mac(text: str) -> str:
            return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

        return {"client": "c:" + mac("c\0" + client), "pair": "p:" + mac(f"p\0{client}\0{name}"),
                "name": "n:" + mac("n\0" + name)}

    def begin(self, client: str, username: str) -> Ticket:
        """Let one attempt through and record it, or raise :class:`Throttled`."""
        return self.ledger.begin(self.subjects(client, username), self.rules, self.clock())

    def finish(self, ticket: Ticket, *, ok: bool | None) -> None:
        self.ledger.finish(ticket, ok=ok)


# --- the Argon2 gate --------------------------------------------------------------------------------


class Busy(Exception):
    """Every Argon2 slot is taken: answer 429 now."""


@dataclass
class LoginGate:
    """At most ``slots`` password checks at once (each Argon2id check holds 64 MiB); an attempt
    that finds them all taken is refused at once (:class:`Busy`) rather than queued."""

    slots: int = 2
    _sem: threading.BoundedSemaphore = field(init=False, repr=False)
    #: how many attempts were refused as busy, and how many checks ran (for tests and the log)
    refused: int = 0
    checked: int = 0

    def __post_init__(self):
        self._sem = threading.BoundedSemaphore(max(1, self.slots))

    def run(self, check: Callable[[], object]):
        if not self._sem.acquire(blocking=False):
            self.refused += 1
            raise Busy()
        try:
            self.checked += 1
            return check()
        finally:
            self._sem.release()


def verify_password(request: Request, username: str, password: str) -> User | None:
    """The user if the password is right, else None; :class:`Throttled` or :class:`Busy` when
    the attempt is not tried now. One check-and-record in the throttle per attempt."""
    throttle: LoginThrottle = request.app.state.login_throttle
    gate: LoginGate = request.app.state.login_gate
    ticket = throttle.begin(client_address(request), username)
    try:
        user = gate.run(lambda: request.app.state.users.verify(username, password))
    except Busy:
        throttle.finish(ticket, ok=None)
        raise
    except BaseException:
        throttle.finish(ticket, ok=False)
        raise
    throttle.finish(ticket, ok=user is not None)
    return user


__all__ = ["Busy", "KarteError", "LoginGate", "LoginThrottle", "MemoryLedger", "Rules", "StoreLedger",
           "Throttled", "Ticket", "issue_token", "login", "logout", "revoke_token", "user_from_session",
           "user_from_token", "verify_password"]
