"""Early-warning calibration: thresholds learned from the warehouse's own history (pure functions).

The asset (``ew_calibration_assets.py``) pulls the monthly signal observations (``applications.monthly_observations``,
expert severities) and hands them here. Three windows (``plan_windows``; months are first-of-month dates,
H = the evaluation horizon, 6 months; E = end - H, C = E - H)::

    first .... fit cutoffs t (features at t, outcome (t, t + H]) .... C .... calibration outcome .... E .... evaluation outcome .... end

* **fit window** (cutoffs ``fit_from..fit_to`` = first + 2 .. C, outcomes within E): the combined score's coefficients;
* **calibration window** (cutoff C, outcome (C, E]): the operating points and the choice score vs expert rules, on
  OUT-OF-FOLD scores (5 client folds: each client is scored by a model fitted on the other folds' clients), because
  fit and calibration outcomes share months;
* **evaluation window** (cutoff E, outcome (E, end]): only the evaluation reads it.

So the calibration only ever reads data up to E, and the evaluation judges it on the months after E.

Combined score: L2 logistic regression (class_weight balanced) on per-client features built from the signals seen
in the month (``feature_row``); every coefficient must have the business sign (more of a signal = more risk,
i.e. >= 0): a feature whose coefficient comes out negative is dropped and the model refitted (``fit_score``).
Optional second candidate: monotonic gradient boosting (``fit_hgb``, off by default, ``SCORE_KINDS``).

Targets (``Targets``, ``watch_point``, ``warning_point``): watch = the lowest score at which watch-or-above flags at
most 20 % of the performing customers (``Targets.watch_share``; never above the warning point); warning = the highest recall with precision >= 0.30 + 0.05 margin on the
calibration window if the Wilson lower 95 % bound of its recall is >= 0.70, else the fewest flags with that recall
bound at precision >= 0.30, else (no such point) the first point or the point at the expert rules' recall when that
recalls less and the matched point is more precise than the rules; critical = the highest recall with precision >= 0.60 + 0.05. Minimum history
(``history_check``): >= 12 months of data up to E and >= 20 positive outcomes in the fit window and in the
calibration window; otherwise, or when the score has no warning point, or when the expert rules win
(``choose_method``), the calibration says ``method = expert``: the fixed thresholds of ``early_warning.SIGNALS`` stay.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from dagster_project.defs.applications import early_warning as ew
from dagster_project.lib.months import add_months, month_end

from dagster_project.defs.applications.ew_features import FEATURES, client_values, feature_row
from dagster_project.defs.applications.ew_score import (SCORE_KINDS, Score, Targets, choose_method,
                                                        choose_operating_point, fit_hgb, fit_score,
                                                        out_of_fold_scores, pr_curve, warning_point, watch_point,
                                                        wilson_lower)


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
        return ew.months_between(self.first_month, self.evaluation_cutoff) + 1

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
    return Windows(first_month=first_month, fit_from=add_months(first_month, FIT_WARMUP_MONTHS),
                   fit_to=c, calibration_cutoff=c, evaluation_cutoff=e, end_month=end_month, horizon=horizon)


def history_check(w: Windows, fit_positives: int, calibration_positives: int, targets: Targets = Targets()
                  ) -> tuple[bool, str]:
    """(enough history?, reason). Too little history -> the expert thresholds stay (documented fallback)."""
    problems = []
    if w.history_months < targets.min_history_months:
        problems.append(f"{w.history_months} months of history before the evaluation cutoff < {targets.min_history_months}")
    if not w.fit_cutoffs():
        problems.append("no fit cutoff month")
    if fit_positives < targets.min_positives:
        problems.append(f"{fit_positives} positive outcomes in the fit window < {targets.min_positives}")
    if calibration_positives < targets.min_positives:
        problems.append(f"{calibration_positives} positive outcomes in the calibration window < {targets.min_positives}")
    return (not problems, "; ".join(problems) if problems else "enough history")


def slice_at(frame: pd.DataFrame, population: Sequence[str], cutoff: date, first_default: Mapping[str, date],
             outcome_end: date) -> pd.DataFrame:
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
    return out.reset_index()


@dataclass(frozen=True)
class Calibration:
    method: str  # "score" (combined score drives the levels) or "expert" (early_warning.SIGNALS thresholds)
    reason: str
    version: str = ""
    score: Score | None = None
    warning_threshold: float | None = None
    critical_threshold: float | None = None  # None with method score: critical by the expert rules
    watch_threshold: float | None = None  # None with method score: watch by the expert rules (early_warning.expert_ranks)
    windows: Windows | None = None
    targets: Targets = field(default_factory=Targets)
    chosen: dict = field(default_factory=dict)  # method -> level -> metrics on the calibration window

    def to_dict(self) -> dict:
        d = {"version": self.version, "method": self.method, "reason": self.reason,
             "warning_threshold": self.warning_threshold, "critical_threshold": self.critical_threshold,
             "watch_threshold": self.watch_threshold,
             "score": None if self.score is None else {"kind": self.score.kind, "intercept": self.score.intercept,
                                                       "coefficients": self.score.coefficients,
                                                       "dropped": list(self.score.dropped), "features": list(FEATURES),
                                                       "model_file": self.score.model_file},
             "windows": None if self.windows is None else self.windows.to_dict(),
             "targets": asdict(self.targets), "chosen": self.chosen}
        return d

    @staticmethod
    def from_dict(d: Mapping, store: "Path | None" = None) -> "Calibration":
        """From the JSON form; an hgb model is loaded from ``store`` / model_file (joblib)."""
        sc = d.get("score")
        w = d.get("windows")
        model = None
        if sc and sc.get("kind") == "hgb" and store is not None and sc.get("model_file"):
            import joblib

            model = joblib.load(store / sc["model_file"])
        return Calibration(
            method=d["method"], reason=d.get("reason", ""), version=d.get("version", ""),
            score=None if not sc else Score(float(sc["intercept"]), {k: float(v) for k, v in sc["coefficients"].items()},
                                            tuple(sc.get("dropped", ())), kind=sc.get("kind", "logreg"), model=model,
                                            model_file=sc.get("model_file")),
            warning_threshold=d.get("warning_threshold"), critical_threshold=d.get("critical_threshold"),
            watch_threshold=d.get("watch_threshold"),
            windows=None if not w else Windows(**{k: (date.fromisoformat(v) if isinstance(v, str) else v)
                                                  for k, v in w.items()}),
            targets=Targets(**d.get("targets", {})), chosen=dict(d.get("chosen", {})))


EXPERT = Calibration(method="expert", reason="no calibration yet: expert thresholds (early_warning.SIGNALS)")


def apply_levels(cal: Calibration, active: Mapping[ew.Key, ew.Observation]) -> dict[ew.Key, ew.Observation]:
    """The month's observations at their levels, each with the threshold of its own severity; observations below the
    watch level are dropped (they raise no warning).

    ``expert``: the signal's own severity and threshold (``early_warning.expert_levels``). ``score``: every signal of a
    client carries the client's level from its combined score (the signals stay the reason codes; ``threshold`` = the
    score's point of that level, ``client_score`` = the score), except that without a critical point a signal critical
    by its own expert threshold is critical (``level_driver`` expert), and without a watch point (calibrations made
    before it existed) the watch level is the expert rules'."""
    if cal.method != "score" or cal.score is None or cal.warning_threshold is None:
        return ew.expert_levels(active)
    vals = client_values(active)
    expert = ew.expert_ranks(active)
    if not expert:
        return {}
    clients = list(expert)
    x = pd.DataFrame([feature_row(vals.get(c, {})) for c in clients], columns=list(FEATURES))
    p = np.asarray(cal.score.decision(x), dtype=float)
    ranks = _score_ranks(cal, p, np.array([expert[c] for c in clients]))
    level = {c: (int(r), float(pc)) for c, r, pc in zip(clients, ranks, p)}
    points = {1: cal.watch_threshold, 2: cal.warning_threshold, 3: cal.critical_threshold}
    out: dict[ew.Key, ew.Observation] = {}
    for key, o in active.items():
        rank, pc = level[key[0]]
        if cal.critical_threshold is None and o.severity == "critical":
            out[key] = replace(o, level_driver="expert")  # critical by the signal's own expert threshold
        elif rank == 1 and cal.watch_threshold is None:
            out[key] = replace(o, severity="watch", threshold=ew.threshold_for(key[1], "watch"), level_driver="expert",
                               client_score=pc)
        elif rank > 0:
            out[key] = replace(o, severity=ew.SEVERITIES[rank - 1], threshold=points[rank], level_driver="score",
                               client_score=pc)
    return out


