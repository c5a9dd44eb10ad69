"""What the published file documents: every audit table (empty if need be) and a comment on every column.

dbt models carry their column descriptions (``persist_docs``); Python-written tables (``ml.*``) and the
audit store get theirs here. At publish time a column without a comment in the build database takes, in
order: its entry in :data:`COLUMN_DOCS`, the comment of the same column in the table it is inherited
from (:data:`INHERITS`), or - for ``<feature>_population`` columns - a sentence built from ``<feature>``.
``tests/unit/publish/test_catalog.py`` fails on any published column left without a comment.
"""

from __future__ import annotations

# ---------------------------------------------------------------- audit tables published even when empty

# table -> (table comment, [(column, type, comment)]). The audit store may hold no file yet for a table
# (no alert, no quarantined row, no rejection after a clean run): it is then published empty.
AUDIT_TABLES: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "data_quality_results": (
        "Every data-quality rule evaluated by any run: GX suites, structural checks, "
        "dbt tests and other asset checks, model checks (append-only).",
        [
            ("run_id", "VARCHAR", "Dagster run that evaluated the rule."),
            ("asset", "VARCHAR", "Asset (table) the rule was evaluated on."),
            ("suite", "VARCHAR", "Suite or origin of the rule (GX suite name, structure, dagster_asset_check, model)."),
            ("rule", "VARCHAR", "Rule or check name."),
            ("column_name", "VARCHAR", "Column the rule is about, if any."),
            ("source_file", "VARCHAR", "Delivery file the rule was evaluated on (ingest rules only)."),
            ("checksum", "VARCHAR", "SHA-256 of the delivery file (ingest rules only)."),
            ("success", "BOOLEAN", "True when the rule passed."),
            ("unexpected_count", "BIGINT", "Rows breaking the rule."),
            ("element_count", "BIGINT", "Rows the rule was evaluated on."),
            ("observed_value", "VARCHAR", "Observed value or details as text/JSON."),
            ("severity", "VARCHAR", "error (blocks loading or publishing) or warning (reported only)."),
            ("checked_at", "TIMESTAMP", "When the rule was evaluated (UTC)."),
        ],
    ),
    "quarantined_rows": (
        "Rows of accepted deliveries that broke a row rule and were not loaded (values masked).",
        [
            ("run_id", "VARCHAR", "Dagster run that quarantined the row."),
            ("source", "VARCHAR", "Source of the delivery (clients, credit_bureau, product_usage, review_decisions)."),
            ("source_file", "VARCHAR", "Delivery file name."),
            ("checksum", "VARCHAR", "SHA-256 of the delivery file."),
            ("row_number", "BIGINT", "Data row number in the file (1 = first row after the header)."),
            ("key_name", "VARCHAR", "Name of the key column in record_key."),
            ("record_key", "VARCHAR", "Pseudonymous key of the row (client_key or account_key, or the source key)."),
            ("rule", "VARCHAR", "Row rule the row broke."),
            ("masked_value", "VARCHAR", "The offending value, masked (shape kept, identifying characters hidden)."),
            ("quarantined_at", "TIMESTAMP", "When the row was quarantined (UTC)."),
        ],
    ),
    "rejected_deliveries": (
        "Delivery files rejected whole; not retried until a file with different content "
        "arrives. Details in $LENDSEG_DATA_DIR/rejected/<file>.error.json.",
        [
            ("source", "VARCHAR", "Source of the delivery."),
            ("source_file", "VARCHAR", "Delivery file name."),
            ("file_name", "VARCHAR", "Delivery file name (the rejection ledger's key with checksum)."),
            ("checksum", "VARCHAR", "SHA-256 of the rejected file."),
            ("run_id", "VARCHAR", "Dagster run that rejected the file."),
            ("rejected_at", "TIMESTAMP", "When the file was rejected (UTC)."),
            ("rules", "VARCHAR", "Comma-separated rules the file broke."),
            ("message", "VARCHAR", "The rejection message (file, rule, column, sample rows by pseudonymous key)."),
        ],
    ),
    "pipeline_alerts": (
        "One record per failed run, written by the pipeline_failure_alert sensor.",
        [
            ("alerted_at", "VARCHAR", "When the alert was written (ISO 8601, UTC)."),
            ("job_name", "VARCHAR", "Job of the failed run."),
            ("run_id", "VARCHAR", "The failed run (its full logs are in the Dagster UI)."),
            ("failed_steps", "VARCHAR[]", "Steps that failed."),
            ("error_summary", "VARCHAR", "One-line error summary with client identifiers masked."),
            ("severity", "VARCHAR", "Alert severity (ERROR)."),
        ],
    ),
}

