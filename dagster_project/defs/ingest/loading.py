"""Validate one staged delivery and load it whole, minus its quarantined rows, or not at all - in one transaction.

Order of work for a delivery (all inside one DuckDB transaction on the build database):
1. structural checks (encoding, header, readability) - any breach rejects the file whole;
2. the source's GX suite in bounded chunks, plus in-file key uniqueness in SQL -> row flags;
3. if more than ``max_share`` of the rows are flagged, reject the file whole; otherwise flagged rows are
   quarantined and the rest continue;
4. bureau/usage rows whose client is not known yet are held in ``raw.<source>_held`` until it arrives;
5. upsert, ledger row, COMMIT. Results, quarantined rows and rejections go to the audit store.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.batch import Prepared, flag_budget
from dagster_project.defs.ingest.contract import SOURCES, Source
from dagster_project.defs.ingest.landing import Breach, Delivery, DeliveryRejected, stage_to_scratch
from dagster_project.defs.ingest.suites import rules
from dagster_project.defs.ingest.validation import SqlSuite, SuiteOutcome, landing_query
from dagster_project.lib import audit

KEY_STAT = {
    "clients": "annual_revenue",
    "credit_bureau": "bureau_score",
    "product_usage": "credit_limit",
    "review_decisions": "segment_id",
}
MASK_SQL = "regexp_replace(regexp_replace(left({v}, 20), '\\pL', 'x', 'g'), '\\d', '9', 'g')"


@dataclass
class LoadOutcome:
    file: str
    rows_in_file: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_held: int = 0
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # stage / validate / load, for the benchmark


@dataclass
class Context:
    key: str
    run_id: str
    asset: str
    audit_dir: Path
    rejected_dir: Path
    max_share: float
    today: date
    orphan_max_share: float = 0.2  # LENDSEG_ORPHAN_MAX_SHARE: above it a bureau/usage file is a likely mix-up
    staging_dir: Path | None = None  # scratch files for staged deliveries (default: beside the audit store)

    suites: dict[str, SqlSuite] = field(default_factory=dict)

    @property
    def scratch_dir(self) -> Path:
        return self.staging_dir or self.audit_dir.parent / "build" / "staging"

    def close(self) -> None:
        for suite in self.suites.values():
            suite.close()
        self.suites.clear()


def _key_col(src: Source) -> str:
    return "account_key" if any(c.stored_name == "account_key" for c in src.kept) else "client_key"


def _result(
    ctx: Context,
    d: Delivery,
    suite: str,
    rule: str,
    column: str | None,
    unexpected: int,
    elements: int,
    severity: str = "error",
    observed: str | None = None,
    success: bool | None = None,
) -> dict:
    return audit.dq_result(
        ctx.run_id,
        ctx.asset,
        suite,
        rule,
        (unexpected == 0) if success is None else success,
        severity,
        column_name=column,
        source_file=d.path.name,
        checksum=d.checksum,
        unexpected_count=unexpected,
        element_count=elements,
        observed_value=observed,
    )


def _flag(con: duckdb.DuckDBPyConnection, src: Source, flags: list[tuple[int, str]]) -> None:
    """Temp table ``_flags(row, rule)``: GX's unexpected rows plus in-file duplicate keys (SQL, cross-row)."""
    import pandas as pd

    con.execute("CREATE OR REPLACE TEMP TABLE _flags (row BIGINT, rule VARCHAR)")
    if flags:
        con.register("_gx_flags", pd.DataFrame(flags, columns=["row", "rule"]))
        con.execute("INSERT INTO _flags SELECT DISTINCT row, rule FROM _gx_flags")
        con.unregister("_gx_flags")
    part = ", ".join(f'"{k}"' for k in src.key)
    con.execute(
        f"INSERT INTO _flags SELECT rid + 1, 'unique_key:{'+'.join(src.key)}' FROM "
        f"(SELECT rowid AS rid, count(*) OVER (PARTITION BY {part}) AS n FROM stg.stage) WHERE n > 1"
    )


def _rule_column(src: Source, rule: str) -> str | None:
    col = rule.split(":", 1)[1] if ":" in rule else None
    if col and "<=" in col:
        col = col.split("<=")[-1]
    stored = {c.stored_name for c in src.kept}
    return col if col in stored else None


