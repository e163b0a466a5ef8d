"""Printed district sheets (地区シート): what each reader may print, prepared for the renderer.

Anyone may print the public edition: aggregates only, counts of 1 to ``max_small`` suppressed as
on every other public output. The confidential and drill editions list persons: they need a
viewer who may see the district's personal rows, the rows come from the store read as that
viewer (the store filters them and logs the read with the real user), and only shareable rows
(同意 / 条例による推定同意) are printed, city staff included: a printed sheet leaves the office.

Every confidential and drill sheet is a **numbered copy** in the hand-out ledger
(:mod:`karte.services.copies`): it is recorded, as the viewer, before it is drawn (the number
comes from the store), with what it lists and the register version of that, and the number is
printed with a QR code on every page; a sheet whose drawing fails leaves its copy marked void.
What the printer says about the copy (for whom, why, on which legal basis, until when:
:class:`~karte.services.copies.CopyRequest`) is recorded with it; without it the copy is held by
its printer until a hand-over is recorded.

Build data (kartes, layers, gaps, coverage) comes from the build snapshot (:mod:`karte.snapshot`);
drawing is :mod:`karte.render.sheets`'s job, handed a :class:`~karte.render.sheet_model.DistrictSheet`.
A batch prepares every sheet here and renders them on worker processes.
"""

from __future__ import annotations

import datetime as dt
import math
import multiprocessing as mp
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from gis.risk import risk_order
from karte.analysis import Coverage, catchment_radius
from karte.domain.access import DEFAULT_SUPPRESS_MAX, PUBLIC, Access
from karte.domain.copies import CopyKind
from karte.domain.errors import AccessDenied, KarteError
from karte.domain.gaps import AT_RISK, GAP_KINDS
from karte.domain.layers import Layer, split_list
from karte.domain.schema import (
    HELP_JA,
    PLAN_STATUS_JA,
    ROLE_JA,
    Consent,
    Edition,
    HelpKind,
    Mobility,
    PlanStatus,
    Role,
    short_address,
)
from karte.render.pdf_fonts import register_font
from karte.render.sheet_map import MapData, MapPoint
from karte.render.sheet_model import DistrictSheet, SheetOptions, TocEntry
from karte.render.sheets import merge_sheets, render_sheet
from karte.services import copies
from karte.services.copies import CopyRequest
from karte.services.district_data import check_district, sources_now
from karte.services.personal import read_rows
from karte.services.suppression import rate_of, small, suppress_karte
from karte.snapshot import Snapshot, current
from karte.store.base import Store

#: Progress callback: (stage, done, total); stages "analysis", "render", "merge".
Progress = Callable[[str, int, int], None]



@dataclass
class PersonalRows:
    """What a personal edition lists, as the viewer read it from the store."""

    register: pd.DataFrame
    roster: pd.DataFrame
    #: cooperator_id -> (name, phone, role in Japanese) of every cooperator the viewer may see
    supporters: dict[str, tuple[str, str, str]]


@dataclass
class BatchResult:
    """What a batch wrote: one file per district, the merged file, pages and bytes per district."""

    files: dict[str, Path] = field(default_factory=dict)
    pages: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    merged: Path | None = None
    merged_pages: int = 0
    toc_pages: int = 0
    seconds: float = 0.0
    #: how many processes rendered sheets (2 on a two-core machine with ``workers=2``)
    processes: int = 0
    #: the copy number of each district's sheet (personal editions: one numbered copy each)
    copies: dict[str, str] = field(default_factory=dict)


@dataclass
class SheetFile:
    """One sheet as PDF bytes, and its copy in the ledger (personal editions; None otherwise)."""

    data: bytes
    copy: dict | None = None


# --- access and options ---------------------------------------------------------------------------

def check_access(access: Access, codes: list[str], edition: Edition) -> None:
    """Raise :class:`~karte.domain.errors.AccessDenied` unless ``access`` may print ``edition`` of
    every district in ``codes``."""
    if not edition.personal:
        return
    denied = [c for c in codes if not access.may_see_district_rows(c)]
    if denied:
        raise AccessDenied(f"{edition.ja}を印刷する権限がありません（地区 {', '.join(denied)}）。"
                           "公開版を選んでください")


