"""Publishing: readers are never disturbed, versions are kept, rollback is atomic, audit is published.

One workspace advancing in a planned order (issue 36: two whole runs instead of five): a copy of the session's
published workspace (its first load is v1, no run of this module's own) -> an increment with readers holding the
file open (v2) -> rollback and forward again (no run) -> a run refused for an empty delivery (nothing published)
-> the next run, with the rejected file still in the landing folder and a delivery with a bad row, kept to two
versions (v3; v1 pruned). Each test reads the state the one before it left: run them in this order.
"""

import csv
import hashlib
import io
from pathlib import Path

import duckdb
import pytest
from conftest import Workspace, copy_workspace

from dagster_project.defs.publish.files import current_version

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ws(published_ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A private copy of the session's published workspace: its first load (v1) is this module's starting point."""
    return copy_workspace(published_ws, tmp_path_factory.mktemp("publish") / "ws")


STATE: dict = {}  # what one test leaves for the next (the planned order of the module docstring)


def _versions(ws: Workspace) -> list[Path]:
    return sorted((ws.warehouse.parent / "published_versions").glob("v*.duckdb"))


def _count(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM marts.dim_client").fetchone()[0]
    finally:
        con.close()


def _differs_from_build(ws: Workspace) -> list[str]:
    """Published marts/ml tables whose row count or sum of row hashes differs from the build's table."""
    from dagster_project.defs.publish.files import PUBLISHED_SCHEMAS, sources

    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{ws.data / 'build' / 'build.duckdb'}' AS build (READ_ONLY)")
        con.execute(f"ATTACH '{ws.warehouse}' AS pub (READ_ONLY)")
        q = "SELECT count(*), sum(hash(t)) FROM {} AS t"
        return [
            table
            for table, src in sources(con, ws.data / "audit", PUBLISHED_SCHEMAS, {}).items()
            if not table.startswith("audit.")
            and con.execute(q.format(src.sql)).fetchone() != con.execute(q.format(f"pub.{table}")).fetchone()
        ]
    finally:
        con.close()


def _add_clients(ws: Workspace, name: str, n: int, start: int) -> None:
    """A new client-master delivery: copies of delivered rows under new client ids."""
    src = sorted((ws.landing / "clients").glob("clients_*.csv"))[0]
    rows = list(csv.DictReader(src.open(encoding="utf-8")))[:n]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(rows[0]))
    w.writeheader()
    for i, r in enumerate(rows):
        w.writerow(r | {"client_id": f"NEW{start + i:07d}", "legal_name": f"新客户{start + i}"})
    (ws.landing / "clients" / name).write_text(out.getvalue(), encoding="utf-8")


