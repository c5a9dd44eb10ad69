"""The benchmark's floor: the same ingestion, mart SQL, model fit + score and publish copy, done directly in
one DuckDB process with no orchestration and no checks. It bounds what the pipeline could cost."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np

from dagster_project.defs.ingest.contract import SOURCES
from dagster_project.lib.pseudonymise import hmac_sql
from dagster_project.lib.settings import DBT_PROJECT_DIR


def _reader(landing: Path, source: str, fmt: str) -> str:
    return _files_reader(f"'{landing}/{source}/*.{fmt}'", source, fmt)


def _files_reader(files: str, source: str, fmt: str) -> str:
    if fmt == "parquet":
        return f"read_parquet({files})"
    cols = ", ".join(f"'{c.name}': 'VARCHAR'" for c in SOURCES[source].columns)
    return f"read_csv({files}, header=true, auto_detect=false, columns={{{cols}}})"


def _ingest(con: duckdb.DuckDBPyConnection, landing: Path, fmt: str, key: str) -> int:
    rows = 0
    for name, src in SOURCES.items():
        if not (landing / name).exists():
            continue
        exprs = [
            f"{hmac_sql(key, c.name)} AS {c.stored_name}"
            if c.pii == "hmac"
            else f"TRY_CAST({c.name} AS {c.type}) AS {c.name}"
            for c in src.kept
        ]
        con.execute(f"CREATE TABLE raw_{name} AS SELECT {', '.join(exprs)} FROM {_reader(landing, name, fmt)}")
        rows += con.execute(f"SELECT count(*) FROM raw_{name}").fetchall()[0][0]
    return rows


def _ingest_increment(con: duckdb.DuckDBPyConnection, landing: Path, fmt: str, key: str) -> int:
    """The increment's files into the raw tables: rows of a key already there are replaced (the pipeline's upsert)."""
    rows = 0
    for name, src in SOURCES.items():
        files = sorted((landing / name).glob(f"*.{fmt}")) if (landing / name).exists() else []
        if not files:
            continue
        exprs = [
            f"{hmac_sql(key, c.name)} AS {c.stored_name}"
            if c.pii == "hmac"
            else f"TRY_CAST({c.name} AS {c.type}) AS {c.name}"
            for c in src.kept
        ]
        listed = "[" + ", ".join(f"'{f}'" for f in files) + "]"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE new_{name} AS SELECT {', '.join(exprs)} "
            f"FROM {_files_reader(listed, name, fmt)}"
        )
        keys = ", ".join(src.key)
        con.execute(f"DELETE FROM raw_{name} WHERE ({keys}) IN (SELECT ({keys}) FROM new_{name})")
        con.execute(f"INSERT INTO raw_{name} BY NAME SELECT * FROM new_{name}")
        rows += con.execute(f"SELECT count(*) FROM new_{name}").fetchall()[0][0]
    return rows


DERIVED_TABLES = (
    "sme_size_thresholds",
    "province_regions",
    "industry_sections",
    "rating_master_scale",
    "dim_client",
    "usage_profile",
    "credit_profile",
    "client_features",
    "assignments",
)


def run_floor_increment(landing: Path, work: Path, fmt: str, key: str, memory_limit: str = "4GB") -> dict[str, dict]:
    """One more delivery on the database ``run_floor`` (and ``run_floor_applications``) left in ``work``, bare: the
    increment's files upserted into the raw tables, then every per-client table, the model and the applications
    made again from the raw tables (cheap in one DuckDB process) and published. Each step's seconds and rows."""
    con = duckdb.connect(str(work / "floor.duckdb"), config={"memory_limit": memory_limit, "threads": 2})

    def drop(tables: tuple[str, ...]) -> None:
        for t in tables:
            con.execute(f"DROP TABLE IF EXISTS {t}")

    steps: list[tuple[str, Callable[[], int]]] = [
        ("ingest", lambda: _ingest_increment(con, landing, fmt, key)),
        ("dimensions", lambda: drop(DERIVED_TABLES) or _dimensions(con)),
        ("profiles_features", lambda: _profiles_and_features(con)),
        ("model_fit_score", lambda: _model(con)),
        ("publish", lambda: _publish(con, work / "floor_published.duckdb")),
        (
            "applications",
            lambda: (
                drop(APPLICATION_TABLES)
                or sum(
                    _create(con, sql, t)
                    for sql, t in (
                        (FLAG_SQL, "warning_flags"),
                        (RECOMMEND_SQL, "recommendations"),
                        (POLICY_SQL, "client_policy"),
                    )
                )
            ),
        ),
        ("publish_applications", lambda: _publish_applications(con, work / "floor_published.duckdb")),
    ]
    out = _timed(steps)
    con.close()
    return out


