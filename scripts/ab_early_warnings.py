"""A/B on one build: the early warnings replayed in Python (before issue 33, kept in tests/reference_early_warnings.py)
against the SQL state, on a copy of the build (the build itself untouched): rows that differ in the episodes,
risk_early_warnings, the evaluation and the method comparison (expected 0), and each side's time.

    .venv/bin/python scripts/ab_early_warnings.py BUILD.duckdb [CALIBRATION.json]

Without a calibration file: the build's latest version beside it (<data>/models/ew_calibration), else the expert rules.
Both the calibration and the expert rules are compared when the calibration has a score.
"""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import reference_early_warnings as ref  # noqa: E402

from dagster_project.defs.applications.ew_calibration import EXPERT, Calibration  # noqa: E402

build = Path(sys.argv[1])
if len(sys.argv) > 2:
    cal_file = Path(sys.argv[2])
else:
    found = sorted((build.parent.parent / "models" / "ew_calibration").glob("c[0-9]*.json"))
    cal_file = found[-1] if found else None
cals = [Calibration.from_dict(json.loads(cal_file.read_text()))] if cal_file else []
for c in [*[c for c in cals if c.method == "score"], EXPERT]:
    with tempfile.TemporaryDirectory() as tmp:
        print(
            json.dumps(
                {
                    "build": str(build),
                    "levels": c.method,
                    "calibration": c.version or "expert",
                    **ref.compare_on_build(build, c, tmp),
                }
            ),
            flush=True,
        )
