"""The choice of k refits only what the choice needs (selection.py), and chooses what refitting every k chooses.

The reference below is the selection as it ran before issue 33 (every k fitted, screened and refitted in full, one
k after the other, then the rule), kept here verbatim but for the names and issue 34's rule (the pool is the
reproducible k - segments' mean Jaccard >= 0.95 - when there is one, else the stable k).
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_score
from synthetic import synthetic

from dagster_project.defs.segmentation import features as feat
from dagster_project.defs.segmentation import model as seg
from dagster_project.defs.segmentation import selection


def reference_select_k(z: np.ndarray, k_range: tuple[int, int], refits: int, seed: int = seg.SEED):
    """(k, centers, stability, silhouette, curve) of the full run: every k refitted in full."""
    rows, fits = [], {}
    with seg.single_threaded():
        for k in range(k_range[0], k_range[1] + 1):
            if k >= len(z):
                break
            centers = seg.fit_centers(z, k, seed)
            lab = seg.distances(z, centers).argmin(axis=1)
            quick = seg.clusterboot(z, centers, k, min(seg.SCREEN_REFITS, refits), seed=seed)
            stab = quick
            if min(quick.jaccard.values()) >= seg.SCREEN_JACCARD and refits > seg.SCREEN_REFITS:
                stab = seg.clusterboot(
                    z,
                    centers,
                    k,
                    refits,
                    seed=seed,
                    first=seg.SCREEN_REFITS,
                    earlier=quick.per_refit,
                    earlier_ari=quick.per_refit_ari,
                )
            sil = (
                float(silhouette_score(z, lab, sample_size=min(len(z), 3000), random_state=seed))
                if len(set(lab)) > 1
                else -1.0
            )
            share = float(np.bincount(lab, minlength=len(centers)).min() / len(z))
            mj = min(stab.jaccard.values())
            rows.append(
                {
                    "k": k,
                    "segments": len(centers),
                    "silhouette": sil,
                    "min_share": share,
                    "min_jaccard": mj,
                    "mean_jaccard": float(np.mean(list(stab.jaccard.values()))),
                    "refits": stab.refits,
                    "admissible": bool(
                        stab.refits >= refits and mj >= seg.JACCARD_FLOOR and share >= seg.MIN_SEGMENT_SHARE
                    ),
                }
            )
            fits[k] = (centers, stab, sil)
    curve = pd.DataFrame(rows)
    pool = curve[curve.admissible]
    best = pool[pool.mean_jaccard >= seg.REPRODUCIBLE]  # issue 34: the reproducible k, when there is one
    pool = best if len(best) else pool
    pool = pool[pool.silhouette >= pool.silhouette.max() - seg.SILHOUETTE_TOLERANCE] if len(pool) else pool
    if len(pool):
        best = pool.sort_values(["segments", "min_jaccard", "k"], ascending=[False, False, True]).iloc[0]
    else:
        best = curve.sort_values(["min_jaccard", "k"], ascending=[False, True]).iloc[0]
    centers, stab, sil = fits[int(best.k)]
    return int(best.k), centers, stab, sil, curve


def blobs(seed: int, centres: np.ndarray, n: int = 480, spread: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(centres), n)
    return centres[which] + rng.normal(0, spread, (n, centres.shape[1]))


def client_space(seed: int) -> np.ndarray:
    x = feat.prepare(synthetic(500, seed=seed, small_group=0.015))
    z = feat.DimensionScaler().fit(x).transform(x)
    return z[seg.key_free_order(z)]


FOUR = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]], dtype=float)
PAIRS = np.array([[a + b, c, 0] for a, c in ((0, 0), (14, 0), (0, 14)) for b in (0, 5.0)], dtype=float)  # 3 x 2
SEVEN = np.random.default_rng(1).uniform(0, 9, (7, 3))
DATASETS = {  # name: (space, k range, refits)
    "four blobs": (lambda: blobs(0, FOUR), (3, 8), 20),  # k = 4, the best silhouette: nothing else refitted
    "four blobs, 4 refits (no screen)": (lambda: blobs(2, FOUR, spread=1.6), (3, 7), 4),
    "three pairs: 6 below the best silhouette": (lambda: blobs(3, PAIRS, spread=0.6), (2, 7), 20),
    "seven overlapping: three stable k": (lambda: blobs(1, SEVEN, n=500, spread=1.6), (4, 9), 20),
    "seven overlapping: k stopped by the bound": (lambda: blobs(1, SEVEN, n=500, spread=2.0), (4, 9), 20),
    "noise: nothing admissible": (lambda: np.random.default_rng(4).normal(size=(300, 3)), (3, 6), 20),
    "clients, small group": (lambda: client_space(1), (4, 8), 20),
    "clients: two k of 4 segments": (lambda: client_space(3), (4, 8), 20),
}


@pytest.mark.parametrize("name", list(DATASETS))
def test_fast_selection_chooses_the_full_runs_k_partition_and_stability(name: str) -> None:
    make, k_range, refits = DATASETS[name]
    z = make()
    k, centers, stab, sil, curve = reference_select_k(z, k_range, refits)
    fast = selection.select_k(z, k_range, refits=refits)
    full = selection.select_k(z, k_range, refits=refits, fast=False)
    for sel in (fast, full):
        assert sel.k == k and np.array_equal(sel.centers, centers), name
        assert np.array_equal(seg.distances(z, sel.centers).argmin(axis=1), seg.distances(z, centers).argmin(axis=1))
        assert sel.stability == stab and sel.silhouette == sil
    cols = list(curve.columns)
    assert full.curve[cols].equals(curve), "fast=False is the full run, curve and all"
    # every k the fast run refitted in full has the full run's figures; the others fewer refits, never admissible
    same = fast.curve.refits == curve.refits
    assert fast.curve[same][cols].equals(curve[same])
    assert (fast.curve[~same].refits < curve[~same].refits).all() and not fast.curve[~same].admissible.any()
    assert list(fast.curve.k) == list(curve.k) and fast.fits.keys() == full.fits.keys()


def test_the_fast_selection_refits_less_where_the_choice_is_clear() -> None:
    z = blobs(0, FOUR)
    fast = selection.select_k(z, (3, 8), refits=20).curve.set_index("k")
    full = selection.select_k(z, (3, 8), refits=20, fast=False).curve.set_index("k")
    assert fast.refits.to_dict() == {3: 0, 4: 20, 5: 0, 6: 0, 7: 0, 8: 0} and full.refits.sum() == 120
    assert np.isnan(fast.min_jaccard[3]), "3 segments cannot beat 4 at a lower silhouette"
    assert full.admissible[5] and full.silhouette[5] < full.silhouette[4] - seg.SILHOUETTE_TOLERANCE, (
        "k = 5 is stable, but below the silhouette band of k = 4: not refitted"
    )
    z = blobs(1, SEVEN, n=500, spread=2.0)
    bound = selection.select_k(z, (4, 9), refits=20).curve.set_index("k")
    assert (~bound.refits.isin([0, seg.SCREEN_REFITS, 20])).any(), "a k stopped as soon as it cannot change the choice"


def test_a_k_provably_inadmissible_stops_refitting_and_fallback_completes_every_k() -> None:
    z = np.random.default_rng(4).normal(size=(300, 3))
    fast = selection.select_k(z, (3, 6), refits=20)
    assert not fast.curve.admissible.any()  # no structure: the most stable k, measured in full for every k
    _, _, _, _, curve = reference_select_k(z, (3, 6), 20)
    assert fast.curve.refits.tolist() == curve.refits.tolist()


def test_bounds_settle_a_k_before_its_refits_are_done() -> None:
    c = selection.Candidate(5, np.zeros((5, 2)), np.zeros(10, dtype=int), 0.2, 1.0, 1.0, 0.1)
    for _ in range(3):  # one segment never found again: even 2 perfect refits cannot lift its mean to 0.60
        c.jaccards.append(np.array([1.0, 1.0, 1.0, 1.0, 0.1]))
        c.aris.append(0.5)
    assert c.target(20) is None and c.excluded(20) and c.settled(20) and not c.complete(20)
    c.jaccards[-1] = np.array([1.0, 1.0, 1.0, 1.0, 0.9])  # 0.1 + 0.1 + 0.9 + 2 = 3.1 / 5 >= 0.60: still open
    assert not c.excluded(20) and not c.settled(20)
    small = selection.Candidate(5, np.zeros((5, 2)), np.zeros(10, dtype=int), 0.2, 1.0, 1.0, 0.01)
    assert small.excluded(20), "a segment under 2 % is never admissible: no refit needed"
