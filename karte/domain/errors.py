"""Errors with user-safe messages (Japanese for end users, English for developers).

Messages never contain personal data: they name files, rows, columns and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass


class KarteError(Exception):
    """Base class: a failure we can explain to the user. ``status`` is the HTTP status the web
    answers it with (:func:`api.errors.install` reads it; nothing else maps errors)."""

    status = 400


class InputError(KarteError):
    """An input file is missing, unreadable or of the wrong kind."""


class StoreError(KarteError):
    """The store is missing, locked or inconsistent."""

    status = 503


class NotFoundError(KarteError):
    """A district or row that was asked for does not exist (or the user may not know it does)."""

    status = 404


class AccessDenied(KarteError):
    """The user may not do this (an edition, a page, a district's personal rows)."""

    status = 403


class ConflictError(StoreError):
    """A row changed since it was read (optimistic locking): someone else saved first."""

    status = 409


@dataclass(frozen=True)
class Problem:
    """One problem in an input file, located as the user sees it (row counted from 1 in the
    spreadsheet, header rows included)."""

    file: str
    row: int | None
    column: str | None
    message_ja: str
    message_en: str

    def format(self, *, verbose: bool = False) -> str:
        where = self.file
        if self.row is not None:
            where += f" {self.row}行目"
        if self.column:
            where += f" 列「{self.column}」"
        text = f"{where}: {self.message_ja}"
        if verbose:
            text += f" ({self.message_en})"
        return text


class ValidationError(KarteError):
    """Every problem found in one or more input files; nothing was loaded."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        n = len(self.problems)
        head = "\n".join(p.format() for p in self.problems[:20])
        more = f"\n… ほか {n - 20} 件" if n > 20 else ""
        super().__init__(f"入力に {n} 件の問題があります。何も読み込んでいません。\n{head}{more}")

    def format(self, *, verbose: bool = False) -> str:
        lines = [f"入力に {len(self.problems)} 件の問題があります。何も読み込んでいません。"]
        lines += [p.format(verbose=verbose) for p in self.problems]
        return "\n".join(lines)
