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
from dataclasses import replace
from datetime import UTC, date, datetime

import dagster as dg
import duckdb
import pandas as pd

from dagster_project.defs.applications import ew_calibration as cal
from dagster_project.defs.applications.as_of import as_of_month, first_default_sql, lit
from dagster_project.defs.applications.ew_calibration_store import (
    current_calibration,
    save_version,
    store_dir,
    sync_table,
    versions,
)
from dagster_project.defs.applications.ew_evaluation import evaluate_warnings, level_rows
from dagster_project.defs.applications.ew_features import FEATURES
from dagster_project.defs.applications.ew_score import fold_sql
from dagster_project.defs.applications.ew_sql import client_months_sql
from dagster_project.defs.applications.ew_state import SIGNALS, USAGE, advance_signals
from dagster_project.defs.applications.store import write_app_table
from dagster_project.lib.metadata import figure, md_table, png_bytes
from dagster_project.lib.months import add_months, month_end
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect

CALIBRATION = dg.AssetKey(["ml", "early_warning_calibration"])


COMPARISON_TABLE = "early_warning_method_comparison"  # app schema (store.py), published as marts


N_BOOTSTRAP = 1000


def slices_sql(cutoffs: list[tuple[date, date]]) -> str:
    """The calibration's rows at each (cutoff t, outcome end): clients with a facility at t not at 90+ dpd by then,
    their features at t's month end from ``state.client_month_signals`` (0 without a signal), ``label`` = first 90+
    dpd in (t, outcome end], the client's fold; identical rows aggregated with their count ``n`` (so no client-month
    crosses into Python: a row per distinct feature vector)."""
    values = ", ".join(f"({lit(t)}, {lit(o)})" for t, o in cutoffs)
    feats = ", ".join(f"coalesce(cm.{f}, 0.0) AS {f}" for f in FEATURES)
    return f"""
WITH cuts AS (SELECT * FROM (VALUES {values}) AS v(t, outcome_end)),
fd AS ({first_default_sql()}),
pop AS (
    SELECT DISTINCT u.client_key, c.t, c.outcome_end FROM {USAGE} AS u JOIN cuts AS c ON u.snapshot_month = c.t
), cm AS ({client_months_sql(f"SELECT * FROM {SIGNALS} WHERE month_end IN (SELECT last_day(t) FROM cuts)")})
SELECT {fold_sql("p.client_key")} AS fold, p.client_key,
    coalesce(fd.first_90_month > p.t AND fd.first_90_month <= p.outcome_end, false) AS label,
    cm.client_key IS NOT NULL AS has_signal, coalesce(cm.expert_rank, 0)::BIGINT AS expert_rank, {feats}
FROM pop AS p
LEFT JOIN fd USING (client_key)
LEFT JOIN cm ON cm.client_key = p.client_key AND cm.month_end = last_day(p.t)
WHERE fd.first_90_month IS NULL OR fd.first_90_month > p.t"""


def aggregated(rows_sql: str) -> str:
    cols = ", ".join(["fold", "label", "has_signal", "expert_rank", *FEATURES])
    return f"SELECT {cols}, count(*) AS n FROM ({rows_sql}) GROUP BY ALL ORDER BY ALL"


