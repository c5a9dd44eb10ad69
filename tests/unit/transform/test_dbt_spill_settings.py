"""dbt's DuckDB connection spills where LENDSEG_DUCKDB_TEMP_DIR says, capped by LENDSEG_DUCKDB_MAX_TEMP_SIZE, and sets
both once, at connect time: dbt-duckdb SETs its profile's `settings` again on every new cursor, and DuckDB refuses to
switch the temp directory once it has spilled - a 1 M-client run failed that way in dbt's first step."""

from pathlib import Path

import duckdb
import pytest
import yaml

from dagster_project.lib.settings import DBT_PROJECT_DIR


def _duckdb_output() -> dict:
    return yaml.safe_load((DBT_PROJECT_DIR / "profiles.yml").read_text())["lendseg"]["outputs"]["duckdb"]


def test_spill_place_and_cap_are_connect_time_options_not_per_cursor_settings() -> None:
    out = _duckdb_output()
    assert "temp_directory" not in out.get("settings", {}) and "max_temp_directory_size" not in out.get("settings", {})
    assert "LENDSEG_DUCKDB_TEMP_DIR" in out["config_options"]["temp_directory"]
    assert "LENDSEG_DUCKDB_MAX_TEMP_SIZE" in out["config_options"]["max_temp_directory_size"]


def test_why_duckdb_refuses_a_per_cursor_temp_directory_after_a_spill(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    con = duckdb.connect(
        str(tmp_path / "b.duckdb"),
        config={"temp_directory": str(spill), "memory_limit": "40MB", "threads": 1, "max_temp_directory_size": "2GB"},
    )
    con.execute("CREATE TABLE t AS SELECT i, md5(i::VARCHAR) AS h FROM range(3000000) r(i) ORDER BY h")
    cursor = con.cursor()  # what dbt-duckdb does for every node
    cursor.execute("SET memory_limit = '40MB'")  # a per-cursor setting is fine
    with pytest.raises(duckdb.Error, match="temporary directory"):
        cursor.execute(f"SET temp_directory = '{spill}'")  # this is what broke dbt at 1 M clients
