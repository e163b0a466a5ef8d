"""Every copy of the register accounted for: the hand-out ledger (名簿の配布記録, issue 20).

A **copy** is one confidential or drill sheet, one personal CSV or one sealed shelter list. It is
recorded before it is made (:func:`make_copies`: the number comes from the store, so it can be
printed), with what it lists and the **version** of that (:func:`listing_version`), who made it,
for whom, why, on which legal basis and until when. What happens to it later (hand-over, return,
destruction, the opening of a sealed list, drill marks entered) is appended as an event
(:func:`record_event`); the **state** of a copy is derived from its events, never stored
(:func:`karte.domain.copies.state_of`). Both record layers are append-only and personal: read and
written as the acting user, every call in the store's access log.

The register version is a digest of exactly the rows a copy lists (the district's register rows
in the copy's scope, and its roster when the copy prints one), taken from the build snapshot:
whenever one of those rows changes (a person moves, withdraws consent, gets a supporter), the
digest changes, and every outstanding copy of the older version is flagged as superseded
(:attr:`CopyView.superseded`); a change elsewhere in the city leaves it alone.

Drill sheets carry each person's register id beside the tick box; :func:`enter_paper_marks` turns
the ticks of one paper copy, entered on a phone, into :class:`PaperMark` rows for the drill
records (:class:`DrillRecords`, provided by the drills service).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd

from karte.domain.access import SHAREABLE, Access, Level
from karte.domain.copies import (
    BASIS_SHORT,
    COPIES,
    EVENTS,
    HOLDER_JA,
    KIND_JA,
    PURPOSE_JA,
    Basis,
    CopyKind,
    Event,
    HolderKind,
    Purpose,
    Scope,
    State,
    state_of,
)
from karte.domain.errors import AccessDenied, ConflictError, InputError, NotFoundError
from karte.domain.layers import LAYERS, MUNICIPALITY, Layer, join_list, split_list
from karte.domain.schema import Consent, short_address
from karte.render.ledger_report import LedgerReport, ReportRow, render_report
from karte.render.shelter_list import SealedList, SealedPerson, render_sealed_list
from karte.services.personal import read_records
from karte.snapshot import Snapshot, current
from karte.store.base import ROWS, Store

JST = ZoneInfo("Asia/Tokyo")

#: Who keeps the ledger: the pages and the report are theirs (a district member records the copies
#: they print, and enters drill marks, in their own district).
LEDGER_LEVELS = frozenset({Level.CITY_STAFF, Level.COORDINATOR})

#: Copy numbers as printed (``K000012``); what a person types is normalised to this.
COPY_ID = re.compile(r"^K\d{6,12}$")

#: What a drill sheet's two tick columns mean (支援者別: 確認, 避難先別: 到着).
TICKS = {"confirmed": "確認", "arrived": "到着"}

#: Due dates when the maker gives none: a drill copy comes back after the drill, a disaster copy
#: after the emergency; copies given in normal times and sealed lists are renewed every fiscal year.
DRILL_DAYS = 14
DISASTER_DAYS = 30

#: Longest free text kept (holder names, notes).
MAX_TEXT = 200


# --- what a copy lists, and its version ----------------------------------------------------------

@dataclass(frozen=True)
class Listing:
    """The rows a copy lists: a district's (or, for a sealed list, a shelter's) register rows in
    ``scope``, and the district's roster when ``layers`` names it."""

    district: str | None
    layers: tuple[str, ...]
    scope: Scope
    municipality: str | None
    shelter: str | None = None


def listing_of(kind: CopyKind, *, district: str | None, municipality: str | None, level: Level,
               shelter: str | None = None) -> Listing:
    """What a copy of ``kind`` made by a user of ``level`` lists."""
    if kind is CopyKind.SEALED:
        return Listing(district, (Layer.REGISTER.value,), Scope.ALL, municipality, shelter)
    if kind is CopyKind.CSV_COOPERATORS:
        return Listing(district, (Layer.COOPERATORS.value,), Scope.SHAREABLE, municipality)
    if kind is CopyKind.CSV_REGISTER:  # the register CSV lists what its maker may see
        scope = Scope.ALL if level == Level.CITY_STAFF else Scope.SHAREABLE
        return Listing(district, (Layer.REGISTER.value,), scope, municipality)
    # sheets print shareable rows only, whoever prints them (a printed sheet leaves the office)
    return Listing(district, (Layer.REGISTER.value, Layer.COOPERATORS.value), Scope.SHAREABLE, municipality)


def listing_rows(snap: Snapshot, listing: Listing) -> dict[str, pd.DataFrame]:
    """The snapshot's rows of each layer the listing names (the trusted read the analyses use:
    for digests and ids, never shown)."""
    inputs = snap.analysis_inputs()
    out = {}
    for layer in listing.layers:
        frame = inputs[layer]
        keep = np.ones(len(frame), dtype=bool)
        if listing.municipality is not None and MUNICIPALITY in frame.columns:
            keep &= frame[MUNICIPALITY].to_numpy(dtype=object) == listing.municipality
        if listing.shelter is not None and layer == Layer.REGISTER:
            keep &= frame["shelter_id"].to_numpy(dtype=object) == listing.shelter
        else:
            keep &= frame["district_code"].to_numpy(dtype=object) == listing.district
        if layer == Layer.REGISTER and listing.scope is Scope.SHAREABLE:
            keep &= np.fromiter((c in SHAREABLE for c in frame["consent"]), dtype=bool, count=len(frame))
        out[layer] = frame[keep]
    return out