def calibration_slices(con: duckdb.DuckDBPyConnection, w: cal.Windows) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(fit rows, calibration rows, distinct clients with a positive fit outcome), aggregated in SQL."""
    cuts = [(t, min(add_months(t, w.horizon), w.evaluation_cutoff)) for t in w.fit_cutoffs()]
    empty = pd.DataFrame(columns=["fold", "label", "has_signal", "expert_rank", *FEATURES, "n"])
    if not cuts:
        fit, fit_pos = empty, 0
    else:  # the fit rows once: aggregated for the fit, counted for its positives
        con.execute(f"CREATE OR REPLACE TEMP TABLE ew_fit_rows AS {slices_sql(cuts)}")
        fit = con.execute(aggregated("SELECT * FROM ew_fit_rows")).df()
        fit_pos = con.execute("SELECT count(DISTINCT client_key) FROM ew_fit_rows WHERE label").fetchone()[0]
        con.execute("DROP TABLE ew_fit_rows")
    cal_rows = con.execute(aggregated(slices_sql([(w.calibration_cutoff, w.evaluation_cutoff)]))).df()
    return fit, cal_rows, int(fit_pos)


def pr_chart(curve: pd.DataFrame | None, c: cal.Calibration) -> bytes:
    fig, ax = figure(8, 5)
    if curve is not None and not curve.empty:
        ax.plot(curve.recall, curve.precision, c="tab:blue", lw=1.5, label="combined score (calibration window)")
    for name, mk, col in (("warning", "o", "tab:orange"), ("critical", "s", "tab:red")):
        pt = (c.chosen.get("score") or {}).get(name)
        if pt:
            ax.scatter(
                [pt["recall"]],
                [pt["precision"]],
                marker=mk,
                s=80,
                c=col,
                zorder=3,
                label=f"score {name} point (p >= {pt['threshold']:.3f})",
            )
        ex = (c.chosen.get("expert") or {}).get(name)
        if ex:
            ax.scatter(
                [ex["recall"]],
                [ex["precision"]],
                marker=mk,
                s=80,
                facecolors="none",
                edgecolors=col,
                zorder=3,
                label=f"expert rules at {name}",
            )
    t = c.targets
    ax.axhline(t.warning_precision, ls=":", c="tab:orange", lw=1)
    ax.axhline(t.critical_precision, ls=":", c="tab:red", lw=1)
    ax.axvline(0.7, ls="--", c="gray", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    w = c.windows
    ax.set_title(
        f"Early-warning calibration ({c.method})"
        + (f": features at {w.calibration_cutoff:%Y-%m}, outcome to {w.evaluation_cutoff:%Y-%m}" if w else "")
    )
    ax.legend(fontsize=7, loc="lower left")
    return png_bytes(fig)


def points_markdown(c: cal.Calibration) -> str:
    lines = [
        "| method | level | threshold | flagged | precision | recall | share flagged |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for method in ("score", "expert"):
        for level in ("watch", "warning", "critical") if method == "score" else ("warning", "critical"):
            p = (c.chosen.get(method) or {}).get(level)
            if not p:
                lines.append(f"| {method} | {level} | none meets the target | | | | |")
                continue
            thr = f"{p['threshold']:.4f}" if "threshold" in p else "expert rules"
            lines.append(
                f"| {method} | {level} | {thr} | {p['flagged']} | {p['precision']:.3f} | {p['recall']:.3f} | "
                f"{p['share_flagged']:.3f} |"
            )
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
    "median_lead_months": "Median months from the first warning+ month (12 months up to the cutoff) to the first "
    "90+ dpd.",
    "lead_ci_low": "Bootstrap 95 % interval of the median lead: low.",
    "lead_ci_high": "Bootstrap 95 % interval of the median lead: high.",
    "meets_bar": "recall >= 0.70, precision >= 0.30 and median lead >= 2 months.",
}


def compare_methods(
    con: duckdb.DuckDBPyConnection, c: cal.Calibration, cutoff: date, end: date, n_boot: int = N_BOOTSTRAP
) -> pd.DataFrame:
    """Expert rules vs combined score (when the calibration has one) on the evaluation window, with bootstrap CIs."""
    methods = [("expert", cal.EXPERT)]
    if c.score is not None and c.warning_threshold is not None:
        methods.append(("score", replace(c, method="score")))
    rows = []
    nan2 = (float("nan"), float("nan"))
    for name, m in methods:
        for e in level_rows(con, m, cutoff, end, month_end(cutoff), n_boot=n_boot):
            ci = e["ci"]
            rows.append(
                {
                    "method": name,
                    "in_force": name == c.method,
                    "calibration_version": c.version or "expert",
                    "flag_level": e["flag_level"],
                    "cutoff_month": cutoff,
                    "outcome_end_month": end,
                    "clients": e["clients"],
                    "flagged": e["flagged"],
                    "positives": e["positives"],
                    "true_positives": e["true_positives"],
                    "precision": e["precision"],
                    "precision_ci_low": ci.get("precision", nan2)[0],
                    "precision_ci_high": ci.get("precision", nan2)[1],
                    "recall": e["recall"],
                    "recall_ci_low": ci.get("recall", nan2)[0],
                    "recall_ci_high": ci.get("recall", nan2)[1],
                    "share_flagged": e["share_flagged"],
                    "share_flagged_ci_low": ci.get("share_flagged", nan2)[0],
                    "share_flagged_ci_high": ci.get("share_flagged", nan2)[1],
                    "median_lead_months": e["median_lead_months"],
                    "lead_ci_low": ci.get("median_lead_months", nan2)[0],
                    "lead_ci_high": ci.get("median_lead_months", nan2)[1],
                    "meets_bar": e["meets_bar"],
                }
            )
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def calibration_for_evaluation(c: cal.Calibration, cutoff: date) -> cal.Calibration:
    """The calibration if it read no data after ``cutoff`` (never judged on months it was fitted on), else expert."""
    if c.windows is not None and c.windows.evaluation_cutoff > cutoff:
        return replace(
            cal.EXPERT,
            reason=f"calibration {c.version} read data up to {c.windows.evaluation_cutoff}, "
            f"after the evaluation cutoff {cutoff}: expert thresholds evaluated instead",
        )
    return c


def should_calibrate(job_name: str | None, existing: list[str]) -> bool:
    """A new calibration on monthly_retrain, or when none exists yet (first daily run); else reuse the latest."""
    return job_name == "monthly_retrain" or not existing


def run_calibration(
    con: duckdb.DuckDBPyConnection, targets: cal.Targets = cal.Targets()
) -> tuple[cal.Calibration, pd.DataFrame | None, dict]:
    """Calibrate on the warehouse's history: the stored signals advanced first, the slices cut in SQL."""
    end = as_of_month(con)
    first = con.execute(f"SELECT min(snapshot_month) FROM {USAGE}").fetchone()[0]
    if first is None or end is None or first > end:
        return replace(cal.EXPERT, reason="fallback to expert thresholds: no usage history"), None, {}
    advance_signals(con, end)
    w = cal.plan_windows(first, end)
    fit, cal_rows, fit_pos = calibration_slices(con, w)
    c, extras = cal.calibrate_slices(fit, cal_rows, w, fit_pos, targets)
    return c, extras.get("curve"), {"end_month": end}


