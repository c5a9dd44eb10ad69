"""The published-file check opens_read_only runs the DuckDB CLI the README names (.venv/bin/duckdb, package
duckdb-cli) on a real file written like a published version, and fails - with a clear message - when that CLI is
missing or the file does not open."""

import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.defs.publish.checks import duckdb_cli, open_read_only, opens_read_only
from dagster_project.defs.publish.files import STORAGE_VERSION
from dagster_project.lib.resources import Warehouse


@pytest.fixture
def published_file(tmp_path: Path) -> Path:
    """A small DuckDB file in the published storage version (what the DuckDB CLI 1.5 must read)."""
    path = tmp_path / "data" / "warehouse.duckdb"
    path.parent.mkdir()
    con = duckdb.connect()
    con.execute(f"ATTACH '{path}' AS pub (STORAGE_VERSION '{STORAGE_VERSION}')")
    con.execute(
        "CREATE SCHEMA pub.marts; CREATE TABLE pub.marts.dim_client AS SELECT 'k' AS client_key, NULL::INT AS n"
    )
    con.execute("DETACH pub")
    con.close()
    return path


def _warehouse(path: Path) -> Warehouse:
    data = path.parent
    return Warehouse(
        data_dir=str(data),
        landing_dir=str(data / "landing"),
        warehouse_path=str(path),
        build_path=str(data / "build" / "build.duckdb"),
        memory_limit="1GB",
        threads=1,
    )


def test_the_cli_is_the_one_beside_this_python_and_is_installed() -> None:
    assert duckdb_cli() == Path(sys.executable).parent / "duckdb"
    assert duckdb_cli().exists(), "duckdb-cli is a main dependency: pip install -c requirements.lock -e ."


def test_a_published_file_opens_read_only_in_the_cli(published_file: Path) -> None:
    ok, meta = open_read_only(published_file)
    assert ok and meta == {"client": str(duckdb_cli()), "tables": 1}
    result = opens_read_only(_warehouse(published_file))
    assert isinstance(result, dg.AssetCheckResult) and result.passed


def test_a_missing_cli_fails_the_check_with_a_clear_message(
    published_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok, meta = open_read_only(published_file, cli=tmp_path / "nowhere" / "duckdb")
    assert not ok and "DuckDB CLI is not installed" in meta["problem"] and "duckdb-cli==1.5.6" in meta["problem"]
    # the check itself, in a Python whose bin folder has no duckdb (as with a venv made without duckdb-cli)
    bare = tmp_path / "bare" / "bin"
    bare.mkdir(parents=True)
    monkeypatch.setattr(sys, "executable", str(bare / "python"))
    result = opens_read_only(_warehouse(published_file))
    assert not result.passed and "DuckDB CLI is not installed at" in result.description


def test_a_file_that_does_not_open_fails(tmp_path: Path) -> None:
    broken = tmp_path / "warehouse.duckdb"
    broken.write_bytes(b"not a duckdb file" * 100)
    ok, meta = open_read_only(broken)
    assert not ok and meta["tables"] == -1 and meta["problem"]
    ok, meta = open_read_only(tmp_path / "absent.duckdb")
    assert not ok and not (tmp_path / "absent.duckdb").exists()  # read-only: nothing created
