"""Checks on the published file, run after the swap (a failure fails the run and shows on the asset's Checks tab).

* ``opens_read_only`` - the file opens read-only in the DuckDB CLI of the registry package ``duckdb-cli``
  (or, when that CLI is not installed, in Python's duckdb) and answers a query;
* ``holds_manifest_tables`` - it holds every allow-listed table (marts, ml, the documented audit tables)
  with the row counts of the version manifest;
* ``every_column_commented`` - no published column lacks a comment.
"""

from __future__ import annotations

import shutil
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
        "SELECT schema_name, view_name FROM duckdb_views() WHERE schema_name IN ?", [build, build]).fetchall()
    return ({f"{published_name(schema)}.{name}" for schema, name in rows} | {f"audit.{t}" for t in AUDIT_TABLES}
            | {"audit.publish_info", "audit.publish_manifest"})


def manifest_mismatches(counts: dict[str, int], manifest_counts: dict[str, int], expected: set[str]) -> dict[str, list]:
    return {"missing_tables": sorted(expected - set(counts)),
            "row_count_mismatches": sorted(t for t, n in manifest_counts.items() if counts.get(t) != n)}


def uncommented_columns(path: Path) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute(
            "SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
            "WHERE NOT internal AND (comment IS NULL OR trim(comment) = '') ORDER BY 1").fetchall()]
    finally:
        con.close()


def duckdb_cli() -> str | None:
    """The DuckDB CLI of the duckdb-cli package (beside this Python), or one on PATH."""
    here = Path(sys.executable).parent / "duckdb"
    return str(here) if here.exists() else shutil.which("duckdb")


def open_read_only(path: Path) -> tuple[bool, dict]:
    cli = duckdb_cli()
    if cli is None:
        n = len(published_table_counts(path))
        return n > 0, {"client": "python duckdb (duckdb-cli not installed)", "tables": n}
    proc = subprocess.run([cli, "-readonly", "-csv", "-noheader", str(path), "-c",
                           "SELECT count(*) FROM duckdb_tables()"], capture_output=True, text=True, timeout=120)
    out = proc.stdout.strip()
    ok = proc.returncode == 0 and out.isdigit() and int(out) > 0
    return ok, {"client": cli, "tables": int(out) if out.isdigit() else -1, "stderr": proc.stderr.strip()[-300:]}


@dg.asset_check(asset=PUBLISHED, description="The published file opens read-only in the DuckDB CLI (duckdb-cli) "
                "and answers a query.")
def opens_read_only(warehouse: Warehouse) -> dg.AssetCheckResult:
    ok, meta = open_read_only(warehouse.settings.warehouse_path)
    return dg.AssetCheckResult(passed=ok, metadata=meta)


@dg.asset_check(asset=PUBLISHED, description="The published file holds every allow-listed table (marts, ml, the "
                "documented audit tables) with the row counts of its version manifest.")
def holds_manifest_tables(warehouse: Warehouse) -> dg.AssetCheckResult:
    s = warehouse.settings
    v = current_version(s.warehouse_path, s.versions_dir)
    if v is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "the warehouse is no kept version"})
    counts = published_table_counts(s.warehouse_path)
    with connect(s, read_only=True) as con:
        expected = expected_tables(con)
    bad = manifest_mismatches(counts, v.manifest["row_counts"], expected)
    return dg.AssetCheckResult(passed=not any(bad.values()), metadata={
        "version": v.name, "tables": len(counts), **{k: dg.MetadataValue.json(x) for k, x in bad.items()},
        "manifest": dg.MetadataValue.path(str(v.path.with_suffix(".json")))})


@dg.asset_check(asset=PUBLISHED, description="Every published column has a comment (its description).")
def every_column_commented(warehouse: Warehouse) -> dg.AssetCheckResult:
    missing = uncommented_columns(warehouse.settings.warehouse_path)
    return dg.AssetCheckResult(passed=not missing, metadata={"columns_without_comment": len(missing),
                                                             "sample": dg.MetadataValue.json(missing[:20])})


published_checks = [opens_read_only, holds_manifest_tables, every_column_commented]
