"""What a user reads: preflight refusals (one line, exit 2), help texts, the progress view (`lendseg sql`:
test_sqlview.py)."""

import subprocess
from pathlib import Path

from conftest import LENDSEG

from dagster_project.cli import build_parser
from dagster_project.progress import Step, Tracker, format_live, format_step, format_summary


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    base = {k: v for k, v in os.environ.items() if not k.startswith(("LENDSEG_", "DAGSTER_HOME"))}
    base |= {"LENDSEG_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(tmp_path / "home")} | env
    return subprocess.run([LENDSEG, *args], cwd=tmp_path, env=base, capture_output=True, text=True, timeout=120)


def test_unknown_job_is_refused_up_front_with_one_line(tmp_path: Path) -> None:
    proc = _run(tmp_path, "run", "--job", "daily_refres", "--demo")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "daily_refres" in lines[0] and "daily_refresh, monthly_retrain, full_rebuild" in lines[0]
    assert "__ASSET_JOB" not in proc.stderr and not (tmp_path / "home").exists()


def test_missing_key_outside_demo_mode_is_refused_up_front_with_one_line(tmp_path: Path) -> None:
    proc = _run(tmp_path, "run")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "LENDSEG_PII_KEY is not set" in lines[0]
    assert not (tmp_path / "home").exists() and not (tmp_path / "data" / "build").exists()  # nothing was built


def test_every_option_has_help_and_job_lists_the_valid_names() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [
        f"{name} {opt.option_strings or opt.dest}"
        for name, p in sub.choices.items()
        for opt in p._actions
        if opt.help is None
    ]
    assert not missing, missing
    job = next(a for a in sub.choices["run"]._actions if "--job" in a.option_strings)
    assert all(n in job.help for n in ("daily_refresh", "monthly_retrain", "full_rebuild"))


def _step(key: str, **kw) -> Step:
    st = Step(key, started=100.0, ended=112.3, status="ok")
    for k, v in kw.items():
        setattr(st, k, v)
    return st


def test_step_lines_and_live_bar() -> None:
    line = format_step(
        _step(
            "raw_clients",
            assets=["raw_clients"],
            checks_passed=2,
            metadata=[{"files_loaded": 1, "rows_loaded": 5000, "rows_quarantined": 3}],
        )
    )
    assert "ingest clients" in line and "12.3 s" in line and "5,000 rows loaded" in line and "3 quarantined" in line
    dbt = _step("dbt_client_dimensions", assets=["staging/a", "intermediate/b"], checks_passed=19)
    assert "dbt staging + intermediate" in format_step(dbt) and "19 checks" in format_step(dbt)
    dbt.status, dbt.ended, dbt.planned, dbt.done = "running", None, 40, 10
    assert "[######------------------] 10/40" in format_live(dbt)


def test_summary_names_version_tables_checks_quarantine_alerts() -> None:
    t = Tracker()
    t.steps["raw_clients"] = _step(
        "raw_clients", metadata=[{"rows_loaded": 10, "rows_quarantined": 2}], checks_passed=3
    )
    t.steps["published_warehouse"] = _step(
        "published_warehouse",
        assets=["published_warehouse"],
        checks_warned=1,
        metadata=[{"version": "v000007", "rows/marts.dim_client": 5000, "rows/audit.quarantined_rows": 2}],
    )
    lines = format_summary(t, "rid", "daily_refresh", 61.0, True, Path("w.duckdb"), Path("x.log"), alerts=0)
    text = "\n".join(lines)
    assert "run rid succeeded" in text and "published v000007" in text and "2 tables, 5,002 rows" in text
    assert "dim_client 5,000" in text and "checks: 3 passed, 0 failed, 1 warned" in text
    assert "2 quarantined" in text and "alerts: 0" in text and "full log: x.log" in text
