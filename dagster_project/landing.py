"""Loading one landing delivery into the raw layer of the build database, in one transaction.

DuckDB's own readers parse the file; personal data is dropped or pseudonymised inside the read query,
so no clear identifier ever reaches a table. Structural breaches reject the whole delivery with a
message naming the file, the rule, the column and sample rows (row number and pseudonymous key).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from .config import ConfigError
from .contract import SOURCES, Source, mask, missing_columns
from .pseudonymise import hmac_sql

SUFFIXES = {".csv": "csv", ".parquet": "parquet"}
LINEAGE = ("_source_file", "_source_checksum", "_source_row", "_ingested_at")


@dataclass
class Breach:
    rule: str
    column: str | None
    detail: str
    rows: list[dict] = field(default_factory=list)  # [{"row": 12, "key": "3fa9...", "value": "99x"}]

    def describe(self) -> str:
        sample = ", ".join(
            f"row {r['row']}" + (f" ({r['key_name']} {r['key'][:12]}...)" if r.get("key") else "")
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
        return {"file": self.path.name, "source": self.source, "checksum": checksum,
                "breaches": [asdict(b) for b in self.breaches]}


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
        raise DeliveryRejected(path, path.parent.name, [Breach("encoding", None, f"header is not UTF-8 ({e.reason} at byte {e.start})")]) from None
    return [c.strip() for c in next(csv.reader([line]))]


def reader_sql(path: Path, columns: list[str] | None = None) -> str:
    """DuckDB reader for a delivery; CSVs are read as text with the given header and no type sniffing."""
    lit = "'" + str(path).replace("'", "''") + "'"
    if path.suffix.lower() == ".parquet":
        return f"read_parquet({lit})"
    cols = ", ".join("'" + c.replace("'", "''") + "': 'VARCHAR'" for c in columns or [])
    return (f"read_csv({lit}, header=true, auto_detect=false, columns={{{cols}}}, delim=',', quote='\"', "
            f"escape='\"', strict_mode=true, encoding='utf-8')")


def ensure_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS raw")
    for src in SOURCES.values():
        cols = ", ".join(f'"{c.stored_name}" {c.type}' for c in src.kept)
        con.execute(
            f"CREATE TABLE IF NOT EXISTS raw.{src.name} ({cols}, _source_file VARCHAR, "
            f"_source_checksum VARCHAR, _source_row BIGINT, _ingested_at TIMESTAMP)"
        )
    con.execute(
        "CREATE TABLE IF NOT EXISTS raw._deliveries (source VARCHAR, file_name VARCHAR, checksum VARCHAR, "
        "file_size BIGINT, file_mtime_ns BIGINT, status VARCHAR, rows_in_file BIGINT, rows_loaded BIGINT, "
        "ingested_at TIMESTAMP, run_id VARCHAR, message VARCHAR)"
    )
    con.execute("CREATE TABLE IF NOT EXISTS raw._build_info (key_id VARCHAR, created_at TIMESTAMP)")


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


def _stage(con: duckdb.DuckDBPyConnection, src: Source, path: Path, key: str, header: list[str]) -> None:
    """Temp table of the delivery as trimmed text, PII dropped or pseudonymised in the read query."""
    exprs = []
    for c in src.kept:
        text = f"NULLIF(TRIM(CAST(\"{c.name}\" AS VARCHAR)), '')"
        exprs.append(f"{hmac_sql(key, text)} AS \"{c.stored_name}\"" if c.pii == "hmac" else f"{text} AS \"{c.name}\"")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS SELECT {', '.join(exprs)} FROM {reader_sql(path, header)}")


def _row_base(con: duckdb.DuckDBPyConnection) -> int:
    """Temp-table rowids start at an offset; rows keep file order, so row N = rowid - base + 1."""
    return con.execute("SELECT coalesce(min(rowid), 0) FROM _stage").fetchone()[0]


def _sample(con: duckdb.DuckDBPyConnection, src: Source, where: str, col: str | None) -> tuple[int, list[dict]]:
    key_col = "account_key" if any(c.stored_name == "account_key" for c in src.kept) else "client_key"
    value = f", \"{col}\" AS v" if col else ""
    n = con.execute(f"SELECT count(*) FROM _stage WHERE {where}").fetchone()[0]
    rows = con.execute(
        f"SELECT rowid - {_row_base(con)} + 1, \"{key_col}\"{value} FROM _stage WHERE {where} ORDER BY rowid LIMIT 5"
    ).fetchall()
    sample = [{"row": r[0], "key_name": key_col, "key": r[1], **({"value": mask(r[2])} if col else {})} for r in rows]
    return n, sample


def structural_breaches(con: duckdb.DuckDBPyConnection, src: Source) -> list[Breach]:
    """Required values, parseable types and in-file key uniqueness of the staged delivery."""
    breaches: list[Breach] = []
    total = con.execute("SELECT count(*) FROM _stage").fetchone()[0]
    if total == 0:
        return [Breach("non_empty", None, "the file has a header but no data rows")]
    for c in src.kept:
        col = c.stored_name
        if c.required:
            n, rows = _sample(con, src, f'"{col}" IS NULL', None)
            if n:
                breaches.append(Breach("required", c.name, f"{n} of {total} rows have no value", rows))
        if c.type != "VARCHAR":
            n, rows = _sample(con, src, f'"{col}" IS NOT NULL AND TRY_CAST("{col}" AS {c.type}) IS NULL', col)
            if n:
                breaches.append(Breach("type", c.name, f"{n} of {total} values do not parse as {c.type}", rows))
    part = ", ".join(f'"{k}"' for k in src.key)
    dup = f"rowid IN (SELECT rid FROM (SELECT rowid AS rid, count(*) OVER (PARTITION BY {part}) AS n FROM _stage) WHERE n > 1)"
    n, rows = _sample(con, src, dup, None)
    if n:
        breaches.append(Breach("unique_key", ",".join(src.key), f"{n} rows share a key within the file", rows))
    return breaches


def _typed_select(src: Source, path: Path, checksum: str, base: int) -> str:
    cols = [f'CAST("{c.stored_name}" AS {c.type}) AS "{c.stored_name}"' for c in src.kept]
    lineage = [f"'{path.name.replace(chr(39), chr(39) * 2)}'", f"'{checksum}'", f"rowid - {base} + 1", "now()::TIMESTAMP"]
    return f"SELECT {', '.join(cols)}, {', '.join(lineage)} FROM _stage"


def _upsert(con: duckdb.DuckDBPyConnection, src: Source, path: Path, checksum: str) -> int:
    con.execute(f"CREATE OR REPLACE TEMP TABLE _typed AS {_typed_select(src, path, checksum, _row_base(con))}")
    match = " AND ".join(f's."{k}" = r."{k}"' for k in src.key)
    if src.upsert == "newest_updated_at":
        con.execute(f"DELETE FROM raw.{src.name} r WHERE EXISTS "
                    f"(SELECT 1 FROM _typed s WHERE {match} AND s.updated_at >= r.updated_at)")
        loaded = con.execute(f"INSERT INTO raw.{src.name} SELECT * FROM _typed s WHERE NOT EXISTS "
                             f"(SELECT 1 FROM raw.{src.name} r WHERE {match})").fetchone()[0]
    else:
        con.execute(f"DELETE FROM raw.{src.name} r WHERE EXISTS (SELECT 1 FROM _typed s WHERE {match})")
        loaded = con.execute(f"INSERT INTO raw.{src.name} SELECT * FROM _typed").fetchone()[0]
    con.execute("DROP TABLE _typed")
    return int(loaded)


@dataclass
class Delivery:
    source: str
    path: Path
    checksum: str
    size: int
    mtime_ns: int
    encoding_problem: str | None = None


def pending_deliveries(con: duckdb.DuckDBPyConnection, source: str, landing_dir: Path) -> tuple[list[Delivery], list[str]]:
    """New deliveries of a source in arrival order, and log lines for files skipped by checksum."""
    folder = landing_dir / source
    files = sorted((p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES and p.is_file()),
                   key=lambda p: (p.stat().st_mtime_ns, p.name)) if folder.exists() else []
    known = {(r[0], r[1], r[2]): r[3] for r in con.execute(
        "SELECT file_name, file_size, file_mtime_ns, checksum FROM raw._deliveries WHERE source = ?", [source]).fetchall()}
    seen = {r[0]: (r[1], r[2]) for r in con.execute(
        "SELECT checksum, status, file_name FROM raw._deliveries WHERE source = ?", [source]).fetchall()}
    out, skipped = [], []
    for p in files:
        st = p.stat()
        checksum, encoding_problem = known.get((p.name, st.st_size, st.st_mtime_ns)), None
        if checksum is None:
            checksum, encoding_problem = scan_file(p)
        if checksum in seen:
            status, first = seen[checksum]
            if first == p.name:
                continue  # this very file, already handled
            skipped.append(f"{p.name}: same content as {first} ({status}), skipped")
            continue
        seen[checksum] = ("pending", p.name)
        out.append(Delivery(source, p, checksum, st.st_size, st.st_mtime_ns, encoding_problem))
    return out, skipped


def _ledger(con: duckdb.DuckDBPyConnection, d: Delivery, status: str, rows: int | None, loaded: int | None,
            run_id: str, message: str | None) -> None:
    con.execute("INSERT INTO raw._deliveries VALUES (?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)",
                [d.source, d.path.name, d.checksum, d.size, d.mtime_ns, status, rows, loaded, run_id, message])


def ingest_delivery(con: duckdb.DuckDBPyConnection, d: Delivery, key: str, run_id: str, rejected_dir: Path) -> int:
    """Load one delivery whole, or nothing of it (raising DeliveryRejected). Returns rows loaded."""
    src = SOURCES[d.source]
    con.execute("BEGIN TRANSACTION")
    try:
        try:
            if d.encoding_problem:
                raise DeliveryRejected(d.path, src.name, [Breach("encoding", None, f"not valid UTF-8 at {d.encoding_problem}")])
            header = delivered_columns(con, d.path)
            missing = missing_columns(src, header)
            if missing:
                raise DeliveryRejected(d.path, src.name, [Breach("missing_column", m, "required by contract v1") for m in missing])
            _stage(con, src, d.path, key, header)
        except duckdb.Error as e:
            # Reader errors quote file content; keep only DuckDB's first line, which names the problem.
            reason = "; ".join(ln for ln in str(e).splitlines()[:4] if ln.strip() and not ln.startswith("Original Line"))[:300]
            raise DeliveryRejected(d.path, src.name, [Breach("readable", None, f"DuckDB cannot read it as contract CSV/Parquet: {reason}")]) from None
        breaches = structural_breaches(con, src)
        if breaches:
            raise DeliveryRejected(d.path, src.name, breaches)
        rows = con.execute("SELECT count(*) FROM _stage").fetchone()[0]
        loaded = _upsert(con, src, d.path, d.checksum)
        con.execute("DROP TABLE _stage")
        _ledger(con, d, "loaded", rows, loaded, run_id, None)
        con.execute("COMMIT")
        return loaded
    except DeliveryRejected as rej:
        con.execute("ROLLBACK")
        rejected_dir.mkdir(parents=True, exist_ok=True)
        report = rej.to_json(d.checksum) | {"rejected_at": datetime.now(timezone.utc).isoformat(), "run_id": run_id}
        tmp = rejected_dir / f".{d.path.name}.error.json.tmp"
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        os.replace(tmp, rejected_dir / f"{d.path.name}.error.json")
        _ledger(con, d, "rejected", None, 0, run_id, str(rej)[:2000])
        raise
    except BaseException:
        con.execute("ROLLBACK")
        raise
