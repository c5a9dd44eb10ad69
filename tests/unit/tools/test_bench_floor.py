"""The bench floor's bare applications (bench_floor.run_floor_applications) on a hand-made floor database, and the
bench report's floor with the applications (the whole bench: tests/e2e/test_bench_e2e.py)."""

from pathlib import Path

import duckdb
import pytest

from dagster_project.tools.bench import floor_with_applications, to_markdown
from dagster_project.tools.bench_floor import APPLICATION_TABLES, run_floor_applications

# client, month, product, days past due, outstanding, limit - the core floor's raw_product_usage columns used here
USAGE = [
    ("hi_util", "2026-08-01", "term_loan", 0, 95, 100),
    ("hi_util", "2026-09-01", "term_loan", 0, 95, 100),
    ("hi_util", "2026-10-01", "term_loan", 0, 50, 100),
    ("hi_util", "2026-10-01", "revolving_credit", 0, 10, 100),
    ("arrears", "2026-08-01", "term_loan", 35, 10, 100),
    ("arrears", "2026-09-01", "term_loan", 65, 10, 100),
    ("arrears", "2026-10-01", "term_loan", 5, 10, 100),
    ("score", "2026-08-01", "trade_finance", 0, 10, 100),
    ("score", "2026-09-01", "trade_finance", 0, 10, 100),
    ("score", "2026-10-01", "trade_finance", 0, 10, 100),
    ("bare", "2026-10-01", "startup_credit_loan", 0, 0, 100),
]
BUREAU = [
    ("r1", "score", "2026-08-10", 700),
    ("r2", "score", "2026-09-20", 665),
    ("r3", "score", "2026-10-05", 600),
    ("r4", "hi_util", "2026-08-10", 800),
]
SEGMENTS = {"hi_util": 1, "arrears": 1, "score": 1, "bare": 2}


def _floor(tmp_path: Path) -> Path:
    work = tmp_path / "floor"
    work.mkdir()
    con = duckdb.connect(str(work / "floor.duckdb"))
    con.execute(
        "CREATE TABLE raw_product_usage (client_key VARCHAR, snapshot_month DATE, product_code VARCHAR, "
        "days_past_due BIGINT, outstanding_balance DOUBLE, credit_limit DOUBLE)"
    )
    con.executemany("INSERT INTO raw_product_usage VALUES (?, ?, ?, ?, ?, ?)", USAGE)
    con.execute(
        "CREATE TABLE raw_credit_bureau (report_id VARCHAR, client_key VARCHAR, report_date DATE, bureau_score BIGINT)"
    )
    con.executemany("INSERT INTO raw_credit_bureau VALUES (?, ?, ?, ?)", BUREAU)
    con.execute("CREATE TABLE assignments (client_key VARCHAR, segment_id INTEGER)")
    con.executemany("INSERT INTO assignments VALUES (?, ?)", list(SEGMENTS.items()))
    con.close()
    return work


def test_bare_applications_flag_recommend_and_join_the_policy(tmp_path: Path) -> None:
    work = _floor(tmp_path)
    steps = run_floor_applications(work)
    assert list(steps) == ["warning_flags", "recommendations", "policy", "publish_applications"]
    assert all(s["seconds"] >= 0 for s in steps.values())
    con = duckdb.connect(str(work / "floor.duckdb"), read_only=True)
    flags = {
        (c, str(m)): f
        for c, m, f in con.execute("SELECT client_key, snapshot_month, flag_level FROM warning_flags").fetchall()
    }
    assert steps["warning_flags"]["rows"] == len(flags) == 10  # one row per client-month
    # utilisation > 90 % two months running -> warning in the second month only
    assert [flags[("hi_util", m)] for m in ("2026-08-01", "2026-09-01", "2026-10-01")] == [None, "warning", None]
    # arrears: >= 30 dpd warning, >= 60 critical, 1-29 watch
    assert [flags[("arrears", m)] for m in ("2026-08-01", "2026-09-01", "2026-10-01")] == [
        "warning",
        "critical",
        "watch",
    ]
    # score drop since the previous report, from the latest report of the month: none, 35 (warning), 65 (critical)
    assert [flags[("score", m)] for m in ("2026-08-01", "2026-09-01", "2026-10-01")] == [None, "warning", "critical"]
    recs = con.execute(
        "SELECT client_key, product_code, holder_share FROM recommendations "
        "ORDER BY client_key, holder_share DESC, product_code"
    ).fetchall()
    # segment 1 in the latest month: term_loan held by hi_util and arrears, revolving_credit by hi_util,
    # trade_finance by score - of 3 clients; segment 2 (bare alone) has nothing bare lacks
    assert recs == [
        ("arrears", "revolving_credit", pytest.approx(1 / 3)),
        ("arrears", "trade_finance", pytest.approx(1 / 3)),
        ("hi_util", "trade_finance", pytest.approx(1 / 3)),
        ("score", "term_loan", pytest.approx(2 / 3)),
        ("score", "revolving_credit", pytest.approx(1 / 3)),
    ]
    policy = dict(con.execute("SELECT client_key, track FROM client_policy").fetchall())
    segment_track = dict(con.execute("SELECT segment_id, track FROM segment_policy").fetchall())
    assert set(segment_track) == {1, 2} and steps["policy"]["rows"] == len(policy) == len(SEGMENTS)
    assert policy["score"] == "restricted"  # critical in its latest month, whatever its segment's track
    assert policy["bare"] == segment_track[2]  # no flag: its segment's track
    con.close()
    published = duckdb.connect(str(work / "floor_published.duckdb"), read_only=True)
    assert {r[0] for r in published.execute("SELECT table_name FROM duckdb_tables()").fetchall()} == set(
        APPLICATION_TABLES
    )


def test_report_keeps_the_core_floor_and_adds_the_floor_with_applications() -> None:
    apps = {"warning_flags": {"seconds": 2.0, "rows": 10}, "policy": {"seconds": 1.0, "rows": 4}}
    extra = floor_with_applications(wall=100.0, floor_wall=10.0, floor_apps=apps, floor_apps_wall=5.0)
    assert extra["floor_with_applications_wall_s"] == 15.0
    assert extra["ratio_pipeline_to_floor_with_applications"] == round(100.0 / 15.0, 2)
    report = {
        "clients": 10,
        "months": 2,
        "format": "csv",
        "date": "2026-12-07",
        "machine": "m",
        "generation_s": 1.0,
        "pipeline_wall_s": 100.0,
        "peak_tree_rss_mb": 500,
        "floor_wall_s": 10.0,
        "ratio_pipeline_to_floor": 10.0,
        "build_mb": 1.0,
        "published_mb": 1.0,
        "rows_ingested": 100,
        "steps": [],
        "dbt_layers_s": {},
        "floor": {"ingest": {"seconds": 10.0, "rows": 100}},
        "share_of_difference": {},
    } | extra
    md = to_markdown(report)
    assert "floor 10.0 s; ratio 10.0; floor with the applications 15.0 s; ratio 6.67" in md
    assert "| applications: warning_flags | 2.0 | 10 |" in md and "| ingest | 10.0 | 100 |" in md
