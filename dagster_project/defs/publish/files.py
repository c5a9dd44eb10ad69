"""Publishing: copy the reader-facing schemas of a fully checked build to a new file, then swap it in.

Readers only ever open ``$LENDSEG_WAREHOUSE_PATH``. A publish writes a complete new version file
``published_versions/vNNNNNN.duckdb`` (DuckDB storage version v1.5.0, so DuckDB 1.5 clients such as the
``duckdb-cli`` package read it) with a JSON manifest - from scratch, or as a copy of the current version with only
the tables whose fingerprint changed rewritten (increment.py) - flushes it to disk, and swaps it in by hard-linking
it to a temporary name beside the warehouse and ``os.replace``-ing that over the old file. A reader that
has the old file open keeps reading it undisturbed, new readers see the new one, and nobody ever sees a
half-written file. The current version is simply the version file that shares the warehouse's inode.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from dagster_project.defs.publish.catalog import (
    AUDIT_TABLES,
    PUBLISH_INFO,
    PUBLISH_MANIFEST,
    TABLE_DOCS,
    column_comment,
    empty_table_sql,
)
from dagster_project.defs.publish.increment import Fingerprints, Plan, clone_file, file_state, fingerprint, plan
from dagster_project.lib import audit
from dagster_project.lib.tables import sql_identifier, sql_literal

# published schema -> the build schemas copied into it. One writer per build schema: dbt writes marts, the
# applications write app (defs/applications/store.py), the segmentation model writes ml.
PUBLISHED_SCHEMAS: dict[str, tuple[str, ...]] = {"marts": ("marts", "app"), "ml": ("ml",)}


def published_name(build_schema: str) -> str:
    """The published schema a build schema is copied into (itself when it is not mapped)."""
    return next((pub for pub, builds in PUBLISHED_SCHEMAS.items() if build_schema in builds), build_schema)


STORAGE_VERSION = "v1.5.0"
# Written last, about the file itself; in the manifest's row counts like every other table (before issue 24
# they were left out, so `publish --list` said 33 tables where audit.publish_info said 35).
PUBLISH_TABLES = ("audit.publish_info", "audit.publish_manifest")


def tables_in(row_counts: dict[str, int]) -> int:
    """Tables in a published file, from its manifest's row counts (an older manifest lacks PUBLISH_TABLES)."""
    return len(set(row_counts) | set(PUBLISH_TABLES))


def _build_comments(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """``{schema.table: {column: comment}}`` of every commented column of the build, by published name."""
    out: dict[str, dict[str, str]] = {}
    for schema, table, col, comment in con.execute(
        "SELECT schema_name, table_name, column_name, comment FROM duckdb_columns() WHERE database_name = 'build' "
        "AND comment IS NOT NULL AND comment <> ''"
    ).fetchall():
        out.setdefault(f"{published_name(schema)}.{table}", {})[col] = comment
    return out


@dataclass(frozen=True)
class Source:
    """One published table: the relation it is copied from and the comments it gets."""

    sql: str
    comment: str | None
    own: dict[str, str]  # column comments of the source itself (the build's), before column_comment's fallbacks


def _schema_sources(
    con: duckdb.DuckDBPyConnection, schema: str, build_schemas: tuple[str, ...], comments: dict[str, dict[str, str]]
) -> dict[str, Source]:
    """Every table and view of ``build_schemas``, by published name; a name in two of them is refused."""
    rels = con.execute(
        "SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE database_name = 'build' AND "
        "schema_name IN ? "
        "UNION ALL SELECT schema_name, view_name, comment FROM duckdb_views() WHERE database_name = 'build' "
        "AND schema_name IN ? ORDER BY 2",
        [list(build_schemas), list(build_schemas)],
    ).fetchall()
    names = [name for _, name, _ in rels]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise RuntimeError(
            f"not publishing: {', '.join(twice)} in more than one of the build schemas "
            f"{', '.join(build_schemas)} published as {schema}"
        )
    return {
        f"{schema}.{name}": Source(
            f"build.{sql_identifier(build_schema)}.{sql_identifier(name)}",
            comment or None,
            comments.get(f"{schema}.{name}", {}),
        )
        for build_schema, name, comment in rels
    }


def _audit_sources(audit_dir: Path) -> dict[str, Source]:
    """Every audit table of the store, and every documented one (empty when the store has no file yet)."""
    readers = audit.tables(audit_dir)
    out = {}
    for table in sorted(set(readers) | set(AUDIT_TABLES)):
        sql = readers.get(table) or (
            "(SELECT "
            + ", ".join(f"NULL::{t} AS {sql_identifier(c)}" for c, t, _ in AUDIT_TABLES[table][1])
            + " WHERE false)"
        )
        out[f"audit.{table}"] = Source(sql, TABLE_DOCS.get(f"audit.{table}"), {})
    return out


def sources(
    con: duckdb.DuckDBPyConnection,
    audit_dir: Path,
    schemas: dict[str, tuple[str, ...]],
    comments: dict[str, dict[str, str]],
) -> dict[str, Source]:
    """``{published table: Source}`` of everything a publish copies, in publishing order (build attached as
    ``build``)."""
    out: dict[str, Source] = {}
    for schema, build_schemas in schemas.items():
        out |= _schema_sources(con, schema, build_schemas, comments)
    return out | _audit_sources(audit_dir)


def _column_comments(
    con: duckdb.DuckDBPyConnection, table: str, src: Source, comments: dict[str, dict[str, str]]
) -> dict[str, str | None]:
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src.sql}").fetchall()]
    return {c: column_comment(table, c, src.own.get(c), comments) for c in cols}


