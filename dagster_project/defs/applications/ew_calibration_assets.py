"""The early-warning calibration asset (group ``applications``) and its model store.

``ml/early_warning_calibration`` learns the watch / warning / critical operating points from the warehouse's own
history (pure logic and windows: ``ew_calibration.py``; documented in docs/applications.md):

* runs a new calibration on ``monthly_retrain`` and, in any job, when no calibration exists yet (the first daily
  run calibrates once so that thresholds exist); otherwise it reuses the latest version;
* every calibration is a versioned JSON file ``$LENDSEG_MODEL_DIR/ew_calibration/cNNNN.json`` (+ ``cNNNN.png``, the
  precision/recall chart); ``ml.early_warning_calibration`` lists the versions with their method, chosen points and
  windows (rewritten from the files on every run);
* ``marts/risk_early_warnings`` and ``marts/early_warning_evaluation`` read the latest version
  (``current_calibration``); too little history or no operating point meeting the targets -> ``method = expert``,
  the fixed thresholds of ``early_warning.SIGNALS``.
"""


import base64
import io
import json
import os
from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications import ew_calibration as cal
from dagster_project.lib.settings import Settings
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect

CALIBRATION = dg.AssetKey(["ml", "early_warning_calibration"])
STORE = "ew_calibration"
TABLE = "ml.early_warning_calibration"
COMPARISON_TABLE = "marts.early_warning_method_comparison"
N_BOOTSTRAP = 1000


# ------------------------------------------------------------------------------------------------------------
# model store
# ------------------------------------------------------------------------------------------------------------

def store_dir(settings: Settings) -> Path:
    """$LENDSEG_MODEL_DIR/ew_calibration (same model store as the segmentation model)."""
    return settings.models_dir / STORE


def versions(sdir: Path) -> list[str]:
    return sorted(p.stem for p in sdir.glob("c[0-9][0-9][0-9][0-9]*.json") if p.stem[1:].isdigit())


def next_version(sdir: Path) -> str:
    v = versions(sdir)
    return f"c{(int(v[-1][1:]) + 1) if v else 1:04d}"


def load_version(sdir: Path, version: str) -> dict:
    return json.loads((sdir / f"{version}.json").read_text())


def current_calibration(settings: Settings) -> cal.Calibration:
    """The latest calibration version, or the expert thresholds when none exists yet."""
    sdir = store_dir(settings)
    v = versions(sdir)
    return cal.Calibration.from_dict(load_version(sdir, v[-1]), sdir) if v else cal.EXPERT


def save_version(sdir: Path, c: cal.Calibration, extra: dict, png: bytes | None) -> cal.Calibration:
    sdir.mkdir(parents=True, exist_ok=True)
    version = next_version(sdir)
    c = replace(c, version=version)
    if c.score is not None and c.score.kind == "hgb":
        import joblib

        joblib.dump(c.score.model, sdir / f"{version}.joblib")
        c = replace(c, score=replace(c.score, model_file=f"{version}.joblib"))
    data = {**c.to_dict(), **extra}
    if png is not None:
        (sdir / f"{version}.png").write_bytes(png)
    tmp = sdir / f".{version}.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, sdir / f"{version}.json")
    return c


CALIBRATION_COLUMNS = {
    "version": "Calibration version (c0001, c0002, ...); file $LENDSEG_MODEL_DIR/ew_calibration/<version>.json.",
    "created_at": "When the version was calibrated (UTC).",
    "run_id": "Dagster run that calibrated it.",
    "method": "score (the combined score sets warning/critical) or expert (fixed thresholds of early_warning.SIGNALS).",
    "reason": "Why this method: the comparison on the calibration window, or the fallback reason.",
    "warning_threshold": "Combined-score probability from which a client with a signal is at warning (null: expert rules).",
    "critical_threshold": "Combined-score probability from which the level is critical (null: critical by the expert rules).",
    "warning_precision": "Precision of the chosen warning point on the calibration window.",
    "warning_recall": "Recall of the chosen warning point on the calibration window.",
    "warning_share_flagged": "Share of the calibration-window population flagged at warning or above.",
    "critical_precision": "Precision of the chosen critical point on the calibration window.",
    "critical_recall": "Recall of the chosen critical point on the calibration window.",
    "expert_warning_precision": "Precision of the expert rules at warning on the same calibration window.",
    "expert_warning_recall": "Recall of the expert rules at warning on the same calibration window.",
    "coefficients": "JSON: combined-score coefficients (logistic regression, all >= 0) and the intercept; for the monotonic gradient boosting the model file.",
    "dropped_features": "Features dropped for a wrong business sign or no variance (JSON list).",
    "fit_from": "First fit cutoff month (features as of it, outcome up to calibration_cutoff).",
    "fit_to": "Last fit cutoff month.",
    "calibration_cutoff": "Operating points chosen on features as of this month and first 90+ dpd after it up to evaluation_cutoff.",
    "evaluation_cutoff": "The calibration reads no data after this month; it is judged on the months after it.",
    "end_month": "Last month of data when the calibration ran.",
    "history_months": "Months of data before (and including) the evaluation cutoff.",
    "fit_positives": "Clients with a first 90+ dpd in the fit window.",
    "calibration_positives": "Clients with a first 90+ dpd in the calibration window.",
}


