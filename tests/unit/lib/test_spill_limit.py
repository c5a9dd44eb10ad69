"""The disk as a limit: DuckDB spills only where LENDSEG_DUCKDB_TEMP_DIR says and at most LENDSEG_DUCKDB_MAX_TEMP_SIZE;
a statement that needs more fails with one line naming the setting, and the build keeps what it had."""

from pathlib import Path

import pytest

from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import SpillLimitError, connect


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings(data_dir=tmp_path, landing_dir=tmp_path / "landing", warehouse_path=tmp_path / "warehouse.duckdb",
                    build_path=tmp_path / "build" / "build.duckdb", memory_limit="64MB", threads=1, **kw)


def test_spill_goes_to_the_configured_folder_with_the_configured_cap(tmp_path: Path) -> None:
    s = _settings(tmp_path, temp_path=tmp_path / "spill", max_temp_size="3GB")
    assert _settings(tmp_path).temp_dir == tmp_path / "build" / "build.duckdb.tmp"  # DuckDB's own default place
    with connect(s) as con:
        temp_dir, cap = con.execute("SELECT current_setting('temp_directory'), "
                                    "current_setting('max_temp_directory_size')").fetchone()
    assert Path(temp_dir) == tmp_path / "spill"
    assert cap.replace(" ", "").upper().startswith(("3GB", "2.7GIB", "2.7GB", "3.0GB"))


def test_a_statement_over_the_spill_cap_fails_with_one_line_and_keeps_the_build(tmp_path: Path) -> None:
    s = _settings(tmp_path, temp_path=tmp_path / "spill", max_temp_size="20MB")
    with connect(s) as con:
        con.execute("CREATE TABLE kept AS SELECT 1 AS x")
    with pytest.raises(SpillLimitError) as err:
        with connect(s) as con:
            con.execute("BEGIN")
            con.execute("CREATE TABLE big AS SELECT i, md5(i::VARCHAR) AS h FROM range(6000000) r(i) ORDER BY h")
            con.execute("COMMIT")
    message = str(err.value)
    assert "\n" not in message and "LENDSEG_DUCKDB_MAX_TEMP_SIZE=20MB" in message and str(tmp_path / "spill") in message
    with connect(s, read_only=True) as con:
        assert con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall() == [("kept",)]


def test_other_errors_pass_through_unchanged(tmp_path: Path) -> None:
    import duckdb

    with pytest.raises(duckdb.CatalogException):
        with connect(_settings(tmp_path)) as con:
            con.execute("SELECT * FROM no_such_table")
