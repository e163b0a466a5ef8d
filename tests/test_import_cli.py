"""The command-line face: import_command prints the report in Japanese and returns exit codes."""

from __future__ import annotations

import pandas as pd
from test_import_support import register_rows, tiny_store, write_csv, write_xlsx
from typer.testing import CliRunner

from karte.cli.data import (
    EXIT_DECLINED,
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    import_command,
)
from karte.store import GeoPackageStore


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


def test_karte_import_on_the_command_line(tmp_path):
    from karte.cli import app

    tiny_store(tmp_path)
    path = write_csv(tmp_path / "r.csv", register_rows(2))
    result = CliRunner().invoke(app, ["import", "register", str(path), "--store", str(tmp_path / "k.gpkg"),
                                      "--yes"])
    assert result.exit_code == 0, result.output
    assert "書き込みました" in result.output
    help_text = CliRunner().invoke(app, ["import", "--help"]).output
    assert "--district-map" in help_text and "--dry-run" in help_text


# -- a real Ctrl-C ---------------------------------------------------------------------------------

_INTERRUPTED_IMPORT = """
import sys, time
import karte.store.gpkg as gpkg
from karte.cli.data import import_command

real = gpkg._write_layer

def slow_disk(path, name, frame):
    real(path, name, frame)          # one layer is in the scratch file ...
    print("WRITING", flush=True)
    time.sleep(60)                   # ... and the disk is slow: Ctrl-C arrives now

gpkg._write_layer = slow_disk
sys.exit(import_command("register", sys.argv[1], sys.argv[2], yes=True))
"""


