"""Publishing what changed: a new version starts from a copy of the published one and rewrites only changed tables.

Every published table has a fingerprint (:func:`fingerprint`): its row count and the sum of one hash per row
(order-free, duplicates counted), a hash of its column names and types, and one of its table and column
comments. The version manifest keeps them. The next publish computes the fingerprints of the build's
tables (a read-only hash scan, no compression or write) and compares them with the current version's:

* every table the same or only some changed - an **increment**: the current version file is copied (a reflink
  where the filesystem can, else a plain copy) to the new version's temporary name, the changed tables are
  dropped and written again, publish_info / publish_manifest are rewritten, the file is checkpointed; then
  the same fsync + atomic swap as a full publish (files.py). Readers keep opening one file and the old
  version file is never written to;
* **full** (a complete new file, as before) on a first publish, when the current version's manifest has no
  fingerprints (published before them) or another DuckDB hashed them, on a schema change (tables added or
  removed, columns changed), when the copy does not hold its manifest's tables and row counts or is not in the
  published storage version, when more than half of the current version is free blocks (compacting), or on any error
  of the increment path - the full path then starts again from scratch.

The increment's base is the version readers see (after a rollback, that older one), not the newest kept.

The plan is the pure function :func:`plan`; ``files.py`` carries it out.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.tables import sql_identifier

# Fingerprints are compared only when hashed by the same DuckDB (hash() is not promised stable across releases).
FINGERPRINT_FORMAT = f"count+sum(hash(row)) duckdb {duckdb.__version__}"
# Above this share of free blocks in the current version, publish a complete (compact) file instead: a file stays
# under twice its compact size. Blocks freed by rewritten tables are reused by the next increment, so the file
# settles at its compact size plus the tables that change between publishes (measured in docs/benchmarks.md).
MAX_FREE_SHARE = 1 / 2
_FICLONE = 0x40049409  # linux/fs.h: share the source's extents (btrfs, XFS); ext4 refuses, then a plain copy


@dataclass(frozen=True)
class Plan:
    """What a publish does: ``mode`` 'increment' or 'full'; ``rewrite``: the tables written (all, when full)."""

    mode: str
    rewrite: tuple[str, ...]
    keep: tuple[str, ...] = ()
    reason: str = ""
    base: str | None = None  # the version copied (increment)

    def manifest(self) -> dict:
        return {
            "publish_mode": self.mode,
            "publish_reason": self.reason,
            "base_version": self.base,
            "tables_rewritten": list(self.rewrite),
            "tables_kept": len(self.keep),
        }


@dataclass
class Fingerprints:
    """``{published table: fingerprint}`` and the format that made them (as kept in a version manifest)."""

    tables: dict[str, dict] = field(default_factory=dict)
    format: str = FINGERPRINT_FORMAT

    def as_manifest(self) -> dict:
        return {"format": self.format, "tables": self.tables}

    @classmethod
    def of_manifest(cls, manifest: dict) -> Fingerprints | None:
        fp = manifest.get("fingerprints")
        return cls(dict(fp["tables"]), fp["format"]) if isinstance(fp, dict) and "tables" in fp else None


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def fingerprint(
    con: duckdb.DuckDBPyConnection, source_sql: str, table_comment: str | None, column_comments: dict[str, str | None]
) -> dict:
    """Row count, sum of row hashes, and digests of the columns (names, types) and of the comments of ``source_sql``.

    ``source_sql``: a relation (``build.s.t``, or a reader such as ``read_parquet(...)``); ``column_comments``:
    the comment each column will get in the published file.
    """
    cols = con.execute(f"DESCRIBE SELECT * FROM {source_sql}").fetchall()
    rows, total = con.execute(
        f"SELECT count(*), coalesce(sum(hash(_publish_row)), 0)::VARCHAR FROM {source_sql} AS _publish_row"
    ).fetchone()  # the row as a struct: every column
    return {
        "rows": int(rows),
        "hash": total,
        "columns": _digest([[c[0], c[1]] for c in cols]),
        "docs": _digest([table_comment, [[c[0], column_comments.get(c[0])] for c in cols]]),
    }


def plan(
    new: Fingerprints,
    base: Fingerprints | None,
    base_name: str | None,
    base_tables: dict[str, int] | None,
    free_share: float | None = None,
    always: tuple[str, ...] = (),
) -> Plan:
    """Increment or full, and which tables to write.

    ``new``: fingerprints of what is to be published; ``base``: those of the current version's manifest (None:
    no current version or one published before fingerprints); ``base_tables``: ``{table: row count}`` actually in
    the current version file (checked against its manifest); ``free_share``: free blocks / all blocks of that file;
    ``always``: tables written by every publish, not fingerprinted (publish_info, publish_manifest).
    """
    everything = tuple(sorted(new.tables))

    def full(reason: str) -> Plan:
        return Plan("full", everything, reason=reason)

    if base is None or base_name is None or base_tables is None:
        return full("first publish" if base_name is None else f"{base_name} has no fingerprints")
    if base.format != new.format:
        return full(f"{base_name} was fingerprinted by another DuckDB ({base.format})")
    if set(base.tables) != set(new.tables):
        added, removed = sorted(set(new.tables) - set(base.tables)), sorted(set(base.tables) - set(new.tables))
        return full(f"schema change: tables added {added}, removed {removed}")
    if changed := sorted(t for t in new.tables if new.tables[t]["columns"] != base.tables[t]["columns"]):
        return full(f"schema change: columns of {', '.join(changed)}")
    if unknown := sorted(set(base_tables) - set(base.tables) - set(always)):
        return full(f"{base_name} holds tables its manifest does not fingerprint: {', '.join(unknown)}")
    if doubt := sorted(t for t in base.tables if base_tables.get(t) != base.tables[t]["rows"]):
        return full(f"{base_name} does not hold its manifest's row counts: {', '.join(doubt)}")
    if free_share is not None and free_share > MAX_FREE_SHARE:
        return full(f"{base_name} is {free_share:.0%} free blocks: compacting")
    rewrite = tuple(t for t in everything if new.tables[t] != base.tables[t])
    keep = tuple(t for t in everything if t not in rewrite)
    return Plan(
        "increment", rewrite, keep, reason=f"{len(rewrite)} of {len(everything)} tables changed", base=base_name
    )


def clone_file(src: Path, dst: Path) -> str:
    """Copy ``src`` to a new ``dst``: a reflink (shared extents, no data copied) where the filesystem can, else a
    copy."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            return "reflink"
        except OSError:
            pass
    shutil.copyfile(src, dst)  # in-kernel on Linux (sendfile)
    return "copy"


def file_state(con: duckdb.DuckDBPyConnection, db: str) -> tuple[dict[str, int], float, str]:
    """``({schema.table: rows}, free share, storage version tag)`` of the attached database ``db``."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() WHERE database_name = ?", [db]
        ).fetchall()
    ]
    counts = {
        n: con.execute(f"SELECT count(*) FROM {db}.{'.'.join(map(sql_identifier, n.split('.', 1)))}").fetchone()[0]
        for n in names
    }
    total, free = con.execute(
        "SELECT total_blocks, free_blocks FROM pragma_database_size() WHERE database_name = ?", [db]
    ).fetchone()
    tag = con.execute(
        "SELECT tags['storage_version'] FROM duckdb_databases() WHERE database_name = ?", [db]
    ).fetchone()[0]
    return counts, (free / total if total else 0.0), tag or ""
