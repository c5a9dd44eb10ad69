"""Ingestion assets: new landing deliveries -> validated, pseudonymised rows in ``raw.<source>``."""

from datetime import date

import dagster as dg

from dagster_project.defs.ingest.batch import clear_scratch, prepared_deliveries
from dagster_project.defs.ingest.contract import SOURCES
from dagster_project.defs.ingest.landing import DeliveryRejected, check_key_id, ensure_raw_schema, pending_deliveries
from dagster_project.defs.ingest.loading import Context, ingest_delivery, release_held
from dagster_project.lib import audit
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.settings import ConfigError
from dagster_project.lib.warehouse import connect

DESCRIPTIONS = {
    "clients": "CRM client master, upserted by client_key (newest updated_at wins).",
    "credit_bureau": "Third-party credit-bureau reports; a re-delivered report_id replaces the earlier one.",
    "product_usage": "Monthly facility snapshots; a re-delivered (account_key, snapshot_month) replaces the row.",
    "review_decisions": "Segment review decisions (confirm / override); every decision is kept, a re-delivered "
    "(client_key, decided_at) replaces the row.",
}
# Transient trouble (a slow file system, a lock) is retried with backoff; data verdicts raise
# dg.Failure(allow_retries=False) and are never retried.
TRANSIENT_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _specs(source: str, asset: str) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            "key_unique",
            asset=asset,
            blocking=True,
            description=f"raw.{source} holds each key ({', '.join(SOURCES[source].key)}) once.",
        ),
        dg.AssetCheckSpec(
            "deliveries_clean",
            asset=asset,
            description="Warning: rows of this run's deliveries were quarantined or held for unknown "
            "clients (count and share), a delivery was empty (header only), or a delivery "
            "shrank 30 % or more / its mean moved outside 0.5-2x of its history.",
        ),
    ]
    if source != "clients":
        specs.append(
            dg.AssetCheckSpec(
                "client_known",
                asset=asset,
                blocking=True,
                description=f"Every raw.{source} row belongs to a client in raw.clients "
                "(orphans are held in raw.{source}_held).",
            )
        )
    return specs


def _ledger_preview(con, source: str) -> str:
    df = con.execute(
        "SELECT file_name, rows_in_file, rows_loaded, rows_quarantined, rows_held, "
        "strftime(ingested_at, '%Y-%m-%d %H:%M') AS ingested_at FROM raw._deliveries WHERE source = ? "
        "ORDER BY ingested_at DESC LIMIT 10",
        [source],
    ).df()
    return df.to_markdown(index=False) if len(df) else "_no deliveries yet_"


def _checks(con, source: str, warnings: list[str], loaded: dict) -> list[dg.AssetCheckResult]:
    keys = ", ".join(f'"{k}"' for k in SOURCES[source].key)
    dups = con.execute(
        f"SELECT count(*) FROM (SELECT {keys} FROM raw.{source} GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]
    out = [
        dg.AssetCheckResult(check_name="key_unique", passed=dups == 0, metadata={"duplicate_keys": dups}),
        dg.AssetCheckResult(
            check_name="deliveries_clean",
            passed=not warnings,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in warnings) or "none"),
                "rows_in_files": loaded["in_files"],
                "rows_quarantined": loaded["quarantined"],
                "rows_held": loaded["held"],
                "held_share": round(loaded["held"] / loaded["in_files"], 4) if loaded["in_files"] else 0.0,
                "empty_files": loaded["empty"],
            },
        ),
    ]
    if source != "clients":
        orphans = con.execute(
            f"SELECT count(*) FROM raw.{source} t WHERE NOT EXISTS "
            f"(SELECT 1 FROM raw.clients c WHERE c.client_key = t.client_key)"
        ).fetchone()[0]
        held = con.execute(f"SELECT count(*) FROM raw.{source}_held").fetchone()[0]
        out.append(
            dg.AssetCheckResult(
                check_name="client_known", passed=orphans == 0, metadata={"orphan_rows": orphans, "held_rows": held}
            )
        )
    return out


def _alert_held(context: dg.AssetExecutionContext, s, asset: str, loaded: dict, warnings: list[str]) -> None:
    """Warning alert in audit/pipeline_alerts: rows held for unknown clients, with their count and share."""
    from dagster_project.defs.operations.alerts import alert_dir, build_alert, write_alert

    share = loaded["held"] / loaded["in_files"] if loaded["in_files"] else 0.0
    msg = (
        f"{asset}: {loaded['held']} of {loaded['in_files']} delivered rows ({share:.2%}) held for unknown clients; "
        + "; ".join(w for w in warnings if "orphans_held" in w)
    )
    path = write_alert(
        build_alert(context.run.job_name, context.run_id, [asset], msg, severity="WARNING"),
        alert_dir(s.data_dir),
        tag=asset,
    )
    context.log.warning(f"ALERT {msg} -> {path}")


