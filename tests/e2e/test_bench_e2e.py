"""Smoke test of the benchmark script at the smallest size (timings are reported, never asserted)."""

import json
from pathlib import Path

import pytest

from dagster_project.tools.bench import to_markdown


@pytest.mark.e2e
def test_bench_smoke(tmp_path: Path) -> None:
    from dagster_project.tools.bench import run_bench

    report = run_bench(clients=400, months=6, fmt="parquet", out_dir=tmp_path)
    saved = json.loads((tmp_path / "bench-400-6m-parquet.json").read_text())
    assert saved["pipeline_wall_s"] == report["pipeline_wall_s"] > 0
    assert report["peak_tree_rss_mb"] > 100 and report["floor_wall_s"] > 0
    assert {s["step"] for s in report["steps"]} >= {"raw_clients", "raw_credit_bureau", "raw_product_usage",
                                                    "dbt_models", "published_warehouse"}
    assert report["rows_ingested"] > 400 and set(report["floor"]) >= {"ingest", "model_fit_score", "publish"}
    md = (tmp_path / "bench-400-6m-parquet.md").read_text()
    assert md == to_markdown(report) and "| raw_product_usage | ingest |" in md
