"""Checks on the published file, run after the swap (a failure fails the run and shows on the asset's Checks tab).

* ``opens_read_only`` - the file opens read-only in the DuckDB CLI the README names (``.venv/bin/duckdb``, of
  the ``duckdb-cli`` package, a main dependency) and answers a query; fails when that CLI is missing;
* ``holds_manifest_tables`` - it holds every allow-listed table (marts, ml, the documented audit tables)
  with the row counts of the version manifest;
* ``every_column_commented`` - no published column lacks a comment.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.defs.publish.catalog import AUDIT_TABLES
from dagster_project.defs.publish.files import PUBLISHED_SCHEMAS, current_version, published_name
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect

PUBLISHED = dg.AssetKey("published_warehouse")


def published_table_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for (n,) in names}
    finally:
        con.close()


def expected_tables(build_con: duckdb.DuckDBPyConnection) -> set[str]:
    """The allow-list: every table/view of the published schemas in the build, and the documented audit tables."""
    build = [b for builds in PUBLISHED_SCHEMAS.values() for b in builds]
    rows = build_con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ? UNION "
        "SELECT schema_name, view_name FROM duckdb_views() WHERE schema_name IN ?",
        [build, build],
    ).fetchall()
    return (
        {f"{published_name(schema)}.{name}" for schema, name in rows}
        | {f"audit.{t}" for t in AUDIT_TABLES}
        | {"audit.publish_info", "audit.publish_manifest"}
    )


def manifest_mismatches(counts: dict[str, int], manifest_counts: dict[str, int], expected: set[str]) -> dict[str, list]:
    return {
        "missing_tables": sorted(expected - set(counts)),
        "row_count_mismatches": sorted(t for t, n in manifest_counts.items() if counts.get(t) != n),
    }


def uncommented_columns(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [
            r[0]
            for r in con.execute(
                "SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
                "WHERE NOT internal AND (comment IS NULL OR trim(comment) = '') ORDER BY 1"
            ).fetchall()
        ]
    finally:
        con.close()


def duckdb_cli() -> Path:
    """The DuckDB CLI of the ``duckdb-cli`` package, a main dependency: installed beside this Python
    (.venv/bin/duckdb)."""
    return Path(sys.executable).parent / "duckdb"


def open_read_only(path: Path, cli: Path | None = None, timeout_s: float = 120) -> tuple[bool, dict]:
    """Does ``path`` open read-only in the DuckDB CLI and answer a query (``select 1``, then its table count)?

    Fails - never falls back to Python's duckdb - when the CLI is missing: readers are told to use that CLI.
    """
    cli = cli or duckdb_cli()
    if not cli.exists():
        return False, {
            "problem": f"the DuckDB CLI is not installed at {cli}: install the project again "
            f"(pip install -c requirements.lock -e .; it brings duckdb-cli==1.5.6)"
        }
    cmd = [
        str(cli),
        "-readonly",
        str(path),
        "-csv",
        "-noheader",
        "-c",
        "select 1",
        "-c",
        "SELECT count(*) FROM duckdb_tables()",
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, {"client": str(cli), "problem": f"the DuckDB CLI did not answer: {e}"}
    out = proc.stdout.split()
    ok = proc.returncode == 0 and len(out) == 2 and out[0] == "1" and out[1].isdigit() and int(out[1]) > 0
    meta = {"client": str(cli), "tables": int(out[1]) if len(out) == 2 and out[1].isdigit() else -1}
    if not ok:
        meta["problem"] = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}")[-300:]
    return ok, meta


@dg.asset_check(
    asset=PUBLISHED,
    description="The published file opens read-only in the DuckDB CLI (duckdb-cli, "
    "beside the pipeline's Python) and answers a query; fails when that CLI is missing.",
)
def opens_read_only(warehouse: Warehouse) -> dg.AssetCheckResult:
    ok, meta = open_read_only(warehouse.settings.warehouse_path)
    return dg.AssetCheckResult(passed=ok, metadata=meta, description=meta.get("problem"))


@dg.asset_check(
    asset=PUBLISHED,
    description="The published file holds every allow-listed table (marts, ml, the "
    "documented audit tables) with the row counts of its version manifest.",
)
def holds_manifest_tables(warehouse: Warehouse) -> dg.AssetCheckResult:
    s = warehouse.settings
    v = current_version(s.warehouse_path, s.versions_dir)
    if v is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "the warehouse is no kept version"})
    counts = published_table_counts(s.warehouse_path)
    with connect(s, read_only=True) as con:
        expected = expected_tables(con)
    bad = manifest_mismatches(counts, v.manifest["row_counts"], expected)
    return dg.AssetCheckResult(
        passed=not any(bad.values()),
        metadata={
            "version": v.name,
            "tables": len(counts),
            **{k: dg.MetadataValue.json(x) for k, x in bad.items()},
            "manifest": dg.MetadataValue.path(str(v.path.with_suffix(".json"))),
        },
    )


@dg.asset_check(asset=PUBLISHED, description="Every published column has a comment (its description).")
def every_column_commented(warehouse: Warehouse) -> dg.AssetCheckResult:
    missing = uncommented_columns(warehouse.settings.warehouse_path)
    return dg.AssetCheckResult(
        passed=not missing,
        metadata={"columns_without_comment": len(missing), "sample": dg.MetadataValue.json(missing[:20])},
    )


published_checks = [opens_read_only, holds_manifest_tables, every_column_commented]
