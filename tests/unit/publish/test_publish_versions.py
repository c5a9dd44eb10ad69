"""Published versions on a real small build database: `lendseg publish --list`, audit.publish_info,
audit.publish_manifest, the file itself and the manifest count the same tables; a refused rollback changes
nothing on disk (not even the writer lock's pid)."""

import hashlib
import os
import re
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import LENDSEG

from dagster_project.defs.publish.checks import manifest_mismatches, published_table_counts
from dagster_project.defs.publish.files import PUBLISH_TABLES, publish, tables_in, versions


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir with a tiny build database published twice (v000001, v000002 current)."""
    data = tmp_path / "data"
    (data / "build").mkdir(parents=True)
    con = duckdb.connect(str(data / "build" / "build.duckdb"))
    con.execute(
        "CREATE SCHEMA marts; CREATE SCHEMA app; CREATE SCHEMA ml; "
        "CREATE TABLE marts.dim_client AS SELECT range AS n FROM range(3); "
        "CREATE TABLE app.segment_policy AS SELECT 1 AS segment_id; "
        "CREATE TABLE ml.model_registry AS SELECT 'm0001' AS version"
    )
    con.close()
    for run in ("run-1", "run-2"):
        publish(
            data / "build" / "build.duckdb",
            data / "warehouse.duckdb",
            data / "published_versions",
            data / "audit",
            run,
            checks_passed=["a", "b"],
            memory_limit="1GB",
        )
    return data


def _lendseg(data: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LENDSEG_", "DAGSTER_HOME"))}
    env |= {"LENDSEG_DATA_DIR": str(data), "DAGSTER_HOME": str(data.parent / "home")}
    return subprocess.run([LENDSEG, *args], cwd=data.parent, env=env, capture_output=True, text=True, timeout=120)


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root``: inode, size, mtime and content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
        out[str(p.relative_to(root))] = (st.st_ino, st.st_size, st.st_mtime_ns, digest)
    return out


def test_list_publish_info_manifest_and_file_count_the_same_tables(data: Path) -> None:
    wh = data / "warehouse.duckdb"
    in_file = published_table_counts(wh)
    con = duckdb.connect(str(wh), read_only=True)
    info_tables, info_rows = con.execute("SELECT tables, total_rows FROM audit.publish_info").fetchone()
    manifest_tables = con.execute("SELECT tables FROM audit.publish_manifest ORDER BY version").fetchall()
    con.close()
    current = versions(data / "published_versions")[-1]
    listing = _lendseg(data, "publish", "--list").stdout.splitlines()
    listed = [int(re.search(r"(\d+) tables", line).group(1)) for line in listing]
    # 3 copied + 4 documented audit tables (empty) + audit.publish_info + audit.publish_manifest
    assert len(in_file) == info_tables == tables_in(current.manifest["row_counts"]) == 9
    assert listed == [9, 9] and manifest_tables == [(9,), (9,)] and listing[-1].startswith("* v000002")
    assert info_rows == sum(in_file.values()) == sum(current.manifest["row_counts"].values())
    assert set(PUBLISH_TABLES) <= set(current.manifest["row_counts"])
    # holds_manifest_tables compares the file with the manifest: publish_info and publish_manifest included
    assert manifest_mismatches(in_file, current.manifest["row_counts"], set(in_file)) == {
        "missing_tables": [],
        "row_count_mismatches": [],
    }
    # a version published before the two were in the manifest still counts them (the file held them)
    old = {t: n for t, n in current.manifest["row_counts"].items() if t not in PUBLISH_TABLES}
    assert tables_in(old) == 9


@pytest.mark.parametrize("args", [("--rollback", "v999999"), ("--rollback", "latest"), ("--rollback", "v1; rm")])
def test_a_refused_rollback_changes_nothing_on_disk(data: Path, args: tuple[str, ...]) -> None:
    lock = data / "build" / "writer.lock"
    lock.write_text("pid=4242\n")  # the last writer's pid, as a run leaves it
    before = _snapshot(data)
    proc = _lendseg(data, "publish", *args)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("rollback refused: ")
    assert _snapshot(data) == before and lock.read_text() == "pid=4242\n"


def test_no_earlier_version_and_no_versions_are_refused_without_creating_anything(data: Path, tmp_path: Path) -> None:
    assert _lendseg(data, "publish", "--rollback").returncode == 0  # v000002 -> v000001
    before = _snapshot(data)
    proc = _lendseg(data, "publish", "--rollback")  # nothing before v000001
    assert proc.returncode == 2 and proc.stderr == "rollback refused: there is no earlier version to roll back to\n"
    assert _snapshot(data) == before
    empty = tmp_path / "empty" / "data"
    empty.mkdir(parents=True)
    proc = _lendseg(empty, "publish", "--rollback", "v000001")
    assert proc.returncode == 2 and "no published versions" in proc.stderr
    assert list(empty.iterdir()) == []  # no build/ folder, no writer.lock


def test_a_rollback_by_name_swaps_the_version_in(data: Path) -> None:
    wh = data / "warehouse.duckdb"
    proc = _lendseg(data, "publish", "--rollback", "v000001")
    assert proc.returncode == 0 and proc.stdout.startswith("published warehouse is now v000001")
    assert wh.stat().st_ino == (data / "published_versions" / "v000001.duckdb").stat().st_ino
