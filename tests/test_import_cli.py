"""The command-line face: import_command prints the report in Japanese and returns exit codes."""

from __future__ import annotations

import typer
from test_import_support import register_rows, tiny_store, write_csv
from typer.testing import CliRunner

from karte.importing.cli import EXIT_DECLINED, EXIT_ERROR, EXIT_OK, import_command, register_command


def test_dry_run_then_confirmed_import_then_nothing_to_do(tmp_path, capsys):
    store = tiny_store(tmp_path)
    path = write_csv(tmp_path / "r.csv", register_rows(3), encoding="cp932")
    before = (tmp_path / "k.gpkg").read_bytes()
    assert import_command("register", path, tmp_path / "k.gpkg", dry_run=True) == EXIT_OK
    out = capsys.readouterr().out
    assert "Shift_JIS (CP932)" in out and "追加 3" in out and "--dry-run" in out
    assert (tmp_path / "k.gpkg").read_bytes() == before
    assert import_command("register", path, tmp_path / "k.gpkg", confirm=lambda q: False) == EXIT_DECLINED
    assert (tmp_path / "k.gpkg").read_bytes() == before
    assert import_command("register", path, tmp_path / "k.gpkg", confirm=lambda q: True) == EXIT_OK
    assert len(store.read("register")) == 3
    assert import_command("register", path, tmp_path / "k.gpkg") == EXIT_OK
    assert "変更はありません" in capsys.readouterr().out


def test_errors_go_to_stderr_with_row_and_column(tmp_path, capsys):
    tiny_store(tmp_path)
    rows = register_rows(2)
    rows[2][6] = ""                                # missing consent in row 3
    path = write_csv(tmp_path / "r.csv", rows)
    assert import_command("register", path, tmp_path / "k.gpkg", yes=True, verbose=True) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "r.csv 3行目 列「同意」: 同意欄が空です" in err and "(consent missing)" in err
    assert "青森 花子" not in err
    assert import_command("register", tmp_path / "none.csv", tmp_path / "k.gpkg") == EXIT_ERROR
    assert "ファイルがありません" in capsys.readouterr().err


def test_non_interactive_without_yes_does_not_write(tmp_path, capsys):
    tiny_store(tmp_path)
    path = write_csv(tmp_path / "r.csv", register_rows(1))
    assert import_command("register", path, tmp_path / "k.gpkg") == EXIT_DECLINED
    assert "--yes" in capsys.readouterr().err


def test_register_command_adds_karte_import(tmp_path):
    app = typer.Typer()
    register_command(app)

    @app.command()
    def other() -> None:  # a second command, so "import" is a subcommand as in karte's app
        pass

    tiny_store(tmp_path)
    path = write_csv(tmp_path / "r.csv", register_rows(2))
    result = CliRunner().invoke(app, ["import", "register", str(path), "--store", str(tmp_path / "k.gpkg"),
                                      "--yes"])
    assert result.exit_code == 0, result.output
    assert "書き込みました" in result.output
    help_text = CliRunner().invoke(app, ["import", "--help"]).output
    assert "--district-map" in help_text and "--dry-run" in help_text
