"""Security records: server-side web sessions and what the login throttle keeps (issue 16).

Two record layers (:class:`karte.domain.layers.LayerSpec`), added to the one registry by
:mod:`karte.domain.layers`; both stores create, read and write them with their generic row calls:

* :data:`SESSIONS` (``web_sessions``): one row per login (a browser session or an API bearer
  token). The browser or client holds a random token; the row keeps only its SHA-256
  (``token_hash``), with who logged in (name, level, district, municipality and the users file's
  stamp at that moment), when, until when, from which client address, and when, by whom and why
  it ended. A session is valid only while its row is open, unexpired and the user in the users
  file is unchanged (same stamp, level, district and municipality): logging out, a password
  change, removing the user or changing their level, district or municipality ends it at once,
  in every server process. Rows are written by the user who logs in, as themselves (so logins and
  logouts are in the access log); city staff list and end them (``karte users sessions``).
* :data:`ATTEMPTS` (``login_attempts``): the login throttle's state when several server processes
  share it (:class:`karte.users.StoreAttempts`): one row per counted password attempt, keyed by a
  keyed hash (HMAC with the server's secret) of the client address or of the normalised user
  name, never the name or address itself; rows older than the throttle's window are deleted.

Neither layer holds register data, so neither is ``personal`` in the registry's sense (no
consent rule, never shown on a page); the PostGIS migration 0010 still protects both with
row-level security (a user reads and ends their own sessions, city staff those of their
municipality) and ``karte export`` leaves them out (a restore never brings sessions back).
"""

from __future__ import annotations

from enum import StrEnum

from karte.domain.layers import MUNICIPALITY, Column, LayerSpec

#: Every access level: anyone with an account logs in, and the login form is anonymous (public).
ALL_LEVELS = ("city_staff", "coordinator", "district_member", "prefecture", "public")


class SecurityLayer(StrEnum):
    SESSIONS = "web_sessions"       # ログインの記録（セッションとトークン）
    ATTEMPTS = "login_attempts"     # ログイン試行の記録（試行回数の制限）


class SessionKind(StrEnum):
    COOKIE = "cookie"   # a browser's login through /login
    TOKEN = "token"     # an API client's bearer token from /api/token


SESSION_KIND_JA = {SessionKind.COOKIE: "ブラウザ", SessionKind.TOKEN: "API トークン"}

#: Why a session ended (``end_reason``).
END_REASONS_JA = {
    "logout": "ログアウト",
    "ended": "市職員が終了",
    "user_changed": "利用者の変更（パスワード・権限・地区・市町村）",
    "user_removed": "利用者の削除",
    "replaced": "同じ利用者の新しいログイン",
}

SESSIONS = LayerSpec(
    SecurityLayer.SESSIONS, "session_id", "ログインの記録", records=True, id_prefix="WS",
    columns=(Column("session_id"), Column(MUNICIPALITY), Column("district_code"), Column("user_name"),
             Column("user_level"), Column("user_stamp"), Column("kind"), Column("token_hash"),
             Column("client"), Column("created_at"), Column("expires_at"), Column("ended_at"),
             Column("ended_by"), Column("end_reason")),
    writers=ALL_LEVELS)

ATTEMPTS = LayerSpec(
    SecurityLayer.ATTEMPTS, "attempt_id", "ログイン試行の記録", records=True, id_prefix="LA",
    columns=(Column("attempt_id"), Column(MUNICIPALITY), Column("district_code"), Column("subject"),
             Column("at", "float"), Column("outcome")),
    writers=ALL_LEVELS)

#: The record layers of this topic.
LAYERS: tuple[LayerSpec, ...] = (SESSIONS, ATTEMPTS)

#: Layers ``karte export`` leaves out: security state, never handed over nor restored.
NOT_EXPORTED = frozenset(str(s.name) for s in LAYERS)
#: Layers whose row calls the stores do not write to the access log: the sessions are themselves
#: the record of every login and logout (who, when, from where, ended by whom and why), and the
#: attempts are counters; what city staff do with them (listing, ending) is logged by
#: :class:`karte.users.Sessions` through ``Store.audit``.
UNLOGGED = NOT_EXPORTED
