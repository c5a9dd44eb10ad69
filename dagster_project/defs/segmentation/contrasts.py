"""What sets each segment apart from the OTHER segments: its contrasts, ranked, in a banker's words (pure functions).

A contrast is one attribute of a segment's profile (naming.profile_segments) measured against the unweighted mean of
the other segments' profiles - segments as units, so an attribute most segments share is no contrast for any of
them - in standard deviations of all clients:

* numeric feature: the segment's mean normal score (the profile's ``difference``) minus the other segments' mean;
* category: the segment's share minus the other segments' mean share, over the category's standard deviation
  ``sqrt(p (1 - p))`` (``p`` its share of all clients); only over-represented categories count.

Each contrast belongs to a family (one per dimension, each product its own) so that one strong dimension cannot fill
a name or a description alone. Names take the words of the largest contrasts (naming.py); the description reads the
three largest in an RM's words, e.g. ``utilisation (12 m) 35 pts above other segments (72 %); mostly manufacturers
(62 %); rating R2-R3 (other segments R4-R6)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation.features import (
    DIMENSION_OF,
    FEATURE_BY_COLUMN,
    PRODUCT_WORDS,
    PRODUCTS,
    SIZE_ORDER,
    VALUE_ORDER,
)

SECTION_NOUNS = {
    "A": "farms",
    "B": "miners",
    "C": "manufacturers",
    "D": "utilities",
    "E": "builders",
    "F": "traders",
    "G": "logistics operators",
    "H": "hoteliers and caterers",
    "I": "tech companies",
    "K": "property developers",
    "L": "business-service providers",
    "M": "research and engineering houses",
    "N": "environmental and public-works contractors",
    "O": "household-service providers",
    "P": "education providers",
    "Q": "health providers",
    "R": "culture and media companies",
    "S": "community-service providers",
}
SIZE_WORDS = {"large": "large", "medium": "mid-sized", "small": "small", "micro": "micro"}
BAND_WORDS = {"prime": "prime", "near_prime": "sound", "subprime": "weak", "unrated": "unrated"}
GRADES = ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "D")
# (feature, category) -> (role, word in a name, phrase in a description); role: adj | noun | stage
CATEGORY_WORDS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("rating_grade", "D"): ("adj", "distressed", "graded D"),
    **{("credit_band", b): ("adj", w, f"{w} credit band") for b, w in BAND_WORDS.items()},
    **{("size_class", s): ("adj", w, f"{w} firms") for s, w in SIZE_WORDS.items()},
    **{("industry_section", s): ("noun", n, n) for s, n in SECTION_NOUNS.items()},
    ("firm_stage", "startup"): ("stage", "start-up", "start-ups"),
    ("industry_risk_class", "high"): ("adj", "high-risk-sector", "high-risk industries"),
}
# numeric feature -> (word when above the other segments, word when below); '' = no word in a name that way
NUMERIC_WORDS: dict[str, tuple[str, str]] = {
    **{f"limit_share_{p}": (PRODUCT_WORDS[p], "") for p in PRODUCTS},
    "limit_weighted_term_months": ("long-tenor", "short-tenor"),
    "secured_limit_share": ("secured", "unsecured"),
    "guaranteed_limit_share": ("guaranteed", ""),
    "online_share_12m": ("online-served", ""),
    "branch_share_12m": ("branch-served", ""),
    "relationship_manager_share_12m": ("RM-covered", ""),
    "avg_utilisation_12m": ("heavily drawn", "lightly drawn"),
    "firm_age_months": ("long-established", "young"),
    "annual_revenue": ("larger", "smaller"),
    "bureau_score": ("higher-scored", "lower-scored"),
    "rating_grade_order": ("lower-rated", "better-rated"),
    "months_in_arrears_12m": ("arrears-prone", ""),
    "no_bureau_report": ("thin-file", ""),
    "products_held": ("multi-product", "single-product"),
}
# grades other than D: the rating is read as a range (rating_grade_order); the rest of a category is no contrast
SKIP = {("rating_grade", g) for g in GRADES[:-1]} | {("rating_grade", "unrated"), ("credit_band", "default")}
FAMILY_OF_PROFILE_ONLY = {
    "rating_grade": "credit",
    "credit_band": "credit",
    "size_class": "size",
    "value_tier": "value",
}
FAMILY_PRIORITY = ("credit", "industry", "size", "stage")
COLUMNS = ["segment", "family", "feature", "category", "score", "role", "word", "text"]


def family(feature: str) -> str:
    """One contrast per family in a name or description: the feature's dimension; each product its own."""
    if feature.startswith("limit_share_"):
        return feature
    return FAMILY_OF_PROFILE_ONLY.get(feature) or DIMENSION_OF.get(feature, feature)


