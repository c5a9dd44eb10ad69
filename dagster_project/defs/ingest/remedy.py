"""Later-stage failures caused by delivered rows: trace them to raw rows, name them, and quarantine them on request.

Ingestion quarantines what breaks the landing contract. A blocking check further on (a dbt test, the GX
suite on ``marts.client_features``) can still fail because of a combination of delivered values that each
look plausible - an industry code the reference data does not know, a balance far above its limit. Then:

1. :func:`dbt_failure_report` / :func:`write_remedy` trace the failing rows of the check to the raw rows
   they came from (``report_id`` -> ``raw.credit_bureau``, ``account_key`` + ``snapshot_month`` ->
   ``raw.product_usage``, ``client_key`` -> ``raw.clients`` or the source the check reads), using the lineage
   columns ``_source_file`` / ``_source_row`` every raw table carries, and write them to
   ``$LENDSEG_DATA_DIR/remedies/<run_id>-<stage>.json``. The run's error names the stage, the rule, the files
   and rows (row number, pseudonymous key) and the one command to run.
2. ``lendseg quarantine --run RUN_ID`` (:func:`apply_remedies`) moves those raw rows to the quarantine audit
   store (rule ``later:<stage>:<check>``), restores the version each of them replaced from
   ``raw.<source>_history`` (kept by every upsert), and holds the bureau/usage rows of a client that
   disappears entirely, so the next run proceeds without them. The delivery stays in the ledger, so it is
   not re-ingested. Nothing here ever holds a clear identifier: keys are HMAC pseudonyms.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.contract import SOURCES
from dagster_project.lib import audit

KEY_COLUMNS = ("report_id", "account_key", "snapshot_month", "client_key")
ROW_LIMIT = 500  # implicated raw rows recorded per failing check
LINEAGE = ("_source_file", "_source_checksum", "_source_row", "_ingested_at")


def command(run_id: str) -> str:
    return f"lendseg quarantine --run {run_id}"


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _raw_columns(source: str) -> list[str]:
    return [c.stored_name for c in SOURCES[source].kept] + list(LINEAGE)


# ---------------------------------------------------------------- tracing failing rows to raw rows


def upstream_sources(manifest: dict, unique_id: str) -> list[str]:
    """Raw tables (source names of ``SOURCES``) a dbt node reads, nearest first (breadth-first over parents)."""
    parents = manifest.get("parent_map") or {}
    seen, queue, out = {unique_id}, [unique_id], []
    while queue:
        uid = queue.pop(0)
        for parent in parents.get(uid) or manifest.get("nodes", {}).get(uid, {}).get("depends_on", {}).get("nodes", []):
            if parent in seen:
                continue
            seen.add(parent)
            if parent.startswith("source."):
                name = manifest["sources"][parent]["name"]
                if name in SOURCES and name not in out:
                    out.append(name)
            else:
                queue.append(parent)
    return out


def failing_keys(
    con: duckdb.DuckDBPyConnection,
    failures_sql: str,
    relation: str | None = None,
    column: str | None = None,
    test_name: str = "",
) -> tuple[list[str], list[tuple]]:
    """Key columns and key values of the rows behind a failing check.

    ``failures_sql`` returns the failing rows (a dbt test's compiled SQL). When they carry no key column (a
    generic column test returns only the offending values), the keys are looked up in the tested
    ``relation`` by ``column``: rows whose value is one of the failing values (or NULL for ``not_null``).
    """
    rel = con.sql(f"SELECT * FROM ({failures_sql}) AS _f LIMIT {ROW_LIMIT}")
    cols = [c for c in KEY_COLUMNS if c in rel.columns]
    if cols:
        return cols, rel.select(", ".join(cols)).fetchall()
    if not (relation and column):
        return [], []
    rel_cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    cols = [c for c in KEY_COLUMNS if c in rel_cols]
    if not cols:
        return [], []
    key_list = ", ".join(cols)
    if test_name.startswith("not_null"):
        where = f"{_q(column)} IS NULL"
    else:
        values = [r[0] for r in rel.fetchall()]
        if not values:
            return cols, []
        con.execute("CREATE OR REPLACE TEMP TABLE _remedy_values (v VARCHAR)")
        con.executemany("INSERT INTO _remedy_values VALUES (?)", [[None if v is None else str(v)] for v in values])
        where = f"CAST({_q(column)} AS VARCHAR) IN (SELECT v FROM _remedy_values)"
    return cols, con.execute(f"SELECT DISTINCT {key_list} FROM {relation} WHERE {where} LIMIT {ROW_LIMIT}").fetchall()


def raw_rows(con: duckdb.DuckDBPyConnection, cols: list[str], keys: list[tuple], sources: list[str]) -> list[dict]:
    """The raw rows behind failing keys: by report / account-month when known, else by client.

    By client: the client master row when the check reads ``raw.clients``, otherwise the client's rows of
    its latest delivery to the first source the check reads.
    """
    if not keys:
        return []
    import pandas as pd

    con.register("_remedy_keys", pd.DataFrame(keys, columns=cols).astype(object))
    try:
        if "report_id" in cols and "credit_bureau" in sources:
            source, match = "credit_bureau", "r.report_id = k.report_id"
        elif "account_key" in cols and "product_usage" in sources:
            source = "product_usage"
            match = "r.account_key = k.account_key" + (
                " AND r.snapshot_month = CAST(k.snapshot_month AS DATE)" if "snapshot_month" in cols else ""
            )
        elif "client_key" in cols and sources:
            source = "clients" if "clients" in sources else sources[0]
            match = "r.client_key = k.client_key"
        else:
            return []
        latest = (
            ""
            if source == "clients"
            else (
                f" AND r._ingested_at = (SELECT max(x._ingested_at) FROM raw.{source} x WHERE x.client_key = "
                "r.client_key)"
                if match == "r.client_key = k.client_key"
                else ""
            )
        )
        key_col = "account_key" if source == "product_usage" else "client_key"
        rows = con.execute(
            f"SELECT DISTINCT r._source_file, r._source_checksum, r._source_row, r.{key_col} FROM raw.{source} r "
            f"JOIN _remedy_keys k ON {match}{latest} ORDER BY 1, 3 LIMIT {ROW_LIMIT}"
        ).fetchall()
    finally:
        con.unregister("_remedy_keys")
    return [
        {"source": source, "source_file": f, "checksum": c, "row": int(n), "key_name": key_col, "key": k}
        for f, c, n, k in rows
    ]


def describe(rows: list[dict], limit: int = 5) -> str:
    """'clients file c1.csv row 12 (client_key 3fa9c0...)', for messages (pseudonymous keys only)."""
    parts = [
        f"{r['source']} file {r['source_file']} row {r['row']} ({r['key_name']} {str(r['key'])[:12]}...)"
        for r in rows[:limit]
    ]
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(parts) + more


def write_remedy(remedies_dir: Path, run_id: str, stage: str, failures: list[dict]) -> Path | None:
    """Record the implicated rows of a run's failing checks; nothing when no row could be traced."""
    failures = [f for f in failures if f["rows"]]
    if not failures:
        return None
    remedies_dir.mkdir(parents=True, exist_ok=True)
    path = remedies_dir / f"{run_id}-{stage}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(
        json.dumps(
            {
                "run_id": run_id,
                "stage": stage,
                "failures": failures,
                "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            indent=2,
        )
    )
    os.replace(tmp, path)
    return path


