"""End to end, as a newcomer meets it: `lendseg run` output, its log file, every documented SQL query (ordered),
every published table read with `lendseg sql` and the DuckDB CLI, table counts, column comments, every planned
check evaluated, the model visible in the UI's event log, the sensor after a run."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import CATALOGUE_SNAPSHOT, Workspace

from dagster_project.lib.settings import PROJECT_ROOT

ROOT = PROJECT_ROOT
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_sql() -> list[tuple[str, str]]:
    """(file, statement) for every ```sql block statement, `lendseg sql "..."` and inline `SELECT ...` in the docs."""
    out: list[tuple[str, str]] = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"```sql\n(.*?)```", text, flags=re.S):
            body = "\n".join(line for line in block.splitlines() if not line.strip().startswith("--"))
            out += [(path.name, s.strip()) for s in body.split(";") if s.strip()]
        out += [(path.name, s) for s in re.findall(r'lendseg sql "([^"]+)"', text)]
        out += [(path.name, s) for s in re.findall(r"`(SELECT [^`]+)`", text) if "FROM ..." not in s]
    return out


def test_docs_have_sql_to_check() -> None:
    found = documented_sql()
    assert len(found) >= 15 and any("audit.publish_info" in s for _, s in found)


ONE_ROW_TABLES = ("audit.publish_info",)  # one row by definition: the file you have open
# name column -> its code column: a grouped example groups by the code and shows the name beside it
NAME_CODES = {
    "segment_name": "segment_id",
    "final_segment_name": "final_segment_id",
    "product_name_en": "product_code",
    "industry_section_name_en": "industry_section",
    "province_name_en": "province_code",
}


def _flat(sql: str) -> str:
    return " " + " ".join(sql.lower().split()) + " "


def is_ordered_or_one_row(sql: str) -> bool:
    """An ORDER BY, or a query that returns one row by construction (a one-row table, an ungrouped aggregate)."""
    low = _flat(sql)
    aggregate = re.search(r"\b(count|sum|avg|min|max|median)\s*\(", low) and " group by " not in low
    return " order by " in low or any(t in low for t in ONE_ROW_TABLES) or bool(aggregate)


def code_name_gaps(sql: str) -> list[str]:
    """In a grouped query: a name shown without its code, or a code shown without its name."""
    low = _flat(sql)
    if " group by " not in low:
        return []
    selected = set(re.findall(r"[a-z_]+", low.split(" from ", 1)[0]))
    return [
        f"{name} without {code}" for name, code in NAME_CODES.items() if name in selected and code not in selected
    ] + [f"{code} without {name}" for name, code in NAME_CODES.items() if code in selected and name not in selected]


def test_documented_queries_are_ordered_and_group_by_codes_with_their_names() -> None:
    unordered = [
        f"{name}: {' '.join(sql.split())[:100]}" for name, sql in documented_sql() if not is_ordered_or_one_row(sql)
    ]
    assert not unordered, "documented queries without ORDER BY:\n" + "\n".join(unordered)
    gaps = [
        f"{name}: {gap}: {' '.join(sql.split())[:80]}" for name, sql in documented_sql() for gap in code_name_gaps(sql)
    ]
    assert not gaps, "\n".join(gaps)
    assert not is_ordered_or_one_row("SELECT a, count(*) FROM t GROUP BY ALL")  # the rules bite
    assert code_name_gaps("SELECT industry_section, count(*) FROM t GROUP BY ALL ORDER BY 1")


@pytest.fixture(scope="module")
def ws(published_ws: Workspace) -> tuple[Workspace, object]:
    """The shared published workspace (read only) and the output of the run that built it."""
    return published_ws, published_ws.first_run


def test_run_output_is_a_short_progress_view_with_a_summary(ws) -> None:
    _, proc = ws
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) < 60, "\n".join(lines)
    out = proc.stdout
    for expected in (
        "ingest clients",
        "dbt ",
        "model scoring",
        "applications ",
        "publish ",
        "published v000001",
        "checks: ",
        " 0 failed",
        "quarantined",
        "alerts: ",
        "full log: ",
    ):
        assert expected in out, expected
    assert "DEBUG" not in out + proc.stderr and "Running with dbt" not in out + proc.stderr


def test_full_logs_go_to_a_file_under_the_data_dir(ws) -> None:
    w, proc = ws
    log = Path(re.search(r"full log: (\S+)", proc.stdout).group(1))
    assert log.parent == w.data / "logs" and log.exists()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "STEP_START" in text and "Running with dbt" in text


def test_every_documented_sql_query_runs_on_the_demo_warehouse(ws) -> None:
    w, _ = ws
    con = duckdb.connect(str(w.warehouse), read_only=True)
    failed = []
    for name, sql in documented_sql():
        try:
            rows = con.execute(sql).fetchall()
        except duckdb.Error as e:
            failed.append(f"{name}: {sql[:80]} -> {e}")
            continue
        if " order by " not in _flat(sql) and len(rows) > 1:  # exempted as one row, yet returned several
            failed.append(f"{name}: {sql[:80]} -> {len(rows)} rows and no ORDER BY")
    assert not failed, "\n".join(failed)
    assert con.execute("SELECT version FROM audit.publish_info").fetchall() == [("v000001",)]


def test_every_published_column_has_a_comment(ws) -> None:
    w, _ = ws
    con = duckdb.connect(str(w.warehouse), read_only=True)
    missing = con.execute(
        "SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
        "WHERE NOT internal AND (comment IS NULL OR trim(comment) = '')"
    ).fetchall()
    assert not missing, missing
    tables = {r[0] for r in con.execute("SELECT schema_name || '.' || table_name FROM duckdb_tables()").fetchall()}
    assert {
        "audit.pipeline_alerts",
        "audit.quarantined_rows",
        "audit.rejected_deliveries",
        "audit.publish_info",
    } <= tables


def _published_tables(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1, 2").fetchall()
    finally:
        con.close()


def _every_table(w: Workspace) -> list[tuple[str, str]]:
    """Every table of the published file - the catalogue snapshot's tables, so no table is left out."""
    tables = _published_tables(w.warehouse)
    with CATALOGUE_SNAPSHOT.open() as f:
        assert set(tables) == {(r[0], r[1]) for r in list(csv.reader(f))[1:]}
    return tables


def test_every_published_table_reads_with_lendseg_sql(ws) -> None:
    """What a newcomer tries first: `lendseg sql "SELECT * FROM <table> LIMIT 5"` on every table prints a table.

    One `lendseg sql` with every table's statement (``SELECT ...; SELECT ...``): each statement runs and prints
    under its own ``-- statement i of n`` header, as it would alone (one process per table cost ~40 s of start-up)."""
    w, _ = ws
    tables = _every_table(w)
    statements = [f"SELECT * FROM {schema}.{table} LIMIT 5" for schema, table in tables]
    proc = w.lendseg("sql", "; ".join(statements), check=False)
    assert proc.returncode == 0 and not proc.stderr and "Traceback" not in proc.stdout, (
        f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-3000:]}"
    )
    sections = re.split(r"^-- statement \d+ of \d+: (.*)$", proc.stdout, flags=re.M)[1:]
    printed = dict(zip(sections[::2], sections[1::2], strict=False))
    assert list(printed) == statements, "not every table's statement was run, in order"
    failed = [
        sql
        for sql, out in printed.items()
        if not (out.lstrip("\n").startswith("| ") or out.lstrip("\n").startswith("-[ row 1 ]"))
    ]
    assert not failed, "no table printed for:\n" + "\n".join(failed)