def frame_levels(cal: Calibration, frame: pd.DataFrame) -> np.ndarray:
    """Level rank per row of a ``frame_from_months`` frame (same rule as ``apply_levels``, vectorised)."""
    return _levels(cal, frame, frame.expert_rank.to_numpy(dtype=int))


def _levels(cal: Calibration, x: pd.DataFrame, expert: np.ndarray) -> np.ndarray:
    """Client levels (0 = none, 1..3 = watch..critical) of feature rows ``x`` with expert levels ``expert``."""
    if cal.method != "score" or cal.score is None or cal.warning_threshold is None or len(x) == 0:
        return expert
    return _score_ranks(cal, np.asarray(cal.score.decision(x), dtype=float), expert)


def _score_ranks(cal: Calibration, p: np.ndarray, expert: np.ndarray) -> np.ndarray:
    """Levels from scores ``p``: the score's points; critical by the expert rules without a critical point, watch by
    the expert rules without a watch point."""
    watch = (p >= cal.watch_threshold) if cal.watch_threshold is not None else (expert >= 1)
    out = np.where(p >= cal.warning_threshold, 2, np.where(watch, 1, 0))
    if cal.critical_threshold is not None:
        out = np.where(p >= cal.critical_threshold, 3, out)
    else:
        out = np.where(expert >= 3, 3, out)
    return out


