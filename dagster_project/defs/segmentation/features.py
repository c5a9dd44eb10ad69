"""What the segmentation reads: the business dimensions of a client, their features and weights (pure functions).

Every feature is a column of ``marts.client_features`` (built in dbt, documented there), grouped into the
dimensions the segmentation is defined by (docs/segmentation.md, "Dimensions and weights"): credit, industry,
enterprise size, region tier, firm and relationship stage, client value, product usage as a mix, facility terms
and service channel. :class:`DimensionScaler` turns them into the model's space:

* a numeric feature becomes its **normal score** (rank in the training data mapped through the normal quantile
  function, missing values at the median): unit-free, so CNY amounts, months and shares weigh alike, and a long tail
  (a conglomerate's revenue, twelve months in arrears) cannot pull a segment apart on its own;
* a categorical feature becomes one-hot columns of its categories (those of >= 1 % of the clients; the rest together);
* each dimension is scaled so that its columns' total variance equals its **weight**: a dimension with many
  features counts no more than one with few, and the weights say how much each dimension counts;
* every column is centred, so the average client sits at the origin (what a client's reasons are measured from).

Each feature has a label and unit in a banker's words: profiles, charts and each client's reasons use them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri
from sklearn.base import BaseEstimator, TransformerMixin

PRODUCTS: tuple[str, ...] = (
    "term_loan",
    "revolving_credit",
    "project_finance",
    "trade_finance",
    "ip_pledge_loan",
    "equipment_leasing",
    "supply_chain_finance",
    "startup_credit_loan",
)
PRODUCT_WORDS = {
    "term_loan": "term loans",
    "revolving_credit": "revolving credit",
    "project_finance": "project finance",
    "trade_finance": "trade finance",
    "ip_pledge_loan": "IP-pledge loans",
    "equipment_leasing": "equipment leasing",
    "supply_chain_finance": "supply-chain finance",
    "startup_credit_loan": "start-up loans",
}
GRADE_ORDER = {**{f"R{i}": float(i) for i in range(1, 9)}, "D": 9.0}
SIZE_ORDER = {"micro": 1.0, "small": 2.0, "medium": 3.0, "large": 4.0}
VALUE_ORDER = {"bronze": 1.0, "silver": 2.0, "gold": 3.0, "platinum": 4.0}
QUANTILES = 401  # the reference grid a numeric feature's normal score is read from
MIN_CATEGORY_SHARE = 0.01


@dataclass(frozen=True)
class Feature:
    column: str  # column of the prepared frame (prepare): a client_features column or one derived there
    label: str  # in a banker's words, for profiles, charts and reasons
    unit: str  # share | cny | months | count | score | grade | employees | ratio | days | size | tier | category
    categorical: bool = False


@dataclass(frozen=True)
class Dimension:
    name: str
    label: str
    weight: float
    features: tuple[Feature, ...]


def _f(column: str, label: str, unit: str) -> Feature:
    return Feature(column, label, unit, categorical=unit == "category")


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        "credit",
        "credit standing",
        1.0,
        (
            _f("bureau_score", "bureau score", "score"),
            _f("rating_grade_order", "rating grade", "grade"),
            _f("months_in_arrears_12m", "months in arrears (12 m)", "count"),
            _f("bureau_max_days_past_due_12m", "worst days past due (bureau, 12 m)", "days"),
            _f("debt_to_assets", "debt to assets", "ratio"),
            _f("collateral_coverage", "collateral cover", "ratio"),
            _f("inquiries_6m", "credit inquiries (6 m)", "count"),
            _f("legal_judgments", "legal judgments", "count"),
            _f("no_bureau_report", "no bureau report", "share"),
        ),
    ),
    Dimension(
        "industry",
        "industry",
        1.0,
        (
            _f("industry_section", "industry section", "category"),
            _f("industry_risk_class", "industry risk class", "category"),
        ),
    ),
    Dimension(
        "size",
        "enterprise size",
        2.0,
        (
            _f("size_class_order", "size class (2011 SME standard)", "size"),
            _f("annual_revenue", "annual revenue", "cny"),
            _f("employee_count", "employees", "employees"),
            _f("total_assets", "total assets", "cny"),
        ),
    ),
    Dimension("region", "region tier", 0.25, (_f("region_tier", "region tier", "category"),)),
    Dimension(
        "stage",
        "firm and relationship stage",
        0.5,
        (
            _f("firm_age_months", "firm age", "months"),
            _f("tenure_months", "time as a client", "months"),
            _f("firm_stage", "firm stage", "category"),
            _f("lifecycle_stage", "relationship stage", "category"),
        ),
    ),
    Dimension(
        "value",
        "client value",
        0.25,
        (_f("value_tier_order", "value tier", "tier"), _f("total_credit_limit", "credit limit", "cny")),
    ),
    Dimension(
        "products",
        "product usage",
        2.0,
        (
            *(_f(f"limit_share_{p}", f"{PRODUCT_WORDS[p]} share of limit", "share") for p in PRODUCTS),
            _f("products_held", "products held", "count"),
            _f("avg_utilisation_12m", "utilisation (12 m)", "share"),
            _f("drawdown_to_limit_12m", "drawdowns to limit (12 m)", "ratio"),
            _f("repayment_to_drawdown_12m", "repayments to drawdowns (12 m)", "ratio"),
        ),
    ),
    Dimension(
        "terms",
        "facility terms",
        2.0,
        (
            _f("limit_weighted_term_months", "original term (limit-weighted)", "months"),
            _f("secured_limit_share", "secured share of limit", "share"),
            _f("guaranteed_limit_share", "guaranteed share of limit", "share"),
        ),
    ),
    Dimension(
        "channel",
        "service channel",
        1.0,
        (
            _f("online_share_12m", "online share of service", "share"),
            _f("branch_share_12m", "branch share of service", "share"),
            _f("relationship_manager_share_12m", "relationship-manager share of service", "share"),
            _f("interactions_12m", "CRM interactions (12 m)", "count"),
        ),
    ),
)
FEATURES: tuple[Feature, ...] = tuple(f for d in DIMENSIONS for f in d.features)
FEATURE_BY_COLUMN: dict[str, Feature] = {f.column: f for f in FEATURES}
DIMENSION_OF: dict[str, str] = {f.column: d.name for d in DIMENSIONS for f in d.features}
DERIVED: dict[str, str] = {
    "rating_grade_order": "rating_grade",
    "size_class_order": "size_class",
    "value_tier_order": "value_tier",
    "no_bureau_report": "has_bureau_report",
}
# marts.client_features columns the model reads (besides client_key)
SOURCE_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(DERIVED.get(f.column, f.column) for f in FEATURES))


def prepare(features: pd.DataFrame) -> pd.DataFrame:
    """The model's input frame from rows of client_features: every feature column, derived ones added.

    Ordered codes for rating grade (R1 = 1 .. D = 9; unrated missing), size class and value tier; ``no_bureau_report``
    (1 without a bureau report); a client with no facility book holds 0 % of each product.
    """
    out = pd.DataFrame(index=features.index)
    has_book = features[[f"limit_share_{p}" for p in PRODUCTS]].notna().any(axis=1)
    for f in FEATURES:
        if f.column in features.columns:
            out[f.column] = features[f.column]
    out["rating_grade_order"] = features["rating_grade"].map(GRADE_ORDER).astype(float)
    out["size_class_order"] = features["size_class"].map(SIZE_ORDER).astype(float)
    out["value_tier_order"] = features["value_tier"].map(VALUE_ORDER).astype(float)
    out["no_bureau_report"] = (~features["has_bureau_report"].fillna(False).astype(bool)).astype(float)
    for p in PRODUCTS:
        out[f"limit_share_{p}"] = pd.to_numeric(features[f"limit_share_{p}"], errors="coerce").where(has_book, 0.0)
    for f in FEATURES:
        out[f.column] = (
            out[f.column].fillna("unknown").astype(str)
            if f.categorical
            else pd.to_numeric(out[f.column], errors="coerce").astype(float)
        )
    return out[[f.column for f in FEATURES]]


def normal_scores(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Normal score of each value against a sorted reference grid: mid-rank of ties, inside (0, 1), then ndtri."""
    lo = np.searchsorted(grid, values, side="left")
    hi = np.searchsorted(grid, values, side="right")
    q = (lo + hi) / (2.0 * len(grid))
    return ndtri(np.clip(q, 0.5 / len(grid), 1 - 0.5 / len(grid)))