def _dimensions(con: duckdb.DuckDBPyConnection) -> int:
    seeds = DBT_PROJECT_DIR / "seeds"
    for seed in ("sme_size_thresholds", "province_regions", "industry_sections", "rating_master_scale"):
        con.execute(f"CREATE TABLE {seed} AS SELECT * FROM read_csv('{seeds / seed}.csv', header=true)")
    con.execute("""
        CREATE TABLE dim_client AS
        WITH latest AS (SELECT client_key, arg_max(bureau_score, report_date) AS score FROM raw_credit_bureau GROUP
            BY 1)
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
        SELECT client_key, count(DISTINCT product_code) AS products, sum(credit_limit) FILTER (WHERE snapshot_month
            = m.last) AS limit_now,
               avg(outstanding_balance / nullif(credit_limit, 0)) AS avg_util, max(days_past_due) AS max_dpd,
               sum(interaction_count) AS interactions, count(*) FILTER (WHERE days_past_due > 0) AS arrears_months
        FROM raw_product_usage, m WHERE snapshot_month > m.last - INTERVAL 12 MONTH GROUP BY client_key""")
    con.execute("""
        CREATE TABLE credit_profile AS
        SELECT client_key, arg_max(bureau_score, report_date) AS score, arg_max(total_debt, report_date) AS debt,
               arg_max(collateral_value, report_date) AS collateral, stddev(operating_cash_flow) AS cf_sd, count(*)
                   AS reports
        FROM raw_credit_bureau GROUP BY client_key""")
    con.execute("""
        CREATE TABLE client_features AS
        SELECT d.client_key, ln(1 + coalesce(d.employee_count, 0)) AS log_emp, ln(1 + coalesce(d.annual_revenue,
            0)) AS log_rev,
               coalesce(c.score, 600) AS score, coalesce(u.products, 0) AS products, ln(1 + coalesce(u.limit_now,
                   0)) AS log_limit,
               coalesce(u.avg_util, 0) AS util, coalesce(u.max_dpd, 0) AS max_dpd, coalesce(u.interactions, 0) AS
                   interactions
        FROM dim_client d LEFT JOIN usage_profile u USING (client_key) LEFT JOIN credit_profile c USING (client_key)
        WHERE d.relationship_status <> 'prospect'""")
    return con.execute("SELECT count(*) FROM client_features").fetchall()[0][0]


def _model(con: duckdb.DuckDBPyConnection, k: int = 7, sample: int = 50_000) -> int:
    from sklearn.cluster import KMeans

    cols = "log_emp, log_rev, score, products, log_limit, util, max_dpd, interactions"
    x = con.execute(
        f"SELECT {cols} FROM client_features USING SAMPLE reservoir({sample} ROWS) REPEATABLE (1)"
    ).fetchnumpy()
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
    out = _timed(steps)
    con.close()
    return out


# ---------------------------------------------------------------- the applications, bare
# The same kinds of work as the pipeline's applications (defs/applications), without their history, calibration,
# explanations or checks: what the applications could cost at the least. Read from the core floor's tables.

FLAG_SQL = """
    CREATE TABLE warning_flags AS
    WITH months AS (
        SELECT client_key, snapshot_month, max(days_past_due) AS max_dpd,
               sum(outstanding_balance) / nullif(sum(credit_limit), 0) AS utilisation
        FROM raw_product_usage GROUP BY client_key, snapshot_month),
    reports AS (
        SELECT client_key, report_date,
               lag(bureau_score) OVER (PARTITION BY client_key ORDER BY report_date, report_id) - bureau_score AS
                   score_drop
        FROM raw_credit_bureau),
    signals AS (
        SELECT m.client_key, m.snapshot_month, m.max_dpd, r.score_drop,
               coalesce(m.utilisation > 0.9 AND lag(m.utilisation) OVER w > 0.9, false) AS high_utilisation_2m
        FROM months m
        ASOF LEFT JOIN reports r ON r.client_key = m.client_key AND r.report_date < m.snapshot_month + INTERVAL 1 MONTH
        WINDOW w AS (PARTITION BY m.client_key ORDER BY m.snapshot_month))
    SELECT client_key, snapshot_month,
           CASE WHEN max_dpd >= 60 OR score_drop >= 60 THEN 'critical'
                WHEN max_dpd >= 30 OR score_drop >= 30 OR high_utilisation_2m THEN 'warning'
                WHEN max_dpd >= 1 OR score_drop >= 20 THEN 'watch' END AS flag_level
    FROM signals"""

