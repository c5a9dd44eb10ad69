"""The early-warning rules in SQL (ew_features.frame_sql) give what the per-observation rules give."""

import duckdb

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications import ew_features as ewf


def test_sql_severity_ranks_are_the_expert_severities() -> None:
    con = duckdb.connect()
    values = [None, -1.0, 0.0, 0.5, 0.99, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 19.0, 20.0, 29.9, 30.0, 59.0, 60.0, 61.0]
    for signal in ew.SIGNALS:
        for v in values:
            got = con.execute(f"SELECT {ewf.severity_rank_sql(signal, 'v')} FROM (SELECT ?::DOUBLE AS v)", [v]).fetchone()[0]
            want = ew.severity(signal, v)
            assert got == (ew.SEVERITY_RANK[want] if want else None), (signal, v)