def listing_version(snap: Snapshot, listing: Listing) -> str:
    """The register version of ``listing``: the first 8 hex digits of a SHA-256 over its rows
    (sorted by key, every column but the municipality, points to the centimetre), once per
    snapshot. Equal rows give equal versions in any process; any change to a listed row, a row
    added or a row gone gives another."""
    return snap.memo(("copies.version", listing), lambda: digest(listing_rows(snap, listing)))


def listing_people(snap: Snapshot, listing: Listing) -> list[str]:
    """The register ids ``listing`` holds, sorted."""
    frame = listing_rows(snap, listing).get(Layer.REGISTER.value)
    return sorted(str(p) for p in frame["person_id"]) if frame is not None else []


def digest(frames: Mapping[str, pd.DataFrame]) -> str:
    """:func:`listing_version` of given frames (layer -> rows)."""
    h = hashlib.sha256()
    for layer in sorted(frames):
        frame = frames[layer]
        key = LAYERS[layer].key
        geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
        names = sorted(c for c in frame.columns if c not in (geometry, MUNICIPALITY))
        h.update(f"{layer}|{','.join(names)}\n".encode())
        order = np.argsort(frame[key].astype(str).to_numpy(), kind="stable")
        columns = [[_canonical(v) for v in frame[c].to_numpy(dtype=object)[order]] for c in names]
        if geometry is not None:
            geoms = frame.geometry.to_numpy()[order]
            columns.append(["" if g is None or g.is_empty else f"{g.x:.2f},{g.y:.2f}" for g in geoms])
        for row in zip(*columns, strict=True):
            h.update(("\x1f".join(row) + "\n").encode())
    return h.hexdigest()[:8]


