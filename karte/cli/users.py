"""``karte users``: the web's users (利用者): add, list, remove, password; their logins: sessions, end.

Removing a user, replacing one (``add --replace``) or changing a password makes every session
and token of theirs invalid at once (the server compares each session with the users file on
every request); these commands also end them in the store when it can be opened, so the
session list says so. ``sessions`` and ``end`` act as city staff (the operating-system user, who
holds the users file) and are in the store's access log.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from karte.cli.common import StoreOpt, fail
from karte.domain.access import LEVEL_JA, Access, Level
from karte.domain.errors import KarteError
from karte.domain.security import END_REASONS_JA, SESSION_KIND_JA
from karte.settings import get_settings
from karte.store import open_store
from karte.users import STATUS_JA, Sessions, UserFile, users_file

users_app = typer.Typer(help="Web users (利用者): add, list, remove.", no_args_is_help=True)

FileOpt = Annotated[Path | None, typer.Option("--file", help="Users file (default: KARTE_USERS_FILE, "
                                                              "else WORKSPACE/users.json)")]


@users_app.command("add")
def add_command(
    name: Annotated[str, typer.Argument(help="User name (英数字と _ . @ -)")],
    level: Annotated[str, typer.Option(
        help="city_staff, coordinator, district_member, prefecture or public")],
    district: Annotated[str | None, typer.Option(help="District code, for district_member only")] = None,
    municipality: Annotated[str | None, typer.Option(
        help="Municipality (JIS code, e.g. 02201) of a city_staff, coordinator or district_member "
             "(default: KARTE_MUNICIPALITY)")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin",
                                                 help="Read the password from standard input")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Replace an existing user")] = False,
    file: FileOpt = None,
    store: StoreOpt = None,
) -> None:
    """Add a web user; the password is asked twice (or read from stdin) and stored as an Argon2id hash."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("パスワード", hide_input=True, confirmation_prompt=True)
    try:
        user = UserFile(file or users_file()).add(name, password, level=level, district=district,
                                                  municipality=municipality, replace=replace)
    except KarteError as exc:
        fail(exc)
    if replace:
        _end_sessions(user.name, file, store, "user_changed")
    where = "".join(f"（{label} {value}）" for label, value in (("市町村", user.municipality),
                                                              ("地区", user.district)) if value)
    typer.echo(f"利用者 {user.name} を追加しました: {LEVEL_JA[user.level]}{where}")


@users_app.command("list")
def list_command(file: FileOpt = None) -> None:
    """List the web users (names and levels, never the hashes)."""
    try:
        users = UserFile(file or users_file()).all()
    except KarteError as exc:
        fail(exc)
    for u in users.values():
        typer.echo(f"{u.name}\t{u.level}\t{u.municipality or ''}\t{u.district or ''}\t{u.created_at}")


@users_app.command("remove")
def remove_command(name: Annotated[str, typer.Argument()], file: FileOpt = None,
                   store: StoreOpt = None) -> None:
    """Remove a web user (their sessions and tokens stop working)."""
    try:
        UserFile(file or users_file()).remove(name)
    except KarteError as exc:
        fail(exc)
    typer.echo(f"利用者 {name} を削除しました")
    _end_sessions(name, file, store, "user_removed")


@users_app.command("password")
def password_command(name: Annotated[str, typer.Argument()],
                     password_stdin: Annotated[bool, typer.Option(
                         "--password-stdin", help="Read the new password from standard input")] = False,
                     file: FileOpt = None, store: StoreOpt = None) -> None:
    """Change a user's password (every session and token of theirs ends)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("新しいパスワード", hide_input=True, confirmation_prompt=True)
    try:
        user = UserFile(file or users_file()).set_password(name, password)
    except KarteError as exc:
        fail(exc)
    typer.echo(f"利用者 {user.name} のパスワードを変更しました（ログイン中のセッションは終了します）")
    _end_sessions(user.name, file, store, "user_changed")


@users_app.command("sessions")
def sessions_command(every: Annotated[bool, typer.Option("--all", help="Ended and expired ones too")] = False,
                     file: FileOpt = None, store: StoreOpt = None) -> None:
    """List the logins (sessions and API tokens) of the municipality, newest first (logged)."""
    try:
        rows = _sessions(file, store).listing(_staff(), every=every)
    except KarteError as exc:
        fail(exc)
    if not rows:
        typer.echo("ログイン中のセッションはありません")
    for r in rows:
        why = END_REASONS_JA.get(r.get("end_reason") or "", "")
        state = STATUS_JA[r["status"]] + (f"（{why}）" if why else "")
        typer.echo("\t".join(str(v or "") for v in (
            r["session_id"], r["user_name"], LEVEL_JA.get(Level(r["user_level"]), r["user_level"]),
            SESSION_KIND_JA.get(r["kind"], r["kind"]), r["created_at"], r["expires_at"], r.get("client"),
            state)))


@users_app.command("end")
def end_command(target: Annotated[str, typer.Argument(help="A session id (WS000012) or a user name "
                                                           "(every session and token of theirs)")],
                file: FileOpt = None, store: StoreOpt = None) -> None:
    """End a login (by its id) or every login of a user, as city staff (logged)."""
    try:
        sessions = _sessions(file, store)
        if target.startswith("WS") and target[2:].isdigit():
            ended = int(sessions.end_session(target, by=_staff()))
        else:
            ended = sessions.end_user(target, by=_staff())
    except KarteError as exc:
        fail(exc)
    typer.echo(f"{ended} 件のログインを終了しました")


def _staff() -> Access:
    return Access(user=getpass.getuser(), level=Level.CITY_STAFF, route="cli:users",
                  municipality=get_settings().municipality)


def _sessions(file: Path | None, store: str | None) -> Sessions:
    return Sessions(open_store(store), UserFile(file or users_file()))


def _end_sessions(name: str, file: Path | None, store: str | None, reason: str) -> None:
    """End the user's open sessions in the store too (they are invalid already); a store that
    cannot be opened changes nothing about that."""
    try:
        ended = _sessions(file, store).end_user(name, by=_staff(), reason=reason)
    except KarteError:
        return
    if ended:
        typer.echo(f"ログイン中だった {ended} 件のセッションを終了しました")