def _breaches(con: duckdb.DuckDBPyConnection, src: Source, total: int) -> list[Breach]:
    out = []
    key_col = _key_col(src)
    for rule, n in con.execute("SELECT rule, count(*) FROM _flags GROUP BY 1 ORDER BY 2 DESC, 1").fetchall():
        col = _rule_column(src, rule)
        value = f", {MASK_SQL.format(v=f's.{chr(34)}{col}{chr(34)}')}" if col else ""
        rows = con.execute(
            f'SELECT f.row, s."{key_col}"{value} FROM _flags f JOIN stg.stage s ON s.rowid = f.row - 1 '
            f"WHERE f.rule = ? ORDER BY f.row LIMIT 5",
            [rule],
        ).fetchall()
        sample = [
            {"row": r[0], "key_name": key_col, "key": r[1] or "", **({"value": r[2]} if col else {})} for r in rows
        ]
        out.append(Breach(rule.split(":")[0], col, f"{n} of {total} rows break '{rule}'", sample))
    return out


def _quarantine_sql(src: Source, d: Delivery, ctx: Context) -> str:
    key_col = _key_col(src)
    cases = " ".join(
        f"WHEN f.rule = '{rule}' THEN {MASK_SQL.format(v=f's.{chr(34)}{col}{chr(34)}')}"
        for rule in _all_rules(src, ctx)
        if (col := _rule_column(src, rule))
    )
    masked = f"CASE {cases} END" if cases else "NULL"
    return (
        f"SELECT '{ctx.run_id}' AS run_id, '{src.name}' AS source, {_lit(d.path.name)} AS source_file, "
        f"'{d.checksum}' AS checksum, f.row AS row_number, '{key_col}' AS key_name, s.\"{key_col}\" AS record_key, "
        f"f.rule, {masked} AS masked_value, now()::TIMESTAMP AS quarantined_at "
        f"FROM _flags f JOIN stg.stage s ON s.rowid = f.row - 1 ORDER BY f.row, f.rule"
    )


def _all_rules(src: Source, ctx: Context) -> list[str]:
    return [r.name for r in rules(src.name, ctx.today)] + [f"unique_key:{'+'.join(src.key)}"]


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _typed(src: Source, d: Delivery) -> str:
    cols = ", ".join(f'CAST("{c.stored_name}" AS {c.type}) AS "{c.stored_name}"' for c in src.kept)
    return (
        f"SELECT {cols}, {_lit(d.path.name)} AS _source_file, '{d.checksum}' AS _source_checksum, "
        f"rowid + 1 AS _source_row, now()::TIMESTAMP AS _ingested_at "
        f"FROM stg.stage WHERE rowid + 1 NOT IN (SELECT row FROM _flags)"
    )


def _keep_history(con: duckdb.DuckDBPyConnection, src: Source, target: str, staged: str, cond: str) -> None:
    """Copy the rows an upsert is about to replace into ``raw.<source>_history`` (restored by ``lendseg
    quarantine``)."""
    if target != src.name:
        return
    match = " AND ".join(f's."{k}" = r."{k}"' for k in src.key)
    con.execute(
        f"INSERT INTO raw.{target}_history SELECT r.*, now()::TIMESTAMP, s._source_file, s._source_row "
        f"FROM raw.{target} r JOIN {staged} s ON {match}{cond}"
    )


def upsert(con: duckdb.DuckDBPyConnection, src: Source, target: str, staged: str) -> int:
    """Apply the source's upsert rule from temp table ``staged`` into ``raw.<target>``; returns rows inserted.

    Rows replaced in ``raw.<source>`` are kept in ``raw.<source>_history`` first.
    """
    match = " AND ".join(f's."{k}" = r."{k}"' for k in src.key)
    if src.upsert == "newest_updated_at":
        _keep_history(con, src, target, staged, " AND s.updated_at >= r.updated_at")
        con.execute(
            f"DELETE FROM raw.{target} r WHERE EXISTS "
            f"(SELECT 1 FROM {staged} s WHERE {match} AND s.updated_at >= r.updated_at)"
        )
        return con.execute(
            f"INSERT INTO raw.{target} SELECT * FROM {staged} s WHERE NOT EXISTS "
            f"(SELECT 1 FROM raw.{target} r WHERE {match})"
        ).fetchone()[0]
    _keep_history(con, src, target, staged, "")
    con.execute(f"DELETE FROM raw.{target} r WHERE EXISTS (SELECT 1 FROM {staged} s WHERE {match})")
    return con.execute(f"INSERT INTO raw.{target} SELECT * FROM {staged}").fetchone()[0]


