"""Disaster mode (災害時モード): sharing the register without consent while a disaster is on.

災害対策基本法 第49条の11第3項: in a disaster, or when one is imminent, the municipality may give
the register to the supporters (避難支援等関係者) without the persons' consent where that is needed
to protect life. City staff switch a district, or the whole city, into disaster mode; the mode
ends by hand (:func:`stop`) or at the end time set when it was switched on.

While a district is in disaster mode:

* its district members (the designated supporters of their area) see its unconsented register
  entries and evacuation plans too (:meth:`karte.domain.access.Access.consent_lifted`; PostGIS:
  the same rule in row-level security through ``karte.disaster_districts()``);
* every page shows a banner (:func:`banner`, from the web dependency);
* every read of personal rows by a user of that municipality is logged with the mode (the access
  log's ``route`` ends in ``+disaster``);
* switching it on and off are row writes of ``disaster_modes``, in the access log as ``append``
  and ``update`` with the acting city staff member.

Outside disaster mode nothing changes: :func:`effective_access` returns the viewer's own access.
Which districts are in the mode comes from the build snapshot (``disaster_modes`` is a snapshot
layer: switching changes the stamp), checked against the clock on every request, so a mode that
reaches its end time ends without anybody writing anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd

from karte.domain.access import AGGREGATES_ONLY, Access, Level
from karte.domain.drills import MODES
from karte.domain.errors import AccessDenied, InputError, KarteError, NotFoundError
from karte.domain.layers import MUNICIPALITY
from karte.snapshot import Snapshot, active_modes, current
from karte.store.base import Store

JST = ZoneInfo("Asia/Tokyo")
#: The longest a mode may be set for in one go (hours): a disaster mode is renewed, not forgotten.
MAX_HOURS = 24 * 14
LAW_JA = "災害対策基本法 第49条の11第3項"


def effective_access(store: Store, access: Access, *, now: dt.datetime | None = None) -> Access:
    """``access`` with the districts of the viewer's municipality in disaster mode at ``now``
    (:attr:`Access.disaster`): the viewer's own access when none is, or for the public and the
    prefecture level (who see no rows), or when the store holds no build yet."""
    if access.level in AGGREGATES_ONLY:
        return access
    return with_modes(_snapshot(store), access, now=now)


def with_modes(snap: Snapshot | None, access: Access, *, now: dt.datetime | None = None) -> Access:
    """:func:`effective_access` with the snapshot in hand (None: no build, no mode)."""
    if access.level in AGGREGATES_ONLY:
        return access
    districts = snap.disaster_districts(access.municipality, now) if snap is not None else frozenset()
    if districts == access.disaster:
        return access
    return dataclasses.replace(access, disaster=districts)


def banner(store: Store, access: Access, *, now: dt.datetime | None = None) -> dict | None:
    """What the page banner says while the viewer's municipality has districts in disaster mode
    (None otherwise, and for the public and the prefecture level): ``districts`` (sorted codes),
    ``mine`` (the viewer's own district is one of them: their view is widened), ``periods`` (one
    per switching: ``districts`` by name, ``started_by``, ``since`` and ``until`` in JST,
    ``scope``) and ``text``, the whole banner as one sentence block (Japanese)."""
    if not access.disaster or access.level in AGGREGATES_ONLY:
        return None
    snap = _snapshot(store)
    live = active_modes(snap.disaster_modes, _now(now)) if snap is not None else pd.DataFrame()
    if len(live) and MUNICIPALITY in live.columns:
        live = live[live[MUNICIPALITY].astype(object) == access.municipality]
    groups: dict[tuple, list[str]] = {}
    for row in live.to_dict(orient="records") if len(live) else []:
        code = str(row["district_code"])
        if code not in access.disaster:
            continue
        key = (str(row.get("started_at") or ""), str(row.get("started_by") or ""),
               str(row.get("ends_at") or ""), str(row.get("scope") or ""))
        groups.setdefault(key, []).append(code)
    periods = []
    for (started, by, ends, scope), codes in sorted(groups.items()):
        names = [_name(snap, c) for c in sorted(codes)]
        shown = "全市" if scope == "city" and snap is not None and len(codes) >= len(snap.codes) else (
            "、".join(names[:6]) + (f" ほか{len(names) - 6}地区" if len(names) > 6 else ""))
        periods.append({"districts": names, "shown": shown, "started_by": by, "since": jst_text(started),
                        "until": jst_text(ends), "scope": scope})
    districts = sorted(access.disaster)
    if not periods:  # the access names districts the snapshot does not (a test's access): codes only
        periods.append({"districts": districts, "shown": "、".join(districts), "started_by": "",
                        "since": "", "until": "", "scope": ""})
    mine = access.consent_lifted
    parts = []
    for p in periods:
        when = f"{p['since']}から" if p["since"] else ""
        who = f"（{p['started_by']} が開始）" if p["started_by"] else ""
        until = f"、{p['until']}まで" if p["until"] else "、終了の操作まで"
        parts.append(f"{p['shown']}: {when}{who}{until if p['since'] else ''}")
    text = (f"災害時モード（{LAW_JA}）— " + "／".join(parts) + "。"
            + "対象地区では同意のない方も含めて名簿を地区の避難支援者に提供しています（同意の制限を解除）。"
            + ("あなたの地区も対象のため、同意のない方も表示しています。" if mine else "")
            + "閲覧はすべて災害時モードとして記録されます。")
    return {"districts": districts, "mine": mine, "periods": periods, "text": text}


def _name(snap: Snapshot | None, code: str) -> str:
    if snap is None or code not in snap.kartes:
        return code
    return f"{snap.district_name(code)}（{code}）"


# -- switching ----------------------------------------------------------------------------------------

def start(store: Store, access: Access, districts: list[str] | None = None, *, hours: float | None = None,
          reason: str = "", now: dt.datetime | None = None) -> list[dict]:
    """Switch ``districts`` (None or empty: every district of the city) into disaster mode as
    ``access`` (city staff only), until stopped by hand or, with ``hours``, until then. Districts
    already in the mode are left as they are. Returns the rows written (one per district).

    Raises :class:`AccessDenied` below city staff, :class:`NotFoundError` for an unknown district,
    :class:`InputError` for a bad duration or an overlong reason."""
    _check_staff(access)
    snap = current(store)
    now = _now(now)
    scope = "district" if districts else "city"
    codes = _districts(snap, districts)
    if hours is not None and not 0 < float(hours) <= MAX_HOURS:
        raise InputError(f"災害時モードの時間は 0 より長く {MAX_HOURS} 時間以内で指定してください")
    if len(reason) > 500:
        raise InputError("理由は500文字以内で入力してください")
    on = snap.disaster_districts(access.municipality, now)
    started = _iso(now)
    ends = _iso(now + dt.timedelta(hours=float(hours))) if hours is not None else ""
    rows = [{"district_code": code, "scope": scope, "started_at": started, "ends_at": ends, "stopped_at": "",
             "started_by": access.user, "stopped_by": "", "reason": reason.strip()}
            for code in codes if code not in on]
    if not rows:
        return []
    return store.append_rows(MODES, rows, access=access)


def stop(store: Store, access: Access, districts: list[str] | None = None, *,
         now: dt.datetime | None = None) -> list[str]:
    """End the disaster mode of ``districts`` (None or empty: every district in the mode) as
    ``access`` (city staff only): each active row gets ``stopped_at`` and ``stopped_by``.
    Returns the districts whose mode ended."""
    _check_staff(access)
    snap = current(store)
    now = _now(now)
    if districts:
        _districts(snap, districts)
    live = active_modes(snap.disaster_modes, now)
    ended = []
    for row in live.to_dict(orient="records"):
        code = str(row["district_code"])
        if row.get("municipality_code", access.municipality) != access.municipality:
            continue
        if districts and code not in districts:
            continue
        stored = store.read_row(MODES, str(row["mode_id"]), access=access)
        store.update_row(MODES, str(row["mode_id"]), {"stopped_at": _iso(now), "stopped_by": access.user},
                         version=int(stored["version"]), access=access)
        ended.append(code)
    return sorted(set(ended))


def modes(store: Store, access: Access, *, now: dt.datetime | None = None) -> list[dict]:
    """The disaster-mode periods the viewer may see (read as the viewer, logged), newest first,
    each with ``active`` and the times in JST for people."""
    if not access.sees_personal or MODES not in store.layers():
        return []
    now = _now(now)
    rows = store.read_records(MODES, access=access)
    live = {str(r["mode_id"]) for r in active_modes(_frame(rows), now).to_dict(orient="records")} if rows \
        else set()
    out = []
    for r in rows:
        out.append({**r, "active": str(r["mode_id"]) in live, "started_ja": jst_text(r.get("started_at")),
                    "ends_ja": jst_text(r.get("ends_at")), "stopped_ja": jst_text(r.get("stopped_at"))})
    out.sort(key=lambda r: (str(r.get("started_at") or ""), str(r.get("district_code"))), reverse=True)
    return out


def jst_text(value) -> str:
    """An ISO time as people read it: ``2027年3月1日(令和9年) 18:30``; empty for none."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    local = moment.astimezone(JST)
    return f"{local.year}年{local.month}月{local.day}日（令和{local.year - 2018}年）{local:%H:%M}"


# -- helpers ------------------------------------------------------------------------------------------

def _check_staff(access: Access) -> None:
    if access.level != Level.CITY_STAFF:
        raise AccessDenied("災害時モードの開始・終了は市職員だけができます")


def _districts(snap: Snapshot, districts: list[str] | None) -> list[str]:
    if not districts:
        return list(snap.codes)
    unknown = [d for d in districts if d not in snap.kartes]
    if unknown:
        raise NotFoundError(f"地区 {', '.join(unknown)} はありません")
    return list(dict.fromkeys(districts))


def _snapshot(store: Store) -> Snapshot | None:
    try:
        return current(store)
    except KarteError:  # an empty store, or one without a build: no district, no mode
        return None


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _now(now: dt.datetime | None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC)
    return now if now.tzinfo else now.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")
