"""Asset checks on later stages: the GX suite on ``marts.client_features`` (blocking) and its soft anomalies (warning).

Results join the audit store's ``data_quality_results`` like the landing suites' results.
"""

import dagster as dg

from dagster_project.defs.ingest.suites import client_features_rules
from dagster_project.defs.ingest.validation import SqlSuite
from dagster_project.defs.publish.files import versions
from dagster_project.lib import audit
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect

FEATURES = dg.AssetKey(["marts", "client_features"])


def _record(s, run_id: str, suite: str, rows: list[tuple[str, str | None, bool, int, int, str | None, str]]) -> None:
    now = audit.utc_now()
    audit.append_rows(
        s.audit_dir,
        audit.DQ_RESULTS,
        [
            audit.dq_result(
                run_id,
                "marts/client_features",
                suite,
                rule,
                ok,
                sev,
                column_name=col,
                unexpected_count=bad,
                element_count=n,
                observed_value=obs,
                checked_at=now,
            )
            for rule, col, ok, bad, n, obs, sev in rows
        ],
    )


def _trace(s, run_id: str, failed_rules: list) -> str:
    """The delivered rows behind the failing rules, recorded for `lendseg quarantine --run` (remedy.py)."""
    from dagster_project.defs.ingest.remedy import failure_message, feature_failures, write_remedy

    with connect(s, read_only=True) as con:
        failures = feature_failures(con, failed_rules)
    return failure_message(
        run_id, "client_features", failures, write_remedy(s.remedies_dir, run_id, "client_features", failures)
    )


@dg.asset_check(
    asset=FEATURES,
    blocking=True,
    description=(
        "GX suite client_features in bounded chunks (required key, value ranges, accepted categories) plus "
        "SQL key uniqueness. Blocks publishing when any rule fails."
    ),
)
def client_features_valid(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    s = warehouse.settings
    suite_rules = client_features_rules()
    suite_rules_by_name = {r.name: r for r in suite_rules}
    cols = sorted({r.kwargs["column"] for r in suite_rules})
    suite = SqlSuite(
        "client_features",
        suite_rules,
        s.build_path,
        f"SELECT rowid + 1 AS _row, {', '.join(cols)} FROM marts.client_features",
    )
    try:
        out = suite.validate(flag_budget=0)  # counts only: a failing feature table is not quarantined row by row
    finally:
        suite.close()
    with connect(s, read_only=True) as con:
        n, dups = con.execute(
            "SELECT count(*), count(*) - count(DISTINCT client_key) FROM marts.client_features"
        ).fetchall()[0]
    rows = [
        (r.rule, r.column, r.success, r.unexpected_count, r.element_count, None, "error") for r in out.results.values()
    ]
    rows.append(("unique:client_key", "client_key", dups == 0, dups, n, None, "error"))
    _record(s, context.run.run_id, "client_features", rows)
    failed = [f"{r[0]} ({r[3]} rows)" for r in rows if not r[2]]
    if failed:
        failed.append(
            _trace(
                s,
                context.run.run_id,
                [
                    suite_rules_by_name[r.rule]
                    for r in out.results.values()
                    if not r.success and r.rule in suite_rules_by_name
                ],
            )
        )
    return dg.AssetCheckResult(
        passed=not failed,
        metadata={
            "rows": n,
            "rules": len(rows),
            "engine": "GX 1.x SQL on DuckDB",
            "failed_rules": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed) or "none"),
        },
    )


@dg.asset_check(
    asset=FEATURES,
    description=(
        "Warning only: row count moved 30 % or more against the last published version, or a numeric feature "
        "is missing for more than half of the clients."
    ),
)
def client_features_anomalies(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
    s = warehouse.settings
    with connect(s, read_only=True) as con:
        n = con.execute("SELECT count(*) FROM marts.client_features").fetchone()[0]
        numeric = [
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'marts' AND table_name = "
                "'client_features' "
                "AND data_type IN ('DOUBLE', 'BIGINT', 'INTEGER', 'HUGEINT') OR (schema_name = 'marts' AND "
                "table_name = 'client_features' AND data_type LIKE 'DECIMAL%')"
            ).fetchall()
        ]
        nulls = (
            con.execute(
                "SELECT " + ", ".join(f"avg(({c} IS NULL)::INT)" for c in numeric) + " FROM marts.client_features"
            ).fetchone()
            if numeric
            else []
        )
    sparse = {c: round(v, 3) for c, v in zip(numeric, nulls, strict=False) if v is not None and v > 0.5}
    last = versions(s.versions_dir)[-1:] if s.versions_dir.exists() else []
    prev = last[0].manifest["row_counts"].get("marts.client_features") if last else None
    ratio = n / prev if prev else 1.0
    rows = [
        (
            "row_count_vs_last_publish",
            None,
            0.7 <= ratio <= 1.3,
            int(not 0.7 <= ratio <= 1.3),
            n,
            f"{ratio:.2f} x {prev}",
            "warning",
        ),
        ("sparse_features", None, not sparse, len(sparse), len(numeric), str(sparse)[:500], "warning"),
    ]
    _record(s, context.run.run_id, "client_features_anomalies", rows)
    return dg.AssetCheckResult(
        passed=all(r[2] for r in rows),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rows": n,
            "previous_published_rows": prev or 0,
            "ratio": round(ratio, 3),
            "sparse_features": dg.MetadataValue.json(sparse),
        },
    )


quality_checks = [client_features_valid, client_features_anomalies]
