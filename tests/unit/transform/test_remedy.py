"""A blocking dbt test that fails because of delivered rows: named in the error, fixed by one command.

The contract's ranges make dbt casts unbreakable, so the test uses a business rule stricter than the contract,
added to a copy of the dbt project: a singular test (failing rows carry client_key) and a generic column test
(failing rows carry only the value; remedy.py looks the keys up in the tested model).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from contract_deliveries import to_csv
from scratch_warehouse import KEY, base_warehouse

from dagster_project.defs.ingest.contract import SOURCES
from dagster_project.defs.ingest.remedy import command, dbt_failure_report, pending_remedies
from dagster_project.lib import audit
from dagster_project.lib.pseudonymise import pseudonymise
from dagster_project.lib.settings import DBT_PROJECT_DIR

LENDSEG = str(Path(sys.executable).parent / "lendseg")
SINGULAR = "select client_key, annual_revenue from {{ ref('stg_crm__clients') }} where annual_revenue > 5e13\n"


def _strict_project(root: Path) -> Path:
    """The dbt project plus two business rules stricter than the landing contract."""
    proj = root / "dbt_strict"
    shutil.copytree(DBT_PROJECT_DIR, proj, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (proj / "tests" / "assert_revenue_below_50_trillion.sql").write_text(SINGULAR)
    yml = proj / "models" / "staging" / "crm" / "_crm__models.yml"
    text = yml.read_text()
    assert "      - name: employee_count\n" in text
    yml.write_text(
        text.replace(
            "      - name: employee_count\n",
            "      - name: employee_count\n        data_tests:\n"
            "          - value_in_range:\n              arguments: {max_value: 5000000}\n",
            1,
        )
    )
    return proj


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("remedy")
    sc = base_warehouse(root, clients=60, months=2)
    before = sc.con.execute(
        "SELECT annual_revenue, employee_count FROM raw.clients WHERE client_key = ?", [pseudonymise(KEY, "CL00000001")]
    ).fetchone()
    header = [c.name for c in SOURCES["clients"].columns]
    row = dict(
        zip(
            header,
            [
                "CL00000001",
                "甲公司",
                "91310000MA1FL1234X",
                "a@b.cn",
                "13800000000",
                "C3411",
                "31",
                "1000000",
                "6000000",
                "90000000000000",
                "8000000",
                "2001-03-04",
                "2010-05-06",
                "active",
                "2026-11-20 09:00:00",
            ],
            strict=False,
        )
    )
    sc.write("clients", "update.csv", to_csv(header, [row]))
    res = sc.ingest("clients")["update.csv"]
    assert res.rows_loaded == 1 and res.rows_quarantined == 0, "within the contract: loaded"
    proj = _strict_project(root)
    rc, results, _ = sc.dbt_build(project_dir=proj)
    assert rc != 0
    shutil.copytree(root / "dbt_target", root / "dbt_target_failed")  # the next build overwrites run_results.json
    manifest = __import__("json").loads((root / "dbt_target" / "manifest.json").read_text())
    msg = dbt_failure_report(sc.con, root / "remedies", "RUN1", results, manifest)
    yield sc, root, proj, msg, before
    sc.close()


def test_failure_names_stage_rule_file_rows_and_the_command(failed) -> None:
    sc, root, _, msg, _ = failed
    key = pseudonymise(KEY, "CL00000001")
    assert "stage 'dbt'" in msg and "assert_revenue_below_50_trillion" in msg
    assert "value_in_range_stg_crm__clients_employee_count" in msg
    assert "clients file update.csv row 1" in msg and key[:12] in msg
    assert command("RUN1") in msg
    assert "CL00000001" not in msg and "甲公司" not in msg
    assert pending_remedies(root / "remedies", "RUN1")


def test_dbt_step_failure_message_is_the_report(failed) -> None:
    """transform._failure_report (what the dbt asset raises as dg.Failure) gives the same traced report."""
    import json
    from types import SimpleNamespace

    from dagster_project.defs.transform.assets import _failure_report
    from dagster_project.lib.settings import load_settings

    sc, root, *_ = failed
    sc.close_ctx()
    sc.con.close()
    target = root / "dbt_target_failed"
    invocation = SimpleNamespace(
        get_artifact=lambda name: json.loads((target / name).read_text()),
        manifest=json.loads((target / "manifest.json").read_text()),
    )
    settings = load_settings().__class__(
        data_dir=root,
        landing_dir=root / "landing",
        warehouse_path=root / "w.duckdb",
        build_path=sc.build,
        memory_limit="1GB",
        threads=1,
    )
    msg = _failure_report(settings, "RUN2", invocation)
    sc.con = duckdb.connect(str(sc.build))
    assert command("RUN2") in msg and "update.csv" in msg, msg


def test_quarantine_command_restores_previous_version_and_next_build_passes(failed) -> None:
    sc, root, proj, _, before = failed
    sc.close_ctx()
    sc.con.close()
    env = {"LENDSEG_DATA_DIR": str(root), "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.run([LENDSEG, "quarantine", "--run", "RUN1"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 raw rows quarantined" in proc.stdout and "1 earlier versions restored" in proc.stdout, proc.stdout
    sc.con = duckdb.connect(str(sc.build))
    key = pseudonymise(KEY, "CL00000001")
    assert (
        sc.con.execute("SELECT annual_revenue, employee_count FROM raw.clients WHERE client_key = ?", [key]).fetchone()
        == before
    ), "the client's previous version is back"
    q = (
        duckdb.connect()
        .execute(
            f"SELECT rule, source_file, row_number, record_key FROM "
            f"{audit.read(root / 'audit', audit.QUARANTINED)} WHERE rule LIKE 'later:%'"
        )
        .fetchall()
    )
    assert {r[1:] for r in q} == {("update.csv", 1, key)} and all(r[0].startswith("later:dbt:") for r in q)
    rc, results, tail = sc.dbt_build(project_dir=proj)
    assert rc == 0, tail
    again = subprocess.run([LENDSEG, "quarantine", "--run", "RUN1"], capture_output=True, text=True, env=env)
    assert again.returncode == 1 and "already applied" in again.stderr


def test_failing_feature_rule_is_traced_to_the_usage_rows_of_its_client(tmp_path: Path) -> None:
    """Blocking GX check client_features_valid: utilisation above 5 traced to the client's latest usage file."""
    from dagster_project.defs.ingest.landing import ensure_raw_schema
    from dagster_project.defs.ingest.remedy import feature_failures
    from dagster_project.defs.ingest.suites import client_features_rules

    con = duckdb.connect(str(tmp_path / "b.duckdb"))
    ensure_raw_schema(con)
    con.execute("CREATE SCHEMA marts")
    con.execute(
        "CREATE TABLE marts.client_features AS SELECT * FROM (VALUES ('k1', 9.5), ('k2', 0.4)) "
        "v(client_key, current_utilisation)"
    )
    for f, ts in (("u_old.csv", "2026-01-01"), ("u_new.csv", "2026-02-01")):
        con.execute(
            "INSERT INTO raw.product_usage (snapshot_month, account_key, client_key, product_code, "
            "_source_file, _source_checksum, _source_row, _ingested_at) VALUES "
            f"(DATE '{ts}', 'a1', 'k1', 'term_loan', '{f}', 'c-{f}', 3, TIMESTAMP '{ts}')"
        )
    rule = next(r for r in client_features_rules() if r.name == "range:current_utilisation")
    [failure] = feature_failures(con, [rule])
    assert failure["rule"] == "range:current_utilisation" and failure["failures"] == 1
    assert [(r["source"], r["source_file"], r["row"]) for r in failure["rows"]] == [("product_usage", "u_new.csv", 3)]
