"""The segmentation methods ``lendseg evaluate`` compares with the model (docs/segmentation.md, "Choosing the method").

Each takes rows of ``marts.client_features`` and a number of segments and returns one label per row; all are
vectorised and seeded. The model itself is what the pipeline published (its own k); the others run at:

* ``plain baseline`` - one-hot ``industry_section`` + every numeric column of client_features, median-imputed and
  standardised, ``KMeans(n_init=10)``, at the true number of archetypes (scenarios) or the model's k (SBA);
* ``gaussian mixture`` - a diagonal-covariance Gaussian mixture in the model's own space (features.py), at the
  model's k;
* ``gower k-medoids`` - k-medoids (alternating, k-means++-style seeding) on the Gower distance of the model's features
  (numeric: |difference| / range; categorical: mismatch), each feature weighted by its dimension's weight shared
  among the dimension's features; medoids searched on up to 2,000 clients, every client assigned to its nearest;
* ``rule segmentation`` - size class x industry risk class (segmentation/rules.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dagster_project.defs.segmentation import features as feat

SEED = 0
MEDOID_SAMPLE = 2000


def plain_baseline(features: pd.DataFrame, k: int, seed: int = SEED) -> np.ndarray:
    """The fixed baseline: one-hot industry_section + standardised median-imputed numeric columns, KMeans(k)."""
    from sklearn.cluster import KMeans

    num = features.drop(columns=["client_key"], errors="ignore").select_dtypes(include=["number"]).astype(float)
    num = num.loc[:, num.notna().any()]
    num = num.fillna(num.median())
    sd = num.std(ddof=0).replace(0, 1.0)
    z = (num - num.mean()) / sd
    onehot = pd.get_dummies(features["industry_section"].fillna("missing"), prefix="sec", dtype=float)
    x = np.hstack([z.to_numpy(), onehot.to_numpy()])
    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)


def gaussian_mixture(features: pd.DataFrame, k: int, seed: int = SEED) -> np.ndarray:
    """Diagonal Gaussian mixture (3 restarts, variance floor 0.01) in the model's space."""
    from sklearn.mixture import GaussianMixture

    x = feat.prepare(features)
    z = feat.DimensionScaler().fit(x).transform(x)
    return GaussianMixture(k, covariance_type="diag", reg_covar=1e-2, n_init=3, random_state=seed).fit(z).predict(z)


def gower_parts(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(numeric matrix scaled by range, categorical codes, numeric weights, categorical weights) for Gower."""
    x = feat.prepare(features)
    num_cols = [f for f in feat.FEATURES if not f.categorical]
    cat_cols = [f for f in feat.FEATURES if f.categorical]
    per_feature = {f.column: d.weight / len(d.features) for d in feat.DIMENSIONS for f in d.features}
    num = x[[f.column for f in num_cols]].to_numpy(dtype=float)
    num = np.where(np.isnan(num), np.nanmedian(num, axis=0), num)
    rng = np.nanmax(num, axis=0) - np.nanmin(num, axis=0)
    num = np.where(rng > 0, (num - np.nanmin(num, axis=0)) / np.where(rng > 0, rng, 1), 0.0)
    cat = np.column_stack([pd.Categorical(x[f.column]).codes for f in cat_cols]) if cat_cols else np.zeros((len(x), 0))
    return (
        num,
        cat,
        np.array([per_feature[f.column] for f in num_cols]),
        np.array([per_feature[f.column] for f in cat_cols]),
    )


def gower_to(num: np.ndarray, cat: np.ndarray, wn: np.ndarray, wc: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Weighted Gower distances (n, len(idx)) of every row to rows ``idx`` (no (n, m, d) intermediate)."""
    total = wn.sum() + wc.sum()
    out = np.zeros((len(num), len(idx)))
    for j, i in enumerate(idx):
        out[:, j] = (np.abs(num - num[i]) @ wn + (cat != cat[i]) @ wc) / total
    return out


def gower_kmedoids(features: pd.DataFrame, k: int, seed: int = SEED, iterations: int = 20) -> np.ndarray:
    """k-medoids on the weighted Gower distance (module doc)."""
    num, cat, wn, wc = gower_parts(features)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(num), size=min(MEDOID_SAMPLE, len(num)), replace=False))
    d = gower_to(num[sample], cat[sample], wn, wc, np.arange(len(sample)))
    medoids = [int(rng.integers(len(sample)))]
    for _ in range(1, k):  # k-means++-style seeding on the sample
        nearest = d[:, medoids].min(axis=1) ** 2
        medoids.append(int(rng.choice(len(sample), p=nearest / nearest.sum())) if nearest.sum() else len(medoids))
    for _ in range(iterations):
        lab = d[:, medoids].argmin(axis=1)
        new = [
            int(np.flatnonzero(lab == c)[d[np.ix_(lab == c, lab == c)].sum(axis=1).argmin()])
            if (lab == c).any()
            else medoids[c]
            for c in range(k)
        ]
        if new == medoids:
            break
        medoids = new
    return gower_to(num, cat, wn, wc, sample[medoids]).argmin(axis=1)


def rule_segments(features: pd.DataFrame) -> np.ndarray:
    from dagster_project.defs.segmentation import rules

    return rules.assign(features).to_numpy()


METHODS = {"plain baseline": plain_baseline, "gaussian mixture": gaussian_mixture, "gower k-medoids": gower_kmedoids}
