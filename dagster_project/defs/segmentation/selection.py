"""The choice of k: every k in ``K_RANGE`` fitted, bootstrapped as the blocking check measures it, chosen by one rule.

The rule (:func:`choose`): the pool is the admissible k - every segment stable (clusterboot Jaccard >= ``JACCARD_FLOOR``
over all ``refits``) and holding its share - and, when any of them is *reproducible* (the segments' mean Jaccard >=
``REPRODUCIBLE``; issue 34: a figure averaged over the segments does not flip under a nudge as the weakest segment's
does), only the reproducible ones; in the pool, among the k whose silhouette is within ``SILHOUETTE_TOLERANCE`` of the
pool's best, the one with the most segments (ties: the more stable, then the smaller k); when no k is admissible, the
most stable. A k with a segment under ``SCREEN_JACCARD`` after ``SCREEN_REFITS`` refits is not
refitted further.

The refits are most of the cost, and most of them cannot change the choice. :func:`select_k` fits every k (the
silhouette and the segment count need no refit), then refits one k at a time, always the one that can still
change the choice (:func:`next_to_refit`), until the choice is decided:

* a k is settled once its refits are all done or it provably cannot be admissible: a segment under 2 %, or a
  Jaccard mean that cannot reach the screen or the floor even if every remaining refit matched perfectly;
* a pool of merely stable k is replaced by any k that can still be reproducible, so such a k is refitted; a
  reproducible pool ignores every k that cannot join it (:func:`can_change`);
* with ``w`` the rule's choice among the settled k and ``top`` the best silhouette of its pool, an
  unsettled k cannot change the choice when (a) it has fewer segments than ``w`` and a silhouette at most
  ``SILHOUETTE_TOLERANCE`` above ``w``'s - admissible, it neither beats ``w`` nor pushes it out of the silhouette
  band - or (b) its silhouette is below ``top - SILHOUETTE_TOLERANCE`` - admissible, it is outside the band and
  cannot move it. More admissible k only raise the band's floor, which removes settled rivals of ``w``, never
  adds one, so when every unsettled k is (a) or (b) the full run chooses ``w`` (no k admissible: every k is
  refitted in full, as the fallback needs every k's stability).

Every refit that is made is the full run's refit (same subsample, same seed, its own k-means++): the chosen k's
stability is exactly the blocking check's, and ``fast=False`` (every k refitted in full) gives the same k and
partition - ``tests/unit/segmentation/test_selection.py`` checks both ways against each other. The curve records the
refits each k got: fewer than the full run for a k the choice did not need.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import davies_bouldin_score, silhouette_score

from dagster_project.defs.segmentation import model as seg

BOUND_SLACK = 1e-9  # a bound must clear its threshold by more than any rounding of a mean of <= 1000 values


@dataclass(frozen=True)
class Selection:
    k: int  # k asked of k-means
    centers: np.ndarray  # the model's centroids (segments after dissolving small clusters)
    stability: seg.Stability
    silhouette: float
    curve: pd.DataFrame  # k, segments, silhouette, davies_bouldin, inertia, min_share, min_jaccard, refits, admissible
    fits: dict[int, np.ndarray]  # k -> centroids of every k tried


@dataclass
class Candidate:
    """One k: its fit on the whole sample, and the clusterboot refits made so far (refit b is the b-th)."""

    k: int
    centers: np.ndarray
    labels: np.ndarray
    silhouette: float
    davies_bouldin: float
    inertia: float
    share: float
    jaccards: list[np.ndarray] = field(default_factory=list)  # per refit: each segment's best-match Jaccard
    aris: list[float] = field(default_factory=list)

    @property
    def segments(self) -> int:
        return len(self.centers)

    @property
    def done(self) -> int:
        return len(self.aris)

    def target(self, refits: int) -> int | None:
        """Refits the full run gives this k (None while its screen is not complete)."""
        screen = min(seg.SCREEN_REFITS, refits)
        if self.done < screen:
            return None
        quick = min(float(np.mean([j[c] for j in self.jaccards[:screen]])) for c in range(self.segments))
        return refits if quick >= seg.SCREEN_JACCARD and refits > seg.SCREEN_REFITS else screen

    def complete(self, refits: int) -> bool:
        return self.target(refits) == self.done

    def min_jaccard(self) -> float:
        return min(self.stability().jaccard.values()) if self.done else float("nan")

    def mean_jaccard(self) -> float:
        """The segments' mean Jaccard (each segment's mean over the refits, averaged over the segments)."""
        return float(np.mean(list(self.stability().jaccard.values()))) if self.done else float("nan")

    def can_be_reproducible(self, refits: int) -> bool:
        """Whether it is, or can still become, admissible with a mean Jaccard >= ``REPRODUCIBLE`` (the remaining refits
        perfect)."""
        if self.excluded(refits):
            return False
        if self.complete(refits):
            return self.mean_jaccard() >= seg.REPRODUCIBLE
        sums = np.sum(self.jaccards, axis=0) if self.done else np.zeros(self.segments)
        return float((sums.mean() + refits - self.done) / refits) >= seg.REPRODUCIBLE - BOUND_SLACK

    def admissible(self, refits: int) -> bool:
        """The full run's admissibility (only once the refits are complete)."""
        return bool(
            self.complete(refits)
            and self.done >= refits
            and self.min_jaccard() >= seg.JACCARD_FLOOR
            and self.share >= seg.MIN_SEGMENT_SHARE
        )

    def excluded(self, refits: int) -> bool:
        """Provably not admissible, whatever its remaining refits give."""
        if self.share < seg.MIN_SEGMENT_SHARE or (self.complete(refits) and not self.admissible(refits)):
            return True
        sums = np.sum(self.jaccards, axis=0) if self.done else np.zeros(self.segments)
        screen = min(seg.SCREEN_REFITS, refits)
        if refits > seg.SCREEN_REFITS and self.done < screen:  # the screen fails: stopped short of ``refits``
            if float((sums.min() + screen - self.done) / screen) < seg.SCREEN_JACCARD - BOUND_SLACK:
                return True
        return float((sums.min() + refits - self.done) / refits) < seg.JACCARD_FLOOR - BOUND_SLACK

    def settled(self, refits: int) -> bool:
        return self.complete(refits) or self.excluded(refits)

    def stability(self) -> seg.Stability:
        scores = {c: [float(j[c]) for j in self.jaccards] for c in range(self.segments)}
        return seg.stability(scores, list(self.aris))

    def row(self, refits: int) -> dict:
        return {
            "k": self.k,
            "segments": self.segments,
            "silhouette": self.silhouette,
            "davies_bouldin": self.davies_bouldin,
            "inertia": self.inertia,
            "min_share": self.share,
            "min_jaccard": self.min_jaccard(),
            "mean_jaccard": self.mean_jaccard(),
            "refits": self.done,
            "admissible": self.admissible(refits),
        }


