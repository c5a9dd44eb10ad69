"""Business applications of the segmentation, as Dagster assets (group ``applications``).

* ``marts.client_product_recommendations`` + ``marts.recommendation_evaluation`` (time split)
* ``marts.risk_early_warnings`` (timeline kept in ``state.early_warning_episodes``) + ``marts.early_warning_evaluation``
* ``marts.segment_policy`` + ``marts.client_policy`` (credit policy) and ``marts.segment_marketing``

All heavy lifting is SQL in DuckDB (``app_sql.py``); the rules are pure functions in ``recommend.py`` and
``early_warning.py``. Segments come from ``marts.client_segments`` (the segmentation model) when that
table exists, else from a documented rule-based segment (size_class x industry_risk_class). Rules and
figures: docs/applications.md.
"""


import base64
import io
import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import date

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications import recommend as rc
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.warehouse import connect

GROUP = "applications"
EVAL_HORIZON_MONTHS = 6  # time split: features/warnings as of 6 months before the last snapshot
N_BOOTSTRAP = 2000
HOLDINGS_WEIGHT = 0.5  # weight of the product-holding columns in the neighbour distance
MODEL_VERSION = f"knn{rc.K_NEIGHBOURS}-playbook-v1"
STATE_SCHEMA = "state"  # never dropped by dbt nor by full_rebuild; not published

# The segmentation stage's outputs this stage reads: the dbt mart and the model's own assignments.
SEGMENT_DEPS = [dg.AssetKey(["marts", "client_segments"]), dg.AssetKey(["ml", "segment_assignments"])]

K = dg.AssetKey
DIM_CLIENT, CATALOGUE = K(["marts", "dim_client"]), K(["reference", "product_catalogue"])
USAGE_MONTHLY, USAGE_PROFILE = K(["marts", "fct_product_usage_monthly"]), K(["marts", "fct_client_usage_profile"])
STG_USAGE, STG_BUREAU = K(["staging", "stg_usage__product_snapshots"]), K(["staging", "stg_bureau__credit_reports"])
AS_OF, MASTER_SCALE = K(["intermediate", "int_as_of_date_derived"]), K(["reference", "rating_master_scale"])
RECS, REC_EVAL = K(["marts", "client_product_recommendations"]), K(["marts", "recommendation_evaluation"])
WARNINGS, EW_EVAL = K(["marts", "risk_early_warnings"]), K(["marts", "early_warning_evaluation"])
EW_CALIBRATION = K(["ml", "early_warning_calibration"])  # ew_calibration_assets.py
SEG_POLICY, CLIENT_POLICY = K(["marts", "segment_policy"]), K(["marts", "client_policy"])
SEG_MARKETING = K(["marts", "segment_marketing"])
APPLICATION_KEYS = (RECS, REC_EVAL, WARNINGS, EW_EVAL, SEG_POLICY, CLIENT_POLICY, SEG_MARKETING)


# ----------------------------------------------------------------------------------------------------------
# SQL (DuckDB): as-of client states, adoptions, warning signals. As-of queries only read snapshots and bureau
# reports dated on or before the cutoff, so the time-split evaluations never see the future.
# ----------------------------------------------------------------------------------------------------------

