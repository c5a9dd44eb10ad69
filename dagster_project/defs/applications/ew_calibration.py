"""Early-warning calibration: thresholds learned from the warehouse's own history (pure functions).

The asset (``ew_calibration_assets.py``) builds the fit and calibration slices in SQL from
``state.client_month_signals`` (identical client-months aggregated with a weight ``n``) and hands them here. Three
windows (``plan_windows``; months are first-of-month dates,
H = the evaluation horizon, 6 months; E = end - H, C = E - H)::

    first .... fit cutoffs t (features at t, outcome (t, t + H]) .... C .... calibration outcome .... E ....
    evaluation outcome .... end

* **fit window** (cutoffs ``fit_from..fit_to`` = first + 2 .. C, outcomes within E): the combined score's coefficients;
* **calibration window** (cutoff C, outcome (C, E]): the operating points and the choice score vs expert rules, on
  OUT-OF-FOLD scores (5 client folds: each client is scored by a model fitted on the other folds' clients), because
  fit and calibration outcomes share months;
* **evaluation window** (cutoff E, outcome (E, end]): only the evaluation reads it.

So the calibration only ever reads data up to E, and the evaluation judges it on the months after E.

Combined score: L2 logistic regression (class_weight balanced) on per-client features built from the signals seen
in the month (``feature_row``); every coefficient must have the business sign (more of a signal = more risk,
i.e. >= 0): a feature whose coefficient comes out negative is dropped and the model refitted (``fit_score``).
The operating points are chosen on the score's logit and stored as logits (``warning_logit`` ...) beside their
probabilities: levels compare the linear predictor with the logit (``ew_sql.levels_sql``), so no ``exp`` in DuckDB or
numpy can move a client across a point. (The gradient-boosting candidate of earlier versions is gone: it has no SQL
form, was off by default and lost where it was tried.)

Targets (``Targets``, ``watch_point``, ``warning_point``): watch = the lowest score at which watch-or-above flags at
most 20 % of the performing customers (``Targets.watch_share``; never above the warning point); warning = the
highest recall with precision >= 0.30 + 0.05 margin on the
calibration window if the Wilson lower 95 % bound of its recall is >= 0.70, else the fewest flags with that recall
bound at precision >= 0.30, else (no such point) the first point or the point at the expert rules' recall when that
recalls less and the matched point is more precise than the rules; critical = the highest recall with precision >=
0.60 + 0.05. Minimum history
(``history_check``): >= 12 months of data up to E and >= 20 positive outcomes in the fit window and in the
calibration window; otherwise, or when the score has no warning point, or when the expert rules win
(``choose_method``), the calibration says ``method = expert``: the fixed thresholds of ``early_warning.SIGNALS`` stay.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications.ew_features import FEATURES
from dagster_project.defs.applications.ew_score import (
    Score,
    Targets,
    choose_method,
    choose_operating_point,
    fit_score,
    logit,
    out_of_fold_scores,
    pr_curve,
    sigmoid,
    warning_point,
    watch_point,
    wilson_lower,
)
from dagster_project.lib.months import add_months, month_end, months_between

HORIZON_MONTHS = 6


FIT_WARMUP_MONTHS = 2  # the first fit cutoff is this many months after the first month (previous reports exist)


MIN_FIT_LABEL_MONTHS = 2  # a fit cutoff sees at least this many outcome months before C


LOOKBACK_MONTHS = 12  # lead time: first warning in the 12 months up to the cutoff (as early_warning_evaluation)


@dataclass(frozen=True)
class Windows:
    first_month: date
    fit_from: date  # first fit cutoff month
    fit_to: date  # last fit cutoff month
    calibration_cutoff: date  # C: features as of C; fit outcomes truncated at C
    evaluation_cutoff: date  # E: calibration outcome (C, E]; evaluation outcome (E, end]
    end_month: date
    horizon: int = HORIZON_MONTHS

    @property
    def history_months(self) -> int:
        """Months of data the calibration may use (first month .. E)."""
        return months_between(self.first_month, self.evaluation_cutoff) + 1

    def fit_cutoffs(self) -> list[date]:
        out, m = [], self.fit_from
        while m <= self.fit_to:
            out.append(m)
            m = add_months(m, 1)
        return out

    def to_dict(self) -> dict[str, str | int]:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in asdict(self).items()}


def plan_windows(first_month: date, end_month: date, horizon: int = HORIZON_MONTHS) -> Windows:
    """E = end - horizon, C = E - horizon, fit cutoffs first + warm-up .. C (outcome (t, t + horizon], within E)."""
    e = add_months(end_month, -horizon)
    c = add_months(e, -horizon)
    return Windows(
        first_month=first_month,
        fit_from=add_months(first_month, FIT_WARMUP_MONTHS),
        fit_to=c,
        calibration_cutoff=c,
        evaluation_cutoff=e,
        end_month=end_month,
        horizon=horizon,
    )


def history_check(
    w: Windows, fit_positives: int, calibration_positives: int, targets: Targets = Targets()
) -> tuple[bool, str]:
    """(enough history?, reason). Too little history -> the expert thresholds stay (documented fallback)."""
    problems = []
    if w.history_months < targets.min_history_months:
        problems.append(
            f"{w.history_months} months of history before the evaluation cutoff < {targets.min_history_months}"
        )
    if not w.fit_cutoffs():
        problems.append("no fit cutoff month")
    if fit_positives < targets.min_positives:
        problems.append(f"{fit_positives} positive outcomes in the fit window < {targets.min_positives}")
    if calibration_positives < targets.min_positives:
        problems.append(
            f"{calibration_positives} positive outcomes in the calibration window < {targets.min_positives}"
        )
    return (not problems, "; ".join(problems) if problems else "enough history")


def slice_at(
    frame: pd.DataFrame, population: Sequence[str], cutoff: date, first_default: Mapping[str, date], outcome_end: date
) -> pd.DataFrame:
    """Population at ``cutoff`` (clients not defaulted by then) with features at the cutoff month end (0 without a
    signal) and ``label`` = first 90+ dpd month in (cutoff, outcome_end]."""
    pop = [c for c in dict.fromkeys(population) if not (c in first_default and first_default[c] <= cutoff)]
    me = month_end(cutoff)
    at = frame[frame.month_end == me].drop(columns=["month_end"]).set_index("client_key")
    out = pd.DataFrame(index=pd.Index(pop, name="client_key")).join(at)
    out["has_signal"] = out.expert_rank.notna()
    out[list(FEATURES)] = out[list(FEATURES)].fillna(0.0)
    out["expert_rank"] = out.expert_rank.fillna(0).astype(int)
    out["label"] = [bool(c in first_default and cutoff < first_default[c] <= outcome_end) for c in out.index]
    out["cutoff"] = cutoff
    out["n"] = 1
    return out.reset_index()


@dataclass(frozen=True)
class Calibration:
    method: str  # "score" (combined score drives the levels) or "expert" (early_warning.SIGNALS thresholds)
    reason: str
    version: str = ""
    score: Score | None = None
    warning_threshold: float | None = None
    critical_threshold: float | None = None  # None with method score: critical by the expert rules
    watch_threshold: float | None = (
        None  # None with method score: watch by the expert rules (early_warning.expert_ranks)
    )
    windows: Windows | None = None
    warning_logit: float | None = None  # the points as the score's logit: what levels are compared with
    critical_logit: float | None = None
    watch_logit: float | None = None
    targets: Targets = field(default_factory=Targets)
    chosen: dict = field(default_factory=dict)  # method -> level -> metrics on the calibration window

    def to_dict(self) -> dict:
        d = {
            "version": self.version,
            "method": self.method,
            "reason": self.reason,
            "warning_threshold": self.warning_threshold,
            "critical_threshold": self.critical_threshold,
            "watch_threshold": self.watch_threshold,
            "warning_logit": self.warning_logit,
            "critical_logit": self.critical_logit,
            "watch_logit": self.watch_logit,
            "score": None
            if self.score is None
            else {
                "kind": self.score.kind,
                "intercept": self.score.intercept,
                "coefficients": self.score.coefficients,
                "dropped": list(self.score.dropped),
                "features": list(FEATURES),
            },
            "windows": None if self.windows is None else self.windows.to_dict(),
            "targets": asdict(self.targets),
            "chosen": self.chosen,
        }
        return d

    @staticmethod
    def from_dict(d: Mapping, store: Path | None = None) -> Calibration:
        """From the JSON form. Files written before the points were kept as logits get them from their probabilities;
        a gradient-boosting score (no longer supported: no SQL form) reads as the expert thresholds."""
        sc = d.get("score")
        w = d.get("windows")
        if sc and sc.get("kind", "logreg") != "logreg":
            return Calibration(
                method="expert",
                reason=f"calibration {d.get('version', '')} uses a {sc.get('kind')} "
                "score, no longer supported: expert thresholds",
                version=d.get("version", ""),
            )

        def lg(name: str) -> float | None:
            if d.get(f"{name}_logit") is not None:
                return float(d[f"{name}_logit"])
            t = d.get(f"{name}_threshold")
            return None if t is None else logit(float(t))

        return Calibration(
            method=d["method"],
            reason=d.get("reason", ""),
            version=d.get("version", ""),
            score=None
            if not sc
            else Score(
                float(sc["intercept"]),
                {k: float(v) for k, v in sc["coefficients"].items()},
                tuple(sc.get("dropped", ())),
            ),
            warning_threshold=d.get("warning_threshold"),
            critical_threshold=d.get("critical_threshold"),
            watch_threshold=d.get("watch_threshold"),
            warning_logit=lg("warning"),
            critical_logit=lg("critical"),
            watch_logit=lg("watch"),
            windows=None
            if not w
            else Windows(**{k: (date.fromisoformat(v) if isinstance(v, str) else v) for k, v in w.items()}),
            targets=Targets(**d.get("targets", {})),
            chosen=dict(d.get("chosen", {})),
        )


EXPERT = Calibration(method="expert", reason="no calibration yet: expert thresholds (early_warning.SIGNALS)")


def level_logits(cal: Calibration) -> tuple[float | None, float, float | None] | None:
    """(watch, warning, critical) points as logits when the score sets the levels, None when the expert thresholds
    do. A missing critical point: critical by the expert rules; a missing watch point: watch by the expert rules."""
    if cal.method != "score" or cal.score is None or cal.warning_threshold is None:
        return None

    def lg(lgt: float | None, t: float | None) -> float | None:
        return lgt if lgt is not None else (None if t is None else logit(t))

    return (
        lg(cal.watch_logit, cal.watch_threshold),
        lg(cal.warning_logit, cal.warning_threshold),
        lg(cal.critical_logit, cal.critical_threshold),
    )


def meets_bar(recall: float, precision: float, median_lead_months: float | None) -> bool:
    return bool(recall >= 0.70 and precision >= 0.30 and (median_lead_months or 0) >= 2)


def calibrate(
    frame: pd.DataFrame,
    population_by_month: Mapping[date, Sequence[str]],
    first_default: Mapping[str, date],
    windows: Windows,
    targets: Targets = Targets(),
) -> tuple[Calibration, dict[str, pd.DataFrame]]:
    """:func:`calibrate_slices` on slices cut from a client-month frame in pandas (small synthetic histories; the
    asset cuts the same slices in SQL, ``ew_calibration_assets.calibration_slices``)."""
    c_cut, e_cut = windows.calibration_cutoff, windows.evaluation_cutoff
    frame = frame[frame.month_end <= month_end(e_cut)]
    fit = [
        slice_at(frame, population_by_month.get(t, ()), t, first_default, min(add_months(t, windows.horizon), e_cut))
        for t in windows.fit_cutoffs()
    ]
    fit_df = pd.concat(fit, ignore_index=True) if fit else pd.DataFrame(columns=["label", "client_key", "n"])
    cal = slice_at(frame, population_by_month.get(c_cut, ()), c_cut, first_default, e_cut)
    fit_pos = int(fit_df.loc[fit_df.label.astype(bool), "client_key"].nunique()) if len(fit_df) else 0
    return calibrate_slices(fit_df, cal, windows, fit_pos, targets)


def calibrate_slices(
    fit_df: pd.DataFrame, cal: pd.DataFrame, windows: Windows, fit_pos: int, targets: Targets = Targets()
) -> tuple[Calibration, dict[str, pd.DataFrame]]:
    """Fit the combined score on the fit window, choose its operating points on the calibration window, compare with
    the expert rules there and keep what wins. Reads only data up to the evaluation cutoff E.

    ``fit_df`` / ``cal``: rows of (fold or client_key, label, has_signal, expert_rank, FEATURES, n = clients the row
    stands for); ``fit_pos``: distinct clients with a positive outcome in the fit window.
    Returns (calibration, {"curve": score PR curve on the calibration window (thresholds as probabilities),
    "calibration_slice": that slice}).
    """
    w_cal = cal["n"].to_numpy(dtype=float) if len(cal) else np.zeros(0)
    cal_pos = int(w_cal[cal.label.to_numpy(bool)].sum()) if len(cal) else 0
    ok, why = history_check(windows, fit_pos, cal_pos, targets)
    extras: dict[str, pd.DataFrame] = {"calibration_slice": cal}
    base = {"windows": windows, "targets": targets}
    counts = {
        "clients": int(w_cal.sum()),
        "positives": cal_pos,
        "fit_rows": int(fit_df["n"].sum()) if len(fit_df) else 0,
        "fit_positives": fit_pos,
    }
    if not ok:
        return Calibration(
            method="expert",
            reason=f"fallback to expert thresholds: {why}",
            chosen={"calibration_window": counts},
            **base,
        ), extras
    y_fit = fit_df.label.to_numpy(bool)
    y = cal.label.to_numpy(bool)
    chosen: dict[str, dict] = {"expert": {}, "score": {}}
    for level in ("warning", "critical"):
        flag = cal.expert_rank.to_numpy() >= ew.SEVERITY_RANK[level]
        tp, nf, npos = int(w_cal[flag & y].sum()), int(w_cal[flag].sum()), int(w_cal[y].sum())
        chosen["expert"][level] = {
            "flagged": nf,
            "true_positives": tp,
            "precision": tp / nf if nf else 0.0,
            "recall": tp / npos if npos else 0.0,
            "share_flagged": float(nf / w_cal.sum()) if w_cal.sum() else 0.0,
            "recall_lb": float(wilson_lower(tp, npos, targets.recall_z)),
        }
    ex = chosen["expert"]["warning"]
    z = out_of_fold_scores(fit_df, cal)  # logits, out of fold
    curve = pr_curve(z, cal.label, cal.has_signal, weights=w_cal)
    warn = warning_point(curve, ex, targets, positives=cal_pos)
    crit = choose_operating_point(curve, targets.critical_precision + targets.margin)
    score = fit_score(fit_df, y_fit, weights=fit_df["n"].to_numpy(dtype=float))
    chosen["score"] = {"warning": warn, "critical": crit}
    chosen["score_kind"] = "logreg"
    chosen["calibration_window"] = counts
    if crit is not None and warn is not None and crit["threshold"] < warn["threshold"]:
        crit = None  # a critical point below the warning point adds nothing: critical by the expert rules
        chosen["score"]["critical"] = None
    exc = chosen["expert"]["critical"]
    if (
        crit is not None
        and exc["precision"] >= targets.critical_precision + targets.margin
        and exc["recall"] >= crit["recall"]
    ):
        crit = None  # the expert critical rules meet the target with at least the score's recall: they stay
        chosen["score"]["critical"] = None
        chosen["critical_by"] = "expert rules (they win on the calibration window)"
    watch = watch_point(curve, targets.watch_share, warn)
    chosen["score"]["watch"] = watch
    for k, pt in list(chosen["score"].items()):  # points found on the logit: kept as logit, shown as probability
        if pt:
            chosen["score"][k] = pt | {"logit": pt["threshold"], "threshold": sigmoid(pt["threshold"])}
    pts = chosen["score"]
    extras["curve"] = curve.assign(threshold=[sigmoid(t) for t in curve.threshold])
    result = Calibration(
        method="score",
        reason="",
        score=score,
        chosen=chosen,
        warning_threshold=None if warn is None else pts["warning"]["threshold"],
        critical_threshold=None if crit is None else pts["critical"]["threshold"],
        watch_threshold=None if watch is None else pts["watch"]["threshold"],
        warning_logit=None if warn is None else pts["warning"]["logit"],
        critical_logit=None if crit is None else pts["critical"]["logit"],
        watch_logit=None if watch is None else pts["watch"]["logit"],
        **base,
    )
    method, reason = choose_method(ex, warn, targets)
    return replace(result, method=method, reason=reason), extras
