"""The ``published_warehouse`` asset: the last step of every writing job."""

from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.applications.keys import APPLICATION_KEYS
from dagster_project.defs.publish.files import PUBLISHED_SCHEMAS, publish
from dagster_project.defs.publish.gates import run_gate
from dagster_project.defs.transform.assets import DBT_KEYS
from dagster_project.lib import audit
from dagster_project.lib.resources import Warehouse


def _record_checks(context: dg.AssetExecutionContext, audit_dir) -> None:
    """Every asset-check verdict of this run (dbt tests, GX checks) joins the audit store's results."""
    rows = []
    for entry in context.instance.all_logs(context.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        ev = entry.dagster_event.event_specific_data
        rows.append(
            audit.dq_result(
                context.run_id,
                ev.asset_key.to_user_string(),
                "dagster_asset_check",
                ev.check_name,
                bool(ev.passed),
                audit.severity_of(ev.severity),
                checked_at=datetime.fromtimestamp(entry.timestamp, UTC).replace(tzinfo=None),
            )
        )
    audit.append_rows(audit_dir, audit.DQ_RESULTS, rows)


@dg.asset(
    group_name="publish",
    kinds={"duckdb"},
    deps=[*DBT_KEYS, *APPLICATION_KEYS],  # published after the application tables
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
)
def published_warehouse(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Reader-facing copy of the build at $LENDSEG_WAREHOUSE_PATH: schemas marts, ml and audit.

    Runs only after every blocking check of the run passed, and refuses when a blocking check of an asset
    materialised in this run has no result (gates.py: skipped is not passed); writes a complete new version file - a
    copy of the current one with only the changed tables rewritten, when increment.py allows - and swaps it in
    atomically, so readers never see a partial state and never block a publish. The last
    LENDSEG_PUBLISH_KEEP versions are kept for `lendseg publish --rollback`.
    """
    verdict = run_gate(context.instance, context.run_id, context.job_def.asset_layer.asset_graph)
    if verdict.refused:
        raise dg.Failure(f"not publishing: {verdict.reason()}", allow_retries=False)
    passed = verdict.passed
    s = warehouse.settings
    _record_checks(context, s.audit_dir)
    context.log.info(f"publishing schemas {', '.join(PUBLISHED_SCHEMAS)} and audit to {s.warehouse_path}")
    v = publish(
        s.build_path,
        s.warehouse_path,
        s.versions_dir,
        s.audit_dir,
        context.run_id,
        checks_passed=passed,
        checks_warned=verdict.warned,
        keep=s.publish_keep,
        memory_limit=s.memory_limit,
    )
    counts = v.manifest["row_counts"]
    m = v.manifest
    context.log.info(
        f"published {v.name}: {len(counts)} tables, {m['publish_mode']} ({m['publish_reason']}); "
        f"rewritten: {', '.join(m['tables_rewritten']) or 'none'}"
    )
    table = "| table | rows |\n|---|---:|\n" + "\n".join(f"| {t} | {n:,} |" for t, n in counts.items())
    return dg.MaterializeResult(
        metadata={
            "version": v.name,
            "path": dg.MetadataValue.path(str(s.warehouse_path)),
            "tables": dg.MetadataValue.md(table),
            "publish_mode": m["publish_mode"],
            "publish_reason": m["publish_reason"],
            "tables_rewritten": len(m["tables_rewritten"]),
            "publish_seconds": dg.MetadataValue.json(m["publish_seconds"]),
            "checks_passed": len(passed),
            "checks_warned": len(verdict.warned),
            "size_mb": round(s.warehouse_path.stat().st_size / 1e6, 2),
            **{f"rows/{t}": n for t, n in counts.items()},
        }
    )