def lit(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


def client_state_sql(cutoff_month: date, live: bool) -> str:
    """One row per client of marts.dim_client as of the month ``cutoff_month`` (first day of the month).

    Holdings = products seen in any snapshot up to and including the cutoff month. Firm stage and rating are
    recomputed from data up to the cutoff with the rules of int_clients_staged / int_clients_rated (when
    ``live``, dim_client's own values are used instead: they are the same rules at the as-of date).
    """
    c = lit(cutoff_month)
    held = ",\n        ".join(f"bool_or(product_code = '{p}') AS held_{p}" for p in rc.PRODUCTS)
    stage = ("d.firm_stage" if live else
             f"""CASE WHEN d.founded_date IS NULL OR d.founded_date > last_day({c}) THEN 'unknown'
             WHEN date_diff('month', d.founded_date, last_day({c})) - (day(d.founded_date) > day(last_day({c})))::INT < 36 THEN 'startup'
             WHEN date_diff('month', d.founded_date, last_day({c})) - (day(d.founded_date) > day(last_day({c})))::INT < 120 THEN 'growth'
             ELSE 'established' END""")
    grade = ("d.rating_grade" if live else
             """CASE WHEN coalesce(u.dpd_now, 0) >= 90 OR coalesce(l.max_days_past_due_12m, 0) >= 90
                       OR coalesce(l.defaults_5y > b.base_defaults, false) THEN 'D'
                     ELSE coalesce(ms.rating_grade, 'unrated') END""")
    return f"""
WITH snaps AS (
    SELECT * FROM staging.stg_usage__product_snapshots WHERE snapshot_month <= {c}
), held AS (
    SELECT client_key,
        {held},
        min(snapshot_month) AS first_usage_month,
        bool_or(snapshot_month = {c}) AS active_at_cutoff
    FROM snaps GROUP BY client_key
), usage12 AS (
    SELECT client_key,
        sum(outstanding_balance) / nullif(sum(credit_limit), 0) AS utilisation_12m,
        sum(credit_limit) FILTER (WHERE snapshot_month = {c}) AS limit_now,
        avg((channel = 'online')::INT) AS online_share,
        avg((channel = 'relationship_manager')::INT) AS rm_share,
        sum(interaction_count) AS interactions_12m,
        max(days_past_due) FILTER (WHERE snapshot_month = {c}) AS dpd_now
    FROM snaps WHERE snapshot_month > {c} - INTERVAL 12 MONTH GROUP BY client_key
), reps AS (
    SELECT *, row_number() OVER (PARTITION BY client_key ORDER BY report_date DESC, report_id DESC) AS rn
    FROM staging.stg_bureau__credit_reports WHERE report_date <= last_day({c})
), latest AS (
    SELECT * FROM reps WHERE rn = 1
), base AS (  -- default baseline: latest report at least 12 months before the cutoff, else the earliest
    SELECT client_key,
        coalesce(arg_max(defaults_5y, report_date) FILTER (WHERE report_date <= last_day({c}) - INTERVAL 12 MONTH),
                 arg_min(defaults_5y, report_date)) AS base_defaults
    FROM reps GROUP BY client_key
)
SELECT d.client_key, d.size_class, d.technology_firm, d.industry_risk_class, d.industry_section,
    d.relationship_status, d.lifecycle_stage, d.onboarding_date,
    {stage} AS firm_stage,
    {grade} AS rating_grade,
    h.client_key IS NOT NULL AS is_customer,
    coalesce(h.active_at_cutoff, false) AS active_at_cutoff,
    {", ".join(f"coalesce(h.held_{p}, false) AS held_{p}" for p in rc.PRODUCTS)},
    ln(1 + coalesce(d.annual_revenue, 0)) AS log_revenue,
    ln(1 + coalesce(d.employee_count, 0)) AS log_employees,
    ln(1 + coalesce(d.total_assets, 0)) AS log_assets,
    date_diff('day', d.founded_date, last_day({c})) / 365.25 AS firm_age_years,
    l.bureau_score, u.utilisation_12m, u.online_share, u.rm_share,
    ln(1 + coalesce(u.limit_now, 0)) AS log_limit, ln(1 + coalesce(u.interactions_12m, 0)) AS log_interactions
FROM marts.dim_client AS d
LEFT JOIN held AS h USING (client_key)
LEFT JOIN usage12 AS u USING (client_key)
LEFT JOIN latest AS l USING (client_key)
LEFT JOIN base AS b USING (client_key)
LEFT JOIN reference.rating_master_scale AS ms ON l.bureau_score BETWEEN ms.score_min AND ms.score_max
ORDER BY d.client_key
"""


def adoptions_sql(cutoff_month: date, end_month: date) -> str:
    """Products a client first opened after the cutoff month, up to ``end_month`` (never seen before)."""
    return f"""
SELECT client_key, product_code, min(snapshot_month) AS first_month
FROM staging.stg_usage__product_snapshots
WHERE snapshot_month <= {lit(end_month)}
GROUP BY client_key, product_code
HAVING min(snapshot_month) > {lit(cutoff_month)}
ORDER BY client_key, product_code
"""


def signal_observations_sql(from_month: date, to_month: date) -> str:
    """Warning-signal observations per client and evaluation month (month ends of ``from_month``..``to_month``).

    Long format (client_key, month_end, signal, observed_value, threshold, signal_date), only rows at or
    beyond the signal's watch threshold (early_warning.SIGNALS). Usage signals come from
    marts.fct_product_usage_monthly; bureau signals from the latest report dated on or before the month end
    (and at most REPORT_VALID_MONTHS old), compared with the client's previous report.
    """
    REPORT_VALID_MONTHS, UTILISATION_LIMIT = ew.REPORT_VALID_MONTHS, ew.UTILISATION_LIMIT
    t = {k: s.watch for k, s in ew.SIGNALS.items()}
    return f"""
WITH rep AS (
    SELECT client_key, report_id, report_date, bureau_score, inquiries_6m, legal_judgments,
        CASE WHEN total_debt > 0 THEN collateral_value / total_debt END AS coverage,
        lag(bureau_score) OVER w AS prev_score, lag(inquiries_6m) OVER w AS prev_inquiries,
        lag(legal_judgments) OVER w AS prev_judgments,
        coalesce(operating_cash_flow < 0, false) AS negative_cf,
        row_number() OVER w AS seq
    FROM staging.stg_bureau__credit_reports
    WINDOW w AS (PARTITION BY client_key ORDER BY report_date, report_id)
), rep_runs AS (
    SELECT *, CASE WHEN negative_cf THEN seq - coalesce(max(CASE WHEN NOT negative_cf THEN seq END) OVER (
        PARTITION BY client_key ORDER BY seq ROWS UNBOUNDED PRECEDING), 0) ELSE 0 END AS negative_cf_run
    FROM rep
), mon AS (
    SELECT client_key, snapshot_month, max_days_past_due AS dpd, utilisation,
        coalesce(utilisation > {UTILISATION_LIMIT}, false) AS high_util,
        date_diff('month', DATE '2000-01-01', snapshot_month) AS mnum
    FROM marts.fct_product_usage_monthly
    WHERE snapshot_month <= {lit(to_month)}
), mon_runs AS (
    -- consecutive high-utilisation months: a missing month breaks the run
    SELECT *, CASE WHEN high_util THEN mnum - greatest(
            coalesce(max(CASE WHEN NOT high_util THEN mnum END) OVER wr, -1),
            coalesce(max(CASE WHEN prev_mnum IS NULL OR prev_mnum <> mnum - 1 THEN mnum - 1 END) OVER wr, -1))
        ELSE 0 END AS util_run
    FROM (SELECT *, lag(mnum) OVER (PARTITION BY client_key ORDER BY mnum) AS prev_mnum FROM mon)
    WINDOW wr AS (PARTITION BY client_key ORDER BY mnum ROWS UNBOUNDED PRECEDING)
), grid AS (
    SELECT *, last_day(snapshot_month) AS month_end FROM mon_runs
    WHERE snapshot_month BETWEEN {lit(from_month)} AND {lit(to_month)}
), joined AS (
    SELECT g.client_key, g.month_end, g.snapshot_month, g.dpd, g.utilisation, g.util_run,
        r.report_date, r.bureau_score, r.prev_score, r.inquiries_6m, r.prev_inquiries, r.legal_judgments,
        r.prev_judgments, r.negative_cf_run, r.coverage
    FROM grid AS g
    ASOF LEFT JOIN rep_runs AS r ON g.client_key = r.client_key AND g.month_end >= r.report_date
), valid AS (
    SELECT *, report_date > month_end - INTERVAL {REPORT_VALID_MONTHS} MONTH AS report_valid FROM joined
), obs AS (
    SELECT client_key, month_end, 'arrears' AS signal, dpd::DOUBLE AS observed_value, {t['arrears']}::DOUBLE AS threshold,
        snapshot_month AS signal_date FROM valid WHERE dpd >= {t['arrears']}
    UNION ALL
    SELECT client_key, month_end, 'high_utilisation', util_run, {t['high_utilisation']}, snapshot_month
        FROM valid WHERE util_run >= {t['high_utilisation']}
    UNION ALL
    SELECT client_key, month_end, 'score_drop', prev_score - bureau_score, {t['score_drop']}, report_date
        FROM valid WHERE report_valid AND prev_score - bureau_score >= {t['score_drop']}
    UNION ALL
    SELECT client_key, month_end, 'negative_cash_flow', negative_cf_run, {t['negative_cash_flow']}, report_date
        FROM valid WHERE report_valid AND negative_cf_run >= {t['negative_cash_flow']}
    UNION ALL
    SELECT client_key, month_end, 'legal_judgments', legal_judgments - prev_judgments, {t['legal_judgments']}, report_date
        FROM valid WHERE report_valid AND legal_judgments - prev_judgments >= {t['legal_judgments']}
    UNION ALL
    SELECT client_key, month_end, 'inquiries', inquiries_6m - prev_inquiries, {t['inquiries']}, report_date
        FROM valid WHERE report_valid AND inquiries_6m - prev_inquiries >= {t['inquiries']}
    UNION ALL
    SELECT client_key, month_end, 'collateral', round(coverage, 4), {t['collateral']}, report_date
        FROM valid WHERE report_valid AND coverage < {t['collateral']}
)
SELECT client_key, month_end, signal, observed_value::DOUBLE AS observed_value, threshold::DOUBLE AS threshold,
    signal_date::DATE AS signal_date
FROM obs ORDER BY month_end, client_key, signal
"""


def first_default_sql() -> str:
    """First month each client reached 90+ days past due in the usage data."""
    return """
SELECT client_key, min(snapshot_month) AS first_90_month
FROM marts.fct_product_usage_monthly WHERE max_days_past_due >= 90 GROUP BY client_key
"""


# ----------------------------------------------------------------------------------------------------------
# helpers: dates, tables with comments, charts, segments
# ----------------------------------------------------------------------------------------------------------

def add_months(d: date, k: int) -> date:
    m = d.year * 12 + d.month - 1 + k
    return date(m // 12, m % 12 + 1, 1)


def as_of_month(con: duckdb.DuckDBPyConnection) -> date:
    return con.execute("SELECT as_of_month FROM intermediate.int_as_of_date_derived").fetchall()[0][0]


def _exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return con.execute("SELECT count(*) FROM (SELECT table_name AS n, schema_name AS s FROM duckdb_tables() UNION ALL "
                       "SELECT view_name, schema_name FROM duckdb_views()) WHERE s = ? AND n = ?",
                       [schema, name]).fetchall()[0][0] > 0


def _columns(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                                      [schema, name]).fetchall()}


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def publish_table(con: duckdb.DuckDBPyConnection, table: str, select_sql: str, description: str,
                  columns: dict[str, str]) -> int:
    """CREATE OR REPLACE ``table`` from ``select_sql`` and store the descriptions as comments."""
    con.execute(f"CREATE OR REPLACE TABLE {table} AS {select_sql}")
    con.execute(f"COMMENT ON TABLE {table} IS {_q(description)}")
    schema, name = table.split(".")
    present = _columns(con, schema, name)
    missing = sorted(present - set(columns))
    if missing:
        raise ValueError(f"{table}: undocumented columns {missing}")
    for col, text in columns.items():
        if col in present:
            con.execute(f'COMMENT ON COLUMN {table}."{col}" IS {_q(text)}')
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def chart_first(metadata: dict) -> dict:
    """The same metadata with the chart entry first: the UI lists metadata in order, charts are seen first."""
    return {k: metadata[k] for k in sorted(metadata, key=lambda k: k != "chart")}


def png_markdown(fig, title: str) -> dg.MetadataValue:
    """A matplotlib figure as an inline PNG in markdown (rendered by the Dagster UI)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})")


def _figure(w: float = 9, h: float = 4.5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(w, h))


def md_table(df: pd.DataFrame, floatfmt: str = ".3f") -> dg.MetadataValue:
    if df.empty:
        return dg.MetadataValue.md("_no rows_")
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(format(v, floatfmt) if isinstance(v, float) else str(v) for v in row) + " |")
    return dg.MetadataValue.md("\n".join(lines))


RULE_SEGMENT_SQL = ("'rule:' || d.size_class || '|' || d.industry_risk_class",
                    "'Rule-based: ' || d.size_class || ' size, ' || d.industry_risk_class || ' industry risk'")


def segment_sql(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """(SQL with client_key, segment_id, segment_name, segment_source for every dim_client row, source label).

    Uses marts.client_segments (final_segment_id, else segment_id) or ml.segment_assignments when present;
    clients the model did not assign fall back to the rule-based segment size_class x industry_risk_class.
    """
    rid, rname = RULE_SEGMENT_SQL
    model = None
    if _exists(con, "marts", "client_segments"):
        cols = _columns(con, "marts", "client_segments")
        sid = "final_segment_id" if "final_segment_id" in cols else "segment_id" if "segment_id" in cols else None
        if sid:
            name = ("s.final_segment_name" if sid == "final_segment_id" and "final_segment_name" in cols
                    else "s.segment_name" if "segment_name" in cols else "NULL")
            if _exists(con, "marts", "dim_segment") and "segment_name" in _columns(con, "marts", "dim_segment"):
                name = f"coalesce(ds.segment_name, {name})"
                join = f"LEFT JOIN marts.dim_segment AS ds ON ds.segment_id::VARCHAR = s.{sid}::VARCHAR"
            else:
                join = ""
            model = (f"SELECT s.client_key, s.{sid}::VARCHAR AS segment_id, {name}::VARCHAR AS segment_name "
                     f"FROM marts.client_segments AS s {join} WHERE s.{sid} IS NOT NULL", "marts.client_segments")
    if model is None and _exists(con, "ml", "segment_assignments"):
        name = "'Segment ' || a.segment_id::VARCHAR"
        join = ""
        if _exists(con, "marts", "dim_segment") and "segment_name" in _columns(con, "marts", "dim_segment"):
            name = f"coalesce(ds.segment_name, {name})"
            join = "LEFT JOIN marts.dim_segment AS ds ON ds.segment_id::VARCHAR = a.segment_id::VARCHAR"
        model = (f"SELECT a.client_key, a.segment_id::VARCHAR AS segment_id, {name}::VARCHAR AS segment_name "
                 f"FROM ml.segment_assignments AS a {join}", "ml.segment_assignments")
    if model is None:
        return (f"SELECT d.client_key, {rid} AS segment_id, {rname} AS segment_name, 'rule_based' AS segment_source "
                "FROM marts.dim_client AS d"), "rule_based"
    return (f"SELECT d.client_key, coalesce(m.segment_id, {rid}) AS segment_id, coalesce(m.segment_name, {rname}) "
            f"AS segment_name, CASE WHEN m.segment_id IS NULL THEN 'rule_based' ELSE {_q(model[1])} END AS segment_source "
            f"FROM marts.dim_client AS d LEFT JOIN ({model[0]}) AS m USING (client_key)"), model[1]


# ----------------------------------------------------------------------------------------------------------
# recommendations
# ----------------------------------------------------------------------------------------------------------

NUMERIC_FEATURES = ("log_revenue", "log_employees", "log_assets", "firm_age_years", "bureau_score",
                    "utilisation_12m", "online_share", "rm_share", "log_limit")
CATEGORICAL_FEATURES = ("industry_section", "size_class", "industry_risk_class", "firm_stage")


def catalogue(con: duckdb.DuckDBPyConnection) -> dict[str, rc.Product]:
    rows = con.execute("SELECT * FROM reference.product_catalogue ORDER BY product_code").df().to_dict("records")
    return {r["product_code"]: rc.Product.from_row(r) for r in rows}


def profile(row) -> rc.ClientProfile:
    return rc.ClientProfile(size_class=str(row.size_class), firm_stage=str(row.firm_stage),
                            technology_firm=bool(row.technology_firm), industry_risk_class=str(row.industry_risk_class),
                            rating_grade=str(row.rating_grade), industry_section=row.industry_section,
                            is_customer=bool(row.is_customer))


def client_states(con: duckdb.DuckDBPyConnection, cutoff: date, live: bool) -> pd.DataFrame:
    """Client-level as-of rows (one per client; small - never the raw tables)."""
    return con.execute(client_state_sql(cutoff, live)).df()


def propensities(states: pd.DataFrame, query: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """(peer shares for the query rows x products, popularity per product) from customers at the cutoff."""
    held = states[[f"held_{p}" for p in rc.PRODUCTS]].to_numpy().astype(float)
    pool = np.flatnonzero(states["is_customer"].to_numpy())
    popularity = {p: float(held[pool, i].mean()) if len(pool) else 0.0 for i, p in enumerate(rc.PRODUCTS)}
    cats = pd.get_dummies(states[list(CATEGORICAL_FEATURES)].astype(str)).astype(float).to_numpy()
    x = np.hstack([states[list(NUMERIC_FEATURES)].astype(float).to_numpy(), cats,
                   states[["technology_firm"]].astype(float).to_numpy(), held])
    xs = rc.standardise(x, x[pool] if len(pool) else x)
    xs[:, -len(rc.PRODUCTS):] *= HOLDINGS_WEIGHT
    pos = np.full(len(states), -1)
    pos[pool] = np.arange(len(pool))
    shares = rc.peer_shares(xs[pool], held[pool], xs[query], pos[query])
    return shares, popularity


def recommend_rows(states: pd.DataFrame, query: np.ndarray, products: dict[str, rc.Product]
                   ) -> tuple[list[dict], dict[str, float], dict[int, dict[str, list[str]]]]:
    """Top-3 rows for the query clients + popularity + per-client rankings (model/popularity x all/eligible)."""
    shares, popularity = propensities(states, query)
    rows: list[dict] = []
    rankings: dict[int, dict[str, list[str]]] = {}
    for j, i in enumerate(query):
        r = states.iloc[i]
        cp = profile(r)
        held = {p for p in rc.PRODUCTS if r[f"held_{p}"]}
        eligible = {p for p in rc.PRODUCTS if p in products and rc.is_eligible(products[p], cp)}
        share = dict(zip(rc.PRODUCTS, shares[j]))
        scores = {p: rc.score(share[p], bool(rc.playbook_codes(p, cp)), popularity[p]) for p in rc.PRODUCTS}
        top = rc.rank_products(scores, held, eligible)
        rankings[int(i)] = {"model_all": rc.rank_products(scores, held), "model_eligible": top,
                            "popularity_all": rc.popularity_ranking(popularity, held),
                            "popularity_eligible": rc.popularity_ranking(popularity, held, eligible)}
        base = {"client_key": r.client_key, "advisory_recommended": rc.advisory_recommended(cp),
                "eligible_products": len(eligible - held), "rating_grade": cp.rating_grade}
        if not top:
            rows.append(base | {"recommendation_rank": None, "product_code": None, "score": None, "peer_share": None,
                                "playbook_fit": None, "reason_codes": "NO_ELIGIBLE_PRODUCT",
                                "reason_text": "No catalogue product the client does not hold passes the eligibility rules"})
        for rank, p in enumerate(top, 1):
            codes = rc.reason_codes(products[p], cp, share[p], popularity[p])
            rows.append(base | {"recommendation_rank": rank, "product_code": p, "score": round(float(scores[p]), 4),
                                "peer_share": round(float(share[p]), 4), "playbook_fit": bool(rc.playbook_codes(p, cp)),
                                "reason_codes": "|".join(codes), "reason_text": rc.reason_text(codes, share[p])})
    return rows, popularity, rankings


RECS_COLUMNS = {
    "client_key": "Pseudonymous client key (marts.dim_client).",
    "segment_id": "Segment of the client (marts.client_segments final segment when available, else rule-based size_class x industry_risk_class).",
    "segment_name": "Readable segment name.",
    "segment_source": "Where the segment comes from: marts.client_segments, ml.segment_assignments or rule_based.",
    "lifecycle_stage": "dim_client.lifecycle_stage: recommendations cover active clients (new, growing, mature) and prospects.",
    "recommendation_rank": "1 = best of the client's top 3; null when no eligible product is left (reason_codes NO_ELIGIBLE_PRODUCT).",
    "product_code": "Recommended catalogue product (reference.product_catalogue), never one the client holds, always eligible.",
    "product_name_en": "English product name.",
    "score": "peer_share + 0.35 x playbook_fit + 0.05 x popularity (see docs/applications.md).",
    "peer_share": "Learned propensity: distance-weighted share of the 30 nearest customers (scikit-learn NearestNeighbors) holding the product.",
    "playbook_fit": "A playbook rule targets this product at the client (large manufacturer long-term, tech SME IP pledge, start-up credit).",
    "reason_codes": "Pipe-separated reason codes, strongest first (PEERS_HOLD_STRONG, PEERS_HOLD, PLAYBOOK_*, SECURED_FOR_HIGH_RISK_INDUSTRY, POPULAR_PRODUCT, UNRATED_ASSUMED_R6, NO_ELIGIBLE_PRODUCT).",
    "reason_text": "The reason codes as one sentence for the relationship manager.",
    "advisory_recommended": "Tailored financial advisory (a service) recommended: established, large or medium firm, not in default.",
    "eligible_products": "Catalogue products the client does not hold and is eligible for.",
    "rating_grade": "Rating grade used by the eligibility rules (dim_client; unrated assessed as R6).",
    "model_version": "Version of the recommendation model (neighbours + playbook weights).",
    "as_of_date": "The build's as-of date.",
}
REC_EVAL_COLUMNS = {
    "method": "model = learned propensity + playbook; popularity = most widely held products (baseline).",
    "candidate_set": "all_not_held = any product not held at the cutoff; eligible_only = also passing the catalogue rules (the published list).",
    "cutoff_month": "Features as of this month (data up to its end only).",
    "outcome_end_month": "Outcome window end: products first opened after cutoff_month up to this month.",
    "clients_evaluated": "Clients active in the cutoff month that opened at least one new product in the window.",
    "hits": "Evaluated clients with at least one adopted product among the top 3.",
    "hit_rate_at_3": "hits / clients_evaluated.",
    "ci_low": "Lower bound of the 95 % percentile bootstrap interval of hit_rate_at_3.",
    "ci_high": "Upper bound of the 95 % bootstrap interval.",
    "lift_vs_popularity": "hit_rate_at_3 minus the popularity baseline's on the same candidate set.",
    "lift_ci_low": "Lower bound of the 95 % paired bootstrap interval of the lift.",
    "lift_ci_high": "Upper bound of the paired bootstrap interval of the lift.",
    "n_bootstrap": "Bootstrap resamples (seeded, reproducible).",
    "adoptions_eligible_share": "Share of evaluated clients whose new product was eligible under the catalogue at the cutoff (ceiling of the eligible_only rows).",
    "meets_bar": "model rows: ci_low above the popularity baseline's hit_rate_at_3 on the same candidate set.",
    "model_version": "Version of the recommendation model.",
}


def _rec_chart(recs: pd.DataFrame):
    fig, ax = _figure(10, 4.8)
    top = recs.dropna(subset=["product_code"])
    if top.empty:
        ax.text(0.5, 0.5, "no recommendations", ha="center")
        return fig
    segs = top.groupby("segment_name").size().sort_values(ascending=False).head(12).index
    mix = top[top.segment_name.isin(segs)].pivot_table(index="segment_name", columns="product_code",
                                                       values="client_key", aggfunc="count", fill_value=0)
    mix = mix.loc[[s for s in segs if s in mix.index]]
    share = mix.div(mix.sum(axis=1), axis=0)
    share.plot.barh(stacked=True, ax=ax, colormap="tab10", width=0.8)
    ax.set_xlabel("share of top-3 recommendations")
    ax.set_ylabel("")
    ax.set_title("Recommendation mix by segment (12 largest)")
    ax.invert_yaxis()
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    return fig


@dg.asset(key=RECS, group_name=GROUP, kinds={"duckdb", "scikitlearn", "python"},
          deps=[DIM_CLIENT, CATALOGUE, STG_USAGE, STG_BUREAU, AS_OF, MASTER_SCALE, *SEGMENT_DEPS])
def client_product_recommendations(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Top 3 catalogue products per active client and prospect, with score, rank and reason codes.

    Only products the client does not hold and is eligible for (catalogue size/rating/risk-class/stage rules
    and the high-risk floor: no unsecured product for a `high` risk-class industry below R3). Score = learned
    propensity (share of the 30 most similar customers holding the product, scikit-learn NearestNeighbors)
    + playbook boosts. Also flags tailored financial advisory for established firms.
    """
    with connect(warehouse.settings) as con:
        month = as_of_month(con)
        products = catalogue(con)
        states = client_states(con, month, live=True)
        query = np.flatnonzero(states["lifecycle_stage"].isin(["new", "growing", "mature", "prospect"]).to_numpy())
        rows, popularity, _ = recommend_rows(states, query, products)
        df = pd.DataFrame(rows)
        seg_sql, seg_source = segment_sql(con)
        con.register("recs_df", df)
        try:
            con.execute("BEGIN")
            n = publish_table(con, "marts.client_product_recommendations", f"""
                SELECT r.client_key, s.segment_id, s.segment_name, s.segment_source, d.lifecycle_stage,
                    r.recommendation_rank::INTEGER AS recommendation_rank, r.product_code, c.product_name_en,
                    r.score::DOUBLE AS score, r.peer_share::DOUBLE AS peer_share, r.playbook_fit::BOOLEAN AS playbook_fit,
                    r.reason_codes, r.reason_text, r.advisory_recommended, r.eligible_products::INTEGER AS eligible_products,
                    r.rating_grade, {_q(MODEL_VERSION)} AS model_version, d.as_of_date
                FROM recs_df AS r
                JOIN marts.dim_client AS d USING (client_key)
                JOIN ({seg_sql}) AS s USING (client_key)
                LEFT JOIN reference.product_catalogue AS c USING (product_code)
                ORDER BY r.client_key, r.recommendation_rank""",
                "Top 3 eligible catalogue products per active client and prospect (docs/applications.md).", RECS_COLUMNS)
            con.execute("COMMIT")
        finally:
            con.unregister("recs_df")
        pub = con.execute("SELECT * FROM marts.client_product_recommendations").df()
    clients = pub.client_key.nunique()
    mix = (pub.dropna(subset=["product_code"]).groupby("product_code")
           .agg(recommended=("client_key", "count"), first_choice=("recommendation_rank", lambda s: int((s == 1).sum())))
           .reset_index().sort_values("recommended", ascending=False))
    mix["popularity"] = mix.product_code.map(popularity).round(3)
    return dg.MaterializeResult(metadata=chart_first({
        "rows": n, "clients": clients, "segment_source": seg_source, "model_version": MODEL_VERSION,
        "advisory_recommended": int(pub.groupby("client_key").advisory_recommended.first().sum()),
        "clients_without_eligible_product": int((pub.reason_codes == "NO_ELIGIBLE_PRODUCT").sum()),
        "summary": md_table(mix),
        "chart": png_markdown(_rec_chart(pub), "recommendation mix by segment"),
    }))


def evaluate_recommendations(con: duckdb.DuckDBPyConnection, horizon: int = EVAL_HORIZON_MONTHS,
                             n_boot: int = N_BOOTSTRAP) -> pd.DataFrame:
    """Time split: features as of ``horizon`` months before the last snapshot; outcome = products first opened after."""
    end = as_of_month(con)
    cutoff = add_months(end, -horizon)
    products = catalogue(con)
    states = client_states(con, cutoff, live=False)
    adopted: dict[str, set[str]] = defaultdict(set)
    for ck, p, _ in con.execute(adoptions_sql(cutoff, end)).fetchall():
        adopted[ck].add(p)
    query = np.flatnonzero((states["active_at_cutoff"] & states["client_key"].isin(list(adopted))).to_numpy())
    _, _, rankings = recommend_rows(states, query, products)
    hits = {k: np.array([rc.hit_at_k(rankings[int(i)][k], adopted[states.client_key.iat[i]]) for i in query], dtype=float)
            for k in ("model_all", "popularity_all", "model_eligible", "popularity_eligible")}
    elig_share = float(np.mean([bool(adopted[states.client_key.iat[i]] & {
        p for p in rc.PRODUCTS if rc.is_eligible(products[p], profile(states.iloc[i]))}) for i in query])) if len(query) else 0.0
    rows = []
    for cand in ("all_not_held", "eligible_only"):
        suffix = "all" if cand == "all_not_held" else "eligible"
        base = hits[f"popularity_{suffix}"]
        base_rate = float(base.mean()) if len(base) else float("nan")
        for method in ("model", "popularity"):
            h = hits[f"{method}_{suffix}"]
            est, lo, hi = rc.bootstrap_ci(h, n_boot)
            d_est, d_lo, d_hi = rc.paired_bootstrap_diff(h, base, n_boot)
            rows.append({"method": method, "candidate_set": cand, "cutoff_month": cutoff, "outcome_end_month": end,
                         "clients_evaluated": int(len(h)), "hits": int(h.sum()), "hit_rate_at_3": est,
                         "ci_low": lo, "ci_high": hi, "lift_vs_popularity": d_est, "lift_ci_low": d_lo,
                         "lift_ci_high": d_hi, "n_bootstrap": n_boot, "adoptions_eligible_share": elig_share,
                         "meets_bar": bool(method == "model" and len(h) > 0 and lo > base_rate),
                         "model_version": MODEL_VERSION})
    return pd.DataFrame(rows)


def _eval_chart(ev: pd.DataFrame):
    fig, ax = _figure(8, 4)
    labels = [f"{r.method}\n{r.candidate_set}" for r in ev.itertuples()]
    y = ev.hit_rate_at_3.to_numpy()
    err = np.vstack([y - ev.ci_low.to_numpy(), ev.ci_high.to_numpy() - y])
    colors = ["tab:blue" if m == "model" else "tab:gray" for m in ev.method]
    ax.bar(labels, y, yerr=err, capsize=6, color=colors)
    ax.set_ylim(0, 1)
    ax.set_ylabel("hit rate at 3 (95 % bootstrap CI)")
    ax.set_title(f"Recommendations, time split: cutoff {ev.cutoff_month.iat[0]}, outcome to {ev.outcome_end_month.iat[0]}")
    return fig


@dg.asset(key=REC_EVAL, group_name=GROUP, kinds={"duckdb", "scikitlearn", "python"},
          deps=[DIM_CLIENT, CATALOGUE, STG_USAGE, STG_BUREAU, AS_OF, MASTER_SCALE])
def recommendation_evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Time-split evaluation of the recommendations: hit rate at 3 vs a popularity baseline, bootstrap 95 % CIs.

    Features (holdings, usage, rating, firm stage) are recomputed in SQL from snapshots and bureau reports up to
    6 months before the last snapshot; the outcome is the products first opened in those last 6 months.
    """
    with connect(warehouse.settings) as con:
        ev = evaluate_recommendations(con)
        con.register("ev_df", ev)
        try:
            con.execute("BEGIN")
            publish_table(con, "marts.recommendation_evaluation", "SELECT * FROM ev_df",
                          "Time-split evaluation of product recommendations (hit rate at 3, bootstrap 95 % CI).",
                          REC_EVAL_COLUMNS)
            con.execute("COMMIT")
        finally:
            con.unregister("ev_df")
    model = ev[(ev.method == "model") & (ev.candidate_set == "all_not_held")].iloc[0]
    if not model.meets_bar:
        context.log.warning("recommendation model's lower bound is not above the popularity baseline")
    show = ev[["method", "candidate_set", "clients_evaluated", "hits", "hit_rate_at_3", "ci_low", "ci_high",
               "lift_vs_popularity", "meets_bar"]]
    return dg.MaterializeResult(metadata=chart_first({
        "cutoff_month": str(model.cutoff_month), "outcome_end_month": str(model.outcome_end_month),
        "clients_evaluated": int(model.clients_evaluated), "model_hit_rate_at_3": float(model.hit_rate_at_3),
        "model_ci_low": float(model.ci_low), "meets_bar": bool(model.meets_bar),
        "summary": md_table(show), "chart": png_markdown(_eval_chart(ev), "hit rate at 3"),
    }))


# ----------------------------------------------------------------------------------------------------------
# risk early warnings
# ----------------------------------------------------------------------------------------------------------

EPISODES = f"{STATE_SCHEMA}.early_warning_episodes"
PROGRESS = f"{STATE_SCHEMA}.early_warning_progress"


def ensure_state(con: duckdb.DuckDBPyConnection) -> None:
    """The warning timeline lives in its own schema: dbt never touches it, full_rebuild keeps it."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {EPISODES} (
        client_key VARCHAR NOT NULL, signal VARCHAR NOT NULL, opened_at DATE NOT NULL, last_seen_at DATE NOT NULL,
        cleared_at DATE, severity VARCHAR NOT NULL, max_severity VARCHAR NOT NULL, observed_value DOUBLE,
        threshold DOUBLE, signal_date DATE, first_warning_at DATE, PRIMARY KEY (client_key, signal, opened_at))""")
    con.execute(f"CREATE TABLE IF NOT EXISTS {PROGRESS} (last_processed_month DATE NOT NULL, run_id VARCHAR, "
                "processed_at TIMESTAMP)")


def monthly_observations(con: duckdb.DuckDBPyConnection, from_month: date, to_month: date, calibration=None
                         ) -> list[tuple[date, dict[ew.Key, ew.Observation]]]:
    """Observations per month end (ascending), severities applied, composite signal added.

    ``calibration`` (an ``ew_calibration.Calibration``, None = expert thresholds): with a calibrated combined score
    the severities are the client's calibrated level (``ew_calibration.apply_levels``).
    """
    by_month: dict[date, dict[ew.Key, ew.Observation]] = defaultdict(dict)
    months = [r[0] for r in con.execute(
        "SELECT DISTINCT last_day(snapshot_month) FROM marts.fct_product_usage_monthly "
        f"WHERE snapshot_month BETWEEN {lit(from_month)} AND {lit(to_month)} ORDER BY 1").fetchall()]
    for ck, month_end, sig, value, thr, sdate in con.execute(signal_observations_sql(from_month, to_month)).fetchall():
        sev = ew.severity(sig, value)
        if sev:
            by_month[month_end][(ck, sig)] = ew.Observation(value, thr, sdate, sev)
    out = [(m, ew.add_multiple_signals(by_month.get(m, {}), m)) for m in months]
    if calibration is not None:
        from dagster_project import ew_calibration

        out = [(m, ew_calibration.apply_levels(calibration, active)) for m, active in out]
    return out


def _episode_rows(episodes: Sequence[ew.Episode]) -> pd.DataFrame:
    cols = ["client_key", "signal", "opened_at", "last_seen_at", "cleared_at", "severity", "max_severity",
            "observed_value", "threshold", "signal_date", "first_warning_at"]
    return pd.DataFrame([{c: getattr(e, c) for c in cols} for e in episodes], columns=cols)


def advance_warning_state(con: duckdb.DuckDBPyConnection, run_id: str, calibration=None) -> dict[str, int]:
    """Replay the months not processed yet onto the state table (idempotent: no new month, no change)."""
    ensure_state(con)
    end = as_of_month(con)
    last = con.execute(f"SELECT max(last_processed_month) FROM {PROGRESS}").fetchall()[0][0]
    first = con.execute("SELECT min(snapshot_month) FROM marts.fct_product_usage_monthly").fetchall()[0][0]
    start = add_months(last, 1) if last else first
    if start is None or end is None or start > end:
        return {"months_processed": 0, "opened": 0, "cleared": 0}
    open_eps = {}
    for r in con.execute(f"SELECT client_key, signal, opened_at, last_seen_at, severity, max_severity, observed_value, "
                         f"threshold, signal_date, first_warning_at FROM {EPISODES} WHERE cleared_at IS NULL").fetchall():
        open_eps[(r[0], r[1])] = ew.Episode(client_key=r[0], signal=r[1], opened_at=r[2], last_seen_at=r[3], severity=r[4],
                                            max_severity=r[5], observed_value=r[6], threshold=r[7], signal_date=r[8],
                                            first_warning_at=r[9])
    months = monthly_observations(con, start, end, calibration)
    before = set(open_eps)
    now_open, cleared = ew.replay(open_eps, months)
    df = _episode_rows([*now_open.values(), *cleared])
    con.register("eps_df", df)
    try:
        con.execute("BEGIN")
        con.execute(f"DELETE FROM {EPISODES} WHERE cleared_at IS NULL")
        con.execute(f"INSERT INTO {EPISODES} SELECT client_key, signal, opened_at::DATE, last_seen_at::DATE, cleared_at::DATE, "
                    "severity, max_severity, observed_value, threshold, signal_date::DATE, first_warning_at::DATE FROM eps_df")
        con.execute(f"INSERT INTO {PROGRESS} VALUES ({lit(end)}, ?, now()::TIMESTAMP)", [run_id])
        con.execute("COMMIT")
    finally:
        con.unregister("eps_df")
    first_end = last_day_of(start)
    opened = sum(1 for e in [*now_open.values(), *cleared] if e.opened_at >= first_end)
    return {"months_processed": len(months), "opened": opened, "cleared": len(cleared)}


def last_day_of(month: date) -> date:
    return add_months(month, 1).replace(day=1) - pd.Timedelta(days=1).to_pytimedelta()


WARNING_COLUMNS = {
    "warning_id": "Stable id of the warning: client_key|signal|opened_at.",
    "client_key": "Pseudonymous client key.",
    "segment_id": "Segment of the client (see client_product_recommendations.segment_id).",
    "segment_name": "Readable segment name.",
    "signal": "score_drop, arrears, high_utilisation, negative_cash_flow, legal_judgments, inquiries, collateral or multiple_signals.",
    "signal_description": "What the observed value measures.",
    "status": "open (signal still seen in the latest evaluated month) or cleared.",
    "severity": "Severity in the latest month the signal was seen: watch, warning or critical (rules in docs/applications.md; with a calibrated combined score, ml.early_warning_calibration, the client's score level).",
    "max_severity": "Highest severity while the warning was open.",
    "observed_value": "Latest observed value of the signal.",
    "threshold": "Watch threshold of the signal (observed at or beyond it raises the warning).",
    "warning_threshold": "Expert rule: observed value from which the severity is `warning` (null: never; not used while a calibrated combined score drives the levels).",
    "critical_threshold": "Expert rule: observed value from which the severity is `critical` (null: never; see warning_threshold).",
    "signal_date": "Date of the observation behind the latest value (bureau report date or snapshot month).",
    "opened_at": "Month end in which the signal was first seen (kept across runs in state.early_warning_episodes).",
    "first_warning_at": "First month end with severity warning or critical (null: watch only).",
    "last_seen_at": "Latest month end in which the signal was seen.",
    "cleared_at": "First month end in which the signal was no longer seen; null while open.",
    "months_open": "Months from opened_at to cleared_at (or to the as-of month while open).",
    "as_of_date": "The build's as-of date.",
}


def _signal_catalogue_sql() -> str:
    vals = ", ".join(f"({_q(s.name)}, {_q(s.description)}, {s.warning if s.warning is not None else 'NULL'}, "
                     f"{s.critical if s.critical is not None else 'NULL'})" for s in ew.SIGNALS.values())
    return f"SELECT * FROM (VALUES {vals}) AS t(signal, signal_description, warning_threshold, critical_threshold)"


def _warning_chart(con: duckdb.DuckDBPyConnection):
    df = con.execute(f"""
        WITH months AS (SELECT DISTINCT last_day(snapshot_month) AS m FROM marts.fct_product_usage_monthly)
        SELECT m, e.max_severity AS severity, count(*) AS n FROM months
        JOIN {EPISODES} AS e ON e.opened_at <= m AND (e.cleared_at IS NULL OR e.cleared_at > m)
        WHERE e.signal <> 'collateral' GROUP BY ALL ORDER BY 1""").df()
    fig, ax = _figure(9, 4)
    if df.empty:
        ax.text(0.5, 0.5, "no warnings", ha="center")
        return fig
    piv = df.pivot_table(index="m", columns="severity", values="n", fill_value=0)
    piv = piv[[s for s in ew.SEVERITIES if s in piv.columns]]
    piv.plot.area(ax=ax, color={"watch": "#f2c14e", "warning": "#f78154", "critical": "#b3001b"}, alpha=0.85)
    ax.set_title("Open warnings by (highest) severity, month by month (collateral coverage excluded)")
    ax.set_xlabel("")
    ax.set_ylabel("open warnings")
    return fig


@dg.asset(key=WARNINGS, group_name=GROUP, kinds={"duckdb", "python"},
          deps=[USAGE_MONTHLY, STG_BUREAU, DIM_CLIENT, AS_OF, EW_CALIBRATION, *SEGMENT_DEPS])
def risk_early_warnings(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Risk early warnings per client and signal (bureau and usage history), one open warning per client and signal.

    Signals: bureau score drop since the previous report, new or rising arrears, utilisation > 90 % in
    consecutive months, negative operating cash flow in consecutive reports, new legal judgments, rising
    inquiries, collateral coverage below 1, several signals at once. Severity watch / warning / critical by the
    rules in docs/applications.md. The timeline (opened_at, cleared_at) is kept across runs in
    state.early_warning_episodes, which dbt and full_rebuild never drop; each run replays only new months.
    """
    from dagster_project.ew_calibration_assets import current_calibration

    calibration = current_calibration(warehouse.settings)  # ml/early_warning_calibration (expert when none)
    with connect(warehouse.settings) as con:
        stats = advance_warning_state(con, context.run_id, calibration)
        seg_sql, seg_source = segment_sql(con)
        con.execute("BEGIN")
        n = publish_table(con, "marts.risk_early_warnings", f"""
            SELECT e.client_key || '|' || e.signal || '|' || strftime(e.opened_at, '%Y-%m-%d') AS warning_id,
                e.client_key, s.segment_id, s.segment_name, e.signal, sc.signal_description,
                CASE WHEN e.cleared_at IS NULL THEN 'open' ELSE 'cleared' END AS status,
                e.severity, e.max_severity, e.observed_value, e.threshold, sc.warning_threshold::DOUBLE AS warning_threshold,
                sc.critical_threshold::DOUBLE AS critical_threshold, e.signal_date, e.opened_at, e.first_warning_at,
                e.last_seen_at, e.cleared_at,
                date_diff('month', e.opened_at, coalesce(e.cleared_at, d.as_of_date)) AS months_open, d.as_of_date
            FROM {EPISODES} AS e
            JOIN marts.dim_client AS d USING (client_key)
            JOIN ({seg_sql}) AS s USING (client_key)
            LEFT JOIN ({_signal_catalogue_sql()}) AS sc USING (signal)
            ORDER BY e.client_key, e.signal, e.opened_at""",
            "Risk early warnings: one row per warning (client x signal x opening), open or cleared (docs/applications.md).",
            WARNING_COLUMNS)
        con.execute("COMMIT")
        summary = con.execute("""
            SELECT signal, count(*) FILTER (WHERE status = 'open') AS open,
                count(*) FILTER (WHERE status = 'open' AND severity = 'watch') AS watch,
                count(*) FILTER (WHERE status = 'open' AND severity = 'warning') AS warning,
                count(*) FILTER (WHERE status = 'open' AND severity = 'critical') AS critical,
                count(*) FILTER (WHERE status = 'cleared') AS cleared
            FROM marts.risk_early_warnings GROUP BY signal ORDER BY open DESC""").df()
        clients_flagged = con.execute("SELECT count(DISTINCT client_key) FROM marts.risk_early_warnings WHERE status = 'open' "
                                      "AND severity IN ('warning', 'critical')").fetchall()[0][0]
        chart = png_markdown(_warning_chart(con), "warnings by severity over time")
    return dg.MaterializeResult(metadata=chart_first({
        "rows": n, **stats, "clients_with_open_warning_or_critical": clients_flagged, "segment_source": seg_source,
        "calibration_version": calibration.version or "expert", "level_driver": calibration.method,
        "summary": md_table(summary), "chart": chart}))


