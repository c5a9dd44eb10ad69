"""The ``published_warehouse`` asset: the last step of every writing job."""


import dagster as dg

from .publish import PUBLISHED_SCHEMAS, failed_blocking_checks, publish
from .resources import Warehouse
from .transform import dbt_models


@dg.asset(
    group_name="publish",
    kinds={"duckdb"},
    deps=list(dbt_models.keys),
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL),
)
def published_warehouse(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Reader-facing copy of the build database at $LENDSEG_WAREHOUSE_PATH (schemas: marts, audit).

    Runs only after every blocking check of the run passed; writes a complete new file and swaps it in
    atomically, so readers never see a partial state and never block a publish.
    """
    failed = failed_blocking_checks(context.instance, context.run_id)
    if failed:
        raise dg.Failure(f"not publishing: blocking checks failed in this run: {', '.join(failed)}")
    s = warehouse.settings
    context.log.info(f"publishing schemas {', '.join(PUBLISHED_SCHEMAS)} to {s.warehouse_path}")
    counts = publish(s.build_path, s.warehouse_path, context.run_id, memory_limit=s.memory_limit)
    table = "| table | rows |\n|---|---:|\n" + "\n".join(f"| {t} | {n:,} |" for t, n in counts.items())
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(s.warehouse_path)),
        "tables": dg.MetadataValue.md(table),
        "size_mb": round(s.warehouse_path.stat().st_size / 1e6, 2),
        **{f"rows/{t}": n for t, n in counts.items()},
    })