def _write_table(con: duckdb.DuckDBPyConnection, table: str, src: Source, col_comments: dict[str, str | None]) -> None:
    """(Re)write ``pub.<table>`` from its source, with its table and column comments."""
    schema, name = table.split(".", 1)
    dst = f"pub.{sql_identifier(schema)}.{sql_identifier(name)}"
    con.execute(f"CREATE SCHEMA IF NOT EXISTS pub.{sql_identifier(schema)}")
    con.execute(f"DROP TABLE IF EXISTS {dst}")
    con.execute(f"CREATE TABLE {dst} AS SELECT * FROM {src.sql}")
    if src.comment:
        con.execute(f"COMMENT ON TABLE {dst} IS {sql_literal(src.comment)}")
    for col, text in col_comments.items():
        if text:
            con.execute(f"COMMENT ON COLUMN {dst}.{sql_identifier(col)} IS {sql_literal(text)}")


def _comment_columns(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> None:
    dst = f"pub.{sql_identifier(schema)}.{sql_identifier(name)}"
    for (col,) in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE database_name = 'pub' AND schema_name = ? AND table_name = ?",
        [schema, name],
    ).fetchall():
        if text := column_comment(f"{schema}.{name}", col, None, {}):
            con.execute(f"COMMENT ON COLUMN {dst}.{sql_identifier(col)} IS {sql_literal(text)}")


def _publish_tables(
    con: duckdb.DuckDBPyConnection, history: list[dict], manifest: dict, counts: dict[str, int]
) -> None:
    """audit.publish_manifest (every kept version) and audit.publish_info (this file, one row)."""
    con.execute("DROP TABLE IF EXISTS pub.audit.publish_manifest")
    con.execute("DROP TABLE IF EXISTS pub.audit.publish_info")
    con.execute(empty_table_sql("pub.audit.publish_manifest", PUBLISH_MANIFEST[1]))
    con.executemany(
        "INSERT INTO pub.audit.publish_manifest VALUES (?, ?, ?, ?, ?, ?)",
        [
            [
                h["version"],
                h["run_id"],
                h["published_at"],
                tables_in(h["row_counts"]),
                json.dumps(h["row_counts"]),
                len(h.get("checks_passed", [])),
            ]
            for h in history
        ],
    )
    con.execute(empty_table_sql("pub.audit.publish_info", PUBLISH_INFO[1]))
    con.execute(
        "INSERT INTO pub.audit.publish_info VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            manifest["version"],
            manifest["run_id"],
            datetime.fromisoformat(manifest["published_at"]).astimezone(UTC).replace(tzinfo=None),
            manifest["storage_version"],
            tables_in(counts),
            sum(counts.values()),
            len(manifest.get("checks_passed", [])),
            len(manifest.get("checks_warned", [])),
            json.dumps(counts),
        ],
    )
    for table in ("publish_manifest", "publish_info"):
        con.execute(f"COMMENT ON TABLE pub.audit.{table} IS {sql_literal(TABLE_DOCS[f'audit.{table}'])}")
        _comment_columns(con, "audit", table)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Version:
    number: int
    path: Path
    manifest: dict

    @property
    def name(self) -> str:
        return f"v{self.number:06d}"


def versions(versions_dir: Path) -> list[Version]:
    """Published versions still kept, oldest first."""
    out = []
    for m in sorted(versions_dir.glob("v*.json")) if versions_dir.exists() else []:
        db = m.with_suffix(".duckdb")
        if db.exists():
            out.append(Version(int(m.stem[1:]), db, json.loads(m.read_text())))
    return out