def sync_table(con: duckdb.DuckDBPyConnection, sdir: Path) -> int:
    """(Re)write ml.early_warning_calibration from the version files."""
    from dagster_project.lib.tables import replace_table as publish_table

    rows = []
    for v in versions(sdir):
        d = load_version(sdir, v)
        ch = d.get("chosen") or {}
        sw, sc, ex = (ch.get("score") or {}).get("warning") or {}, (ch.get("score") or {}).get("critical") or {}, \
            (ch.get("expert") or {}).get("warning") or {}
        w = d.get("windows") or {}
        cw = ch.get("calibration_window") or {}
        score = d.get("score") or {}
        rows.append({
            "version": v, "created_at": d.get("created_at"), "run_id": d.get("run_id"), "method": d["method"],
            "reason": d.get("reason"), "warning_threshold": d.get("warning_threshold"),
            "critical_threshold": d.get("critical_threshold"),
            "warning_precision": sw.get("precision"), "warning_recall": sw.get("recall"),
            "warning_share_flagged": sw.get("share_flagged"), "critical_precision": sc.get("precision"),
            "critical_recall": sc.get("recall"), "expert_warning_precision": ex.get("precision"),
            "expert_warning_recall": ex.get("recall"),
            "coefficients": (json.dumps({"intercept": score.get("intercept"), **(score.get("coefficients") or {})})
                             if score.get("kind", "logreg") == "logreg" else
                             json.dumps({"model": "hgb", "model_file": score.get("model_file")})) if score else None,
            "dropped_features": json.dumps(score.get("dropped", [])) if score else None,
            "fit_from": w.get("fit_from"), "fit_to": w.get("fit_to"), "calibration_cutoff": w.get("calibration_cutoff"),
            "evaluation_cutoff": w.get("evaluation_cutoff"), "end_month": w.get("end_month"),
            "history_months": (cal.Calibration.from_dict(d).windows.history_months if w else None),
            "fit_positives": cw.get("fit_positives"), "calibration_positives": cw.get("positives")})
    df = pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.register("cal_df", df)
    try:
        return publish_table(con, TABLE, """
            SELECT version, created_at::TIMESTAMP AS created_at, run_id::VARCHAR AS run_id, method, reason::VARCHAR AS reason,
                warning_threshold::DOUBLE AS warning_threshold, critical_threshold::DOUBLE AS critical_threshold,
                warning_precision::DOUBLE AS warning_precision, warning_recall::DOUBLE AS warning_recall,
                warning_share_flagged::DOUBLE AS warning_share_flagged, critical_precision::DOUBLE AS critical_precision,
                critical_recall::DOUBLE AS critical_recall, expert_warning_precision::DOUBLE AS expert_warning_precision,
                expert_warning_recall::DOUBLE AS expert_warning_recall, coefficients::VARCHAR AS coefficients,
                dropped_features::VARCHAR AS dropped_features, fit_from::DATE AS fit_from, fit_to::DATE AS fit_to,
                calibration_cutoff::DATE AS calibration_cutoff, evaluation_cutoff::DATE AS evaluation_cutoff,
                end_month::DATE AS end_month, history_months::INTEGER AS history_months,
                fit_positives::INTEGER AS fit_positives, calibration_positives::INTEGER AS calibration_positives
            FROM cal_df ORDER BY version""",
            "Early-warning calibrations: one row per version (files in $LENDSEG_MODEL_DIR/ew_calibration).",
            CALIBRATION_COLUMNS)
    finally:
        con.unregister("cal_df")


