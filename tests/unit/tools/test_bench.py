"""The benchmark script's helpers (the smoke run: tests/e2e/test_bench_e2e.py)."""

import os
from pathlib import Path

from dagster_project.tools.bench import _step_group, bench_env, path_variables, tree_rss_mb


def test_tree_rss_counts_this_process() -> None:
    assert tree_rss_mb(os.getpid()) > 10


def test_step_groups() -> None:
    assert _step_group("raw_clients") == "ingest"
    assert _step_group("dbt_client_dimensions") == "dbt" and _step_group("dbt_segment_marts") == "dbt"
    assert _step_group("published_warehouse") == "publish"


def test_bench_env_points_every_location_into_the_bench_folder(tmp_path: Path) -> None:
    names = path_variables()
    assert {
        "LENDSEG_DATA_DIR",
        "LENDSEG_LANDING_DIR",
        "LENDSEG_WAREHOUSE_PATH",
        "LENDSEG_BUILD_PATH",
        "LENDSEG_MODEL_DIR",
    } <= set(names)
    sentinel = {n: f"/sentinel/{n}" for n in names}
    inherited = {
        **sentinel,
        "LENDSEG_PII_KEY": "real-key",
        "DAGSTER_HOME": "/sentinel/home",
        "LENDSEG_DUCKDB_MEMORY_LIMIT": "3GB",
        "PATH": "/usr/bin",
    }
    env = bench_env(inherited, tmp_path / "data", tmp_path / "home")
    assert not [k for k, v in env.items() if "/sentinel/" in v]
    assert env["LENDSEG_DATA_DIR"] == str(tmp_path / "data") and env["DAGSTER_HOME"] == str(tmp_path / "home")
    assert "LENDSEG_PII_KEY" not in env and env["LENDSEG_DEMO"] == "1"
    assert env["LENDSEG_DUCKDB_MEMORY_LIMIT"] == "3GB" and env["PATH"] == "/usr/bin"  # not a location: kept
