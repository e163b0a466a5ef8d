"""The ``karte`` command line: one typer application, a module per command group.

Every command that reads or writes the store takes ``--store`` (a GeoPackage path, or a
``postgresql+psycopg://`` URL); the default is ``KARTE_DATABASE_URL`` when set, else the
workspace's ``karte.gpkg``. Errors are printed in Japanese and exit with status 1.

``karte --help`` and ``karte sheets`` import every command module, so what only one command needs
and costs seconds to import is imported inside that command: the census update (tobler and
statsmodels, 2 s), uvicorn; the analyses on Dask import dask when they run
(``tests/test_cli_startup.py``).

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

import typer

from karte.cli import (
    analyse,
    build,
    care,
    census,
    copies,
    data,
    drills,
    history,
    serve,
    sheets,
    show,
    supporters,
    users,
)

app = typer.Typer(
    help="地区カルテ (district karte): build and show the district kartes of Aomori city.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(build.demo)
app.command()(build.build)
app.command()(show.show)
app.command("import")(data.import_)
app.command()(data.export)
app.command()(sheets.sheets)
app.command()(serve.serve)
app.command()(analyse.analyse)
app.add_typer(show.districts_app, name="districts")
app.add_typer(data.db_app, name="db")
app.add_typer(users.users_app, name="users")
for topic in (history, care, supporters, drills, copies, census):
    topic.register(app)

__all__ = ["app"]
