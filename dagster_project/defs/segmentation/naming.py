"""Segment profiles against all clients and the names a banker reads them by (pure functions).

A profile row per segment and feature (features.FEATURES plus a few profile-only attributes): numeric features
by their mean (shares) or median, categorical ones per category by their share of clients, and ``difference``:
how far the segment sits from all clients - in standard deviations of the model's normal scores for numeric
features, in share points for categories. Names are ``[credit] [size] [industry] · [product focus]``, built from
the profile with the rules in docs/segmentation.md ("Names"); no word appears twice and no two segments share one.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation.features import FEATURES, PRODUCT_WORDS, PRODUCTS, DimensionScaler

# attributes profiled (and named by) that are not model features: categories of client_features
PROFILE_ONLY: tuple[str, ...] = ("rating_grade", "credit_band", "size_class", "value_tier")
PROFILE_COLUMNS: tuple[str, ...] = PROFILE_ONLY
SECTION_NOUNS = {"A": "farms", "B": "miners", "C": "manufacturers", "D": "utilities", "E": "builders",
                 "F": "traders", "G": "logistics firms", "H": "hotel and catering firms", "I": "tech firms",
                 "K": "property firms", "L": "business-service firms", "M": "research and engineering firms",
                 "N": "environmental and public-works firms", "O": "household-service firms", "P": "education providers",
                 "Q": "health providers", "R": "culture and media firms", "S": "community-service firms"}
SIZE_WORDS = {"large": "large", "medium": "mid-sized", "small": "small", "micro": "micro"}
COLUMNS = ["segment", "feature", "category", "stat", "segment_value", "population_value", "difference"]


def profile_segments(x: pd.DataFrame, scaler: DimensionScaler, segment: np.ndarray,
                     extra: pd.DataFrame | None = None) -> pd.DataFrame:
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
        frames.append(pd.DataFrame({"segment": agg.index, "feature": f.column, "category": "", "stat": stat,
                                    "segment_value": agg.to_numpy(dtype=float), "population_value": pop,
                                    "difference": z.reindex(agg.index).to_numpy(dtype=float)}))
    for c in PROFILE_ONLY:
        if extra is not None and c in extra:
            frames.append(_category_rows(extra[c].fillna("unknown").astype(str).set_axis(x.index), seg, c))
    sizes = seg.value_counts().sort_index()
    frames.append(pd.DataFrame({"segment": sizes.index, "feature": "clients", "category": "", "stat": "count",
                                "segment_value": sizes.to_numpy(dtype=float), "population_value": float(len(seg)),
                                "difference": sizes.to_numpy(dtype=float) / len(seg)}))
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


def _value(profile: pd.DataFrame, feature: str, category: str = "") -> tuple[float, float]:
    row = profile[(profile.feature == feature) & (profile.category == category)]
    return (float(row.segment_value.iloc[0]), float(row.population_value.iloc[0])) if len(row) else (0.0, math.nan)


def _top_category(profile: pd.DataFrame, feature: str, at_least: float = 0.5) -> tuple[str | None, float]:
    rows = profile[(profile.feature == feature) & (profile.stat == "share")]
    if not len(rows):
        return None, 0.0
    best = rows.sort_values("segment_value", ascending=False).iloc[0]
    return (str(best.category) if best.segment_value >= at_least else None), float(best.segment_value)


def credit_word(profile: pd.DataFrame) -> str:
    """distressed (>= 40 % graded D), else the credit band of >= 50 % (prime, sound, weak, unrated), else ''."""
    if _value(profile, "rating_grade", "D")[0] >= 0.4:
        return "distressed"
    band, _ = _top_category(profile, "credit_band")
    return {"prime": "prime", "near_prime": "sound", "subprime": "weak", "unrated": "unrated"}.get(band or "", "")


def size_word(profile: pd.DataFrame) -> str:
    size, _ = _top_category(profile, "size_class")
    if size in SIZE_WORDS:
        return SIZE_WORDS[size]
    rev, pop = _value(profile, "annual_revenue")
    return "large" if pop and rev >= 4 * pop else "small" if pop and rev <= pop / 4 else ""


def industry_noun(profile: pd.DataFrame) -> str:
    section, _ = _top_category(profile, "industry_section")
    noun = SECTION_NOUNS.get(section or "", "mixed-industry firms")
    if _top_category(profile, "firm_stage")[0] == "startup":
        noun = noun.replace("firms", "start-ups") if noun.endswith("firms") else f"start-up {noun}"
    return noun


def product_focus(profile: pd.DataFrame, most: int = 2) -> str:
    """The products holding the most of the segment's limit, at >= 25 % and >= 1.5x all clients' share."""
    rows = []
    for p in PRODUCTS:
        seg_share, pop = _value(profile, f"limit_share_{p}")
        if seg_share >= 0.25 and (not pop or seg_share >= 1.5 * pop):
            rows.append((seg_share, PRODUCT_WORDS[p]))
    return " & ".join(w for _, w in sorted(rows, reverse=True)[:most])


def name_segment(profile: pd.DataFrame) -> tuple[str, str]:
    """(name, description) of one segment from its profile rows (docs/segmentation.md, "Names")."""
    words = [w for w in (credit_word(profile), size_word(profile)) if w]
    noun = industry_noun(profile)
    focus = product_focus(profile)
    name = " ".join([*words, noun]) + (f" · {focus}" if focus else "")
    n, total = _value(profile, "clients")
    rev, rev_pop = _value(profile, "annual_revenue")
    score, score_pop = _value(profile, "bureau_score")
    term, _ = _value(profile, "limit_weighted_term_months")
    no_report, _ = _value(profile, "no_bureau_report")
    d_share, _ = _value(profile, "rating_grade", "D")
    desc = (f"{int(n):,} clients ({n / total:.0%} of those scored). Median revenue CNY {money(rev)} "
            f"(all clients {money(rev_pop)}), median bureau score {_num(score)} (all clients {_num(score_pop)}), "
            f"{no_report:.0%} without a bureau report, {d_share:.0%} graded D"
            + (f", limit-weighted term {term:.0f} months" if not math.isnan(term) else "")
            + (f"; most of its limit in {focus}." if focus else "."))
    return name, desc


def _num(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.0f}"


def money(v: float) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    for unit, div in (("bn", 1e9), ("m", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:.0f}"


QUALIFIERS = {  # feature -> (word when the segment is above the twin, word when below)
    "online_share_12m": ("online-served", "branch-served"), "relationship_manager_share_12m": ("RM-covered", ""),
    "limit_weighted_term_months": ("long-tenor", "short-tenor"), "secured_limit_share": ("secured", "unsecured"),
    "firm_age_months": ("long-established", "young"), "bureau_score": ("higher-scored", "lower-scored"),
    "annual_revenue": ("larger", "smaller"), "avg_utilisation_12m": ("heavily drawn", "lightly drawn"),
    "months_in_arrears_12m": ("in arrears", "current on payments"), "no_bureau_report": ("no-report", "reported"),
}


def unique_names(names: dict[int, str], taken: set[str] | None = None,
                 profile: pd.DataFrame | None = None) -> dict[int, str]:
    """Distinct names: a twin gets the qualifier that most sets it apart (QUALIFIERS), else ' (segment <id>)'."""
    seen = set(taken or ())
    out = {}
    groups: dict[str, list[int]] = {}
    for sid in sorted(names):
        groups.setdefault(names[sid], []).append(sid)
    for sid in sorted(names):
        n = names[sid]
        twins = [t for t in groups[n] if t != sid]
        if (n in seen or twins) and profile is not None:
            q = _qualifier(profile, sid, twins)
            n = f"{n} · {q}" if q else n
        if n in seen:
            n = f"{n} (segment {sid})"
        seen.add(n)
        out[sid] = n
    return out


def _qualifier(profile: pd.DataFrame, sid: int, twins: list[int]) -> str:
    num = profile[profile.category.eq("") & profile.feature.isin(list(QUALIFIERS))]
    mine = num[num.segment == sid].set_index("feature").difference
    others = num[num.segment.isin(twins)].groupby("feature").difference.mean() if twins else \
        pd.Series(0.0, index=mine.index)
    gap = (mine - others.reindex(mine.index).fillna(0.0)).dropna()
    for feature in gap.abs().sort_values(ascending=False).index:
        word = QUALIFIERS[feature][0 if gap[feature] > 0 else 1]
        if word:
            return word
    return ""
