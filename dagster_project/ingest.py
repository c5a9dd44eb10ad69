"""Ingestion assets: new landing deliveries -> ``raw.<source>`` in the build database."""


import dagster as dg

from .contract import SOURCES
from .landing import DeliveryRejected, check_key_id, ensure_raw_schema, ingest_delivery, pending_deliveries
from .resources import Warehouse
from .warehouse import connect

DESCRIPTIONS = {
    "clients": "CRM client master, upserted by client_key (newest updated_at wins).",
    "credit_bureau": "Third-party credit-bureau reports; a re-delivered report_id replaces the earlier one.",
    "product_usage": "Monthly facility snapshots; a re-delivered (account_key, snapshot_month) replaces the row.",
}


def _ledger_preview(con, source: str) -> str:
    df = con.execute(
        "SELECT file_name, status, rows_in_file, rows_loaded, strftime(ingested_at, '%Y-%m-%d %H:%M') AS ingested_at "
        "FROM raw._deliveries WHERE source = ? ORDER BY ingested_at DESC LIMIT 10", [source]).df()
    return df.to_markdown(index=False) if len(df) else "_no deliveries yet_"


def build_ingest_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"raw_{source}",
        group_name="ingest",
        kinds={"duckdb", "python"},
        description=(
            f"{DESCRIPTIONS[source]} Reads new files from $LENDSEG_LANDING_DIR/{source}/ with DuckDB's readers, "
            "drops or pseudonymises personal data in the read query, checks the file against landing "
            "contract v1 and loads it whole or not at all. Same content under any name is skipped."
        ),
        retry_policy=None,  # a rejected delivery is a data verdict, not a transient failure
    )
    def _ingest(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        s = warehouse.settings
        key = warehouse.pii_key
        rejected: list[str] = []
        loaded_files: list[str] = []
        rows = 0
        with connect(s) as con:
            ensure_raw_schema(con)
            check_key_id(con, warehouse.key_id)
            todo, skipped = pending_deliveries(con, source, s.landing_dir)
            for line in skipped:
                context.log.info(line)
            context.log.info(f"{len(todo)} new {source} deliveries in {s.landing_dir / source}")
            for i, d in enumerate(todo, 1):
                context.log.info(f"[{i}/{len(todo)}] loading {d.path.name}")
                try:
                    n = ingest_delivery(con, d, key, context.run_id, s.rejected_dir)
                except DeliveryRejected as e:
                    context.log.error(str(e))
                    rejected.append(str(e))
                    continue
                rows += n
                loaded_files.append(d.path.name)
                context.log.info(f"[{i}/{len(todo)}] {d.path.name}: {n} rows loaded")
            total = con.execute(f"SELECT count(*) FROM raw.{source}").fetchone()[0]
            preview = _ledger_preview(con, source)
        if rejected:
            raise dg.Failure(
                description="\n\n".join(rejected),
                metadata={"rejected_files": len(rejected), "details": dg.MetadataValue.path(str(s.rejected_dir))},
            )
        return dg.MaterializeResult(metadata={
            "files_loaded": len(loaded_files),
            "files_skipped": len(skipped),
            "rows_loaded": rows,
            "dagster/row_count": int(total),
            "deliveries": dg.MetadataValue.md(preview),
        })

    return _ingest


ingest_assets = [build_ingest_asset(name) for name in SOURCES]