EW_EVAL_COLUMNS = {
    "flag_level": "A client counts as flagged at the cutoff when it has an open warning of at least this severity (`warning` is the operating rule).",
    "cutoff_month": "Warnings are replayed on data up to the end of this month only.",
    "outcome_end_month": "Outcome window end (months after the cutoff up to here).",
    "clients": "Clients with a facility snapshot in the cutoff month that had not reached 90+ dpd by then.",
    "flagged": "Of those, clients flagged at the cutoff.",
    "positives": "Clients that FIRST reached 90+ days past due in the outcome window.",
    "true_positives": "Flagged clients among the positives.",
    "precision": "true_positives / flagged.",
    "recall": "true_positives / positives.",
    "median_lead_months": "Median months from the client's first warning/critical (12 months up to the cutoff) to its first 90+ dpd month.",
    "meets_bar": "recall >= 0.70, precision >= 0.30 and median lead >= 2 months.",
    "share_flagged": "flagged / clients.",
    "level_driver": "What set the levels: score (calibrated combined score) or expert (fixed thresholds).",
    "calibration_version": "ml.early_warning_calibration version evaluated (expert: fallback thresholds); it read no data after cutoff_month.",
}


def evaluate_warnings(con: duckdb.DuckDBPyConnection, horizon: int = EVAL_HORIZON_MONTHS, calibration=None) -> pd.DataFrame:
    """Time split: warnings replayed from scratch on data up to the cutoff vs first 90+ dpd after it.

    ``calibration``: the levels of that calibration (ew_calibration_assets.calibration_for_evaluation makes sure it
    read no data after the cutoff); None = expert thresholds.
    """
    end = as_of_month(con)
    cutoff = add_months(end, -horizon)
    first = con.execute("SELECT min(snapshot_month) FROM marts.fct_product_usage_monthly").fetchall()[0][0]
    months = monthly_observations(con, first, cutoff, calibration) if first and first <= cutoff else []
    open_eps, _ = ew.replay({}, months)
    first_default = dict(con.execute(first_default_sql()).fetchall())
    population = [r[0] for r in con.execute(
        f"SELECT DISTINCT client_key FROM marts.fct_product_usage_monthly WHERE snapshot_month = {lit(cutoff)}").fetchall()]
    population = [c for c in population if not (c in first_default and first_default[c] <= cutoff)]
    positives = {c: m for c, m in first_default.items() if cutoff < m <= end}
    cutoff_end = last_day_of(cutoff)
    rows = []
    for level in ew.SEVERITIES:
        need = ew.SEVERITY_RANK[level]
        history: dict[str, date] = {}
        for m, active in months:
            if ew.months_between(m, cutoff_end) >= 12:
                continue
            for (ck, _sig), o in active.items():
                if ew.SEVERITY_RANK[o.severity] >= max(need, 2) and ck not in history:
                    history[ck] = m
        flagged = {}
        for (ck, _sig), ep in open_eps.items():
            if ew.SEVERITY_RANK[ep.severity] >= need:
                flagged[ck] = min(history.get(ck, cutoff_end), flagged.get(ck, cutoff_end))
        r = ew.evaluate(flagged, positives, population)
        rows.append({"flag_level": level, "cutoff_month": cutoff, "outcome_end_month": end, "clients": r.clients,
                     "flagged": r.flagged, "positives": r.positives, "true_positives": r.true_positives,
                     "precision": r.precision, "recall": r.recall, "median_lead_months": r.median_lead_months,
                     "meets_bar": bool(r.recall >= 0.70 and r.precision >= 0.30 and (r.median_lead_months or 0) >= 2),
                     "share_flagged": r.flagged / r.clients if r.clients else 0.0,
                     "level_driver": calibration.method if calibration is not None else "expert",
                     "calibration_version": (calibration.version or "expert") if calibration is not None else "expert"})
    return pd.DataFrame(rows)


