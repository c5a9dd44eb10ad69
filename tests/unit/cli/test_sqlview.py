"""`lendseg sql`: NULL and every DuckDB type print, wide tables stay readable, several statements each show their
result, csv stays raw, and a closed pipe (`| head`) ends quietly. Small in-memory DuckDB data; the real CLI only
for the pipe."""

import io
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from conftest import LENDSEG

from dagster_project.sqlview import (
    ELLIPSIS,
    MAX_CELL,
    NULL_TEXT,
    display_width,
    fetch,
    format_number,
    render,
    render_records,
    render_table,
    run_statements,
)

EVERY_TYPE = """
SELECT 1::TINYINT AS tiny, 2::SMALLINT AS small, 3::INTEGER AS int, 1766::BIGINT AS big,
       170141183460469231731687303715884105727::HUGEINT AS huge, 42::UBIGINT AS ubig,
       344750809.45::DECIMAL(18, 2) AS amount, 0.000123::DECIMAL(18, 6) AS pd, 0.25::FLOAT AS real, 0.21345::DOUBLE
           AS dbl,
       true AS flag, DATE '2026-11-30' AS day, TIMESTAMP '2026-11-29 10:24:17' AS ts, 'infinity'::TIMESTAMP AS ts_inf,
       TIMESTAMPTZ '2026-11-29 10:24:17+00' AS tstz, TIME '10:24:17' AS t, INTERVAL 1 MONTH AS iv,
       [1, 2, NULL] AS list, {'a': 'x', 'b': NULL} AS struct, MAP {'k': 1} AS map, '\\xAA\\x00'::BLOB AS blob,
       '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS uuid, 'x'::ENUM ('x', 'y') AS enum, [1, 2]::INTEGER[2] AS arr,
       '101'::BIT AS bit, 'a' || chr(10) || 'b' AS multiline, '新客户' AS cjk, 'nan'::DOUBLE AS nan,
       'inf'::DOUBLE AS inf
"""


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    return c


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.448e8, "344,800,000"),
        (465.0, "465"),
        (465, "465"),
        (1234.5678, "1,234.57"),
        (12.3456, "12.35"),
        (0.21345, "0.2135"),
        (None, NULL_TEXT),
        (float("nan"), "NaN"),
        (float("-inf"), "-inf"),
        (-2.5, "-2.50"),
        (True, "true"),
        (2**127 - 1, "170,141,183,460,469,231,731,687,303,715,884,105,727"),
        (Decimal("4920000.000000"), "4,920,000"),
        (Decimal("344750809.455"), "344,750,809.46"),
        (Decimal("0.000123"), "0.000123"),
        (Decimal("-12.345"), "-12.35"),
        (Decimal("0"), "0"),
    ],
)
def test_numbers_read_like_an_analyst_writes_them(value, text) -> None:
    assert format_number(value) == text


def test_null_in_an_integer_column_prints_null_not_a_traceback(con) -> None:
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 'a'), (NULL, NULL)) v(n, s)")
    lines = render_table(fetch(con, "SELECT * FROM t ORDER BY n NULLS LAST"))
    assert lines == ["|    n | s    |", "|-----:|:-----|", "|    1 | a    |", "| NULL | NULL |"]


def test_every_duckdb_type_and_its_null_renders(con) -> None:
    result = fetch(con, EVERY_TYPE)
    cells = dict(zip(result.columns, result.cells()[0], strict=False))
    assert cells["huge"] == "170,141,183,460,469,231,731,687,303,715,884,105,727" and cells["big"] == "1,766"
    assert cells["amount"] == "344,750,809.45" and cells["pd"] == "0.000123" and cells["real"] == "0.25"
    assert cells["flag"] == "true" and cells["day"] == "2026-11-30" and cells["ts"] == "2026-11-29 10:24:17"
    assert cells["ts_inf"] == "infinity" and cells["tstz"] == "2026-11-29 10:24:17+00" and cells["iv"] == "1 month"
    assert cells["list"] == "[1, 2, NULL]" and cells["struct"] == "{'a': x, 'b': NULL}" and cells["map"] == "{k=1}"
    assert cells["blob"] == "\\xAA\\x00" and cells["uuid"] == "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
    assert cells["enum"] == "x" and cells["arr"] == "[1, 2]" and cells["bit"] == "101" and cells["t"] == "10:24:17"
    assert (
        cells["multiline"] == "a\\nb" and cells["cjk"] == "新客户" and cells["nan"] == "NaN" and cells["inf"] == "inf"
    )
    nulls = fetch(con, f"SELECT {', '.join(f'NULL::{t} AS c{i}' for i, t in enumerate(TYPES))}")
    assert nulls.cells() == [[NULL_TEXT] * len(TYPES)]
    table = render_table(result)
    assert len({display_width(line) for line in table}) == 1  # aligned, the CJK cell counted two columns a character


TYPES = [
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "DECIMAL(18,2)",
    "DOUBLE",
    "BOOLEAN",
    "DATE",
    "TIMESTAMP",
    "TIMESTAMPTZ",
    "INTERVAL",
    "INTEGER[]",
    "STRUCT(a INTEGER)",
    "MAP(VARCHAR, INTEGER)",
    "BLOB",
    "UUID",
    "VARCHAR",
    "JSON",
]


def test_numbers_are_right_aligned_and_text_left(con) -> None:
    lines = render_table(fetch(con, "SELECT 'C' AS section, 1766 AS clients UNION ALL SELECT 'G', 5 ORDER BY 1"))
    assert lines == ["| section | clients |", "|:--------|--------:|", "| C       |   1,766 |", "| G       |       5 |"]


