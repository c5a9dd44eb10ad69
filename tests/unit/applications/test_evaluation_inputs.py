"""An evaluation runs again exactly when its inputs (raw tables, code, settings) changed, and always on retrain."""

from types import SimpleNamespace

import duckdb

from dagster_project.defs.applications import evaluation_inputs as inputs


def _context(job: str = "daily_refresh", **tags: str) -> SimpleNamespace:
    return SimpleNamespace(run=SimpleNamespace(job_name=job, tags=tags))


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA app")
    for t in ("clients", "credit_bureau", "product_usage"):  # review_decisions not delivered yet
        con.execute(f"CREATE TABLE raw.{t} (k INT, _ingested_at TIMESTAMP)")
        con.execute(f"INSERT INTO raw.{t} VALUES (1, TIMESTAMP '2026-11-01 08:00:00')")
    con.execute("CREATE TABLE app.recommendation_evaluation (x INT)")
    return con


def test_same_inputs_reuse_the_last_evaluation_and_any_change_runs_it_again() -> None:
    con = _warehouse()
    fp = inputs.fingerprint(con, {"n_bootstrap": 2000})
    out = "app.recommendation_evaluation"
    assert inputs.last_run_if_unchanged(_context(), con, "rec", fp, out) is None  # never evaluated
    inputs.record(con, "rec", fp, "run-1")
    assert inputs.last_run_if_unchanged(_context(), con, "rec", fp, out) == "run-1"
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) == fp
    assert inputs.fingerprint(con, {"n_bootstrap": 200}) != fp  # a setting
    con.execute("INSERT INTO raw.product_usage VALUES (2, TIMESTAMP '2026-11-02 08:00:00')")  # a new month
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) != fp
    con.execute("DELETE FROM raw.product_usage WHERE k = 2")
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) == fp
    con.execute("UPDATE raw.clients SET _ingested_at = TIMESTAMP '2026-11-03 08:00:00'")  # a correction
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) != fp
    con.execute("CREATE TABLE raw.review_decisions (k INT, _ingested_at TIMESTAMP)")  # a first delivery
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) != fp


def test_retrain_rebuild_and_a_missing_table_always_evaluate() -> None:
    con = _warehouse()
    fp = inputs.fingerprint(con, {})
    inputs.record(con, "rec", fp, "run-1")
    out = "app.recommendation_evaluation"
    assert inputs.last_run_if_unchanged(_context("monthly_retrain"), con, "rec", fp, out) is None
    assert inputs.last_run_if_unchanged(_context("full_rebuild"), con, "rec", fp, out) is None
    assert inputs.last_run_if_unchanged(_context(**{"lendseg/full_refresh": "true"}), con, "rec", fp, out) is None
    con.execute("DROP TABLE app.recommendation_evaluation")
    assert inputs.last_run_if_unchanged(_context(), con, "rec", fp, out) is None


def test_code_hash_covers_the_applications_and_the_dbt_project() -> None:
    assert len(inputs.code_hash()) == 64 and inputs.code_hash() == inputs.code_hash()
