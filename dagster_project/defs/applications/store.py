"""Where the applications write: their own schema ``app`` of the build database, published as ``marts``.

dbt owns ``marts`` in the build database; Python never writes there. Publishing maps ``app`` onto the
published ``marts`` (``defs/publish/files.PUBLISHED_SCHEMAS``), so readers keep ``marts.<table>``.
"""

import duckdb

from dagster_project.lib.tables import replace_table

APP_SCHEMA = "app"


def write_app_table(
    con: duckdb.DuckDBPyConnection, name: str, select_sql: str, description: str, columns: dict[str, str]
) -> int:
    """CREATE OR REPLACE ``app.<name>`` (every column described); returns its row count.

    Installations of release 2749259 and earlier kept the application tables in ``marts``: that copy is
    dropped in the same transaction, so it can never be published beside (or instead of) this one.
    """
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {APP_SCHEMA}")
    con.execute(f"DROP TABLE IF EXISTS marts.{name}")
    return replace_table(con, f"{APP_SCHEMA}.{name}", select_sql, description, columns)
