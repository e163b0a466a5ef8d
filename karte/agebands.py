"""Age bands per small area: read from an e-Stat table when supplied, else a synthetic model.

No real age table per small area is available offline (see ``data/README.md``). The demo derives
age bands, elderly living alone and persons with disabilities from the real population with the
documented synthetic model below; every output built from it says so (``synthetic_age = True``
on the small areas, and the karte's ``synthetic`` list).

Synthetic model (``docs/synthetic-model.md`` explains it at more length)
------------------------------------------------------------------------
For a small area with population ``P`` and density ``d`` (people per km²):

* an ageing score ``a = 0.25 * z + e`` where ``z`` is the standardised ``-log(d)`` over the city
  (sparser areas are older) clipped to [-2, 2], and ``e ~ N(0, 0.08)`` drawn from a generator
  seeded by the KEY_CODE and the seed (so each area's split is stable);
* shares ``0-14: 0.118 (1 - 0.6 a)``, ``65-74: 0.140 (1 + a)``, ``75+: 0.146 (1 + 1.2 a)``,
  ``15-64`` the rest — the base shares are close to Aomori city's 2015 census figures;
* integer counts by largest remainder, so the four bands add up to ``P`` exactly;
* elderly living alone ``~ Binomial(65+, 0.18)``; persons with disabilities
  ``~ Binomial(P - 65+, 0.035) + Binomial(65+, 0.11)``.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from karte.domain.errors import InputError, Problem, ValidationError
from karte.domain.schema import AGE_BANDS

BASE_SHARES = {"age_0_14": 0.118, "age_65_74": 0.140, "age_75_plus": 0.146}
ALONE_RATE = 0.18
DISABLED_RATE_UNDER_65 = 0.035
DISABLED_RATE_65_PLUS = 0.11
#: e-Stat's cell marks: ``-`` is none (該当数字なし, a count of 0); the others are concealed or
#: merged into another area (秘匿・合算), unknown here. The one list for every e-Stat reader.
NONE_MARKS = frozenset({"-"})
CONCEALED_MARKS = frozenset({"X", "x", "*", "**", "***", "…", "･", "・"})


def estat_count(cell: str) -> int | None:
    """An e-Stat table cell as a count: digits (commas allowed) as an int, ``-`` as 0, a concealed
    mark or an empty cell as None. Raises ValueError for anything else."""
    text = unicodedata.normalize("NFKC", str(cell)).strip().replace(",", "")
    if text in NONE_MARKS:
        return 0
    if text in CONCEALED_MARKS or text == "":
        return None
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def synthetic_age_bands(small_areas: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Synthetic age bands, elderly living alone and disabled persons per small area.

    ``small_areas`` needs ``key_code``, ``population`` (nullable) and a metric geometry (for
    density). Returns a DataFrame indexed like the input with the four :data:`AGE_BANDS`,
    ``elderly_alone`` and ``disabled`` (nullable integers; null where population is null).
    """
    pop = small_areas["population"].astype("Float64")
    area_km2 = small_areas.geometry.area.to_numpy() / 1e6
    density = pop.to_numpy(dtype=float, na_value=np.nan) / np.maximum(area_km2, 1e-6)
    logd = -np.log(np.maximum(density, 1.0))
    known = ~np.isnan(logd)
    z = np.zeros_like(logd)
    # centred on the population-weighted mean, so the city-wide shares stay near the base shares
    w = pop.to_numpy(dtype=float, na_value=0.0)[known]
    mean = np.average(logd[known], weights=w) if w.sum() > 0 else logd[known].mean()
    z[known] = (logd[known] - mean) / (logd[known].std() or 1.0)
    z = np.clip(z, -2, 2)

    rows = []
    for key, p, zi in zip(small_areas["key_code"], pop, z, strict=True):
        if pd.isna(p):
            rows.append(dict.fromkeys((*AGE_BANDS, "elderly_alone", "disabled")))
            continue
        rng = np.random.default_rng([seed, zlib.crc32(str(key).encode())])
        a = 0.25 * zi + rng.normal(0.0, 0.08)
        shares = {
            "age_0_14": BASE_SHARES["age_0_14"] * (1 - 0.6 * a),
            "age_65_74": BASE_SHARES["age_65_74"] * (1 + a),
            "age_75_plus": BASE_SHARES["age_75_plus"] * (1 + 1.2 * a),
        }
        shares = {k: float(np.clip(v, 0.0, 0.6)) for k, v in shares.items()}
        shares["age_15_64"] = max(0.0, 1.0 - sum(shares.values()))
        counts = largest_remainder(int(p), [shares[b] for b in AGE_BANDS])
        row = dict(zip(AGE_BANDS, counts, strict=True))
        elderly = row["age_65_74"] + row["age_75_plus"]
        row["elderly_alone"] = int(rng.binomial(elderly, ALONE_RATE))
        row["disabled"] = int(
            rng.binomial(int(p) - elderly, DISABLED_RATE_UNDER_65)
            + rng.binomial(elderly, DISABLED_RATE_65_PLUS)
        )
        rows.append(row)
    return pd.DataFrame(rows, index=small_areas.index).astype("Int64")