def _ew_eval_chart(ev: pd.DataFrame):
    fig, ax = _figure(8, 4)
    x = np.arange(len(ev))
    ax.bar(x - 0.2, ev.precision, 0.4, label="precision")
    ax.bar(x + 0.2, ev.recall, 0.4, label="recall")
    ax.axhline(0.7, ls="--", c="tab:orange", lw=1)
    ax.axhline(0.3, ls=":", c="tab:blue", lw=1)
    ax.set_xticks(x, [f"{lvl}+\nlead {ld if ld == ld else '-'} m" for lvl, ld in zip(ev.flag_level, ev.median_lead_months)])
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(f"Early warnings at {ev.cutoff_month.iat[0]} vs first 90+ dpd up to {ev.outcome_end_month.iat[0]}")
    return fig


@dg.asset(key=EW_EVAL, group_name=GROUP, kinds={"duckdb", "python"}, deps=[USAGE_MONTHLY, STG_BUREAU, AS_OF, EW_CALIBRATION])
def early_warning_evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Time-split evaluation of the early warnings: precision, recall and median lead time.

    The warning rules are replayed from scratch on data up to 6 months before the last snapshot; the outcome
    is a client first reaching 90+ days past due in those last 6 months.
    """
    from dagster_project.ew_calibration_assets import evaluation_with_comparison

    with connect(warehouse.settings) as con:
        ev, comparison_md = evaluation_with_comparison(con, warehouse.settings, EVAL_HORIZON_MONTHS)
        con.register("ev_df", ev)
        try:
            con.execute("BEGIN")
            publish_table(con, "marts.early_warning_evaluation", "SELECT * FROM ev_df",
                          "Time-split evaluation of the risk early warnings (precision, recall, lead time).", EW_EVAL_COLUMNS)
            con.execute("COMMIT")
        finally:
            con.unregister("ev_df")
    op = ev[ev.flag_level == "warning"].iloc[0]
    if not op.meets_bar:
        context.log.warning("early warnings miss the evaluation bar on this data")
    return dg.MaterializeResult(metadata=chart_first({
        "cutoff_month": str(op.cutoff_month), "precision": float(op.precision), "recall": float(op.recall),
        "median_lead_months": float(op.median_lead_months) if op.median_lead_months == op.median_lead_months and op.median_lead_months is not None else None,
        "meets_bar": bool(op.meets_bar), "summary": md_table(ev.drop(columns=["cutoff_month", "outcome_end_month"])),
        "level_driver": str(op.level_driver), "calibration_version": str(op.calibration_version),
        "share_flagged": float(op.share_flagged), "method_comparison": comparison_md,
        "chart": png_markdown(_ew_eval_chart(ev), "precision and recall")}))


# ----------------------------------------------------------------------------------------------------------
# credit policy and marketing
# ----------------------------------------------------------------------------------------------------------

# Segment approval track (first matching rule wins; documented in docs/applications.md):
#   restricted       default share (grade D) >= 15 %, or mean grade R7 or worse (>= 6.5), or 30+ dpd rate >= 30 %
#   enhanced_review  high-risk industry share >= 50 %, or mean grade R5 or worse (>= 4.5), or 30+ dpd rate >= 15 %,
#                    or default share >= 5 %
#   standard         otherwise
TRACK_RULES = {"restricted": {"default_share": 0.15, "mean_grade": 6.5, "arrears_rate": 0.30},
               "enhanced_review": {"high_risk_share": 0.50, "mean_grade": 4.5, "arrears_rate": 0.15, "default_share": 0.05}}


def segment_track(default_share: float, mean_grade: float | None, arrears_rate: float, high_risk_share: float
                  ) -> tuple[str, str]:
    """(approval track, reason codes) of a segment from its risk figures."""
    r, e = TRACK_RULES["restricted"], TRACK_RULES["enhanced_review"]
    g = mean_grade if mean_grade is not None and mean_grade == mean_grade else 0.0
    reasons = [c for c, hit in (("DEFAULT_SHARE_GE_15PCT", default_share >= r["default_share"]),
                                ("MEAN_GRADE_R7_OR_WORSE", g >= r["mean_grade"]),
                                ("ARREARS_RATE_GE_30PCT", arrears_rate >= r["arrears_rate"])) if hit]
    if reasons:
        return "restricted", "|".join(reasons)
    reasons = [c for c, hit in (("HIGH_RISK_SHARE_GE_50PCT", high_risk_share >= e["high_risk_share"]),
                                ("MEAN_GRADE_R5_OR_WORSE", g >= e["mean_grade"]),
                                ("ARREARS_RATE_GE_15PCT", arrears_rate >= e["arrears_rate"]),
                                ("DEFAULT_SHARE_GE_5PCT", default_share >= e["default_share"])) if hit]
    if reasons:
        return "enhanced_review", "|".join(reasons)
    return "standard", "SEGMENT_RISK_WITHIN_APPETITE"


def client_track(segment_track_: str, rating_grade: str, industry_risk_class: str, open_critical: bool,
                 open_warning: bool) -> tuple[str, str]:
    """(approval track, reason codes) of one client from its segment's track, own rating, risk class and warnings.

    restricted: grade D or R8, an open critical early warning, or a restricted segment unless the client is
    rated R1-R3 outside `high` industries (then enhanced_review). enhanced_review: segment enhanced_review,
    `high` industry risk class, grade R6-R7, unrated, or an open warning-level early warning. standard otherwise.
    """
    strong = rating_grade in ("R1", "R2", "R3") and industry_risk_class != "high"
    if rating_grade in ("D", "R8"):
        return "restricted", f"OWN_GRADE_{rating_grade}"
    if open_critical:
        return "restricted", "OPEN_CRITICAL_EARLY_WARNING"
    if segment_track_ == "restricted":
        return ("enhanced_review", "SEGMENT_RESTRICTED|OWN_GRADE_STRONG") if strong else ("restricted", "SEGMENT_RESTRICTED")
    reasons = [c for c, hit in (("SEGMENT_ENHANCED_REVIEW", segment_track_ == "enhanced_review"),
                                ("HIGH_RISK_INDUSTRY", industry_risk_class == "high"),
                                ("OWN_GRADE_R6_R7", rating_grade in ("R6", "R7")),
                                ("UNRATED", rating_grade not in rc.GRADE_ORDER),
                                ("OPEN_EARLY_WARNING", open_warning)) if hit]
    if reasons:
        return "enhanced_review", "|".join(reasons)
    return "standard", "SEGMENT_STANDARD|OWN_RISK_WITHIN_APPETITE"


TRACK_TEXT = {"standard": "standard approval", "enhanced_review": "enhanced credit review",
              "restricted": "restricted: new lending only by exception"}

SEG_POLICY_COLUMNS = {
    "segment_id": "Segment (marts.client_segments final segment, or rule-based size_class x industry_risk_class).",
    "segment_name": "Readable segment name.",
    "segment_source": "marts.client_segments, ml.segment_assignments or rule_based.",
    "clients": "Clients in the segment (all lifecycle stages).",
    "customers": "Clients with a facility in the as-of month.",
    "exposure": "Sum of current credit limits (CNY) - committed exposure.",
    "outstanding": "Sum of current outstanding balances (CNY).",
    "rated_clients": "Clients with a rating grade (not unrated).",
    "mean_grade_order": "Mean rating grade_order of rated clients (1 = R1 .. 9 = D).",
    "average_rating_grade": "mean_grade_order rounded to the master-scale grade.",
    "pd_band": "PD band of average_rating_grade (rating_master_scale).",
    "mean_pd": "Mean PD (midpoint of each rated client's band).",
    "default_share": "Share of rated clients in grade D.",
    "arrears_rate": "Share of clients with usage having a month 30+ days past due in the last 12 months.",
    "high_risk_share": "Share of clients in `high` industry risk-class industries (B, D, E).",
    "open_critical_warnings": "Clients with an open critical early warning.",
    "approval_track": "standard, enhanced_review or restricted (rules in docs/applications.md).",
    "track_reason": "Pipe-separated reason codes of the track.",
    "recommended_products": "The 3 products most often in the segment's top-3 recommendations (pipe-separated).",
    "as_of_date": "The build's as-of date.",
}
CLIENT_POLICY_COLUMNS = {
    "client_key": "Pseudonymous client key.",
    "segment_id": "Segment of the client.",
    "segment_name": "Readable segment name.",
    "segment_track": "Approval track of the segment (marts.segment_policy).",
    "rating_grade": "dim_client.rating_grade.",
    "industry_risk_class": "dim_client.industry_risk_class.",
    "open_warning": "The client has an open warning-level early warning.",
    "open_critical_warning": "The client has an open critical early warning.",
    "approval_track": "Client approval track: standard, enhanced_review or restricted.",
    "track_reason": "Pipe-separated reason codes.",
    "track_reason_text": "The track in words.",
    "as_of_date": "The build's as-of date.",
}


def _policy_chart(pol: pd.DataFrame):
    fig, ax = _figure(9, 4.5)
    top = pol.sort_values("exposure", ascending=False).head(15)
    colors = top.approval_track.map({"standard": "tab:green", "enhanced_review": "tab:orange", "restricted": "tab:red"})
    ax.barh(top.segment_name, top.exposure / 1e9, color=colors)
    ax.invert_yaxis()
    ax.set_xlabel("exposure, CNY bn (green standard, orange enhanced review, red restricted)")
    ax.set_title("Credit policy: approval track of the 15 largest segments by exposure")
    ax.tick_params(axis="y", labelsize=7)
    return fig


@dg.multi_asset(
    specs=[dg.AssetSpec(SEG_POLICY, group_name=GROUP, kinds={"duckdb", "python"},
                        deps=[DIM_CLIENT, USAGE_PROFILE, MASTER_SCALE, RECS, WARNINGS, *SEGMENT_DEPS],
                        description="Per segment: size, exposure, average rating and PD band, arrears rate, "
                                    "high-risk share, approval track (standard / enhanced_review / restricted) "
                                    "by documented rules, recommended products."),
           dg.AssetSpec(CLIENT_POLICY, group_name=GROUP, kinds={"duckdb", "python"},
                        deps=[DIM_CLIENT, WARNINGS, *SEGMENT_DEPS],
                        description="Per client: approval track from its segment's track, its own rating and "
                                    "industry risk class and its open early warnings, with the reason.")],
    name="credit_policy")
def credit_policy(context: dg.AssetExecutionContext, warehouse: Warehouse):
    """Credit policy per segment and per client (marts.segment_policy, marts.client_policy)."""
    with connect(warehouse.settings) as con:
        seg_sql, seg_source = segment_sql(con)
        con.execute(f"CREATE OR REPLACE TEMP TABLE seg AS {seg_sql}")
        figures = con.execute("""
            WITH w AS (
                SELECT client_key, bool_or(severity = 'critical') AS crit, bool_or(severity IN ('warning', 'critical')) AS warn
                FROM marts.risk_early_warnings WHERE status = 'open' GROUP BY client_key
            ), recs AS (
                SELECT segment_id, product_code, count(*) AS n FROM marts.client_product_recommendations
                WHERE product_code IS NOT NULL GROUP BY ALL
            ), top_recs AS (
                SELECT segment_id, string_agg(product_code, '|' ORDER BY n DESC, product_code) AS recommended_products
                FROM (SELECT *, row_number() OVER (PARTITION BY segment_id ORDER BY n DESC, product_code) AS rk FROM recs)
                WHERE rk <= 3 GROUP BY segment_id
            )
            SELECT s.segment_id, any_value(s.segment_name) AS segment_name, any_value(s.segment_source) AS segment_source,
                count(*) AS clients, count(*) FILTER (WHERE d.current_credit_limit > 0) AS customers,
                sum(d.current_credit_limit) AS exposure, sum(d.current_outstanding) AS outstanding,
                count(d.rating_grade_order) AS rated_clients, avg(d.rating_grade_order) AS mean_grade_order,
                avg((d.pd_min + d.pd_max) / 2) AS mean_pd,
                coalesce(avg((d.rating_grade = 'D')::INT) FILTER (WHERE d.rating_grade_order IS NOT NULL), 0) AS default_share,
                coalesce(avg((u.months_30_plus_dpd_12m > 0)::INT), 0) AS arrears_rate,
                avg((d.industry_risk_class = 'high')::INT) AS high_risk_share,
                count(*) FILTER (WHERE w.crit) AS open_critical_warnings,
                any_value(t.recommended_products) AS recommended_products, any_value(d.as_of_date) AS as_of_date
            FROM seg AS s JOIN marts.dim_client AS d USING (client_key)
            LEFT JOIN marts.fct_client_usage_profile AS u USING (client_key)
            LEFT JOIN w USING (client_key) LEFT JOIN top_recs AS t USING (segment_id)
            GROUP BY s.segment_id ORDER BY s.segment_id""").df()
        tracks = [segment_track(r.default_share, r.mean_grade_order, r.arrears_rate, r.high_risk_share)
                  for r in figures.itertuples()]
        figures["approval_track"] = [t for t, _ in tracks]
        figures["track_reason"] = [why for _, why in tracks]
        figures["grade_round"] = figures.mean_grade_order.round().astype("Int64")
        con.register("fig_df", figures)
        clients = con.execute("""
            SELECT s.client_key, d.rating_grade, d.industry_risk_class,
                coalesce(bool_or(w.severity IN ('warning', 'critical')), false) AS open_warning,
                coalesce(bool_or(w.severity = 'critical'), false) AS open_critical
            FROM seg AS s JOIN marts.dim_client AS d USING (client_key)
            LEFT JOIN marts.risk_early_warnings AS w ON w.client_key = s.client_key AND w.status = 'open'
            GROUP BY ALL ORDER BY s.client_key""").df()
        seg_track = dict(con.execute("SELECT s.client_key, f.approval_track FROM seg AS s JOIN fig_df AS f USING (segment_id)").fetchall())
        ct = [client_track(seg_track[r.client_key], r.rating_grade, r.industry_risk_class, bool(r.open_critical),
                           bool(r.open_warning)) for r in clients.itertuples()]
        clients["approval_track"] = [t for t, _ in ct]
        clients["track_reason"] = [why for _, why in ct]
        con.register("cli_df", clients)
        try:
            con.execute("BEGIN")
            n_seg = publish_table(con, "marts.segment_policy", """
                SELECT f.segment_id, f.segment_name, f.segment_source, f.clients::INTEGER AS clients,
                    f.customers::INTEGER AS customers, f.exposure::DOUBLE AS exposure, f.outstanding::DOUBLE AS outstanding,
                    f.rated_clients::INTEGER AS rated_clients, round(f.mean_grade_order, 3) AS mean_grade_order,
                    ms.rating_grade AS average_rating_grade, coalesce(dc.pd_band, 'unrated') AS pd_band,
                    f.mean_pd::DOUBLE AS mean_pd, f.default_share::DOUBLE AS default_share, f.arrears_rate::DOUBLE AS arrears_rate,
                    f.high_risk_share::DOUBLE AS high_risk_share, f.open_critical_warnings::INTEGER AS open_critical_warnings,
                    f.approval_track, f.track_reason, f.recommended_products, f.as_of_date
                FROM fig_df AS f
                LEFT JOIN reference.rating_master_scale AS ms ON ms.grade_order = f.grade_round
                LEFT JOIN (SELECT DISTINCT rating_grade, pd_band FROM marts.dim_client) AS dc ON dc.rating_grade = ms.rating_grade
                ORDER BY f.segment_id""",
                "Credit policy per segment: risk figures and approval track (docs/applications.md).", SEG_POLICY_COLUMNS)
            n_cli = publish_table(con, "marts.client_policy", f"""
                SELECT c.client_key, s.segment_id, s.segment_name, f.approval_track AS segment_track, c.rating_grade,
                    c.industry_risk_class, c.open_warning, c.open_critical AS open_critical_warning, c.approval_track,
                    c.track_reason,
                    CASE c.approval_track {" ".join(f"WHEN {_q(k)} THEN {_q(v)}" for k, v in TRACK_TEXT.items())} END
                        || ' (' || replace(lower(c.track_reason), '|', ', ') || ')' AS track_reason_text,
                    d.as_of_date
                FROM cli_df AS c JOIN seg AS s USING (client_key) JOIN fig_df AS f USING (segment_id)
                JOIN marts.dim_client AS d USING (client_key) ORDER BY c.client_key""",
                "Credit policy per client: approval track with its reason (docs/applications.md).", CLIENT_POLICY_COLUMNS)
            con.execute("COMMIT")
        finally:
            con.unregister("fig_df")
            con.unregister("cli_df")
        pol = con.execute("SELECT * FROM marts.segment_policy").df()
        mix = con.execute("SELECT approval_track, count(*) AS clients FROM marts.client_policy GROUP BY 1 ORDER BY 1").df()
    show = pol[["segment_name", "clients", "exposure", "average_rating_grade", "pd_band", "arrears_rate",
                "high_risk_share", "approval_track", "recommended_products"]].sort_values("exposure", ascending=False).head(20)
    show = show.assign(exposure=(show.exposure / 1e6).round(1).astype(str) + " m")
    yield dg.MaterializeResult(asset_key=SEG_POLICY, metadata=chart_first({
        "rows": n_seg, "segment_source": seg_source, "summary": md_table(show),
        "chart": png_markdown(_policy_chart(pol), "approval track by segment")}))
    fig, ax = _figure(6, 3.5)
    ax.bar(mix.approval_track, mix.clients, color=["tab:orange", "tab:red", "tab:green"][:len(mix)])
    ax.set_title("Clients by approval track")
    yield dg.MaterializeResult(asset_key=CLIENT_POLICY, metadata=chart_first({
        "rows": n_cli, "summary": md_table(mix), "chart": png_markdown(fig, "clients by approval track")}))


MARKETING_COLUMNS = {
    "segment_id": "Segment.",
    "segment_name": "Readable segment name.",
    "segment_source": "marts.client_segments, ml.segment_assignments or rule_based.",
    "clients": "Clients in the segment.",
    "prospects": "Prospects in the segment.",
    "approval_track": "Segment approval track (marts.segment_policy).",
    "preferred_channel": "Most common primary channel of the segment's customers over 12 months (online for prospect-only segments of micro/small firms, else relationship_manager).",
    "contact_intensity": "high (monthly RM contact), medium (quarterly) or low (digital only) - rules in docs/applications.md.",
    "products_to_push": "Up to 3 products most often recommended in the segment (pipe-separated); empty for restricted segments.",
    "eligible_clients": "Active clients and prospects of the segment with one of products_to_push among their top-3 recommendations.",
    "advisory_clients": "Clients of the segment flagged for tailored financial advisory.",
    "platinum_gold_share": "Share of clients in value tiers platinum or gold.",
    "as_of_date": "The build's as-of date.",
}


def contact_intensity(track: str, platinum_gold_share: float, eligible_share: float) -> str:
    """high: standard track and >= 30 % platinum/gold clients or >= 50 % eligible; low: restricted; else medium."""
    if track == "restricted":
        return "low"
    if track == "standard" and (platinum_gold_share >= 0.30 or eligible_share >= 0.50):
        return "high"
    return "medium"


@dg.asset(key=SEG_MARKETING, group_name=GROUP, kinds={"duckdb", "python"},
          deps=[DIM_CLIENT, USAGE_PROFILE, RECS, SEG_POLICY, *SEGMENT_DEPS])
def segment_marketing(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Marketing plan per segment: preferred channel, contact intensity, products to push, eligible clients."""
    with connect(warehouse.settings) as con:
        df = con.execute("""
            WITH ch AS (
                SELECT r.segment_id, u.primary_channel_12m AS channel, count(*) AS n
                FROM marts.client_product_recommendations AS r JOIN marts.fct_client_usage_profile AS u USING (client_key)
                WHERE u.primary_channel_12m IS NOT NULL AND r.recommendation_rank IS DISTINCT FROM 2
                    AND r.recommendation_rank IS DISTINCT FROM 3 GROUP BY ALL
            ), best AS (SELECT segment_id, arg_max(channel, n * 10 + (channel = 'relationship_manager')::INT) AS channel FROM ch GROUP BY 1),
            seg AS (
                SELECT p.segment_id, p.segment_name, p.segment_source, p.clients, p.approval_track, p.recommended_products,
                    p.as_of_date FROM marts.segment_policy AS p
            ), members AS (
                SELECT DISTINCT r.segment_id, r.client_key FROM marts.client_product_recommendations AS r
            ), stats AS (
                SELECT m.segment_id, count(*) FILTER (WHERE d.lifecycle_stage = 'prospect') AS prospects,
                    avg((d.value_tier IN ('platinum', 'gold'))::INT) AS platinum_gold_share,
                    avg((d.size_class IN ('micro', 'small'))::INT) AS small_share
                FROM members AS m JOIN marts.dim_client AS d USING (client_key) GROUP BY 1
            ), adv AS (
                SELECT segment_id, count(DISTINCT client_key) FILTER (WHERE advisory_recommended) AS advisory_clients,
                    count(DISTINCT client_key) AS rec_clients
                FROM marts.client_product_recommendations GROUP BY 1
            )
            SELECT s.*, coalesce(st.prospects, 0) AS prospects, coalesce(st.platinum_gold_share, 0) AS platinum_gold_share,
                coalesce(b.channel, CASE WHEN coalesce(st.small_share, 0) >= 0.5 THEN 'online' ELSE 'relationship_manager' END)
                    AS preferred_channel,
                coalesce(a.advisory_clients, 0) AS advisory_clients, coalesce(a.rec_clients, 0) AS rec_clients
            FROM seg AS s LEFT JOIN best AS b USING (segment_id) LEFT JOIN stats AS st USING (segment_id)
            LEFT JOIN adv AS a USING (segment_id) ORDER BY s.segment_id""").df()
        df["products_to_push"] = [("" if t == "restricted" else (p or "")) for t, p in zip(df.approval_track, df.recommended_products)]
        con.register("mk_df", df)
        elig = dict(con.execute("""
            SELECT m.segment_id, count(DISTINCT r.client_key) FROM mk_df AS m
            JOIN marts.client_product_recommendations AS r USING (segment_id)
            WHERE m.products_to_push <> '' AND list_contains(string_split(m.products_to_push, '|'), r.product_code)
            GROUP BY 1""").fetchall())
        df["eligible_clients"] = df.segment_id.map(elig).fillna(0).astype(int)
        df["contact_intensity"] = [contact_intensity(t, pg, (e / rcn) if rcn else 0.0) for t, pg, e, rcn in
                                   zip(df.approval_track, df.platinum_gold_share, df.eligible_clients, df.rec_clients)]
        con.unregister("mk_df")
        con.register("mk_df", df)
        try:
            con.execute("BEGIN")
            n = publish_table(con, "marts.segment_marketing", """
                SELECT segment_id, segment_name, segment_source, clients::INTEGER AS clients, prospects::INTEGER AS prospects,
                    approval_track, preferred_channel, contact_intensity, products_to_push,
                    eligible_clients::INTEGER AS eligible_clients, advisory_clients::INTEGER AS advisory_clients,
                    platinum_gold_share::DOUBLE AS platinum_gold_share, as_of_date
                FROM mk_df ORDER BY segment_id""",
                "Marketing plan per segment (docs/applications.md).", MARKETING_COLUMNS)
            con.execute("COMMIT")
        finally:
            con.unregister("mk_df")
    fig, ax = _figure(9, 4.5)
    top = df.sort_values("eligible_clients", ascending=False).head(15)
    colors = top.preferred_channel.map({"online": "tab:blue", "branch": "tab:purple", "relationship_manager": "tab:green"})
    ax.barh(top.segment_name, top.eligible_clients, color=colors.fillna("tab:gray"))
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("eligible clients for the pushed products (blue online, purple branch, green RM)")
    ax.set_title("Marketing: eligible clients and preferred channel by segment")
    show = df[["segment_name", "clients", "approval_track", "preferred_channel", "contact_intensity", "products_to_push",
               "eligible_clients"]].sort_values("eligible_clients", ascending=False).head(20)
    return dg.MaterializeResult(metadata=chart_first({"rows": n, "summary": md_table(show),
                                          "chart": png_markdown(fig, "marketing by segment")}))


application_assets = [client_product_recommendations, recommendation_evaluation, risk_early_warnings,
                      early_warning_evaluation, credit_policy, segment_marketing]
