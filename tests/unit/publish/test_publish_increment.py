"""Publishing what changed, on real small DuckDB files: an increment copies the current version and rewrites only
the changed tables (their data blocks are new, the others' are the same blocks), publishes exactly what a full
publish of the same build would, readers keep one consistent version, and a failure leaves everything as it was."""

import hashlib
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.publish import files, increment
from dagster_project.defs.publish.checks import manifest_mismatches, open_read_only, published_table_counts
from dagster_project.defs.publish.files import current_version, publish, rollback
from dagster_project.defs.publish.increment import Fingerprints, plan

TABLES = [
    "audit.data_quality_results",
    "audit.pipeline_alerts",
    "audit.quarantined_rows",
    "audit.rejected_deliveries",
    "marts.dim_client",
    "marts.fact_usage",
    "marts.segment_policy",
    "ml.model_registry",
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir with a small build (one table big enough for row groups of its own) published once, in full."""
    data = tmp_path / "data"
    (data / "build").mkdir(parents=True)
    con = duckdb.connect(str(data / "build" / "build.duckdb"))
    con.execute(
        "CREATE SCHEMA marts; CREATE SCHEMA app; CREATE SCHEMA ml; "
        "CREATE TABLE marts.dim_client AS SELECT range AS client_no, 'c' || range AS client_key FROM range(50); "
        "COMMENT ON TABLE marts.dim_client IS 'Clients.'; "
        "COMMENT ON COLUMN marts.dim_client.client_key IS 'Pseudonymous client key.'; "
        "CREATE TABLE marts.fact_usage AS SELECT range % 50 AS client_no, range * 1.5 AS amount "
        "FROM range(150000); "
        "CREATE TABLE app.segment_policy AS SELECT 1 AS segment_id; "
        "CREATE TABLE ml.model_registry AS SELECT 'm0001' AS version"
    )
    con.close()
    _publish(data, "run-1")
    return data


def _publish(data: Path, run_id: str, **kw) -> files.Version:
    return publish(
        data / "build" / "build.duckdb",
        data / "warehouse.duckdb",
        data / "published_versions",
        data / "audit",
        run_id,
        memory_limit="1GB",
        **kw,
    )


def _build(data: Path, sql: str) -> None:
    con = duckdb.connect(str(data / "build" / "build.duckdb"))
    con.execute(sql)
    con.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(path: Path, table: str) -> list[tuple]:
    """The table's rows in order; for the fact table its row count and sum of row hashes."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        if table == "marts.fact_usage":
            return con.execute(f"SELECT count(*), sum(hash(t)) FROM {table} AS t").fetchall()
        return con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


def _blocks(path: Path, table: str) -> set[int]:
    """The data blocks a table's columns are stored in."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT block_id FROM pragma_storage_info('{table}') "
                "WHERE block_id IS NOT NULL AND block_id >= 0"
            ).fetchall()
        }
    finally:
        con.close()


def _catalogue(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return (
            con.execute(
                "SELECT schema_name, table_name, column_name, data_type, comment FROM duckdb_columns() "
                "WHERE NOT internal ORDER BY ALL"
            ).fetchall()
            + con.execute("SELECT schema_name, table_name, comment FROM duckdb_tables() ORDER BY ALL").fetchall()
        )
    finally:
        con.close()


def test_an_increment_rewrites_only_the_changed_table_and_publishes_what_a_full_publish_would(
    data: Path, tmp_path: Path
) -> None:
    v1 = current_version(data / "warehouse.duckdb", data / "published_versions")
    assert v1.manifest["publish_mode"] == "full" and v1.manifest["publish_reason"] == "first publish"
    v1_sha = _sha(v1.path)
    _build(
        data,
        "INSERT INTO marts.dim_client VALUES (50, 'c50'), (51, 'c51'); "
        "UPDATE marts.dim_client SET client_key = 'changed' WHERE client_no = 7",
    )
    v2 = _publish(data, "run-2")
    m = v2.manifest
    assert (m["publish_mode"], m["base_version"], m["tables_rewritten"], m["tables_kept"]) == (
        "increment",
        "v000001",
        ["marts.dim_client"],
        len(TABLES) - 1,
    )
    assert _sha(v1.path) == v1_sha  # the old version is never written to
    assert sorted(p.name for p in (data / "published_versions").iterdir()) == [  # no WAL or copy left beside
        "v000001.duckdb",
        "v000001.json",
        "v000002.duckdb",
        "v000002.json",
    ]
    build = data / "build" / "build.duckdb"
    new = _rows(v2.path, "marts.dim_client")
    assert new == _rows(build, "marts.dim_client") and len(new) == 52 and (7, "changed") in new
    fact = "marts.fact_usage"
    assert _blocks(v2.path, fact) == _blocks(v1.path, fact) != set()  # the same blocks: not rewritten
    assert _rows(v2.path, fact) == _rows(v1.path, fact)
    # the increment holds exactly what a complete file of the same build holds: tables, rows, types, comments
    full = publish(
        build,
        tmp_path / "full" / "warehouse.duckdb",
        tmp_path / "full" / "versions",
        data / "audit",
        "run-2",
        memory_limit="1GB",
        incremental=False,
    )
    assert full.manifest["publish_mode"] == "full" and full.manifest["publish_reason"] == "increments off"
    assert _catalogue(v2.path) == _catalogue(full.path)
    assert (
        set(published_table_counts(v2.path))
        == set(published_table_counts(full.path))
        == set(TABLES) | {"audit.publish_info", "audit.publish_manifest"}
    )
    for table in TABLES:
        assert _rows(v2.path, table) == _rows(full.path, table), table
    assert full.manifest["fingerprints"] == m["fingerprints"]
    # the published-file checks hold: the manifest's row counts, the DuckDB CLI of the README opens it
    assert manifest_mismatches(published_table_counts(v2.path), m["row_counts"], set(m["row_counts"])) == {
        "missing_tables": [],
        "row_count_mismatches": [],
    }
    assert open_read_only(data / "warehouse.duckdb")[0]


def test_an_unchanged_build_rewrites_nothing_and_the_file_does_not_grow_without_bound(data: Path) -> None:
    sizes = []
    for i in range(4):
        v = _publish(data, f"run-{i + 2}")
        assert v.manifest["publish_mode"] == "increment" and v.manifest["tables_rewritten"] == []
        sizes.append(v.path.stat().st_size)
    assert max(sizes[2:]) == max(sizes[:2])  # no growth: the publish tables' freed blocks are reused
    assert _rows(data / "warehouse.duckdb", "audit.publish_info")[0][0] == "v000005"


def test_readers_see_one_consistent_version_and_never_block_a_publish(data: Path) -> None:
    wh = data / "warehouse.duckdb"
    reader = duckdb.connect(str(wh), read_only=True)
    cli = subprocess.Popen(
        [str(Path(sys.executable).parent / "duckdb"), "-readonly", "-csv", str(wh)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cli.stdin.write("SELECT count(*) AS n FROM marts.dim_client;\n")
    cli.stdin.flush()
    q = (
        "SELECT (SELECT count(*) FROM marts.dim_client), (SELECT version FROM audit.publish_info), "
        "(SELECT count(*) FROM audit.publish_manifest)"
    )
    assert reader.execute(q).fetchone() == (50, "v000001", 1)
    _build(data, "INSERT INTO marts.dim_client VALUES (50, 'c50')")
    v2 = _publish(data, "run-2")  # neither reader blocks it
    assert v2.manifest["tables_rewritten"] == ["marts.dim_client"]
    assert reader.execute(q).fetchone() == (50, "v000001", 1)  # the old version, whole
    reader.close()
    out, err = cli.communicate("SELECT count(*) AS n FROM marts.dim_client;\n.quit\n", timeout=60)
    assert err == "" and out.split() == ["n", "50", "n", "50"]
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute(q).fetchone() == (51, "v000002", 2)  # new readers: the new version, whole
    con.close()


def test_a_failed_publish_leaves_the_published_file_and_the_versions_untouched(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh, vdir = data / "warehouse.duckdb", data / "published_versions"
    before = (wh.stat().st_ino, _sha(wh), sorted(p.name for p in vdir.iterdir()))
    _build(data, "INSERT INTO marts.dim_client VALUES (50, 'c50')")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files, "_publish_tables", disk_full)  # fails the increment, then the full file
    with pytest.raises(OSError, match="No space left"):
        _publish(data, "run-2")
    assert (wh.stat().st_ino, _sha(wh), sorted(p.name for p in vdir.iterdir())) == before
    monkeypatch.undo()
    # a build that cannot be read (a view on a dropped table) fails before any file is copied
    _build(
        data,
        "CREATE TABLE marts.gone AS SELECT 1 AS x; CREATE VIEW marts.broken AS SELECT * FROM marts.gone; "
        "DROP TABLE marts.gone",
    )
    with pytest.raises(duckdb.Error, match="gone"):
        _publish(data, "run-3")
    assert (wh.stat().st_ino, _sha(wh), sorted(p.name for p in vdir.iterdir())) == before


def test_a_failed_increment_falls_back_to_a_complete_file(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = files._fill

    def fill(con, p, *args):
        if p.mode == "increment":
            raise RuntimeError("a block could not be read")
        return real(con, p, *args)

    monkeypatch.setattr(files, "_fill", fill)
    _build(data, "INSERT INTO marts.dim_client VALUES (50, 'c50')")
    v = _publish(data, "run-2")
    assert v.manifest["publish_mode"] == "full"
    assert v.manifest["publish_reason"] == "the increment failed: RuntimeError: a block could not be read"
    assert len(_rows(data / "warehouse.duckdb", "marts.dim_client")) == 51
    assert not list((data / "published_versions").glob(".*"))


def test_the_base_is_the_published_version_and_an_older_manifest_means_a_full_publish(data: Path) -> None:
    _build(data, "INSERT INTO marts.dim_client VALUES (50, 'c50')")
    _publish(data, "run-2")
    rollback(data / "warehouse.duckdb", data / "published_versions", "v000001")
    v3 = _publish(data, "run-3")  # copies v000001, the file readers see
    assert (v3.manifest["base_version"], v3.manifest["tables_rewritten"]) == ("v000001", ["marts.dim_client"])
    assert len(_rows(v3.path, "marts.dim_client")) == 51
    manifest = v3.path.with_suffix(".json")  # as published before fingerprints
    manifest.write_text(manifest.read_text().replace('"fingerprints"', '"older_key"'))
    v4 = _publish(data, "run-4")
    assert (v4.manifest["publish_mode"], v4.manifest["publish_reason"]) == ("full", "v000003 has no fingerprints")


def _fp(rows: int = 1, h: str = "1", columns: str = "a", docs: str = "d") -> dict:
    return {"rows": rows, "hash": h, "columns": columns, "docs": docs}


@pytest.mark.parametrize(
    ("new", "base_tables", "free", "mode", "reason"),
    [
        (
            {"m.a": _fp(), "m.b": _fp()},
            {"m.a": 1, "m.b": 1, "audit.publish_info": 1},
            0.1,
            "increment",
            "0 of 2 tables changed",
        ),
        ({"m.a": _fp(h="2"), "m.b": _fp(docs="e")}, {"m.a": 1, "m.b": 1}, 0.1, "increment", "2 of 2 tables changed"),
        ({"m.a": _fp()}, {"m.a": 1, "m.b": 1}, 0.1, "full", "schema change: tables added [], removed ['m.b']"),
        ({"m.a": _fp(), "m.b": _fp(columns="x")}, {"m.a": 1, "m.b": 1}, 0.1, "full", "schema change: columns of m.b"),
        (
            {"m.a": _fp(), "m.b": _fp()},
            {"m.a": 1, "m.b": 2},
            0.1,
            "full",
            "v000001 does not hold its manifest's row counts: m.b",
        ),
        (
            {"m.a": _fp(), "m.b": _fp()},
            {"m.a": 1, "m.b": 1, "m.c": 0},
            0.1,
            "full",
            "v000001 holds tables its manifest does not fingerprint: m.c",
        ),
        ({"m.a": _fp(), "m.b": _fp()}, {"m.a": 1, "m.b": 1}, 0.5, "increment", "0 of 2 tables changed"),
        ({"m.a": _fp(), "m.b": _fp()}, {"m.a": 1, "m.b": 1}, 0.6, "full", "v000001 is 60% free blocks: compacting"),
    ],
)
def test_plan(new: dict, base_tables: dict, free: float, mode: str, reason: str) -> None:
    base = Fingerprints({"m.a": _fp(), "m.b": _fp()})
    p = plan(Fingerprints(new), base, "v000001", base_tables, free, always=("audit.publish_info",))
    assert (p.mode, p.reason) == (mode, reason)
    assert p.rewrite == (tuple(sorted(new)) if mode == "full" else tuple(t for t in sorted(new) if new[t] != _fp()))
    other = Fingerprints(new, format="count+sum(hash(row)) duckdb 0.9")
    assert plan(other, base, "v000001", base_tables, free).reason.startswith("v000001 was fingerprinted by another")
    assert plan(Fingerprints(new), None, None, None).reason == "first publish"


def test_the_copy_is_byte_identical(tmp_path: Path) -> None:
    src = tmp_path / "a.bin"
    src.write_bytes(bytes(range(256)) * 5000)
    how = increment.clone_file(src, tmp_path / "b.bin")
    assert how in ("reflink", "copy") and (tmp_path / "b.bin").read_bytes() == src.read_bytes()
