"""The intraday warnings run: which batches take it, and what it materialises (issue "Cost follows what is new",
item 5). The run itself: tests/e2e/test_operations_e2e.py."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

os.environ.setdefault("LENDSEG_AUTOMATION", "off")


@pytest.mark.parametrize(
    ("sources", "published", "build_month", "batch_month", "job"),
    [
        ({"credit_bureau"}, True, "2026-11", None, "intraday_warnings"),  # a mid-month bureau file
        ({"product_usage"}, True, "2026-11", "2026-11", "intraday_warnings"),  # late rows of the open month
        ({"product_usage", "credit_bureau"}, True, "2026-11", "2026-03", "intraday_warnings"),  # an old month corrected
        ({"product_usage"}, True, "2026-11", "2026-12", "daily_refresh"),  # a month closes
        ({"product_usage"}, True, "2026-11", None, "daily_refresh"),  # unreadable: ingest names the problem
        ({"product_usage"}, True, None, "2026-11", "daily_refresh"),  # no usage in the build yet
        ({"credit_bureau"}, False, None, None, "daily_refresh"),  # nothing published: a first run publishes all
        ({"credit_bureau", "clients"}, True, "2026-11", None, "daily_refresh"),  # dimensions and segments follow
        ({"review_decisions"}, True, "2026-11", None, "daily_refresh"),
        (set(), True, "2026-11", None, "daily_refresh"),
    ],
)
def test_a_batch_takes_the_intraday_run_only_when_mid_month(sources, published, build_month, batch_month, job) -> None:
    from dagster_project.defs.operations.jobs import choose_job

    assert choose_job(sources, published, build_month, batch_month) == job


def test_the_intraday_run_of_a_bureau_file_is_its_path_to_the_warnings_and_the_publish() -> None:
    from dagster_project.definitions import defs
    from dagster_project.defs.operations.jobs import intraday_keys

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in intraday_keys(graph, ["credit_bureau"])}
    assert {
        "raw_credit_bureau",
        "staging/stg_bureau__credit_reports",
        "marts/dim_client",
        "app/risk_early_warnings",
        "app/client_policy",
        "app/segment_policy",
        "published_warehouse",
    } <= keys
    # not what the bureau file cannot change, nor what waits for the daily run
    assert not keys & {
        "raw_clients",
        "raw_product_usage",
        "marts/fct_product_usage_monthly",
        "marts/client_features",
        "ml/segment_assignments",
        "app/client_product_recommendations",
        "app/early_warning_evaluation",
        "marts/client_segments",
        "ml/early_warning_calibration",
    }
    usage = {k.to_user_string() for k in intraday_keys(graph, ["product_usage"])}
    # the usage facts with the state recorded after them, so the next run does not build the same months again
    assert {"marts/fct_product_usage_monthly", "intermediate/int_usage_fact_months_recorded"} <= usage
    assert "raw_credit_bureau" not in usage and "marts/client_features" not in usage
    assert defs.resolve_job_def("intraday_warnings").tags["lendseg/writer"] == "build"
    # dbt tests travel with their models
    checks = dg.AssetSelection.assets(*intraday_keys(graph, ["credit_bureau"])).resolve_checks(graph)
    assert any(c.asset_key.to_user_string() == "marts/dim_client" for c in checks)


def test_the_newest_usage_month_of_a_batch_is_read_from_the_files(tmp_path: Path) -> None:
    from dagster_project.defs.operations.sensors import newest_usage_month

    a, b, bad = tmp_path / "a.csv", tmp_path / "b.parquet", tmp_path / "bad.csv"
    a.write_text("account_id,snapshot_month\nA1,2026-10-01\nA2,2026-11-01\n")
    with duckdb.connect() as con:
        con.execute(f"COPY (SELECT 'A3' AS account_id, DATE '2026-09-01' AS snapshot_month) TO '{b}' (FORMAT parquet)")
    bad.write_text("account_id,month\nA1,2026-10-01\n")
    assert newest_usage_month([a, b]) == "2026-11"
    assert newest_usage_month([b]) == "2026-09"
    assert newest_usage_month([a, bad]) is None  # no snapshot_month: the daily run's ingest refuses it by name


def _touch(path: Path, text: str, mtime_ns: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_the_landing_sensor_requests_the_intraday_run_for_a_mid_month_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from dagster_project.definitions import defs
    from dagster_project.defs.operations.sensors import landing_sensor

    data = tmp_path / "data"
    monkeypatch.setenv("LENDSEG_DATA_DIR", str(data))
    monkeypatch.delenv("LENDSEG_LANDING_DIR", raising=False)
    monkeypatch.delenv("LENDSEG_WAREHOUSE_PATH", raising=False)
    monkeypatch.setenv("LENDSEG_LANDING_SETTLE_S", "0")
    (data / "build").mkdir(parents=True)
    with duckdb.connect(str(data / "build" / "build.duckdb")) as con:  # a build whose newest usage month is 2026-11
        con.execute("CREATE SCHEMA raw")
        con.execute(
            "CREATE TABLE raw._deliveries (source VARCHAR, file_name VARCHAR, checksum VARCHAR, "
            "file_size BIGINT, file_mtime_ns BIGINT)"
        )
        con.execute("CREATE TABLE raw.product_usage (account_key VARCHAR, snapshot_month DATE)")
        con.execute("INSERT INTO raw.product_usage VALUES ('a', DATE '2026-11-01')")
    now = time.time_ns() - 10**9
    _touch(data / "landing" / "credit_bureau" / "cb_20261215.csv", "report_id\nR1\n", now)
    with dg.instance_for_test() as instance:
        first = landing_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert first.run_requests[0].job_name == "daily_refresh"  # nothing published yet
        (data / "warehouse.duckdb").write_bytes(b"")  # a published file exists
        request = landing_sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests[0]
        assert request.job_name == "intraday_warnings"
        keys = {k.to_user_string() for k in request.asset_selection}
        assert "raw_credit_bureau" in keys and "app/risk_early_warnings" in keys and "raw_product_usage" not in keys
        _touch(data / "landing" / "product_usage" / "pu_202612.csv", "account_id,snapshot_month\nA,2026-12-01\n", now)
        closing = landing_sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests[0]
        assert closing.job_name == "daily_refresh" and closing.asset_selection is None  # a month closes


def test_an_intraday_run_is_refused_before_anything_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.cli import preflight

    monkeypatch.setenv("LENDSEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LENDSEG_WAREHOUSE_PATH", raising=False)
    monkeypatch.delenv("LENDSEG_ENGINE", raising=False)
    problem = preflight("intraday_warnings", demo=True)
    assert problem and "there is none yet" in problem and "run daily_refresh first" in problem
    assert preflight("daily_refresh", demo=True) is None  # the first run publishes everything
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "warehouse.duckdb").write_bytes(b"")
    assert preflight("intraday_warnings", demo=True) is None