def build_ingest_asset(source: str) -> dg.AssetsDefinition:
    name = f"raw_{source}"

    @dg.asset(
        name=name,
        group_name="ingest",
        kinds={"duckdb", "python"},
        deps=[] if source == "clients" else ["raw_clients"],
        check_specs=_specs(source, name),
        description=(
            f"{DESCRIPTIONS[source]} Reads new files from $LENDSEG_LANDING_DIR/{source}/ with DuckDB's readers, "
            "drops or pseudonymises personal data in the read query, validates each delivery (contract, GX suite "
            f"landing_{source} in chunks, in-file keys) and loads it whole, minus quarantined rows, or not at all."
        ),
        retry_policy=TRANSIENT_RETRY,
    )
    def _ingest(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        s = warehouse.settings
        try:
            key, key_id = warehouse.pii_key, warehouse.key_id
        except ConfigError as e:
            raise dg.Failure(str(e), allow_retries=False) from None
        ctx = Context(
            key=key,
            run_id=context.run_id,
            asset=name,
            audit_dir=s.audit_dir,
            rejected_dir=s.rejected_dir,
            max_share=s.quarantine_max_share,
            today=date.today(),
            orphan_max_share=s.orphan_max_share,
        )
        rejected, warnings = [], []
        loaded = {"files": 0, "rows": 0, "quarantined": 0, "held": 0, "released": 0, "in_files": 0, "empty": 0}
        checksums: list[str] = []
        seconds = {"stage": 0.0, "validate": 0.0, "load": 0.0}
        with connect(s) as con:
            ensure_raw_schema(con)
            try:
                check_key_id(con, key_id)
            except ConfigError as e:
                raise dg.Failure(str(e), allow_retries=False) from None
            if source != "clients":
                loaded["released"] = release_held(con, source)
                if loaded["released"]:
                    context.log.info(f"{loaded['released']} held rows released: their clients have arrived")
            todo, skipped = pending_deliveries(
                con, source, s.landing_dir, audit.rejected_checksums(s.audit_dir, source)
            )
            for line in skipped:
                context.log.info(line)
            context.log.info(f"{len(todo)} new {source} deliveries in {s.landing_dir / source}")
            for i, (d, prepared) in enumerate(prepared_deliveries(con, todo, ctx, context.log.info), 1):
                context.log.info(f"[{i}/{len(todo)}] loading {d.path.name}")
                try:
                    out = ingest_delivery(con, d, ctx, prepared)
                except DeliveryRejected as e:
                    context.log.error(str(e))
                    rejected.append(str(e))
                    continue
                for w in out.warnings:
                    context.log.warning(w)
                warnings += out.warnings
                loaded["files"] += 1
                checksums.append(d.checksum)
                loaded["rows"] += out.rows_loaded
                loaded["quarantined"] += out.rows_quarantined
                loaded["held"] += out.rows_held
                loaded["in_files"] += out.rows_in_file
                loaded["empty"] += int(out.rows_in_file == 0)
                for k, v in out.seconds.items():
                    seconds[k] += v
                context.log.info(
                    f"[{i}/{len(todo)}] {d.path.name}: {out.rows_loaded} loaded, "
                    f"{out.rows_quarantined} quarantined, {out.rows_held} held for unknown clients"
                )
            ctx.close()
            clear_scratch(ctx.scratch_dir, source)
            total = con.execute(f"SELECT count(*) FROM raw.{source}").fetchone()[0]
            preview = _ledger_preview(con, source)
            months = months_touched(con, source, checksums)
            checks = _checks(con, source, warnings, loaded)
        if loaded["held"]:
            _alert_held(context, s, name, loaded, warnings)
        if rejected:
            raise dg.Failure(
                description="\n\n".join(rejected),
                allow_retries=False,
                metadata={"rejected_files": len(rejected), "details": dg.MetadataValue.path(str(s.rejected_dir))},
            )
        return dg.MaterializeResult(
            metadata={
                "files_loaded": loaded["files"],
                "files_skipped": len(skipped),
                "rows_loaded": loaded["rows"],
                "rows_quarantined": loaded["quarantined"],
                "rows_held": loaded["held"],
                "rows_released": loaded["released"],
                "dagster/row_count": int(total),
                **{f"seconds_{k}": round(v, 3) for k, v in seconds.items()},
                "deliveries": dg.MetadataValue.md(preview),
                **(
                    {"months_touched": dg.MetadataValue.text(", ".join(months) or "none")}
                    if source in MONTH_COLUMN
                    else {}
                ),
            },
            check_results=checks,
        )

    return _ingest


# The month a row of a source belongs to: what a delivery's rows touch (usage by snapshot, bureau by report date).
MONTH_COLUMN = {"product_usage": "snapshot_month", "credit_bureau": "report_date"}


def months_touched(con, source: str, checksums: list[str]) -> list[str]:
    """The months (YYYY-MM) of the rows this run's deliveries of ``source`` loaded: what the incremental models
    build again (shown on the asset so an operator sees which months a run loaded)."""
    if source not in MONTH_COLUMN or not checksums:
        return []
    col = MONTH_COLUMN[source]
    rows = con.execute(
        f"SELECT DISTINCT strftime({col}, '%Y-%m') AS m FROM raw.{source} "
        f"WHERE _source_checksum IN (SELECT unnest(?::VARCHAR[])) ORDER BY m",
        [checksums],
    ).fetchall()
    return [r[0] for r in rows]


ingest_assets = [build_ingest_asset(name) for name in SOURCES]