def contrast_table(profile: pd.DataFrame) -> pd.DataFrame:
    """Every contrast (COLUMNS) of every segment of ``profile``, per segment largest first (ties: FAMILY_PRIORITY,
    then the larger gap in the attribute's own unit)."""
    prof = profile[profile.feature != "clients"]
    segments = sorted(profile.segment.unique())
    rows: list[dict] = []
    if len(segments) < 2 or not len(prof):
        return pd.DataFrame(columns=COLUMNS)
    grades = {
        int(sid): dict(zip(r.category, r.segment_value, strict=False))
        for sid, r in prof[prof.feature == "rating_grade"].groupby("segment")
    }
    for (feature, category), g in prof.groupby(["feature", "category"], sort=False):
        g = g.set_index("segment").reindex(segments)
        numeric = category == ""
        value = g.segment_value.fillna(0.0 if not numeric else np.nan).to_numpy(dtype=float)
        level = g.difference.to_numpy(dtype=float) if numeric else value
        if numeric:
            sd = 1.0
        else:
            p = float(
                np.clip(g.population_value.dropna().iloc[0] if g.population_value.notna().any() else 0.0, 0.01, 0.99)
            )
            sd = math.sqrt(p * (1 - p))
        for i, sid in enumerate(segments):
            score = (level[i] - _mean_of_others(level, i)) / sd
            if not np.isfinite(score) or (not numeric and score <= 0) or score == 0 or (feature, category) in SKIP:
                continue
            role, word, _ = _word(feature, category, score)
            rows.append(
                {
                    "segment": int(sid),
                    "family": family(feature),
                    "feature": feature,
                    "category": category,
                    "score": float(score),
                    "role": role,
                    "word": word,
                    "gap": abs(value[i] - _mean_of_others(value, i)),
                    "text": _text(
                        feature,
                        category,
                        value[i],
                        np.delete(value, i),
                        score,
                        [grades.get(int(s), {}) for s in segments],
                        i,
                    ),
                }
            )
    out = pd.DataFrame(rows, columns=[*COLUMNS, "gap"])
    # ties (to 0.01 SD) go to the family a banker reads first, then to the larger gap in the attribute's own unit
    out["magnitude"] = out.score.abs().round(2)
    out["priority"] = out.family.map(
        lambda f: FAMILY_PRIORITY.index(f) if f in FAMILY_PRIORITY else len(FAMILY_PRIORITY)
    )
    out = out.sort_values(
        ["segment", "magnitude", "priority", "gap"], ascending=[True, False, True, False], kind="stable"
    )
    return out[COLUMNS].reset_index(drop=True)


def _mean_of_others(v: np.ndarray, i: int) -> float:
    """The unweighted mean of every entry of ``v`` but the ``i``-th (NaN ignored; NaN when none is known)."""
    others = np.delete(v, i)
    known = others[np.isfinite(others)]
    return float(known.mean()) if len(known) else math.nan


def top_contrasts(table: pd.DataFrame, segment: int, k: int | None = None, named: bool = False) -> pd.DataFrame:
    """The segment's largest contrasts, one per family (``named``: only those with a word for a name)."""
    t = table[table.segment == segment]
    if named:
        t = t[t.word != ""]
    t = t.drop_duplicates("family")
    return t if k is None else t.head(k)


