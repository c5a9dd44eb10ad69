"""The client segmentation model as pure, typed functions (no Dagster, no database).

``training.py`` and ``scoring.py`` use them; ``features.py`` defines the space the clients are placed in;
``docs/segmentation.md`` documents every choice made here.

* :func:`training_sample` - the clients a model is trained on: ordered by their feature values alone and drawn
  with a fixed seed, so neither the pseudonymisation key nor the delivery order can change the model.
* :func:`fit_centers` - k-means (k-means++ restarts), then every cluster under ``MIN_SEGMENT_SHARE`` is dissolved
  into its nearest neighbours (a distinct 1-2 % group neither vetoes a k nor becomes a segment that fails the share
  rule) and the remaining centroids are refined.
* :func:`clusterboot` - Hennig's clusterboot: the same fit on ``BOOTSTRAP_FRACTION`` subsamples, per segment the
  mean best-match Jaccard. Every fit runs on one thread (:func:`single_threaded`).
* :func:`refit` - one clusterboot refit; the choice of k that uses them is ``selection.py``.
* :func:`confidence`, :func:`match_segments` (stable ids across retrains), :func:`psi` and drift bins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans
from sklearn.pipeline import Pipeline
from threadpoolctl import ThreadpoolController

from dagster_project.defs.segmentation.features import DimensionScaler
from dagster_project.lib.settings import env_value

MODEL_FAMILY = "dimensions-v2"  # models of this code; a champion of another family is retrained
SEED = int(env_value("LENDSEG_SEG_SEED"))  # 20240601 unless set (lendseg evaluate --perturb varies it)
K_RANGE: tuple[int, int] = (4, 10)  # k tried (inclusive); dissolved small clusters can leave fewer segments
TRAINING_SAMPLE = 5000  # clients a model is trained, selected and bootstrapped on (all below)
MIN_SEGMENT_SHARE = 0.02  # blocking: every segment holds >= 2 % of the clients
SILHOUETTE_FLOOR = 0.10  # blocking: silhouette of the chosen k on the training sample
JACCARD_FLOOR = 0.75  # blocking: clusterboot mean Jaccard of every segment (Hennig: stable)
HIGHLY_STABLE = 0.85  # Hennig's "highly stable" band (shown on the k chart)
SCREEN_REFITS, SCREEN_JACCARD = 5, 0.60  # selection: a k below 0.60 after 5 refits is not refitted further
SILHOUETTE_TOLERANCE = 0.03  # selection: the finest stable k within 0.03 of the best silhouette
REPRODUCIBLE = 0.95  # selection: k whose segments' mean Jaccard reaches it are preferred (issue 34)
BOOTSTRAP_FRACTION = 0.80  # clusterboot subsample share (without replacement)
RESTARTS = 10  # k-means++ restarts of every fit (model and refits alike)
MATCH_MIN_JACCARD = 0.30  # a retrained cluster keeps a champion id only above this overlap
PSI_MODERATE, PSI_SIGNIFICANT = 0.10, 0.25  # PSI conventions: < 0.10 stable, 0.10-0.25 moderate, > 0.25 significant


class CentroidModel(BaseEstimator):
    """Nearest-centroid assignment in the model's space: ``transform`` gives distances, ``predict`` the label."""

    def __init__(self, centers: np.ndarray | None = None):
        self.centers = centers

    def fit(self, z=None, y=None) -> CentroidModel:
        self.cluster_centers_ = np.asarray(self.centers, dtype=float)
        self.n_clusters = len(self.cluster_centers_)
        return self

    def transform(self, z: np.ndarray) -> np.ndarray:
        return distances(np.asarray(z, dtype=float), self.cluster_centers_)

    def predict(self, z: np.ndarray) -> np.ndarray:
        return self.transform(z).argmin(axis=1)