@dataclass(frozen=True)
class LevelEvaluation:
    level: str
    clients: int
    flagged: int
    positives: int
    true_positives: int
    precision: float
    recall: float
    share_flagged: float
    median_lead_months: float | None
    ci: dict[str, tuple[float, float]]


def evaluate_levels(frame: pd.DataFrame, ranks: np.ndarray, population: Sequence[str], cutoff: date,
                    first_default: Mapping[str, date], outcome_end: date, n_boot: int = 1000, seed: int = 17
                    ) -> list[LevelEvaluation]:
    """Per level: flagged = level >= it at the cutoff month; lead = months from the first warning+ month in the 12
    months up to the cutoff to the first 90+ dpd month (as ``early_warning_evaluation``); bootstrap 95 % CIs over
    clients (``n_boot`` resamples, seeded)."""
    me = month_end(cutoff)
    pop = [c for c in dict.fromkeys(population) if not (c in first_default and first_default[c] <= cutoff)]
    idx = {c: i for i, c in enumerate(pop)}
    n = len(pop)
    y = np.zeros(n, bool)
    dflt: list[date | None] = [None] * n
    for c, i in idx.items():
        d = first_default.get(c)
        if d is not None and cutoff < d <= outcome_end:
            y[i] = True
            dflt[i] = d
    f = frame.assign(rank=ranks)
    recent = f[(f.month_end <= me) & (f.month_end.map(lambda m: ew.months_between(m, me) < LOOKBACK_MONTHS))]
    at = f[f.month_end == me]
    rng = np.random.default_rng(seed)
    boots = rng.integers(0, n, size=(n_boot, n)) if n else np.zeros((0, 0), int)
    out = []
    for level in ew.SEVERITIES:
        need = ew.SEVERITY_RANK[level]
        flagged = np.zeros(n, bool)
        for c in at.loc[at["rank"] >= need, "client_key"]:
            if c in idx:
                flagged[idx[c]] = True
        first_hi = recent[recent["rank"] >= max(need, 2)].groupby("client_key").month_end.min().to_dict()
        lead = np.full(n, np.nan)
        for i in np.flatnonzero(flagged & y):
            c = pop[i]
            since = min(first_hi.get(c, me), me)
            lead[i] = ew.months_between(since, dflt[i])
        ev = _rates(flagged, y, lead)
        ci: dict[str, tuple[float, float]] = {}
        if n and n_boot:
            stats = np.array([_rates(flagged[b], y[b], lead[b]) for b in boots], dtype=float)
            for j, name in enumerate(("precision", "recall", "share_flagged", "median_lead_months")):
                col = stats[:, j][~np.isnan(stats[:, j])]
                ci[name] = (float(np.percentile(col, 2.5)), float(np.percentile(col, 97.5))) if len(col) else (
                    float("nan"), float("nan"))
        out.append(LevelEvaluation(level=level, clients=n, flagged=int(flagged.sum()), positives=int(y.sum()),
                                   true_positives=int((flagged & y).sum()), precision=ev[0], recall=ev[1],
                                   share_flagged=ev[2], median_lead_months=None if np.isnan(ev[3]) else ev[3], ci=ci))
    return out


def _rates(flagged: np.ndarray, y: np.ndarray, lead: np.ndarray) -> tuple[float, float, float, float]:
    nf, npos = flagged.sum(), y.sum()
    tp = flagged & y
    leads = lead[tp]
    return (float(tp.sum() / nf) if nf else 0.0, float(tp.sum() / npos) if npos else 0.0,
            float(nf / len(flagged)) if len(flagged) else 0.0,
            float(statistics.median(leads.tolist())) if len(leads) else float("nan"))


def meets_bar(e: LevelEvaluation) -> bool:
    return bool(e.recall >= 0.70 and e.precision >= 0.30 and (e.median_lead_months or 0) >= 2)