class DimensionScaler(TransformerMixin, BaseEstimator):
    """Prepared frame -> the model's space (normal scores, one-hot, each dimension at its weight; module doc)."""

    def __init__(self, weights: dict[str, float] | None = None):
        self.weights = weights

    def fit(self, x: pd.DataFrame, y=None) -> DimensionScaler:
        weights = {d.name: d.weight for d in DIMENSIONS} | (self.weights or {})
        self.medians_, self.grids_, self.means_, self.sds_, self.categories_ = {}, {}, {}, {}, {}
        for f in FEATURES:
            if f.categorical:
                share = x[f.column].value_counts(normalize=True)
                self.categories_[f.column] = sorted(share.index[share >= MIN_CATEGORY_SHARE].astype(str))
                continue
            v = x[f.column].to_numpy(dtype=float)
            known = v[~np.isnan(v)]
            self.medians_[f.column] = float(np.median(known)) if len(known) else 0.0
            v = np.where(np.isnan(v), self.medians_[f.column], v)
            self.grids_[f.column] = np.quantile(v, np.linspace(0, 1, QUANTILES))
            s = normal_scores(v, self.grids_[f.column])
            self.means_[f.column], self.sds_[f.column] = float(s.mean()), float(s.std())
        raw = self._columns(x)
        self.columns_ = list(raw)
        self.centre_ = {c: float(v.mean()) for c, v in raw.items()}  # all clients sit at the origin on average
        var = pd.DataFrame(raw).var(ddof=0)
        self.dimension_scale_ = {}
        for d in DIMENSIONS:
            total = float(sum(var[c] for c in self.columns_ if c[0] == d.name))
            self.dimension_scale_[d.name] = math.sqrt(weights[d.name] / total) if total > 1e-12 else 0.0
        return self

    def _columns(self, x: pd.DataFrame) -> dict[tuple[str, str, str], np.ndarray]:
        """(dimension, feature, category or '') -> unweighted column: standardised normal scores or 0/1."""
        out: dict[tuple[str, str, str], np.ndarray] = {}
        for f in FEATURES:
            dim = DIMENSION_OF[f.column]
            if f.categorical:
                v = x[f.column].astype(str).to_numpy()
                known = self.categories_[f.column]
                for c in known:
                    out[(dim, f.column, c)] = (v == c).astype(float)
                other = ~np.isin(v, known)
                if other.any() or not known:
                    out[(dim, f.column, "<other>")] = other.astype(float)
                continue
            v = x[f.column].to_numpy(dtype=float)
            v = np.where(np.isnan(v), self.medians_[f.column], v)
            sd = self.sds_[f.column]
            out[(dim, f.column, "")] = (
                (normal_scores(v, self.grids_[f.column]) - self.means_[f.column]) / sd
                if sd > 1e-9
                else np.zeros(len(v))
            )
        return out

    def transform(self, x: pd.DataFrame) -> np.ndarray:
        raw = self._columns(x)
        n = len(x)
        return np.column_stack(
            [
                (raw[c] - self.centre_[c] if c in raw else np.full(n, -self.centre_[c])) * self.dimension_scale_[c[0]]
                for c in self.columns_
            ]
        )

    def feature_index(self) -> dict[str, list[int]]:
        """Feature column -> its columns in the model's space (a categorical feature has one per category)."""
        out: dict[str, list[int]] = {}
        for i, c in enumerate(self.columns_):
            out.setdefault(c[1], []).append(i)
        return out
