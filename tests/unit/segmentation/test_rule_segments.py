"""The rule segments have one definition, the dbt seed rule_segments.csv: Python (rules.py) reads it, and its SQL
twin (scoring's fallback) gives every client the same id. dbt's client_segments joins the same seed; that it agrees
with rules.py on real clients is shown on the shared workspace (tests/e2e/test_segment_of_record.py)."""

import csv
import itertools

import duckdb

from dagster_project.defs.segmentation import rules


def seed_rows() -> list[dict]:
    with rules.SEED.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_the_seed_follows_the_documented_id_rule_and_covers_every_combination() -> None:
    rows = seed_rows()
    for r in rows:
        assert int(r["segment_id"]) == -(10 * int(r["size_rank"]) + int(r["risk_rank"]))
    assert {(r["size_class"], r["industry_risk_class"]) for r in rows} == set(
        itertools.product(rules.SIZE_CLASSES, rules.RISK_CLASSES)
    )
    assert rules.SIZE_CLASSES == ("large", "medium", "small", "micro", "unknown")
    assert rules.RISK_CLASSES == ("standard", "elevated", "high", "unknown")
    assert rules.rule_segment_id("large", "high") == -13  # the example of the docs
    names = [r["segment_name"] for r in rows]
    assert len(set(names)) == len(names) and all(n.startswith("rule: ") for n in names)


def test_python_and_sql_give_every_client_the_same_rule_segment() -> None:
    sizes = [*rules.SIZE_CLASSES, None, "giant", ""]
    risks = [*rules.RISK_CLASSES, None, "extreme"]
    combos = list(itertools.product(sizes, risks))
    con = duckdb.connect()
    con.execute("CREATE TABLE c (size_class VARCHAR, industry_risk_class VARCHAR)")
    con.executemany("INSERT INTO c VALUES (?, ?)", combos)
    got = con.execute(
        f"SELECT size_class, industry_risk_class, {rules.sql_expr('size_class', 'industry_risk_class')} FROM c"
    ).fetchall()
    assert len(got) == len(combos)
    for size, risk, sql_id in got:
        assert sql_id == rules.rule_segment_id(size, risk), (size, risk)
    assert rules.rule_segment_id(None, "extreme") == rules.rule_segment_id("unknown", "unknown") == -54


def test_catalog_rows_are_every_rule_segment_always_active() -> None:
    rows = rules.catalog_rows()
    assert [r["segment_id"] for r in rows] == [int(r["segment_id"]) for r in seed_rows()]
    assert all(r["status"] == "active" and r["retired_in_version"] is None for r in rows)
