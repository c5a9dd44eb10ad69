"""Tests for the demo-data generator (dagster_project/tools/demo/)."""

from __future__ import annotations

import csv
import hashlib
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import dagster_project.tools.demo.accounts as gen
from dagster_project.lib.settings import PROJECT_ROOT
from dagster_project.tools.demo.generate import (
    ARCHETYPES,
    BUREAU_COLUMNS,
    CHANNELS,
    CLIENT_COLUMNS,
    PRODUCTS,
    PROVINCE_CODES,
    STATUSES,
    USAGE_COLUMNS,
    generate,
)

SEEDS = PROJECT_ROOT / "dbt" / "seeds"
END_MONTH = date(2026, 10, 1)
MONTHS = 18
N_CLIENTS = 2000
SOURCES = ("clients", "credit_bureau", "product_usage")
COLUMNS = {"clients": CLIENT_COLUMNS, "credit_bureau": BUREAU_COLUMNS, "product_usage": USAGE_COLUMNS}


def _read(files: list[Path], fmt: str) -> pd.DataFrame:
    paths = [str(p) for p in files]
    if fmt == "parquet":
        return duckdb.sql(f"SELECT * FROM read_parquet({paths})").df()
    return duckdb.sql(f"SELECT * FROM read_csv({paths}, header=true, all_varchar=true)").df()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("gen")
    truth = root / "truth" / "truth.csv"
    files = generate(
        root / "out", n_clients=N_CLIENTS, months=MONTHS, seed=7, truth_path=truth, end_month=END_MONTH, progress=False
    )
    con = duckdb.connect()
    for source, paths in files.items():
        con.execute(f"CREATE TABLE {source} AS SELECT * FROM read_csv({[str(p) for p in paths]}, header=true)")
    con.execute(f"CREATE TABLE truth AS SELECT * FROM read_csv('{truth}', header=true)")
    return {"root": root, "files": files, "truth": truth, "con": con}


def _con(dataset: dict[str, object]) -> duckdb.DuckDBPyConnection:
    con = dataset["con"]
    assert isinstance(con, duckdb.DuckDBPyConnection)
    return con


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    row = con.execute(sql).fetchone()
    assert row is not None
    return row[0]


# --------------------------------------------------------------------------------------
# Files and schema
# --------------------------------------------------------------------------------------


def test_file_layout_csv(dataset: dict[str, object]) -> None:
    files = dataset["files"]
    assert isinstance(files, dict)
    out = dataset["root"] / "out"  # type: ignore[operator]
    assert [p.name for p in files["clients"]] == ["clients_202610.csv"]
    # 18 months ending 2026-10 -> 2025-05 .. 2026-10; quarter ends 06, 09, 12, 03, 06, 09.
    assert [p.name for p in files["product_usage"]][0] == "product_usage_202505.csv"
    assert [p.name for p in files["product_usage"]][-1] == "product_usage_202610.csv"
    assert len(files["product_usage"]) == MONTHS
    assert [p.name[-10:-4] for p in files["credit_bureau"]] == [
        "202506",
        "202509",
        "202512",
        "202603",
        "202606",
        "202609",
    ]
    for source in SOURCES:
        for path in files[source]:
            assert path.parent == out / source and path.exists()
    assert sorted(p.name for p in (out / "product_usage").iterdir()) == sorted(p.name for p in files["product_usage"])


def test_csv_columns_encoding_and_formats(dataset: dict[str, object]) -> None:
    files = dataset["files"]
    assert isinstance(files, dict)
    for source in SOURCES:
        for path in files[source]:
            with path.open(encoding="utf-8", newline="") as fh:
                assert next(csv.reader(fh)) == list(COLUMNS[source])
    with files["clients"][0].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == N_CLIENTS
    assert all(len(r["founded_date"]) == 10 and r["founded_date"][4] == "-" for r in rows)
    assert all(len(r["updated_at"]) == 19 and r["updated_at"][10] == " " for r in rows)
    # missing values are empty fields
    assert any(r["onboarding_date"] == "" for r in rows)
    assert any(r["contact_email"] == "" for r in rows)


