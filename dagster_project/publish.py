"""Publishing: copy the reader-facing schemas of a fully checked build to a new file, then swap it in.

Readers only ever open ``$LENDSEG_WAREHOUSE_PATH``. A publish writes a complete new file next to it (in
DuckDB storage version v1.5.0 so that DuckDB 1.5 clients such as the ``duckdb-cli`` package can read
it), flushes it to disk and ``os.replace``-s it over the old one: a reader that has the old file open
keeps reading it undisturbed, a new reader sees the new one, and nobody ever sees a half-written file.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS: tuple[str, ...] = ("marts",)
STORAGE_VERSION = "v1.5.0"


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _s(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _copy_schema(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, int]:
    rels = con.execute(
        "SELECT table_name, comment FROM duckdb_tables() WHERE database_name = 'build' AND schema_name = ? "
        "UNION ALL SELECT view_name, comment FROM duckdb_views() WHERE database_name = 'build' AND schema_name = ? "
        "ORDER BY 1", [schema, schema]).fetchall()
    con.execute(f"CREATE SCHEMA IF NOT EXISTS pub.{_q(schema)}")
    counts: dict[str, int] = {}
    for name, comment in rels:
        src, dst = f"build.{_q(schema)}.{_q(name)}", f"pub.{_q(schema)}.{_q(name)}"
        con.execute(f"CREATE TABLE {dst} AS SELECT * FROM {src}")
        if comment:
            con.execute(f"COMMENT ON TABLE {dst} IS {_s(comment)}")
        for col, ccomment in con.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE database_name = 'build' AND schema_name = ? "
            "AND table_name = ? AND comment IS NOT NULL AND comment <> ''", [schema, name]).fetchall():
            con.execute(f"COMMENT ON COLUMN {dst}.{_q(col)} IS {_s(ccomment)}")
        counts[f"{schema}.{name}"] = con.execute(f"SELECT count(*) FROM {dst}").fetchone()[0]
    return counts


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(build_path: Path, warehouse_path: Path, run_id: str, schemas: tuple[str, ...] = PUBLISHED_SCHEMAS,
            memory_limit: str = "4GB") -> dict[str, int]:
    """Write the allow-listed schemas of the build database to a new file and atomically swap it in.

    Returns row counts per published table. On any error the published file is left as it was.
    """
    warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = warehouse_path.with_name(f".{warehouse_path.name}.{run_id[:8]}.publishing")
    for stale in (tmp, tmp.with_name(tmp.name + ".wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(config={"memory_limit": memory_limit})
    try:
        con.execute(f"ATTACH {_s(str(build_path))} AS build (READ_ONLY)")
        con.execute(f"ATTACH {_s(str(tmp))} AS pub (STORAGE_VERSION '{STORAGE_VERSION}')")
        counts: dict[str, int] = {}
        for schema in schemas:
            counts |= _copy_schema(con, schema)
        con.execute("CREATE SCHEMA IF NOT EXISTS pub.audit")
        con.execute("CREATE TABLE pub.audit.publish_info AS SELECT ?::VARCHAR AS run_id, ?::TIMESTAMPTZ AS published_at, "
                    "?::VARCHAR AS storage_version", [run_id, datetime.now(timezone.utc), STORAGE_VERSION])
        con.execute("DETACH pub")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    _fsync(tmp)
    os.replace(tmp, warehouse_path)
    _fsync(warehouse_path.parent)
    return counts


def failed_blocking_checks(instance, run_id: str) -> list[str]:
    """Names of the asset checks in this run that failed with ERROR severity (blocking)."""
    import dagster as dg

    failed = []
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        ev = entry.dagster_event.event_specific_data
        if not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR:
            failed.append(f"{ev.asset_key.to_user_string()}:{ev.check_name}")
    return failed