def calibrate(frame: pd.DataFrame, population_by_month: Mapping[date, Sequence[str]], first_default: Mapping[str, date],
              windows: Windows, targets: Targets = Targets()) -> tuple[Calibration, dict[str, pd.DataFrame]]:
    """Fit the combined score on the fit window, choose its operating points on the calibration window, compare with
    the expert rules there and keep what wins. Reads only data up to the evaluation cutoff E.

    Returns (calibration, {"curve": score PR curve on the calibration window, "calibration_slice": that slice}).
    """
    c_cut, e_cut = windows.calibration_cutoff, windows.evaluation_cutoff
    frame = frame[frame.month_end <= month_end(e_cut)]
    fit = [slice_at(frame, population_by_month.get(t, ()), t, first_default,
                    min(add_months(t, windows.horizon), e_cut)) for t in windows.fit_cutoffs()]
    fit_df = pd.concat(fit, ignore_index=True) if fit else pd.DataFrame(columns=["label", "client_key"])
    cal = slice_at(frame, population_by_month.get(c_cut, ()), c_cut, first_default, e_cut)
    fit_pos = int(fit_df.loc[fit_df.label.astype(bool), "client_key"].nunique()) if len(fit_df) else 0
    cal_pos = int(cal.label.sum())
    ok, why = history_check(windows, fit_pos, cal_pos, targets)
    extras: dict[str, pd.DataFrame] = {"calibration_slice": cal}
    base = {"windows": windows, "targets": targets}
    counts = {"clients": int(len(cal)), "positives": cal_pos, "fit_rows": int(len(fit_df)), "fit_positives": fit_pos}
    if not ok:
        return Calibration(method="expert", reason=f"fallback to expert thresholds: {why}",
                           chosen={"calibration_window": counts}, **base), extras
    y_fit = fit_df.label.to_numpy(bool)
    y = cal.label.to_numpy(bool)
    chosen: dict[str, dict] = {"expert": {}, "score": {}}
    for level in ("warning", "critical"):
        need = ew.SEVERITY_RANK[level]
        flag = cal.expert_rank.to_numpy() >= need
        tp = int((flag & y).sum())
        nf, npos = int(flag.sum()), int(y.sum())
        chosen["expert"][level] = {"flagged": nf, "true_positives": tp, "precision": tp / nf if nf else 0.0,
                                   "recall": tp / npos if npos else 0.0, "share_flagged": float(flag.mean()),
                                   "recall_lb": float(wilson_lower(tp, npos, targets.recall_z))}
    ex = chosen["expert"]["warning"]
    candidates: dict[str, dict] = {}
    for kind in SCORE_KINDS:  # both on out-of-fold scores of the same calibration window
        p = out_of_fold_scores(fit_df, cal, kind=kind)
        curve = pr_curve(p, cal.label, cal.has_signal)
        candidates[kind] = {"curve": curve,
                            "warning": warning_point(curve, ex, targets, positives=cal_pos),
                            "critical": choose_operating_point(curve, targets.critical_precision + targets.margin)}
    # the candidate with the warning point of the highest recall (then precision); logreg on ties (simpler)
    best = max(SCORE_KINDS, key=lambda k: (candidates[k]["warning"] is not None,
                                           (candidates[k]["warning"] or {}).get("recall", 0.0),
                                           (candidates[k]["warning"] or {}).get("precision", 0.0), k == "logreg"))
    score = fit_hgb(fit_df, y_fit) if best == "hgb" else fit_score(fit_df, y_fit)
    curve, warn, crit = candidates[best]["curve"], candidates[best]["warning"], candidates[best]["critical"]
    extras["curve"] = curve
    extras["curves"] = {k: v["curve"] for k, v in candidates.items()}
    chosen["score"] = {"warning": warn, "critical": crit}
    chosen["candidates"] = {k: {"warning": v["warning"], "critical": v["critical"]} for k, v in candidates.items()}
    chosen["score_kind"] = best
    chosen["calibration_window"] = counts
    if crit is not None and warn is not None and crit["threshold"] < warn["threshold"]:
        crit = None  # a critical point below the warning point adds nothing: critical by the expert rules
        chosen["score"]["critical"] = None
    exc = chosen["expert"]["critical"]
    if crit is not None and exc["precision"] >= targets.critical_precision + targets.margin and exc["recall"] >= crit["recall"]:
        crit = None  # the expert critical rules meet the target with at least the score's recall: they stay
        chosen["score"]["critical"] = None
        chosen["critical_by"] = "expert rules (they win on the calibration window)"
    watch = watch_point(curve, targets.watch_share, warn)
    chosen["score"]["watch"] = watch
    result = Calibration(method="score", reason="", score=score, warning_threshold=None if warn is None else warn["threshold"],
                         critical_threshold=None if crit is None else crit["threshold"],
                         watch_threshold=None if watch is None else watch["threshold"], chosen=chosen, **base)
    method, reason = choose_method(ex, warn, targets)
    return replace(result, method=method, reason=reason), extras
