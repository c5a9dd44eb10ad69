"""One segment of record per client, one id type, warnings an RM can act on, a policy that singles out - read from
the shared published workspace (``published_ws``: no pipeline run of its own). Issue 24."""

import duckdb
import pytest
from conftest import Workspace

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.segmentation import rules

pytestmark = pytest.mark.e2e

APP_TABLES = (
    "client_product_recommendations",
    "risk_early_warnings",
    "segment_policy",
    "client_policy",
    "segment_marketing",
    "workout_clients",
)


@pytest.fixture(scope="module")
def con(published_ws: Workspace):
    c = duckdb.connect(str(published_ws.warehouse), read_only=True)
    yield c
    c.close()


def one(con, sql: str):
    return con.execute(sql).fetchone()[0]


def test_every_client_has_exactly_one_segment_of_record_with_a_dim_segment_row(con) -> None:
    assert one(con, "SELECT count(*) FROM marts.dim_client") > 300
    assert (
        one(
            con,
            """SELECT count(*) FROM marts.dim_client d WHERE (SELECT count(*) FROM marts.client_segments s
                       WHERE s.client_key = d.client_key AND s.final_segment_id IS NOT NULL) <> 1""",
        )
        == 0
    )
    assert one(con, "SELECT count(*) FROM marts.client_segments") == one(con, "SELECT count(*) FROM marts.dim_client")
    assert (
        one(
            con,
            """SELECT count(*) FROM marts.client_segments s WHERE (SELECT count(*) FROM marts.dim_segment g
                       WHERE g.segment_id = s.final_segment_id) <> 1""",
        )
        == 0
    )
    sources = dict(con.execute("SELECT segment_source, count(*) FROM marts.client_segments GROUP BY 1").fetchall())
    assert set(sources) <= {"model", "rule_based"} and sources.get("rule_based", 0) > 0  # the prospects at least
    assert (
        one(
            con,
            "SELECT count(*) FROM marts.client_segments WHERE lifecycle_stage = 'prospect' "
            "AND segment_source <> 'rule_based'",
        )
        == 0
    )


def test_dbt_and_rules_py_give_unscored_clients_the_same_rule_segment(con) -> None:
    bad = con.execute(f"""SELECT client_key, size_class, industry_risk_class, final_segment_id FROM
        marts.client_segments
                          WHERE segment_id IS NULL AND assignment_source = 'rule_based'
                            AND final_segment_id <> {rules.sql_expr("size_class", "industry_risk_class")}""").fetchall()
    assert not bad, bad[:5]
    names = dict(con.execute("SELECT segment_id, segment_name FROM marts.dim_segment WHERE segment_id < 0").fetchall())
    assert names == {int(r.segment_id): r.name for r in rules.rule_segments().itertuples()}


def test_one_id_type_everywhere_and_the_readme_join_works(con) -> None:
    types = dict(
        con.execute(
            "SELECT table_name, data_type FROM duckdb_columns() WHERE schema_name = 'marts' "
            "AND column_name IN ('segment_id', 'final_segment_id') AND table_name <> 'client_segments' "
            "UNION ALL SELECT 'client_segments', data_type FROM duckdb_columns() WHERE schema_name = 'marts' "
            "AND table_name = 'client_segments' AND column_name = 'final_segment_id'"
        ).fetchall()
    )
    for t in (*APP_TABLES, "dim_segment", "client_segments"):
        assert types.get(t) == "BIGINT", (t, types.get(t))
    joined = con.execute(
        "SELECT count(*), count(g.segment_name) FROM marts.segment_policy p JOIN marts.dim_segment g USING (segment_id)"
    ).fetchone()
    assert joined[0] == joined[1] == one(con, "SELECT count(*) FROM marts.segment_policy") > 0
    assert (
        one(con, "SELECT count(*) FROM (SELECT segment_id FROM marts.dim_segment GROUP BY 1 HAVING count(*) > 1)") == 0
    )


def test_no_published_column_is_typed_null(con) -> None:
    assert (
        con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE data_type = 'NULL'"
        ).fetchall()
        == []
    )
    assert (
        one(
            con,
            "SELECT data_type FROM duckdb_columns() WHERE table_name = 'dim_segment' "
            "AND column_name = 'retired_in_version'",
        )
        == "VARCHAR"
    )


def test_clients_in_default_are_in_workout_and_have_no_early_warning(con) -> None:
    assert one(con, "SELECT count(*) FROM marts.workout_clients") == one(
        con, "SELECT count(*) FROM marts.dim_client WHERE rating_grade = 'D'"
    )
    assert (
        one(
            con,
            "SELECT count(*) FROM marts.risk_early_warnings w JOIN marts.dim_client d USING (client_key) "
            "WHERE d.rating_grade = 'D'",
        )
        == 0
    )
    assert (
        one(con, "SELECT count(*) FROM marts.workout_clients WHERE default_reason IS NULL OR segment_id IS NULL") == 0
    )


def test_each_warning_shows_the_threshold_of_its_own_severity(con) -> None:
    rows = con.execute(
        "SELECT signal, severity, level_driver, threshold, observed_value FROM marts.risk_early_warnings "
        "WHERE status = 'open'"
    ).fetchall()
    assert rows
    points = con.execute(
        "SELECT watch_threshold, warning_threshold, critical_threshold FROM ml.early_warning_calibration "
        "ORDER BY version DESC LIMIT 1"
    ).fetchone()
    for signal, severity, driver, threshold, observed in rows:
        if driver == "expert":
            assert threshold == ew.threshold_for(signal, severity), (signal, severity, threshold)
            crossed = observed < threshold if ew.SIGNALS[signal].direction == "<" else observed >= threshold
            assert crossed, (signal, severity, observed, threshold)
        else:
            assert driver == "score" and threshold == points[ew.SEVERITY_RANK[severity] - 1], (
                signal,
                severity,
                threshold,
            )


def test_policy_singles_out_a_minority_with_rising_expected_default_rates(con) -> None:
    shares = dict(
        con.execute(
            "SELECT approval_track, count(*) / sum(count(*)) OVER () FROM marts.client_policy GROUP BY 1"
        ).fetchall()
    )
    assert shares.get("enhanced_review", 0) + shares.get("restricted", 0) <= 0.40, shares
    edr = con.execute(
        "SELECT approval_track, any_value(track_expected_default_rate) FROM marts.segment_policy GROUP BY 1"
    ).fetchall()
    order = {t: i for i, t in enumerate(("standard", "enhanced_review", "restricted"))}
    rates = [r for _, r in sorted(edr, key=lambda x: order[x[0]]) if r is not None]
    assert rates == sorted(rates) and len(set(rates)) == len(rates), edr
    assert (
        one(
            con,
            "SELECT count(*) FROM marts.client_policy WHERE rating_grade = 'D' "
            "AND (approval_track <> 'restricted' OR NOT in_default)",
        )
        == 0
    )
