"""The append-only audit store, outside the build database.

Layout: ``$LENDSEG_DATA_DIR/audit/<table>/<utc timestamp>-<unique>.parquet`` (or ``.jsonl``). Writers only
ever add new files, written under a temporary name and renamed, so a failed run still records its
failures, nothing is ever rewritten, and several processes can write at once. Each publish exposes every
table as ``audit.<table>``; ``lendseg quality`` reads it directly without opening any warehouse.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

DQ_RESULTS = "data_quality_results"
REJECTED = "rejected_deliveries"
QUARANTINED = "quarantined_rows"

# ``data_quality_results.severity``: error (blocks loading or publishing) or warning (reported only). Every
# writer goes through append_rows, which refuses anything else. Before issue 24 published_warehouse wrote
# Dagster's ``WARN`` as ``warn``; the store is append-only, so those rows stay on disk and every reader
# (tables(): the publish copy, ``lendseg quality``) shows them as ``warning``.
SEVERITIES = ("error", "warning")
OLD_SPELLINGS = {"warn": "warning"}


def severity_of(value: object) -> str:
    """The audit severity of a Dagster ``AssetCheckSeverity`` (ERROR, WARN) or of a severity name."""
    text = str(getattr(value, "value", value)).lower()
    text = OLD_SPELLINGS.get(text, text)
    if text not in SEVERITIES:
        raise ValueError(f"unknown severity {value!r}; the audit store knows {', '.join(SEVERITIES)}")
    return text


def check_severities(rows: list[dict]) -> None:
    """Refuse data-quality rows whose severity is not one of SEVERITIES (spelling included)."""
    if bad := sorted({repr(r.get("severity")) for r in rows if r.get("severity") not in SEVERITIES}):
        raise ValueError(f"data_quality_results severity must be one of {', '.join(SEVERITIES)}, got {', '.join(bad)}")


def utc_now() -> datetime:
    """Naive UTC now: the audit store's timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


def dq_result(
    run_id: str,
    asset: str,
    suite: str,
    rule: str,
    success: bool,
    severity: str = "error",
    *,
    column_name: str | None = None,
    source_file: str | None = None,
    checksum: str | None = None,
    unexpected_count: int | None = None,
    element_count: int | None = None,
    observed_value: str | None = None,
    checked_at: datetime | None = None,
) -> dict:
    """One row of ``audit.data_quality_results``: every stage that records a check verdict builds it here."""
    check_severities([{"severity": severity}])
    return {
        "run_id": run_id,
        "asset": asset,
        "suite": suite,
        "rule": rule,
        "column_name": column_name,
        "source_file": source_file,
        "checksum": checksum,
        "success": success,
        "unexpected_count": unexpected_count,
        "element_count": element_count,
        "observed_value": observed_value,
        "severity": severity,
        "checked_at": checked_at or utc_now(),
    }


def _new_file(audit_dir: Path, table: str, suffix: str) -> tuple[Path, Path]:
    folder = audit_dir / table
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    final = folder / f"{stamp}-{uuid.uuid4().hex[:8]}{suffix}"
    return final, folder / f".{final.name}.tmp"


def append_query(
    con: duckdb.DuckDBPyConnection, audit_dir: Path, table: str, select_sql: str, params: list | None = None
) -> Path | None:
    """Append the result of ``select_sql`` (run on ``con``) as a new Parquet file; nothing if it is empty."""
    final, tmp = _new_file(audit_dir, table, ".parquet")
    con.execute(f"COPY ({select_sql}) TO '{tmp}' (FORMAT parquet)", params or [])
    if duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{tmp}')").fetchone()[0] == 0:
        tmp.unlink()
        return None
    os.replace(tmp, final)
    return final


def append_rows(audit_dir: Path, table: str, rows: list[dict]) -> Path | None:
    """Append Python records (one dict per row, same keys) as a new Parquet file."""
    if not rows:
        return None
    if table == DQ_RESULTS:
        check_severities(rows)
    import pandas as pd

    con = duckdb.connect()
    con.register("rows_df", pd.DataFrame(rows))
    return append_query(con, audit_dir, table, "SELECT * FROM rows_df")


def tables(audit_dir: Path) -> dict[str, str]:
    """``{table: reader SQL}`` for every audit table that has at least one file."""
    out: dict[str, str] = {}
    if not audit_dir.exists():
        return out
    for folder in sorted(p for p in audit_dir.iterdir() if p.is_dir()):
        if any(folder.glob("*.parquet")):
            out[folder.name] = f"read_parquet('{folder}/*.parquet', union_by_name=true)"
            if folder.name == DQ_RESULTS:  # rows of older releases: one vocabulary for every reader
                cases = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in OLD_SPELLINGS.items())
                out[folder.name] = (
                    f"(SELECT * REPLACE (CASE severity {cases} ELSE severity END AS severity) FROM {out[folder.name]})"
                )
        elif any(folder.glob("*.jsonl")):
            out[folder.name] = f"read_json_auto('{folder}/*.jsonl', format='newline_delimited', union_by_name=true)"
    return out


def read(audit_dir: Path, table: str) -> str | None:
    """Reader SQL for one audit table, or None if it has no files yet."""
    return tables(audit_dir).get(table)


def rejected_checksums(audit_dir: Path, source: str) -> dict[str, str]:
    """``{checksum: file name}`` of every rejected delivery of a source (the rejection ledger)."""
    sql = read(audit_dir, REJECTED)
    if sql is None:
        return {}
    con = duckdb.connect()
    return dict(
        con.execute(
            f"SELECT checksum, any_value(file_name) FROM {sql} WHERE source = ? GROUP BY 1", [source]
        ).fetchall()
    )