PUBLISH_INFO = (
    "This published file: its version, the run that built it and what it holds (one row).",
    [
        ("version", "VARCHAR", "Published version (vNNNNNN; `lendseg publish --list`)."),
        ("run_id", "VARCHAR", "Dagster run that built and published this file."),
        ("published_at", "TIMESTAMP", "When the file was published (UTC)."),
        (
            "storage_version",
            "VARCHAR",
            "DuckDB storage version of the file (DuckDB clients of this version and newer read it).",
        ),
        ("tables", "INTEGER", "Tables in this file (audit.publish_info and audit.publish_manifest included)."),
        (
            "total_rows",
            "BIGINT",
            "Rows over all tables of row_counts (this table and audit.publish_manifest included).",
        ),
        ("checks_passed", "INTEGER", "Asset checks that passed in the publishing run."),
        ("checks_warned", "INTEGER", "Warning-severity checks that did not pass in the publishing run."),
        ("row_counts", "JSON", 'Rows per table, {"schema.table": rows}.'),
    ],
)

PUBLISH_MANIFEST = (
    "Every kept published version (newest last), from the version manifests.",
    [
        ("version", "VARCHAR", "Published version (vNNNNNN)."),
        ("run_id", "VARCHAR", "Dagster run that published the version."),
        ("published_at", "VARCHAR", "When the version was published (ISO 8601, UTC)."),
        (
            "tables",
            "INTEGER",
            "Tables in the version's file (audit.publish_info and audit.publish_manifest included), "
            "as in audit.publish_info and `lendseg publish --list`.",
        ),
        ("row_counts", "JSON", 'Rows per table of the version, {"schema.table": rows}.'),
        ("checks_passed", "INTEGER", "Asset checks that passed in the publishing run."),
    ],
)

# ---------------------------------------------------------------- column comments of Python-written tables