def test_reader_holding_file_open_neither_errors_nor_blocks_a_run(ws: Workspace) -> None:
    import subprocess
    import sys

    reader = duckdb.connect(str(ws.warehouse), read_only=True)  # Python reader
    cli = subprocess.Popen(
        [str(Path(sys.executable).parent / "duckdb"), "-readonly", "-csv", str(ws.warehouse)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cli.stdin.write("SELECT count(*) AS n FROM marts.dim_client;\n")  # the DuckDB CLI has the file open too
    cli.stdin.flush()
    before = reader.execute("SELECT count(*) FROM marts.dim_client").fetchone()[0]
    _add_clients(ws, "clients_new_1.csv", 20, 1)
    ws.lendseg("run", "--demo")  # must not fail or wait because of the open readers
    assert reader.execute("SELECT count(*) FROM marts.dim_client").fetchone()[0] == before  # old snapshot
    reader.close()
    out, err = cli.communicate("SELECT count(*) AS n FROM marts.dim_client;\n.quit\n", timeout=60)
    assert err == "" and out.split() == ["n", str(before), "n", str(before)]
    assert _count(ws.warehouse) == before + 20  # new readers see the new version
    # published as an increment: the changed tables rewritten, the others kept, all equal to the build's
    m = current_version(ws.warehouse, ws.warehouse.parent / "published_versions").manifest
    assert m["publish_mode"] == "increment" and "marts.dim_client" in m["tables_rewritten"]
    assert m["tables_kept"] > 0 and _differs_from_build(ws) == []


def test_versions_are_listed_and_rollback_restores_one_atomically(ws: Workspace) -> None:
    listing = ws.lendseg("publish", "--list").stdout.splitlines()
    assert len(listing) >= 2 and listing[-1].startswith("*")
    current = _count(ws.warehouse)
    ws.lendseg("publish", "--rollback")
    assert _count(ws.warehouse) == current - 20
    prev_name = listing[-2].split()[0]
    assert ws.lendseg("publish", "--list").stdout.splitlines()[-2].startswith(f"* {prev_name}")
    ws.lendseg("publish", "--rollback", listing[-1].split()[1])  # and forward again, by name
    assert _count(ws.warehouse) == current
    proc = ws.lendseg("publish", "--rollback", "v999999", check=False)
    assert proc.returncode == 2 and "not kept" in proc.stderr and proc.stderr.count("\n") == 1


def test_failed_run_records_failure_in_audit_store_but_not_in_published_file(ws: Workspace) -> None:
    before = hashlib.sha256(ws.warehouse.read_bytes()).hexdigest()
    (ws.landing / "product_usage" / "empty.csv").write_bytes(b"")
    proc = ws.lendseg("run", "--demo", check=False)
    assert proc.returncode == 1 and "empty.csv" in proc.stderr and "non_empty" in proc.stderr
    assert hashlib.sha256(ws.warehouse.read_bytes()).hexdigest() == before
    out = ws.lendseg("quality").stdout
    assert "empty.csv" in out
    assert (ws.data / "rejected" / "empty.csv.error.json").exists()
    # the rejected file is not retried: the next run (the audit test's, with the file still there) succeeds
    STATE["rejected_empty_file"] = ws.landing / "product_usage" / "empty.csv"


def test_audit_schema_and_quality_command(ws: Workspace) -> None:
    bad = ws.landing / "clients" / "clients_bad_rows.csv"
    _add_clients(ws, bad.name, 150, 100)
    lines = bad.read_text(encoding="utf-8").splitlines()
    cols = lines[0].split(",")
    i = cols.index("employee_count")
    row = next(csv.reader([lines[5]]))
    row[i] = "-3"
    lines[5] = ",".join(f'"{v}"' if "," in v else v for v in row)
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # The failed-run test's rejected file is still in the landing folder: it is not retried, this run succeeds.
    assert "rejected_empty_file" in STATE, "runs after test_failed_run_records_failure_in_audit_store_but_not_..."
    assert STATE["rejected_empty_file"].exists()
    STATE["versions_before_keep_run"] = [v.name for v in _versions(ws)]
    ws.lendseg("run", "--demo", LENDSEG_PUBLISH_KEEP="2")  # test_only_the_last_n_versions_are_kept reads the result
    con = duckdb.connect(str(ws.warehouse), read_only=True)
    q = con.execute(
        "SELECT rule, row_number, length(record_key) FROM audit.quarantined_rows "
        "WHERE source_file = 'clients_bad_rows.csv'"
    ).fetchall()
    assert q == [("range:employee_count", 5, 64)]
    n = con.execute(
        "SELECT count(*) FROM audit.data_quality_results WHERE NOT success AND rule = 'range:employee_count'"
    ).fetchone()[0]
    assert n == 1
    assert (
        con.execute("SELECT count(*) FROM audit.data_quality_results WHERE suite = 'dagster_asset_check'").fetchone()[0]
        > 0
    )
    assert con.execute("SELECT count(*) FROM audit.publish_manifest").fetchone()[0] >= 2
    out = ws.lendseg("quality").stdout
    assert "range:employee_count" in out and "clients_bad_rows.csv" in out


def test_only_the_last_n_versions_are_kept(ws: Workspace) -> None:
    """The audit test's run is the one kept to LENDSEG_PUBLISH_KEEP=2 (issue 36: one run serves both): it wrote a
    third version and pruned the oldest; the current file is the newest version file, not a copy."""
    assert "versions_before_keep_run" in STATE, "runs after test_audit_schema_and_quality_command"
    before = STATE["versions_before_keep_run"]
    assert len(before) == 2  # + the run's own = 3 versions written, one over the limit
    versions = _versions(ws)
    assert len(versions) == 2
    assert versions[0].name == before[-1] and versions[-1].name not in before  # the oldest pruned, a new one kept
    assert versions[-1].stat().st_ino == ws.warehouse.stat().st_ino
