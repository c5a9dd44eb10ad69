"""What ``lendseg sql`` prints: every DuckDB type and NULL, wide tables, several statements, a closed pipe.

* Numbers (integer types, HUGEINT, DECIMAL, FLOAT, DOUBLE) are fetched as numbers and formatted as an analyst
  reads them (``1,766``, ``344,750,809.45``, ``0.2134``; DECIMAL and HUGEINT exactly, never cut) and right-aligned.
  Every other type is cast to text by DuckDB itself, so DATE, TIMESTAMP (``infinity`` too), INTERVAL, LIST,
  STRUCT, MAP, BLOB, UUID, BOOLEAN... read exactly as in the DuckDB CLI. NULL of any type prints as ``NULL``.
* Table layout: an aligned pipe table; a text cell longer than :data:`MAX_CELL` characters is cut with ``…``. When
  the table is wider than the terminal (or ``$COLUMNS`` when set; no limit when stdout is a pipe or a file),
  each row is printed as a record instead (``-[ row 1 ]``, one ``column | value`` line per column, values in
  full). ``--format records`` always prints records; ``--format csv`` prints raw values (NULL empty).
* Several statements (``SELECT 1; SELECT 2``) run in order and each result follows a header line
  ``-- statement 1 of 2: SELECT 1``; the first failing statement stops the rest. CSV takes one statement.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import shutil
import sys
import unicodedata
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import IO

NULL_TEXT = "NULL"
MAX_CELL = 64  # a SHA-256 client_key stays whole
ELLIPSIS = "…"
NUMERIC_TYPE = re.compile(r"^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\))$")
_CONTROL = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_numeric_type(duckdb_type: str) -> bool:
    """True for the DuckDB types shown as formatted, right-aligned numbers."""
    return bool(NUMERIC_TYPE.match(duckdb_type.upper()))


def format_number(x: object) -> str:
    """How an analyst reads a number: 465, 344,800,000, 1,234.57, 0.2134, 3.1e-05; NULL for null."""
    if x is None:
        return NULL_TEXT
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"  # exact, HUGEINT included
    if isinstance(x, Decimal):  # exact: the float rules below without going through a float
        if x == x.to_integral_value() and abs(x) < Decimal("1e15"):
            return f"{int(x):,}"
        if Decimal(1) <= abs(x) < Decimal("1e15"):
            return f"{x.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,}"
        return f"{x.normalize():.4g}"
    v = float(x)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if 1 <= abs(v) < 1e15:
        return f"{v:,.2f}"
    return f"{v:.4g}"


def format_text(x: object) -> str:
    """A non-numeric value (DuckDB's own text of it) on one line: NULL for null, control characters escaped."""
    if x is None:
        return NULL_TEXT
    s = str(x)
    if any(ord(c) < 32 for c in s):
        s = "".join(_CONTROL.get(c, f"\\x{ord(c):02x}") if ord(c) < 32 else c for c in s)
    return s


def display_width(s: str) -> int:
    """Terminal columns of ``s``: wide (CJK) characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def truncate(s: str, limit: int = MAX_CELL) -> str:
    """``s`` cut to ``limit`` terminal columns, the cut marked with an ellipsis."""
    if display_width(s) <= limit:
        return s
    out, used = [], 0
    for c in s:
        w = display_width(c)
        if used + w > limit - 1:
            break
        out.append(c)
        used += w
    return "".join(out) + ELLIPSIS


def _pad(s: str, width: int, right: bool) -> str:
    gap = " " * (width - display_width(s))
    return gap + s if right else s + gap


@dataclass(frozen=True)
class Result:
    """One statement's result: numbers as Python numbers, every other value as DuckDB's text, NULL as None."""

    columns: list[str]
    numeric: list[bool]
    rows: list[tuple]

    def cells(self) -> list[list[str]]:
        return [
            [format_number(v) if num else format_text(v) for v, num in zip(row, self.numeric, strict=False)]
            for row in self.rows
        ]


def reader_relation(rel):
    """``rel`` with every non-numeric column cast to VARCHAR by DuckDB (positional, so duplicate names work)."""
    numeric = [is_numeric_type(str(t)) for t in rel.types]
    exprs = ", ".join(f"#{i}" if num else f"CAST(#{i} AS VARCHAR)" for i, num in enumerate(numeric, 1))
    return rel.project(exprs), numeric


def fetch(con, query: str) -> Result | None:
    """Run one statement on ``con``; None when it returns no relation."""
    rel = con.sql(query)
    if rel is None:
        return None
    projected, numeric = reader_relation(rel)
    return Result(list(rel.columns), numeric, projected.fetchall())


def render_table(result: Result, max_cell: int = MAX_CELL) -> list[str]:
    """Pipe table (markdown style), numbers right-aligned, long text cells cut (numbers never)."""
    header = [truncate(format_text(c), max_cell) for c in result.columns]
    body = [
        [c if num else truncate(c, max_cell) for c, num in zip(row, result.numeric, strict=False)]
        for row in result.cells()
    ]
    widths = [max([display_width(h), 3, *(display_width(r[i]) for r in body)]) for i, h in enumerate(header)]
    lines = [
        "| " + " | ".join(_pad(h, w, num) for h, w, num in zip(header, widths, result.numeric, strict=False)) + " |",
        "|"
        + "|".join(
            (":" + "-" * (w + 1)) if not num else ("-" * (w + 1) + ":")
            for w, num in zip(widths, result.numeric, strict=False)
        )
        + "|",
    ]
    lines += [
        "| " + " | ".join(_pad(c, w, num) for c, w, num in zip(row, widths, result.numeric, strict=False)) + " |"
        for row in body
    ]
    return lines


def render_records(result: Result) -> list[str]:
    """One block per row, ``column | value`` per line, values in full."""
    names = [format_text(c) for c in result.columns]
    width = max(display_width(n) for n in names)
    lines: list[str] = []
    for i, row in enumerate(result.cells(), 1):
        lines.append(f"-[ row {i} ]" + "-" * max(0, width - 6))
        lines += [f"{_pad(n, width, False)} | {v}" for n, v in zip(names, row, strict=False)]
    return lines


def render(result: Result, layout: str = "table", width: int | None = None) -> str:
    """The table, or records when ``layout`` is records or the table is wider than ``width``."""
    lines = render_table(result)
    if result.rows and (layout == "records" or (width and display_width(lines[0]) > width)):
        lines = render_records(result)
    return "\n".join(lines)


def terminal_width(out: IO[str]) -> int | None:
    """Where a table becomes records: $COLUMNS when set, else the terminal's width; None (no limit) for a pipe/file."""
    if (cols := os.environ.get("COLUMNS", "")).isdigit() and int(cols) > 0:
        return int(cols)
    return shutil.get_terminal_size().columns if out.isatty() else None


def one_line(query: str, limit: int = 80) -> str:
    """A statement as a header shows it: whitespace collapsed, cut."""
    return truncate(" ".join(query.split()).rstrip(";").strip(), limit)


def write_csv(con, query: str, out: IO[str]) -> None:
    """Raw values (numbers unformatted, DuckDB's text otherwise, NULL empty), streamed."""
    rel = con.sql(query)
    if rel is None:
        return
    projected, _ = reader_relation(rel)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(rel.columns)
    cur = con.cursor()  # a cursor streams: a large export never sits in memory whole
    try:
        cur.execute(projected.sql_query())
        while chunk := cur.fetchmany(10_000):
            w.writerows(chunk)
    finally:
        cur.close()


def run_statements(con, sql: str, fmt: str, out: IO[str], err: IO[str], width: int | None) -> int:
    """Every statement of ``sql`` in order; 0, 1 (a statement failed) or 2 (nothing to run, or csv of several)."""
    import duckdb

    try:
        statements = [s.query for s in con.extract_statements(sql)]
    except duckdb.Error as e:
        print(f"query failed: {e}", file=err)
        return 1
    if not statements:
        print("lendseg sql: no SQL statement given", file=err)
        return 2
    if fmt == "csv" and len(statements) > 1:
        print(f"lendseg sql: --format csv takes one statement, got {len(statements)}; run them one at a time", file=err)
        return 2
    for i, query in enumerate(statements, 1):
        many = len(statements) > 1
        try:
            if fmt == "csv":
                write_csv(con, query, out)
                continue
            result = fetch(con, query)
        except duckdb.Error as e:
            where = f"statement {i} of {len(statements)} ({one_line(query, 40)}) failed" if many else "query failed"
            print(f"{where}: {e}", file=err)
            return 1
        if many:
            print(f"{chr(10) if i > 1 else ''}-- statement {i} of {len(statements)}: {one_line(query)}", file=out)
        if result is not None:
            print(render(result, fmt, width), file=out)
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from .lib.settings import load_settings

    path = load_settings().warehouse_path
    if not path.exists():
        print(f"no published warehouse at {path}: run `lendseg run` first", file=sys.stderr)
        return 2
    con = duckdb.connect(str(path), read_only=True)
    try:
        return run_statements(con, args.query, args.format, sys.stdout, sys.stderr, terminal_width(sys.stdout))
    finally:
        con.close()
