"""The Spark engine's two hand-overs with the build database (LENDSEG_ENGINE=spark; docs/scale_out.md).

* :func:`export_sources` writes the dbt sources a step reads - the landed, validated, pseudonymised ``raw``
  tables and the model's ``ml`` tables - from the build database to the Parquet raw layer
  (``LENDSEG_LAKE_DIR/<schema>/<table>/``), monthly tables partitioned by month
  (``delivery_month=YYYY-MM``). Only what changed since the last export is written (a fingerprint per table
  or month partition); validation and pseudonymisation are never repeated, and no clear identifier exists
  in the build database to be written. Every table or partition is written beside its old copy and swapped
  in, so a reader never sees half a table.
* :func:`mirror_built` copies the tables dbt built on Spark (Parquet under ``LENDSEG_SPARK_DIR/warehouse``)
  into the build database's same schemas, with the model descriptions, so that the single-machine stages
  (model training, applications, checks, publishing) read them unchanged. It is part of the dbt step, so
  dbt's asset stays the one writer of ``staging`` / ``intermediate`` / ``marts`` / ``reference``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib.tables import exists, sql_literal, table_columns, write_comments

# Monthly sources and the date column their month partition is taken from.
PARTITIONED_BY = {("raw", "product_usage"): "snapshot_month", ("raw", "credit_bureau"): "report_date"}
PARTITION_COLUMN = "delivery_month"
STATE_FILE = "_lendseg_export.json"  # Spark and DuckDB skip files starting with "_" or "."


# Spark's own logging, errors only (and no console progress bar, profiles.yml): dagster-dbt reads dbt's JSON log
# lines from the same stream as the JVM's output, and JVM text written into a dbt line costs that line's event
# (two test results, then three models, were lost so before this).
LOG4J2 = """status = error
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
# "create database if not exists" logs the metastore's AlreadyExistsException as an error: not one
logger.hms.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.hms.level = off
"""


def spark_missing() -> str | None:
    """Why the Spark engine cannot run on this machine (one line), or None: the extra and Java are needed."""
    import importlib.util

    missing = [m for m in ("pyspark", "pyarrow") if importlib.util.find_spec(m) is None]
    if importlib.util.find_spec("dbt.adapters.spark") is None:
        missing.append("dbt-spark")
    if missing:
        return (
            f"LENDSEG_ENGINE=spark needs {', '.join(missing)}: install the spark extra "
            "(pip install -c requirements.lock -e '.[spark]')"
        )
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "LENDSEG_ENGINE=spark needs Java 17 (no java on PATH and no JAVA_HOME)"
    return None


def prepare_spark_dir(spark_dir: Path) -> Path:
    """Create the Spark engine's folder with its log configuration (read by dbt's and scoring's JVMs)."""
    spark_dir.mkdir(parents=True, exist_ok=True)
    conf = spark_dir / "log4j2.properties"
    if not conf.exists() or conf.read_text() != LOG4J2:
        conf.write_text(LOG4J2)
    return conf


