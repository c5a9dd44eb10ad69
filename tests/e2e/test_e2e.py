"""End to end through Dagster: generated deliveries -> ingest -> dbt -> published file, via the real CLI."""

import hashlib
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import CATALOGUE_SNAPSHOT, Workspace, published_catalogue

pytestmark = pytest.mark.e2e

RUN_METADATA_COLUMNS = {"ingested_at", "published_at", "run_id", "scored_at"}


def published_tables(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
    finally:
        con.close()


def table_digest(path: Path) -> dict[str, str]:
    """Order-independent content hash of every published table, run-metadata columns left out."""
    con = duckdb.connect(str(path), read_only=True)
    out = {}
    try:
        # The audit schema is the run log itself (results, manifests): it grows with every run by design.
        for schema, table in con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name <> 'audit'"
        ).fetchall():
            cols = [
                (r[0], r[1])
                for r in con.execute(
                    "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                    [schema, table],
                ).fetchall()
                if r[0] not in RUN_METADATA_COLUMNS
            ]
            if not cols:
                continue
            # Doubles to 12 significant digits: parallel float aggregation may differ in the last bit.
            sel = ", ".join(
                f'round("{c}", 12 - ceil(log10(abs("{c}") + 1e-300))::INT)' if t in ("DOUBLE", "FLOAT") else f'"{c}"'
                for c, t in cols
            )
            rows = con.execute(f'SELECT {sel} FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
            out[f"{schema}.{table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    finally:
        con.close()
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dim_client_has_one_row_per_delivered_client(published_ws: Workspace) -> None:
    con = duckdb.connect()
    delivered = con.execute(
        f"SELECT count(DISTINCT client_id) FROM read_csv('{published_ws.landing}/clients/*.csv', all_varchar=true)"
    ).fetchone()[0]
    pub = duckdb.connect(str(published_ws.warehouse), read_only=True)
    n, distinct = pub.execute("SELECT count(*), count(DISTINCT client_key) FROM marts.dim_client").fetchone()
    assert n == distinct == delivered > 0


def test_no_clear_identifier_in_any_published_text_column(published_ws: Workspace) -> None:
    con = duckdb.connect()
    con.execute(f"ATTACH '{published_ws.warehouse}' AS pub (READ_ONLY)")
    lit = lambda src: f"read_csv('{published_ws.landing}/{src}/*.csv', all_varchar=true)"  # noqa: E731
    con.execute(f"""CREATE TEMP TABLE ids AS SELECT DISTINCT v FROM (
        SELECT unnest([legal_name, registration_no, contact_email, contact_phone, client_id]) AS v FROM {lit("clients")}
        UNION ALL SELECT unnest([account_id, client_id]) FROM {lit("product_usage")}
        UNION ALL SELECT client_id FROM {lit("credit_bureau")}) WHERE v IS NOT NULL AND length(v) >= 4""")
    assert con.execute("SELECT count(*) FROM ids").fetchone()[0] > 1000
    text_cols = con.execute(
        "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE database_name = 'pub' "
        "AND data_type = 'VARCHAR'"
    ).fetchall()
    assert text_cols
    for schema, table, col in text_cols:
        hits = con.execute(
            f'SELECT count(*) FROM (SELECT DISTINCT "{col}" AS t FROM pub."{schema}"."{table}") p '
            f"JOIN ids ON strpos(p.t, ids.v) > 0"
        ).fetchone()[0]
        assert hits == 0, f"{schema}.{table}.{col} contains clear identifiers"


def test_published_file_opens_in_duckdb_cli_named_in_readme(published_ws: Workspace) -> None:
    import subprocess
    import sys

    cli = Path(sys.executable).parent / "duckdb"
    out = subprocess.run(
        [str(cli), "-readonly", str(published_ws.warehouse), "-csv", "-c", "SELECT count(*) FROM marts.dim_client"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout.strip().splitlines()[-1]) > 0


def test_lendseg_sql_answers(published_ws: Workspace) -> None:
    out = published_ws.lendseg("sql", "SELECT count(*) AS n FROM marts.dim_client", "--format", "csv").stdout
    assert out.splitlines()[0] == "n" and int(out.splitlines()[1]) > 0


def test_run_is_recorded_in_dagster_home(published_ws: Workspace) -> None:
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(published_ws.root / "dagster_home"))
    runs = instance.get_runs()
    assert runs and runs[-1].job_name == "daily_refresh" and runs[-1].status == dg.DagsterRunStatus.SUCCESS


def test_rerun_on_same_files_changes_no_published_content(demo_ws: Workspace) -> None:
    import dagster as dg

    from dagster_project.defs.applications.keys import EW_EVAL, REC_EVAL

    before = table_digest(demo_ws.warehouse)
    demo_ws.lendseg("run", "--demo")
    assert table_digest(demo_ws.warehouse) == before
    # nothing new delivered: the time-split evaluations were not replayed, the earlier result stands
    instance = dg.DagsterInstance.from_config(str(demo_ws.root / "dagster_home"))
    try:
        latest = instance.get_runs(limit=1)[0].run_id
        earlier = {r.run_id for r in instance.get_runs()} - {latest}
        for key in (REC_EVAL, EW_EVAL):
            meta = instance.get_latest_materialization_event(key).asset_materialization.metadata
            assert meta["evaluated_in_run"].value in earlier, key
    finally:
        instance.dispose()


def test_broken_delivery_fails_and_leaves_published_file_byte_identical(demo_ws: Workspace) -> None:
    before = sha(demo_ws.warehouse)
    src = sorted((demo_ws.landing / "credit_bureau").glob("*.csv"))[0]
    lines = src.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    drop = header.index("bureau_score")
    broken = [",".join(v for i, v in enumerate(line.split(",")) if i != drop) for line in lines[:50]]
    bad = demo_ws.landing / "credit_bureau" / "credit_bureau_broken.csv"
    bad.write_text("\n".join(broken) + "\n", encoding="utf-8")
    try:
        proc = demo_ws.lendseg("run", "--demo", check=False)
        assert proc.returncode != 0
        assert "credit_bureau_broken.csv" in proc.stderr and "bureau_score" in proc.stderr
        assert "missing_column" in proc.stderr
        assert sha(demo_ws.warehouse) == before
        assert (demo_ws.data / "rejected" / "credit_bureau_broken.csv.error.json").exists()
    finally:
        bad.unlink()


def test_run_without_key_is_refused_outside_demo_mode(demo_ws: Workspace) -> None:
    proc = demo_ws.lendseg("run", check=False)
    assert proc.returncode != 0 and "LENDSEG_PII_KEY is not set" in proc.stderr


def test_run_with_a_different_key_is_refused(demo_ws: Workspace) -> None:
    before = sha(demo_ws.warehouse)
    proc = demo_ws.lendseg("run", check=False, LENDSEG_PII_KEY="some-other-key")
    assert proc.returncode != 0 and "key id" in proc.stderr
    assert sha(demo_ws.warehouse) == before


def test_published_catalogue_matches_the_committed_snapshot(published_ws: Workspace) -> None:
    """Readers see the same schema.table.column and type as the release the snapshot was taken from (2749259).

    A deliberate change to the published catalogue updates tests/snapshots/published_catalogue.csv in the same
    commit (regenerate it from a published demo warehouse with the query of published_catalogue).
    """
    import csv

    with CATALOGUE_SNAPSHOT.open() as f:
        expected = [tuple(r) for r in list(csv.reader(f))[1:]]
    actual = published_catalogue(published_ws.warehouse)
    missing, extra = sorted(set(expected) - set(actual)), sorted(set(actual) - set(expected))
    assert not missing and not extra, f"published catalogue changed: missing {missing[:20]}, new {extra[:20]}"
    assert actual == expected, "same columns, but in another order"


def test_a_mid_month_bureau_file_updates_the_warnings_without_the_daily_run(demo_ws: Workspace) -> None:
    """The landing sensor's intraday run (jobs.choose_job), as `lendseg run --job intraday_warnings` runs it: the
    bureau file, the models between it and the warnings, the warnings, the policy and the publish - not the
    segments, recommendations or evaluations, which wait for the daily run."""
    import dagster as dg

    from dagster_project.defs.applications.keys import RECS, WARNINGS
    from dagster_project.tools.bench_increment import mid_month_bureau

    newest = sorted((demo_ws.landing / "credit_bureau").glob("credit_bureau_2*.csv"))[-1]
    with duckdb.connect(str(demo_ws.warehouse), read_only=True) as con:
        last = con.execute("SELECT max(latest_report_date) FROM marts.dim_client").fetchone()[0]
    report_date = min(date.today(), last + timedelta(days=45))
    mid = demo_ws.landing / "credit_bureau" / f"credit_bureau_mid_{report_date:%Y%m%d}.csv"
    reports = mid_month_bureau(newest, mid, "csv", 20, report_date)
    assert reports > 0
    before = table_digest(demo_ws.warehouse)
    proc = demo_ws.lendseg("run", "--demo", "--job", "intraday_warnings")
    assert "intraday_warnings for new files of: credit_bureau" in proc.stderr
    assert "ingest credit_bureau" in proc.stdout and "risk_early_warnings" in proc.stdout
    assert "model scoring" not in proc.stdout and "ingest product_usage" not in proc.stdout
    after = table_digest(demo_ws.warehouse)
    with duckdb.connect(str(demo_ws.warehouse), read_only=True) as con:
        updated = con.execute(
            "SELECT count(*) FROM marts.dim_client WHERE latest_report_date = ?", [report_date]
        ).fetchone()[0]
    with duckdb.connect() as con:
        clients = con.execute(
            f"SELECT count(DISTINCT client_id) FROM read_csv('{mid}', all_varchar = true)"
        ).fetchone()[0]
    assert updated == clients  # every client of the file has its new report in the published dimension
    assert after["marts.dim_client"] != before["marts.dim_client"]
    # what the intraday run does not touch is published as it was
    for table in (
        "marts.client_product_recommendations",
        "marts.client_segments",
        "ml.segment_assignments",
        "marts.fct_product_usage_monthly",
        "marts.recommendation_evaluation",
    ):
        assert after[table] == before[table], table
    instance = dg.DagsterInstance.from_config(str(demo_ws.root / "dagster_home"))
    try:
        run = instance.get_runs(limit=1)[0]
        assert run.job_name == "intraday_warnings" and run.status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(WARNINGS).run_id == run.run_id
        assert instance.get_latest_materialization_event(RECS).run_id != run.run_id
    finally:
        instance.dispose()
