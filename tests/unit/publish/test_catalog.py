"""Published column comments: documented, inherited, or built for population columns; documented audit tables."""

import duckdb

from dagster_project.defs.publish.catalog import AUDIT_TABLES, COLUMN_DOCS, column_comment, empty_table_sql


def test_column_comment_sources_in_order() -> None:
    build = {"marts.dim_client": {"size_class": "Size class."}, "marts.dim_segment": {"bureau_score": "Median score."}}
    assert column_comment("marts.x", "c", "own", build) == "own"
    assert column_comment("ml.k_selection", "k", None, build) == COLUMN_DOCS["ml.k_selection"]["k"]
    assert column_comment("marts.client_segments", "size_class", None, build) == "Size class."
    text = column_comment("marts.dim_segment", "bureau_score_population", None, build)
    assert "population" in text and "Median score." in text
    assert column_comment("marts.x", "undocumented", None, build) is None


def test_every_documented_audit_table_can_be_created_empty_with_comments() -> None:
    con = duckdb.connect()
    con.execute("CREATE SCHEMA audit")
    for table, (desc, cols) in AUDIT_TABLES.items():
        con.execute(empty_table_sql(f"audit.{table}", cols))
        assert desc and all(text for _, _, text in cols)
        assert con.execute(f"SELECT count(*) FROM audit.{table}").fetchone()[0] == 0
    assert {"pipeline_alerts", "quarantined_rows", "rejected_deliveries", "data_quality_results"} <= set(AUDIT_TABLES)