def edition_of(value: str | Edition) -> Edition:
    try:
        return Edition(value)
    except ValueError:
        raise KarteError(f"版は public / confidential / drill のいずれかです（指定: {value}）") from None


def check_paper(value: str) -> str:
    if value not in ("A4", "A3"):
        raise KarteError(f"用紙は A4 か A3 です（指定: {value}）")
    return value


# --- one sheet, and a batch -----------------------------------------------------------------------

def district_sheet_pdf(store: Store, code: str, *, edition: str | Edition = Edition.PUBLIC,
                       paper: str = "A4", access: Access = PUBLIC,
                       max_small: int = DEFAULT_SUPPRESS_MAX, copy: CopyRequest | None = None) -> bytes:
    """One district's sheet as PDF bytes (``/districts/{code}/sheet.pdf``, ``karte sheets S01``).

    Raises :class:`~karte.domain.errors.AccessDenied` (403) when ``access`` may not print the
    edition (checked before any work) and :class:`~karte.domain.errors.NotFoundError` (404) for
    an unknown district. The reads of personal rows are logged by the store under ``access.route``;
    a personal edition is recorded as a numbered copy (:func:`numbered_sheet`).
    """
    return numbered_sheet(store, code, edition=edition, paper=paper, access=access, max_small=max_small,
                          copy=copy).data


def numbered_sheet(store: Store, code: str, *, edition: str | Edition = Edition.PUBLIC,
                   paper: str = "A4", access: Access = PUBLIC, max_small: int = DEFAULT_SUPPRESS_MAX,
                   copy: CopyRequest | None = None) -> SheetFile:
    """:func:`district_sheet_pdf` with the copy it recorded (personal editions): the web's print
    form names the file after it."""
    edition = edition_of(edition)
    check_paper(paper)
    check_access(access, [code], edition)
    snap = current(store)
    check_district(snap, code)
    coverages, city = snap.coverage()
    options = SheetOptions(edition=edition, paper=paper, user=access.user, max_small=max_small)
    personal = None
    recorded = None
    if edition.personal:
        supporters = supporter_index(read_rows(store, Layer.COOPERATORS, access))
        personal = personal_rows(store, code, access, supporters)
        recorded = record_sheet_copies(store, snap, access, {code: personal}, edition=edition, paper=paper,
                                       request=copy)[code]
        options = _numbered(options, recorded)
    sheet = build_sheet(snap, code, options=options, coverage=coverages[code], city_coverage=city,
                        personal=personal)
    if recorded is None:
        return SheetFile(render_sheet(sheet)[0])
    return SheetFile(_render_or_void(store, access, [recorded], lambda: render_sheet(sheet)[0]), recorded)


def record_sheet_copies(store: Store, snap: Snapshot, access: Access, rows: dict[str, PersonalRows], *,
                        edition: Edition, paper: str, request: CopyRequest | None,
                        files: dict[str, str] | None = None) -> dict[str, dict]:
    """Record one numbered copy per district of a personal edition (one transaction), listing the
    register rows the sheet prints (shareable ones) and the roster; district code -> the copy as
    stored."""
    kind = CopyKind(edition.value)
    made = []
    for code, personal in rows.items():
        printed = _shareable(personal.register)
        made.append(copies.new_copy(
            snap, access, kind, district=code, request=request,
            person_ids=sorted(str(p) for p in printed["person_id"]) if len(printed) else [],
            consents=list(printed["consent"]) if len(printed) else [],
            rows=len(printed) + len(personal.roster), paper=paper,
            file=(files or {}).get(code, f"{code}-{edition.value}.pdf")))
    stored = copies.make_copies(store, access, made)
    return {row["district_code"]: row for row in stored}


def _numbered(options: SheetOptions, copy: dict) -> SheetOptions:
    return replace(options, copy_id=str(copy["copy_id"]), register_version=copy["register_version"],
                   due_back=dt.date.fromisoformat(copy["due_back"]))


def _render_or_void(store: Store, access: Access, recorded: list[dict], render):
    """``render()``; when it fails, the copies recorded for it are marked void in the ledger."""
    try:
        return render()
    except BaseException:
        copies.void_copies(store, access, recorded, why="作成に失敗したため印刷物・ファイルはありません")
        raise