def current_version(warehouse_path: Path, versions_dir: Path) -> Version | None:
    """The version whose file is the published warehouse (same inode), if any."""
    if not warehouse_path.exists():
        return None
    ino = warehouse_path.stat().st_ino
    return next((v for v in versions(versions_dir) if v.path.stat().st_ino == ino), None)


def swap_in(version_file: Path, warehouse_path: Path) -> None:
    """Atomically make ``warehouse_path`` the content of ``version_file`` (hard link, copy across devices)."""
    tmp = warehouse_path.with_name(f".{warehouse_path.name}.swap")
    tmp.unlink(missing_ok=True)
    try:
        os.link(version_file, tmp)
    except OSError:
        shutil.copy2(version_file, tmp)
        _fsync(tmp)
    os.replace(tmp, warehouse_path)
    _fsync(warehouse_path.parent)


def _attach_copy(con: duckdb.DuckDBPyConnection, base: Version | None, tmp: Path, new: Fingerprints) -> Plan:
    """Plan the publish; for an increment, ``tmp`` is a copy of ``base`` (the current version) attached as ``pub``."""
    old = Fingerprints.of_manifest(base.manifest) if base else None
    if base is None or old is None:
        return plan(new, None, base.name if base else None, None)
    con.execute(f"ATTACH {sql_literal(str(base.path))} AS base (READ_ONLY)")  # readers may hold it open: fine
    try:
        counts, free, tag = file_state(con, "base")
    finally:
        con.execute("DETACH base")
    if not tag.startswith(STORAGE_VERSION):
        return Plan("full", tuple(sorted(new.tables)), reason=f"{base.name} has storage version {tag!r}")
    p = plan(new, old, base.name, counts, free, always=PUBLISH_TABLES)
    if p.mode == "increment":
        clone_file(base.path, tmp)
        con.execute(f"ATTACH {sql_literal(str(tmp))} AS pub (STORAGE_VERSION '{STORAGE_VERSION}')")
    return p


def _fill(
    con: duckdb.DuckDBPyConnection,
    p: Plan,
    srcs: dict[str, Source],
    docs: dict[str, dict[str, str | None]],
    new: Fingerprints,
    manifest: dict,
    versions_dir: Path,
) -> dict[str, int]:
    """Write the plan's tables and the two publish tables into ``pub``, checkpoint and detach it; the row counts."""
    for table in p.rewrite:
        _write_table(con, table, srcs[table], docs[table])
        schema, name = table.split(".", 1)
        n = con.execute(f"SELECT count(*) FROM pub.{sql_identifier(schema)}.{sql_identifier(name)}").fetchone()[0]
        if n != new.tables[table]["rows"]:
            raise RuntimeError(
                f"not publishing: {table} changed while it was published ({new.tables[table]['rows']} "
                f"rows fingerprinted, {n} written)"
            )
    counts = {t: new.tables[t]["rows"] for t in srcs}
    kept = [v.manifest for v in versions(versions_dir)]
    counts |= {"audit.publish_info": 1, "audit.publish_manifest": len(kept) + 1}  # PUBLISH_TABLES, written next
    manifest |= p.manifest() | {"fingerprints": new.as_manifest()}
    _publish_tables(con, kept + [manifest | {"row_counts": counts}], manifest, counts)
    con.execute("CHECKPOINT pub")
    con.execute("DETACH pub")
    return counts


