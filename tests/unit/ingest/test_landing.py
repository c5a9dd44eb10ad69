"""Loading one delivery into the raw layer: upserts, idempotence, structural rejections (no Dagster)."""

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.ingest.landing import DeliveryRejected, check_key_id, ensure_raw_schema, pending_deliveries
from dagster_project.defs.ingest.loading import Context, ingest_delivery
from dagster_project.lib import audit
from dagster_project.lib.pseudonymise import pseudonymise
from dagster_project.lib.settings import ConfigError

KEY = "unit-test-key"
HEADER = (
    "client_id,legal_name,registration_no,contact_email,contact_phone,industry_code,province_code,"
    "registered_capital,employee_count,annual_revenue,total_assets,founded_date,onboarding_date,"
    "relationship_status,updated_at"
)


def client_row(cid: str, employees: str = "120", updated: str = "2026-01-01 09:00:00", name: str = "甲公司") -> str:
    return (
        f"{cid},{name},91310000MA1FL1234X,x@y.cn,13800000000,C3411,31,1000000,{employees},5000000,"
        f"8000000,2001-03-04,2010-05-06,active,{updated}"
    )


def make_ctx(root: Path, max_share: float = 0.01) -> Context:
    return Context(
        key=KEY,
        run_id="run-1",
        asset="raw_clients",
        audit_dir=root / "audit",
        rejected_dir=root / "rejected",
        max_share=max_share,
        today=date(2026, 11, 26),
    )


@pytest.fixture()
def env(tmp_path: Path):
    landing = tmp_path / "landing"
    (landing / "clients").mkdir(parents=True)
    con = duckdb.connect(str(tmp_path / "build.duckdb"))
    ensure_raw_schema(con)
    yield con, landing, tmp_path
    con.close()


def deliver(landing: Path, name: str, lines: list[str], header: str = HEADER) -> Path:
    p = landing / "clients" / name
    p.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return p


def load_all(con, landing: Path, root: Path, max_share: float = 0.01) -> list[str]:
    errors = []
    todo, _ = pending_deliveries(con, "clients", landing, audit.rejected_checksums(root / "audit", "clients"))
    for d in todo:
        try:
            ingest_delivery(con, d, make_ctx(root, max_share))
        except DeliveryRejected as e:
            errors.append(str(e))
    return errors


def test_load_pseudonymises_and_drops_pii(env) -> None:
    con, landing, root = env
    deliver(landing, "c1.csv", [client_row("CL1"), client_row("CL2")])
    assert load_all(con, landing, root) == []
    cols = [r[0] for r in con.execute("DESCRIBE raw.clients").fetchall()]
    assert "client_key" in cols and not {"client_id", "legal_name", "registration_no", "contact_email"} & set(cols)
    keys = {r[0] for r in con.execute("SELECT client_key FROM raw.clients").fetchall()}
    assert keys == {pseudonymise(KEY, "CL1"), pseudonymise(KEY, "CL2")}


def test_same_content_under_another_name_is_skipped(env) -> None:
    con, landing, root = env
    p = deliver(landing, "c1.csv", [client_row("CL1")])
    load_all(con, landing, root)
    (landing / "clients" / "copy_of_c1.csv").write_bytes(p.read_bytes())
    todo, skipped = pending_deliveries(con, "clients", landing)
    assert todo == [] and "copy_of_c1.csv: same content as c1.csv" in skipped[0]


def test_newest_updated_at_wins_regardless_of_file_order(env) -> None:
    con, landing, root = env
    deliver(landing, "a.csv", [client_row("CL1", employees="500", updated="2026-03-01 00:00:00")])
    load_all(con, landing, root)
    deliver(landing, "b.csv", [client_row("CL1", employees="10", updated="2026-01-01 00:00:00"), client_row("CL2")])
    load_all(con, landing, root)
    rows = dict(con.execute("SELECT client_key, employee_count FROM raw.clients").fetchall())
    assert rows[pseudonymise(KEY, "CL1")] == 500 and len(rows) == 2


@pytest.mark.parametrize(
    "header,lines,rule,column",
    [
        (
            HEADER.replace(",employee_count", ""),
            [client_row("CL1").replace(",120,", ",", 1)],
            "missing_column",
            "employee_count",
        ),
        (HEADER, [client_row("CL1", employees="12x"), client_row("CL2")], "type", "employee_count"),
        (HEADER, [client_row("CL1", updated="")], "required", "updated_at"),
        (HEADER, [client_row("CL1"), client_row("CL1")], "unique_key", "client_key"),
        (HEADER.replace(",", ";"), [client_row("CL1").replace(",", ";")], "missing_column", "client_id"),
    ],
)
def test_structural_breach_rejects_whole_file(env, header, lines, rule, column) -> None:
    con, landing, root = env
    deliver(landing, "bad.csv", lines, header=header)
    errors = load_all(con, landing, root)
    assert len(errors) == 1 and "bad.csv" in errors[0] and f"rule '{rule}'" in errors[0]
    if column:
        assert f"column '{column}'" in errors[0]
    assert con.execute("SELECT count(*) FROM raw.clients").fetchone()[0] == 0
    report = json.loads((root / "rejected" / "bad.csv.error.json").read_text())
    assert rule in {b["rule"] for b in report["breaches"]}
    assert "bad.csv" in audit.rejected_checksums(root / "audit", "clients").values()
    # never retried while its content is unchanged
    assert pending_deliveries(con, "clients", landing, audit.rejected_checksums(root / "audit", "clients"))[0] == []


def test_rejection_names_rows_by_number_and_key_never_clear_id(env) -> None:
    con, landing, root = env
    deliver(landing, "bad.csv", [client_row("CL1"), client_row("SECRET42", employees='"1,200"')])
    msg = load_all(con, landing, root)[0]
    assert "row 2" in msg and pseudonymise(KEY, "SECRET42")[:12] in msg
    assert "SECRET42" not in msg and "甲公司" not in msg and "1,200" not in msg
    assert "SECRET42" not in (root / "rejected" / "bad.csv.error.json").read_text()


def test_unreadable_file_is_rejected(env) -> None:
    con, landing, root = env
    (landing / "clients" / "latin1.csv").write_bytes(
        (HEADER + "\n" + client_row("CL1", name="Soci\xe9t\xe9")).encode("latin-1")
    )
    (landing / "clients" / "empty.csv").write_bytes(b"")
    errors = load_all(con, landing, root)
    assert len(errors) == 2 and all("rejected" in e for e in errors)
    assert con.execute("SELECT count(*) FROM raw.clients").fetchone()[0] == 0


def test_key_id_mismatch_is_refused(env) -> None:
    con, _, _ = env
    check_key_id(con, "aaaa")
    check_key_id(con, "aaaa")
    with pytest.raises(ConfigError, match="key id"):
        check_key_id(con, "bbbb")
