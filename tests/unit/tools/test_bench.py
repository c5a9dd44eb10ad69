"""The benchmark script's helpers (the smoke run: tests/e2e/test_bench_e2e.py)."""

import os

from dagster_project.tools.bench import _step_group, tree_rss_mb


def test_tree_rss_counts_this_process() -> None:
    assert tree_rss_mb(os.getpid()) > 10


def test_step_groups() -> None:
    assert _step_group("raw_clients") == "ingest"
    assert _step_group("dbt_models") == "dbt"
    assert _step_group("published_warehouse") == "publish"
