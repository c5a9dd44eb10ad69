"""Recompute the early-warning calibration + method comparison of a finished `lendseg evaluate` case dir with the
current code (read-only on its build and published warehouse) and write <out>/<case>-<seed>/applications_result.json
and segmentation_row.json (copied), so that `lendseg evaluate --reuse --workdir <out>` renders it.

    .venv/bin/python scripts/ew_recompute_case.py SRC_CASE_DIR OUT_WORKDIR CASE SEED
"""

import shutil
import sys
from pathlib import Path

from dagster_project.tools import evaluate_apps as apps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ew_calibration_report import calibrate_copy  # noqa: E402

src, out, case, seed = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
c, comp, end = calibrate_copy(src / "data" / "build" / "build.duckdb")
pub = apps.measure(src, case, seed)  # recommendations unchanged (not touched by the calibration)
cols = [
    "method",
    "in_force",
    "calibration_version",
    "flag_level",
    "cutoff_month",
    "clients",
    "flagged",
    "positives",
    "true_positives",
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
ew = [
    {k: apps._plain(v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in comp[cols].to_dict("records")
]
ew = sorted(ew, key=lambda r: (r["method"], apps.LEVELS.index(r["flag_level"])))
first = next(r for r in ew if r["in_force"])
res = apps.AppResult(
    case=case,
    seed=seed,
    calibration_version="c0001 (recomputed)",
    method=c.method,
    reason=c.reason,
    cutoff_month=str(first["cutoff_month"]),
    clients=int(first["clients"]),
    positives=int(first["positives"]),
    ew=ew,
    rec=pub.rec,
)
dst = out / f"{case}-{seed}"
dst.mkdir(parents=True, exist_ok=True)
apps.save(res, dst)
shutil.copy(src / "segmentation_row.json", dst / "segmentation_row.json")
w = next(r for r in ew if r["in_force"] and r["flag_level"] == "warning")
print(
    case,
    seed,
    c.method,
    "|",
    c.reason,
    "| warning",
    round(w["precision"], 3),
    round(w["recall"], 3),
    round(w["share_flagged"], 3),
    w["median_lead_months"],
)