def print_sheets(store: Store, codes: list[str] | None, *, out: Path,
                 edition: str | Edition = Edition.PUBLIC, paper: str = "A4", access: Access = PUBLIC,
                 max_small: int = DEFAULT_SUPPRESS_MAX, merge: bool | None = None, workers: int = 2,
                 progress: Progress | None = None, copy: CopyRequest | None = None) -> BatchResult:
    """Write the sheets of ``codes`` (None: every district) into ``out``.

    Files: ``{code}-{edition}[-A3].pdf`` per district and, when ``merge`` (default: when more
    than one district), ``all-{edition}[-A3].pdf`` with a table of contents and one bookmark per
    district, every district starting on a right-hand page. Personal editions are written
    readable by the owner only (mode 0600), and each district's sheet is a numbered copy recorded
    with ``copy`` (:attr:`BatchResult.copies`; the merged file bundles those same copies, whose
    numbers its contents list). The salon coverage (when the snapshot has none yet: neither
    computed in this process nor kept in the store for this build) and the drawing run on
    ``workers`` processes; one district whose coverage is at hand is drawn here, without a pool
    (starting one costs more than the sheet).
    """
    t0 = time.perf_counter()
    edition = edition_of(edition)
    check_paper(paper)
    progress = progress or (lambda stage, done, total: None)
    snap = current(store)
    codes = snap.codes if codes is None else list(dict.fromkeys(codes))
    for code in codes:
        check_district(snap, code)
    check_access(access, codes, edition)
    merge = len(codes) > 1 if merge is None else merge
    out.mkdir(parents=True, exist_ok=True)
    options = SheetOptions(edition=edition, paper=paper, user=access.user, max_small=max_small)
    suffix = f"-{edition.value}" + ("" if paper == "A4" else f"-{paper}")
    result = BatchResult()
    workers = max(1, min(workers, os.cpu_count() or 1))
    if len(codes) == 1 and snap.has_coverage():
        workers = 1
    snap.gaps_at_hand(persons=edition.personal)  # before the workers are forked: once, here
    with _pool(snap, workers) as pool:
        # the store is read as the viewer (and the reads logged) while the workers analyse
        rows: dict[str, PersonalRows] = {}
        if edition.personal:
            supporters = supporter_index(read_rows(store, Layer.COOPERATORS, access))
        analysis = _coverage_on(pool, snap, progress)
        if edition.personal:
            rows = {code: personal_rows(store, code, access, supporters) for code in codes}
        recorded: dict[str, dict] = {}
        if edition.personal:  # numbered copies, recorded before they are drawn
            recorded = record_sheet_copies(store, snap, access, rows, edition=edition, paper=paper,
                                           request=copy, files={c: f"{c}{suffix}.pdf" for c in codes})
            result.copies = {code: str(recorded[code]["copy_id"]) for code in codes}
            options = replace(options, due_back=dt.date.fromisoformat(recorded[codes[0]]["due_back"]))
        coverages, city = analysis()
        jobs = [(code, _numbered(options, recorded[code]) if code in recorded else options, coverages[code],
                 city, rows.get(code), out / f"{code}{suffix}.pdf") for code in codes]
        mapper = pool.imap_unordered(_render_job, jobs) if pool else map(_render_job, jobs)
        pids = set()
        try:
            for done, (code, path, pages, size, pid) in enumerate(mapper, start=1):
                result.files[code], result.pages[code], result.sizes[code] = path, pages, size
                pids.add(pid)
                progress("render", done, len(codes))
        except BaseException:
            for code in result.files:  # what was written is no copy of a finished batch either
                result.files[code].unlink(missing_ok=True)
            copies.void_copies(store, access, list(recorded.values()),
                               why="作成に失敗したため印刷物・ファイルはありません")
            raise
        result.processes = len(pids)
    result.files = {c: result.files[c] for c in codes}
    if merge:
        progress("merge", 0, 1)
        result.merged = out / f"all{suffix}.pdf"
        entries = [TocEntry(code=c, name=snap.district_name(c), population=_population(snap, c),
                            pages=result.pages[c], copy_id=result.copies.get(c),
                            register_version=recorded[c]["register_version"] if c in recorded else None)
                   for c in codes]
        data, result.toc_pages, result.merged_pages = merge_sheets(
            entries, [result.files[c] for c in codes], options, fiscal_year_label=_first(snap, codes),
            data_date=snap.kartes[codes[0]]["data_date"])
        write_file(result.merged, data, private=edition.personal)
        progress("merge", 1, 1)
    result.seconds = time.perf_counter() - t0
    return result


