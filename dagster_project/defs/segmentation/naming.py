"""Segment profiles against the population and the readable names generated from them (pure functions)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation.model import industry_family

PROFILE_NUMERIC: tuple[str, ...] = (
    "annual_revenue", "employee_count", "total_assets", "total_credit_limit", "firm_age_months", "bureau_score",
    "debt_to_assets", "collateral_coverage", "months_in_arrears_12m", "bureau_score_change_12m",
    "avg_utilisation_12m", "online_share_12m", "branch_share_12m", "relationship_manager_share_12m")
PROFILE_SHARES: dict[str, tuple[str, str]] = {  # profile row -> (column, value) share of clients
    "share_technology": ("industry_family", "technology"), "share_manufacturing": ("industry_family", "manufacturing"),
    "share_high_risk_industry": ("industry_family", "high_risk"), "share_services": ("industry_family", "services"),
    "share_rating_D": ("rating_grade", "D"), "share_prime": ("credit_band", "prime"),
    "share_near_prime": ("credit_band", "near_prime"), "share_subprime": ("credit_band", "subprime"),
    "share_unrated": ("credit_band", "unrated"), "share_startup_stage": ("firm_stage", "startup"),
    "share_size_large": ("size_class", "large"), "share_size_medium": ("size_class", "medium"),
    "share_size_small": ("size_class", "small"), "share_size_micro": ("size_class", "micro"),
    "share_section_E": ("industry_section", "E"), "share_section_B": ("industry_section", "B"),
    "share_section_D": ("industry_section", "D"), "share_no_bureau": ("has_bureau_report", "False"),
}
PROFILE_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(
    (*PROFILE_NUMERIC, "industry_section", "technology_firm", "industry_risk_class", "rating_grade", "credit_band",
     "firm_stage", "size_class", "has_bureau_report")))


def profile_segments(raw: pd.DataFrame, segment: np.ndarray) -> pd.DataFrame:
    """Long profile: one row per (segment, feature) with segment value, population value and difference.

    Numeric features use medians (``stat`` = median) with a standardised difference (median gap over the
    population IQR); share features the share of clients (``stat`` = share) with the gap in points.
    """
    df = raw.copy()
    df["industry_family"] = industry_family(df["industry_section"], df["technology_firm"], df["industry_risk_class"])
    df["has_bureau_report"] = df["has_bureau_report"].astype(bool).astype(str)
    df["_seg"] = segment
    rows = []
    for c in PROFILE_NUMERIC:
        v = pd.to_numeric(df[c], errors="coerce").astype(float)
        pop = float(v.median()) if v.notna().any() else math.nan
        q1, q3 = (v.quantile(0.25), v.quantile(0.75)) if v.notna().any() else (math.nan, math.nan)
        iqr = float(q3 - q1) if q3 - q1 > 0 else (abs(pop) or 1.0)
        for s, g in v.groupby(df["_seg"]):
            val = float(g.median()) if g.notna().any() else math.nan
            rows.append((int(s), c, "median", val, pop, (val - pop) / iqr if not math.isnan(val) else math.nan))
    for name, (c, value) in PROFILE_SHARES.items():
        hit = df[c].astype(str) == value
        pop = float(hit.mean())
        for s, g in hit.groupby(df["_seg"]):
            rows.append((int(s), name, "share", float(g.mean()), pop, float(g.mean()) - pop))
    sizes = df.groupby("_seg").size()
    for s, n in sizes.items():
        rows.append((int(s), "clients", "count", float(n), float(len(df)), float(n) / len(df)))
    return pd.DataFrame(rows, columns=["segment", "feature", "stat", "segment_value", "population_value", "difference"])


def _p(profile: pd.DataFrame, feature: str) -> tuple[float, float]:
    row = profile.loc[profile.feature == feature]
    return (float(row.segment_value.iloc[0]), float(row.population_value.iloc[0])) if len(row) else (math.nan, math.nan)


def name_segment(profile: pd.DataFrame) -> tuple[str, str]:
    """Readable name and description of one segment from its profile rows (see docs/segmentation.md).

    name = [credit word] [size word] [noun]:
    * credit: ``stressed`` when >= 40 % are graded D; else the credit band held by >= 50 % (``prime``,
      ``near-prime``, ``high-risk`` for subprime, ``unrated``); else nothing.
    * size: the size class held by >= 50 % (``large``, ``mid-sized``, ``small``, ``micro``); else by median
      revenue against the population (>= 4x ``large``, <= 1/4 ``small``).
    * noun: the industry family held by >= 50 % (``manufacturers``, ``tech firms``, ``service firms``,
      high-risk industries as ``contractors`` / ``miners`` / ``utilities`` when one section dominates, else
      ``high-risk-industry firms``), else ``mixed-industry firms``; ``start-ups`` replaces ``firms`` when
      >= 50 % are in the startup stage.
    """
    share = lambda f: _p(profile, f)[0]  # noqa: E731
    if share("share_rating_D") >= 0.4:
        credit = "stressed"
    else:
        credit = next((w for f, w in (("share_prime", "prime"), ("share_near_prime", "near-prime"),
                                      ("share_subprime", "high-risk"), ("share_unrated", "unrated"))
                       if share(f) >= 0.5), "")
    size = next((w for f, w in (("share_size_large", "large"), ("share_size_medium", "mid-sized"),
                                ("share_size_small", "small"), ("share_size_micro", "micro")) if share(f) >= 0.5), "")
    rev, rev_pop = _p(profile, "annual_revenue")
    if not size and rev_pop and not math.isnan(rev):
        size = "large" if rev >= 4 * rev_pop else "small" if rev <= rev_pop / 4 else ""
    startup = share("share_startup_stage") >= 0.5
    families = {"technology": share("share_technology"), "manufacturing": share("share_manufacturing"),
                "high_risk": share("share_high_risk_industry"), "services": share("share_services")}
    fam, fam_share = max(families.items(), key=lambda kv: kv[1])
    if fam_share < 0.5:
        noun = "mixed-industry start-ups" if startup else "mixed-industry firms"
    elif fam == "high_risk":
        sections = {"contractors": share("share_section_E"), "miners": share("share_section_B"),
                    "utilities": share("share_section_D")}
        best, s = max(sections.items(), key=lambda kv: kv[1])
        noun = best if s >= 0.6 * fam_share else "high-risk-industry firms"
    else:
        noun = {"technology": "tech", "manufacturing": "manufacturing", "services": "service"}[fam]
        noun = f"{noun} start-ups" if startup else {"tech": "tech firms", "manufacturing": "manufacturers",
                                                    "service": "service firms"}[noun]
    name = " ".join(w for w in (credit, size, noun) if w)
    n, total = _p(profile, "clients")
    age, _ = _p(profile, "firm_age_months")
    score, score_pop = _p(profile, "bureau_score")
    arrears, _ = _p(profile, "months_in_arrears_12m")
    desc = (f"{int(n):,} clients ({n / total:.0%} of the scored population). Median revenue CNY {_money(rev)} "
            f"(population {_money(rev_pop)}), median firm age {age / 12:.0f} years, median bureau score "
            f"{score:.0f} (population {score_pop:.0f}); {fam_share:.0%} {fam.replace('_', '-')} industries, "
            f"{share('share_rating_D'):.0%} graded D, median {arrears:.0f} months in arrears of the last 12.")
    return name, desc


def _money(v: float) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    for unit, div in (("bn", 1e9), ("m", 1e6), ("k", 1e3)):
        if abs(v) >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:.0f}"


def unique_names(names: dict[int, str], taken: set[str] | None = None) -> dict[int, str]:
    """Make names unique (against each other and ``taken``) by appending the segment id: 'x (segment 7)'."""
    seen = set(taken or ())
    out = {}
    for sid in sorted(names):
        n = names[sid]
        if n in seen:
            n = f"{n} (segment {sid})"
        seen.add(n)
        out[sid] = n
    return out