def test_parquet_columns(tmp_path: Path) -> None:
    files = generate(
        tmp_path / "out", n_clients=400, months=12, seed=3, fmt="parquet", end_month=END_MONTH, progress=False
    )
    assert [p.name for p in files["clients"]] == ["clients_202610.parquet"]
    assert len(files["product_usage"]) == 12
    assert len(files["credit_bureau"]) == 4
    for source in SOURCES:
        for path in files[source]:
            assert path.suffix == ".parquet"
            cols = [d[0] for d in duckdb.sql(f"SELECT * FROM read_parquet('{path}')").description]
            assert cols == list(COLUMNS[source])
    usage = _read(files["product_usage"], "parquet")
    assert len(usage) > 0
    assert set(usage["product_code"]) <= set(PRODUCTS)


def test_invalid_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, n_clients=10, months=2, fmt="xlsx", progress=False)


# --------------------------------------------------------------------------------------
# Keys and domains
# --------------------------------------------------------------------------------------


def test_keys_unique(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    assert _scalar(con, "SELECT count(*) - count(DISTINCT client_id) FROM clients") == 0
    assert _scalar(con, "SELECT count(*) FROM clients") == N_CLIENTS
    assert _scalar(con, "SELECT count(*) - count(DISTINCT report_id) FROM credit_bureau") == 0
    assert _scalar(con, "SELECT count(*) - count(DISTINCT (account_id, snapshot_month)) FROM product_usage") == 0
    assert _scalar(con, "SELECT count(*) - count(DISTINCT legal_name) FROM clients") == 0
    assert _scalar(con, "SELECT count(*) - count(DISTINCT registration_no) FROM clients") == 0
    # account ids are stable per client and product
    assert (
        _scalar(
            con,
            "SELECT count(*) FROM (SELECT account_id FROM product_usage "
            "GROUP BY account_id HAVING count(DISTINCT client_id) > 1 "
            "OR count(DISTINCT product_code) > 1)",
        )
        == 0
    )
    # one report per client and quarter
    assert (
        _scalar(
            con,
            "SELECT count(*) FROM (SELECT client_id, date_trunc('quarter', "
            "report_date) q FROM credit_bureau GROUP BY ALL HAVING count(*) > 1)",
        )
        == 0
    )


def test_client_domains(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    df = con.execute("SELECT * FROM clients").df()
    assert df["client_id"].str.fullmatch(r"CL\d{8}").all()
    assert set(df["relationship_status"]) <= set(STATUSES)
    assert set(df["province_code"].astype(int)) <= set(PROVINCE_CODES)
    assert df["industry_code"].str.fullmatch(r"[A-T](\d{2,4})?").all()
    bare = df["industry_code"].str.len() == 1
    assert 0.01 < bare.mean() < 0.10
    assert df["legal_name"].str.contains(r"[\u4e00-\u9fff]").all()
    assert df["legal_name"].str.endswith("公司").all()
    assert df["contact_phone"].dropna().astype("int64").astype(str).str.fullmatch(r"1[3-9]\d{9}").all()
    assert 0.7 < df["contact_email"].notna().mean() < 0.9
    assert 0.7 < df["contact_phone"].notna().mean() < 0.9
    for col in ("registered_capital", "annual_revenue", "total_assets", "employee_count"):
        assert (df[col].dropna() >= 0).all()
    missing_size = df["employee_count"].isna() | df["annual_revenue"].isna()
    assert 0.005 < missing_size.mean() < 0.05
    assert df["updated_at"].notna().all()
    assert (df["updated_at"] < pd.Timestamp("2026-11-01")).all()
    prospects = df["relationship_status"] == "prospect"
    assert df.loc[prospects, "onboarding_date"].isna().all()
    assert df.loc[~prospects, "onboarding_date"].notna().all()
    assert (df.loc[~prospects, "onboarding_date"] >= df.loc[~prospects, "founded_date"]).all()
    assert (df["founded_date"] <= pd.Timestamp(END_MONTH)).all()
    assert {"active", "dormant", "closed", "prospect"} <= set(df["relationship_status"])


def _uscc_ok(code: str) -> bool:
    """Reference (scalar) check of GB 32100-2015 and the embedded GB 11714 org code."""
    charset = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    if len(code) != 18 or not all(c in charset for c in code):
        return False
    org = code[8:17]
    value = {c: int(c, 36) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}  # A=10 .. Z=35
    s = sum(value[c] * w for c, w in zip(org[:8], [3, 7, 9, 10, 5, 8, 4, 2], strict=False))
    c9 = 11 - s % 11
    if org[8] != {10: "X", 11: "0"}.get(c9, str(c9)):
        return False
    total = sum(charset.index(c) * pow(3, i, 31) for i, c in enumerate(code[:17]))
    return charset[(31 - total % 31) % 31] == code[17]


def test_registration_numbers(dataset: dict[str, object]) -> None:
    df = _con(dataset).execute("SELECT registration_no, province_code FROM clients").df()
    assert df["registration_no"].str.startswith("91").all()
    assert (df["registration_no"].str[2:4].astype(int) == df["province_code"].astype(int)).all()
    assert all(_uscc_ok(c) for c in df["registration_no"])
    assert _uscc_ok("91350100M000100Y43")  # a published real-world example


def test_usage_domains(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    df = con.execute("SELECT * FROM product_usage").df()
    assert df["account_id"].str.fullmatch(r"AC\d{9}").all()
    assert set(df["product_code"]) <= set(PRODUCTS)
    assert set(df["channel"]) <= set(CHANNELS)
    assert len(set(df["channel"])) == 3 and len(set(df["product_code"])) == len(PRODUCTS)
    months = pd.to_datetime(df["snapshot_month"])
    assert (months.dt.day == 1).all()
    assert months.min() == pd.Timestamp("2025-05-01") and months.max() == pd.Timestamp(END_MONTH)
    for col in (
        "credit_limit",
        "outstanding_balance",
        "drawdown_amount",
        "repayment_amount",
        "days_past_due",
        "interaction_count",
    ):
        assert (df[col] >= 0).all(), col
    util = df["outstanding_balance"] / df["credit_limit"]
    assert (util <= 1.0).mean() > 0.98


def test_bureau_domains(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    df = con.execute("SELECT * FROM credit_bureau").df()
    assert df["bureau_score"].between(300, 900).all()
    assert (df["report_date"] <= pd.Timestamp("2026-10-31")).all()
    assert (df["report_date"] >= pd.Timestamp("2025-06-01")).all()
    assert df["report_date"].dt.month.isin([3, 6, 9, 12]).all()
    for col in (
        "total_debt",
        "overdue_amount",
        "collateral_value",
        "max_days_past_due_12m",
        "defaults_5y",
        "inquiries_6m",
        "legal_judgments",
    ):
        assert (df[col] >= 0).all(), col
    assert (df["operating_cash_flow"] < 0).any()
    assert 0.6 < df["debt_service_12m"].notna().mean() < 0.8
    assert df["current_ratio"].isna().any() and df["debt_to_equity"].isna().any()
    # reports are never dated before the firm was founded
    assert (
        _scalar(
            con,
            "SELECT count(*) FROM credit_bureau b JOIN clients c USING (client_id) "
            "WHERE b.report_date < c.founded_date",
        )
        == 0
    )
    # bureau coverage: ~90 % of customers, ~40 % of prospects
    cov = (
        con.execute("""
        SELECT c.relationship_status = 'prospect' AS prospect,
               avg((b.client_id IS NOT NULL)::INT) AS share
        FROM clients c LEFT JOIN (SELECT DISTINCT client_id FROM credit_bureau) b USING (client_id)
        GROUP BY 1""")
        .df()
        .set_index("prospect")["share"]
    )
    assert 0.8 < cov[False] < 0.97
    assert 0.3 < cov[True] < 0.5


def test_usage_consistency_with_clients(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    assert (
        _scalar(
            con,
            "SELECT count(*) FROM product_usage u JOIN clients c USING (client_id) "
            "WHERE c.relationship_status = 'prospect'",
        )
        == 0
    )
    assert (
        _scalar(con, "SELECT count(*) FROM product_usage WHERE client_id NOT IN (SELECT client_id FROM clients)") == 0
    )
    # accounts never open before onboarding
    assert (
        _scalar(
            con,
            "SELECT count(*) FROM product_usage u JOIN clients c USING (client_id) "
            "WHERE u.snapshot_month < date_trunc('month', c.onboarding_date)",
        )
        == 0
    )
    # dormant clients: no balances or drawdowns in the last 6 months
    assert (
        _scalar(
            con,
            """
        SELECT count(*) FROM product_usage u JOIN clients c USING (client_id)
        WHERE c.relationship_status = 'dormant' AND u.snapshot_month >= DATE '2026-05-01'
          AND (u.outstanding_balance > 0 OR u.drawdown_amount > 0)""",
        )
        == 0
    )
    # active clients do have current accounts
    assert (
        _scalar(
            con,
            """
        SELECT avg((u.client_id IS NOT NULL)::INT) FROM clients c
        LEFT JOIN (SELECT DISTINCT client_id FROM product_usage
                   WHERE snapshot_month = DATE '2026-10-01') u USING (client_id)
        WHERE c.relationship_status = 'active'""",
        )
        > 0.99
    )


# --------------------------------------------------------------------------------------
# Determinism and truth
# --------------------------------------------------------------------------------------


def _digests(files: dict[str, list[Path]], root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for paths in files.values() for p in paths
    }


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_determinism(tmp_path: Path, fmt: str) -> None:
    kwargs = {"n_clients": 300, "months": 9, "fmt": fmt, "end_month": END_MONTH, "progress": False}
    a = _digests(generate(tmp_path / "a", seed=11, **kwargs), tmp_path / "a")
    b = _digests(generate(tmp_path / "b", seed=11, **kwargs), tmp_path / "b")
    c = _digests(generate(tmp_path / "c", seed=12, **kwargs), tmp_path / "c")
    assert a == b
    assert a.keys() == c.keys()
    assert all(a[k] != c[k] for k in a)


def test_truth(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    truth = dataset["truth"]
    out = dataset["root"] / "out"  # type: ignore[operator]
    assert isinstance(truth, Path)
    assert not truth.resolve().is_relative_to(out.resolve())
    assert not any(p.name == truth.name for p in out.rglob("*"))
    with truth.open(encoding="utf-8") as fh:
        assert fh.readline().strip() == "client_id,archetype"
    df = con.execute("SELECT * FROM truth").df()
    assert len(df) == N_CLIENTS and df["client_id"].is_unique
    shares = df["archetype"].value_counts(normalize=True)
    assert set(shares.index) == set(ARCHETYPES)
    assert (shares >= 0.03).all(), shares
    assert (
        _scalar(
            con,
            "SELECT count(*) FROM truth t JOIN clients c USING (client_id) "
            "WHERE (t.archetype = 'prospect') <> "
            "(c.relationship_status = 'prospect')",
        )
        == 0
    )


def test_truth_inside_out_dir_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate(tmp_path, n_clients=10, months=2, truth_path=tmp_path / "truth.csv", progress=False)


# --------------------------------------------------------------------------------------
# Plausibility and planted signals
# --------------------------------------------------------------------------------------


def test_size_correlations(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    df = con.execute("""
        SELECT c.employee_count, c.annual_revenue, u.max_limit
        FROM clients c LEFT JOIN (SELECT client_id, max(credit_limit) AS max_limit
                                  FROM product_usage GROUP BY 1) u USING (client_id)""").df()
    both = df.dropna(subset=["employee_count", "annual_revenue"])
    assert both["employee_count"].corr(both["annual_revenue"], method="spearman") > 0.5
    lim = df.dropna(subset=["employee_count", "max_limit"])
    assert lim["employee_count"].corr(lim["max_limit"], method="spearman") > 0.5


def test_arrears_fall_with_score(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    df = (
        con.execute("""
        WITH latest AS (
            SELECT client_id, arg_max(bureau_score, report_date) AS score
            FROM credit_bureau GROUP BY 1)
        SELECT CASE WHEN score < 600 THEN 'low' WHEN score >= 750 THEN 'high' END AS band,
               avg((u.days_past_due >= 30)::INT) AS arrears
        FROM product_usage u JOIN latest USING (client_id)
        WHERE score < 600 OR score >= 750 GROUP BY 1""")
        .df()
        .set_index("band")["arrears"]
    )
    assert df["low"] >= 2 * df["high"]
    assert df["low"] > 0.02


def _det_first_hits(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute("""
        SELECT t.client_id,
               min(u.snapshot_month) FILTER (WHERE u.days_past_due >= 90) AS first_90,
               min(u.snapshot_month) FILTER (WHERE u.days_past_due >= 30) AS first_30,
               min(u.snapshot_month) FILTER (WHERE u.outstanding_balance
                                             > 0.9 * u.credit_limit) AS first_high_util
        FROM truth t JOIN product_usage u USING (client_id)
        WHERE t.archetype = 'deteriorating' GROUP BY 1""").df()


def test_deteriorating_reach_90_dpd_late(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    n_det = _scalar(con, "SELECT count(*) FROM truth WHERE archetype = 'deteriorating'")
    hits = _det_first_hits(con)
    recent = (hits["first_90"] >= pd.Timestamp("2026-05-01")).sum()
    assert recent / n_det >= 0.4
    # early warning: dpd >= 30 and utilisation > 90 % precede the 90+ month
    hit = hits.dropna(subset=["first_90"])
    lead_30 = (hit["first_90"].dt.to_period("M") - hit["first_30"].dt.to_period("M")).map(lambda d: d.n)
    lead_util = (hit["first_90"].dt.to_period("M") - hit["first_high_util"].dt.to_period("M")).map(lambda d: d.n)
    recent_hit = hit["first_90"] >= pd.Timestamp("2026-02-01")
    assert (lead_30[recent_hit] >= 2).mean() > 0.9
    assert (lead_util[recent_hit] >= 2).mean() > 0.9


def test_deteriorating_bureau_signals(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    df = con.execute("""
        SELECT t.archetype = 'deteriorating' AS det, b.client_id,
               arg_min(b.bureau_score, b.report_date) AS first_score,
               arg_max(b.bureau_score, b.report_date) AS last_score,
               arg_max(b.operating_cash_flow, b.report_date) AS last_ocf,
               arg_max(b.legal_judgments + b.inquiries_6m, b.report_date) AS last_events,
               arg_min(b.legal_judgments + b.inquiries_6m, b.report_date) AS first_events
        FROM credit_bureau b JOIN truth t USING (client_id) GROUP BY ALL""").df()
    drop = (df["first_score"] - df["last_score"]).groupby(df["det"]).mean()
    assert drop[True] > 60 and drop[False] < 15
    det = df[df["det"]]
    assert (det["last_ocf"] < 0).mean() > 0.6
    assert det["last_events"].mean() > det["first_events"].mean() + 2


def test_product_adoption(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    new = con.execute("""
        WITH firsts AS (
            SELECT client_id, account_id, product_code, min(snapshot_month) AS first_month
            FROM product_usage GROUP BY ALL)
        SELECT c.client_id, t.archetype,
               max((f.first_month >= DATE '2026-05-01')::INT) AS adopted,
               any_value(f.product_code ORDER BY f.first_month DESC) AS new_product
        FROM clients c JOIN truth t USING (client_id) JOIN firsts f USING (client_id)
        WHERE c.relationship_status = 'active' GROUP BY ALL""").df()
    n_active = _scalar(con, "SELECT count(*) FROM clients WHERE relationship_status = 'active'")
    assert new["adopted"].sum() / n_active >= 0.15
    adopted = new[new["adopted"] == 1]
    mature = adopted[adopted["archetype"] == "mature_service"]["new_product"]
    tech = adopted[adopted["archetype"] == "tech_sme"]["new_product"]
    large = adopted[adopted["archetype"] == "large_manufacturer"]["new_product"]
    startup = adopted[adopted["archetype"] == "startup"]["new_product"]
    assert (mature == "supply_chain_finance").mean() > 0.4
    assert tech.isin(["ip_pledge_loan", "trade_finance"]).mean() > 0.5
    assert large.isin(["project_finance", "trade_finance"]).mean() > 0.5
    assert (startup == "ip_pledge_loan").mean() > 0.6


def test_planted_adoptions_respect_catalogue_stage_and_risk_class(dataset: dict[str, object]) -> None:
    """New products of existing clients serve the firm stage at end_month and never
    open a product closed to the client's high risk class (sections B, D, E)."""
    con = _con(dataset).cursor()
    cat = pd.read_csv(SEEDS / "product_catalogue.csv", keep_default_na=False)
    con.register("catalogue", cat)
    bad = _scalar(
        con,
        f"""
        WITH firsts AS (
            SELECT client_id, product_code, min(snapshot_month) AS first_month
            FROM product_usage GROUP BY ALL HAVING min(snapshot_month) >= DATE '2026-05-01'),
        staged AS (
            SELECT f.product_code, left(c.industry_code, 1) IN ('B', 'D', 'E') AS high,
                   CASE WHEN date_diff('month', c.founded_date, DATE '{END_MONTH}' + INTERVAL 1 MONTH
                                       - INTERVAL 1 DAY) < 36 THEN 'startup'
                        WHEN date_diff('month', c.founded_date, DATE '{END_MONTH}' + INTERVAL 1 MONTH
                                       - INTERVAL 1 DAY) < 120 THEN 'growth'
                        ELSE 'established' END AS stage
            FROM firsts f JOIN clients c USING (client_id)
            WHERE c.onboarding_date < DATE '2026-05-01')  -- new products of existing clients
        SELECT count(*) FROM staged s JOIN catalogue k USING (product_code)
        WHERE NOT list_contains(string_split(k.firm_stages_served, '|'), s.stage)
           OR (s.high AND k.excluded_risk_classes = 'high')""",
    )
    assert bad == 0


def test_eligibility_tables_match_seeds() -> None:
    """The generator's copies of the catalogue, master scale and SME thresholds match the dbt seeds."""
    cat = pd.read_csv(SEEDS / "product_catalogue.csv", keep_default_na=False)
    for row in cat.itertuples():
        min_size, excluded, min_grade, stages, secured = gen._CATALOGUE[row.product_code]
        assert (min_size, min_grade) == (row.min_size_class, row.min_rating_grade)
        assert set(excluded) == set(filter(None, row.excluded_risk_classes.split("|")))
        assert set(stages) == set(row.firm_stages_served.split("|"))
        assert secured == (str(row.secured).lower() == "true")
    scale = pd.read_csv(SEEDS / "rating_master_scale.csv").dropna(subset=["score_min"])
    assert list(gen._SCORE_MIN) == scale.sort_values("grade_order").score_min.astype(int).tolist()
    thr = pd.read_csv(SEEDS / "sme_size_thresholds.csv")
    for row in thr.itertuples():
        ma, mb, *limits = gen._SME_GROUPS[row.group_code]
        assert (ma, mb or np.nan) == (row.measure_a, row.measure_b) or (
            ma == row.measure_a and mb is None and pd.isna(row.measure_b)
        )
        expected = [
            row.sme_ceiling_a,
            row.sme_ceiling_b,
            row.medium_min_a,
            row.medium_min_b,
            row.small_min_a,
            row.small_min_b,
        ]
        np.testing.assert_array_equal(np.array(limits, dtype=float), np.array(expected, dtype=float))
    div = pd.read_csv(SEEDS / "industry_divisions.csv", keep_default_na=False)
    # Every seed prefix (used as a full code) is placed in its group by the generator.
    assert list(gen._sme_groups(div.code_prefix.to_numpy(dtype=str))) == div.sme_group_code.tolist()


def _cv_accuracy(x: pd.DataFrame, y: pd.Series) -> float:
    ensemble = pytest.importorskip("sklearn.ensemble")
    selection = pytest.importorskip("sklearn.model_selection")
    model = ensemble.RandomForestClassifier(n_estimators=100, random_state=0)
    pred = selection.cross_val_predict(model, x, y, cv=3)
    return float(np.mean(pred == y.to_numpy()))


def test_archetypes_separable_but_noisy(dataset: dict[str, object]) -> None:
    con = _con(dataset)
    df = con.execute("""
        WITH usage AS (
            SELECT client_id,
                   avg(outstanding_balance / credit_limit) AS util,
                   max(credit_limit) AS max_limit,
                   count(DISTINCT product_code) AS n_products,
                   avg((channel = 'online')::INT) AS online,
                   avg((channel = 'relationship_manager')::INT) AS rm,
                   max(days_past_due) AS max_dpd,
                   max((product_code = 'ip_pledge_loan')::INT) AS has_ip,
                   max((product_code = 'startup_credit_loan')::INT) AS has_startup,
                   max((product_code = 'project_finance')::INT) AS has_project,
                   max((product_code = 'supply_chain_finance')::INT) AS has_scf
            FROM product_usage GROUP BY 1),
        bureau AS (
            SELECT client_id, avg(bureau_score) AS score, avg(debt_to_equity) AS de,
                   avg(legal_judgments) AS judgments
            FROM credit_bureau GROUP BY 1)
        SELECT t.archetype, c.employee_count, c.annual_revenue, c.total_assets,
               ascii(c.industry_code) AS section,
               date_diff('day', c.founded_date, DATE '2026-10-01') AS age_days,
               (c.relationship_status = 'prospect')::INT AS prospect,
               u.* EXCLUDE (client_id), b.* EXCLUDE (client_id)
        FROM clients c JOIN truth t USING (client_id)
        LEFT JOIN usage u USING (client_id) LEFT JOIN bureau b USING (client_id)
        ORDER BY c.client_id""").df()
    y = df.pop("archetype")
    x = df.astype(float).fillna(-1)
    # Jointly the features identify the archetypes well ...
    assert 0.85 < _cv_accuracy(x, y) < 0.998
    # ... but no single view does: distributions overlap.
    assert _cv_accuracy(x[["employee_count"]], y) < 0.6
    firmographics = ["employee_count", "annual_revenue", "total_assets", "section", "age_days"]
    assert _cv_accuracy(x[firmographics], y) < 0.95
