"""The combined early-warning score with sign constraints, its out-of-fold scores, the targets, the operating points
(the warning point with its recall margin, ``wilson_lower``) and the choice score vs expert rules
(``choose_method``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dagster_project.defs.applications.ew_features import FEATURES


@dataclass(frozen=True)
class Targets:
    warning_precision: float = 0.30
    critical_precision: float = 0.60
    margin: float = 0.05  # operating points are chosen at target + margin on the calibration window
    min_history_months: int = 12
    min_positives: int = 20
    warning_recall: float = 0.70  # the warning point's recall must be >= this with confidence (recall_z)
    recall_z: float = 1.96  # Wilson score interval: lower 95 % bound of recall on the calibration window
    watch_share: float = 0.20  # watch or above: at most this share of the performing customers (docs/applications.md)


@dataclass(frozen=True)
class Score:
    """The combined score: L2 logistic regression with the business signs; ``logit`` is its linear predictor (what
    the operating points are compared with, in SQL as in Python: ``ew_sql.logit_sql``), ``decision`` the probability."""

    intercept: float
    coefficients: dict[str, float]  # only the kept features
    dropped: tuple[str, ...] = ()  # features dropped for a wrong (negative) sign
    kind: str = "logreg"

    def logit(self, x: pd.DataFrame | Mapping[str, float]) -> np.ndarray | float:
        if isinstance(x, pd.DataFrame):
            z = np.full(len(x), self.intercept)
            for f, c in self.coefficients.items():
                z = z + c * x[f].to_numpy(dtype=float)
            return z
        z = self.intercept
        for f, c in self.coefficients.items():
            z = z + c * x.get(f, 0.0)
        return z

    def decision(self, x: pd.DataFrame | Mapping[str, float]) -> np.ndarray | float:
        z = self.logit(x)
        return 1.0 / (1.0 + np.exp(-z)) if isinstance(z, np.ndarray) else 1.0 / (1.0 + math.exp(-z))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def logit(p: float) -> float:
    """The logit of a probability (older calibration files store only probabilities)."""
    return math.log(p) - math.log1p(-p)


def client_fold(client_key: str, folds: int = 5) -> int:
    """Stable fold of a client (cross-fitting: the operating points are chosen on clients the score was not fitted on);
    ``fold_sql`` is the same in SQL."""
    import hashlib

    return int(hashlib.sha256(client_key.encode("utf-8")).hexdigest()[:8], 16) % folds


def fold_sql(col: str = "client_key", folds: int = 5) -> str:
    return f"(('0x' || left(sha256({col}), 8))::UBIGINT % {folds})::INTEGER"


def _weights(df: pd.DataFrame) -> np.ndarray:
    """Row weights: column ``n`` (rows aggregated by SQL: identical client-months counted once) or 1 per row."""
    return df["n"].to_numpy(dtype=float) if "n" in df.columns else np.ones(len(df))


def _folds(df: pd.DataFrame, folds: int) -> np.ndarray:
    return (
        df["fold"].to_numpy(dtype=int)
        if "fold" in df.columns
        else np.array([client_fold(c, folds) for c in df.client_key], dtype=int)
    )


def out_of_fold_scores(fit_df: pd.DataFrame, target: pd.DataFrame, folds: int = 5) -> np.ndarray:
    """Score logits of ``target`` rows, each from a score fitted on the fit rows of the OTHER client folds (rows carry
    a ``fold`` column, or a ``client_key`` to derive it from; an optional weight column ``n``)."""
    ff, tf = _folds(fit_df, folds), _folds(target, folds)
    w = _weights(fit_df)
    out = np.zeros(len(target))
    for k in range(folds):
        tr = ff != k
        sc = fit_score(fit_df[tr], fit_df.label.to_numpy(bool)[tr], weights=w[tr])
        if (tf == k).any():
            out[tf == k] = np.asarray(sc.logit(target[tf == k]), dtype=float)
    return out


def fit_score(
    X: pd.DataFrame,
    y: Sequence[bool],
    features: Sequence[str] = FEATURES,
    c: float = 1.0,
    signs: Mapping[str, int] | None = None,
    weights: Sequence[float] | None = None,
) -> Score:
    """L2 logistic regression (class_weight balanced); a feature with the wrong sign is dropped and the rest refitted.

    ``signs``: expected sign per feature (+1: coefficient >= 0, -1: <= 0); default +1 for every feature.
    ``weights``: rows standing for that many identical client-months (SQL aggregates them); the balanced class
    weights are then taken over the weighted counts, so the fit is the one on the rows repeated.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype=bool)
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None:
        y, X, w = y[w > 0], X[w > 0], w[w > 0]
    if y.all() or not y.any():
        raise ValueError("need both outcomes to fit a score")
    sample_weight, class_weight = None, "balanced"
    if w is not None:
        n_pos, n_all = w[y].sum(), w.sum()
        cw = {True: n_all / (2 * n_pos), False: n_all / (2 * (n_all - n_pos))}
        sample_weight, class_weight = w * np.where(y, cw[True], cw[False]), None
    signs = dict(signs or {})
    keep = [f for f in features if X[f].to_numpy(dtype=float).std() > 0]
    dropped = [f for f in features if f not in keep]
    while True:
        if not keep:
            return Score(intercept=0.0, coefficients={}, dropped=tuple(dropped))
        lr = LogisticRegression(C=c, class_weight=class_weight, max_iter=2000)
        lr.fit(X[keep].to_numpy(dtype=float), y, sample_weight=sample_weight)
        coef = dict(zip(keep, lr.coef_[0].tolist(), strict=False))
        wrong = [f for f in keep if coef[f] * signs.get(f, 1) < 0]
        if not wrong:
            return Score(intercept=float(lr.intercept_[0]), coefficients=coef, dropped=tuple(dropped))
        worst = min(wrong, key=lambda f: coef[f] * signs.get(f, 1))
        keep.remove(worst)
        dropped.append(worst)


