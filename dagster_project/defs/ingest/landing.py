"""Landing files: finding new deliveries, reading them with DuckDB, staging them with personal data removed.

DuckDB's own readers parse the file; personal data is dropped or pseudonymised inside the read query,
so no clear identifier ever reaches a table. ``loading.py`` validates and loads the staged delivery.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.contract import SOURCES, Source, missing_columns
from dagster_project.lib.pseudonymise import hmac_sql
from dagster_project.lib.settings import ConfigError

SUFFIXES = {".csv": "csv", ".parquet": "parquet"}
LEDGER_COLUMNS = [
    ("file_size", "BIGINT"),
    ("file_mtime_ns", "BIGINT"),
    ("status", "VARCHAR"),
    ("rows_in_file", "BIGINT"),
    ("rows_loaded", "BIGINT"),
    ("rows_quarantined", "BIGINT"),
    ("rows_held", "BIGINT"),
    ("key_stat", "DOUBLE"),
    ("ingested_at", "TIMESTAMP"),
    ("run_id", "VARCHAR"),
]


@dataclass
class Breach:
    rule: str
    column: str | None
    detail: str
    rows: list[dict] = field(default_factory=list)  # [{"row": 12, "key": "3fa9...", "value": "99x"}]

    def describe(self) -> str:
        sample = ", ".join(
            f"row {r['row']}"
            + (f" ({r['key_name']} {r['key'][:12]}...)" if r.get("key") else "")
            + (f" value {r['value']!r}" if "value" in r else "")
            for r in self.rows[:5]
        )
        col = f" column '{self.column}'" if self.column else ""
        return f"rule '{self.rule}'{col}: {self.detail}" + (f"; e.g. {sample}" if sample else "")


class DeliveryRejected(Exception):
    def __init__(self, path: Path, source: str, breaches: list[Breach]):
        self.path, self.source, self.breaches = path, source, breaches
        lines = "\n  - ".join(b.describe() for b in breaches)
        super().__init__(f"Delivery {path.name} (source '{source}') rejected, nothing of it was loaded:\n  - {lines}")

    def to_json(self, checksum: str) -> dict:
        return {
            "file": self.path.name,
            "source": self.source,
            "checksum": checksum,
            "breaches": [asdict(b) for b in self.breaches],
        }


def scan_file(path: Path) -> tuple[str, str | None]:
    """SHA-256 of the file and, for CSV, the first UTF-8 decoding problem ('line N: reason'), in one pass."""
    h = hashlib.sha256()
    check = path.suffix.lower() == ".csv"
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    lines, problem = 1, None
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            if check and problem is None:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    line_no = lines + chunk.count(b"\n", 0, e.start)
                    problem = f"line {line_no}: {e.reason}"
                lines += chunk.count(b"\n")
    return h.hexdigest(), problem


def csv_header(path: Path) -> list[str]:
    """Column names from a CSV delivery's first line (UTF-8, optional BOM), read without DuckDB's sniffer."""
    with path.open("rb") as f:
        first = f.readline(1 << 20)
    if not first.strip():
        raise DeliveryRejected(path, path.parent.name, [Breach("non_empty", None, "the file is empty (no header row)")])
    try:
        line = first.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DeliveryRejected(
            path, path.parent.name, [Breach("encoding", None, f"header is not UTF-8 ({e.reason} at byte {e.start})")]
        ) from None
    return [c.strip() for c in next(csv.reader([line]))]


def reader_sql(path: Path, columns: list[str] | None = None) -> str:
    """DuckDB reader for a delivery; CSVs are read as text with the given header and no type sniffing."""
    lit = "'" + str(path).replace("'", "''") + "'"
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({lit})"
    cols = ", ".join("'" + c.replace("'", "''") + "': 'VARCHAR'" for c in columns or [])
    return (
        f"read_csv({lit}, header=true, auto_detect=false, columns={{{cols}}}, delim=',', quote='\"', "
        f"escape='\"', strict_mode=true, encoding='utf-8')"
    )


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for src in SOURCES.values():
        cols = ", ".join(f'"{c.stored_name}" {c.type}' for c in src.kept)
        for table in (src.name, f"{src.name}_held"):
            con.execute(
                f"CREATE TABLE IF NOT EXISTS raw.{table} ({cols}, _source_file VARCHAR, "
                f"_source_checksum VARCHAR, _source_row BIGINT, _ingested_at TIMESTAMP)"
            )
        # rows an upsert replaced, restorable by `lendseg quarantine` (remedy.py); created in place on old databases
        con.execute(
            f"CREATE TABLE IF NOT EXISTS raw.{src.name}_history ({cols}, _source_file VARCHAR, "
            f"_source_checksum VARCHAR, _source_row BIGINT, _ingested_at TIMESTAMP, _replaced_at TIMESTAMP, "
            f"_replaced_by_file VARCHAR, _replaced_by_row BIGINT)"
        )
    for src in SOURCES.values():
        for table in (src.name, f"{src.name}_held", f"{src.name}_history"):
            add_contract_columns(con, src, table)
    con.execute("CREATE TABLE IF NOT EXISTS raw._deliveries (source VARCHAR, file_name VARCHAR, checksum VARCHAR)")
    for col, typ in LEDGER_COLUMNS:  # additive migrations of build databases made by earlier versions
        con.execute(f"ALTER TABLE raw._deliveries ADD COLUMN IF NOT EXISTS {col} {typ}")
    con.execute("CREATE TABLE IF NOT EXISTS raw._build_info (key_id VARCHAR, created_at TIMESTAMP)")


def add_contract_columns(con: duckdb.DuckDBPyConnection, src: Source, table: str) -> None:
    """Upgrade a raw table made under an earlier contract version: its columns in today's order, new ones empty.

    Loading inserts by position (contract columns, then lineage), so a column added by a later contract version
    (v1.1's ``term_months``, ``security_type``) must sit where the contract puts it, not at the end: the table is
    rewritten once, in one transaction, keeping every row and its lineage.
    """
    have = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'raw' "
            "AND table_name = ? ORDER BY column_index",
            [table],
        ).fetchall()
    ]
    missing = [c for c in src.kept if c.stored_name not in have]
    if not have or not missing:
        return
    kept = {c.stored_name for c in src.kept}
    cols = [
        f'"{c.stored_name}"' if c.stored_name in have else f'NULL::{c.type} AS "{c.stored_name}"' for c in src.kept
    ] + [f'"{c}"' for c in have if c not in kept]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE TABLE raw.{table}__upgrade AS SELECT {', '.join(cols)} FROM raw.{table}")
        con.execute(f"DROP TABLE raw.{table}")
        con.execute(f"ALTER TABLE raw.{table}__upgrade RENAME TO {table}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def check_key_id(con: duckdb.DuckDBPyConnection, key_id: str) -> None:
    """Record the key id on first use; refuse a different key afterwards."""
    row = con.execute("SELECT key_id FROM raw._build_info LIMIT 1").fetchone()
    if row is None:
        con.execute("INSERT INTO raw._build_info VALUES (?, now())", [key_id])
    elif row[0] != key_id:
        raise ConfigError(
            f"LENDSEG_PII_KEY has key id {key_id}, but this build database was pseudonymised with key id "
            f"{row[0]}. Mixing keys would split every client in two; use the original key or start a new "
            f"LENDSEG_DATA_DIR."
        )


def delivered_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader_sql(path)}").fetchall()]
    return csv_header(path)


def stage_sql(src: Source, path: Path, key: str, header: list[str]) -> str:
    """SELECT of the delivery as trimmed text, with PII dropped or pseudonymised inside the read query."""
    exprs, present = [], set(header)
    for c in src.kept:
        if c.name not in present:  # a v1.1 column the delivery leaves out (contract.missing_columns allowed it)
            exprs.append(f'NULL::VARCHAR AS "{c.stored_name}"')
            continue
        text = f"NULLIF(TRIM(CAST(\"{c.name}\" AS VARCHAR)), '')"
        exprs.append(f'{hmac_sql(key, text)} AS "{c.stored_name}"' if c.pii == "hmac" else f'{text} AS "{c.name}"')
    return f"SELECT {', '.join(exprs)} FROM {reader_sql(path, header)}"


@dataclass
class Delivery:
    source: str
    path: Path
    checksum: str
    size: int
    mtime_ns: int
    encoding_problem: str | None = None


def pending_deliveries(
    con: duckdb.DuckDBPyConnection, source: str, landing_dir: Path, rejected: dict[str, str] | None = None
) -> tuple[list[Delivery], list[str]]:
    """New deliveries of a source in arrival order, and log lines for files skipped by checksum.

    ``rejected`` is the rejection ledger ``{checksum: file name}``: a rejected file is not retried until a
    file with different content arrives.
    """
    folder = landing_dir / source
    files = (
        sorted(
            (p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES and p.is_file()),
            key=lambda p: (p.stat().st_mtime_ns, p.name),
        )
        if folder.exists()
        else []
    )
    known = {
        (r[0], r[1], r[2]): r[3]
        for r in con.execute(
            "SELECT file_name, file_size, file_mtime_ns, checksum FROM raw._deliveries WHERE source = ?", [source]
        ).fetchall()
    }
    seen = {
        r[0]: (r[1], r[2])
        for r in con.execute(
            "SELECT checksum, status, file_name FROM raw._deliveries WHERE source = ?", [source]
        ).fetchall()
    }
    seen |= {checksum: ("rejected", name) for checksum, name in (rejected or {}).items()}
    out, skipped = [], []
    for p in files:
        st = p.stat()
        checksum, encoding_problem = known.get((p.name, st.st_size, st.st_mtime_ns)), None
        if checksum is None:
            checksum, encoding_problem = scan_file(p)
        if checksum in seen:
            status, first = seen[checksum]
            if first == p.name:
                if status == "rejected":
                    skipped.append(
                        f"{p.name}: rejected earlier, not retried until a file with different content arrives"
                    )
                continue
            skipped.append(f"{p.name}: same content as {first} ({status}), skipped")
            continue
        seen[checksum] = ("pending", p.name)
        out.append(Delivery(source, p, checksum, st.st_size, st.st_mtime_ns, encoding_problem))
    return out, skipped


def stage_to_scratch(con: duckdb.DuckDBPyConnection, src: Source, d: Delivery, key: str, scratch: Path) -> int:
    """Structural checks, then the delivery as text (PII removed) in table ``stage`` of a scratch DuckDB file."""
    if d.encoding_problem:
        raise DeliveryRejected(d.path, src.name, [Breach("encoding", None, f"not valid UTF-8 at {d.encoding_problem}")])
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.unlink(missing_ok=True)
    try:
        header = delivered_columns(con, d.path)
        if missing := missing_columns(src, header):
            raise DeliveryRejected(
                d.path, src.name, [Breach("missing_column", m, "required by contract v1.1") for m in missing]
            )
        con.execute(f"ATTACH '{scratch}' AS stg")
        try:
            con.execute(f"CREATE TABLE stg.stage AS {stage_sql(src, d.path, key, header)}")
            total = con.execute("SELECT count(*) FROM stg.stage").fetchall()[0][0]
        finally:
            con.execute("DETACH stg")
    except duckdb.Error as e:
        reason = "; ".join(ln for ln in str(e).splitlines()[:4] if ln.strip() and not ln.startswith("Original Line"))
        raise DeliveryRejected(
            d.path,
            src.name,
            [Breach("readable", None, f"DuckDB cannot read it as contract CSV/Parquet: {reason[:300]}")],
        ) from None
    return total
