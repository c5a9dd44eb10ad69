"""client_features-like rows of well separated groups, for the model's unit tests (no pipeline run)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation.features import PRODUCTS

GROUPS = {  # name: (revenue, section, risk, grade, band, size, stage, products {share}, term, score, online share)
    "manufacturers": (
        5e9,
        "C",
        "standard",
        "R1",
        "prime",
        "large",
        "established",
        {"term_loan": 0.6, "project_finance": 0.4},
        96,
        810,
        0.1,
    ),
    "tech": (
        2e7,
        "I",
        "standard",
        "R4",
        "near_prime",
        "small",
        "growth",
        {"ip_pledge_loan": 0.7, "revolving_credit": 0.3},
        24,
        700,
        0.6,
    ),
    "traders": (1e6, "F", "standard", "R6", "subprime", "micro", "startup", {"trade_finance": 1.0}, 6, 620, 0.9),
    "builders": (
        1e8,
        "E",
        "high",
        "D",
        "default",
        "medium",
        "established",
        {"project_finance": 0.8, "term_loan": 0.2},
        150,
        560,
        0.05,
    ),
}


def key(client_id: str, secret: str) -> str:
    return hashlib.sha256(f"{secret}:{client_id}".encode()).hexdigest()


def synthetic(
    n: int = 600, seed: int = 0, secret: str = "key-a", small_group: float = 0.0, defaulted: float = 0.0
) -> pd.DataFrame:
    """Rows of four groups (column ``truth``; ``small_group`` of them from a fifth, distinct group ``truth`` 4),
    ``client_id`` and a ``client_key`` pseudonymised with ``secret``. ``defaulted``: that share of the clients, of
    any group, is in default (rating grade D, default band, 6-11 months in arrears, 180+ days past due, bureau score
    150 lower), drawn from a stream of its own (the other columns stay as without it)."""
    rng = np.random.default_rng(seed)
    names = list(GROUPS)
    g = rng.integers(0, len(names), n)
    small = rng.random(n) < small_group
    rows = {
        c: []
        for c in ("annual_revenue", "section", "risk", "grade", "band", "size", "stage", "term", "score", "online")
    }
    shares = np.zeros((n, len(PRODUCTS)))
    for i, gi in enumerate(g):
        rev, sec, risk, grade, band, size, stage, prods, term, score, online = GROUPS[names[gi]]
        for col, v in zip(rows, (rev, sec, risk, grade, band, size, stage, term, score, online), strict=False):
            rows[col].append(v)
        for p, s in prods.items():
            shares[i, PRODUCTS.index(p)] = s
    f = pd.DataFrame({"client_id": [f"C{i:06d}" for i in range(n)]})
    rev = np.array(rows["annual_revenue"]) * rng.lognormal(0, 0.25, n)
    f["annual_revenue"] = np.where(small, 3e11, rev)
    f["employee_count"] = np.round(f.annual_revenue / 1e6 * rng.lognormal(0, 0.2, n)).astype("int64")
    f["total_assets"] = f.annual_revenue * rng.lognormal(0.2, 0.2, n)
    f["total_credit_limit"] = f.annual_revenue * 0.2 * rng.lognormal(0, 0.2, n)
    f["bureau_score"] = np.where(small, 890, np.array(rows["score"]) + rng.normal(0, 12, n)).round()
    f["rating_grade"] = np.where(small, "R1", rows["grade"])
    f["credit_band"] = np.where(small, "prime", rows["band"])
    f["months_in_arrears_12m"] = np.where(np.array(rows["grade"]) == "D", rng.integers(3, 12, n), 0)
    f["bureau_max_days_past_due_12m"] = f.months_in_arrears_12m * 20
    f["debt_to_assets"] = np.where(np.array(rows["risk"]) == "high", 0.85, 0.45) + rng.normal(0, 0.04, n)
    f["collateral_coverage"] = rng.lognormal(0, 0.2, n)
    f["inquiries_6m"] = rng.poisson(2, n)
    f["legal_judgments"] = np.where(np.array(rows["risk"]) == "high", rng.poisson(2, n), 0)
    f["has_bureau_report"] = rng.random(n) > 0.05
    f.loc[~f.has_bureau_report, ["bureau_score", "debt_to_assets"]] = np.nan
    f.loc[~f.has_bureau_report, "rating_grade"] = "unrated"
    f["industry_section"] = np.where(small, "D", rows["section"])
    f["industry_risk_class"] = np.where(small, "high", rows["risk"])
    f["size_class"] = np.where(small, "large", rows["size"])
    f["region_tier"] = rng.choice(["tier_1", "tier_2", "tier_3"], n)
    f["firm_age_months"] = np.where(np.array(rows["stage"]) == "startup", 18, 180) * rng.lognormal(0, 0.2, n)
    f["tenure_months"] = f.firm_age_months * 0.5
    f["firm_stage"] = rows["stage"]
    f["lifecycle_stage"] = rng.choice(["growing", "mature"], n)
    f["value_tier"] = np.where(f.annual_revenue > 1e8, "gold", "bronze")
    for j, p in enumerate(PRODUCTS):
        f[f"limit_share_{p}"] = np.where(small, 1.0 if p == "project_finance" else 0.0, shares[:, j])
    f["products_held"] = (shares > 0).sum(axis=1)
    f["avg_utilisation_12m"] = rng.beta(4, 4, n)
    f["drawdown_to_limit_12m"] = rng.lognormal(-1, 0.3, n)
    f["repayment_to_drawdown_12m"] = rng.lognormal(0, 0.2, n)
    f["limit_weighted_term_months"] = np.where(small, 240, np.array(rows["term"], dtype=float))
    f["secured_limit_share"] = np.where(np.array(rows["risk"]) == "high", 1.0, 0.5)
    f["guaranteed_limit_share"] = 0.0
    f["online_share_12m"] = np.clip(np.array(rows["online"]) + rng.normal(0, 0.05, n), 0, 1)
    f["branch_share_12m"] = (1 - f.online_share_12m) / 2
    f["relationship_manager_share_12m"] = (1 - f.online_share_12m) / 2
    f["interactions_12m"] = rng.poisson(10, n)
    f["has_usage"] = True
    f["as_of_date"] = pd.Timestamp("2026-10-31")
    if defaulted:
        d = np.random.default_rng([seed, 34]).random(n) < defaulted
        f.loc[d, "rating_grade"], f.loc[d, "credit_band"] = "D", "default"
        f.loc[d, "months_in_arrears_12m"] = np.random.default_rng([seed, 35]).integers(6, 12, int(d.sum()))
        f.loc[d, "bureau_max_days_past_due_12m"] = 180 + 30 * f.loc[d, "months_in_arrears_12m"]
        f.loc[d, "bureau_score"] -= 150
    f["truth"] = np.where(small, len(names), g)
    f.insert(0, "client_key", [key(c, secret) for c in f.client_id])
    return f