def failure_message(run_id: str, stage: str, failures: list[dict], path: Path | None) -> str:
    lines = []
    for f in failures:
        rows = (
            f"caused by delivered rows: {describe(f['rows'])}"
            if f["rows"]
            else "rows could not be traced to deliveries"
        )
        lines.append(
            f"{stage} check '{f['rule']}' on {f['node']} failed ({f.get('failures') or '?'} failing rows), "
            f"{rows}" + (f". Error: {f['error']}" if f.get("error") else "")
        )
    text = "\n  - ".join(lines)
    hint = (
        f"\nTo quarantine these rows (restoring the version each replaced) so the next run proceeds without "
        f"them, run:\n    {command(run_id)}"
        if path
        else ""
    )
    return f"{len(failures)} blocking check(s) at stage '{stage}' failed:\n  - {text}{hint}"


# ---------------------------------------------------------------- dbt build results


def dbt_failures(con: duckdb.DuckDBPyConnection, run_results: dict, manifest: dict) -> list[dict]:
    """Failing dbt tests and erroring models of one ``dbt build``, each with the raw rows behind it."""
    out = []
    for res in run_results.get("results", []):
        if res.get("status") not in ("fail", "error"):
            continue
        uid = res["unique_id"]
        node = manifest.get("nodes", {}).get(uid, {})
        sources = upstream_sources(manifest, uid)
        rows: list[dict] = []
        sql = res.get("compiled_code") or node.get("compiled_code")
        if node.get("resource_type") == "test" and sql:
            attached = manifest.get("nodes", {}).get(node.get("attached_node") or "", {})
            try:
                cols, keys = failing_keys(
                    con,
                    sql,
                    attached.get("relation_name"),
                    node.get("column_name"),
                    (node.get("test_metadata") or {}).get("name", ""),
                )
                rows = raw_rows(con, cols, keys, sources)
            except duckdb.Error:
                rows = []
        error = None if res.get("status") == "fail" else " ".join(str(res.get("message") or "").split())[:300]
        model = (
            manifest.get("nodes", {}).get(node.get("attached_node") or "", {}).get("name")
            or ", ".join(n.split(".")[-1] for n in (node.get("depends_on") or {}).get("nodes", []))
            or "its models"
        )
        out.append(
            {
                "node": node.get("name", uid) if node.get("resource_type") != "test" else model,
                "unique_id": uid,
                "rule": node.get("name", uid),
                "failures": res.get("failures"),
                "sources": sources,
                "rows": rows,
                "error": error,
            }
        )
    return out


