"""Importing the council's and the city's own files into the karte store (``karte import``).

See :func:`karte.importing.api.import_file` and ``docs/import/README.md``. The record kinds of
each topic (:mod:`karte.importing.records`) register themselves when their module is imported,
which happens here.
"""

from karte.importing import care, history, supporters  # noqa: F401 (they register their kinds)
from karte.importing.api import (
    KINDS,
    ImportReport,
    ImportValidationError,
    PreparedImport,
    apply_import,
    import_file,
    prepare_import,
)

__all__ = ["KINDS", "ImportReport", "ImportValidationError", "PreparedImport", "apply_import",
           "import_file", "prepare_import"]
