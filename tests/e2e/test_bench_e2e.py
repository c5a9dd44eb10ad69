"""Smoke test of the benchmark script at the smallest size (timings are reported, never asserted)."""

import json
from pathlib import Path

import pytest

from dagster_project.tools.bench import to_markdown


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.e2e
def test_bench_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_project.tools.bench import path_variables, run_bench

    # The caller's shell is configured for another installation: the bench must neither read nor write it.
    other = tmp_path / "other_installation"
    for name in path_variables():
        (other / name).mkdir(parents=True)
        (other / name / "keep.txt").write_text(name)
        monkeypatch.setenv(name, str(other / name))
    monkeypatch.setenv("DAGSTER_HOME", str(other / "dagster_home"))
    before = _tree(other)
    report = run_bench(clients=400, months=6, fmt="parquet", out_dir=tmp_path)
    assert _tree(other) == before
    saved = json.loads((tmp_path / "bench-400-6m-parquet.json").read_text())
    assert saved["pipeline_wall_s"] == report["pipeline_wall_s"] > 0
    assert report["peak_tree_rss_mb"] > 100 and report["floor_wall_s"] > 0
    assert {s["step"] for s in report["steps"]} >= {
        "raw_clients",
        "raw_credit_bureau",
        "raw_product_usage",
        "dbt_client_dimensions",
        "dbt_segment_marts",
        "published_warehouse",
    }
    assert report["rows_ingested"] > 400 and set(report["floor"]) >= {"ingest", "model_fit_score", "publish"}
    assert set(report["floor_applications"]) == {"warning_flags", "recommendations", "policy", "publish_applications"}
    assert report["floor_applications"]["policy"]["rows"] > 0 and report["ratio_pipeline_to_floor"] > 0
    assert report["floor_with_applications_wall_s"] >= report["floor_wall_s"]
    assert 0 < report["ratio_pipeline_to_floor_with_applications"] <= report["ratio_pipeline_to_floor"]
    md = (tmp_path / "bench-400-6m-parquet.md").read_text()
    assert md == to_markdown(report) and "| raw_product_usage | ingest |" in md
