"""Segment profiles against all clients and the names a banker reads them by (pure functions).

A profile row per segment and feature (features.FEATURES plus a few profile-only attributes): numeric features
by their mean (shares) or median, categorical ones per category by their share of clients, and ``difference``:
how far the segment sits from all clients - in standard deviations of the model's normal scores for numeric
features, in share points for categories. Names and descriptions come from each segment's contrasts against the
OTHER segments (contrasts.py; docs/segmentation.md, "Names"): the words of its largest contrasts, ordered
``[adjectives] [noun] · [product]``; twins are told apart by their next contrast; no two segments share a name.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation import contrasts as ct
from dagster_project.defs.segmentation.features import FEATURES, DimensionScaler

# attributes profiled (and named by) that are not model features: categories of client_features
PROFILE_ONLY: tuple[str, ...] = ("rating_grade", "credit_band", "size_class", "value_tier")
PROFILE_COLUMNS: tuple[str, ...] = PROFILE_ONLY
COLUMNS = ["segment", "feature", "category", "stat", "segment_value", "population_value", "difference"]


def profile_segments(
    x: pd.DataFrame, scaler: DimensionScaler, segment: np.ndarray, extra: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Long profile (COLUMNS) of prepared rows ``x`` (features.prepare) and ``extra`` (PROFILE_ONLY columns)."""
    seg = pd.Series(np.asarray(segment), index=x.index)
    raw = scaler._columns(x)
    frames = []
    for f in FEATURES:
        if f.categorical:
            frames.append(_category_rows(x[f.column], seg, f.column))
            continue
        v = x[f.column]
        stat = "mean" if f.unit == "share" else "median"
        agg = v.groupby(seg).mean() if stat == "mean" else v.groupby(seg).median()
        pop = float(v.mean() if stat == "mean" else v.median()) if v.notna().any() else math.nan
        z = pd.Series(raw[(_dim(f.column), f.column, "")], index=x.index).groupby(seg).mean()
        frames.append(
            pd.DataFrame(
                {
                    "segment": agg.index,
                    "feature": f.column,
                    "category": "",
                    "stat": stat,
                    "segment_value": agg.to_numpy(dtype=float),
                    "population_value": pop,
                    "difference": z.reindex(agg.index).to_numpy(dtype=float),
                }
            )
        )
    for c in PROFILE_ONLY:
        if extra is not None and c in extra:
            frames.append(_category_rows(extra[c].fillna("unknown").astype(str).set_axis(x.index), seg, c))
    sizes = seg.value_counts().sort_index()
    frames.append(
        pd.DataFrame(
            {
                "segment": sizes.index,
                "feature": "clients",
                "category": "",
                "stat": "count",
                "segment_value": sizes.to_numpy(dtype=float),
                "population_value": float(len(seg)),
                "difference": sizes.to_numpy(dtype=float) / len(seg),
            }
        )
    )
    out = pd.concat(frames, ignore_index=True)
    out["segment"] = out["segment"].astype(int)
    return out[COLUMNS]


def _dim(column: str) -> str:
    from dagster_project.defs.segmentation.features import DIMENSION_OF

    return DIMENSION_OF[column]


def _category_rows(v: pd.Series, seg: pd.Series, feature: str) -> pd.DataFrame:
    pop = v.value_counts(normalize=True)
    pop = pop[pop >= 0.01]
    share = pd.crosstab(seg, v, normalize="index").reindex(columns=pop.index, fill_value=0.0)
    long = share.stack().rename("segment_value").reset_index()
    long.columns = ["segment", "category", "segment_value"]
    long["population_value"] = long.category.map(pop).astype(float)
    long["difference"] = long.segment_value - long.population_value
    long["feature"], long["stat"] = feature, "share"
    return long


RULES = "contrasts-v1"  # metadata marker: a champion named by other rules has its kept segments renamed at retrain
MAX_WORDS = 3  # contrasts a name is built from (the product and the noun count as one each)
MIN_CONTRAST = 0.5  # SD: a contrast below this does not enter a name (the largest always does)
PRODUCT_CONTRAST = 1.0  # SD: the segment's largest product contrast at least this joins a name that has no product
NOUN_FLOOR = 0.5  # share of the segment an industry must hold to be the name's noun when it is no top contrast
money = ct.money