def test_ctrl_c_during_the_write_exits_130_and_leaves_the_store_as_it_was(tmp_path):
    """A real SIGINT to a running ``karte import`` while the new layers are half written. Every
    layer is as before; the access log holds the import's read of the register (it happened)."""
    import os
    import signal
    import subprocess
    import sys

    store = tiny_store(tmp_path)
    import_command("register", write_csv(tmp_path / "m1.csv", register_rows(2)), store.path, yes=True)
    before = {name: store.read(name) for name in store.layers()}
    script = tmp_path / "run.py"
    script.write_text(_INTERRUPTED_IMPORT, encoding="utf-8")
    path = write_csv(tmp_path / "m2.csv", register_rows(5), encoding="cp932")
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(store.path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    try:
        for line in proc.stdout:                 # the change report, then the marker
            if line.strip() == "WRITING":
                break
        else:
            raise AssertionError(f"never reached the write: {proc.stderr.read()}")
        assert list(tmp_path.glob(".k.gpkg.*.scratch"))  # the half-written scratch exists right now
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "中断しました。ストアは以前のままです。" in err
    assert set(store.layers()) == set(before)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(store.read(name), frame)
    assert not list(tmp_path.glob(".k.gpkg.*.scratch"))  # the scratch is gone
    assert len(store.read("register")) == 2
    log = store.audit_log()  # the first import's write, the second one's read; no write of the second
    assert list(log.loc[log["route"] == "import:register", "action"]) == ["write", "read"]


# -- restoring an export -----------------------------------------------------------------------------

def test_import_store_restores_an_export_and_lists_the_layers_first(tmp_path, capsys):
    from karte.store.cli import export_store

    store = tiny_store(tmp_path)
    import_command("register", write_csv(tmp_path / "m1.csv", register_rows(3)), store.path, yes=True)
    backup = export_store(store, tmp_path / "backup.gpkg")
    before = {name: store.read(name) for name in store.layers()}
    import_command("register", write_csv(tmp_path / "m2.csv", register_rows(1)), store.path, yes=True,
                   allow_mass_delete=True)
    capsys.readouterr()
    assert import_command("store", backup, store.path, dry_run=True) == EXIT_OK
    out = capsys.readouterr().out
    assert "register" in out and "3 行" in out and "置き換え" in out and "--dry-run" in out
    assert len(store.read("register")) == 1
    assert import_command("store", backup, store.path, confirm=lambda q: False) == EXIT_DECLINED
    assert len(store.read("register")) == 1
    assert import_command("store", backup, store.path, yes=True) == EXIT_OK
    for name, frame in before.items():
        pd.testing.assert_frame_equal(store.read(name), frame, check_exact=True)
    fresh = tmp_path / "fresh.gpkg"
    assert import_command("gpkg", backup, fresh, yes=True) == EXIT_OK
    assert "新規" in capsys.readouterr().out
    assert set(GeoPackageStore(fresh).layers()) == set(before)


def test_import_store_refuses_what_is_not_an_export(tmp_path, capsys):
    tiny_store(tmp_path)
    csv_path = write_csv(tmp_path / "r.csv", register_rows(1))
    assert import_command("store", csv_path, tmp_path / "k.gpkg", yes=True) == EXIT_ERROR
    assert ".gpkg" in capsys.readouterr().err
    assert import_command("store", tmp_path / "none.gpkg", tmp_path / "k.gpkg", yes=True) == EXIT_ERROR
    assert "ファイルがありません" in capsys.readouterr().err
    assert import_command("store", tmp_path / "k.gpkg", tmp_path / "x.gpkg", sheet="a") == EXIT_ERROR


# -- bugs are reported, not dumped ---------------------------------------------------------------------

def test_an_unexpected_error_is_one_plain_line_and_the_store_is_untouched(tmp_path, capsys, monkeypatch):
    import karte.importing.api as api

    store = tiny_store(tmp_path)
    before = store.path.read_bytes()

    def broken(*args, **kwargs):
        raise KeyError("秘密 太郎")              # a bug whose text quotes a cell

    monkeypatch.setattr(api, "diff_layer", broken)
    path = write_csv(tmp_path / "r.csv", register_rows(2))
    assert import_command("register", path, store.path, yes=True) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "予期しないエラーが起きました (KeyError)" in err and "ストアは変更していません" in err
    assert "秘密" not in err and "Traceback" not in err
    assert store.path.read_bytes() == before
    assert import_command("register", path, store.path, yes=True, verbose=True) == EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_xlsx_without_a_header_on_the_first_sheet_names_the_other_sheets(tmp_path, capsys):
    tiny_store(tmp_path)
    book = write_xlsx(tmp_path / "b.xlsx", register_rows(2), sheet="名簿", first_sheet="説明")
    assert import_command("register", book, tmp_path / "k.gpkg", yes=True) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "シート「説明」に見出し行が見つかりません" in err and "ほかのシート (名簿)" in err
    assert import_command("register", book, tmp_path / "k.gpkg", sheet="名簿", dry_run=True) == EXIT_OK
    assert "Excel (.xlsx) シート「名簿」、2 行" in capsys.readouterr().out


def test_the_change_table_is_shown_before_the_question_and_nothing_is_written_before_yes(tmp_path, capsys):
    from test_import_support import REGISTER_HEADER, register_row

    store = tiny_store(tmp_path)
    import_command("register", write_csv(tmp_path / "m1.csv", register_rows(3)), store.path, yes=True)
    before = store.path.read_bytes()
    capsys.readouterr()
    month2 = [REGISTER_HEADER, register_row("P002", address="青森市浜田1-2-3", care="要介護3"),
              register_row("P003"), register_row("P004", address="青森市古川1丁目5")]
    seen = {}

    def confirm(question):
        seen["shown"] = capsys.readouterr().out
        seen["untouched"] = store.path.read_bytes() == before
        return True

    assert import_command("register", write_csv(tmp_path / "m2.csv", month2), store.path,
                          confirm=confirm, allow_mass_delete=True) == EXIT_OK  # 1 of 3 deleted
    assert seen["untouched"]
    assert "追加 1、削除 1、更新 1、変更なし 1" in seen["shown"]
    table = [line.split() for line in seen["shown"].splitlines() if line.strip().startswith("T0")]
    assert table == [["T01", "1", "0", "0"], ["T02", "0", "1", "1"]]
    assert sorted(store.read("register")["person_id"]) == ["P002", "P003", "P004"]


def test_ctrl_c_at_the_question_writes_nothing(tmp_path, capsys):
    store = tiny_store(tmp_path)
    before = store.path.read_bytes()

    def interrupted(question):
        raise KeyboardInterrupt

    path = write_csv(tmp_path / "r.csv", register_rows(2))
    assert import_command("register", path, store.path, confirm=interrupted) == EXIT_INTERRUPTED
    assert "ストアは変更していません" in capsys.readouterr().err
    assert store.path.read_bytes() == before