def _load(con: duckdb.DuckDBPyConnection, src: Source, d: Delivery) -> tuple[int, int]:
    """Upsert the unflagged rows; orphans of bureau/usage go to ``raw.<source>_held``. Returns (loaded, held)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS {_typed(src, d)}")
    held = 0
    if src.name != "clients":
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _orphans AS SELECT * FROM _typed t WHERE NOT EXISTS "
            "(SELECT 1 FROM raw.clients c WHERE c.client_key = t.client_key)"
        )
        con.execute("DELETE FROM _typed t WHERE EXISTS (SELECT 1 FROM _orphans o WHERE o.client_key = t.client_key)")
        held = upsert(con, src, f"{src.name}_held", "_orphans")
        con.execute("DROP TABLE _orphans")
    loaded = upsert(con, src, src.name, "_typed")
    con.execute("DROP TABLE _typed")
    return int(loaded), int(held)


def release_held(con: duckdb.DuckDBPyConnection, source: str) -> int:
    """Move held bureau/usage rows whose client has arrived into the raw table (one transaction)."""
    src = SOURCES[source]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _release AS SELECT * FROM raw.{source}_held h WHERE EXISTS "
            f"(SELECT 1 FROM raw.clients c WHERE c.client_key = h.client_key)"
        )
        n = upsert(con, src, source, "_release")
        con.execute(
            f"DELETE FROM raw.{source}_held h WHERE EXISTS (SELECT 1 FROM raw.clients c WHERE c.client_key = "
            "h.client_key)"
        )
        con.execute("DROP TABLE _release")
        con.execute("COMMIT")
        return int(n)
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _history_warnings(
    con: duckdb.DuckDBPyConnection, src: Source, d: Delivery, rows: int, stat: float | None, ctx: Context
) -> list[dict]:
    """Soft anomalies against earlier deliveries of the source: volume drop of 30 % or more, key-stat outlier."""
    prev = con.execute(
        "SELECT rows_in_file, key_stat FROM raw._deliveries WHERE source = ? ORDER BY ingested_at DESC LIMIT 6",
        [src.name],
    ).fetchall()
    out = []
    if prev and prev[0][0]:
        ratio = rows / prev[0][0]
        out.append(
            _result(
                ctx,
                d,
                "history",
                "volume_drop_30pct",
                None,
                int(ratio < 0.7),
                rows,
                "warning",
                f"{ratio:.2f} x previous delivery ({prev[0][0]} rows)",
            )
        )
    hist = sorted(p[1] for p in prev if p[1] is not None)
    if stat is not None and hist:
        median = hist[len(hist) // 2]
        ratio = stat / median if median else 1.0
        out.append(
            _result(
                ctx,
                d,
                "history",
                f"outlier:mean_{KEY_STAT[src.name]}",
                KEY_STAT[src.name],
                int(not 0.5 <= ratio <= 2.0),
                rows,
                "warning",
                f"mean {stat:,.2f} = {ratio:.2f} x median of last {len(hist)} deliveries",
            )
        )
    return out


def _reject(d: Delivery, ctx: Context, rej: DeliveryRejected, results: list[dict]) -> None:
    now = datetime.now(UTC)
    report = rej.to_json(d.checksum) | {"rejected_at": now.isoformat(), "run_id": ctx.run_id}
    ctx.rejected_dir.mkdir(parents=True, exist_ok=True)
    tmp = ctx.rejected_dir / f".{d.path.name}.error.json.tmp"
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    os.replace(tmp, ctx.rejected_dir / f"{d.path.name}.error.json")
    audit.append_rows(
        ctx.audit_dir,
        audit.DQ_RESULTS,
        results + [_result(ctx, d, "structure", f"delivery_accepted:{b.rule}", b.column, 1, 1) for b in rej.breaches],
    )
    audit.append_rows(
        ctx.audit_dir,
        audit.REJECTED,
        [
            {
                "source": d.source,
                "source_file": d.path.name,
                "file_name": d.path.name,
                "checksum": d.checksum,
                "run_id": ctx.run_id,
                "rejected_at": now.replace(tzinfo=None),
                "rules": ",".join(sorted({b.rule for b in rej.breaches})),
                "message": str(rej)[:4000],
            }
        ],
    )


def _validate(src: Source, ctx: Context, scratch: Path, total: int) -> SuiteOutcome:
    """The source's GX suite, run as SQL by DuckDB on the scratch file (one GX context per scratch file and run:
    deliveries staged here share their source's)."""
    suite = ctx.suites.get(str(scratch))
    if suite is None:
        suite = ctx.suites[str(scratch)] = SqlSuite(
            f"landing_{src.name}", rules(src.name, ctx.today), scratch, landing_query(src.name)
        )
    try:
        return suite.validate(flag_budget=flag_budget(total, ctx.max_share))
    finally:
        suite.release()


