"""The disk as a limit: DuckDB spills only where LENDSEG_DUCKDB_TEMP_DIR says and at most LENDSEG_DUCKDB_MAX_TEMP_SIZE;
a statement that needs more fails with one line naming the setting, and the build keeps what it had."""

from pathlib import Path

import pytest

from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import SpillLimitError, connect


def _settings(tmp_path: Path, **kw) -> Settings:
    return Settings(
        data_dir=tmp_path,
        landing_dir=tmp_path / "landing",
        warehouse_path=tmp_path / "warehouse.duckdb",
        build_path=tmp_path / "build" / "build.duckdb",
        memory_limit="64MB",
        threads=1,
        **kw,
    )


def test_spill_goes_to_the_configured_folder_with_the_configured_cap(tmp_path: Path) -> None:
    s = _settings(tmp_path, temp_path=tmp_path / "spill", max_temp_size="3GB")
    assert _settings(tmp_path).temp_dir == tmp_path / "build" / "build.duckdb.tmp"  # DuckDB's own default place
    with connect(s) as con:
        temp_dir, cap = con.execute(
            "SELECT current_setting('temp_directory'), current_setting('max_temp_directory_size')"
        ).fetchone()
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


def _duckdb_spill_error(tmp_path: Path) -> str:
    """DuckDB's own text for a statement over its spill cap."""
    import duckdb

    con = duckdb.connect(
        str(tmp_path / "spilled.duckdb"),
        config={
            "memory_limit": "64MB",
            "threads": 1,
            "temp_directory": str(tmp_path / "spilled"),
            "max_temp_directory_size": "20MB",
        },
    )
    with pytest.raises(duckdb.Error) as err:
        con.execute("CREATE TABLE big AS SELECT i, md5(i::VARCHAR) AS h FROM range(6000000) r(i) ORDER BY h")
    con.close()
    return str(err.value)


def test_a_dbt_model_over_the_spill_cap_fails_in_one_line_naming_it_and_the_setting(tmp_path: Path) -> None:
    from dagster_project.lib.warehouse import dbt_spill_message

    s = _settings(tmp_path, temp_path=tmp_path / "spill", max_temp_size="20GB")
    error = _duckdb_spill_error(tmp_path)
    assert "\n" in error  # DuckDB's text runs over several lines
    run_results = {
        "results": [  # the shape of dbt's run_results.json
            {"unique_id": "model.lendseg.int_as_of_date_derived", "status": "success", "message": "OK"},
            {
                "unique_id": "model.lendseg.int_accounts_latest_selected",
                "status": "error",
                "failures": None,
                "message": "Runtime Error in model int_accounts_latest_selected "
                f"(models/intermediate/int_accounts_latest_selected.sql)\n  {error}",
            },
            {
                "unique_id": "test.lendseg.not_null_int_accounts_latest_selected_client_key.5c1d",
                "status": "skipped",
                "message": None,
            },
        ]
    }
    message = dbt_spill_message(s, run_results)
    assert message is not None and "\n" not in message
    assert message.startswith("dbt model int_accounts_latest_selected: ")
    assert "LENDSEG_DUCKDB_MAX_TEMP_SIZE=20GB" in message and str(tmp_path / "spill") in message


def test_other_dbt_failures_are_not_called_a_spill(tmp_path: Path) -> None:
    from dagster_project.lib.warehouse import dbt_spill_message

    run_results = {
        "results": [
            {
                "unique_id": "model.lendseg.int_clients_rated",
                "status": "error",
                "message": 'Binder Error: Referenced column "x" not found',
            },
            {
                "unique_id": "test.lendseg.unique_dim_client_client_key.9f",
                "status": "fail",
                "failures": 3,
                "message": "Got 3 results, configured to fail if != 0",
            },
        ]
    }
    assert dbt_spill_message(_settings(tmp_path), run_results) is None
