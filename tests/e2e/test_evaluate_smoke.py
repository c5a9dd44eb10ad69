"""CI smoke test of ``lendseg evaluate`` (issue 11): one small scenario, the first run publishes model segments.

Nothing beyond that is asserted here: the evaluation's figures are measured by the full command and written
into docs/segmentation.md.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.lib.settings import PROJECT_ROOT

ROOT = PROJECT_ROOT


@pytest.mark.e2e
def test_evaluate_smoke_publishes_model_segments(tmp_path: Path) -> None:
    lendseg = str(Path(sys.executable).parent / "lendseg")
    p = subprocess.run(
        [lendseg, "evaluate", "--smoke", "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "published_model=yes" in p.stdout, p.stdout
