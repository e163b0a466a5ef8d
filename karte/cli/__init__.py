"""The ``karte`` command line: one typer application, a module per command group.

Every command that reads or writes the store takes ``--store`` (a GeoPackage path, or a
``postgresql+psycopg://`` URL); the default is ``KARTE_DATABASE_URL`` when set, else the
workspace's ``karte.gpkg``. Errors are printed in Japanese and exit with status 1.

The ``karte`` command (:func:`main`) imports only the module of the command it runs (``karte
sheets`` imports :mod:`.sheets`, not the web server, the import pipeline or the yearly records:
about 1 s of every start); ``karte --help``, a mistyped command and :data:`app` (what tests and
``python -m karte.cli`` use) have every module. What only one command needs and costs seconds
to import is imported inside that command: the census update (tobler and statsmodels, 2 s),
uvicorn; the analyses on Dask import dask when they run (``tests/test_cli_startup.py``).

========================  ======================================================================
module                    commands
========================  ======================================================================
:mod:`.build`             ``demo``, ``build``
:mod:`.show`              ``show``, ``districts list``, ``districts standin``
:mod:`.data`              ``import``, ``export``, ``db upgrade``, ``db current``
:mod:`.sheets`            ``sheets``
:mod:`.serve`             ``serve``
:mod:`.users`             ``users add``, ``users list``, ``users remove``
:mod:`.history`           ``history``, ``indicators``, ``plan``, ``report`` (years and the plan)
:mod:`.care`              ``cases``, ``meetings`` (households of concern, safety-net meetings)
:mod:`.supporters`        ``match``, ``points`` (地域福祉サポーター)
:mod:`.drills`            ``plans``, ``drill``, ``disaster`` (evacuation plans, drills)
:mod:`.copies`            ``copies`` (the hand-out ledger)
:mod:`.census`            ``census`` (a new census in one command)
:mod:`.analyse`           ``analyse`` (the analyses per municipality on Dask)
========================  ======================================================================
"""

from __future__ import annotations

import importlib
import sys

import typer

#: Each command module's top-level commands (``tests/test_cli_startup.py`` checks them against
#: what the modules register); ``karte --help`` lists the modules' commands in this order.
COMMANDS: dict[str, tuple[str, ...]] = {
    "build": ("demo", "build"),
    "show": ("show", "districts"),
    "data": ("import", "export", "db"),
    "sheets": ("sheets",),
    "serve": ("serve",),
    "analyse": ("analyse",),
    "users": ("users",),
    "history": ("history", "indicators", "report", "plan"),
    "care": ("cases", "meetings"),
    "supporters": ("match", "points"),
    "drills": ("plans", "drill", "disaster"),
    "copies": ("copies",),
    "census": ("census",),
}


def make_app(command: str | None = None) -> typer.Typer:
    """The application with every command, or (``command``: a top-level command's name) with
    the module of that command only; an unknown name gives every command (and typer's error)."""
    app = typer.Typer(
        help="地区カルテ (district karte): build and show the district kartes of Aomori city.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    # a group even with one command (typer would otherwise run a lone command without its name)
    app.callback()(lambda: None)
    wanted = [m for m, names in COMMANDS.items() if command in names] or list(COMMANDS)
    for name in wanted:
        _register(app, name, importlib.import_module(f"karte.cli.{name}"))
    return app


def _register(app: typer.Typer, name: str, module) -> None:
    if name == "build":
        app.command()(module.demo)
        app.command()(module.build)
    elif name == "show":
        app.command()(module.show)
        app.add_typer(module.districts_app, name="districts")
    elif name == "data":
        app.command("import")(module.import_)
        app.command()(module.export)
        app.add_typer(module.db_app, name="db")
    elif name == "users":
        app.add_typer(module.users_app, name="users")
    elif name in ("sheets", "serve", "analyse"):
        app.command()(getattr(module, name))
    else:  # the topic modules register their own commands
        module.register(app)


def main() -> None:
    """The ``karte`` command: the application with the module of the command given only."""
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    make_app(command)()


def __getattr__(name: str):
    if name == "app":  # every command, made when first asked for
        globals()["app"] = made = make_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["COMMANDS", "app", "main", "make_app"]