def pr_curve(
    scores: Sequence[float],
    labels: Sequence[bool],
    flaggable: Sequence[bool] | None = None,
    weights: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Flag rule ``score >= threshold`` (only ``flaggable`` rows): precision, recall, share flagged per threshold,
    highest threshold first. One sort and cumulative sums; ``weights``: rows standing for that many clients."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=float)
    ok = np.ones(len(s), bool) if flaggable is None else np.asarray(flaggable, dtype=bool)
    total, pos = float(w.sum()), float(w[y].sum())
    order = np.argsort(-s[ok], kind="stable")
    ss, ww, yy = s[ok][order], w[ok][order], y[ok][order]
    flagged, tp = np.cumsum(ww), np.cumsum(ww * yy)
    last = np.r_[ss[1:] != ss[:-1], True] if len(ss) else np.zeros(0, bool)  # the last row of each threshold
    n, t = flagged[last], tp[last]
    out = pd.DataFrame(
        {
            "threshold": ss[last],
            "flagged": np.rint(n).astype(int),
            "true_positives": np.rint(t).astype(int),
            "precision": np.divide(t, n, out=np.zeros(len(n)), where=n > 0),
            "recall": t / pos if pos else np.zeros(len(n)),
            "share_flagged": n / total if total else np.zeros(len(n)),
        }
    )
    return out[["threshold", "flagged", "true_positives", "precision", "recall", "share_flagged"]]


def wilson_lower(successes: np.ndarray | float, n: int, z: float = 1.96) -> np.ndarray | float:
    """Lower bound of the Wilson score interval of a proportion ``successes / n`` (0 when n = 0)."""
    if n <= 0:
        return np.zeros_like(np.asarray(successes, dtype=float)) if np.ndim(successes) else 0.0
    p = np.asarray(successes, dtype=float) / n
    z2 = z * z
    lb = (p + z2 / (2 * n) - z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))) / (1 + z2 / n)
    return np.maximum(lb, 0.0) if np.ndim(lb) else float(max(lb, 0.0))


def point_at_recall(curve: pd.DataFrame, min_recall: float) -> dict | None:
    """The point with the highest threshold (fewest flags) whose recall is at least ``min_recall``."""
    ok = curve[curve.recall >= min_recall - 1e-12]
    if ok.empty:
        return None
    return _point(ok.sort_values(["threshold"], ascending=False).iloc[0])


def _point(row: pd.Series, **extra) -> dict:
    out = {
        k: (float(v) if k in ("threshold", "precision", "recall", "share_flagged", "recall_lb") else int(v))
        for k, v in row.items()
    }
    return out | extra


def curve_positives(curve: pd.DataFrame) -> int:
    """Positives behind a ``pr_curve`` (true positives / recall of any point with recall > 0; 0 without)."""
    hit = curve[curve.recall > 0]
    return int(round(hit.true_positives.iloc[0] / hit.recall.iloc[0])) if len(hit) else 0


def with_recall_lb(curve: pd.DataFrame, positives: int, z: float = 1.96) -> pd.DataFrame:
    """The curve with ``recall_lb``: the Wilson lower 95 % bound of each point's recall (``positives`` defaulters)."""
    return curve.assign(
        recall_lb=wilson_lower(curve.true_positives.to_numpy(dtype=float), positives, z) if len(curve) else []
    )


