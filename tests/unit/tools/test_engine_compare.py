"""The engine comparison: equal data are equal whatever each engine's own hash bookkeeping says."""

import duckdb

from dagster_project.tools.engine_compare import compare_relation


def test_the_engines_own_fingerprints_are_not_compared_but_data_are() -> None:
    con = duckdb.connect()
    for side, fp, v in (("a", "3:123", 1.0), ("b", "3:987", 1.0)):
        con.execute(f"ATTACH ':memory:' AS {side}")
        con.execute(f"CREATE SCHEMA {side}.intermediate")
        con.execute(
            f"CREATE TABLE {side}.intermediate.m AS SELECT DATE '2026-09-01' AS snapshot_month, "
            f"'{fp}' AS month_fingerprint, {v} AS total"
        )
    assert compare_relation(con, "a", "b", "intermediate", "m") == []
    con.execute("UPDATE b.intermediate.m SET total = 2.0")
    assert [d.problem for d in compare_relation(con, "a", "b", "intermediate", "m")] == ["rows", "rows"]
