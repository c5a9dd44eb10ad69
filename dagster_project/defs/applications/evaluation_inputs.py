"""Whether a time-split evaluation must run again, or its inputs are the ones it last ran on.

The recommendation and early-warning evaluations read months of history: they run when a month closes, not on
every delivery. A run whose closed month (the newest usage month delivered) is the one the last evaluation ran on
keeps that evaluation table and says so in its metadata - a mid-month bureau file, a client-master change or a
correction waits for the next month's close (or ``monthly_retrain``). The fingerprint covers the closed month, the
code and dbt project they run with, and their own settings. ``monthly_retrain`` and ``full_rebuild`` always
evaluate again. Fingerprints live in ``state`` (never published).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.defs.applications.ew_state import STATE_SCHEMA
from dagster_project.lib.settings import DBT_PROJECT_DIR

TABLE = f"{STATE_SCHEMA}.evaluation_inputs"
USAGE_TABLE = "product_usage"
ALWAYS_EVALUATE_JOBS = ("monthly_retrain", "full_rebuild")


@lru_cache(maxsize=1)
def code_hash() -> str:
    """The applications' Python code and the dbt project (models, macros, seeds) they read through."""
    h = hashlib.sha256()
    roots = [Path(__file__).parent] + [DBT_PROJECT_DIR / d for d in ("models", "macros", "seeds")]
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".sql", ".csv", ".yml"):
                h.update(str(p.relative_to(root.parent)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def fingerprint(con: duckdb.DuckDBPyConnection, settings: dict) -> str:
    parts: dict = {"code": code_hash(), "settings": settings, "closed_month": closed_month(con)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def closed_month(con: duckdb.DuckDBPyConnection) -> str | None:
    """The newest month of the usage deliveries (the month that closed last), None before any usage delivery."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = ?", [USAGE_TABLE]
    ).fetchone()[0]
    if not exists:
        return None
    return con.execute(f"SELECT max(snapshot_month)::VARCHAR FROM raw.{USAGE_TABLE}").fetchone()[0]


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {TABLE} (asset VARCHAR PRIMARY KEY, fingerprint VARCHAR, "
        "run_id VARCHAR, evaluated_at TIMESTAMP)"
    )


def last_run_if_unchanged(
    context: dg.AssetExecutionContext, con: duckdb.DuckDBPyConnection, asset: str, fp: str, output_table: str
) -> str | None:
    """The run that evaluated these very inputs, when its output table is still there; else None."""
    if context.run.job_name in ALWAYS_EVALUATE_JOBS or context.run.tags.get("lendseg/full_refresh") == "true":
        return None
    _ensure(con)
    row = con.execute(f"SELECT fingerprint, run_id FROM {TABLE} WHERE asset = ?", [asset]).fetchone()
    schema, name = output_table.split(".")
    present = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?", [schema, name]
    ).fetchone()[0]
    return row[1] if row and row[0] == fp and present else None


def record(con: duckdb.DuckDBPyConnection, asset: str, fp: str, run_id: str) -> None:
    _ensure(con)
    con.execute(f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, now()::TIMESTAMP)", [asset, fp, run_id])


def store(
    con: duckdb.DuckDBPyConnection, name: str, ev, description: str, columns: dict[str, str], fp: str, run_id: str
) -> None:
    """``app.<name>`` from the evaluation frame ``ev`` and its inputs' fingerprint, in one transaction."""
    from dagster_project.defs.applications.store import write_app_table

    con.register("ev_df", ev)
    try:
        con.execute("BEGIN")
        write_app_table(con, name, "SELECT * FROM ev_df", description, columns)
        record(con, name, fp, run_id)
        con.execute("COMMIT")
    finally:
        con.unregister("ev_df")