def describe(table: pd.DataFrame, segment: int, k: int = 3) -> str:
    """The three largest contrasts of ``segment`` in an RM's words, '; '-separated."""
    texts = top_contrasts(table, segment, k).text.tolist()
    return "; ".join(texts) + "." if texts else "No attribute sets this segment apart from the others."


def _word(feature: str, category: str, score: float) -> tuple[str, str, str]:
    if category:
        return CATEGORY_WORDS.get((feature, category), ("", "", ""))
    up, down = NUMERIC_WORDS.get(feature, ("", ""))
    word = up if score > 0 else down
    return ("focus" if feature.startswith("limit_share_") else "adj") if word else "", word, ""


def pct(v: float) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.0f} %"


def money(v: float) -> str:
    if v is None or not np.isfinite(v):
        return "n/a"
    for unit, div in (("bn", 1e9), ("m", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:.0f}"


def grade_range(shares: dict[str, float], cover: float = 0.5) -> str:
    """The shortest run of consecutive rating grades holding at least ``cover`` of the rated clients, e.g. 'R2-R3'."""
    w = np.array([max(shares.get(g, 0.0), 0.0) for g in GRADES])
    if w.sum() <= 0:
        return "unrated"
    w = w / w.sum()
    best = (len(GRADES), 0, len(GRADES) - 1)
    for a in range(len(GRADES)):
        for b in range(a, len(GRADES)):
            if w[a : b + 1].sum() >= cover - 1e-9 and (b - a, a) < best[:2]:
                best = (b - a, a, b)
                break
    _, a, b = best
    return GRADES[a] if a == b else f"{GRADES[a]}-{GRADES[b]}"


def _level(feature: str, v: float) -> str:
    unit = FEATURE_BY_COLUMN[feature].unit if feature in FEATURE_BY_COLUMN else ""
    if unit == "cny":
        return f"CNY {money(v)}"
    if unit == "months":
        return "n/a" if not np.isfinite(v) else f"{v:.0f} months"
    if unit in ("size", "tier"):
        order = SIZE_ORDER if unit == "size" else VALUE_ORDER
        names = {int(o): k for k, o in order.items()}
        return "n/a" if not np.isfinite(v) else names.get(int(round(v)), "n/a")
    if unit == "ratio":
        return "n/a" if not np.isfinite(v) else f"{v:.2f}"
    return "n/a" if not np.isfinite(v) else f"{v:,.0f}"


def _text(
    feature: str, category: str, mine: float, others: np.ndarray, score: float, grades: list[dict[str, float]], i: int
) -> str:
    label = FEATURE_BY_COLUMN[feature].label if feature in FEATURE_BY_COLUMN else feature.replace("_", " ")
    if category:
        generic = (
            f"{category}-stage firms"
            if feature == "firm_stage"
            else f"{category}-risk industries"
            if feature == "industry_risk_class"
            else f"{label} {category}"
        )
        phrase = CATEGORY_WORDS.get((feature, category), ("", "", generic))[2]
        other = float(np.nanmean(others)) if len(others) else math.nan
        return (
            f"mostly {phrase} ({pct(mine)})" if mine >= 0.5 else f"{phrase} {pct(mine)} (other segments {pct(other)})"
        )
    known = others[np.isfinite(others)]
    unit = FEATURE_BY_COLUMN[feature].unit if feature in FEATURE_BY_COLUMN else ""
    if unit == "share":
        other = float(known.mean()) if len(known) else math.nan
        pts = 100 * (mine - other)
        side = "above" if score > 0 else "below"
        return f"{label} {abs(pts):.0f} pts {side} other segments ({pct(mine)})"
    if feature == "rating_grade_order":
        rest = [gr for j, gr in enumerate(grades) if j != i]
        mean = {gr: float(np.mean([o.get(gr, 0.0) for o in rest])) for gr in GRADES}
        return f"rating {grade_range(grades[i])} (other segments {grade_range(mean)})"
    other = float(np.median(known)) if len(known) else math.nan
    return f"{label} {_level(feature, mine)} (other segments {_level(feature, other)})"