def candidate(z: np.ndarray, k: int, seed: int = seg.SEED) -> Candidate:
    """k fitted on the whole sample, with the figures the rule and the curve need."""
    centers = seg.fit_centers(z, k, seed)
    lab = seg.distances(z, centers).argmin(axis=1)
    many = len(set(lab)) > 1
    sil = float(silhouette_score(z, lab, sample_size=min(len(z), 3000), random_state=seed)) if many else -1.0
    dbi = float(davies_bouldin_score(z, lab)) if many else float("inf")
    inertia = float(((z - centers[lab]) ** 2).sum())
    share = float(np.bincount(lab, minlength=len(centers)).min() / len(z))
    return Candidate(k, centers, lab, sil, dbi, inertia, share)


def pool_choice(curve: pd.DataFrame) -> int | None:
    """The rule among the admissible rows of ``curve`` - only the reproducible ones (segments' mean Jaccard >=
    ``REPRODUCIBLE``) when there is one: None when none is admissible."""
    pool = curve[curve.admissible]
    if not len(pool):
        return None
    best = pool[pool.mean_jaccard >= seg.REPRODUCIBLE]
    pool = best if len(best) else pool
    pool = pool[pool.silhouette >= pool.silhouette.max() - seg.SILHOUETTE_TOLERANCE]
    return int(pool.sort_values(["segments", "min_jaccard", "k"], ascending=[False, False, True]).iloc[0].k)