def dbt_failure_report(
    con: duckdb.DuckDBPyConnection, remedies_dir: Path, run_id: str, run_results: dict, manifest: dict
) -> str:
    failures = dbt_failures(con, run_results, manifest)
    if not failures:
        return "dbt build failed (no failing node in run_results.json; see the run's logs)"
    path = write_remedy(remedies_dir, run_id, "dbt", failures)
    return failure_message(run_id, "dbt", failures, path)


# ---------------------------------------------------------------- the GX suite on marts.client_features

FEATURE_SOURCES = {
    "bureau_score": "credit_bureau",
    "overdue_ratio": "credit_bureau",
    "employee_count": "clients",
    "tenure_months": "clients",
    "size_class": "clients",
    "firm_stage": "clients",
    "industry_risk_class": "clients",
    "value_tier": "product_usage",
}  # else product_usage


def feature_failures(con: duckdb.DuckDBPyConnection, failed_rules: list) -> list[dict]:
    """Failing rules of suite client_features (suites.Rule) with the raw rows of the clients breaking them."""
    out = []
    for rule in failed_rules:
        col, kw = rule.column, rule.kwargs
        if rule.expectation == "ExpectColumnValuesToBeBetween":
            cond = " OR ".join(
                [f"{_q(col)} < {kw['min_value']}"] * (kw.get("min_value") is not None)
                + [f"{_q(col)} > {kw['max_value']}"] * (kw.get("max_value") is not None)
            )
        elif rule.expectation == "ExpectColumnValuesToBeInSet":
            cond = f"{_q(col)} NOT IN ({', '.join(repr(v) for v in kw['value_set'])})"
        else:
            cond = ""
        keys = (
            con.execute(
                f"SELECT DISTINCT client_key FROM marts.client_features WHERE client_key IS NOT NULL "
                f"AND ({cond}) LIMIT {ROW_LIMIT}"
            ).fetchall()
            if cond
            else []
        )
        rows = raw_rows(con, ["client_key"], keys, [FEATURE_SOURCES.get(col, "product_usage")])
        out.append(
            {
                "node": "marts.client_features",
                "unique_id": rule.name,
                "rule": rule.name,
                "failures": len(keys) or None,
                "sources": [FEATURE_SOURCES.get(col, "product_usage")],
                "rows": rows,
                "error": None,
            }
        )
    return out