ORPHAN_CHECKED = ("credit_bureau", "product_usage")


def _orphan_sample(con: duckdb.DuckDBPyConnection, src: Source, d: Delivery) -> list[dict]:
    key_col = _key_col(src)
    rows = con.execute(
        f'SELECT _source_row, "{key_col}" FROM raw.{src.name}_held WHERE _source_checksum = ? ORDER BY 1 LIMIT 5',
        [d.checksum],
    ).fetchall()
    return [{"row": r[0], "key_name": key_col, "key": r[1] or ""} for r in rows]


def _accept_empty(con: duckdb.DuckDBPyConnection, d: Delivery, ctx: Context, out: LoadOutcome) -> LoadOutcome:
    """A header-only delivery: nothing new today. Ledger row with status 'empty' and a warning result."""
    con.execute(
        "INSERT INTO raw._deliveries (source, file_name, checksum, file_size, file_mtime_ns, status, "
        "rows_in_file, rows_loaded, rows_quarantined, rows_held, key_stat, ingested_at, run_id) "
        "VALUES (?, ?, ?, ?, ?, 'empty', 0, 0, 0, 0, NULL, now(), ?)",
        [d.source, d.path.name, d.checksum, d.size, d.mtime_ns, ctx.run_id],
    )
    audit.append_rows(
        ctx.audit_dir,
        audit.DQ_RESULTS,
        [
            _result(
                ctx, d, "structure", "has_rows", None, 1, 0, "warning", "header only: accepted as nothing new", False
            )
        ],
    )
    out.warnings.append(f"{d.path.name}: has_rows: header only, no data rows: accepted as nothing new")
    return out