def step_sources(manifest: Mapping[str, Any], node_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(schema, table) of every dbt source the given nodes read, sorted."""
    nodes = manifest["nodes"]
    out = set()
    for uid in node_ids:
        for dep in nodes.get(uid, {}).get("depends_on", {}).get("nodes", []):
            if dep.startswith("source."):
                src = manifest["sources"][dep]
                out.add((src["schema"], src.get("identifier") or src["name"]))
    return sorted(out)


def _swap_in(new: Path, final: Path) -> None:
    """Replace ``final`` by the fully written ``new`` (both folders); the old copy is removed after the swap."""
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:6]}")
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def _copy(con: duckdb.DuckDBPyConnection, select_sql: str, folder: Path) -> None:
    for left in folder.parent.glob(f".{folder.name}.*"):  # a stopped run's half-written or old copy
        shutil.rmtree(left, ignore_errors=True)
    tmp = folder.with_name(f".{folder.name}.writing-{uuid.uuid4().hex[:6]}")
    tmp.mkdir(parents=True)
    con.execute(f"COPY ({select_sql}) TO {sql_literal(str(tmp / 'part-0.parquet'))} (FORMAT parquet)")
    _swap_in(tmp, folder)


def parquet_list_sql(files: Iterable[str]) -> str:
    """A DuckDB list literal of Parquet file paths, for ``read_parquet``."""
    return "[" + ", ".join(sql_literal(f) for f in files) + "]"


def _fingerprint_sql(table: str, cols: set[str]) -> str:
    ingested = "max(_ingested_at)::VARCHAR" if "_ingested_at" in cols else "NULL"
    # ml tables carry no load time: a cheap content hash instead (they are per-client, small)
    content = "NULL" if "_ingested_at" in cols else "sum(hash(t))::VARCHAR"
    return (
        f"SELECT count(*)::VARCHAR || '|' || coalesce({ingested}, '') || '|' || coalesce({content}, '') "
        f"FROM {table} AS t"
    )


def export_sources(con: duckdb.DuckDBPyConnection, lake: Path, sources: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Write each source table (or its changed month partitions) to the lake; returns partitions written per table.

    A source table missing from the build database is an error naming it (dbt could not read it either).
    """
    written: dict[str, int] = {}
    for schema, name in sources:
        if not exists(con, schema, name):
            raise RuntimeError(f"{schema}.{name}: a dbt source on Spark, but the build database has no such table")
        table, folder = f"{schema}.{name}", lake / schema / name
        cols = table_columns(con, schema, name)
        state_path = folder / STATE_FILE
        state = json.loads(state_path.read_text()) if state_path.exists() else {}
        date_col = PARTITIONED_BY.get((schema, name))
        if date_col is None:
            fp = con.execute(_fingerprint_sql(table, cols)).fetchone()[0]
            if state.get("table") != fp or not folder.exists():
                _copy(con, f"SELECT * FROM {table}", folder)
                written[table] = 1
            new_state = {"table": fp}
        else:
            month = f"strftime({date_col}, '%Y-%m')"
            rows = con.execute(
                f"SELECT {month} AS m, count(*)::VARCHAR || '|' || coalesce(max(_ingested_at)::VARCHAR, '') "
                f"FROM {table} GROUP BY m ORDER BY m"
            ).fetchall()
            # an empty table is one empty partition, so that Spark still finds its schema
            current = {m or "none": fp for m, fp in rows} or {"none": "empty"}
            folder.mkdir(parents=True, exist_ok=True)
            n = 0
            for m, fp in current.items():
                part = folder / f"{PARTITION_COLUMN}={m}"
                if state.get(m) != fp or not part.exists():
                    cond = f"{month} = {sql_literal(m)}" if m != "none" else f"{date_col} IS NULL"
                    _copy(con, f"SELECT * FROM {table} WHERE {cond}", part)
                    n += 1
            for gone in set(state) - set(current):  # a month no longer in the table (e.g. quarantined away)
                shutil.rmtree(folder / f"{PARTITION_COLUMN}={gone}", ignore_errors=True)
                n += 1
            written[table] = n
            new_state = current
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_name(f".{STATE_FILE}.{uuid.uuid4().hex[:6]}")
        tmp.write_text(json.dumps(new_state, sort_keys=True))
        os.replace(tmp, state_path)
    return written


def built_relations(run_results: Mapping[str, Any], manifest: Mapping[str, Any]) -> list[dict]:
    """The models and seeds a dbt invocation built successfully, as their manifest nodes."""
    out = []
    for r in run_results.get("results", []):
        node = manifest["nodes"].get(r["unique_id"], {})
        if node.get("resource_type") in ("model", "seed") and r.get("status") == "success":
            out.append(node)
    return out


def spark_table_dir(spark_warehouse: Path, schema: str, name: str) -> Path:
    """Where a managed Spark table's Parquet files live (Spark's default layout)."""
    return spark_warehouse / f"{schema}.db" / name


def mirror_built(con: duckdb.DuckDBPyConnection, spark_warehouse: Path, nodes: Iterable[Mapping[str, Any]]) -> int:
    """Copy every built Spark table into the build database (same schema and name, with dbt's descriptions)."""
    n = 0
    for node in nodes:
        schema, name = node["schema"], node.get("alias") or node["name"]
        folder = spark_table_dir(spark_warehouse, schema, name)
        files = sorted(str(p) for p in folder.rglob("*.parquet") if not p.name.startswith((".", "_")))
        if not files:
            raise RuntimeError(f"{schema}.{name}: dbt built it on Spark but {folder} holds no Parquet file")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE OR REPLACE TABLE {schema}.{name} AS SELECT * FROM read_parquet({parquet_list_sql(files)})")
        columns = {c: (v.get("description") or "") for c, v in node.get("columns", {}).items() if v.get("description")}
        write_comments(con, f"{schema}.{name}", node.get("description") or "", columns, every_column=False)
        n += 1
    return n
