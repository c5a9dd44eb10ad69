"""Tables with their descriptions in the build database: the one writer of COMMENTs, and catalogue look-ups."""

import duckdb


def exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    """A table or view ``schema.name`` exists."""
    return (
        con.execute(
            "SELECT count(*) FROM (SELECT table_name AS n, schema_name AS s FROM duckdb_tables() UNION ALL "
            "SELECT view_name, schema_name FROM duckdb_views()) WHERE s = ? AND n = ?",
            [schema, name],
        ).fetchall()[0][0]
        > 0
    )


def table_columns(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?", [schema, name]
        ).fetchall()
    }


def sql_literal(s: str) -> str:
    """``s`` as a SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def write_comments(
    con: duckdb.DuckDBPyConnection, table: str, description: str, columns: dict[str, str], every_column: bool = True
) -> None:
    """COMMENT ON ``table`` (``schema.name``) and on each described column it has.

    ``every_column``: every column of the table must be described (a ValueError names the others).
    """
    schema, name = table.split(".")
    present = table_columns(con, schema, name)
    missing = sorted(present - set(columns))
    if every_column and missing:
        raise ValueError(f"{table}: undocumented columns {missing}")
    if description:
        con.execute(f"COMMENT ON TABLE {table} IS {sql_literal(description)}")
    for col, text in columns.items():
        if col in present:
            con.execute(f'COMMENT ON COLUMN {table}."{col}" IS {sql_literal(text)}')


def replace_table(
    con: duckdb.DuckDBPyConnection, table: str, select_sql: str, description: str, columns: dict[str, str]
) -> int:
    """CREATE OR REPLACE ``table`` from ``select_sql``, every column described; returns its row count."""
    con.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}")
    write_comments(con, table, description, columns)
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
