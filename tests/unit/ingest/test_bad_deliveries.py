"""Catalogue of bad deliveries, each with its asserted outcome (loaded, quarantined, held, skipped, rejected)."""

from datetime import date
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.ingest.landing import DeliveryRejected, ensure_raw_schema, pending_deliveries
from dagster_project.defs.ingest.loading import Context, ingest_delivery, release_held
from dagster_project.lib import audit
from dagster_project.lib.pseudonymise import pseudonymise

KEY = "catalogue-key"

CLIENT_COLS = (
    "client_id,legal_name,registration_no,contact_email,contact_phone,industry_code,province_code,"
    "registered_capital,employee_count,annual_revenue,total_assets,founded_date,onboarding_date,"
    "relationship_status,updated_at"
)
BUREAU_COLS = (
    "report_id,client_id,report_date,bureau_score,total_debt,overdue_amount,max_days_past_due_12m,defaults_5y,"
    "inquiries_6m,collateral_value,operating_cash_flow,debt_service_12m,current_ratio,debt_to_equity,legal_judgments"
)
USAGE_COLS = (
    "snapshot_month,account_id,client_id,product_code,credit_limit,outstanding_balance,drawdown_amount,"
    "repayment_amount,days_past_due,interaction_count,channel"
)


def client(i: int, **over: str) -> dict:
    row = dict(
        client_id=f"CL{i:05d}",
        legal_name=f"甲{i}有限公司",
        registration_no=f"91310000MA{i:08d}",
        contact_email=f"c{i}@x.cn",
        contact_phone=f"138{i:08d}",
        industry_code="C3411",
        province_code="31",
        registered_capital="1000000",
        employee_count="120",
        annual_revenue="5000000",
        total_assets="8000000",
        founded_date="2001-03-04",
        onboarding_date="2010-05-06",
        relationship_status="active",
        updated_at="2026-01-01 09:00:00",
    )
    return row | over


def report(i: int, **over: str) -> dict:
    row = dict(
        report_id=f"RP{i:06d}",
        client_id=f"CL{i:05d}",
        report_date="2026-06-30",
        bureau_score="720",
        total_debt="100000",
        overdue_amount="0",
        max_days_past_due_12m="0",
        defaults_5y="0",
        inquiries_6m="1",
        collateral_value="150000",
        operating_cash_flow="-2000",
        debt_service_12m="",
        current_ratio="1.2",
        debt_to_equity="0.8",
        legal_judgments="0",
    )
    return row | over


def usage(i: int, **over: str) -> dict:
    row = dict(
        snapshot_month="2026-09-01",
        account_id=f"AC{i:06d}",
        client_id=f"CL{i:05d}",
        product_code="term_loan",
        credit_limit="100000",
        outstanding_balance="50000",
        drawdown_amount="0",
        repayment_amount="1000",
        days_past_due="0",
        interaction_count="2",
        channel="branch",
    )
    return row | over


def csv_text(cols: str, rows: list[dict]) -> str:
    def cell(v: str) -> str:
        return f'"{v}"' if "," in v else v

    return "\n".join([cols] + [",".join(cell(r[c]) for c in cols.split(",")) for r in rows]) + "\n"


class Zone:
    def __init__(self, root: Path):
        self.root, self.landing = root, root / "landing"
        self.con = duckdb.connect(str(root / "build.duckdb"))
        ensure_raw_schema(self.con)

    def write(self, source: str, name: str, data: str | bytes) -> Path:
        p = self.landing / source / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        return p

    def run(self, source: str) -> dict:
        """Ingest pending deliveries of a source; returns outcome per file name."""
        ctx = Context(
            key=KEY,
            run_id="r",
            asset=f"raw_{source}",
            audit_dir=self.root / "audit",
            rejected_dir=self.root / "rejected",
            max_share=0.01,
            today=date(2026, 11, 26),
        )
        if source != "clients":
            release_held(self.con, source)
        todo, skipped = pending_deliveries(
            self.con, source, self.landing, audit.rejected_checksums(ctx.audit_dir, source)
        )
        out: dict = {line.split(":")[0]: ("skipped", line) for line in skipped}
        for d in todo:
            try:
                res = ingest_delivery(self.con, d, ctx)
                out[d.path.name] = ("loaded", res)
            except DeliveryRejected as e:
                out[d.path.name] = ("rejected", str(e))
        return out

    def count(self, table: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0]

    def quarantined(self) -> list[tuple]:
        sql = audit.read(self.root / "audit", audit.QUARANTINED)
        return (
            duckdb.connect()
            .execute(f"SELECT rule, row_number, record_key, masked_value FROM {sql} ORDER BY row_number")
            .fetchall()
            if sql
            else []
        )


