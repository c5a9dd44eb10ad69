"""The segment of every client as the applications see it: the model's when it has one, else the rule."""

import duckdb

from dagster_project.lib.tables import exists, sql_literal, table_columns


RULE_SEGMENT_SQL = ("'rule:' || d.size_class || '|' || d.industry_risk_class",
                    "'Rule-based: ' || d.size_class || ' size, ' || d.industry_risk_class || ' industry risk'")


def segment_sql(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """(SQL with client_key, segment_id, segment_name, segment_source for every dim_client row, source label).

    Uses marts.client_segments (final_segment_id, else segment_id) or ml.segment_assignments when present;
    clients the model did not assign fall back to the rule-based segment size_class x industry_risk_class.
    """
    rid, rname = RULE_SEGMENT_SQL
    model = None
    if exists(con, "marts", "client_segments"):
        cols = table_columns(con, "marts", "client_segments")
        sid = "final_segment_id" if "final_segment_id" in cols else "segment_id" if "segment_id" in cols else None
        if sid:
            name = ("s.final_segment_name" if sid == "final_segment_id" and "final_segment_name" in cols
                    else "s.segment_name" if "segment_name" in cols else "NULL")
            if exists(con, "marts", "dim_segment") and "segment_name" in table_columns(con, "marts", "dim_segment"):
                name = f"coalesce(ds.segment_name, {name})"
                join = f"LEFT JOIN marts.dim_segment AS ds ON ds.segment_id::VARCHAR = s.{sid}::VARCHAR"
            else:
                join = ""
            model = (f"SELECT s.client_key, s.{sid}::VARCHAR AS segment_id, {name}::VARCHAR AS segment_name "
                     f"FROM marts.client_segments AS s {join} WHERE s.{sid} IS NOT NULL", "marts.client_segments")
    if model is None and exists(con, "ml", "segment_assignments"):
        name = "'Segment ' || a.segment_id::VARCHAR"
        join = ""
        if exists(con, "marts", "dim_segment") and "segment_name" in table_columns(con, "marts", "dim_segment"):
            name = f"coalesce(ds.segment_name, {name})"
            join = "LEFT JOIN marts.dim_segment AS ds ON ds.segment_id::VARCHAR = a.segment_id::VARCHAR"
        model = (f"SELECT a.client_key, a.segment_id::VARCHAR AS segment_id, {name}::VARCHAR AS segment_name "
                 f"FROM ml.segment_assignments AS a {join}", "ml.segment_assignments")
    if model is None:
        return (f"SELECT d.client_key, {rid} AS segment_id, {rname} AS segment_name, 'rule_based' AS segment_source "
                "FROM marts.dim_client AS d"), "rule_based"
    return (f"SELECT d.client_key, coalesce(m.segment_id, {rid}) AS segment_id, coalesce(m.segment_name, {rname}) "
            f"AS segment_name, CASE WHEN m.segment_id IS NULL THEN 'rule_based' ELSE {sql_literal(model[1])} END AS segment_source "
            f"FROM marts.dim_client AS d LEFT JOIN ({model[0]}) AS m USING (client_key)"), model[1]
