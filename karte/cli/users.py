"""``karte users``: the web's users (利用者): add, list, remove."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from karte.cli.common import fail
from karte.domain.access import LEVEL_JA
from karte.domain.errors import KarteError
from karte.users import UserFile, users_file

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
def remove_command(name: Annotated[str, typer.Argument()], file: FileOpt = None) -> None:
    """Remove a web user (their sessions and tokens stop working)."""
    try:
        UserFile(file or users_file()).remove(name)
    except KarteError as exc:
        fail(exc)
    typer.echo(f"利用者 {name} を削除しました")
