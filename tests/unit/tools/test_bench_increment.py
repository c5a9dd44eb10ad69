"""The increment bench's deliveries (bench_increment.py) and the floor's bare increment
(bench_floor.run_floor_increment),
on a small generated delivery set; the timed runs themselves are the bench's, never asserted in tests."""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.settings import DEMO_PII_KEY
from dagster_project.tools.bench_floor import run_floor, run_floor_applications, run_floor_increment
from dagster_project.tools.bench_increment import client_changes, mid_month_bureau, split_last_month
from dagster_project.tools.demo.generate import generate

LAST = date(2026, 9, 1)


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("increment")
    generate(root / "generated", n_clients=300, months=4, seed=5, fmt="csv", progress=False, end_month=LAST)
    split_last_month(root / "generated", root / "first", root / "increment", LAST, "csv")
    return root


def _names(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*.csv")}


def test_the_last_month_is_the_increment_and_the_client_master_goes_to_the_first_load(parts: Path) -> None:
    assert _names(parts / "increment") == {
        "product_usage/product_usage_202609.csv",
        "credit_bureau/credit_bureau_202609.csv",
    }
    first = _names(parts / "first")
    assert "clients/clients_202608.csv" in first and "clients/clients_202609.csv" not in first
    assert {f"product_usage/product_usage_2026{m:02d}.csv" for m in (6, 7, 8)} <= first
    assert not any("202609" in n for n in first)


def test_client_changes_and_mid_month_reports_are_a_small_valid_delivery(parts: Path) -> None:
    src = parts / "generated" / "clients" / "clients_202609.csv"
    out = parts / "changes" / "clients_202609.csv"
    n = client_changes(src, out, "csv", 10, "2026-10-01 06:00:00")
    con = duckdb.connect()
    total = con.execute(f"SELECT count(*) FROM read_csv('{src}', header=true)").fetchall()[0][0]
    assert 0 < n < total / 4  # about 10 % of 300
    changed = con.execute(f"""SELECT count(*) FILTER (WHERE c.employee_count = o.employee_count + 1),
                                     count(*) FILTER (WHERE c.updated_at = TIMESTAMP '2026-10-01 06:00:00')
                              FROM read_csv('{out}', header=true) c JOIN read_csv('{src}', header=true) o USING
                                  (client_id)""").fetchall()[0]
    assert changed == (n, n)
    bureau = parts / "increment" / "credit_bureau" / "credit_bureau_202609.csv"
    mid = parts / "mid" / "credit_bureau_20261015.csv"
    m = mid_month_bureau(bureau, mid, "csv", 10, date(2026, 10, 15))
    rows = con.execute(f"SELECT DISTINCT report_date FROM read_csv('{mid}', header=true)").fetchall()
    assert m > 0 and rows == [(date(2026, 10, 15),)]
    clash = con.execute(f"""SELECT count(*) FROM read_csv('{mid}', header=true) m
                            JOIN read_csv('{bureau}', header=true) b USING (report_id)""").fetchall()[0][0]
    assert clash == 0  # new report ids: the reports are added, not replaced


def test_the_floor_upserts_the_increment_and_makes_every_table_again(parts: Path, tmp_path: Path) -> None:
    work = tmp_path / "floor"
    run_floor(parts / "first", work, "csv", DEMO_PII_KEY)
    run_floor_applications(work)
    steps = run_floor_increment(parts / "increment", work, "csv", DEMO_PII_KEY)
    assert list(steps) == [
        "ingest",
        "dimensions",
        "profiles_features",
        "model_fit_score",
        "publish",
        "applications",
        "publish_applications",
    ]
    con = duckdb.connect(str(work / "floor.duckdb"), read_only=True)
    months = con.execute(
        "SELECT count(DISTINCT snapshot_month), max(snapshot_month) FROM raw_product_usage"
    ).fetchall()[0]
    assert months == (4, date(2026, 9, 1))
    dupes = con.execute(
        "SELECT count(*) - count(DISTINCT (account_key, snapshot_month)) FROM raw_product_usage"
    ).fetchall()[0][0]
    assert dupes == 0 and steps["ingest"]["rows"] > 0
    assert steps["model_fit_score"]["rows"] == con.execute("SELECT count(*) FROM client_features").fetchall()[0][0] > 0
    pub = duckdb.connect(str(work / "floor_published.duckdb"), read_only=True)
    assert pub.execute("SELECT count(*) FROM client_policy").fetchall()[0][0] > 0
