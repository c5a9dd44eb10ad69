"""Checks on the application tables and on the published file, as their users would ask for them.

Applications (blocking: publishing waits for them and refuses when one fails):

* ``recommendations_only_eligible`` - every recommended product passes the catalogue and policy rules
  (recommend.eligibility_failures) for the client, and is not one the client already holds;
* ``warnings_of_known_clients`` - every early warning's client exists in marts.dim_client;
* ``policy_covers_every_segment`` - every segment (of the clients in client_policy, and every active model
  segment in marts.dim_segment when the model segments are used) has a marts.segment_policy row, and
  every client of dim_client has exactly one marts.client_policy row.

Published file (run after the swap; a failure fails the run and shows on the asset's Checks tab):

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

from dagster_project.defs.applications import assets as app
from dagster_project.defs.applications import recommend as rc
from dagster_project.defs.publish.catalog import AUDIT_TABLES
from dagster_project.defs.publish.files import PUBLISHED_SCHEMAS, current_version
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect

PUBLISHED = dg.AssetKey("published_warehouse")


# ---------------------------------------------------------------- pure verdicts on a connection

def ineligible_recommendations(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Recommendations the client is not eligible for or already holds (empty list = check passes)."""
    recs = con.execute("SELECT client_key, product_code FROM marts.client_product_recommendations "
                       "WHERE product_code IS NOT NULL").df()  # null: NO_ELIGIBLE_PRODUCT rows
    if recs.empty:
        return []
    products = app.catalogue(con)
    states = app.client_states(con, app.as_of_month(con), live=True).set_index("client_key")
    bad = []
    for client_key, product_code in recs.itertuples(index=False):
        if product_code not in products or client_key not in states.index:
            bad.append({"client_key": client_key, "product_code": product_code, "problem": "unknown client or product"})
            continue
        row = states.loc[client_key]
        fails = rc.eligibility_failures(products[product_code], app.profile(row))
        if bool(row.get(f"held_{product_code}", False)):
            fails.append("ALREADY_HELD")
        if fails:
            bad.append({"client_key": client_key, "product_code": product_code, "problem": ",".join(fails)})
    return bad


def orphan_warnings(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute("SELECT count(*) FROM marts.risk_early_warnings w WHERE NOT EXISTS "
                       "(SELECT 1 FROM marts.dim_client d WHERE d.client_key = w.client_key)").fetchone()[0]


def policy_gaps(con: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """Segments without a segment_policy row and clients without exactly one client_policy row."""
    pol = {str(r[0]) for r in con.execute("SELECT DISTINCT segment_id FROM marts.segment_policy").fetchall()}
    used = {str(r[0]) for r in con.execute("SELECT DISTINCT segment_id FROM marts.client_policy "
                                           "WHERE segment_id IS NOT NULL").fetchall()}
    sources = {r[0] for r in con.execute("SELECT DISTINCT segment_source FROM marts.segment_policy").fetchall()}
    active: set[str] = set()
    if "model" in sources and app._exists(con, "marts", "dim_segment"):
        active = {str(r[0]) for r in con.execute("SELECT segment_id FROM marts.dim_segment WHERE status = 'active'").fetchall()}
    clients = con.execute("SELECT count(*) FROM marts.dim_client d WHERE (SELECT count(*) FROM marts.client_policy p "
                          "WHERE p.client_key = d.client_key) <> 1").fetchone()[0]
    return {"segments_without_policy": sorted((used | active) - pol), "clients_without_one_policy_row": [clients] if clients else []}


def published_table_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        return {n: con.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for (n,) in names}
    finally:
        con.close()


def expected_tables(build_con: duckdb.DuckDBPyConnection) -> set[str]:
    """The allow-list: every table/view of the published schemas in the build, and the documented audit tables."""
    rows = build_con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE schema_name IN ? UNION "
        "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE schema_name IN ?",
        [list(PUBLISHED_SCHEMAS), list(PUBLISHED_SCHEMAS)]).fetchall()
    return {r[0] for r in rows} | {f"audit.{t}" for t in AUDIT_TABLES} | {"audit.publish_info", "audit.publish_manifest"}


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


# ---------------------------------------------------------------- the checks

@dg.asset_check(asset=app.RECS, blocking=True, description="Every recommended product is one the client is eligible "
                "for (catalogue size/rating/risk-class/stage rules, high-risk floor) and does not hold yet.")
def recommendations_only_eligible(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        bad = ineligible_recommendations(con)
        n = con.execute("SELECT count(*) FROM marts.client_product_recommendations").fetchone()[0]
    return dg.AssetCheckResult(passed=not bad, metadata={"recommendations": n, "ineligible": len(bad),
                                                         "sample": dg.MetadataValue.json(bad[:10])})


@dg.asset_check(asset=app.WARNINGS, blocking=True,
                description="Every early warning belongs to a client in marts.dim_client.")
def warnings_of_known_clients(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        orphans = orphan_warnings(con)
        n = con.execute("SELECT count(*) FROM marts.risk_early_warnings").fetchone()[0]
    return dg.AssetCheckResult(passed=orphans == 0, metadata={"warnings": n, "warnings_of_unknown_clients": orphans})


@dg.asset_check(asset=app.SEG_POLICY, blocking=True, additional_deps=[app.CLIENT_POLICY],
                description="Every segment has a credit-policy row (segment_policy) and every client exactly one "
                            "client_policy row.")
def policy_covers_every_segment(warehouse: Warehouse) -> dg.AssetCheckResult:
    with connect(warehouse.settings, read_only=True) as con:
        gaps = policy_gaps(con)
    return dg.AssetCheckResult(passed=not any(gaps.values()), metadata={k: dg.MetadataValue.json(v) for k, v in gaps.items()})


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


stage_checks = [recommendations_only_eligible, warnings_of_known_clients, policy_covers_every_segment,
                opens_read_only, holds_manifest_tables, every_column_commented]