# ------------------------------------------------------------------------------------------------------------
# history from the build database
# ------------------------------------------------------------------------------------------------------------

def load_history(con: duckdb.DuckDBPyConnection, end: date | None = None
                 ) -> tuple[pd.DataFrame, dict[date, list[str]], dict[str, date], date | None, date | None]:
    """(signal frame with expert levels, clients with a facility per month, first 90+ dpd month, first, end month)."""
    from dagster_project.defs.applications.as_of import as_of_month, first_default_sql
    from dagster_project.defs.applications.early_warning_history import monthly_observations

    end = end or as_of_month(con)
    first = con.execute("SELECT min(snapshot_month) FROM marts.fct_product_usage_monthly").fetchall()[0][0]
    if first is None or end is None or first > end:
        return cal.frame_from_months([]), {}, {}, first, end
    months = monthly_observations(con, first, end)
    frame = cal.frame_from_months(months)
    pop: dict[date, list[str]] = {}
    for m, ck in con.execute("SELECT DISTINCT snapshot_month, client_key FROM marts.fct_product_usage_monthly "
                             "ORDER BY 1, 2").fetchall():
        pop.setdefault(m, []).append(ck)
    first_default = dict(con.execute(first_default_sql()).fetchall())
    return frame, pop, first_default, first, end


# ------------------------------------------------------------------------------------------------------------
# charts and the comparison on the evaluation window
# ------------------------------------------------------------------------------------------------------------