_MV = "Model version (mNNNN, ml.model_registry)."
COLUMN_DOCS: dict[str, dict[str, str]] = {
    "ml.k_selection": {
        "k": "Number of clusters asked of k-means.",
        "segments": "Segments left after clusters under 2 % of the clients were dissolved into their neighbours.",
        "silhouette": "Silhouette score at this k (training sample; higher is better).",
        "davies_bouldin": "Davies-Bouldin index at this k (lower is better).",
        "inertia": "k-means inertia at this k.",
        "min_share": "Share of the smallest segment at this k.",
        "min_jaccard": "Stability of the weakest segment: its clusterboot mean Jaccard over the refits (>= 0.75 "
        "stable; "
        "null when the choice needed no refit of this k).",
        "refits": "clusterboot refits measured: a k below 0.60 after 5 refits is not refitted further; a k that could "
        "no longer change the choice (or provably cannot pass) stops early or gets none.",
        "admissible": "Every segment stable (>= 0.75) over all refits and >= 2 % of the clients: a candidate for "
        "selection "
        "(false also for a k whose refits were stopped early).",
        "model_version": _MV,
        "chosen": "True for the k the model version was trained with.",
    },
    "ml.model_drift": {
        "model_version": "Champion model version the drift is measured against.",
        "as_of_date": "As-of date of the scoring.",
        "kind": "feature (one model input) or segment_mix (the share of clients per segment).",
        "feature": "Feature name, or segment_mix.",
        "scored_at": "When the drift was computed (UTC).",
    },
    "ml.model_registry": {
        "version": _MV,
        "status": "challenger, champion, retired or rejected (the latest registry event).",
        "status_changed_at": "When the status last changed (UTC).",
        "trained_at": "When the version was trained (UTC).",
        "training_rows": "Clients the model was trained on.",
        "training_fingerprint": "Hash of the training data.",
        "as_of_date": "As-of date of the training data.",
        "k": "Number of segments.",
        "silhouette": "Silhouette score of the chosen k.",
        "davies_bouldin": "Davies-Bouldin index of the chosen k.",
        "min_segment_share": "Share of the smallest segment.",
        "stability_mean_ari": "clusterboot mean adjusted Rand index.",
        "stability_min_jaccard": "Lowest per-segment clusterboot Jaccard.",
        "checks_passed": "True when every blocking training check passed.",
        "matched_to": "Champion the segments were matched to (Hungarian), null for the first model.",
        "new_segments": "JSON list of segment ids first issued by this version.",
        "retired_segments": "JSON list of segment ids this version no longer has.",
        "library_versions": "JSON of the library versions (scikit-learn, numpy, ...) used for training.",
        "features": "JSON list of the model's input features.",
    },
    "ml.model_stability": {
        "model_version": _MV,
        "segment_id": "Segment id (dim_segment).",
        "mean_jaccard": "clusterboot: mean best-match Jaccard of the segment over the subsample refits.",
        "refits": "Number of subsample refits.",
    },
    "ml.review_decision_context": {
        "client_key": "Pseudonymous client key (HMAC-SHA256 of client_id).",
        "decided_at": "When the reviewer decided (from the review delivery).",
        "recorded_at": "When the pipeline recorded the context (UTC).",
        "seen_as_of_date": "As-of date of the snapshot the reviewer saw.",
        "seen_segment_id": "Model segment the reviewer saw.",
        "seen_size_class": "Size class the reviewer saw.",
        "seen_rating_grade": "Rating grade the reviewer saw.",
        "seen_industry_code": "Industry code the reviewer saw.",
    },
    "ml.segment_assignment_snapshots": {
        "client_key": "Pseudonymous client key (HMAC-SHA256 of client_id).",
        "as_of_date": "As-of date of the snapshot.",
        "segment_id": "Model segment of the client at that date.",
        "confidence": "Model confidence of the assignment (0-1).",
        "model_version": _MV,
        "size_class": "Client's size class at that date.",
        "rating_grade": "Client's rating grade at that date.",
        "industry_code": "Client's industry code at that date.",
        "scored_at": "When the snapshot was scored (UTC).",
    },
    "ml.segment_catalog": {
        "segment_id": "Segment id (stable across retrains).",
        "segment_name": "Stable segment name.",
        "description": "Generated description of the segment.",
        "status": "active or retired.",
        "created_in_version": "Model version that first issued the segment.",
        "last_model_version": "Latest model version that has the segment.",
        "retired_in_version": "Model version in which the segment vanished (null while active).",
    },
    "ml.segment_profiles": {
        "segment_id": "Segment id (dim_segment).",
        "feature": "Profile feature.",
        "stat": "median, share or count.",
        "segment_value": "The feature's value in the segment.",
        "population_value": "The feature's value over all scored clients.",
        "difference": "Segment vs population (IQR units for medians, share points for shares).",
        "model_version": _MV,
    },
}
for _table, (_desc, _cols) in {
    **{f"audit.{t}": v for t, v in AUDIT_TABLES.items()},
    "audit.publish_info": PUBLISH_INFO,
    "audit.publish_manifest": PUBLISH_MANIFEST,
}.items():
    COLUMN_DOCS[_table] = {c: text for c, _, text in _cols}

TABLE_DOCS: dict[str, str] = {f"audit.{t}": v[0] for t, v in AUDIT_TABLES.items()} | {
    "audit.publish_info": PUBLISH_INFO[0],
    "audit.publish_manifest": PUBLISH_MANIFEST[0],
}

# Tables that repeat another table's columns: a column without its own comment takes the other's.
INHERITS: dict[str, str] = {"marts.client_segments": "marts.dim_client"}

POPULATION_SUFFIX = "_population"


def column_comment(table: str, column: str, own: str | None, comments: dict[str, dict[str, str]]) -> str | None:
    """The comment a published column gets. ``comments``: ``{schema.table: {column: comment}}`` of the build."""
    if own:
        return own
    if text := COLUMN_DOCS.get(table, {}).get(column):
        return text
    if (parent := INHERITS.get(table)) and (text := comments.get(parent, {}).get(column)):
        return text
    if column.endswith(POPULATION_SUFFIX):
        base = column[: -len(POPULATION_SUFFIX)]
        text = comments.get(table, {}).get(base) or COLUMN_DOCS.get(table, {}).get(base)
        if text:
            return f"{base} over all scored clients (the population), for comparison with the segment's {base} ({text})"
    return None


def empty_table_sql(target: str, columns: list[tuple[str, str, str]]) -> str:
    return f"CREATE TABLE {target} (" + ", ".join(f'"{c}" {t}' for c, t, _ in columns) + ")"
