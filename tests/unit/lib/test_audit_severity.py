"""audit.data_quality_results speaks one severity vocabulary (error, warning): every writer goes through it, a
row in any other spelling is refused, and rows an older release wrote as ``warn`` read as ``warning``."""

import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.lib import audit
from dagster_project.lib.settings import PROJECT_ROOT, load_settings

PKG = PROJECT_ROOT / "dagster_project"


def _severities(audit_dir: Path) -> list[str]:
    return [
        r[0]
        for r in duckdb.connect()
        .execute(f"SELECT DISTINCT severity FROM {audit.read(audit_dir, audit.DQ_RESULTS)} ORDER BY 1")
        .fetchall()
    ]


def test_dagster_check_severities_map_onto_the_vocabulary() -> None:
    assert audit.SEVERITIES == ("error", "warning")
    assert audit.severity_of(dg.AssetCheckSeverity.ERROR) == "error"
    assert audit.severity_of(dg.AssetCheckSeverity.WARN) == "warning"
    assert audit.severity_of("warning") == "warning" and audit.severity_of("warn") == "warning"
    with pytest.raises(ValueError, match="unknown severity 'info'"):
        audit.severity_of("info")


def test_a_row_in_another_spelling_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be one of error, warning, got 'warn'"):
        audit.dq_result("r", "a", "s", "rule", False, "warn")
    row = audit.dq_result("r", "a", "s", "rule", False, "warning") | {"severity": "WARN"}
    with pytest.raises(ValueError, match="got 'WARN'"):
        audit.append_rows(tmp_path, audit.DQ_RESULTS, [row])
    assert not (tmp_path / audit.DQ_RESULTS).exists() or not any((tmp_path / audit.DQ_RESULTS).iterdir())


def test_the_python_writers_write_the_vocabulary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The segmentation model's checks and the client_features checks, through their own record functions."""
    from dagster_project.defs.segmentation.training import record_checks
    from dagster_project.defs.transform.checks import _record

    for var in ("LENDSEG_LANDING_DIR", "LENDSEG_BUILD_PATH", "LENDSEG_WAREHOUSE_PATH", "LENDSEG_MODEL_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LENDSEG_DATA_DIR", str(tmp_path))
    s = load_settings()
    record_checks(s, "run-1", {"checks": {"silhouette_floor": {"passed": False, "silhouette": 0.1}}}, "bootstrap")
    _record(s, "run-1", "client_features_anomalies", [("sparse_features", None, False, 1, 5, "{}", "warning")])
    assert _severities(s.audit_dir) == ["error", "warning"]


def test_no_module_spells_a_severity_outside_the_vocabulary() -> None:
    """Every data-quality writer passes error/warning (or maps Dagster's with severity_of); only audit.py keeps
    the old spelling, to read older rows."""
    offenders = [
        f"{p.relative_to(PROJECT_ROOT)}:{i}"
        for p in PKG.rglob("*.py")
        if p.name != "audit.py"
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"""["']warn["']|severity\.value\.lower\(\)""", line)
    ]  # Dagster's WARN is fine
    assert not offenders, offenders
    writers = sorted(
        str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if "DQ_RESULTS" in p.read_text(encoding="utf-8")
    )
    assert writers == [
        "cli.py",
        "defs/ingest/loading.py",
        "defs/publish/assets.py",
        "defs/segmentation/training.py",
        "defs/transform/checks.py",
        "lib/audit.py",
    ]  # each appends through audit.append_rows (checked)


def test_rows_an_older_release_wrote_as_warn_read_as_warning(tmp_path: Path) -> None:
    folder = tmp_path / audit.DQ_RESULTS
    folder.mkdir()
    old = folder / "20261101T000000000000-0ld0ld00.parquet"  # as published_warehouse wrote it before issue 24
    duckdb.connect().execute(
        f"COPY (SELECT 'r0' AS run_id, 'published_warehouse' AS asset, 'dagster_asset_check' AS suite, "
        f"'deliveries_clean' AS rule, false AS success, 'warn' AS severity) TO '{old}' (FORMAT parquet)"
    )
    before = old.read_bytes()
    audit.append_rows(
        tmp_path,
        audit.DQ_RESULTS,
        [audit.dq_result("r1", "a", "s", "rule", True, "warning"), audit.dq_result("r1", "a", "s", "other", True)],
    )
    assert _severities(tmp_path) == ["error", "warning"]
    con = duckdb.connect()
    assert con.execute(
        f"SELECT run_id, severity FROM {audit.read(tmp_path, audit.DQ_RESULTS)} WHERE rule = 'deliveries_clean'"
    ).fetchall() == [("r0", "warning")]
    assert old.read_bytes() == before  # append-only: read as warning, never rewritten
