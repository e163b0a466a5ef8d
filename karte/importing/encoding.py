"""Detect and decode the text encoding of a CSV file: UTF-8, UTF-8 with BOM, or CP932.

Detection is rule-based, never a silent guess:

1. a UTF-8 BOM means UTF-8; a UTF-16 BOM means UTF-16 (Excel's "Unicode text");
2. bytes that decode as UTF-8 but not as CP932 are UTF-8, and the other way round;
3. pure ASCII is ASCII (both readings agree);
4. bytes valid in both are judged by which reading gives Japanese text: CP932 text with kana or
   common kanji is never valid UTF-8, while UTF-8 text often happens to be valid CP932, so a
   Japanese-looking UTF-8 reading wins; a CP932 reading made only of half-width katakana against
   a UTF-8 reading with accented Latin letters (``café``) is in doubt, and
   :class:`~karte.domain.errors.InputError` asks the user to name the encoding.

Bytes valid in neither, an old ``.xls`` workbook, or a binary file are refused with a message
saying what was expected.
"""

from __future__ import annotations

import re

from karte.domain.errors import InputError

UTF8 = "utf-8"
UTF8_BOM = "utf-8-sig"
CP932 = "cp932"
UTF16 = "utf-16"
ENCODINGS = (UTF8, UTF8_BOM, CP932, UTF16)

#: How each encoding is named to the user.
ENCODING_JA = {UTF8: "UTF-8", UTF8_BOM: "UTF-8 (BOM付き)", CP932: "Shift_JIS (CP932)",
               UTF16: "UTF-16", "ascii": "ASCII", "xlsx": "Excel (.xlsx)"}

_ALIASES = {"utf8": UTF8, "utf-8": UTF8, "utf-8-sig": UTF8_BOM, "utf8-sig": UTF8_BOM,
            "utf8bom": UTF8_BOM, "cp932": CP932, "sjis": CP932, "shift_jis": CP932,
            "shift-jis": CP932, "shiftjis": CP932, "ms932": CP932, "windows-31j": CP932,
            "utf-16": UTF16, "utf16": UTF16}

# Hiragana, katakana, CJK ideographs, CJK punctuation, full-width forms: what Japanese text is.
_JAPANESE = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff01-\uff9f]")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_FULL_WIDTH = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_LATIN = re.compile(r"[\u00c0-\u024f]")


def canonical_encoding(name: str) -> str:
    """``"Shift_JIS"`` -> ``"cp932"``; raise :class:`InputError` for encodings we do not read."""
    key = name.strip().lower()
    if key not in _ALIASES:
        raise InputError(f"文字コード {name} には対応していません (UTF-8, UTF-8 BOM, CP932 のいずれか)")
    return _ALIASES[key]


def detect_encoding(data: bytes, *, source: str) -> str:
    """The encoding of ``data``: one of :data:`ENCODINGS` or ``"ascii"``; see the module doc."""
    if data.startswith(b"\xef\xbb\xbf"):
        return UTF8_BOM
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return UTF16
    _refuse_binary(data, source)
    as_utf8 = _try(data, UTF8)
    as_cp932 = _try(data, CP932)
    if as_utf8 is not None and as_cp932 is not None and as_utf8 == as_cp932:
        return "ascii"
    if as_utf8 is not None and as_cp932 is None:
        return UTF8
    if as_cp932 is not None and as_utf8 is None:
        return CP932
    if as_utf8 is None and as_cp932 is None:
        raise InputError(f"{source}: 文字コードが UTF-8 でも Shift_JIS (CP932) でもありません。"
                         "Excel で「CSV UTF-8」として保存し直してください "
                         "(neither UTF-8 nor CP932)")
    # Valid in both. CP932 text with kana or common kanji is never valid UTF-8, but UTF-8 text is
    # often valid CP932 (as rare kanji and half-width kana): a Japanese-looking UTF-8 reading wins.
    if _japanese_share(as_utf8) >= 0.9:
        return UTF8
    if _japanese_share(as_cp932) >= 0.9:
        full_width = _FULL_WIDTH.search(as_cp932) is not None
        if full_width or not _LATIN.search(as_utf8):
            return CP932
    raise InputError(f"{source}: 文字コードを判定できません (UTF-8 とも Shift_JIS とも読めます)。"
                     "--encoding utf-8 か --encoding cp932 で指定してください "
                     "(ambiguous encoding: say which)")


def decode(data: bytes, *, source: str, encoding: str | None = None) -> tuple[str, str]:
    """Decode ``data``; returns ``(text, encoding)``. ``encoding`` overrides detection."""
    enc = canonical_encoding(encoding) if encoding else detect_encoding(data, source=source)
    codec = UTF8 if enc == "ascii" else enc
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        hint = ""
        if encoding:  # the user named it: say what the bytes look like instead
            try:
                found = detect_encoding(data, source=source)
            except InputError:
                found = None
            if found and found != enc:
                hint = (f"。このファイルは {ENCODING_JA.get(found, found)} のようです "
                        "(--encoding を付けずに実行すると自動で判定します)")
        raise InputError(f"{source}: {ENCODING_JA.get(enc, enc)} として読めません "
                         f"({exc.start + 1} バイト目{hint}; not valid {enc})") from exc
    return text.removeprefix("\ufeff"), enc


def _try(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        return None


def _japanese_share(text: str) -> float:
    non_ascii = len(_NON_ASCII.findall(text))
    if non_ascii == 0:
        return 0.0
    return len(_JAPANESE.findall(text)) / non_ascii


def _refuse_binary(data: bytes, source: str) -> None:
    head = data[:8]
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InputError(f"{source}: 古い Excel 形式 (.xls) は読めません。"
                         ".xlsx か CSV で保存し直してください "
                         "(.xls is not supported)")
    if head.startswith(b"PK\x03\x04"):
        raise InputError(f"{source}: ZIP 形式のファイルです。Excel ブックなら拡張子を .xlsx にしてください "
                         "(zip archive given as CSV)")
    if b"\x00" in data[:4096]:
        raise InputError(f"{source}: テキスト (CSV) ファイルではありません (binary file)")