def distances(z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Euclidean distances (n, k) without an (n, k, d) intermediate."""
    sq = (z**2).sum(axis=1)[:, None] - 2.0 * z @ centers.T + (centers**2).sum(axis=1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0))


def key_free_order(z: np.ndarray) -> np.ndarray:
    """Row order from the feature values alone (lexicographic on values rounded to 4 decimals, ties kept in place)."""
    return np.lexsort(np.round(z, 4).T[::-1]) if len(z) else np.arange(0)


def training_sample(z: np.ndarray, size: int = TRAINING_SAMPLE, seed: int = SEED) -> np.ndarray:
    """Row positions of the training sample: all rows (at most ``size``), in key-free order, drawn with ``seed``."""
    order = key_free_order(z)
    if len(order) <= size:
        return order
    return order[np.sort(np.random.default_rng(seed).choice(len(order), size=size, replace=False))]


_THREADS: list[ThreadpoolController] = []  # one controller, made at the first fit (making one scans the libraries)


def single_threaded():
    """Context: OpenMP and BLAS on one thread. A fit of a few thousand rows spends more on waking a second thread
    than it saves (7x slower on the shared 2 cores), and a single thread sums in one fixed order: every fit gives
    the same bits on any machine and in any worker, which the selection's exactness needs."""
    if not _THREADS:
        _THREADS.append(ThreadpoolController())
    return _THREADS[0].limit(limits=1)


def fit_centers(
    z: np.ndarray,
    k: int,
    seed: int = SEED,
    min_share: float = MIN_SEGMENT_SHARE,
    restarts: int = RESTARTS,
    refine: int = 10,
) -> np.ndarray:
    """k-means centroids with the clusters under ``min_share`` dissolved into their neighbours, then refined."""
    with single_threaded():
        km = KMeans(n_clusters=min(k, len(z)), n_init=restarts, random_state=seed).fit(z)
    counts = np.bincount(km.labels_, minlength=km.n_clusters)
    keep = counts / len(z) >= min_share
    centers = km.cluster_centers_[keep] if keep.any() else km.cluster_centers_[[int(counts.argmax())]]
    for _ in range(refine if not keep.all() else 0):
        lab = distances(z, centers).argmin(axis=1)
        new = np.array([z[lab == j].mean(axis=0) if (lab == j).any() else centers[j] for j in range(len(centers))])
        if np.allclose(new, centers):
            break
        centers = new
    return centers


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard index of two boolean membership vectors."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


@dataclass(frozen=True)
class Stability:
    jaccard: dict[int, float]  # label -> mean best-match Jaccard over the refits
    mean_ari: float
    refits: int
    per_refit: dict[int, list[float]] | None = None  # label -> Jaccard of each refit (to continue a run)
    per_refit_ari: list[float] | None = None


def refit(
    z: np.ndarray,
    labels: np.ndarray,
    segments: int,
    k: int,
    b: int,
    fraction: float = BOOTSTRAP_FRACTION,
    seed: int = SEED,
) -> tuple[np.ndarray, float]:
    """Clusterboot refit ``b`` of the partition ``labels`` (``segments`` of them): :func:`fit_centers` with ``k`` on
    the ``fraction`` subsample drawn with seed + 1 + b (k-means++ of its own: independent of the model's fit). Each
    segment's best-match Jaccard with a refitted cluster (0 for a segment absent from the subsample), and the
    adjusted Rand index of the two partitions of the subsample."""
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed + 1 + b)
    idx = np.sort(rng.choice(len(z), size=max(int(fraction * len(z)), k + 1), replace=False))
    centers = fit_centers(z[idx], k, seed + 1 + b)
    new = distances(z[idx], centers).argmin(axis=1)
    orig = labels[idx]
    both = np.bincount(orig * len(centers) + new, minlength=segments * len(centers)).reshape(segments, -1)
    union = both.sum(axis=1)[:, None] + both.sum(axis=0)[None, :] - both
    present = both.sum(axis=0) > 0
    jac = np.divide(both, union, out=np.zeros(both.shape), where=present[None, :] & (union > 0))[:, present]
    return np.where(both.sum(axis=1) > 0, jac.max(axis=1), 0.0), float(adjusted_rand_score(orig, new))


