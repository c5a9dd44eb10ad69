"""The early-warning calibration store: ``$LENDSEG_MODEL_DIR/ew_calibration/cNNNN.json`` (+ ``cNNNN.png``)
and its projection ``ml.early_warning_calibration``; ``current_calibration`` is what the warnings use."""

import json
import os
from dataclasses import replace
from pathlib import Path

import duckdb
import pandas as pd

from dagster_project.defs.applications import ew_calibration as cal
from dagster_project.lib.settings import Settings
from dagster_project.lib.tables import replace_table

STORE = "ew_calibration"


TABLE = "ml.early_warning_calibration"


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
    "warning_threshold": "Combined-score probability from which a client with a signal is at warning (null: expert "
    "rules).",
    "critical_threshold": "Combined-score probability from which the level is critical (null: critical by the "
    "expert rules).",
    "watch_threshold": "Combined-score probability from which a client with a signal is on watch: watch or above "
    "flags at most 20 % of the performing customers on the calibration window (null: watch by "
    "the expert rules, two signals at once).",
    "watch_share_flagged": "Share of the calibration-window population flagged at watch or above.",
    "warning_precision": "Precision of the chosen warning point on the calibration window.",
    "warning_recall": "Recall of the chosen warning point on the calibration window.",
    "warning_share_flagged": "Share of the calibration-window population flagged at warning or above.",
    "critical_precision": "Precision of the chosen critical point on the calibration window.",
    "critical_recall": "Recall of the chosen critical point on the calibration window.",
    "expert_warning_precision": "Precision of the expert rules at warning on the same calibration window.",
    "expert_warning_recall": "Recall of the expert rules at warning on the same calibration window.",
    "coefficients": "JSON: combined-score coefficients (logistic regression, all >= 0) and the intercept; for the "
    "monotonic gradient boosting the model file.",
    "dropped_features": "Features dropped for a wrong business sign or no variance (JSON list).",
    "fit_from": "First fit cutoff month (features as of it, outcome up to calibration_cutoff).",
    "fit_to": "Last fit cutoff month.",
    "calibration_cutoff": "Operating points chosen on features as of this month and first 90+ dpd after it up to "
    "evaluation_cutoff.",
    "evaluation_cutoff": "The calibration reads no data after this month; it is judged on the months after it.",
    "end_month": "Last month of data when the calibration ran.",
    "history_months": "Months of data before (and including) the evaluation cutoff.",
    "fit_positives": "Clients with a first 90+ dpd in the fit window.",
    "calibration_positives": "Clients with a first 90+ dpd in the calibration window.",
}


def sync_table(con: duckdb.DuckDBPyConnection, sdir: Path) -> int:
    """(Re)write ml.early_warning_calibration from the version files."""
    rows = []
    for v in versions(sdir):
        d = load_version(sdir, v)
        ch = d.get("chosen") or {}
        sw, sc, ex = (
            (ch.get("score") or {}).get("warning") or {},
            (ch.get("score") or {}).get("critical") or {},
            (ch.get("expert") or {}).get("warning") or {},
        )
        w = d.get("windows") or {}
        cw = ch.get("calibration_window") or {}
        score = d.get("score") or {}
        rows.append(
            {
                "version": v,
                "created_at": d.get("created_at"),
                "run_id": d.get("run_id"),
                "method": d["method"],
                "reason": d.get("reason"),
                "warning_threshold": d.get("warning_threshold"),
                "critical_threshold": d.get("critical_threshold"),
                "watch_threshold": d.get("watch_threshold"),
                "watch_share_flagged": ((ch.get("score") or {}).get("watch") or {}).get("share_flagged"),
                "warning_precision": sw.get("precision"),
                "warning_recall": sw.get("recall"),
                "warning_share_flagged": sw.get("share_flagged"),
                "critical_precision": sc.get("precision"),
                "critical_recall": sc.get("recall"),
                "expert_warning_precision": ex.get("precision"),
                "expert_warning_recall": ex.get("recall"),
                "coefficients": (
                    json.dumps({"intercept": score.get("intercept"), **(score.get("coefficients") or {})})
                    if score.get("kind", "logreg") == "logreg"
                    else json.dumps({"model": "hgb", "model_file": score.get("model_file")})
                )
                if score
                else None,
                "dropped_features": json.dumps(score.get("dropped", [])) if score else None,
                "fit_from": w.get("fit_from"),
                "fit_to": w.get("fit_to"),
                "calibration_cutoff": w.get("calibration_cutoff"),
                "evaluation_cutoff": w.get("evaluation_cutoff"),
                "end_month": w.get("end_month"),
                "history_months": (cal.Calibration.from_dict(d).windows.history_months if w else None),
                "fit_positives": cw.get("fit_positives"),
                "calibration_positives": cw.get("positives"),
            }
        )
    df = pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))
    con.execute("CREATE SCHEMA IF NOT EXISTS ml")
    con.register("cal_df", df)
    try:
        return replace_table(
            con,
            TABLE,
            """
            SELECT version, created_at::TIMESTAMP AS created_at, run_id::VARCHAR AS run_id, method, reason::VARCHAR
                AS reason,
                warning_threshold::DOUBLE AS warning_threshold, critical_threshold::DOUBLE AS critical_threshold,
                watch_threshold::DOUBLE AS watch_threshold, watch_share_flagged::DOUBLE AS watch_share_flagged,
                warning_precision::DOUBLE AS warning_precision, warning_recall::DOUBLE AS warning_recall,
                warning_share_flagged::DOUBLE AS warning_share_flagged, critical_precision::DOUBLE AS
                    critical_precision,
                critical_recall::DOUBLE AS critical_recall, expert_warning_precision::DOUBLE AS
                    expert_warning_precision,
                expert_warning_recall::DOUBLE AS expert_warning_recall, coefficients::VARCHAR AS coefficients,
                dropped_features::VARCHAR AS dropped_features, fit_from::DATE AS fit_from, fit_to::DATE AS fit_to,
                calibration_cutoff::DATE AS calibration_cutoff, evaluation_cutoff::DATE AS evaluation_cutoff,
                end_month::DATE AS end_month, history_months::INTEGER AS history_months,
                fit_positives::INTEGER AS fit_positives, calibration_positives::INTEGER AS calibration_positives
            FROM cal_df ORDER BY version""",
            "Early-warning calibrations: one row per version (files in $LENDSEG_MODEL_DIR/ew_calibration).",
            CALIBRATION_COLUMNS,
        )
    finally:
        con.unregister("cal_df")