def _canonical(v) -> str:
    """A cell as text, the same whatever dtype a store gave it (1 and 1.0, True and numpy's)."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, float | np.floating):
        return str(int(v)) if float(v).is_integer() else repr(round(float(v), 6))
    return str(v)


# --- what the maker says about a copy ------------------------------------------------------------

@dataclass(frozen=True)
class CopyRequest:
    """For whom, why, on which basis and until when a copy is made (the command line's options,
    the web's form). Empty fields take defaults (:func:`complete`)."""

    holder_kind: str = HolderKind.OFFICE.value
    holder_name: str = ""
    holder_ref: str = ""
    purpose: str = ""
    basis: tuple[str, ...] = ()
    due_back: dt.date | None = None
    note: str = ""


def today_jst() -> dt.date:
    return dt.datetime.now(JST).date()


def fiscal_year_end(day: dt.date) -> dt.date:
    """March 31 closing the fiscal year (年度, April to March) of ``day``."""
    return dt.date(day.year + (1 if day.month >= 4 else 0), 3, 31)


def fiscal_year_of(day: dt.date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def default_purpose(kind: CopyKind) -> Purpose:
    return {CopyKind.DRILL: Purpose.DRILL, CopyKind.SEALED: Purpose.DISASTER}.get(kind, Purpose.NORMAL)


def default_due(kind: CopyKind, purpose: Purpose, today: dt.date) -> dt.date:
    if kind is CopyKind.SEALED or purpose is Purpose.NORMAL:
        return fiscal_year_end(today)
    return today + dt.timedelta(days=DRILL_DAYS if purpose is Purpose.DRILL else DISASTER_DAYS)


def default_basis(listing: Listing, purpose: Purpose, consents: Iterable[str]) -> tuple[str, ...]:
    """The legal basis that covers what the copy lists: the disaster provision in a disaster,
    the city's internal use for rows without consent, else the consents of the listed people."""
    if purpose is Purpose.DISASTER:
        return (Basis.DISASTER.value,)
    if listing.scope is Scope.ALL:
        return (Basis.INTERNAL.value,)
    seen = set(consents)
    found = tuple(basis.value for answer, basis in ((Consent.CONSENTED, Basis.CONSENT),
                                                     (Consent.ORDINANCE, Basis.ORDINANCE))
                  if answer.value in seen)
    return found or (Basis.CONSENT.value,)


def complete(request: CopyRequest, kind: CopyKind, listing: Listing, access: Access, *,
             consents: Iterable[str] = (), today: dt.date | None = None) -> CopyRequest:
    """``request`` with its defaults filled in and checked; :class:`InputError` (in Japanese,
    every problem at once) when something does not fit."""
    today = today or today_jst()
    problems = []
    holder_kind = request.holder_kind or HolderKind.OFFICE.value
    if holder_kind not in HolderKind._value2member_map_:
        problems.append(f"提供先の種類は {' / '.join(HolderKind)} のどれかです（指定: {holder_kind}）")
    purpose = request.purpose or default_purpose(kind).value
    if purpose not in Purpose._value2member_map_:
        problems.append(f"目的は {' / '.join(Purpose)} のどれかです（指定: {purpose}）")
        purpose = default_purpose(kind).value
    basis = tuple(dict.fromkeys(request.basis)) or default_basis(listing, Purpose(purpose), consents)
    unknown = [b for b in basis if b not in Basis._value2member_map_]
    if unknown:
        problems.append(f"根拠は {' / '.join(Basis)} のどれかです（指定: {', '.join(unknown)}）")
    elif Basis.DISASTER in basis and purpose != Purpose.DISASTER:
        problems.append("災害時の提供（第49条の11第3項）を根拠にできるのは目的が災害時の複製だけです")
    elif listing.scope is Scope.ALL and not set(basis) <= {Basis.DISASTER, Basis.INTERNAL}:
        problems.append("同意のない方を含む名簿の根拠は、市の内部利用か災害時の提供だけです")
    if kind is CopyKind.SEALED and purpose != Purpose.DISASTER:
        problems.append("封印名簿の目的は災害時だけです")
    due = request.due_back or default_due(kind, Purpose(purpose), today)
    if due < today:
        problems.append(f"返却期限 {due.isoformat()} が過ぎています")
    name = (request.holder_name or "").strip() or (access.user if holder_kind == HolderKind.OFFICE else "")
    if not name:
        problems.append("提供先（受け取る人・団体・避難所の名前）を書いてください")
    for label, text in (("提供先", name), ("参照番号", request.holder_ref), ("メモ", request.note)):
        if len(text or "") > MAX_TEXT:
            problems.append(f"{label}が長すぎます（{MAX_TEXT} 文字まで）")
    if problems:
        raise InputError("複製を記録できません: " + "。".join(problems))
    return CopyRequest(holder_kind=holder_kind, holder_name=name,
                       holder_ref=(request.holder_ref or "").strip(), purpose=purpose, basis=basis,
                       due_back=due, note=(request.note or "").strip())


def print_preview(store: Store, access: Access, district: str, kind: CopyKind) -> dict:
    """What the print form shows before a personal edition of ``district`` is printed: the
    district's name, how many people the copy will list, the register version, and the request's
    defaults (:func:`complete`). Counts and a digest from the snapshot: nothing personal is read."""
    snap = current(store)
    if district not in snap.kartes:
        raise NotFoundError(f"地区 {district} はありません")
    listing = listing_of(kind, district=district, municipality=access.municipality, level=access.level)
    register = listing_rows(snap, listing).get(Layer.REGISTER.value)
    consents = list(register["consent"]) if register is not None else []
    return {"district_name": snap.district_name(district), "persons": len(consents),
            "version": listing_version(snap, listing),
            "default": complete(CopyRequest(), kind, listing, access, consents=consents)}


def district_choices(store: Store) -> list[tuple[str, str]]:
    """(code, name) of every district of the build, for the pages' selects."""
    snap = current(store)
    return [(code, snap.district_name(code)) for code in snap.codes]


# --- making copies --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NewCopy:
    """One copy about to be made: what it is and lists, and what its maker said."""

    kind: CopyKind
    listing: Listing
    request: CopyRequest
    version: str
    person_ids: tuple[str, ...] = ()
    rows: int = 0
    file: str = ""
    paper: str = ""


def new_copy(snap: Snapshot, access: Access, kind: CopyKind, *, district: str | None,
             request: CopyRequest | None = None, shelter: str | None = None,
             person_ids: Sequence[str] | None = None, consents: Iterable[str] | None = None,
             rows: int | None = None, file: str = "", paper: str = "",
             today: dt.date | None = None) -> NewCopy:
    """A copy of ``kind`` for ``district`` (a sealed list: for ``shelter``), with its version from
    the snapshot and its request completed. ``person_ids``, ``consents`` and ``rows`` describe
    what is really printed (default: the listing's rows in the snapshot)."""
    if kind is CopyKind.SEALED and access.level != Level.CITY_STAFF:
        raise AccessDenied("封印名簿（同意のない方を含む全員）を作成できるのは市職員だけです")
    listing = listing_of(kind, district=district, municipality=access.municipality, level=access.level,
                         shelter=shelter)
    if person_ids is None or consents is None or rows is None:
        frames = listing_rows(snap, listing)
        register = frames.get(Layer.REGISTER.value)
        if person_ids is None:
            person_ids = sorted(str(p) for p in register["person_id"]) if register is not None else []
        if consents is None:
            consents = list(register["consent"]) if register is not None else []
        if rows is None:
            rows = sum(len(f) for f in frames.values())
    request = complete(request or CopyRequest(), kind, listing, access, consents=consents, today=today)
    return NewCopy(kind=kind, listing=listing, request=request, version=listing_version(snap, listing),
                   person_ids=tuple(person_ids), rows=int(rows), file=file, paper=paper)


def make_copies(store: Store, access: Access, copies: Sequence[NewCopy]) -> list[dict]:
    """Record ``copies`` in the ledger as ``access`` (one transaction, one access-log row per
    district) and return them as stored, each with its ``copy_id``."""
    if not copies:
        return []
    _require_rows(store)
    made_at = _now()
    records = [{
        "district_code": c.listing.district, "kind": c.kind.value, "shelter_id": c.listing.shelter,
        "layers": join_list(c.listing.layers), "scope": c.listing.scope.value,
        "persons": len(c.person_ids), "rows": c.rows, "person_ids": join_list(c.person_ids),
        "register_version": c.version, "holder_kind": c.request.holder_kind,
        "holder_name": c.request.holder_name, "holder_ref": c.request.holder_ref or None,
        "purpose": c.request.purpose, "basis": join_list(c.request.basis),
        "due_back": c.request.due_back.isoformat(), "made_by": access.user, "made_at": made_at,
        "made_via": access.route, "file": c.file or None, "paper": c.paper or None,
        "note": c.request.note or None,
    } for c in copies]
    return store.append_rows(COPIES, records, access=access)


def void_copies(store: Store, access: Access, copies: Sequence[Mapping], *, why: str) -> None:
    """Mark copies that were recorded but never made (their rendering failed) as void."""
    rows = [{"copy_id": c["copy_id"], "district_code": c["district_code"], "event": Event.VOIDED.value,
             "at": _now(), "recorded_by": access.user, "person": None, "holder_kind": None,
             "due_back": None, "note": why, "via": access.route} for c in copies]
    if rows:
        store.append_rows(EVENTS, rows, access=access)


def record_export(store: Store, access: Access, *, kind: str, district: str | None, layer: str,
                  rows: int) -> str | None:
    """Record one personal export (``kind`` ``csv``: a CSV download of ``layer`` ``register`` or
    ``cooperators`` of ``district``, ``rows`` rows) as a copy held by its maker, and return its
    copy number (put in the file's name); None when the store keeps no row layers.

    The web's CSV route asks nothing before the download: the copy is recorded as held by the
    person who downloaded it (市・社協の手元), due back at the end of the fiscal year; a hand-over
    recorded later (:func:`record_event`) names the holder."""
    if ROWS not in store.capabilities:
        return None
    if kind != "csv" or layer not in (Layer.REGISTER, Layer.COOPERATORS):
        raise ValueError(f"record_export: kind 'csv' of register or cooperators, got {kind!r} of {layer!r}")
    copy_kind = CopyKind.CSV_REGISTER if layer == Layer.REGISTER else CopyKind.CSV_COOPERATORS
    snap = current(store)
    copy = new_copy(snap, access, copy_kind, district=district, rows=rows)
    stored = make_copies(store, access, [copy])[0]
    return str(stored["copy_id"])


# --- events ---------------------------------------------------------------------------------------

def record_event(store: Store, access: Access, copy_id: str, event: str | Event, *, person: str = "",
                 holder_kind: str = "", due_back: dt.date | None = None, note: str = "",
                 at: dt.datetime | None = None, today: dt.date | None = None) -> CopyView:
    """Append ``event`` (hand-over, return, destruction, opening) to copy ``copy_id`` as
    ``access``; return the copy as it is now.

    :class:`NotFoundError` for a copy the user cannot see, :class:`ConflictError` (409) when the
    copy's state does not allow the event (already returned, destroyed…), :class:`InputError` for
    an event that does not fit the copy (only a sealed list is opened)."""
    check_ledger(access)
    copy_id = normalise_id(copy_id)
    try:
        event = Event(event)
    except ValueError:
        raise InputError(f"記録できるのは {', '.join(e.value for e in USER_EVENTS)} です") from None
    if event not in USER_EVENTS:
        raise InputError(f"{event.ja}は手で記録できません")
    view = copy_view(store, access, copy_id, today=today)
    if event is Event.OPENED and view.kind is not CopyKind.SEALED:
        raise InputError("開封を記録できるのは封印名簿だけです")
    if event not in ALLOWED_BY_STATE[view.state]:
        raise ConflictError(f"複製 {copy_id} は{view.state.ja}です。{event.ja}は記録できません")
    if holder_kind and holder_kind not in HolderKind._value2member_map_:
        raise InputError(f"提供先の種類は {' / '.join(HolderKind)} のどれかです")
    person = (person or "").strip()
    if event is Event.HANDED_OVER and not person:
        person = view.row.get("holder_name") or ""
    if event is Event.HANDED_OVER and not person:
        raise InputError("受け取った人・団体の名前を書いてください")
    if len(person) > MAX_TEXT or len(note or "") > MAX_TEXT:
        raise InputError(f"名前とメモは {MAX_TEXT} 文字までです")
    when = _at(at)
    if due_back is not None and due_back < (today or today_jst()):
        raise InputError(f"返却期限 {due_back.isoformat()} が過ぎています")
    store.append_rows(EVENTS, [{
        "copy_id": copy_id, "district_code": view.row["district_code"], "event": event.value, "at": when,
        "recorded_by": access.user, "person": person or None,
        "holder_kind": (holder_kind or None) if event is Event.HANDED_OVER else None,
        "due_back": due_back.isoformat() if due_back is not None and event is Event.HANDED_OVER else None,
        "note": (note or "").strip() or None, "via": access.route}], access=access)
    return copy_view(store, access, copy_id, today=today)


#: Events a person records by hand (void is the program's; marks come with their drill).
USER_EVENTS = (Event.HANDED_OVER, Event.RETURNED, Event.DESTROYED, Event.OPENED)
#: Which hand-recorded events each state allows.
ALLOWED_BY_STATE = {
    State.MADE: {Event.HANDED_OVER, Event.RETURNED, Event.DESTROYED, Event.OPENED},
    State.OUT: {Event.HANDED_OVER, Event.RETURNED, Event.DESTROYED, Event.OPENED},
    State.OPENED: {Event.HANDED_OVER, Event.RETURNED, Event.DESTROYED},
    State.RETURNED: {Event.DESTROYED},
    State.DESTROYED: set(),
    State.VOID: set(),
}


def normalise_id(text: str) -> str:
    """A copy number as typed or scanned (``k 000012``, ``K000012``, a URL ending in it) as
    stored; :class:`InputError` when it is not one."""
    value = re.sub(r"[\s\u3000]", "", str(text or "")).upper()
    value = value.translate(str.maketrans("０１２３４５６７８９Ｋ", "0123456789K"))
    value = value.rstrip("/").rsplit("/", 1)[-1]
    if not COPY_ID.match(value):
        raise InputError(f"複製番号は K と数字6桁です（例: K000012）。読み取った値: {value[:20]}")
    return value


# --- the ledger -----------------------------------------------------------------------------------

@dataclass
class CopyView:
    """One copy as the ledger shows it: its row (without the listed ids), its events (oldest first)
    and what follows from them."""

    row: dict
    events: list[dict]
    state: State
    overdue: bool
    #: the copy lists an older version than the register has now (None: cannot tell, e.g. the
    #: district is gone from the build)
    superseded: bool | None
    current_version: str | None
    holder: str
    holder_kind: str
    since: str
    due_back: str
    person_ids: tuple[str, ...] = field(default=(), repr=False)

    @property
    def copy_id(self) -> str:
        return str(self.row["copy_id"])

    @property
    def kind(self) -> CopyKind:
        return CopyKind(self.row["kind"])

    def ended_at(self, event: Event) -> str | None:
        """When ``event`` happened last (a return, a destruction, an opening)."""
        hits = [e["at"] for e in self.events if e["event"] == event]
        return hits[-1] if hits else None

    def as_dict(self) -> dict:
        """JSON-ready, in Japanese and English keys; never the listed register ids."""
        r = self.row
        return {
            "copy_id": self.copy_id, "district_code": r.get("district_code"), "kind": r["kind"],
            "kind_ja": KIND_JA[self.kind], "shelter_id": r.get("shelter_id"),
            "persons": _int(r.get("persons")), "rows": _int(r.get("rows")),
            "register_version": r.get("register_version"), "current_version": self.current_version,
            "superseded": self.superseded, "holder": self.holder, "holder_kind": self.holder_kind,
            "holder_kind_ja": HOLDER_JA.get(self.holder_kind, self.holder_kind),
            "purpose": r.get("purpose"), "purpose_ja": PURPOSE_JA.get(r.get("purpose"), r.get("purpose")),
            "basis": split_list(r.get("basis")),
            "basis_ja": "・".join(BASIS_SHORT.get(b, b) for b in split_list(r.get("basis"))),
            "made_by": r.get("made_by"), "made_at": r.get("made_at"), "made_via": r.get("made_via"),
            "file": r.get("file"), "due_back": self.due_back, "since": self.since,
            "state": self.state.value, "state_ja": self.state.ja, "outstanding": self.state.outstanding,
            "overdue": self.overdue, "note": r.get("note"),
            "events": [{k: e.get(k) for k in ("event_id", "event", "at", "person", "recorded_by",
                                              "holder_kind", "due_back", "note")} for e in self.events],
        }


def check_ledger(access: Access, district: str | None = None) -> None:
    """The ledger is city staff's and coordinators' (a district member: their own district's
    copies, for the copies they print and the drill marks they enter)."""
    if access.level in LEDGER_LEVELS:
        return
    if access.level == Level.DISTRICT_MEMBER and (district is None or district == access.district):
        return
    raise AccessDenied("名簿の配布記録を見られるのは市職員とコーディネーターだけです")


def ledger(store: Store, access: Access, *, district: str | None = None, outstanding: bool = False,
           overdue: bool = False, superseded: bool = False, today: dt.date | None = None) -> list[CopyView]:
    """The copies ``access`` may see (of ``district``, or every district), newest first, each with
    its state; ``outstanding`` keeps those not returned, destroyed or void (what ``karte copies
    --out-only`` lists), ``overdue`` those past their due date, ``superseded`` those of an older
    register version (both outstanding by definition). Two reads of personal rows, logged."""
    check_ledger(access, district)
    if access.level == Level.DISTRICT_MEMBER:
        district = access.district
    copies = _read(store, COPIES, access, district)
    events = _read(store, EVENTS, access, district)
    views = _views(store, copies, events, today=today or today_jst())
    if outstanding or overdue or superseded:
        views = [v for v in views if v.state.outstanding]
    if overdue:
        views = [v for v in views if v.overdue]
    if superseded:
        views = [v for v in views if v.superseded]
    return views


def copy_view(store: Store, access: Access, copy_id: str, *, today: dt.date | None = None) -> CopyView:
    """One copy (:class:`NotFoundError` when it does not exist or the user may not see it)."""
    check_ledger(access, access.district if access.level == Level.DISTRICT_MEMBER else None)
    copy_id = normalise_id(copy_id)
    if COPIES not in store.layers():
        raise NotFoundError(f"複製 {copy_id} は記録にありません")
    row = store.read_row(COPIES, copy_id, access=access)
    if not access.may_see_row(COPIES, row):
        raise NotFoundError(f"複製 {copy_id} は記録にありません")
    events = [e for e in _read(store, EVENTS, access, row["district_code"]) if e["copy_id"] == copy_id]
    return _views(store, [row], events, today=today or today_jst())[0]


def _read(store: Store, layer: str, access: Access, district: str | None) -> list[dict]:
    if layer not in store.layers():
        return []
    return read_records(store, layer, access, district=district)


def _views(store: Store, copies: list[dict], events: list[dict], *, today: dt.date) -> list[CopyView]:
    by_copy: dict[str, list[dict]] = {}
    for e in sorted(events, key=lambda e: (str(e.get("at") or ""), str(e["event_id"]))):
        by_copy.setdefault(str(e["copy_id"]), []).append(e)
    snap = current(store) if copies else None
    views = []
    for row in copies:
        own = by_copy.get(str(row["copy_id"]), [])
        state = state_of(e["event"] for e in own)
        holder, kind = row.get("holder_name") or "", row.get("holder_kind") or ""
        since, due = row["made_at"], row["due_back"]
        for e in own:
            if e["event"] == Event.HANDED_OVER:
                holder, since = e.get("person") or holder, e["at"]
                kind = e.get("holder_kind") or kind
                due = e.get("due_back") or due
        now_version = _current_version(snap, row)
        stored = row.get("register_version")
        views.append(CopyView(
            row={k: v for k, v in row.items() if k != "person_ids"}, events=own, state=state,
            overdue=state.outstanding and bool(due) and dt.date.fromisoformat(due) < today,
            superseded=None if now_version is None else (state.outstanding and now_version != stored),
            current_version=now_version, holder=holder, holder_kind=kind, since=since, due_back=due,
            person_ids=tuple(split_list(row.get("person_ids")))))
    views.sort(key=lambda v: (str(v.row["made_at"]), v.copy_id), reverse=True)
    return views


def _current_version(snap: Snapshot | None, row: dict) -> str | None:
    if snap is None:
        return None
    district = row.get("district_code")
    if row.get("kind") != CopyKind.SEALED and district not in snap.kartes:
        return None
    layers = tuple(split_list(row.get("layers")))
    if not layers or any(layer not in snap.analysis_inputs() for layer in layers):
        return None
    listing = Listing(district, layers, Scope(row.get("scope") or Scope.SHAREABLE),
                      row.get(MUNICIPALITY), row.get("shelter_id") or None)
    return listing_version(snap, listing)


# --- public counts --------------------------------------------------------------------------------

def ledger_counts(store: Store) -> list[dict]:
    """Per district: copies made, outstanding, overdue and superseded. Counts only (no holder,
    no person), for everyone: read by the store's trusted user like the analyses, unlogged."""
    if COPIES not in store.layers():
        return []
    copies = store.read_records(COPIES)
    events = store.read_records(EVENTS) if EVENTS in store.layers() else []
    views = _views(store, copies, events, today=today_jst())
    out: dict[tuple, dict] = {}
    for v in views:
        key = (v.row.get(MUNICIPALITY), v.row.get("district_code"))
        entry = out.setdefault(key, {MUNICIPALITY: key[0], "district_code": key[1], "made": 0,
                                     "outstanding": 0, "overdue": 0, "superseded": 0})
        entry["made"] += v.state is not State.VOID
        entry["outstanding"] += v.state.outstanding
        entry["overdue"] += v.overdue
        entry["superseded"] += bool(v.superseded)
    return [out[k] for k in sorted(out, key=lambda k: (str(k[0]), str(k[1])))]


# --- the yearly report ----------------------------------------------------------------------------

def yearly_report(store: Store, access: Access, district: str, year: int, *,
                  today: dt.date | None = None) -> bytes:
    """The ledger of ``district`` for fiscal year ``year`` (April ``year`` to March ``year + 1``)
    as PDF: every copy made in the year or still out when it began, with what happened to it in
    the year and its state at the year's end (or today, for the current year)."""
    check_ledger(access)
    if access.level not in LEDGER_LEVELS:
        raise AccessDenied("年次報告を作成できるのは市職員とコーディネーターだけです")
    snap = current(store)
    if district not in snap.kartes:
        raise NotFoundError(f"地区 {district} はありません")
    if not 2000 <= year <= 2100:
        raise InputError(f"年度は西暦で指定してください（指定: {year}）")
    today = today or today_jst()
    start, end = dt.date(year, 4, 1), dt.date(year + 1, 3, 31)
    cut = min(end, today)
    views = ledger(store, access, district=district, today=today)
    rows = []
    for v in sorted(views, key=lambda v: (str(v.row["made_at"]), v.copy_id)):
        made = _jst_date(v.row["made_at"])
        if made > cut:
            continue
        before = [e for e in v.events if _jst_date(e["at"]) < start]
        if made < start and not state_of(e["event"] for e in before).outstanding:
            continue  # closed before the year began
        within = [e for e in v.events if _jst_date(e["at"]) <= cut]
        state = state_of(e["event"] for e in within)
        due = v.row["due_back"]
        for e in within:
            if e["event"] == Event.HANDED_OVER and e.get("due_back"):
                due = e["due_back"]
        rows.append(ReportRow(
            copy_id=v.copy_id, kind_ja=KIND_JA[v.kind], made=made, made_by=str(v.row.get("made_by") or ""),
            holder=_holder_at(v, within), purpose_ja=PURPOSE_JA.get(v.row.get("purpose"), ""),
            basis_ja="・".join(BASIS_SHORT.get(b, b) for b in split_list(v.row.get("basis"))),
            due=dt.date.fromisoformat(due), state_ja=state.ja, outstanding=state.outstanding,
            overdue=state.outstanding and dt.date.fromisoformat(due) < cut,
            closed=_closed(within), persons=_int(v.row.get("persons")) or 0,
            version=str(v.row.get("register_version") or ""),
            superseded=bool(v.superseded) and state.outstanding,
            events=[(_jst_time(e["at"]), Event(e["event"]).ja, _who(e))
                    for e in within if _jst_date(e["at"]) >= start]))
    report = LedgerReport(district=district, district_name=snap.district_name(district), year=year,
                          start=start, end=end, cut=cut, rows=rows, user=access.user,
                          printed_at=dt.datetime.now(dt.UTC))
    return render_report(report)


def _who(event: dict) -> str:
    """Who received, returned, destroyed or opened a copy, with the note (how, why)."""
    person, note = str(event.get("person") or ""), str(event.get("note") or "")
    return f"{person}（{note}）" if person and note else person or note


def _holder_at(view: CopyView, events: list[dict]) -> str:
    holder = view.row.get("holder_name") or ""
    for e in events:
        if e["event"] == Event.HANDED_OVER and e.get("person"):
            holder = e["person"]
    return holder


def _closed(events: list[dict]) -> dt.date | None:
    for e in reversed(events):
        if e["event"] in (Event.RETURNED, Event.DESTROYED, Event.VOIDED):
            return _jst_date(e["at"])
    return None


# --- sealed shelter lists -------------------------------------------------------------------------

def shelters(store: Store) -> list[dict]:
    """The designated shelters with their district (for choosing a sealed list's shelter)."""
    layer = current(store).layer("shelters")
    return [{"shelter_id": str(s["shelter_id"]), "name": str(s["name"]), "district_code": s["district_code"],
             "welfare": bool(s["welfare"])}
            for s in layer.drop(columns=layer.geometry.name).to_dict("records")]


def sealed_list(store: Store, access: Access, shelter_id: str, *, request: CopyRequest | None = None,
                paper: str = "A4") -> tuple[dict, bytes]:
    """The full list of the people whose shelter is ``shelter_id`` (everyone, consented or not),
    printed as a sealed copy for disaster use only (city staff only); returns (the copy as
    recorded, the PDF). The register is read as ``access`` (logged); the copy is recorded first,
    so its number is printed on every page."""
    if access.level != Level.CITY_STAFF:
        raise AccessDenied("封印名簿（同意のない方を含む全員）を作成できるのは市職員だけです")
    snap = current(store)
    found = [s for s in shelters(store) if s["shelter_id"] == shelter_id]
    if not found:
        raise NotFoundError(f"避難所 {shelter_id} はありません")
    shelter = found[0]
    register = [r for r in read_records(store, Layer.REGISTER, access) if r.get("shelter_id") == shelter_id]
    supporters = {str(c["cooperator_id"]): c for c in read_records(store, Layer.COOPERATORS, access)}
    people = sorted(register, key=lambda r: (str(r.get("kana") or ""), str(r["person_id"])))
    request = request or CopyRequest()
    request = replace(request, holder_kind=HolderKind.SHELTER.value, holder_ref=shelter_id,
                      holder_name=request.holder_name or shelter["name"], purpose=Purpose.DISASTER.value)
    copy = new_copy(snap, access, CopyKind.SEALED, district=shelter["district_code"], request=request,
                    shelter=shelter_id, person_ids=[str(p["person_id"]) for p in people],
                    consents=[str(p.get("consent")) for p in people], rows=len(people),
                    file=f"sealed-{shelter_id}.pdf", paper=paper)
    stored = make_copies(store, access, [copy])[0]
    district = shelter["district_code"]
    data = _render_or_void(store, access, [stored], lambda: render_sealed_list(SealedList(
        shelter_id=shelter_id, shelter_name=shelter["name"], welfare=shelter["welfare"],
        district=district or "",
        district_name=snap.district_name(district) if district in snap.kartes else "",
        people=[_sealed_person(p, supporters) for p in people], copy_id=stored["copy_id"],
        register_version=copy.version, holder=copy.request.holder_name, due_back=copy.request.due_back,
        user=access.user, printed_at=dt.datetime.now(dt.UTC), paper=paper,
        data_date=snap.meta.get("data_date", ""))))
    return stored, data


def _sealed_person(row: dict, supporters: dict[str, dict]) -> SealedPerson:
    helpers = [supporters[s] for s in split_list(row.get("supporter_ids")) if s in supporters]
    needs = "・".join(str(v) for v in (row.get("care_level"), row.get("disability_kind"),
                                      row.get("disability_grade"), row.get("medical_devices")) if v)
    return SealedPerson(
        person_id=str(row["person_id"]), name=str(row.get("name") or ""), kana=str(row.get("kana") or ""),
        address=short_address(row.get("address")),
        birth_date=str(row.get("birth_date") or ""), needs=needs, mobility=str(row.get("mobility") or ""),
        consent=str(row.get("consent") or ""), district=str(row.get("district_code") or ""),
        supporters="・".join(f"{c['name']} {c.get('phone') or ''}".strip() for c in helpers))


def _render_or_void(store: Store, access: Access, copies: list[dict], render):
    """``render()``; when it fails, the recorded copies are marked void (none was made)."""
    try:
        return render()
    except BaseException:
        void_copies(store, access, copies, why="作成に失敗したため印刷物・ファイルはありません")
        raise


# --- paper drill marks back into data ----------------------------------------------------------

@dataclass(frozen=True)
class PaperMark:
    """One tick on a paper drill sheet, entered from its copy: who was ticked, which column
    (``tick``: ``confirmed`` 確認 = the supporter reached them; ``arrived`` 到着 = they reached
    the shelter), when it was ticked, who entered it, and from which copy."""

    copy_id: str
    person_id: str
    district_code: str
    tick: str
    marked_at: str
    entered_by: str


class DrillRecords(Protocol):
    """What the drill records (issue 19) give the copy pages: the drills a paper copy's marks may
    go to, and the one call that writes them into a drill (its status and dashboard)."""

    def open_drills(self, store: Store, access: Access, district: str) -> list[dict]:
        """Drills of ``district`` that take marks now: ``{"drill_id", "name", "started_at"}`` each."""

    def record_paper_marks(self, store: Store, access: Access, drill_id: str,
                           marks: Sequence[PaperMark]) -> int:
        """Write ``marks`` into drill ``drill_id`` as ``access`` (with their times); return how many
        were written. Raises a karte error (NotFound, AccessDenied…) when it cannot."""


def copy_people(store: Store, access: Access, copy_id: str) -> tuple[CopyView, list[dict]]:
    """A drill copy and the people it lists that ``access`` may see (read from the store as the
    viewer, logged), in the order of their kana: ``person_id``, ``name``, ``kana``, ``address``."""
    view = copy_view(store, access, copy_id)
    if view.kind is not CopyKind.DRILL:
        raise InputError(f"複製 {view.copy_id} は訓練用の地区シートではありません（{KIND_JA[view.kind]}）")
    listed = set(view.person_ids)
    district = view.row["district_code"]
    rows = [r for r in read_records(store, Layer.REGISTER, access, district=district)
            if str(r["person_id"]) in listed]
    rows.sort(key=lambda r: (str(r.get("kana") or ""), str(r["person_id"])))
    people = [{"person_id": str(r["person_id"]), "name": r.get("name"), "kana": r.get("kana"),
               "address": short_address(r.get("address"))} for r in rows]
    return view, people


def paper_marks(store: Store, access: Access, copy_id: str, ticks: Mapping[str, Iterable[str]], *,
                marked_at: dt.datetime | None = None) -> tuple[CopyView, list[PaperMark]]:
    """The marks of one paper drill copy: ``ticks`` maps a register id to the columns ticked
    (``confirmed``, ``arrived``). Only people the copy lists and the viewer may see; the time
    is when they were ticked on paper (default: now), not in the future, not before the copy was
    made."""
    view, people = copy_people(store, access, copy_id)
    if view.state is State.VOID:
        raise ConflictError(f"複製 {view.copy_id} は無効です（作成されていません）")
    visible = {p["person_id"] for p in people}
    unknown = sorted(set(ticks) - visible)
    if unknown:
        raise InputError(f"この複製に載っていない方の記入があります（{len(unknown)} 件）")
    when = marked_at or dt.datetime.now(dt.UTC)
    if when.tzinfo is None:
        raise InputError("記入時刻にはタイムゾーンが必要です")
    if when > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5):
        raise InputError("記入時刻が未来です")
    made = dt.datetime.fromisoformat(str(view.row["made_at"]))
    if when < made.replace(second=0) - dt.timedelta(minutes=1):  # times are entered to the minute
        raise InputError("記入時刻が複製の作成より前です")
    at = when.astimezone(dt.UTC).isoformat(timespec="seconds")
    marks = []
    for person, columns in sorted(ticks.items()):
        for tick in sorted(set(columns)):
            if tick not in TICKS:
                raise InputError(f"記入の種類は {' / '.join(TICKS)} です（指定: {tick}）")
            marks.append(PaperMark(copy_id=view.copy_id, person_id=person,
                                   district_code=str(view.row["district_code"]), tick=tick, marked_at=at,
                                   entered_by=access.user))
    return view, marks


def enter_paper_marks(store: Store, access: Access, copy_id: str, ticks: Mapping[str, Iterable[str]], *,
                      drill_id: str, drills: DrillRecords,
                      marked_at: dt.datetime | None = None) -> list[PaperMark]:
    """Enter the ticks of paper drill copy ``copy_id`` into drill ``drill_id``: the marks
    (:func:`paper_marks`) go to ``drills.record_paper_marks``, then the copy's ledger gets a
    ``marked`` event (how many, into which drill), so a second entry of the same paper shows."""
    view, marks = paper_marks(store, access, copy_id, ticks, marked_at=marked_at)
    if not marks:
        raise InputError("記入がありません（✓のついた方を選んでください）")
    open_ids = {str(d["drill_id"]) for d in drills.open_drills(store, access, str(view.row["district_code"]))}
    if drill_id not in open_ids:
        raise NotFoundError(f"訓練 {drill_id} は地区 {view.row['district_code']} で実施中ではありません")
    written = drills.record_paper_marks(store, access, drill_id, marks)
    store.append_rows(EVENTS, [{
        "copy_id": view.copy_id, "district_code": view.row["district_code"], "event": Event.MARKED.value,
        "at": _now(), "recorded_by": access.user, "person": None, "holder_kind": None, "due_back": None,
        "note": f"訓練 {drill_id} に {written} 件", "via": access.route}], access=access)
    return marks


# --- helpers --------------------------------------------------------------------------------------

def _require_rows(store: Store) -> None:
    if ROWS not in store.capabilities:
        raise InputError(f"{store.location} は行単位の記録ができないため、名簿の複製を記録できません")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _at(at: dt.datetime | None) -> str:
    if at is None:
        return _now()
    if at.tzinfo is None:
        raise InputError("日時にはタイムゾーンが必要です")
    if at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5):
        raise InputError("未来の日時は記録できません")
    return at.astimezone(dt.UTC).isoformat(timespec="seconds")


def _jst_time(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(str(stamp)).astimezone(JST)


def _jst_date(stamp: str) -> dt.date:
    return _jst_time(stamp).date()


def _int(v) -> int | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return int(v)


__all__ = [
    "CopyRequest", "CopyView", "DrillRecords", "Listing", "NewCopy", "PaperMark", "complete",
    "copy_people", "copy_view", "district_choices", "enter_paper_marks", "ledger", "ledger_counts",
    "listing_of", "listing_version", "make_copies", "new_copy", "paper_marks", "print_preview",
    "record_event", "record_export", "sealed_list", "yearly_report",
]
