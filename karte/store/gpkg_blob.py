"""GeoPackage geometry blobs: the small header in front of the WKB, both ways, and the SQL
functions the spec's R-tree triggers call.

A GeoPackage stores each geometry as ``GP``, a version byte, a flags byte, the SRS id and an
optional envelope, then standard WKB (GeoPackage 1.4, clause 2.1.3). Reading strips the header so
shapely reads the WKB; writing (rows appended or edited one at a time) puts it back the way GDAL
does (no envelope for points, an XY envelope for everything else, the empty flag for empty
geometries). The R-tree triggers GDAL creates call ``ST_IsEmpty`` and ``ST_MinX`` … ``ST_MaxY``,
which every writer of the file must provide: :func:`register_functions` gives them to a Python
``sqlite3`` connection, so GDAL's own SQLite is never needed on the store file.
"""

from __future__ import annotations

import sqlite3
import struct

import numpy as np
import shapely

#: Envelope size in bytes by the envelope code in bits 1-3 of the flags byte.
_ENVELOPE_BYTES = (0, 32, 48, 48, 64)
_HEADER_BYTES = 8
_LITTLE_ENDIAN = 0x01
_XY_ENVELOPE = 0x02
_EMPTY = 0x10


def to_geometries(blobs) -> np.ndarray:
    """Shapely geometries (None for NULL) from GeoPackage blobs, as pyogrio returns them."""
    return shapely.from_wkb(np.array([_wkb(b) for b in blobs], dtype=object))


def to_blob(geometry, srs_id: int) -> bytes | None:
    """The GeoPackage blob of one shapely geometry (``None`` stays NULL)."""
    if geometry is None:
        return None
    empty = geometry.is_empty
    flags = _LITTLE_ENDIAN | (_EMPTY if empty else 0)
    envelope = b""
    if not empty and geometry.geom_type != "Point":
        minx, miny, maxx, maxy = geometry.bounds
        flags |= _XY_ENVELOPE
        envelope = struct.pack("<4d", minx, maxx, miny, maxy)
    header = b"GP\x00" + bytes([flags]) + struct.pack("<i", srs_id)
    return header + envelope + shapely.to_wkb(geometry, byte_order=1, flavor="iso")


def bounds(blob: bytes) -> tuple[float, float, float, float] | None:
    """``(minx, maxx, miny, maxy)`` of a blob (the R-tree's order), None when empty."""
    flags = blob[3]
    if flags & _EMPTY:
        return None
    if (flags >> 1) & 0x07:
        return struct.unpack_from("<4d" if flags & _LITTLE_ENDIAN else ">4d", blob, _HEADER_BYTES)
    geometry = shapely.from_wkb(_wkb(blob))
    if geometry.is_empty:
        return None
    minx, miny, maxx, maxy = geometry.bounds
    return minx, maxx, miny, maxy


def register_functions(con: sqlite3.Connection) -> None:
    """Give ``con`` the SQL functions of the GeoPackage R-tree triggers."""
    con.create_function("ST_IsEmpty", 1, _is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        con.create_function(name, 1, _bound(i), deterministic=True)


def _wkb(blob: bytes | None) -> bytes | None:
    if blob is None:
        return None
    return blob[_HEADER_BYTES + _ENVELOPE_BYTES[(blob[3] >> 1) & 0x07]:]


def _is_empty(blob: bytes | None) -> int | None:
    return None if blob is None else int(bounds(blob) is None)


def _bound(index: int):
    def value(blob: bytes | None) -> float | None:
        if blob is None:
            return None
        box = bounds(blob)
        return None if box is None else box[index]

    return value