@pytest.fixture()
def zone(tmp_path: Path) -> Zone:
    z = Zone(tmp_path)
    z.write("clients", "base.csv", csv_text(CLIENT_COLS, [client(i) for i in range(200)]))
    assert z.run("clients")["base.csv"][0] == "loaded"
    return z


def _clients(n: int = 200, start: int = 1000, bad: dict[int, dict] | None = None) -> str:
    return csv_text(CLIENT_COLS, [client(start + i, **(bad or {}).get(i, {})) for i in range(n)])


# --- rejected whole: (file content, expected rule) ---------------------------------------------------------------
REJECTED = {
    "zero_bytes": (b"", "non_empty"),
    "missing_column": (_clients().replace(",employee_count", "", 1), "missing_column"),
    "semicolon_delimiter": (_clients().replace(",", ";"), "missing_column"),
    "latin1_encoding": (
        _clients()
        .replace("甲1005有限公司", "Soci\u00e9t\u00e9")
        .encode("utf-8")
        .decode("utf-8")
        .encode("latin-1", "replace"),
        "encoding",
    ),
    "truncated_last_row": (_clients().rstrip("\n").rsplit(",", 6)[0] + "\n", "readable"),
    "too_many_bad_rows": (_clients(bad={i: {"employee_count": "-5"} for i in range(5)}), "quarantine_share"),
    "mixed_date_formats_everywhere": (
        _clients(bad={i: {"founded_date": "03/04/2001"} for i in range(0, 200, 2)}),
        "type",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_rejected_whole(zone: Zone, case: str) -> None:
    data, rule = REJECTED[case]
    before = zone.count("clients")
    zone.write("clients", f"{case}.csv", data)
    outcome, msg = zone.run("clients")[f"{case}.csv"]
    assert outcome == "rejected" and f"{case}.csv" in msg and f"rule '{rule}'" in msg, msg
    assert zone.count("clients") == before, "nothing of a rejected delivery is loaded"
    assert (zone.root / "rejected" / f"{case}.csv.error.json").exists()
    assert "CL01" not in msg and "甲" not in msg  # no clear identifier in messages
    assert zone.run("clients") == {f"{case}.csv": ("skipped", zone.run("clients")[f"{case}.csv"][1])}


# --- loaded minus quarantined rows: (source, content, expected rule, expected bad row numbers) -----------------------
QUARANTINED = {
    "thousand_separator": ("clients", _clients(bad={7: {"annual_revenue": "5,000,000"}}), "type:annual_revenue", [8]),
    "mixed_date_format_one_row": (
        "clients",
        _clients(bad={3: {"founded_date": "03/04/2001"}}),
        "type:founded_date",
        [4],
    ),
    "impossible_date": ("clients", _clients(bad={9: {"onboarding_date": "2024-02-30"}}), "type:onboarding_date", [10]),
    "negative_amount": ("clients", _clients(bad={0: {"total_assets": "-1"}}), "range:total_assets", [1]),
    "founded_after_onboarding": (
        "clients",
        _clients(bad={5: {"founded_date": "2012-01-01"}}),
        "date_order:founded_date<=onboarding_date",
        [6],
    ),
    "duplicate_key_in_file": (
        "clients",
        _clients(bad={11: {"client_id": "CL01010"}}),
        "unique_key:client_key",
        [11, 12],
    ),
    "bad_industry_code": ("clients", _clients(bad={2: {"industry_code": "Z99"}}), "pattern:industry_code", [3]),
    "future_report": (
        "credit_bureau",
        csv_text(BUREAU_COLS, [report(i, **({"report_date": "2027-03-31"} if i == 4 else {})) for i in range(150)]),
        "range:report_date",
        [5],
    ),
    "unknown_product": (
        "product_usage",
        csv_text(USAGE_COLS, [usage(i, **({"product_code": "crypto_loan"} if i == 0 else {})) for i in range(150)]),
        "accepted:product_code",
        [1],
    ),
    # issue 12, the poison pill: 1e40 used to pass as a DOUBLE, then broke dbt's DECIMAL(28,6) cast on every run
    "poison_pill_revenue": ("clients", _clients(bad={4: {"annual_revenue": "1e40"}}), "range:annual_revenue", [5]),
    "infinite_assets": ("clients", _clients(bad={6: {"total_assets": "inf"}}), "range:total_assets", [7]),
    "nan_limit": (
        "product_usage",
        csv_text(USAGE_COLS, [usage(i, **({"credit_limit": "NaN"} if i == 3 else {})) for i in range(150)]),
        "range:credit_limit",
        [4],
    ),
    "future_updated_at": ("clients", _clients(bad={8: {"updated_at": "2031-01-01 00:00:00"}}), "range:updated_at", [9]),
    "score_out_of_range": (
        "credit_bureau",
        csv_text(BUREAU_COLS, [report(i, **({"bureau_score": "990"} if i == 1 else {})) for i in range(150)]),
        "range:bureau_score",
        [2],
    ),
}


@pytest.mark.parametrize("case", sorted(QUARANTINED))
def test_bad_rows_quarantined_rest_loaded(zone: Zone, case: str) -> None:
    source, data, rule, rows = QUARANTINED[case]
    before = zone.count(source)
    zone.write(source, f"{case}.csv", data)
    outcome, res = zone.run(source)[f"{case}.csv"]
    assert outcome == "loaded", res
    assert res.rows_quarantined == len(rows) and res.rows_loaded == res.rows_in_file - len(rows)
    assert zone.count(source) == before + res.rows_loaded
    q = zone.quarantined()
    assert {r[0] for r in q} == {rule} and [r[1] for r in q] == rows
    assert all(len(r[2]) == 64 for r in q), "rows are named by pseudonymous key"
    text = repr(q) + " ".join(res.warnings)
    assert "CL0" not in text and "AC0" not in text and "5,000,000" not in text


def test_injection_like_name_is_inert(zone: Zone) -> None:
    zone.write("clients", "inject.csv", _clients(n=3, bad={0: {"legal_name": "x'); DROP TABLE raw.clients; --"}}))
    assert zone.run("clients")["inject.csv"][0] == "loaded"
    assert zone.count("clients") == 203


def test_bom_is_accepted(zone: Zone) -> None:
    zone.write("clients", "bom.csv", b"\xef\xbb\xbf" + _clients(n=5).encode("utf-8"))
    assert zone.run("clients")["bom.csv"][0] == "loaded"
    assert zone.count("clients") == 205


def test_same_content_other_name_is_skipped(zone: Zone) -> None:
    zone.write("clients", "again.csv", (zone.landing / "clients" / "base.csv").read_bytes())
    outcome, line = zone.run("clients")["again.csv"]
    assert outcome == "skipped" and "same content as base.csv" in line
    assert zone.count("clients") == 200


def test_orphans_are_held_then_released_when_client_arrives(zone: Zone) -> None:
    rows = [usage(i) for i in range(100)] + [usage(900 + i, client_id=f"CL{5000 + i:05d}") for i in range(3)]
    zone.write("product_usage", "u.csv", csv_text(USAGE_COLS, rows))
    outcome, res = zone.run("product_usage")["u.csv"]
    assert outcome == "loaded" and res.rows_held == 3 and res.rows_loaded == 100
    assert zone.count("product_usage_held") == 3
    zone.write("clients", "late.csv", csv_text(CLIENT_COLS, [client(5000 + i) for i in range(3)]))
    zone.run("clients")
    zone.run("product_usage")
    assert zone.count("product_usage_held") == 0 and zone.count("product_usage") == 103
    key = pseudonymise(KEY, "CL05000")
    assert zone.con.execute("SELECT count(*) FROM raw.product_usage WHERE client_key = ?", [key]).fetchone()[0] == 1


def test_parquet_with_unparseable_values_is_rejected(zone: Zone) -> None:
    con = duckdb.connect()
    p = zone.landing / "clients" / "bad.parquet"
    rows = [client(3000 + i, employee_count=("many" if i < 10 else "12")) for i in range(50)]
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES "
        + ",".join("(" + ",".join("'" + r[c] + "'" for c in CLIENT_COLS.split(",")) + ")" for r in rows)
        + ") v("
        + CLIENT_COLS
        + ")"
    )
    con.execute(f"COPY t TO '{p}' (FORMAT parquet)")
    outcome, msg = zone.run("clients")["bad.parquet"]
    assert outcome == "rejected" and "type" in msg and "employee_count" in msg


def test_real_giant_passes(zone: Zone) -> None:
    """The largest real Chinese corporates stay inside the contract's amount ceiling (contract.AMOUNT_CEILING_CNY)."""
    giant = client(
        7000,
        total_assets="44697000000000.00",
        annual_revenue="3864000000000.00",
        registered_capital="356400000000.00",
        employee_count="870000",
    )  # ICBC assets, State Grid revenue
    zone.write("clients", "giant.csv", csv_text(CLIENT_COLS, [giant]))
    outcome, res = zone.run("clients")["giant.csv"]
    assert outcome == "loaded" and res.rows_loaded == 1 and res.rows_quarantined == 0


def test_header_only_delivery_is_accepted_as_nothing_new(zone: Zone) -> None:
    """issue 12: an upstream system with nothing new today delivers the header only - a warning, not a rejection."""
    zone.write("clients", "nothing_today.csv", CLIENT_COLS + "\n")
    outcome, res = zone.run("clients")["nothing_today.csv"]
    assert outcome == "loaded" and res.rows_in_file == 0 and res.rows_loaded == 0
    assert any("has_rows" in w and "nothing new" in w for w in res.warnings)
    assert zone.count("clients") == 200
    status = zone.con.execute("SELECT status FROM raw._deliveries WHERE file_name = 'nothing_today.csv'").fetchone()
    assert status == ("empty",)
    sql = audit.read(zone.root / "audit", audit.DQ_RESULTS)
    row = duckdb.connect().execute(f"SELECT severity, success FROM {sql} WHERE rule = 'has_rows'").fetchone()
    assert row == ("warning", False)
    assert not (zone.root / "rejected" / "nothing_today.csv.error.json").exists()


def test_file_of_strangers_is_rejected_as_a_mix_up(zone: Zone) -> None:
    """issue 12: every client_id unknown (a file from the wrong system): rejected, with count and share."""
    rows = [usage(i, client_id=f"ZZ{i:06d}") for i in range(50)]
    zone.write("product_usage", "strangers.csv", csv_text(USAGE_COLS, rows))
    outcome, msg = zone.run("product_usage")["strangers.csv"]
    assert outcome == "rejected" and "rule 'orphan_share'" in msg and "50 of 50 rows (100.00%)" in msg, msg
    assert "20.00%" in msg and "ZZ0" not in msg
    assert zone.count("product_usage") == 0 and zone.count("product_usage_held") == 0, "nothing of it is kept"


def test_orphans_below_the_share_warn_with_count_and_share(zone: Zone) -> None:
    rows = [report(i) for i in range(90)] + [report(900 + i, client_id=f"CL{6000 + i:05d}") for i in range(10)]
    zone.write("credit_bureau", "b.csv", csv_text(BUREAU_COLS, rows))
    outcome, res = zone.run("credit_bureau")["b.csv"]
    assert outcome == "loaded" and res.rows_held == 10
    assert any("orphans_held: 10 of 100 rows (10.00%) held for unknown clients" in w for w in res.warnings), (
        res.warnings
    )


def test_held_rows_raise_a_warning_alert_with_count_and_share(tmp_path: Path) -> None:
    import json
    from types import SimpleNamespace

    from dagster_project.defs.ingest.assets import _alert_held
    from dagster_project.lib.settings import load_settings

    logged: list[str] = []
    ctx = SimpleNamespace(
        run=SimpleNamespace(job_name="daily_refresh"), run_id="run-x", log=SimpleNamespace(warning=logged.append)
    )
    s = load_settings().__class__(
        data_dir=tmp_path,
        landing_dir=tmp_path,
        warehouse_path=tmp_path / "w.duckdb",
        build_path=tmp_path / "b.duckdb",
        memory_limit="1GB",
        threads=1,
    )
    _alert_held(
        ctx,
        s,
        "raw_product_usage",
        {"held": 10, "in_files": 100},
        ["u.csv: orphans_held: 10 of 100 rows (10.00%) held for unknown clients"],
    )
    [path] = (tmp_path / "audit" / "pipeline_alerts").glob("*.jsonl")
    alert = json.loads(path.read_text())
    assert alert["severity"] == "WARNING" and "10 of 100 delivered rows (10.00%)" in alert["error_summary"]
    assert logged and "ALERT" in logged[0]


# --- contract v1.1: the optional facility terms ------------------------------------------------------------------
USAGE_V11_COLS = USAGE_COLS + ",term_months,security_type"


def test_v1_usage_file_without_the_terms_stays_valid_and_v11_terms_load(zone: Zone) -> None:
    zone.write("product_usage", "v1.csv", csv_text(USAGE_COLS, [usage(i) for i in range(100)]))
    rows = [usage(i, account_id=f"AC9{i:05d}", term_months="60", security_type="mortgage") for i in range(100, 200)]
    zone.write("product_usage", "v11.csv", csv_text(USAGE_V11_COLS, rows))
    out = zone.run("product_usage")
    assert out["v1.csv"][0] == "loaded" and out["v11.csv"][0] == "loaded"
    got = zone.con.execute(
        "SELECT count(*) FILTER (WHERE term_months IS NULL AND security_type IS NULL), "
        "count(*) FILTER (WHERE term_months = 60 AND security_type = 'mortgage') "
        "FROM raw.product_usage"
    ).fetchone()
    assert got == (100, 100)


def test_bad_facility_terms_are_quarantined_like_any_row_rule(zone: Zone) -> None:
    rows = [usage(i, term_months="36", security_type="pledge") for i in range(200)]
    rows[3]["term_months"], rows[7]["security_type"] = "900", "collateralised"
    zone.write("product_usage", "terms.csv", csv_text(USAGE_V11_COLS, rows))
    assert zone.run("product_usage")["terms.csv"][0] == "loaded"
    assert [(r[0], r[1]) for r in zone.quarantined()] == [("range:term_months", 4), ("accepted:security_type", 8)]
    assert zone.count("product_usage") == 198


def test_a_build_made_under_v1_gains_the_terms_in_place(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    con.execute("CREATE SCHEMA raw")
    v1 = ", ".join(
        f'"{c}" VARCHAR'
        for c in USAGE_COLS.replace("account_id", "account_key").replace("client_id", "client_key").split(",")
    )
    con.execute(
        f"CREATE TABLE raw.product_usage ({v1}, _source_file VARCHAR, _source_checksum VARCHAR, "
        "_source_row BIGINT, _ingested_at TIMESTAMP)"
    )
    con.execute(
        "INSERT INTO raw.product_usage (snapshot_month, account_key, client_key, _source_file, _source_row) "
        "VALUES ('2026-01-01', 'a', 'c', 'old.csv', 1)"
    )
    ensure_raw_schema(con)
    cols = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE schema_name = 'raw' AND "
            "table_name = 'product_usage' ORDER BY column_index"
        ).fetchall()
    ]
    assert cols.index("security_type") == cols.index("channel") + 2 < cols.index("_source_file"), cols
    assert con.execute(
        "SELECT account_key, term_months, _source_file, _source_row FROM raw.product_usage"
    ).fetchall() == [("a", None, "old.csv", 1)]
