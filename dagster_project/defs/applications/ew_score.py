"""The combined early-warning score with sign constraints, its out-of-fold scores and operating points."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd


from dagster_project.defs.applications.ew_features import FEATURES

if TYPE_CHECKING:
    from dagster_project.defs.applications.ew_calibration import Targets


@dataclass(frozen=True)
class Score:
    intercept: float
    coefficients: dict[str, float]  # only the kept features (logreg)
    dropped: tuple[str, ...] = ()  # features dropped for a wrong (negative) sign
    kind: str = "logreg"  # "logreg" (coefficients) or "hgb" (monotonic gradient boosting in ``model``)
    model: object | None = field(default=None, compare=False, repr=False)
    model_file: str | None = None  # hgb: file name of the pickled model next to the version's JSON

    def decision(self, x: pd.DataFrame | Mapping[str, float]) -> np.ndarray | float:
        if self.kind == "hgb":
            if isinstance(x, pd.DataFrame):
                return self.model.predict_proba(x[list(FEATURES)].to_numpy(dtype=float))[:, 1]
            return float(self.model.predict_proba(np.array([[x.get(f, 0.0) for f in FEATURES]]))[0, 1])
        if isinstance(x, pd.DataFrame):
            z = np.full(len(x), self.intercept)
            for f, c in self.coefficients.items():
                z = z + c * x[f].to_numpy(dtype=float)
            return 1.0 / (1.0 + np.exp(-z))
        z = self.intercept + sum(c * x.get(f, 0.0) for f, c in self.coefficients.items())
        return 1.0 / (1.0 + math.exp(-z))


def client_fold(client_key: str, folds: int = 5) -> int:
    """Stable fold of a client (cross-fitting: the operating points are chosen on clients the score was not fitted on)."""
    import hashlib

    return int(hashlib.sha256(client_key.encode("utf-8")).hexdigest()[:8], 16) % folds


def fit_hgb(X: pd.DataFrame, y: Sequence[bool], features: Sequence[str] = FEATURES) -> Score:
    """Gradient boosting (scikit-learn HistGradientBoostingClassifier, class_weight balanced) with an increasing
    monotonic constraint on every feature: more of any signal never lowers the score (the business sign)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("need both outcomes to fit a score")
    m = HistGradientBoostingClassifier(monotonic_cst=[1] * len(features), max_iter=200, learning_rate=0.05,
                                       max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0,
                                       class_weight="balanced", early_stopping=False, random_state=0)
    m.fit(X[list(features)].to_numpy(dtype=float), y)
    return Score(intercept=0.0, coefficients={}, kind="hgb", model=m)


SCORE_KINDS = ("logreg",)  # add "hgb" to compare the gradient boosting too (5x the fit time; lost on seeds 5 and 77)


def out_of_fold_scores(fit_df: pd.DataFrame, target: pd.DataFrame, folds: int = 5, kind: str = "logreg") -> np.ndarray:
    """Scores of ``target`` rows, each from a score fitted on the fit rows of the OTHER client folds."""
    fitter = fit_hgb if kind == "hgb" else fit_score
    ff = np.array([client_fold(c, folds) for c in fit_df.client_key])
    tf = np.array([client_fold(c, folds) for c in target.client_key])
    out = np.zeros(len(target))
    for k in range(folds):
        tr = ff != k
        sc = fitter(fit_df[tr], fit_df.label.to_numpy(bool)[tr])
        if (tf == k).any():
            out[tf == k] = np.asarray(sc.decision(target[tf == k]), dtype=float)
    return out


def fit_score(X: pd.DataFrame, y: Sequence[bool], features: Sequence[str] = FEATURES, c: float = 1.0,
              signs: Mapping[str, int] | None = None) -> Score:
    """L2 logistic regression (class_weight balanced); a feature with the wrong sign is dropped and the rest refitted.

    ``signs``: expected sign per feature (+1: coefficient >= 0, -1: <= 0); default +1 for every feature.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("need both outcomes to fit a score")
    signs = dict(signs or {})
    keep = [f for f in features if X[f].to_numpy(dtype=float).std() > 0]
    dropped = [f for f in features if f not in keep]
    while True:
        if not keep:
            return Score(intercept=0.0, coefficients={}, dropped=tuple(dropped))
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        lr.fit(X[keep].to_numpy(dtype=float), y)
        coef = dict(zip(keep, lr.coef_[0].tolist()))
        wrong = [f for f in keep if coef[f] * signs.get(f, 1) < 0]
        if not wrong:
            return Score(intercept=float(lr.intercept_[0]), coefficients=coef, dropped=tuple(dropped))
        worst = min(wrong, key=lambda f: coef[f] * signs.get(f, 1))
        keep.remove(worst)
        dropped.append(worst)


def pr_curve(scores: Sequence[float], labels: Sequence[bool], flaggable: Sequence[bool] | None = None) -> pd.DataFrame:
    """Flag rule ``score >= threshold`` (only ``flaggable`` rows): precision, recall, share flagged per threshold."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    ok = np.ones(len(s), bool) if flaggable is None else np.asarray(flaggable, dtype=bool)
    pos = int(y.sum())
    cand = np.unique(s[ok])[::-1]
    rows = []
    for t in cand:
        f = ok & (s >= t)
        n, tp = int(f.sum()), int((f & y).sum())
        rows.append({"threshold": float(t), "flagged": n, "true_positives": tp, "precision": tp / n if n else 0.0,
                     "recall": tp / pos if pos else 0.0, "share_flagged": n / len(s) if len(s) else 0.0})
    return pd.DataFrame(rows, columns=["threshold", "flagged", "true_positives", "precision", "recall", "share_flagged"])


def point_at_recall(curve: pd.DataFrame, min_recall: float) -> dict | None:
    """The point with the highest threshold (fewest flags) whose recall is at least ``min_recall``."""
    ok = curve[curve.recall >= min_recall - 1e-12]
    if ok.empty:
        return None
    best = ok.sort_values(["threshold"], ascending=False).iloc[0]
    return {k: (float(v) if k in ("threshold", "precision", "recall", "share_flagged") else int(v)) for k, v in best.items()}


def warning_point(curve: pd.DataFrame, expert: Mapping, targets: "Targets") -> dict | None:
    """Warning operating point: the highest recall with precision >= target + margin; when that catches fewer
    defaulters than the expert rules on the same window, the point at the rules' recall instead if it is more precise
    than the rules there (the score never catches fewer defaulters than the rules it replaces)."""
    at_target = choose_operating_point(curve, targets.warning_precision + targets.margin)
    if at_target is not None and at_target["recall"] >= expert["recall"]:
        return at_target
    matched = point_at_recall(curve, expert["recall"]) if expert.get("recall") else None
    if matched is not None and matched["precision"] > expert["precision"]:
        return matched
    return at_target


def choose_operating_point(curve: pd.DataFrame, min_precision: float, min_flagged: int = 5) -> dict | None:
    """The point with the highest recall among those with precision >= ``min_precision`` (ties: higher precision,
    then higher threshold); None when no point reaches it."""
    ok = curve[(curve.precision >= min_precision) & (curve.flagged >= min_flagged)]
    if ok.empty:
        return None
    best = ok.sort_values(["recall", "precision", "threshold"], ascending=[False, False, False]).iloc[0]
    return {k: (float(v) if k in ("threshold", "precision", "recall", "share_flagged") else int(v)) for k, v in best.items()}