def write_file(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``data`` to ``path`` atomically (0600 when it holds personal rows)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


# --- workers --------------------------------------------------------------------------------------

_WORKER: dict = {}  # per worker process: the snapshot, set once by _init_worker


def _init_worker(snap: Snapshot) -> None:
    _WORKER["snap"] = snap
    register_font()


def _pool(snap: Snapshot, workers: int):
    _init_worker(snap)  # the parent renders too when there is no pool
    if workers <= 1:
        return _NoPool()
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    return mp.get_context(method).Pool(workers, initializer=_init_worker, initargs=(snap,))


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _analysis_job(codes: list[str]) -> dict[str, Coverage]:
    return _WORKER["snap"].coverage_of(codes)


def _coverage_on(pool, snap: Snapshot, progress: Progress):
    """Start the snapshot's coverage analysis on the pool's workers (when it has none yet);
    returns the function that waits for it."""
    if pool is None or snap.has_coverage():
        return snap.coverage
    groups_total = math.ceil(len(snap.codes) / 4)
    done = [0]

    def mapper(_analyse, groups):
        for part in pool.imap_unordered(_analysis_job, groups):
            done[0] += 1
            progress("analysis", done[0], groups_total)
            yield part

    return lambda: snap.coverage(mapper)


def _render_job(job) -> tuple[str, Path, int, int, int]:
    code, options, coverage, city, personal, path = job
    sheet = build_sheet(_WORKER["snap"], code, options=options, coverage=coverage, city_coverage=city,
                        personal=personal)
    data, pages = render_sheet(sheet)
    write_file(path, data, private=options.edition.personal)
    return code, path, pages, len(data), os.getpid()


# --- the viewer's personal rows ---------------------------------------------------------------------

def supporter_index(cooperators: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """cooperator_id -> (name, phone, role) of the cooperators a viewer read."""
    return {str(c.cooperator_id): (c.name, _text(c.phone) or "", _role_ja(c.role))
            for c in cooperators.itertuples()} if len(cooperators) else {}


def personal_rows(store: Store, code: str, access: Access,
                  supporters: dict[str, tuple[str, str, str]]) -> PersonalRows:
    """The district's register and roster, read from the store as ``access`` (logged there)."""
    register = read_rows(store, Layer.REGISTER, access, district=code)
    roster = read_rows(store, Layer.COOPERATORS, access, district=code)
    return PersonalRows(register=register, roster=roster, supporters=supporters)


# --- one sheet's data (pure: runs on the workers too) -------------------------------------------

def build_sheet(snap: Snapshot, code: str, *, options: SheetOptions, coverage: Coverage,
                city_coverage: dict, personal: PersonalRows | None = None) -> DistrictSheet:
    """Everything one district's sheet prints, as its reader may see it."""
    public = not options.edition.personal
    karte = snap.karte(code)
    karte["sources"] = sources_now(snap, karte)
    if public:
        suppress_karte(karte, options.max_small, snapshot=snap)
    n = options.max_small if public else 0  # 0: nothing is suppressed
    salon_numbers = _salon_numbers(karte)
    shelter_labels = _shelter_labels(karte)
    sheet = DistrictSheet(
        karte=karte, options=options,
        map=_map_data(snap, code, coverage, salon_numbers, shelter_labels),
        salon_numbers=salon_numbers, shelter_labels=shelter_labels,
        gap_rows=_gap_rows(snap, code, n),
        coverage_rows=_coverage_rows(snap, code, coverage, city_coverage, n),
        role_rows=[(r["label"], r["count"]) for r in karte["cooperators"]["by_role"]],
    )
    if options.edition.personal and personal is not None:
        sheet.roster = _roster(snap, personal.roster)
        sheet.outside_shelters = _outside_shelters(snap, personal.register, shelter_labels, sheet.map.extent)
        sheet.register = _register_rows(snap, personal, shelter_labels, data_date=karte.get("data_date"))
        _tell_apart_supporters(sheet.roster, sheet.register)
        sheet.map.shelters += [MapPoint(s["x"], s["y"], s["label"], special=s["welfare"])
                               for s in sheet.outside_shelters if s["in_map"]]
        sheet.map.people = [MapPoint(p["x"], p["y"], str(p["number"]), special=p["no_supporter"])
                            for p in sheet.register if p["x"] is not None]
        sheet.unlisted, sheet.unlisted_by_supporter = _unlisted(snap, code, sheet.register)
    return sheet


def _salon_numbers(karte: dict) -> dict[str, int]:
    """Salons of the district numbered 1.. in the order of the services list."""
    salons = [s["service_id"] for s in karte["services"] if s["kind"] == "salon"]
    return {sid: i for i, sid in enumerate(salons, start=1)}


def _shelter_labels(karte: dict) -> dict[str, str]:
    """Shelters of the district labelled A, B, … (welfare shelters first, as listed)."""
    return {s["shelter_id"]: _letters(i) for i, s in enumerate(karte["shelters"])}


def _letters(i: int) -> str:
    text = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        text = chr(ord("A") + r) + text
    return text


def _map_data(snap: Snapshot, code: str, coverage: Coverage, salon_numbers: dict[str, int],
              shelter_labels: dict[str, str]) -> MapData:
    districts = snap.districts
    own = districts[districts["district_code"] == code]
    geom = _outline(shapely.union_all(own.geometry.values))
    small_areas = snap.small_areas[snap.small_areas["district_code"] == code]
    whole = _padded(geom.bounds)
    focus = _focus(small_areas, _karte_points(snap, code), whole)
    extent = focus or whole
    box = shapely.box(*extent)
    near = districts[districts.geometry.intersects(box) & (districts["district_code"] != code)]
    radius = catchment_radius(snap.params)
    minx, miny, maxx, maxy = extent
    reach = shapely.box(minx - radius, miny - radius, maxx + radius, maxy + radius)
    salons = snap.salons[snap.salons.geometry.intersects(reach)]
    catchments = (shapely.union_all(salons.geometry.buffer(radius, quad_segs=12).values)
                  if len(salons) else None)
    counting = set(salons["service_id"])
    services = snap.services
    all_salons = services[(services["kind"] == "salon") & services.geometry.intersects(box)]
    salon_points = [
        MapPoint(p.geometry.x, p.geometry.y, str(salon_numbers.get(p.service_id, "")),
                 own_district=p.service_id in salon_numbers, special=p.service_id in counting)
        for p in all_salons.itertuples() if p.geometry is not None
    ]
    shelters = snap.shelters[snap.shelters.geometry.intersects(box)]
    shelter_points = [
        MapPoint(s.geometry.x, s.geometry.y, shelter_labels.get(s.shelter_id, ""),
                 own_district=s.shelter_id in shelter_labels, special=bool(s.welfare))
        for s in shelters.itertuples()
    ]
    return MapData(
        extent=extent, district=geom, overview=whole if focus else None,
        neighbours=[(g, str(n)) for g, n in zip(near.geometry.values, near["district_name"], strict=True)],
        small_areas=[(g, str(n)) for g, n in zip(small_areas.geometry.values, small_areas["name"],
                                                  strict=True)],
        catchments=catchments, cells=[coverage.area] if coverage.area is not None else [],
        salons=salon_points, shelters=shelter_points,
        walk_m=snap.params.salon_walk_m, radius_m=radius,
    )


#: A district whose inhabited part (small areas of at least INHABITED_PER_KM2 people per km²,
#: its salons and shelters) covers less than this share of its extent is mapped on that part,
#: with the whole district in an inset (rural districts of mountain and forest).
FOCUS_SHARE = 0.25
INHABITED_PER_KM2 = 100.0
#: Holes smaller than this (m²) are left out of the printed district outline.
_MIN_HOLE_M2 = 50_000.0


def _karte_points(snap: Snapshot, code: str) -> list[tuple[float, float]]:
    """Places of the district's own salons and shelters (EPSG:6678)."""
    karte = snap.kartes[code]
    ids = {s["shelter_id"] for s in karte["shelters"]}
    sal = {s["service_id"] for s in karte["services"] if s["kind"] == "salon"}
    pts = [(g.x, g.y) for g in snap.shelters.loc[snap.shelters["shelter_id"].isin(ids), "geometry"]
           if g is not None and not g.is_empty]
    pts += [(g.x, g.y) for g in snap.services.loc[snap.services["service_id"].isin(sal), "geometry"]
            if g is not None and not g.is_empty]
    return pts


def _padded(bounds, share: float = 0.04, least: float = 500.0):
    minx, miny, maxx, maxy = bounds
    pad = share * max(maxx - minx, maxy - miny, least)
    return (minx - pad, miny - pad, maxx + pad, maxy + pad)


def _focus(small_areas: gpd.GeoDataFrame, points, whole) -> tuple | None:
    """The inhabited part's extent when it is much smaller than the district's, else None."""
    area_km2 = small_areas.geometry.area / 1e6
    density = pd.to_numeric(small_areas["population"], errors="coerce").fillna(0) / area_km2.where(
        area_km2 > 0)
    inhabited = small_areas[density.fillna(0).to_numpy() >= INHABITED_PER_KM2]
    if inhabited.empty:
        return None
    minx, miny, maxx, maxy = inhabited.total_bounds
    for x, y in points:
        minx, miny, maxx, maxy = min(minx, x), min(miny, y), max(maxx, x), max(maxy, y)
    focus = _padded((minx, miny, maxx, maxy), share=0.08)
    share = ((focus[2] - focus[0]) * (focus[3] - focus[1])
             / ((whole[2] - whole[0]) * (whole[3] - whole[1])))
    return focus if share < FOCUS_SHARE else None


def _outline(geom):
    """The district as printed: slivers between its small areas closed and small holes (gaps in
    the census boundaries) filled, or they would print as stray black strokes inside it."""
    geom = geom.buffer(2.0, join_style="mitre").buffer(-2.0, join_style="mitre")
    parts = []
    for poly in getattr(geom, "geoms", [geom]):
        holes = [h for h in poly.interiors if shapely.Polygon(h).area >= _MIN_HOLE_M2]
        parts.append(shapely.Polygon(poly.exterior, holes))
    return shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0]


def _coverage_rows(snap: Snapshot, code: str, cov: Coverage, city: dict, max_small: int):
    """Salon coverage rows; counts suppressed (and their rates hidden) when ``max_small`` > 0."""
    def share(part, whole):
        return part / whole if whole else None

    n_salons = int((snap.salons["district_code"] == code).sum())
    unc_e, unc_o = round(cov.uncovered_elderly), round(cov.uncovered_75_plus)
    return [
        ("月1回以上のサロン（地区内）", f"{n_salons} か所", None, None),
        ("徒歩圏外の高齢者（65歳以上）", small(unc_e, max_small),
         rate_of(share(cov.uncovered_elderly, cov.elderly), unc_e, max_small),
         city["uncovered_elderly_share"]),
        ("徒歩圏外の後期高齢者（75歳以上）", small(unc_o, max_small),
         rate_of(share(cov.uncovered_75_plus, cov.age_75_plus), unc_o, max_small),
         city["uncovered_75_plus_share"]),
    ]


def _gap_rows(snap: Snapshot, code: str, max_small: int):
    gaps = snap.district_gaps
    row = gaps.loc[code] if code in gaps.index else None
    city = gaps.loc["city"]
    persons = int(row["persons"]) if row is not None else 0
    out = [("要支援者（名簿登録）", small(persons, max_small), None, None)]
    for kind in (*GAP_KINDS, AT_RISK):
        if kind.key not in gaps.columns:
            continue
        count = int(row[kind.key]) if row is not None else 0
        rate = _num(row[f"rate_{kind.key}"]) if row is not None else None
        out.append((kind.text(supporter_m=snap.params.supporter_max_m), small(count, max_small),
                    rate_of(rate, count, max_small), _num(city[f"rate_{kind.key}"])))
    return out


def _roster(snap: Snapshot, coop: pd.DataFrame) -> list[dict]:
    order = {str(r): i for i, r in enumerate(Role)}
    coop = coop.assign(_o=coop["role"].map(order)).sort_values(["_o", "cooperator_id"]) if len(coop) else coop
    load = snap.supporter_load["load"] if len(snap.supporter_load) else pd.Series(dtype=int)
    return [
        {"cooperator_id": c.cooperator_id, "role_ja": _role_ja(c.role), "name": c.name,
         "phone": _text(c.phone) or "",
         "help_ja": "・".join(HELP_JA[HelpKind(h)] for h in split_list(c.help_kinds)
                             if h in HelpKind._value2member_map_),
         "capacity": _int(c.capacity), "load": int(load.get(str(c.cooperator_id), 0))}
        for c in coop.itertuples()
    ]


def _shareable(register: pd.DataFrame) -> pd.DataFrame:
    """The register rows a sheet prints: shareable consent only (city staff's sheets included)."""
    if not len(register):
        return register
    return register[register["consent"].map(lambda c: Consent(c).shareable).to_numpy(dtype=bool)]


def _register_rows(snap: Snapshot, personal: PersonalRows, shelter_labels: dict[str, str], *,
                   data_date: str | None = None) -> list[dict]:
    """The shareable rows in risk order (:func:`gis.risk.risk_order`), numbered 1.. (the same
    numbers on the map); people who share a name get their age and short address beside it."""
    reg = _shareable(personal.register)
    if len(reg):
        reg = risk_order(reg.reset_index(drop=True))
    flags = snap.person_flags(reg["person_id"]) if len(reg) else None
    shelters = {s.shelter_id: (s.name, bool(s.welfare), short_address(_text(s.address)))
                for s in snap.shelters.itertuples()}
    today = _date(data_date) or dt.date.today()
    rows = []
    for i, r in enumerate(reg.itertuples() if len(reg) else []):
        supporters = []
        for sid in split_list(r.supporter_ids):
            if sid in personal.supporters:
                name, phone, role = personal.supporters[sid]
                supporters.append({"id": sid, "name": name, "label": name, "phone": phone, "role_ja": role})
        shelter_id = _text(r.shelter_id)
        shelter = None
        if shelter_id and shelter_id in shelters:
            name, welfare, address = shelters[shelter_id]
            shelter = {"id": shelter_id, "name": name, "welfare": welfare, "address": address,
                       "label": shelter_labels.get(shelter_id, "")}
        care = flags["needs_care"].iloc[i] if flags is not None else False
        geom = getattr(r, "geometry", None)
        located = geom is not None and not geom.is_empty
        address = short_address(_text(r.address))
        rows.append({
            "number": i + 1, "person_id": r.person_id, "name": r.name, "label": r.name,
            "kana": _text(r.kana) or "", "tell": None,
            "address": address, "needs": _needs(r), "age": _age(getattr(r, "birth_date", None), today),
            "consent_ja": "同意" if r.consent == Consent.CONSENTED else "条例",
            "plan_ja": PLAN_STATUS_JA[PlanStatus(r.plan_status)] if _text(r.plan_status) else "未作成",
            "supporters": supporters, "shelter": shelter, "no_supporter": not supporters,
            "emergency": _text(getattr(r, "emergency_contact", None)) or "",
            "needs_care": bool(care) if care == care else False,
            "x": geom.x if located else None, "y": geom.y if located else None,
        })
    _tell_apart_people(rows)
    return rows


def _tell_apart_people(rows: list[dict]) -> None:
    """People who share a name on one sheet get their age and short address (town, no number)."""
    by_name: dict[str, list[dict]] = {}
    for p in rows:
        by_name.setdefault(p["name"], []).append(p)
    for same in by_name.values():
        if len(same) > 1:
            for p in same:
                town = _town(p["address"]) or (None if p["age"] is not None else str(p["person_id"]))
                p["tell"] = (p["age"], town)
                extra = [f"{p['age']}歳" if p["age"] is not None else "", town or ""]
                p["label"] = f"{p['name']}（{'・'.join(e for e in extra if e)}）"


def _tell_apart_supporters(roster: list[dict], register: list[dict]) -> None:
    """Supporters who share a name on one sheet (roster or register) get their id beside it."""
    ids: dict[str, set[str]] = {}
    for r in roster:
        ids.setdefault(r["name"], set()).add(str(r["cooperator_id"]))
    for p in register:
        for s in p["supporters"]:
            ids.setdefault(s["name"], set()).add(str(s["id"]))
    same = {name for name, found in ids.items() if len(found) > 1}
    for r in roster:
        r["label"] = f"{r['name']}（{r['cooperator_id']}）" if r["name"] in same else r["name"]
    for p in register:
        for s in p["supporters"]:
            s["label"] = f"{s['name']}（{s['id']}）" if s["name"] in same else s["name"]


def _outside_shelters(snap: Snapshot, register: pd.DataFrame, shelter_labels: dict[str, str],
                      extent) -> list[dict]:
    """Shelters the district's listed people go to that are not its own: lettered after its own
    (``shelter_labels`` gains them), in the map when inside its extent."""
    used = _shareable(register)
    ids = sorted({str(v) for v in used["shelter_id"] if _text(v)} - set(shelter_labels)) if len(used) else []
    table = snap.shelters.set_index("shelter_id") if len(snap.shelters) else None
    out = []
    for sid in ids:
        if table is None or sid not in table.index:
            continue
        s = table.loc[sid]
        shelter_labels[sid] = _letters(len(shelter_labels))
        geom = s.geometry
        located = geom is not None and not geom.is_empty
        inside = located and extent[0] <= geom.x <= extent[2] and extent[1] <= geom.y <= extent[3]
        out.append({"shelter_id": sid, "label": shelter_labels[sid], "name": s["name"],
                    "address": short_address(_text(s["address"])), "welfare": bool(s["welfare"]),
                    "accepts": _text(s.get("accepts")) or "", "in_map": bool(inside),
                    "x": geom.x if located else None, "y": geom.y if located else None})
    return out


def _unlisted(snap: Snapshot, code: str, listed: list[dict]) -> tuple[int, dict[str, tuple[int, int]]]:
    """Counts only: the district's support-needers without shareable consent, and per supporter
    the assigned people this sheet does not list (no consent; consented but in another district)."""
    register = snap.analysis_inputs()["register"]
    if not len(register):
        return 0, {}
    ok = register["consent"].map(lambda c: c in Consent._value2member_map_ and Consent(c).shareable)
    ok = ok.to_numpy(dtype=bool)
    own = (register["district_code"] == code).to_numpy()
    unlisted = int((own & ~ok).sum())
    by_supporter: dict[str, list[int]] = {}
    for ids, shareable, here in zip(register["supporter_ids"], ok, own, strict=True):
        for sid in split_list(ids):
            counts = by_supporter.setdefault(sid, [0, 0])
            if not shareable:
                counts[0] += 1
            elif not here:
                counts[1] += 1
    return unlisted, {sid: (a, b) for sid, (a, b) in by_supporter.items() if a or b}


def _needs(r) -> str:
    mobility = r.mobility if r.mobility in Mobility._value2member_map_ else None
    parts = [_text(r.care_level), " ".join(x for x in (_text(r.disability_kind),
                                                       _text(r.disability_grade)) if x),
             _text(r.medical_devices),
             Mobility(mobility).ja if mobility and mobility != Mobility.INDEPENDENT else None]
    if _flag(r.intractable_disease):
        parts.append("難病")
    if _flag(r.infant):
        parts.append("乳幼児")
    return "・".join(p for p in parts if p)


def _population(snap: Snapshot, code: str):
    return next((m["value"] for m in snap.kartes[code]["base"] if m["key"] == "population"), None)


def _first(snap: Snapshot, codes: list[str]) -> str:
    return snap.kartes[codes[0]]["fiscal_year_label"]


def _date(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]) if _text(value) else None
    except ValueError:
        return None


def _age(birth, today: dt.date) -> int | None:
    born = _date(birth)
    if born is None:
        return None
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _town(address: str | None) -> str:
    """The town of an address, short: its 大字 without 大字 and without 字 or lot number
    (大字後潟字大原33-15 -> 後潟); '' without an address."""
    town = re.sub(r"[0-9０-９].*$", "", address or "").split("大字")[-1]
    return town.split("字")[0] or town


def _role_ja(role) -> str:
    return ROLE_JA[Role(role)] if role in Role._value2member_map_ else str(role or "")


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _flag(v) -> bool:
    return bool(v) and not (isinstance(v, float) and math.isnan(v))


def _int(v):
    return None if v is None or pd.isna(v) else int(v)


def _text(v):
    return None if v is None or (isinstance(v, float) and pd.isna(v)) or v == "" else str(v)
