"""Landing contract v1: column lists, PII handling, message masking, and ranges that fit every later stage."""

import re
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.contract import (
    AMOUNT_CEILING_CNY,
    PII_COLUMNS,
    SOURCES,
    mask,
    missing_columns,
    ranged_columns,
    unexpected_columns,
)
from dagster_project.lib.settings import DEMO_PII_KEY, PROJECT_ROOT, key_id_for


def test_every_source_has_required_keys_and_types() -> None:
    assert set(SOURCES) == {"clients", "credit_bureau", "product_usage", "review_decisions"}
    for src in SOURCES.values():
        stored = {c.stored_name for c in src.kept}
        assert set(src.key) <= stored, src.name
        assert all(c.type in {"VARCHAR", "BIGINT", "DOUBLE", "DATE", "TIMESTAMP"} for c in src.columns)


def test_personal_data_is_never_kept_in_clear() -> None:
    clients = SOURCES["clients"]
    assert {c.name for c in clients.columns if c.pii == "drop"} == {
        "legal_name",
        "registration_no",
        "contact_email",
        "contact_phone",
    }
    for src in SOURCES.values():
        kept = {c.stored_name for c in src.kept}
        assert "client_id" not in kept and "account_id" not in kept
        assert not kept & {"legal_name", "registration_no", "contact_email", "contact_phone"}
    assert PII_COLUMNS["product_usage"] == ("account_id", "client_id")


def test_missing_and_unexpected_columns() -> None:
    src = SOURCES["credit_bureau"]
    header = [c.name for c in src.columns if c.name != "bureau_score"] + ["extra"]
    assert missing_columns(src, header) == ["bureau_score"]
    assert unexpected_columns(src, header) == ["extra"]
    # A semicolon-delimited file reads as one column: every contract column is missing.
    assert len(missing_columns(src, [";".join(c.name for c in src.columns)])) == len(src.columns)


def test_mask_hides_content_keeps_shape() -> None:
    assert mask("1,234.5") == "9,999.9"
    assert mask("Acme Ltd") == "xxxx xxx"
    assert mask(None) == "NULL"
    assert len(mask("x" * 100)) == 20


def test_key_id_is_stable_and_does_not_reveal_key() -> None:
    kid = key_id_for(DEMO_PII_KEY)
    assert kid == key_id_for(DEMO_PII_KEY) and len(kid) == 16
    assert DEMO_PII_KEY not in kid and kid != key_id_for("another key")


# --- ranges (issue 12): every value the contract accepts fits every type a later stage casts it to --------------

DBT = PROJECT_ROOT / "dbt"


def test_every_numeric_and_date_column_has_a_range_with_a_basis() -> None:
    for src in SOURCES.values():
        for c in src.kept:
            if c.type != "VARCHAR":
                assert c.range is not None and c.range.basis, f"{src.name}.{c.name} has no range"
                lo, hi = c.range.bounds(c.type, date(2026, 11, 26))
                assert lo <= hi


def _dbt_numeric_type() -> tuple[int, int]:
    """(precision, scale) of dbt.type_numeric() as dbt-duckdb renders it (dbt's default macro, not overridden)."""
    import dbt.include.global_project as gp

    root = Path(gp.__file__).parent
    text = (root / "macros" / "utils" / "data_types.sql").read_text()
    m = re.search(
        r"default__type_numeric\(\)\s*%\}\s*\{\{\s*return\(api\.Column\.numeric_type\(\"numeric\",\s*(\d+),\s*(\d+)\)",
        text,
    )
    assert m, "dbt's default type_numeric macro changed"
    import dbt.include.duckdb as dd

    assert not any("type_numeric" in p.read_text() for p in Path(dd.__file__).parent.rglob("*.sql"))
    return int(m.group(1)), int(m.group(2))


def _casted_columns() -> set[str]:
    """Contract columns that dbt casts to dbt.type_numeric(): safe_cast('<col>', ...) and the size-class macro."""
    cols: set[str] = set()
    for p in [*(DBT / "models").rglob("*.sql"), *(DBT / "macros").rglob("*.sql")]:
        text = p.read_text()
        cols |= {m.split(".")[-1] for m in re.findall(r"safe_cast\('([\w.]+)',\s*dbt\.type_numeric\(\)\)", text)}
        for args in re.findall(r"sme_measure_value\('[^']+',\s*'([\w.]+)',\s*'([\w.]+)',\s*'([\w.]+)'\)", text):
            cols |= {a.split(".")[-1] for a in args}
    return cols


def test_dbt_decimal_casts_hold_every_value_the_contract_accepts() -> None:
    precision, scale = _dbt_numeric_type()
    by_name = {c.stored_name: c for s in SOURCES.values() for c in ranged_columns(s)}
    casted = _casted_columns()
    assert {"annual_revenue", "total_assets", "employee_count", "credit_limit", "outstanding_balance"} <= casted
    con = duckdb.connect()
    for name in casted:
        c = by_name[name]  # a cast column must be a ranged contract column
        for bound in (float(c.range.lo), float(c.range.hi)):
            # the bound itself, cast as dbt does (from the DOUBLE/BIGINT raw column) ...
            con.execute(f"SELECT CAST(CAST(? AS {c.type}) AS NUMERIC({precision}, {scale}))", [bound]).fetchone()
            # ... and a sum of a million such values (DuckDB sums DECIMAL(p, s) as DECIMAL(38, s))
            con.execute(f"SELECT CAST(? AS DECIMAL(38, {scale})) * 1000000", [bound]).fetchone()
    assert AMOUNT_CEILING_CNY < 10 ** (precision - scale)
    # and the value that jammed the pipeline does not fit, which is why the contract bounds amounts
    try:
        con.execute(f"SELECT CAST(1e40 AS NUMERIC({precision}, {scale}))").fetchone()
        raise AssertionError("1e40 unexpectedly fits")
    except duckdb.Error:
        pass


def test_ranges_table_in_the_docs_matches_the_contract() -> None:
    doc = (PROJECT_ROOT / "docs" / "landing_contract.md").read_text(encoding="utf-8")
    table = doc.split("## Ranges", 1)[1].split("\n## ", 1)[0]
    for src in SOURCES.values():
        for c in ranged_columns(src):
            assert f"| {src.name} | {c.name} |" in table and c.range.basis in table, f"{src.name}.{c.name}"