def clusterboot(
    z: np.ndarray,
    centers: np.ndarray,
    k: int,
    refits: int = 20,
    fraction: float = BOOTSTRAP_FRACTION,
    seed: int = SEED,
    first: int = 0,
    earlier: dict[int, list[float]] | None = None,
    earlier_ari: list[float] | None = None,
) -> Stability:
    """Hennig's clusterboot with subsampling: :func:`refit` ``first`` .. ``refits - 1`` of the partition
    ``centers`` gives (refit b draws with seed + 1 + b, so a run continued from ``earlier`` equals one run of all
    refits); per segment of ``centers`` the mean Jaccard with its most similar refitted cluster."""
    labels = distances(z, centers).argmin(axis=1)
    scores: dict[int, list[float]] = {c: list((earlier or {}).get(c, [])) for c in range(len(centers))}
    aris = list(earlier_ari or [])
    with single_threaded():
        for b in range(first, refits):
            jac, ari = refit(z, labels, len(centers), k, b, fraction, seed)
            aris.append(ari)
            for c in scores:
                scores[c].append(float(jac[c]))
    return stability(scores, aris)


def stability(scores: dict[int, list[float]], aris: list[float]) -> Stability:
    """The clusterboot summary of per-refit Jaccards (segment -> one per refit) and adjusted Rand indices."""
    return Stability({c: float(np.mean(v)) for c, v in scores.items()}, float(np.mean(aris)), len(aris), scores, aris)


def build_pipeline(scaler: DimensionScaler, centers: np.ndarray) -> Pipeline:
    """The stored model: the fitted DimensionScaler, then nearest-centroid assignment."""
    return Pipeline([("preprocess", scaler), ("cluster", CentroidModel(centers).fit())])


def confidence(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest centroid label, confidence) from a (n, k) distance matrix.

    confidence = 1 - d_nearest / d_second: 0 when the client sits exactly between two centroids, 1 on its
    centroid. Ties break to the lower label.
    """
    order = np.argsort(dist, axis=1, kind="stable")
    label = order[:, 0]
    d1 = np.take_along_axis(dist, order[:, :1], axis=1)[:, 0]
    d2 = np.take_along_axis(dist, order[:, 1:2], axis=1)[:, 0] if dist.shape[1] > 1 else d1
    with np.errstate(divide="ignore", invalid="ignore"):
        conf = np.where(d2 > 0, 1.0 - d1 / d2, 1.0)
    return label, np.clip(conf, 0.0, 1.0)


@dataclass(frozen=True)
class Matching:
    mapping: dict[int, int]  # challenger label -> segment id (kept or new)
    kept: dict[int, int]  # challenger label -> champion segment id it inherits
    new: list[int]  # new segment ids created
    retired: list[int]  # champion segment ids with no match
    jaccard: dict[int, float]  # challenger label -> Jaccard with its matched champion segment (0 if new)


def match_segments(
    champion_ids: np.ndarray, challenger_labels: np.ndarray, next_id: int, min_jaccard: float = MATCH_MIN_JACCARD
) -> Matching:
    """Hungarian matching (scipy linear_sum_assignment) of challenger clusters to champion segments.

    Both arrays are assignments of the same clients. The contingency table of overlaps is maximised; a
    matched pair keeps the champion's segment id when their Jaccard reaches ``min_jaccard``. Unmatched or
    weakly matched challenger clusters get new ids from ``next_id`` (in label order); champion segments
    left without a partner are retired.
    """
    champ = np.unique(champion_ids)
    chall = np.unique(challenger_labels)
    table = pd.crosstab(
        pd.Categorical(champion_ids, categories=champ),
        pd.Categorical(challenger_labels, categories=chall),
        dropna=False,
    ).to_numpy()
    rows, cols = linear_sum_assignment(table, maximize=True) if table.size else ([], [])
    kept, jac = {}, {}
    for r, c in zip(rows, cols, strict=False):
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
    v = values.fillna("<missing>").astype(str)
    codes = pd.Categorical(v, categories=categories).codes
    return np.where(codes < 0, len(categories), codes).astype(np.int32)


def category_counts(values: pd.Series, categories: list[str]) -> np.ndarray:
    """Counts per category, plus a last bin for anything unseen in training."""
    return np.bincount(category_index(values, categories), minlength=len(categories) + 1).astype(np.int64)


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the training frame's content (order and values), to tell training data apart."""
    h = hashlib.sha256()
    h.update(",".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()
