"""The dbt CLI resource skips dagster-dbt's ``dbt --version`` subprocess and adapter load, and says the same."""

from dagster_dbt import DbtCliResource

from dagster_project.defs.transform.assets import DBT_EXECUTABLE, DBT_PROJECT_DIR, LendsegDbtCli, dbt_resource


def test_version_is_the_executables_own() -> None:
    stock = DbtCliResource(
        project_dir=str(DBT_PROJECT_DIR), profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=DBT_EXECUTABLE
    )
    assert isinstance(dbt_resource, LendsegDbtCli)
    assert dbt_resource._cli_version == stock._cli_version  # stock: `dbt --version` in a subprocess
    assert dbt_resource._cli_version.major == 1  # dbt Core (Fusion would need the adapter-free path anyway)


def test_no_adapter_is_loaded_in_process() -> None:
    # the adapter only serves fetch_row_counts / fetch_column_metadata, which the project never calls
    assert dbt_resource._initialize_dbt_core_adapter(["build"]) is None
    from pathlib import Path

    import dagster_project

    package = Path(dagster_project.__file__).parent
    callers = [
        p
        for p in package.rglob("*.py")
        if ".fetch_row_counts(" in p.read_text() or ".fetch_column_metadata(" in p.read_text()
    ]
    assert callers == [], f"these need the dbt adapter back: {callers}"