def ingest_delivery(
    con: duckdb.DuckDBPyConnection, d: Delivery, ctx: Context, prepared: Prepared | None = None
) -> LoadOutcome:
    """Load one delivery whole, minus quarantined rows, or nothing of it (raising DeliveryRejected).

    ``prepared``: the delivery already staged and, usually, validated with the run's other deliveries of its
    source (``batch.prepare``); without it the delivery is staged and validated here.
    """
    src = SOURCES[d.source]
    out = LoadOutcome(d.path.name)
    results: list[dict] = []
    # one scratch per source when staged here: its GX context is reused across deliveries
    scratch = prepared.scratch if prepared and prepared.scratch else ctx.scratch_dir / f"{src.name}.duckdb"
    in_txn = False
    try:
        t0 = time.perf_counter()
        if prepared and prepared.rejected:
            raise prepared.rejected
        if prepared:
            total = out.rows_in_file = prepared.total
        else:
            total = out.rows_in_file = stage_to_scratch(con, src, d, ctx.key, scratch)
        if total == 0:
            return _accept_empty(con, d, ctx, out)
        t1 = time.perf_counter()
        # validated with its batch, or alone (staged here, or in a batch too dirty to list its rows)
        suite = prepared.suite if prepared and prepared.suite is not None else _validate(src, ctx, scratch, total)
        t2 = time.perf_counter()
        out.seconds = {"stage": t1 - t0, "validate": t2 - t1}
        if prepared:
            out.seconds = {k: prepared.seconds.get(k, 0.0) + v for k, v in out.seconds.items()}
        results += [
            _result(ctx, d, suite.suite, r.rule, r.column, r.unexpected_count, r.element_count)
            for r in suite.results.values()
        ]
        con.execute(f"ATTACH '{scratch}' AS stg (READ_ONLY)")
        con.execute("BEGIN TRANSACTION")
        in_txn = True
        if not suite.complete:
            worst = max(suite.results.values(), key=lambda r: r.unexpected_count)
            raise DeliveryRejected(
                d.path,
                src.name,
                [
                    Breach(
                        "quarantine_share",
                        None,
                        f"at least {worst.unexpected_count} of {total} rows "
                        f"({worst.unexpected_count / total:.2%}) break row rules, more than the allowed "
                        f"{ctx.max_share:.2%}",
                    )
                ]
                + [
                    Breach(
                        r.rule.split(":")[0],
                        r.column,
                        f"{r.unexpected_count} of {total} rows break '{r.rule}'",
                        [{"row": n} for n in r.sample_rows],
                    )
                    for r in suite.results.values()
                    if r.unexpected_count
                ],
            )
        _flag(con, src, suite.flags)
        dup = con.execute("SELECT count(*) FROM _flags WHERE rule LIKE 'unique_key:%'").fetchall()[0][0]
        results.append(_result(ctx, d, "sql", f"unique_key:{'+'.join(src.key)}", None, dup, total))
        flagged = con.execute("SELECT count(DISTINCT row) FROM _flags").fetchall()[0][0]
        share = flagged / total
        results.append(
            _result(
                ctx,
                d,
                "sql",
                "quarantine_share",
                None,
                flagged,
                total,
                observed=f"{share:.4%}",
                success=share <= ctx.max_share,
            )
        )
        if share > ctx.max_share:
            raise DeliveryRejected(
                d.path,
                src.name,
                [
                    Breach(
                        "quarantine_share",
                        None,
                        f"{flagged} of {total} rows ({share:.2%}) break row rules, more than the "
                        f"allowed {ctx.max_share:.2%}",
                    )
                ]
                + _breaches(con, src, total),
            )
        out.rows_quarantined = flagged
        con.execute(f"CREATE OR REPLACE TEMP TABLE _quarantine AS {_quarantine_sql(src, d, ctx)}")
        if flagged:
            out.warnings.append(
                f"{d.path.name}: {flagged} rows quarantined: "
                + "; ".join(b.describe() for b in _breaches(con, src, total))
            )
        stat = con.execute(f'SELECT avg(TRY_CAST("{KEY_STAT[src.name]}" AS DOUBLE)) FROM stg.stage').fetchall()[0][0]
        results += _history_warnings(con, src, d, total, stat, ctx)
        out.rows_loaded, out.rows_held = _load(con, src, d)
        if src.name in ORPHAN_CHECKED:
            orphan_share = out.rows_held / total
            results.append(
                _result(
                    ctx,
                    d,
                    "sql",
                    "orphan_share",
                    "client_key",
                    out.rows_held,
                    total,
                    observed=f"{out.rows_held} of {total} rows ({orphan_share:.2%}) of unknown clients",
                    success=orphan_share <= ctx.orphan_max_share,
                )
            )
            if orphan_share > ctx.orphan_max_share:
                raise DeliveryRejected(
                    d.path,
                    src.name,
                    [
                        Breach(
                            "orphan_share",
                            "client_key",
                            f"{out.rows_held} of {total} rows ({orphan_share:.2%}) belong to "
                            f"clients unknown to raw.clients, more than the allowed {ctx.orphan_max_share:.2%}: "
                            "likely a file "
                            f"from the wrong system or a key mix-up",
                            _orphan_sample(con, src, d),
                        )
                    ],
                )
        results.append(
            _result(
                ctx,
                d,
                "sql",
                "orphans_held",
                "client_key",
                out.rows_held,
                total,
                "warning",
                f"{out.rows_held} of {total} rows ({out.rows_held / total:.2%}) held for unknown clients",
            )
        )
        con.execute(
            "INSERT INTO raw._deliveries (source, file_name, checksum, file_size, file_mtime_ns, status, "
            "rows_in_file, rows_loaded, rows_quarantined, rows_held, key_stat, ingested_at, run_id) "
            "VALUES (?, ?, ?, ?, ?, 'loaded', ?, ?, ?, ?, ?, now(), ?)",
            [
                d.source,
                d.path.name,
                d.checksum,
                d.size,
                d.mtime_ns,
                total,
                out.rows_loaded,
                out.rows_quarantined,
                out.rows_held,
                stat,
                ctx.run_id,
            ],
        )
        con.execute("COMMIT")
        in_txn = False
        out.seconds["load"] = time.perf_counter() - t2
        if out.rows_quarantined:
            audit.append_query(con, ctx.audit_dir, audit.QUARANTINED, "SELECT * FROM _quarantine")
    except DeliveryRejected as rej:
        if in_txn:
            con.execute("ROLLBACK")
        _reject(d, ctx, rej, results)
        raise
    except BaseException:
        if in_txn:
            con.execute("ROLLBACK")
        raise
    finally:
        con.execute("DROP TABLE IF EXISTS _flags; DROP TABLE IF EXISTS _quarantine")
        if con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'stg'").fetchall()[0][0]:
            con.execute("DETACH stg")
        scratch.unlink(missing_ok=True)
        scratch.with_name(scratch.name + ".wal").unlink(missing_ok=True)
    audit.append_rows(ctx.audit_dir, audit.DQ_RESULTS, results)
    out.warnings += [
        f"{d.path.name}: {r['rule']}: {r['observed_value']}"
        for r in results
        if r["severity"] == "warning" and not r["success"]
    ]
    return out
