"""The benchmark's floor: the same ingestion, mart SQL, model fit + score and publish copy, done directly in
one DuckDB process with no orchestration and no checks. It bounds what the pipeline could cost."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np

from dagster_project.lib.settings import DBT_PROJECT_DIR
from dagster_project.defs.ingest.contract import SOURCES
from dagster_project.lib.pseudonymise import hmac_sql


def _reader(landing: Path, source: str, fmt: str) -> str:
    files = f"'{landing}/{source}/*.{fmt}'"
    if fmt == "parquet":
        return f"read_parquet({files})"
    cols = ", ".join(f"'{c.name}': 'VARCHAR'" for c in SOURCES[source].columns)
    return f"read_csv({files}, header=true, auto_detect=false, columns={{{cols}}})"


def _ingest(con: duckdb.DuckDBPyConnection, landing: Path, fmt: str, key: str) -> int:
    rows = 0
    for name, src in SOURCES.items():
        if not (landing / name).exists():
            continue
        exprs = [f"{hmac_sql(key, c.name)} AS {c.stored_name}" if c.pii == "hmac"
                 else f"TRY_CAST({c.name} AS {c.type}) AS {c.name}" for c in src.kept]
        con.execute(f"CREATE TABLE raw_{name} AS SELECT {', '.join(exprs)} FROM {_reader(landing, name, fmt)}")
        rows += con.execute(f"SELECT count(*) FROM raw_{name}").fetchall()[0][0]
    return rows


def _dimensions(con: duckdb.DuckDBPyConnection) -> int:
    seeds = DBT_PROJECT_DIR / "seeds"
    for seed in ("sme_size_thresholds", "province_regions", "industry_sections", "rating_master_scale"):
        con.execute(f"CREATE TABLE {seed} AS SELECT * FROM read_csv('{seeds / seed}.csv', header=true)")
    con.execute("""
        CREATE TABLE dim_client AS
        WITH latest AS (SELECT client_key, arg_max(bureau_score, report_date) AS score FROM raw_credit_bureau GROUP BY 1)
        SELECT c.*, left(c.industry_code, 1) AS section, s.industry_risk_class, p.economic_region, p.region_tier,
               CASE WHEN c.employee_count IS NULL OR c.annual_revenue IS NULL THEN 'unknown'
                    WHEN c.employee_count >= 1000 AND c.annual_revenue >= 4e8 THEN 'large'
                    WHEN c.employee_count >= 300 AND c.annual_revenue >= 2e7 THEN 'medium'
                    WHEN c.employee_count >= 20 AND c.annual_revenue >= 3e6 THEN 'small' ELSE 'micro' END AS size_class,
               r.rating_grade, l.score AS bureau_score
        FROM raw_clients c
        LEFT JOIN industry_sections s ON s.section_code = left(c.industry_code, 1)
        LEFT JOIN province_regions p ON lpad(p.province_code::VARCHAR, 2, '0') = c.province_code
        LEFT JOIN latest l USING (client_key)
        LEFT JOIN rating_master_scale r ON l.score BETWEEN r.score_min AND r.score_max""")
    return con.execute("SELECT count(*) FROM dim_client").fetchall()[0][0]


def _profiles_and_features(con: duckdb.DuckDBPyConnection) -> int:
    con.execute("""
        CREATE TABLE usage_profile AS
        WITH m AS (SELECT max(snapshot_month) AS last FROM raw_product_usage)
        SELECT client_key, count(DISTINCT product_code) AS products, sum(credit_limit) FILTER (WHERE snapshot_month = m.last) AS limit_now,
               avg(outstanding_balance / nullif(credit_limit, 0)) AS avg_util, max(days_past_due) AS max_dpd,
               sum(interaction_count) AS interactions, count(*) FILTER (WHERE days_past_due > 0) AS arrears_months
        FROM raw_product_usage, m WHERE snapshot_month > m.last - INTERVAL 12 MONTH GROUP BY client_key""")
    con.execute("""
        CREATE TABLE credit_profile AS
        SELECT client_key, arg_max(bureau_score, report_date) AS score, arg_max(total_debt, report_date) AS debt,
               arg_max(collateral_value, report_date) AS collateral, stddev(operating_cash_flow) AS cf_sd, count(*) AS reports
        FROM raw_credit_bureau GROUP BY client_key""")
    con.execute("""
        CREATE TABLE client_features AS
        SELECT d.client_key, ln(1 + coalesce(d.employee_count, 0)) AS log_emp, ln(1 + coalesce(d.annual_revenue, 0)) AS log_rev,
               coalesce(c.score, 600) AS score, coalesce(u.products, 0) AS products, ln(1 + coalesce(u.limit_now, 0)) AS log_limit,
               coalesce(u.avg_util, 0) AS util, coalesce(u.max_dpd, 0) AS max_dpd, coalesce(u.interactions, 0) AS interactions
        FROM dim_client d LEFT JOIN usage_profile u USING (client_key) LEFT JOIN credit_profile c USING (client_key)
        WHERE d.relationship_status <> 'prospect'""")
    return con.execute("SELECT count(*) FROM client_features").fetchall()[0][0]


def _model(con: duckdb.DuckDBPyConnection, k: int = 7, sample: int = 50_000) -> int:
    from sklearn.cluster import KMeans

    cols = "log_emp, log_rev, score, products, log_limit, util, max_dpd, interactions"
    x = con.execute(f"SELECT {cols} FROM client_features USING SAMPLE reservoir({sample} ROWS) REPEATABLE (1)").fetchnumpy()
    x = np.column_stack([x[c] for c in cols.split(", ")]).astype(float)
    mean, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    km = KMeans(n_clusters=k, n_init=3, random_state=0).fit((x - mean) / sd)
    con.execute("CREATE TABLE assignments (client_key VARCHAR, segment_id INTEGER)")
    reader = con.cursor()  # a second connection streams the features while the first one inserts
    cur = reader.execute(f"SELECT client_key, {cols} FROM client_features")
    n = 0
    while not (chunk := cur.fetch_df_chunk(50)).empty:
        z = (chunk[cols.split(", ")].to_numpy(float) - mean) / sd
        con.register("chunk_df", chunk[["client_key"]].assign(segment_id=km.predict(z).astype("int32")))
        con.execute("INSERT INTO assignments SELECT * FROM chunk_df")
        con.unregister("chunk_df")
        n += len(chunk)
    reader.close()
    return n


def _publish(con: duckdb.DuckDBPyConnection, out: Path) -> int:
    out.unlink(missing_ok=True)
    con.execute(f"ATTACH '{out}' AS pub (STORAGE_VERSION 'v1.5.0')")
    tables = ["dim_client", "usage_profile", "credit_profile", "client_features", "assignments"]
    for t in tables:
        con.execute(f"CREATE TABLE pub.{t} AS SELECT * FROM {t}")
    con.execute("DETACH pub")
    return len(tables)


def run_floor(landing: Path, work: Path, fmt: str, key: str, memory_limit: str = "4GB") -> dict[str, dict]:
    """Each step's seconds and rows, in one DuckDB process."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / "floor.duckdb"
    db.unlink(missing_ok=True)
    con = duckdb.connect(str(db), config={"memory_limit": memory_limit, "threads": 2})
    steps: list[tuple[str, Callable[[], int]]] = [
        ("ingest", lambda: _ingest(con, landing, fmt, key)),
        ("dimensions", lambda: _dimensions(con)),
        ("profiles_features", lambda: _profiles_and_features(con)),
        ("model_fit_score", lambda: _model(con)),
        ("publish", lambda: _publish(con, work / "floor_published.duckdb")),
    ]
    out = {}
    for name, fn in steps:
        t = time.perf_counter()
        rows = fn()
        out[name] = {"seconds": round(time.perf_counter() - t, 2), "rows": rows}
    con.close()
    return out
