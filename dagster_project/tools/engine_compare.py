"""Compare what two engines built from the same deliveries: every relation, key by key and value by value.

The DuckDB build and the Spark build (mirrored into a DuckDB file by the dbt step, defs/transform/lake.py)
are ATTACHed side by side; two relations are equal when they have the same columns and the same rows as
multisets after numbers are taken to 9 significant digits (exact decimals and doubles alike: Spark and
DuckDB may add doubles in another order) and integers of different widths are compared as numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

SIGNIFICANT_DIGITS = 9
NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)
# Build bookkeeping each engine computes with its own hash function (macro fingerprint): not data, not compared.
ENGINE_OWN_COLUMNS = frozenset({"month_fingerprint"})


@dataclass(frozen=True)
class Difference:
    relation: str
    problem: str  # missing / columns / rows
    detail: str


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, name: str) -> dict[str, str]:
    return dict(
        con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = ? AND "
            "schema_name = ? AND table_name = ? ORDER BY column_index",
            [catalog, schema, name],
        ).fetchall()
    )


def normalised(column: str, data_type: str, digits: int = SIGNIFICANT_DIGITS) -> str:
    """SQL of ``column`` as compared: numbers rounded to ``digits`` significant digits, the rest as is."""
    q = f'"{column}"'
    if data_type.startswith(NUMERIC):
        v = f"{q}::DOUBLE"
        return (
            f"CASE WHEN {v} IS NULL OR {v} = 0 OR isnan({v}) OR isinf({v}) THEN {v} "
            f"ELSE round({v}, {digits - 1} - floor(log10(abs({v})))::INTEGER) END AS {q}"
        )
    return q


def compare_relation(
    con: duckdb.DuckDBPyConnection, left: str, right: str, schema: str, name: str, sample: int = 3
) -> list[Difference]:
    """Differences of ``schema.name`` between the ATTACHed catalogs ``left`` and ``right`` (empty: equal)."""
    rel = f"{schema}.{name}"
    lc, rc = _columns(con, left, schema, name), _columns(con, right, schema, name)
    if not lc or not rc:
        return [Difference(rel, "missing", f"only in {left if lc else right}")]
    if set(lc) != set(rc):
        return [
            Difference(
                rel,
                "columns",
                f"only in {left}: {sorted(set(lc) - set(rc))}; only in {right}: {sorted(set(rc) - set(lc))}",
            )
        ]
    cols = [c for c in lc if c not in ENGINE_OWN_COLUMNS]
    # a column numeric on one side only (e.g. a decimal vs a string) is compared as text
    sel = {
        side: ", ".join(
            normalised(c, types[c])
            if lc[c].startswith(NUMERIC) == rc[c].startswith(NUMERIC)
            else f'"{c}"::VARCHAR AS "{c}"'
            for c in cols
        )
        for side, types in ((left, lc), (right, rc))
    }
    out = []
    for a, b in ((left, right), (right, left)):
        sql = f"SELECT * FROM (SELECT {sel[a]} FROM {a}.{rel} EXCEPT ALL SELECT {sel[b]} FROM {b}.{rel})"
        n = con.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        if n:
            rows = con.execute(f"{sql} LIMIT {sample}").fetchall()
            out.append(Difference(rel, "rows", f"{n} rows only in {a}, e.g. {rows}"))
    return out


def compare_builds(
    con: duckdb.DuckDBPyConnection, left: str, right: str, relations: list[tuple[str, str]]
) -> list[Difference]:
    """Every difference over ``relations`` [(schema, name)] between two ATTACHed builds."""
    return [d for schema, name in relations for d in compare_relation(con, left, right, schema, name)]