def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def pr_chart(curve: pd.DataFrame | None, c: cal.Calibration) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    if curve is not None and not curve.empty:
        ax.plot(curve.recall, curve.precision, c="tab:blue", lw=1.5, label="combined score (calibration window)")
    for name, mk, col in (("warning", "o", "tab:orange"), ("critical", "s", "tab:red")):
        pt = ((c.chosen.get("score") or {}).get(name))
        if pt:
            ax.scatter([pt["recall"]], [pt["precision"]], marker=mk, s=80, c=col, zorder=3,
                       label=f"score {name} point (p >= {pt['threshold']:.3f})")
        ex = (c.chosen.get("expert") or {}).get(name)
        if ex:
            ax.scatter([ex["recall"]], [ex["precision"]], marker=mk, s=80, facecolors="none", edgecolors=col, zorder=3,
                       label=f"expert rules at {name}")
    t = c.targets
    ax.axhline(t.warning_precision, ls=":", c="tab:orange", lw=1)
    ax.axhline(t.critical_precision, ls=":", c="tab:red", lw=1)
    ax.axvline(0.7, ls="--", c="gray", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    w = c.windows
    ax.set_title(f"Early-warning calibration ({c.method})" + (
        f": features at {w.calibration_cutoff:%Y-%m}, outcome to {w.evaluation_cutoff:%Y-%m}" if w else ""))
    ax.legend(fontsize=7, loc="lower left")
    return _png(fig)


def points_markdown(c: cal.Calibration) -> str:
    lines = ["| method | level | threshold | flagged | precision | recall | share flagged |", "|---|---|---:|---:|---:|---:|---:|"]
    for method in ("score", "expert"):
        for level in ("warning", "critical"):
            p = (c.chosen.get(method) or {}).get(level)
            if not p:
                lines.append(f"| {method} | {level} | none meets the target | | | | |")
                continue
            thr = f"{p['threshold']:.4f}" if "threshold" in p else "expert rules"
            lines.append(f"| {method} | {level} | {thr} | {p['flagged']} | {p['precision']:.3f} | {p['recall']:.3f} | "
                         f"{p['share_flagged']:.3f} |")
    return "\n".join(lines)


COMPARISON_COLUMNS = {
    "method": "expert (fixed thresholds) or score (combined score at the calibrated points).",
    "in_force": "True for the method the current calibration uses (the one behind marts.risk_early_warnings).",
    "calibration_version": "Calibration version whose points were evaluated (expert: the fallback).",
    "flag_level": "Flagged = level at or above this at the cutoff.",
    "cutoff_month": "Evaluation cutoff E: levels as of this month (after the calibration's windows).",
    "outcome_end_month": "Outcome window end.",
    "clients": "Clients with a facility in the cutoff month not at 90+ dpd by then.",
    "flagged": "Clients flagged at the cutoff.",
    "positives": "Clients first reaching 90+ dpd in the outcome window.",
    "true_positives": "Flagged positives.",
    "precision": "true_positives / flagged.",
    "precision_ci_low": "Bootstrap 95 % interval (clients resampled, 1,000 times, seeded): low.",
    "precision_ci_high": "Bootstrap 95 % interval: high.",
    "recall": "true_positives / positives.",
    "recall_ci_low": "Bootstrap 95 % interval: low.",
    "recall_ci_high": "Bootstrap 95 % interval: high.",
    "share_flagged": "flagged / clients.",
    "share_flagged_ci_low": "Bootstrap 95 % interval: low.",
    "share_flagged_ci_high": "Bootstrap 95 % interval: high.",
    "median_lead_months": "Median months from the first warning+ month (12 months up to the cutoff) to the first 90+ dpd.",
    "lead_ci_low": "Bootstrap 95 % interval of the median lead: low.",
    "lead_ci_high": "Bootstrap 95 % interval of the median lead: high.",
    "meets_bar": "recall >= 0.70, precision >= 0.30 and median lead >= 2 months.",
}


def compare_methods(frame: pd.DataFrame, pop: dict[date, list[str]], first_default: dict[str, date], c: cal.Calibration,
                    cutoff: date, end: date, n_boot: int = N_BOOTSTRAP) -> pd.DataFrame:
    """Expert rules vs combined score (when the calibration has one) on the evaluation window, with bootstrap CIs."""
    methods = [("expert", cal.EXPERT)]
    if c.score is not None and c.warning_threshold is not None:
        methods.append(("score", replace(c, method="score")))
    rows = []
    for name, m in methods:
        evs = cal.evaluate_levels(frame, cal.frame_levels(m, frame), pop.get(cutoff, []), cutoff, first_default, end,
                                  n_boot=n_boot)
        for e in evs:
            nan2 = (float("nan"), float("nan"))
            rows.append({"method": name, "in_force": name == c.method, "calibration_version": c.version or "expert",
                         "flag_level": e.level, "cutoff_month": cutoff, "outcome_end_month": end, "clients": e.clients,
                         "flagged": e.flagged, "positives": e.positives, "true_positives": e.true_positives,
                         "precision": e.precision, "precision_ci_low": e.ci.get("precision", nan2)[0],
                         "precision_ci_high": e.ci.get("precision", nan2)[1], "recall": e.recall,
                         "recall_ci_low": e.ci.get("recall", nan2)[0], "recall_ci_high": e.ci.get("recall", nan2)[1],
                         "share_flagged": e.share_flagged, "share_flagged_ci_low": e.ci.get("share_flagged", nan2)[0],
                         "share_flagged_ci_high": e.ci.get("share_flagged", nan2)[1],
                         "median_lead_months": e.median_lead_months,
                         "lead_ci_low": e.ci.get("median_lead_months", nan2)[0],
                         "lead_ci_high": e.ci.get("median_lead_months", nan2)[1], "meets_bar": cal.meets_bar(e)})
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def calibration_for_evaluation(c: cal.Calibration, cutoff: date) -> cal.Calibration:
    """The calibration if it read no data after ``cutoff`` (never judged on months it was fitted on), else expert."""
    if c.windows is not None and c.windows.evaluation_cutoff > cutoff:
        return replace(cal.EXPERT, reason=f"calibration {c.version} read data up to {c.windows.evaluation_cutoff}, "
                       f"after the evaluation cutoff {cutoff}: expert thresholds evaluated instead")
    return c


# ------------------------------------------------------------------------------------------------------------
# the asset
# ------------------------------------------------------------------------------------------------------------

def should_calibrate(job_name: str | None, existing: list[str]) -> bool:
    """A new calibration on monthly_retrain, or when none exists yet (first daily run); else reuse the latest."""
    return job_name == "monthly_retrain" or not existing


def run_calibration(con: duckdb.DuckDBPyConnection, targets: cal.Targets = cal.Targets()
                    ) -> tuple[cal.Calibration, pd.DataFrame | None, dict]:
    frame, pop, first_default, first, end = load_history(con)
    if first is None or end is None:
        return replace(cal.EXPERT, reason="fallback to expert thresholds: no usage history"), None, {}
    w = cal.plan_windows(first, end)
    c, extras = cal.calibrate(frame, pop, first_default, w, targets)
    return c, extras.get("curve"), {"end_month": end}


@dg.asset(key=CALIBRATION, group_name="applications", kinds={"python", "scikitlearn"},
          deps=[dg.AssetKey(["marts", "fct_product_usage_monthly"]), dg.AssetKey(["staging", "stg_bureau__credit_reports"]),
                dg.AssetKey(["intermediate", "int_as_of_date_derived"])])
def early_warning_calibration(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Learns the warning / critical operating points from the bank's own history (time split: fit window ->
    combined score, calibration window -> operating points, never the evaluation window); falls back to the expert
    thresholds with too little history. New version on monthly_retrain or when none exists; else reuses the latest.
    Files: $LENDSEG_MODEL_DIR/ew_calibration/cNNNN.json + .png; table ml.early_warning_calibration."""
    s = warehouse.settings
    sdir = store_dir(s)
    existing = versions(sdir)
    job = getattr(context, "job_name", None)
    calibrated = should_calibrate(job, existing)
    with connect(s) as con:
        if calibrated:
            c, curve, _ = run_calibration(con)
            png = pr_chart(curve, c)
            c = save_version(sdir, c, {"created_at": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(),
                                       "run_id": context.run.run_id, "job": job}, png)
            context.log.info(f"early-warning calibration {c.version}: {c.method} ({c.reason})")
        else:
            c = current_calibration(s)
            p = sdir / f"{c.version}.png"
            png = p.read_bytes() if p.exists() else pr_chart(None, c)
            context.log.info(f"reusing early-warning calibration {c.version} (new versions on monthly_retrain)")
        n = sync_table(con, sdir)
    w = c.windows
    return dg.MaterializeResult(metadata={
        "version": c.version, "method": c.method, "reason": c.reason, "new_version": calibrated, "versions": n,
        "warning_threshold": c.warning_threshold, "critical_threshold": c.critical_threshold,
        "windows": dg.MetadataValue.json(w.to_dict() if w else {}),
        "score_model": (c.score.kind if c.score else "none"),
        "coefficients": dg.MetadataValue.json(c.score.coefficients if c.score else {}),
        "candidates": dg.MetadataValue.json(c.chosen.get("candidates") or {}),
        "chosen_points": dg.MetadataValue.md(points_markdown(c)),
        "pr_chart": dg.MetadataValue.md(f"![precision/recall](data:image/png;base64,{base64.b64encode(png).decode()})"),
        "store": dg.MetadataValue.path(str(sdir / f"{c.version}.json"))})


calibration_assets = [early_warning_calibration]


def evaluation_with_comparison(con: duckdb.DuckDBPyConnection, settings: Settings, horizon: int
                               ) -> tuple[pd.DataFrame, dg.MetadataValue]:
    """For ``marts/early_warning_evaluation``: the evaluation rows of the calibration in force (levels replayed on
    data up to the cutoff E, outcome after it) and ``marts.early_warning_method_comparison`` (expert vs combined
    score on the same split, bootstrap 95 % CIs). Returns (evaluation rows, comparison as markdown)."""
    from dagster_project.defs.applications.as_of import add_months, as_of_month
    from dagster_project.defs.applications.early_warning_history import evaluate_warnings
    from dagster_project.lib.metadata import md_table
    from dagster_project.lib.tables import replace_table as publish_table

    end = as_of_month(con)
    cutoff = add_months(end, -horizon)
    c = calibration_for_evaluation(current_calibration(settings), cutoff)
    ev = evaluate_warnings(con, horizon, c)
    frame, pop, first_default, _first, _end = load_history(con, end)
    comp = compare_methods(frame, pop, first_default, c, cutoff, end)
    con.register("cmp_df", comp)
    try:
        con.execute("BEGIN")
        publish_table(con, COMPARISON_TABLE, "SELECT * FROM cmp_df",
                      "Early warnings: expert rules vs calibrated combined score on the evaluation split, with bootstrap "
                      "95 % intervals (docs/applications.md).", COMPARISON_COLUMNS)
        con.execute("COMMIT")
    finally:
        con.unregister("cmp_df")
    show = comp[["method", "in_force", "flag_level", "flagged", "precision", "precision_ci_low", "precision_ci_high",
                 "recall", "recall_ci_low", "recall_ci_high", "share_flagged", "median_lead_months", "meets_bar"]]
    return ev, md_table(show)