def choose(curve: pd.DataFrame) -> int:
    """The rule: :func:`pool_choice`, else (no k admissible) the most stable k."""
    best = pool_choice(curve)
    return best if best is not None else int(curve.sort_values(["min_jaccard", "k"], ascending=[False, True]).iloc[0].k)


def next_to_refit(cands: list[Candidate], refits: int, fast: bool = True) -> Candidate | None:
    """The k to refit next: one whose refits can still change the choice (None: decided; module docstring).

    Among those, the one the rule would choose were they all admissible (the refits most likely to decide), else
    the one of highest silhouette (it sets the band). ``fast=False``: every k in full, in k order.
    """
    if not fast:
        return next((c for c in cands if not c.complete(refits)), None)
    settled = [c for c in cands if c.settled(refits)]
    admissible = [c for c in settled if c.admissible(refits)]
    pool = [c for c in admissible if c.mean_jaccard() >= seg.REPRODUCIBLE] or admissible
    w = pool_choice(pd.DataFrame([c.row(refits) for c in settled])) if settled else None
    open_ = [c for c in cands if not c.settled(refits)]
    if w is not None:
        win, top = next(c for c in cands if c.k == w), max(c.silhouette for c in pool)
        open_ = [c for c in open_ if can_change(c, win, top, pool is not admissible, refits)]
    if not open_:  # decided - or nothing is admissible, and the fallback (the most stable k) needs every k in full
        return None if w is not None else next((c for c in cands if not c.complete(refits)), None)
    hope = pool_choice(
        pd.DataFrame(
            [c.row(refits) for c in admissible]
            + [c.row(refits) | {"admissible": True, "min_jaccard": 1.0, "mean_jaccard": 1.0} for c in open_]
        )
    )
    return next((c for c in open_ if c.k == hope), max(open_, key=lambda c: (c.silhouette, c.segments)))


def can_change(c: Candidate, win: Candidate, top: float, reproducible: bool, refits: int) -> bool:
    """Whether the refits of the unsettled ``c`` can change the choice ``win`` (``top``: the best silhouette of the
    pool ``win`` was chosen from; ``reproducible``: that pool is the reproducible k). A reproducible pool ignores a k
    that cannot join it; a pool of merely stable k is replaced by one that can, so such a k is refitted."""
    joins = c.can_be_reproducible(refits)
    if reproducible:
        return joins and not cannot_change(c, win, top)
    return joins or not cannot_change(c, win, top)


def cannot_change(c: Candidate, win: Candidate, top: float) -> bool:
    """Whatever its refits give, ``c`` leaves the choice ``win`` (``top``: best silhouette of the admissible k):
    fewer segments and a silhouette at most the tolerance above ``win``'s, or a silhouette below the band."""
    tol = seg.SILHOUETTE_TOLERANCE
    return (c.segments < win.segments and win.silhouette >= c.silhouette - tol) or c.silhouette < top - tol


def select_k(
    z: np.ndarray,
    k_range: tuple[int, int] = seg.K_RANGE,
    refits: int = 20,
    seed: int = seg.SEED,
    log=None,
    fast: bool = True,
) -> Selection:
    """Fit every k on ``z`` (the training sample), refit as the choice needs (module docstring), choose by the rule.

    ``fast=False`` refits every k in full (the screen aside): the same k and centroids, every k's curve complete.
    """
    with seg.single_threaded():
        cands = [candidate(z, k, seed) for k in range(k_range[0], k_range[1] + 1) if k < len(z)]
        while (c := next_to_refit(cands, refits, fast)) is not None:
            jac, ari = seg.refit(z, c.labels, c.segments, c.k, c.done, seed=seed)
            c.jaccards.append(jac)
            c.aris.append(ari)
    curve = pd.DataFrame([c.row(refits) for c in cands])
    best = next(c for c in cands if c.k == choose(curve))
    if log:
        for c in cands:
            stab = (
                f"min Jaccard {c.min_jaccard():.3f} ({c.done} refits{'' if c.complete(refits) else ', decided'})"
                if c.done
                else "no refits (cannot change the choice)"
            )
            log(
                f"k={c.k}: {c.segments} segments, silhouette {c.silhouette:.3f}, {stab}, smallest segment {c.share:.1%}"
            )
    return Selection(best.k, best.centers, best.stability(), best.silhouette, curve, {c.k: c.centers for c in cands})
