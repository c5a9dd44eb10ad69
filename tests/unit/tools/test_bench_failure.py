"""A failed `lendseg bench` ends in one line naming the failing step and where its logs are kept, not a traceback
(the pipeline run is replaced by a process that fails the way `lendseg run` does)."""

import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.tools import bench

SPILL_LINE = (
    "dbt model int_accounts_latest_selected: DuckDB needed more than LENDSEG_DUCKDB_MAX_TEMP_SIZE=20GB of "
    "spill space in /tmp/x: raise the setting or free disk there (nothing published changed)"
)
# What `lendseg run` writes when a step fails (cli.cmd_run): the step, its error, then the run summary.
FAILED_RUN = f"""
import os, pathlib
logs = pathlib.Path(os.environ["LENDSEG_DATA_DIR"]) / "logs"
logs.mkdir(parents=True)
(logs / "run1.log").write_text("the run's own log")
print("  ok      raw_clients   1.0 s")
print("step dbt_client_dimensions failed:")
print({SPILL_LINE!r})
print("run 1234 FAILED; the published warehouse was left as it was.")
raise SystemExit(1)
"""


def test_failure_reason_is_the_failing_step_and_the_first_line_of_its_error() -> None:
    log = f"  ok raw_clients\nstep dbt_client_dimensions failed:\n\n{SPILL_LINE}\nmore detail\nrun 1 FAILED\n"
    assert bench.failure_reason(log) == f"step dbt_client_dimensions failed: {SPILL_LINE}"
    assert bench.failure_reason("Traceback ...\nImportError: no module x\n") == "ImportError: no module x"


def test_a_failed_bench_ends_in_one_line_pointing_at_its_kept_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dagster_project import cli
    from dagster_project.tools.demo import generate

    monkeypatch.setattr(generate, "generate", lambda *a, **k: {})
    monkeypatch.setattr(bench, "check_disk", lambda *a, **k: None)
    real_popen = subprocess.Popen
    monkeypatch.setattr(
        bench.subprocess, "Popen", lambda args, **kw: real_popen([sys.executable, "-c", FAILED_RUN], **kw)
    )
    out = tmp_path / "reports"
    code = cli.main(["bench", "--clients", "10", "--months", "2", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    kept = out / "failed-run-logs"
    assert lines == [
        f"bench failed: the pipeline failed (step dbt_client_dimensions failed: {SPILL_LINE}); "
        f"its run and dbt logs are kept in {kept}"
    ]
    assert (kept / "logs-run1.log").read_text() == "the run's own log"
    assert "run 1234 FAILED" in (kept / "lendseg-run-output.txt").read_text()
