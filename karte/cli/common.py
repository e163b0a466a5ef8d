"""What every command shares: the consoles, the ``--store`` option, errors, the acting user, and
the one progress bar."""

from __future__ import annotations

import getpass
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from karte.domain.access import Access, Level
from karte.domain.errors import KarteError, ValidationError
from karte.settings import get_settings
from karte.snapshot import municipalities
from karte.store import open_store
from karte.store.base import Store
from karte.store.scoped import scoped

out = Console()
err = Console(stderr=True)

StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="GeoPackage path or postgresql+psycopg:// URL "
                                 "(default: KARTE_DATABASE_URL, else WORKSPACE/karte.gpkg)"),
]


def fail(exc: Exception | str, *, verbose: bool = False, code: int = 1) -> NoReturn:
    """Print the error in Japanese (every problem of a validation error) and exit with ``code``."""
    text = exc.format(verbose=verbose) if isinstance(exc, ValidationError) else str(exc)
    err.print(f"[red]エラー:[/red] {text}", markup=True, highlight=False)
    raise typer.Exit(code)


def store_at(target: str | None, *, must_exist: bool = True) -> Store:
    """The store of ``--store`` (or the default); an error that says what to run when it is empty."""
    store = open_store(target)
    if must_exist and not store.exists():
        raise KarteError(f"ストア {store.location} がありません。"
                         "先に karte demo か karte import を実行してください")
    return store


def district_store(target: str | None) -> Store:
    """:func:`store_at` for a command that names districts by code (``show``, ``sheets``): on a
    store holding several municipalities (district codes repeat across them) the view of the
    command-line user's own, ``KARTE_MUNICIPALITY`` (:class:`karte.store.scoped.MunicipalityView`);
    an error naming the choices when the store does not hold it."""
    store = store_at(target)
    names = municipalities(store)
    if len(names) <= 1:
        return store
    own = get_settings().municipality
    if own not in names:
        choices = "、".join(f"{code} {name}" for code, name in list(names.items())[:5])
        raise KarteError(f"ストア {store.location} には {len(names)} の市町村があり、KARTE_MUNICIPALITY "
                         f"({own}) はその中にありません。KARTE_MUNICIPALITY に市町村コードを指定して"
                         f"ください（例: {choices}）")
    return scoped(store, own)


def cli_access(route: str, *, user: str | None = None) -> Access:
    """The person at the command line: the operating-system user as a coordinator of the
    deployment's municipality (``KARTE_MUNICIPALITY``: every district, shareable rows only), with
    ``route`` (``cli:show``…) for the access log."""
    return Access(user=user or getpass.getuser(), level=Level.COORDINATOR, route=route,
                  municipality=get_settings().municipality)


class ProgressBar:
    """The one progress bar of the command line, on standard error.

    Feed it named steps (``bar.step("assemble")``, the build's callback) or stages with counts
    (``bar.stage("render", 3, 42)``, the sheet batch's callback); ``labels`` gives each name its
    Japanese text.
    """

    def __init__(self, labels: dict[str, str], *, steps: int | None = None, transient: bool = False):
        self.labels = labels
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                 console=err, transient=transient)
        self.task = self.progress.add_task("準備中", total=steps)
        self._stepped = False

    def __enter__(self) -> ProgressBar:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if not any(exc) and self.progress.tasks[0].total is not None:
            self.progress.update(self.task, completed=self.progress.tasks[0].total, description="完了")
        return self.progress.__exit__(*exc)

    def step(self, name: str) -> None:
        """The next named step has started (the previous one is done)."""
        if self._stepped:
            self.progress.advance(self.task)
        self._stepped = True
        self.progress.update(self.task, description=self.labels.get(name, name))

    def stage(self, name: str, done: int, total: int) -> None:
        """``done`` of ``total`` of stage ``name``."""
        self.progress.update(self.task, description=self.labels.get(name, name), completed=done,
                             total=total)
