"""The months a run's deliveries touched, shown on the ingest asset (the months the incremental models build again)."""

import duckdb

from dagster_project.defs.ingest.assets import months_touched


def test_months_of_the_rows_this_runs_deliveries_loaded() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    con.execute("CREATE TABLE raw.product_usage (snapshot_month DATE, _source_checksum VARCHAR)")
    con.execute(
        "INSERT INTO raw.product_usage VALUES ('2026-07-01', 'old'), ('2026-08-01', 'new'), "
        "('2026-09-01', 'new'), ('2026-09-01', 'fix'), ('2026-06-01', 'fix')"
    )
    assert months_touched(con, "product_usage", ["new", "fix"]) == ["2026-06", "2026-08", "2026-09"]
    assert months_touched(con, "product_usage", []) == []
    assert months_touched(con, "clients", ["new"]) == []  # the client master has no month