def test_every_published_table_reads_in_the_duckdb_cli(ws) -> None:
    """The same with the DuckDB CLI the README names (installed by README command 1)."""
    w, _ = ws
    cli = Path(sys.executable).parent / "duckdb"
    failed = []
    for schema, table in _every_table(w):
        proc = subprocess.run(
            [str(cli), "-readonly", str(w.warehouse), "-c", f"SELECT * FROM {schema}.{table} LIMIT 5"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0 or proc.stderr or not proc.stdout:
            failed.append(f"{schema}.{table}: exit {proc.returncode}: {proc.stderr[-300:]}")
    assert not failed, "\n".join(failed)


def test_table_counts_agree_and_severities_are_one_vocabulary(ws) -> None:
    w, proc = ws
    n = len(_published_tables(w.warehouse))
    con = duckdb.connect(str(w.warehouse), read_only=True)
    info = con.execute("SELECT tables FROM audit.publish_info").fetchone()[0]
    manifest = con.execute("SELECT tables FROM audit.publish_manifest").fetchall()
    severities = {r[0] for r in con.execute("SELECT DISTINCT severity FROM audit.data_quality_results").fetchall()}
    con.close()
    listed = re.search(r"(\d+) tables", w.lendseg("publish", "--list").stdout).group(1)
    summary = re.search(r"published v000001 -> \S+: (\d+) tables", proc.stdout).group(1)
    assert int(listed) == int(summary) == info == n and manifest == [(n,)]
    assert severities == {"error", "warning"}  # warning-severity asset checks ran too (e.g. deliveries_clean)


def _events(w: Workspace, kind: dg.DagsterEventType):
    instance = dg.DagsterInstance.from_config(str(w.root / "dagster_home"))
    run = instance.get_runs(limit=1)[0]
    return [e.dagster_event for e in instance.all_logs(run.run_id, of_type=kind)]


def test_every_planned_check_ran_and_passed(ws) -> None:
    w, _ = ws
    planned = {
        f"{e.event_specific_data.asset_key.to_user_string()}:{e.event_specific_data.check_name}"
        for e in _events(w, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED)
    }
    evaluated = {
        f"{d.asset_key.to_user_string()}:{d.check_name}": d.passed
        for d in (e.event_specific_data for e in _events(w, dg.DagsterEventType.ASSET_CHECK_EVALUATION))
    }
    assert planned <= set(evaluated), sorted(planned - set(evaluated))
    for name in (
        "marts/dim_client:assert_dim_client_covers_every_client",
        "reference/size_class_cases:assert_size_class_cases",
        "app/client_product_recommendations:recommendations_only_eligible",
        "app/segment_policy:policy_covers_every_segment",
        "app/risk_early_warnings:warnings_of_known_clients",
        "marts/client_segments:assert_client_segments_one_per_client",
        "reference/rule_segments:assert_rule_segment_ids",
        "published_warehouse:holds_manifest_tables",
        "published_warehouse:opens_read_only",
        "published_warehouse:every_column_commented",
    ):
        assert evaluated.get(name) is True, name
    assert any(n.startswith("intermediate/int_client_products_summarised:relationships_") for n in evaluated)
    assert any(
        n.startswith("marts/client_segments:relationships_client_segments_final_segment_id") and ok
        for n, ok in evaluated.items()
    )
    assert not _events(w, dg.DagsterEventType.ASSET_OBSERVATION) or all(
        "assert_" not in str(e.asset_key) for e in _events(w, dg.DagsterEventType.ASSET_OBSERVATION)
    )


def test_bootstrapped_model_shows_on_segmentation_model(ws) -> None:
    w, _ = ws
    mats = [
        e
        for e in _events(w, dg.DagsterEventType.ASSET_MATERIALIZATION)
        if e.asset_key == dg.AssetKey("segmentation_model")
    ]
    assert len(mats) == 1
    meta = mats[0].event_specific_data.materialization.metadata
    assert list(meta)[:2] == ["profile_chart", "k_curve_chart"] and "silhouette" in meta
    checks = {
        e.event_specific_data.check_name
        for e in _events(w, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        if e.event_specific_data.asset_key == dg.AssetKey("segmentation_model")
    }
    assert checks == {"segment_min_share", "silhouette_floor", "stability_clusterboot"}


def test_sensor_requests_no_run_for_files_the_run_loaded(ws, monkeypatch: pytest.MonkeyPatch) -> None:
    w, _ = ws
    from dagster_project.defs.operations.sensors import landing_sensor

    monkeypatch.setenv("LENDSEG_DATA_DIR", str(w.data))
    for var in ("LENDSEG_LANDING_DIR", "LENDSEG_BUILD_PATH", "LENDSEG_WAREHOUSE_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LENDSEG_LANDING_SETTLE_S", "0")
    with dg.instance_for_test() as instance:  # a fresh sensor cursor, as after `dagster dev` starts
        result = landing_sensor(dg.build_sensor_context(instance=instance, cursor=None))
    assert isinstance(result, dg.SensorResult) and not result.run_requests