def largest_remainder(total: int, shares: list[float]) -> list[int]:
    """Split ``total`` into integers proportional to ``shares`` that add up to ``total`` exactly."""
    weights = np.asarray(shares, dtype=float)
    if total == 0 or weights.sum() == 0:
        return [0] * len(shares)
    exact = total * weights / weights.sum()
    floors = np.floor(exact).astype(int)
    short = total - int(floors.sum())
    order = np.argsort(-(exact - floors), kind="stable")
    floors[order[:short]] += 1
    return [int(x) for x in floors]


# --- e-Stat small-area age table ---------------------------------------------------------------

_RANGE = re.compile(r"(\d+)[~～〜-](\d+)歳")  # NFKC turns ～ into ~
_OPEN = re.compile(r"(\d+)歳以上")


def read_estat_age_table(path: Path) -> pd.DataFrame:
    """Read an e-Stat small-area population-by-age CSV (e.g. tblT000849C02, tblT001082C02).

    The layout: CP932 (UTF-8 also accepted), two header rows (codes, then Japanese labels),
    ``KEY_CODE`` first; 5-year age columns labelled like ``総数０～４歳`` … ``総数１００歳以上``
    (male/female columns are ignored). Of the open-ended columns only the highest counts: the
    2020 table also has 再掲 totals such as ``総数６５歳以上`` besides ``総数７５歳以上``, and
    adding those would count people twice. Cells follow :func:`estat_count` (``-`` is 0).

    Returns a DataFrame indexed by ``key_code`` with the four :data:`AGE_BANDS` as nullable
    integers (null where any contributing cell was concealed).
    """
    path = Path(path)
    raw = _decode(path)
    frame = pd.read_csv(io.StringIO(raw), header=None, dtype=str, keep_default_na=False)
    if len(frame) < 3:
        raise InputError(f"{path.name}: e-Stat 形式 (見出し2行+データ) ではありません")
    codes = [c.strip() for c in frame.iloc[0]]
    labels = [unicodedata.normalize("NFKC", c).strip() for c in frame.iloc[1]]
    if "KEY_CODE" not in codes:
        raise ValidationError([Problem(path.name, 1, "KEY_CODE", "KEY_CODE 列がありません",
                                       "no KEY_CODE column")])
    band_cols: dict[str, list[int]] = {b: [] for b in AGE_BANDS}
    open_cols: dict[int, int] = {}   # lower bound -> column, of the 総数N歳以上 columns
    for j, label in enumerate(labels):
        if not label.startswith("総数") or "不詳" in label:
            continue
        m, o = _RANGE.search(label), _OPEN.search(label)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi - lo > 4:  # aggregate columns such as 総数15～64歳 would double count
                continue
            band_cols[_band_of(lo)].append(j)
        elif o:
            open_cols.setdefault(int(o.group(1)), j)
    if open_cols:
        top = max(open_cols)
        band_cols[_band_of(top)].append(open_cols[top])
    empty = [b for b, cols in band_cols.items() if not cols]
    if empty:
        raise ValidationError([Problem(path.name, 2, None,
                                       f"年齢5歳階級の列が見つかりません ({', '.join(empty)})",
                                       "no 5-year age columns found for these bands")])
    key_idx = codes.index("KEY_CODE")
    problems: list[Problem] = []
    records = {}
    for i in range(2, len(frame)):
        row = frame.iloc[i]
        key = row.iloc[key_idx].strip()
        rec = {}
        for band, cols in band_cols.items():
            total = 0
            for j in cols:
                try:
                    value = estat_count(row.iloc[j])
                except ValueError as exc:
                    problems.append(Problem(path.name, i + 1, codes[j] or labels[j],
                                            f"数値ではありません: {str(exc)[:12]}", "not a count"))
                    value = None
                if value is None:
                    total = None
                    break
                total += value
            rec[band] = total
        if key in records:
            problems.append(Problem(path.name, i + 1, "KEY_CODE", f"KEY_CODE {key} が重複",
                                    "duplicate KEY_CODE"))
        records[key] = rec
    if problems:
        raise ValidationError(problems)
    out = pd.DataFrame.from_dict(records, orient="index", columns=list(AGE_BANDS)).astype("Int64")
    out.index.name = "key_code"
    return out


def _band_of(lower: int) -> str:
    return ("age_0_14" if lower < 15 else "age_15_64" if lower < 65 else
            "age_65_74" if lower < 75 else "age_75_plus")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: 文字コードが UTF-8 でも CP932 でもありません") from exc
