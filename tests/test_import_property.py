"""Property: random garbage rows never crash the importer with anything but a reported problem."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_import_support import run_import, tiny_store, write_csv

from karte.domain.errors import KarteError, ValidationError
from karte.importing.headers import FIELDS, REQUIRED

_STORE_DIR = Path(tempfile.mkdtemp(prefix="karte-prop-"))
STORE = tiny_store(_STORE_DIR)

# cells that look like what coordinators type, mixed with plain garbage
_plausible = st.sampled_from([
    "", " ", "　", "同意", "無", "○", "×", "有", "S15.3.2", "昭和15年3月2日", "令和元年5月1日", "2099-01-01",
    "1940/3/2", "青森市新町一丁目3-7", "新町1-3-7", "弘前市本町1", "要介護3", "要支援9", "車いす",
    "T01", "東地区", "Z9", "40.82", "140.74", "999", "-1", "NaN", "inf", "1e309", "０１７－０００－１２３４",
    "P1", "P1", "民生委員", "見守り、除雪", "*", "X", "-", "=SUM(A1)", "\"", ",", "\n", "ﾀﾞ", "㍼",
])
_cell = st.one_of(_plausible, st.text(max_size=12))


def _rows(kind: str):
    """A header with the kind's required columns (so the rows themselves get checked) plus random
    accepted or unknown ones, in random order; then rows of random cells."""
    required = [FIELDS[kind][f][0] for f in REQUIRED[kind]]
    others = [n for names in FIELDS[kind].values() for n in names if n not in required] + ["備考"]
    header = st.lists(st.sampled_from(others), max_size=8, unique=True).flatmap(
        lambda extra: st.permutations(required + extra))
    return header.flatmap(lambda h: st.tuples(
        st.just(h), st.lists(st.lists(_cell, min_size=len(h), max_size=len(h) + 1), max_size=8)))


def _check(kind: str, header, body) -> None:
    path = write_csv(_STORE_DIR / f"{kind}.csv", [list(header), *body], encoding="utf-8-sig")
    try:
        report = run_import(STORE, kind, path, dry_run=True)
    except ValidationError as exc:
        assert exc.problems                                   # always says what is wrong
        for p in exc.problems:
            assert p.file == path.name and p.message_ja and p.message_en
    else:
        assert report.ok and not report.written
        assert report.rows == sum(1 for r in body if any(c.strip(" \t\r\n\u3000") for c in r))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rows("register"))
def test_garbage_register_rows_are_reported_not_crashed(data):
    _check("register", *data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["cooperators", "services", "shelters"]).flatmap(
    lambda k: st.tuples(st.just(k), _rows(k))))
def test_garbage_rows_of_other_kinds(data):
    kind, (header, body) = data
    _check(kind, header, body)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_bytes_are_an_input_or_validation_error(data):
    path = _STORE_DIR / "bytes.csv"
    path.write_bytes(data)
    with contextlib.suppress(KarteError):     # anything else (a crash) fails the test
        run_import(STORE, "register", path, dry_run=True)