def warning_point(curve: pd.DataFrame, expert: Mapping, targets: Targets, positives: int | None = None) -> dict | None:
    """Warning operating point on the calibration window (``positives`` defaulters there; default: from the curve).

    1. ``precision_target``: the highest recall with precision >= 0.30 + 0.05 (the issue's target: precision >= 0.3
       at the highest recall) - kept if its recall is >= 0.70 WITH CONFIDENCE: the Wilson lower 95 % bound of its
       recall on the calibration window is >= 0.70 (point recall about 0.81 with 70 positives, 0.85 with 40).
    2. ``recall_lower_bound``: otherwise the fewest flags (highest threshold) whose recall lower bound is >= 0.70,
       if precision there is still >= 0.30 (the recall margin is bought with the precision margin).
    3. Fallback when no point has both: point 1 (or, when that catches fewer defaulters than the expert rules, the
       point at the rules' recall if it is more precise than the rules there: ``expert_recall``), with the recall
       margin not assured (the calibration's reason says so).
    Every point carries ``recall_lb`` and ``rule``."""
    n = curve_positives(curve) if positives is None else int(positives)
    c = with_recall_lb(curve, n, targets.recall_z)
    at_target = choose_operating_point(c, targets.warning_precision + targets.margin)
    if at_target is not None and at_target["recall_lb"] >= targets.warning_recall:
        return at_target | {"rule": "precision_target"}
    ok = c[(c.recall_lb >= targets.warning_recall) & (c.precision >= targets.warning_precision) & (c.flagged >= 5)]
    if not ok.empty:
        return _point(ok.sort_values("threshold", ascending=False).iloc[0], rule="recall_lower_bound")
    if at_target is not None and at_target["recall"] >= expert["recall"]:
        return at_target | {"rule": "precision_target"}
    matched = point_at_recall(c, expert["recall"]) if expert.get("recall") else None
    if matched is not None and matched["precision"] > expert["precision"]:
        return matched | {"rule": "expert_recall"}
    return None if at_target is None else at_target | {"rule": "precision_target"}


def watch_point(curve: pd.DataFrame, share: float, warning: Mapping | None) -> dict | None:
    """The watch point: the lowest threshold at which watch-or-above (score >= threshold) flags at most ``share`` of
    the population, never above the warning point (then the watch band is empty: watch = warning threshold)."""
    if warning is None or curve.empty:
        return None
    ok = curve[(curve.share_flagged <= share + 1e-12) & (curve.threshold <= warning["threshold"])]
    if ok.empty:
        w = curve[curve.threshold == warning["threshold"]]
        return _point(w.iloc[0], rule="warning_point") if len(w) else None
    return _point(ok.sort_values("threshold").iloc[0], rule="watch_share")


def choose_operating_point(curve: pd.DataFrame, min_precision: float, min_flagged: int = 5) -> dict | None:
    """The point with the highest recall among those with precision >= ``min_precision`` (ties: higher precision,
    then higher threshold); None when no point reaches it."""
    ok = curve[(curve.precision >= min_precision) & (curve.flagged >= min_flagged)]
    if ok.empty:
        return None
    return _point(ok.sort_values(["recall", "precision", "threshold"], ascending=[False, False, False]).iloc[0])


def choose_method(
    expert_warning: Mapping, score_warning: Mapping | None, targets: Targets = Targets()
) -> tuple[str, str]:
    """Keep what wins on the calibration window. A score point with its recall margin (``recall_lb`` >= 0.70) wins
    unless the expert rules have the recall margin too, meet precision >= target + margin and are at least as precise.
    Without the margin (old rule): the score needs a warning point meeting the precision target; the expert rules stay
    when they meet it too with at least the score's recall. Returns (method, reason)."""
    need = targets.warning_precision + targets.margin
    if score_warning is None:
        return "expert", (
            f"fallback to expert thresholds: the combined score has no warning point with precision >= "
            f"{need:.2f} on the calibration window"
        )
    ep, er, sp, sr = (
        expert_warning["precision"],
        expert_warning["recall"],
        score_warning["precision"],
        score_warning["recall"],
    )
    slb = score_warning.get("recall_lb")
    if slb is not None and slb >= targets.warning_recall:
        # the score's point has its recall margin: the rules stay only if they have it too, meet the precision target
        # with margin and are at least as precise
        elb = expert_warning.get("recall_lb", 0.0)
        if ep >= need and elb >= targets.warning_recall and ep >= sp:
            return "expert", (
                f"expert thresholds kept: they meet both warning targets (recall lower bound {elb:.2f}, "
                f"precision {ep:.2f}) at least as precisely as the combined score ({sp:.2f})"
            )
        return "score", (
            f"combined score wins on the calibration window: recall {sr:.2f} (lower bound {slb:.2f} >= "
            f"{targets.warning_recall:.2f}) at precision {sp:.2f} vs expert {ep:.2f} at recall {er:.2f}"
        )
    lbnote = f"; recall lower bound {targets.warning_recall:.2f} not reachable at precision >= {need:.2f}"
    if sr >= er and sp > ep:
        return "score", (
            f"combined score wins on the calibration window: precision {sp:.2f} vs expert {ep:.2f} at "
            f"recall {sr:.2f} vs {er:.2f}" + lbnote
        )
    expert_ok = ep >= need
    if expert_ok and er >= sr:
        return "expert", (
            "expert thresholds kept: they meet the warning target with at least the combined score's "
            "recall on the calibration window"
        )
    if not expert_ok and sp >= need:
        return (
            "score",
            f"combined score wins on the calibration window: expert precision {ep:.2f} below target" + lbnote,
        )
    if expert_ok:
        return "score", f"combined score wins on the calibration window: recall {sr:.2f} vs expert {er:.2f}" + lbnote
    return "expert", "expert thresholds kept: neither meets the warning target and the score does not dominate"
