"""An evaluation runs again exactly when a month closes or its code or settings changed, and always on retrain."""

from types import SimpleNamespace

import duckdb

from dagster_project.defs.applications import evaluation_inputs as inputs


def _context(job: str = "daily_refresh", **tags: str) -> SimpleNamespace:
    return SimpleNamespace(run=SimpleNamespace(job_name=job, tags=tags))


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA app")
    for t in ("clients", "credit_bureau", "product_usage"):  # review_decisions not delivered yet
        con.execute(f"CREATE TABLE raw.{t} (k INT, snapshot_month DATE, _ingested_at TIMESTAMP)")
        con.execute(f"INSERT INTO raw.{t} VALUES (1, DATE '2026-10-01', TIMESTAMP '2026-11-01 08:00:00')")
    con.execute("CREATE TABLE app.recommendation_evaluation (x INT)")
    return con


def test_same_closed_month_reuses_the_last_evaluation_and_a_new_month_runs_it_again() -> None:
    con = _warehouse()
    fp = inputs.fingerprint(con, {"n_bootstrap": 2000})
    out = "app.recommendation_evaluation"
    assert inputs.last_run_if_unchanged(_context(), con, "rec", fp, out) is None  # never evaluated
    inputs.record(con, "rec", fp, "run-1")
    assert inputs.last_run_if_unchanged(_context(), con, "rec", fp, out) == "run-1"
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) == fp
    assert inputs.fingerprint(con, {"n_bootstrap": 200}) != fp  # a setting
    # deliveries within the month: a bureau file, a client change, a correction of a usage month - the evaluation stands
    con.execute("INSERT INTO raw.credit_bureau VALUES (2, NULL, TIMESTAMP '2026-11-15 08:00:00')")
    con.execute("UPDATE raw.clients SET _ingested_at = TIMESTAMP '2026-11-16 08:00:00'")
    con.execute("INSERT INTO raw.product_usage VALUES (3, DATE '2026-09-01', TIMESTAMP '2026-11-17 08:00:00')")
    con.execute("CREATE TABLE raw.review_decisions (k INT, _ingested_at TIMESTAMP)")
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) == fp
    con.execute(
        "INSERT INTO raw.product_usage VALUES (2, DATE '2026-11-01', TIMESTAMP '2026-12-02 08:00:00')"
    )  # a month closes
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) != fp
    con.execute("DELETE FROM raw.product_usage WHERE k = 2")
    assert inputs.fingerprint(con, {"n_bootstrap": 2000}) == fp


def test_before_any_usage_delivery_the_closed_month_is_none() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    assert inputs.closed_month(con) is None
    assert inputs.fingerprint(con, {}) == inputs.fingerprint(con, {})


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