def test_long_text_cells_are_cut_in_a_table_but_keys_and_numbers_are_not(con) -> None:
    long = "x" * 200
    key = "0dd27d73635d7e7a14e29f994e0200b6e77ad27a45865f07329169ba26a56e70"
    result = fetch(con, f"SELECT '{long}' AS note, '{key}' AS client_key, {2**100}::HUGEINT AS big")
    row = render_table(result)[2]
    assert ("x" * (MAX_CELL - 1) + ELLIPSIS) in row and long not in row and key in row
    assert f"{2**100:,}" in row
    assert long in "\n".join(render_records(result))  # records show every value in full


def test_a_table_wider_than_the_terminal_becomes_records(con) -> None:
    wide = fetch(con, "SELECT " + ", ".join(f"{i} AS column_number_{i}" for i in range(30)) + " FROM range(2)")
    assert render(wide, "table", None).splitlines()[0].startswith("| column_number_0")  # a pipe: no width limit
    text = render(wide, "table", 100)
    lines = text.splitlines()
    assert lines[0].startswith("-[ row 1 ]") and "column_number_29 | 29" in lines and "-[ row 2 ]" in text
    assert all(display_width(line) <= 100 for line in lines)
    narrow = fetch(con, "SELECT 1 AS a")
    assert render(narrow, "table", 100).splitlines()[0] == "|   a |"  # fits: stays a table
    assert render(narrow, "records", None).splitlines() == ["-[ row 1 ]", "a | 1"]
    empty = fetch(con, "SELECT 1 AS a WHERE false")
    assert render(empty, "table", 1) == "|   a |\n|----:|"  # no rows: the header says what was asked


def _run(con, sql: str, fmt: str = "table") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_statements(con, sql, fmt, out, err, None)
    return code, out.getvalue(), err.getvalue()


def test_several_statements_run_in_order_each_under_a_header(con) -> None:
    code, out, err = _run(con, "SELECT 1 AS first; SELECT 'two' AS second;\n-- a comment\nSELECT 3 AS third")
    assert code == 0 and err == ""
    lines = out.splitlines()
    headers = [line for line in lines if line.startswith("-- statement")]
    assert headers == [
        "-- statement 1 of 3: SELECT 1 AS first",
        "-- statement 2 of 3: SELECT 'two' AS second",
        "-- statement 3 of 3: -- a comment SELECT 3 AS third",
    ]
    assert out.index("| first |") < out.index("| second |") < out.index("| third |")
    code, out, err = _run(con, "SELECT 1")
    assert code == 0 and not out.startswith("--")  # one statement: no header line


def test_a_failing_statement_stops_the_rest_with_one_line(con) -> None:
    code, out, err = _run(con, "SELECT 1 AS ok; SELECT * FROM nowhere; SELECT 3 AS never")
    assert code == 1 and "|  ok |" in out and "never" not in out
    assert len(err.strip().splitlines()) >= 1 and err.startswith("statement 2 of 3 (SELECT * FROM nowhere) failed:")
    code, out, err = _run(con, "SELEC 1")
    assert code == 1 and out == "" and err.startswith("query failed:")


def test_refusals_are_one_line_with_exit_2_and_run_nothing(con) -> None:
    con.execute("CREATE TABLE t (n INTEGER)")
    code, out, err = _run(con, "INSERT INTO t VALUES (1); SELECT 2", fmt="csv")
    assert code == 2 and out == "" and err.count("\n") == 1 and "one statement" in err
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    code, out, err = _run(con, "  -- only a comment\n")
    assert code == 2 and out == "" and err == "lendseg sql: no SQL statement given\n"


def test_statements_that_are_not_queries_print_too(con) -> None:
    con.execute("CREATE TABLE t AS SELECT 1 AS a, 'x' AS b")
    for sql in (
        "SHOW TABLES",
        "DESCRIBE t",
        "SUMMARIZE t",
        "PRAGMA version",
        "EXPLAIN SELECT * FROM t",
        "CALL pragma_version()",
        "SET threads = 1",
        "SELECT * FROM t WHERE false",
    ):
        code, out, err = _run(con, sql)
        assert code == 0 and err == "" and out.startswith("|"), (sql, out, err)
    code, out, err = _run(con, "DESCRIBE t", fmt="csv")
    assert code == 0 and out.splitlines()[:2] == ["column_name,column_type,null,key,default,extra", "a,INTEGER,YES,,,"]


def test_csv_stays_raw(con) -> None:
    code, out, err = _run(
        con,
        "SELECT 1766 AS n, 344750809.45::DECIMAL(18,2) AS amount, 0.21345 AS share, "
        "NULL::INTEGER AS missing, true AS flag, [1, 2] AS list, DATE '2026-11-30' AS day",
        fmt="csv",
    )
    assert code == 0 and out.splitlines() == [
        "n,amount,share,missing,flag,list,day",
        '1766,344750809.45,0.21345,,true,"[1, 2]",2026-11-30',
    ]


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`lendseg sql ... | head`: no BrokenPipe traceback, exit 141 (128 + SIGPIPE) like any filter."""
    data = tmp_path / "data"
    data.mkdir()
    c = duckdb.connect(str(data / "warehouse.duckdb"))
    c.execute("CREATE TABLE numbers AS SELECT range AS n FROM range(300000)")
    c.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LENDSEG_", "DAGSTER_HOME"))}
    env |= {"LENDSEG_DATA_DIR": str(data)}
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f"'{LENDSEG}' sql 'SELECT n FROM numbers ORDER BY n' | head -n 3; echo \"exit=${{PIPESTATUS[0]}}\"",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.stderr == "" and proc.stdout.splitlines() == ["|       n |", "|--------:|", "|       0 |", "exit=141"]
