"""``lendseg reidentify``: map pseudonymous client_keys back to client_ids, for holders of the key only.

The mapping is computed in memory from the client master files in the landing zone: every delivered
client_id is hashed with LENDSEG_PII_KEY (HMAC-SHA256, the same pseudonym as ingestion) inside DuckDB and
joined to the requested keys. It is printed to stdout and never written to disk. Refused without
LENDSEG_PII_KEY (the public demo key is accepted only with LENDSEG_DEMO=1 / --demo).
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.landing import SUFFIXES, reader_sql
from dagster_project.lib.pseudonymise import hmac_sql
from dagster_project.lib.settings import ConfigError, Settings, pii_key

QUEUE_SQL = "SELECT client_key FROM marts.segment_review_queue ORDER BY client_key"
KEY_RE = re.compile(r"^[0-9a-f]{64}$")


def keys_from_sql(warehouse: Path, sql: str) -> list[str]:
    """client_keys returned by a read-only query on the published warehouse (first column)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return [str(r[0]) for r in con.execute(sql).fetchall() if r[0] is not None]
    finally:
        con.close()


def client_files(landing_dir: Path) -> list[Path]:
    folder = landing_dir / "clients"
    return (
        sorted(p for p in folder.glob("*") if p.suffix.lower() in SUFFIXES and p.is_file()) if folder.exists() else []
    )


def reidentify(settings: Settings, keys: list[str], key: str | None = None) -> list[tuple[str, str]]:
    """(client_id, client_key) for every requested key found in the delivered client master files.

    Everything happens in an in-memory DuckDB connection: no mapping is ever written to disk.
    """
    key = key if key is not None else pii_key()
    wanted = sorted({k.strip().lower() for k in keys if k and k.strip()})
    bad = [k for k in wanted if not KEY_RE.match(k)]
    if bad:
        raise ValueError(f"not a client_key (64 lowercase hex): {bad[:3]}")
    files = client_files(settings.landing_dir)
    if not wanted or not files:
        return []
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TEMP TABLE wanted (client_key VARCHAR)")
        con.executemany("INSERT INTO wanted VALUES (?)", [[k] for k in wanted])
        ids = " UNION ".join(
            f"SELECT DISTINCT NULLIF(TRIM(CAST(client_id AS VARCHAR)), '') AS client_id FROM "
            f"{reader_sql(p, _header(p))}"
            for p in files
        )
        # never log this SQL: it embeds the padded key (pseudonymise.hmac_sql)
        rows = con.execute(
            f"SELECT i.client_id, w.client_key FROM (SELECT client_id, {hmac_sql(key, 'client_id')} "
            f"AS client_key FROM ({ids}) WHERE client_id IS NOT NULL) i "
            f"JOIN wanted w ON w.client_key = i.client_key ORDER BY i.client_id"
        ).fetchall()
        return [(str(a), str(b)) for a, b in rows]
    finally:
        con.close()


def _header(path: Path) -> list[str] | None:
    if path.suffix.lower() != ".csv":
        return None
    from dagster_project.defs.ingest.landing import csv_header

    return csv_header(path)


def check_key_available() -> str:
    """The key, or ConfigError (no LENDSEG_PII_KEY and not in demo mode)."""
    return pii_key()


__all__ = ["ConfigError", "QUEUE_SQL", "keys_from_sql", "reidentify"]