def _write_version(
    build_path: Path,
    audit_dir: Path,
    tmp: Path,
    manifest: dict,
    schemas: dict[str, tuple[str, ...]],
    memory_limit: str,
    base: Version | None,
    incremental: bool,
) -> dict[str, int]:
    """Write the new version to ``tmp``: an increment from a copy of ``base`` when plan() allows, else a full file.

    Fills ``manifest`` with the plan (publish_mode, tables_rewritten, ...), the fingerprints and publish_seconds
    (fingerprint: the build's hash scan; plan: reading the current version and copying it; write).
    """
    con = duckdb.connect(config={"memory_limit": memory_limit})
    clock, seconds = time.perf_counter(), {}

    def lap(name: str) -> None:
        nonlocal clock
        seconds[name] = round(time.perf_counter() - clock, 2)
        clock = time.perf_counter()

    try:
        con.execute(f"ATTACH {sql_literal(str(build_path))} AS build (READ_ONLY)")
        comments = _build_comments(con)
        srcs = sources(con, audit_dir, schemas, comments)
        docs = {t: _column_comments(con, t, src, comments) for t, src in srcs.items()}
        new = Fingerprints({t: fingerprint(con, src.sql, src.comment, docs[t]) for t, src in srcs.items()})
        lap("fingerprint")
        p = Plan("full", tuple(sorted(new.tables)), reason="increments off")
        counts = None
        if incremental:
            try:
                p = _attach_copy(con, base, tmp, new)
                lap("plan")
                if p.mode == "increment":
                    counts = _fill(con, p, srcs, docs, new, manifest, tmp.parent)
            except Exception as e:  # any doubt: a complete file from scratch
                if con.execute("SELECT count(*) FROM duckdb_databases() WHERE database_name = 'pub'").fetchone()[0]:
                    con.execute("DETACH pub")
                tmp.unlink(missing_ok=True)
                p = Plan(
                    "full", tuple(sorted(new.tables)), reason=f"the increment failed: {type(e).__name__}: {e}"[:500]
                )
        if counts is None:
            con.execute(f"ATTACH {sql_literal(str(tmp))} AS pub (STORAGE_VERSION '{STORAGE_VERSION}')")
            counts = _fill(con, p, srcs, docs, new, manifest, tmp.parent)
        lap("write")
        manifest["publish_seconds"] = seconds
        return counts
    finally:
        con.close()


def publish(
    build_path: Path,
    warehouse_path: Path,
    versions_dir: Path,
    audit_dir: Path,
    run_id: str,
    checks_passed: list[str] | None = None,
    keep: int = 5,
    checks_warned: list[str] | None = None,
    schemas: dict[str, tuple[str, ...]] = PUBLISHED_SCHEMAS,
    memory_limit: str = "4GB",
    incremental: bool = True,
) -> Version:
    """Write a new version from the build database and the audit store, swap it in, prune old versions.

    ``incremental``: start from a copy of the current version and rewrite only the tables that changed
    (increment.py says when it publishes a complete file instead). On any error before the swap the published
    file is left exactly as it was.
    """
    versions_dir.mkdir(parents=True, exist_ok=True)
    kept = versions(versions_dir)
    number = (kept[-1].number + 1) if kept else 1
    final = versions_dir / f"v{number:06d}.duckdb"
    tmp = versions_dir / f".{final.name}.writing"
    for stale in versions_dir.glob(".*.writing*"):
        stale.unlink()
    manifest = {
        "version": f"v{number:06d}",
        "run_id": run_id,
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "storage_version": STORAGE_VERSION,
        "checks_passed": sorted(checks_passed or []),
        "checks_warned": sorted(checks_warned or []),
    }
    base = current_version(warehouse_path, versions_dir)
    try:
        manifest["row_counts"] = _write_version(
            build_path, audit_dir, tmp, manifest, schemas, memory_limit, base, incremental
        )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(tmp)
    os.replace(tmp, final)
    mtmp = final.with_suffix(".json.tmp")
    mtmp.write_text(json.dumps(manifest, indent=2))
    os.replace(mtmp, final.with_suffix(".json"))
    swap_in(final, warehouse_path)
    for old in versions(versions_dir)[:-keep] if keep > 0 else []:
        old.path.unlink(missing_ok=True)
        old.path.with_suffix(".json").unlink(missing_ok=True)
    return Version(number, final, manifest)


def rollback_target(warehouse_path: Path, versions_dir: Path, version: str | None = None) -> Version:
    """The kept version a rollback would publish (default: the one before the current); ValueError if none.

    Reads only: ``lendseg publish --rollback`` asks it before taking the writer lock, so a refused rollback
    changes nothing on disk.
    """
    if version is not None and not re.fullmatch(r"v?\d{1,9}", version):
        raise ValueError(f"'{version}' is not a version name (vNNNNNN, as `lendseg publish --list` shows)")
    kept = versions(versions_dir)
    if not kept:
        raise ValueError(f"no published versions in {versions_dir}")
    if version is None:
        cur = current_version(warehouse_path, versions_dir)
        older = [v for v in kept if cur is None or v.number < cur.number]
        if not older:
            raise ValueError("there is no earlier version to roll back to")
        return older[-1]
    wanted = int(version.lstrip("v"))
    target = next((v for v in kept if v.number == wanted), None)
    if target is None:
        raise ValueError(f"version {version} is not kept; kept: {', '.join(v.name for v in kept)}")
    return target


def rollback(warehouse_path: Path, versions_dir: Path, version: str | None = None) -> Version:
    """Make an earlier kept version the published file again (default: the one before the current)."""
    target = rollback_target(warehouse_path, versions_dir, version)
    swap_in(target.path, warehouse_path)
    return target