def name_words(
    table: pd.DataFrame, segment: int, k: int = MAX_WORDS, shared: frozenset[str] = frozenset()
) -> list[pd.Series]:
    """The contrasts a segment's name is built from: its ``k`` largest named ones (one per family), those after the
    first only at >= MIN_CONTRAST and not ``shared``; with no product among them, its largest product contrast at
    >= PRODUCT_CONTRAST."""
    top = ct.top_contrasts(table, segment, named=True)
    rows = [
        r
        for i, (_, r) in enumerate(top.iterrows())
        if i == 0 or (abs(r.score) >= MIN_CONTRAST and r.word not in shared)
    ][:k]
    products = top[(top.role == "focus") & (top.score >= PRODUCT_CONTRAST) & ~top.word.isin(list(shared))]
    if len(products) and not any(r.role == "focus" for r in rows):
        rows.append(products.iloc[0])
    return rows


def compose(rows: list[pd.Series], profile: pd.DataFrame | None = None) -> str:
    """``[adjectives] [noun] · [product]`` from contrasts; without an industry among them the noun is the segment's
    most over-represented industry holding >= NOUN_FLOOR of it, else ``borrowers`` (``start-ups`` in the startup
    stage)."""
    adj = [r.word for r in rows if r.role == "adj"]
    nouns = [r.word for r in rows if r.role == "noun"]
    focus = [r.word for r in rows if r.role == "focus"]
    stage = any(r.role == "stage" for r in rows)
    noun = nouns[0] if nouns else (_fallback_noun(profile) if profile is not None else "")
    if stage:
        noun = f"start-up {noun}" if noun else "start-ups"
    noun = noun or "borrowers"
    order = {
        "distressed": 0,
        **{w: 0 for w in ct.BAND_WORDS.values()},
        **{w: 1 for w in ct.SIZE_WORDS.values()},
        "high-risk-sector": 3,
    }
    adj = sorted(dict.fromkeys(adj), key=lambda w: order.get(w, 2))
    return " ".join([*adj, noun]) + (f" · {' & '.join(focus)}" if focus else "")


def _fallback_noun(profile: pd.DataFrame) -> str:
    rows = profile[(profile.feature == "industry_section") & (profile.segment_value >= NOUN_FLOOR)]
    rows = rows[rows.segment_value > rows.population_value].sort_values("segment_value", ascending=False)
    return ct.SECTION_NOUNS.get(str(rows.category.iloc[0]), "") if len(rows) else ""


def name_segments(profile: pd.DataFrame, taken: set[str] | None = None) -> dict[int, tuple[str, str]]:
    """(name, description) of every segment of ``profile``: words of its largest contrasts against the other segments
    (a word more than half of the names would carry is kept only where it is the segment's top contrast), twins told
    apart by their next contrast, the description its three largest contrasts in an RM's words."""
    table = ct.contrast_table(profile)
    segments = sorted(int(s) for s in profile.segment.unique())
    shared: frozenset[str] = frozenset()
    for _ in range(MAX_WORDS):  # a word in more than half of the names stays only where it is the top contrast
        words = {s: name_words(table, s, shared=shared) for s in segments}
        counts = pd.Series([r.word for rows in words.values() for r in rows], dtype=object).value_counts()
        more = frozenset(counts.index[counts > len(segments) / 2]) - shared
        if not more:
            break
        shared |= more
    names = {s: compose(words[s], profile[profile.segment == s]) for s in segments}
    names = unique_names(names, taken, table)
    return {s: (names[s], ct.describe(table, s)) for s in segments}


def unique_names(
    names: dict[int, str], taken: set[str] | None = None, table: pd.DataFrame | None = None
) -> dict[int, str]:
    """Distinct names: twins (a shared name, or one already ``taken``) each get their next contrast's word not yet in
    their name (``table``: contrasts.contrast_table), else ' (segment <id>)'."""
    seen = set(taken or ())
    groups: dict[str, list[int]] = {}
    for sid in sorted(names):
        groups.setdefault(names[sid], []).append(sid)
    out = {}
    for sid in sorted(names):
        n = names[sid]
        if (n in seen or len(groups[n]) > 1) and table is not None and len(table):
            n = _told_apart(n, sid, groups[n], table, seen)
        if n in seen:
            n = f"{n} (segment {sid})"
        seen.add(n)
        out[sid] = n
    return out


def _told_apart(name: str, sid: int, twins: list[int], table: pd.DataFrame, seen: set[str]) -> str:
    """``name`` with the first of ``sid``'s next named contrasts that no twin would add at the same place."""
    used = set(name.replace("·", " ").replace("&", " ").split())
    theirs = {t: _next_words(table, t, used) for t in twins if t != sid}
    for i, word in enumerate(_next_words(table, sid, used)):
        if all(i >= len(w) or w[i] != word for w in theirs.values()) and f"{name} · {word}" not in seen:
            return f"{name} · {word}"
    return name


def _next_words(table: pd.DataFrame, sid: int, used: set[str]) -> list[str]:
    words = ct.top_contrasts(table, sid, named=True).word.tolist()
    return [w for w in words if not set(w.split()) <= used]