# ---------------------------------------------------------------- lendseg quarantine --run


def pending_remedies(remedies_dir: Path, run_id: str) -> list[Path]:
    return sorted(remedies_dir.glob(f"{run_id}-*.json")) if remedies_dir.exists() else []


def _quarantine_row(con: duckdb.DuckDBPyConnection, source: str, row: dict) -> tuple[int, int]:
    """Remove one raw row; put back the version it replaced. Returns (removed, restored)."""
    cols = ", ".join(_q(c) for c in _raw_columns(source))
    args = [row["checksum"], row["row"]]
    removed = con.execute(f"DELETE FROM raw.{source} WHERE _source_checksum = ? AND _source_row = ?", args).fetchone()[
        0
    ]
    if not removed:
        return 0, 0
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _restore AS SELECT {cols} FROM raw.{source}_history "
        f"WHERE _replaced_by_file = ? AND _replaced_by_row = ? ORDER BY _replaced_at DESC LIMIT 1",
        [row["source_file"], row["row"]],
    )
    restored = con.execute(f"INSERT INTO raw.{source} SELECT * FROM _restore").fetchone()[0]
    con.execute(
        f"DELETE FROM raw.{source}_history h WHERE EXISTS (SELECT 1 FROM _restore r WHERE "
        f"r._source_checksum = h._source_checksum AND r._source_row = h._source_row) "
        f"AND _replaced_by_file = ? AND _replaced_by_row = ?",
        [row["source_file"], row["row"]],
    )
    return int(removed), int(restored)


def _hold_orphans(con: duckdb.DuckDBPyConnection) -> int:
    """Bureau/usage rows whose client was quarantined away go back to ``raw.<source>_held``."""
    held = 0
    orphan = "NOT EXISTS (SELECT 1 FROM raw.clients c WHERE c.client_key = t.client_key)"
    for source in ("credit_bureau", "product_usage"):
        held += con.execute(f"INSERT INTO raw.{source}_held SELECT * FROM raw.{source} t WHERE {orphan}").fetchone()[0]
        con.execute(f"DELETE FROM raw.{source} t WHERE {orphan}")
    return int(held)


def apply_remedies(con: duckdb.DuckDBPyConnection, audit_dir: Path, remedies_dir: Path, run_id: str) -> dict:
    """Quarantine every raw row recorded for ``run_id``, in one transaction; the remedy files are then marked done."""
    paths = pending_remedies(remedies_dir, run_id)
    if not paths:
        raise ValueError(
            f"no recorded rows for run {run_id} in {remedies_dir} (already applied, or the run's "
            f"failure was not traced to delivered rows)"
        )
    now = datetime.now(UTC).replace(tzinfo=None)
    audit_rows, summary = [], {"removed": 0, "restored": 0, "held": 0, "files": [p.name for p in paths]}
    con.execute("BEGIN TRANSACTION")
    try:
        for path in paths:
            doc = json.loads(path.read_text())
            for failure in doc["failures"]:
                for row in failure["rows"]:
                    removed, restored = _quarantine_row(con, row["source"], row)
                    summary["removed"] += removed
                    summary["restored"] += restored
                    if removed:
                        audit_rows.append(
                            {
                                "run_id": run_id,
                                "source": row["source"],
                                "source_file": row["source_file"],
                                "checksum": row["checksum"],
                                "row_number": row["row"],
                                "key_name": row["key_name"],
                                "record_key": row["key"],
                                "rule": f"later:{doc['stage']}:{failure['rule']}",
                                "masked_value": "",
                                "quarantined_at": now,
                            }
                        )
        summary["held"] = _hold_orphans(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    audit.append_rows(audit_dir, audit.QUARANTINED, audit_rows)
    for path in paths:
        os.replace(path, path.with_suffix(".applied"))
    return summary
