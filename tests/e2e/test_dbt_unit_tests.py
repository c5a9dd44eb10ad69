"""dbt's unit tests run here, in CI - production runs leave them out (``--exclude-resource-type unit_test`` in
defs/transform/assets.py): they prove the models' logic on fixed rows, which no delivery changes.

They run on a copy of the shared published workspace's build database, where every relation they introspect
(the model's own parents, the ``ml`` sources of the segment marts) exists.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dagster_project.defs.transform.assets import DBT_EXECUTABLE
from dagster_project.lib.settings import DBT_PROJECT_DIR


@pytest.mark.e2e
def test_every_dbt_unit_test_passes(published_ws, tmp_path: Path) -> None:
    build = tmp_path / "build.duckdb"
    shutil.copy(published_ws.data / "build" / "build.duckdb", build)
    target = tmp_path / "target"
    env = {**os.environ, "LENDSEG_BUILD_PATH": str(build), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    proc = subprocess.run(
        [
            DBT_EXECUTABLE,
            "test",
            "--select",
            "resource_type:unit_test",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=DBT_PROJECT_DIR,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    results = [
        r
        for r in json.loads((target / "run_results.json").read_text())["results"]
        if r["unique_id"].startswith("unit_test.")
    ]  # not the project's on-run-start hook
    manifest = json.loads((target / "manifest.json").read_text())
    assert {r["unique_id"] for r in results} == set(manifest["unit_tests"])
    assert len(results) >= 12 and all(r["status"] == "pass" for r in results)
