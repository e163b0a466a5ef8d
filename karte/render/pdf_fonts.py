"""The Japanese font of the printed sheets: IPAexGothic, shipped by a PyPI dependency.

The font file comes from the ``japanize-matplotlib`` package (a declared dependency), which ships
``ipaexg.ttf`` (IPAexGothic, IPA Font License v1.0: embedding in PDF documents is allowed, art.
2.5). It is a TrueType-outline font, so ReportLab embeds it as a *subset* of the glyphs used.
Nothing is looked up among the system's fonts: a machine with no CJK font installed prints the
same sheets, and a missing font is an error, never a silent fallback to boxes.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from karte.domain.errors import KarteError

#: The name the font is registered under in ReportLab (and shown by ``pdffonts``).
FONT = "IPAexGothic"

#: Stands in for a character the font lacks (〓, the geta mark Japanese print uses for that):
#: never the empty box of a missing glyph.
MISSING = "〓"

_PACKAGE = "japanize_matplotlib"
_FILE = "fonts/ipaexg.ttf"


def font_path() -> Path:
    """Where ``ipaexg.ttf`` is, inside the installed ``japanize_matplotlib`` package.

    The package is located without importing it (its import pulls in matplotlib).
    """
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / _FILE
        if path.is_file():
            return path
    raise KarteError("日本語フォント IPAexGothic が見つかりません: pip install japanize-matplotlib "
                     "(karte の依存パッケージ) を実行してください")


def register_font() -> str:
    """Register IPAexGothic with ReportLab once per process; return its name."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(font_path())))
    return FONT


@functools.lru_cache(maxsize=8192)
def safe_text(text: str) -> str:
    """``text`` with every character IPAexGothic lacks replaced by :data:`MISSING` (cached: a
    city's sheets print the same labels, roles and headings thousands of times)."""
    cmap = _cmap()
    if all(ord(ch) in cmap for ch in text):
        return text
    return "".join(ch if ord(ch) in cmap or ch in "\n\t" else MISSING for ch in text)


def missing_glyphs(text: str) -> set[str]:
    """The characters of ``text`` the font cannot draw."""
    cmap = _cmap()
    return {ch for ch in text if ord(ch) not in cmap}


@functools.cache
def _cmap() -> dict[int, int]:
    from reportlab.pdfbase import pdfmetrics

    return pdfmetrics.getFont(register_font()).face.charToGlyph
