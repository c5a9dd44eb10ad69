"""The client segmentation model as pure, typed functions (no Dagster, no database).

``training.py`` and ``scoring.py`` use them, ``naming.py`` explains the segments; ``docs/segmentation.md`` documents every choice made here.

* :func:`prepare` turns rows of ``marts.client_features`` into the model's input frame (derived
  ``industry_family``, one bureau-missing indicator, clipped ratios, log1p counts).
* :func:`build_pipeline` is the scikit-learn ``Pipeline``: a ``ColumnTransformer`` (log1p + RobustScaler
  for skewed amounts, StandardScaler for the rest, median imputation of missing bureau values plus an
  explicit indicator, one-hot industry family, fixed group weights) and ``KMeans``.
* :func:`select_k` scores k in ``K_RANGE`` by silhouette (and reports Davies-Bouldin) on a seeded sample.
* :func:`confidence` is the relative margin between nearest and second-nearest centroid.
* :func:`match_segments` keeps segment ids stable across retrains (Hungarian matching on overlap).
* :func:`clusterboot` measures stability (Hennig's clusterboot on subsamples: Jaccard per segment, ARI).
* :func:`psi` is the population stability index.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, RobustScaler, StandardScaler

SEED = 20240601
K_RANGE: tuple[int, int] = (4, 10)          # k is chosen in this range (inclusive): see select_k
SELECTION_SAMPLE = 3000                     # seeded sample size for the k curve and the silhouette check
MIN_SEGMENT_SHARE = 0.02                    # blocking: every segment holds >= 2 % of the clients
SILHOUETTE_FLOOR = 0.20                     # blocking: silhouette of the chosen k on the sample
JACCARD_FLOOR = 0.60                        # blocking: clusterboot mean Jaccard of every segment
BOOTSTRAP_FRACTION = 0.80                   # clusterboot subsample share (without replacement)
MATCH_MIN_JACCARD = 0.30                    # a retrained cluster keeps a champion id only above this overlap
PSI_MODERATE, PSI_SIGNIFICANT = 0.10, 0.25  # PSI conventions: < 0.10 stable, 0.10-0.25 moderate, > 0.25 significant


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    columns: tuple[str, ...]
    transform: str  # "log_robust" | "log_standard" | "standard"
    weight: float
    bureau: bool = False  # missing when the client has no bureau report (median-imputed; see bureau_missing)


FEATURE_GROUPS: tuple[FeatureGroup, ...] = (
    FeatureGroup("size", ("annual_revenue", "employee_count", "total_assets", "total_credit_limit"), "log_robust", 1.0),
    FeatureGroup("age", ("firm_age_months",), "log_standard", 2.0),
    FeatureGroup("credit", ("bureau_score", "debt_to_assets", "collateral_coverage", "inquiries_6m", "legal_judgments"),
                 "standard", 1.0, bureau=True),
    FeatureGroup("stress", ("bureau_max_days_past_due_12m", "months_in_arrears_12m", "bureau_score_change_12m",
                            "negative_cash_flow_share"), "standard", 1.0, bureau=True),
    FeatureGroup("usage", ("avg_utilisation_12m",), "standard", 0.5),
    FeatureGroup("channel", ("online_share_12m", "branch_share_12m", "relationship_manager_share_12m"), "standard", 0.3),
)
CATEGORICAL: tuple[str, ...] = ("industry_family",)
CATEGORICAL_WEIGHT = 2.0
INDICATOR = "bureau_missing"
INDICATOR_WEIGHT = 0.5
NUMERIC: tuple[str, ...] = tuple(c for g in FEATURE_GROUPS for c in g.columns)
FEATURES: tuple[str, ...] = (*NUMERIC, *CATEGORICAL, INDICATOR)
# Columns of marts.client_features the model reads (besides client_key).
SOURCE_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(
    (*[c for c in NUMERIC], "has_bureau_report", "technology_firm", "industry_section", "industry_risk_class")))
LOG1P_BEFORE = ("bureau_max_days_past_due_12m", "inquiries_6m", "legal_judgments")  # counts with long tails
CLIPS = {"debt_to_assets": (0.0, 3.0), "collateral_coverage": (0.0, 5.0), "avg_utilisation_12m": (0.0, 1.5)}
SERVICE_SECTIONS = ("F", "G", "H", "K", "L")


def industry_family(section: pd.Series, technology: pd.Series, risk_class: pd.Series) -> pd.Series:
    """technology (technology_firm) > manufacturing (section C) > high_risk (risk class high) > services > other."""
    tech = technology.fillna(False).astype(bool).to_numpy()
    sec = section.fillna("").astype(str).to_numpy()
    risk = risk_class.fillna("").astype(str).to_numpy()
    return pd.Series(np.select(
        [tech, sec == "C", risk == "high", np.isin(sec, SERVICE_SECTIONS)],
        ["technology", "manufacturing", "high_risk", "services"], "other"), index=section.index)


def prepare(features: pd.DataFrame) -> pd.DataFrame:
    """Model input from client_features rows: numeric floats (clipped / log1p counts), family, indicator."""
    out = pd.DataFrame(index=features.index)
    for c in NUMERIC:
        v = pd.to_numeric(features[c], errors="coerce").astype(float)
        if c in CLIPS:
            v = v.clip(*CLIPS[c])
        if c in LOG1P_BEFORE:
            v = np.log1p(v.clip(lower=0))
        out[c] = v
    out["industry_family"] = industry_family(features["industry_section"], features["technology_firm"],
                                             features["industry_risk_class"])
    out[INDICATOR] = (~features["has_bureau_report"].fillna(False).astype(bool)).astype(float)
    return out


def _numeric_pipeline(transform: str) -> Pipeline:
    steps: list = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if transform.startswith("log"):
        steps.append(("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")))
    steps.append(("scale", RobustScaler() if transform == "log_robust" else StandardScaler()))
    return Pipeline(steps)


def build_pipeline(k: int, seed: int = SEED) -> Pipeline:
    """Preprocessing (ColumnTransformer) + KMeans(k) with fixed seeds and group weights."""
    transformers: list = [(g.name, _numeric_pipeline(g.transform), list(g.columns)) for g in FEATURE_GROUPS]
    transformers.append(("industry", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL)))
    transformers.append(("bureau_missing", "passthrough", [INDICATOR]))
    weights = {g.name: g.weight for g in FEATURE_GROUPS} | {"industry": CATEGORICAL_WEIGHT,
                                                            "bureau_missing": INDICATOR_WEIGHT}
    pre = ColumnTransformer(transformers, transformer_weights=weights, remainder="drop")
    return Pipeline([("preprocess", pre), ("cluster", KMeans(n_clusters=k, n_init=10, random_state=seed))])


def sample_index(n: int, size: int, seed: int = SEED) -> np.ndarray:
    """Sorted seeded sample of row positions (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def select_k(x: pd.DataFrame, k_range: tuple[int, int] = K_RANGE, seed: int = SEED,
             sample: int = SELECTION_SAMPLE, quick_refits: int = 5) -> tuple[int, pd.DataFrame]:
    """Choose k: the best silhouette among the k that would pass the blocking checks.

    Every k in ``k_range`` is fitted on ``x`` (prepared, sorted by client_key) and scored on a seeded
    sample (silhouette, Davies-Bouldin). A quick clusterboot (``quick_refits`` refits on the sample) and the
    smallest segment share tell which k are admissible (min Jaccard >= JACCARD_FLOOR, every segment >=
    MIN_SEGMENT_SHARE). The admissible k with the highest silhouette (ties to 3 decimals: smaller k) wins;
    when none is admissible, the best silhouette overall (the blocking checks will then say why).
    Returns (k, curve with k, silhouette, davies_bouldin, inertia, min_share, quick_min_jaccard, admissible).
    """
    idx = sample_index(len(x), sample, seed)
    rows = []
    for k in range(k_range[0], k_range[1] + 1):
        if k >= len(x):
            break
        pipe = build_pipeline(k, seed).fit(x)
        z = pipe[:-1].transform(x.iloc[idx])
        lab = pipe[-1].predict(z)
        ok = len(set(lab)) > 1
        min_share = float(pd.Series(pipe[-1].labels_).value_counts(normalize=True).min())
        quick = clusterboot(x.iloc[idx], pipe[-1].labels_[idx], k, refits=quick_refits, seed=seed)
        min_j = min(quick.jaccard.values())
        rows.append({"k": k, "silhouette": float(silhouette_score(z, lab)) if ok else -1.0,
                     "davies_bouldin": float(davies_bouldin_score(z, lab)) if ok else math.inf,
                     "inertia": float(pipe[-1].inertia_), "min_share": min_share, "quick_min_jaccard": min_j,
                     "admissible": bool(min_share >= MIN_SEGMENT_SHARE and min_j >= JACCARD_FLOOR)})
    curve = pd.DataFrame(rows)
    pool = curve[curve.admissible] if curve.admissible.any() else curve
    best = pool.assign(s=pool.silhouette.round(3)).sort_values(["s", "k"], ascending=[False, True]).iloc[0]
    return int(best.k), curve


def confidence(distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest centroid label, confidence) from a (n, k) distance matrix.

    confidence = 1 - d_nearest / d_second: 0 when the client sits exactly between two centroids, 1 on its
    centroid. Ties break to the lower label, like KMeans.predict.
    """
    order = np.argsort(distances, axis=1, kind="stable")
    label = order[:, 0]
    d1 = np.take_along_axis(distances, order[:, :1], axis=1)[:, 0]
    d2 = np.take_along_axis(distances, order[:, 1:2], axis=1)[:, 0] if distances.shape[1] > 1 else d1
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(d2 > 0, 1.0 - d1 / d2, 1.0)
    return label, np.clip(conf, 0.0, 1.0)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard index of two boolean membership vectors."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


@dataclass(frozen=True)
class Matching:
    mapping: dict[int, int]      # challenger label -> segment id (kept or new)
    kept: dict[int, int]         # challenger label -> champion segment id it inherits
    new: list[int]               # new segment ids created
    retired: list[int]           # champion segment ids with no match
    jaccard: dict[int, float]    # challenger label -> Jaccard with its matched champion segment (0 if new)


def match_segments(champion_ids: np.ndarray, challenger_labels: np.ndarray, next_id: int,
                   min_jaccard: float = MATCH_MIN_JACCARD) -> Matching:
    """Hungarian matching (scipy linear_sum_assignment) of challenger clusters to champion segments.

    Both arrays are assignments of the same clients. The contingency table of overlaps is maximised; a
    matched pair keeps the champion's segment id when their Jaccard reaches ``min_jaccard``. Unmatched or
    weakly matched challenger clusters get new ids from ``next_id`` (in label order); champion segments
    left without a partner are retired.
    """
    champ = np.unique(champion_ids)
    chall = np.unique(challenger_labels)
    table = np.array([[np.sum((champion_ids == s) & (challenger_labels == c)) for c in chall] for s in champ])
    rows, cols = linear_sum_assignment(table, maximize=True) if table.size else ([], [])
    kept, jac = {}, {}
    for r, c in zip(rows, cols):
        j = jaccard(champion_ids == champ[r], challenger_labels == chall[c])
        if table[r, c] > 0 and j >= min_jaccard:
            kept[int(chall[c])] = int(champ[r])
            jac[int(chall[c])] = j
    mapping, new = dict(kept), []
    for c in chall:
        if int(c) not in mapping:
            mapping[int(c)] = next_id
            new.append(next_id)
            jac[int(c)] = 0.0
            next_id += 1
    retired = sorted(int(s) for s in champ if int(s) not in kept.values())
    return Matching(mapping, kept, new, retired, jac)


@dataclass(frozen=True)
class Stability:
    jaccard: dict[int, float]  # label -> mean best-match Jaccard over the refits
    mean_ari: float
    refits: int


def clusterboot(x: pd.DataFrame, labels: np.ndarray, k: int, refits: int = 20, fraction: float = BOOTSTRAP_FRACTION,
                seed: int = SEED, max_rows: int = 20000) -> Stability:
    """Hennig's clusterboot with subsampling: refit on ``fraction`` of the clients ``refits`` times.

    For every original cluster, the Jaccard with its most similar cluster of each refit (on the
    subsample's clients) is averaged. The adjusted Rand index between the original and refitted labels
    on the subsample is averaged too. At most ``max_rows`` clients (seeded sample) take part.
    """
    rng = np.random.default_rng(seed)
    base = sample_index(len(x), max_rows, seed)
    xs, ls = x.iloc[base], labels[base]
    scores: dict[int, list[float]] = {int(c): [] for c in np.unique(labels)}
    aris = []
    for b in range(refits):
        idx = np.sort(rng.choice(len(xs), size=max(int(fraction * len(xs)), k + 1), replace=False))
        sub = build_pipeline(k, seed + 1 + b).fit(xs.iloc[idx])
        new = sub[-1].labels_
        orig = ls[idx]
        aris.append(adjusted_rand_score(orig, new))
        for c in scores:
            member = orig == c
            scores[c].append(max((jaccard(member, new == n) for n in np.unique(new)), default=0.0) if member.any() else 0.0)
    return Stability({c: float(np.mean(v)) for c, v in scores.items()}, float(np.mean(aris)), refits)


def psi(expected: np.ndarray, actual: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index sum((a - e) * ln(a / e)) of two count (or share) vectors over the same bins."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    e = np.clip(e / e.sum() if e.sum() else e, eps, None)
    a = np.clip(a / a.sum() if a.sum() else a, eps, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_status(value: float) -> str:
    return "significant" if value > PSI_SIGNIFICANT else "moderate" if value >= PSI_MODERATE else "stable"


def bin_edges(values: pd.Series, bins: int = 10) -> list[float]:
    """Inner decile edges of the non-missing values (missing values get their own bin in :func:`bin_counts`)."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return []
    return sorted(set(np.quantile(v, np.linspace(0, 1, bins + 1)[1:-1]).round(10).tolist()))


def bin_counts(values: pd.Series | np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin: [missing, (-inf, e1], (e1, e2], ..., (e_last, inf)]."""
    v = np.asarray(values, dtype=float)
    miss = np.isnan(v)
    inner = np.bincount(np.searchsorted(np.asarray(edges), v[~miss], side="left"), minlength=len(edges) + 1)
    return np.concatenate([[miss.sum()], inner]).astype(np.int64)


def bin_index(values: pd.Series | np.ndarray, edges: list[float]) -> np.ndarray:
    """Each value's bin of :func:`bin_counts` (0 = missing, 1 = (-inf, e1], ...): bincount gives the counts."""
    v = np.asarray(values, dtype=float)
    idx = np.searchsorted(np.asarray(edges), np.nan_to_num(v, nan=0.0), side="left") + 1
    return np.where(np.isnan(v), 0, idx).astype(np.int32)


def category_index(values: pd.Series, categories: list[str]) -> np.ndarray:
    """Each value's bin of :func:`category_counts` (its category's position; unseen = len(categories))."""
    v = values.fillna("<missing>").astype(str).to_numpy()
    pos = {c: i for i, c in enumerate(categories)}
    return np.array([pos.get(x, len(categories)) for x in v], dtype=np.int32)


def category_counts(values: pd.Series, categories: list[str]) -> np.ndarray:
    """Counts per category, plus a last bin for anything unseen in training."""
    v = values.fillna("<missing>").astype(str)
    known = [int((v == c).sum()) for c in categories]
    return np.array([*known, len(v) - sum(known)], dtype=np.int64)


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the training frame's content (order and values), to tell training data apart."""
    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()
