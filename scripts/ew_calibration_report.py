"""Calibrate the early warnings on a copy of a build database (the build itself untouched) and print the comparison.

    .venv/bin/python scripts/ew_calibration_report.py data/build/build.duckdb

Runs the same functions as ``ml/early_warning_calibration`` and ``marts/early_warning_evaluation``
(``ew_calibration_assets.run_calibration`` and ``compare_methods``): the calibration's chosen points on its
calibration window, then expert rules vs combined score on the evaluation window with bootstrap 95 % intervals.
"""

import shutil
import sys
import tempfile
from pathlib import Path

import duckdb
import pandas as pd

from dagster_project.defs.applications import ew_calibration_assets as A
from dagster_project.defs.applications.as_of import add_months, as_of_month


def calibrate_copy(path: str | Path) -> tuple:
    """(calibration, method comparison, as-of month) on a copy of the build: the calibration advances
    state.client_month_signals, the build itself stays untouched."""
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(shutil.copy(path, Path(tmp) / "build.duckdb")))
        try:
            c, _curve, _ = A.run_calibration(con)
            end = as_of_month(con)
            return c, A.compare_methods(con, c, add_months(end, -6), end), end
        finally:
            con.close()


def main(path: str) -> None:
    c, comp, _end = calibrate_copy(path)
    print(f"method: {c.method} ({c.reason})")
    if c.windows:
        print("windows:", c.windows.to_dict())
    if c.score:
        print("score model:", c.score.kind)
        print(
            "coefficients:",
            {k: round(v, 3) for k, v in c.score.coefficients.items()},
            "intercept:",
            round(c.score.intercept, 3),
            "dropped:",
            list(c.score.dropped),
        )
    print(A.points_markdown(c))
    pd.set_option("display.width", 250)
    cols = [
        "method",
        "in_force",
        "flag_level",
        "clients",
        "flagged",
        "positives",
        "precision",
        "precision_ci_low",
        "precision_ci_high",
        "recall",
        "recall_ci_low",
        "recall_ci_high",
        "share_flagged",
        "share_flagged_ci_low",
        "share_flagged_ci_high",
        "median_lead_months",
        "lead_ci_low",
        "lead_ci_high",
        "meets_bar",
    ]
    print(comp[cols].round(3).to_string(index=False))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/build/build.duckdb")