@dg.asset(
    key=CALIBRATION,
    group_name="applications",
    kinds={"python", "scikitlearn"},
    deps=[
        dg.AssetKey(["marts", "fct_product_usage_monthly"]),
        dg.AssetKey(["staging", "stg_bureau__credit_reports"]),
        dg.AssetKey(["intermediate", "int_as_of_date_derived"]),
    ],
)
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
            c = save_version(
                sdir,
                c,
                {
                    "created_at": datetime.now(UTC).replace(tzinfo=None).isoformat(),
                    "run_id": context.run.run_id,
                    "job": job,
                },
                png,
            )
            context.log.info(f"early-warning calibration {c.version}: {c.method} ({c.reason})")
        else:
            c = current_calibration(s)
            p = sdir / f"{c.version}.png"
            png = p.read_bytes() if p.exists() else pr_chart(None, c)
            context.log.info(f"reusing early-warning calibration {c.version} (new versions on monthly_retrain)")
        n = sync_table(con, sdir)
    w = c.windows
    return dg.MaterializeResult(
        metadata={
            "version": c.version,
            "method": c.method,
            "reason": c.reason,
            "new_version": calibrated,
            "versions": n,
            "warning_threshold": c.warning_threshold,
            "critical_threshold": c.critical_threshold,
            "watch_threshold": c.watch_threshold,
            "windows": dg.MetadataValue.json(w.to_dict() if w else {}),
            "score_model": (c.score.kind if c.score else "none"),
            "coefficients": dg.MetadataValue.json(c.score.coefficients if c.score else {}),
            "candidates": dg.MetadataValue.json(c.chosen.get("candidates") or {}),
            "chosen_points": dg.MetadataValue.md(points_markdown(c)),
            "pr_chart": dg.MetadataValue.md(
                f"![precision/recall](data:image/png;base64,{base64.b64encode(png).decode()})"
            ),
            "store": dg.MetadataValue.path(str(sdir / f"{c.version}.json")),
        }
    )


calibration_assets = [early_warning_calibration]


def evaluation_with_comparison(
    con: duckdb.DuckDBPyConnection, settings: Settings, horizon: int
) -> tuple[pd.DataFrame, dg.MetadataValue]:
    """For ``marts/early_warning_evaluation``: the evaluation rows of the calibration in force (levels replayed on
    data up to the cutoff E, outcome after it) and ``app.early_warning_method_comparison`` (published as marts;
    expert vs combined
    score on the same split, bootstrap 95 % CIs). Returns (evaluation rows, comparison as markdown)."""

    end = as_of_month(con)
    cutoff = add_months(end, -horizon)
    c = calibration_for_evaluation(current_calibration(settings), cutoff)
    advance_signals(con, end)
    ev = evaluate_warnings(con, end, horizon, c)
    comp = compare_methods(con, c, cutoff, end)
    con.register("cmp_df", comp)
    try:
        con.execute("BEGIN")
        write_app_table(
            con,
            COMPARISON_TABLE,
            "SELECT * FROM cmp_df",
            "Early warnings: expert rules vs calibrated combined score on the evaluation split, with bootstrap "
            "95 % intervals (docs/applications.md).",
            COMPARISON_COLUMNS,
        )
        con.execute("COMMIT")
    finally:
        con.unregister("cmp_df")
    show = comp[
        [
            "method",
            "in_force",
            "flag_level",
            "flagged",
            "precision",
            "precision_ci_low",
            "precision_ci_high",
            "recall",
            "recall_ci_low",
            "recall_ci_high",
            "share_flagged",
            "median_lead_months",
            "meets_bar",
        ]
    ]
    return ev, md_table(show)