RECOMMEND_SQL = """
    CREATE TABLE recommendations AS
    WITH held AS (
        SELECT DISTINCT client_key, product_code FROM raw_product_usage
        WHERE snapshot_month = (SELECT max(snapshot_month) FROM raw_product_usage)),
    shares AS (
        SELECT a.segment_id, h.product_code, count(*) / any_value(s.clients) AS holder_share
        FROM held h JOIN assignments a USING (client_key)
        JOIN (SELECT segment_id, count(*) AS clients FROM assignments GROUP BY segment_id) s USING (segment_id)
        GROUP BY a.segment_id, h.product_code)
    SELECT a.client_key, s.product_code, s.holder_share
    FROM assignments a JOIN shares s USING (segment_id)
    WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.client_key = a.client_key AND h.product_code = s.product_code)
    QUALIFY row_number() OVER (PARTITION BY a.client_key ORDER BY s.holder_share DESC, s.product_code) <= 3"""

POLICY_SQL = """
    CREATE TABLE segment_policy AS
    SELECT segment_id, ['standard', 'enhanced_review', 'restricted'][1 + segment_id % 3] AS track,
           CASE segment_id % 3 WHEN 0 THEN 1.0 WHEN 1 THEN 0.6 ELSE 0.0 END AS limit_factor
    FROM (SELECT DISTINCT segment_id FROM assignments);
    CREATE TABLE client_policy AS
    WITH latest_flag AS (SELECT client_key, arg_max(flag_level, snapshot_month) AS flag_level
                         FROM warning_flags GROUP BY client_key)
    SELECT a.client_key, a.segment_id, p.limit_factor,
           CASE WHEN f.flag_level = 'critical' OR p.track = 'restricted' THEN 'restricted'
                WHEN f.flag_level = 'warning' OR p.track = 'enhanced_review' THEN 'enhanced_review'
                ELSE 'standard' END AS track
    FROM assignments a JOIN segment_policy p USING (segment_id) LEFT JOIN latest_flag f USING (client_key)"""

APPLICATION_TABLES = ("warning_flags", "recommendations", "segment_policy", "client_policy")


def _create(con: duckdb.DuckDBPyConnection, sql: str, table: str) -> int:
    """Run the statements of ``sql``; the rows of the ``table`` they made."""
    con.execute(sql)
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def _publish_applications(con: duckdb.DuckDBPyConnection, out: Path) -> int:
    con.execute(f"ATTACH '{out}' AS pub")
    for t in APPLICATION_TABLES:
        con.execute(f"CREATE TABLE pub.{t} AS SELECT * FROM {t}")
    con.execute("DETACH pub")
    return len(APPLICATION_TABLES)


def run_floor_applications(work: Path, memory_limit: str = "4GB") -> dict[str, dict]:
    """Each bare application's seconds and rows, on the database ``run_floor`` left in ``work``, in one DuckDB process:
    warning flags per client-month (arrears >= 30 dpd, utilisation > 90 % two months running, bureau score drop >= 30
    -> warning; >= 60 dpd or a drop >= 60 -> critical), the neighbour-share recommendation (products the client's
    segment-mates hold and the client lacks, by share of holders in the segment, top 3 per client), the policy join
    (segments x a small policy table, per client with its latest flag) and the publish copy of those tables."""
    con = duckdb.connect(str(work / "floor.duckdb"), config={"memory_limit": memory_limit, "threads": 2})
    steps: list[tuple[str, Callable[[], int]]] = [
        ("warning_flags", lambda: _create(con, FLAG_SQL, "warning_flags")),
        ("recommendations", lambda: _create(con, RECOMMEND_SQL, "recommendations")),
        ("policy", lambda: _create(con, POLICY_SQL, "client_policy")),
        ("publish_applications", lambda: _publish_applications(con, work / "floor_published.duckdb")),
    ]
    out = _timed(steps)
    con.close()
    return out


def _timed(steps: list[tuple[str, Callable[[], int]]]) -> dict[str, dict[str, float | int]]:
    """Run the steps in order: {step: {seconds, rows}}."""
    out = {}
    for name, fn in steps:
        t = time.perf_counter()
        rows = fn()
        out[name] = {"seconds": round(time.perf_counter() - t, 2), "rows": rows}
    return out
