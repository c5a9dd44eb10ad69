"""As-of SQL (DuckDB) and month arithmetic of the applications stage.

As-of queries only read snapshots and bureau reports dated on or before the cutoff, so the time-split
evaluations never see the future.
"""

from datetime import date

import duckdb

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications import recommend as rc
from dagster_project.lib.months import add_months

EVAL_HORIZON_MONTHS = 6  # time split: features/warnings as of 6 months before the last snapshot


def lit(d: date) -> str:
    return f"DATE '{d.isoformat()}'"


EVALUATION_CUTOFF_MODEL = "intermediate.int_clients_at_evaluation_cutoff"


def client_state_sql(cutoff_month: date, live: bool) -> str:
    """One row per client of marts.dim_client as of the month ``cutoff_month`` (first day of the month).

    Holdings = products seen in any snapshot up to and including the cutoff month. Firm stage and rating
    grade are dbt's, never re-coded here: dim_client's when ``live``, else those of
    int_clients_at_evaluation_cutoff (the same rules at the evaluation cutoff; ``cutoff_month`` must be
    that model's cutoff, see ``evaluation_cutoff``).
    """
    c = lit(cutoff_month)
    held = ",\n        ".join(f"bool_or(product_code = '{p}') AS held_{p}" for p in rc.PRODUCTS)
    stage, grade = ("d.firm_stage", "d.rating_grade") if live else ("e.firm_stage", "e.rating_grade")
    at_cutoff = "" if live else f"LEFT JOIN {EVALUATION_CUTOFF_MODEL} AS e USING (client_key)"
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
        sum(interaction_count) AS interactions_12m
    FROM snaps WHERE snapshot_month > {c} - INTERVAL 12 MONTH GROUP BY client_key
), reps AS (
    SELECT *, row_number() OVER (PARTITION BY client_key ORDER BY report_date DESC, report_id DESC) AS rn
    FROM staging.stg_bureau__credit_reports WHERE report_date <= last_day({c})
), latest AS (
    SELECT * FROM reps WHERE rn = 1
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
{at_cutoff}
ORDER BY d.client_key
"""


def evaluation_cutoff(con: duckdb.DuckDBPyConnection, end_month: date, horizon: int) -> date:
    """``horizon`` months before ``end_month``: the cutoff dbt built int_clients_at_evaluation_cutoff for.

    dbt's var evaluation_horizon_months and EVAL_HORIZON_MONTHS must agree; a mismatch fails loudly rather than
    evaluating with firm stages and grades taken at another date.
    """
    cutoff = add_months(end_month, -horizon)
    built = {
        r[0] for r in con.execute(f"SELECT DISTINCT evaluation_cutoff_month FROM {EVALUATION_CUTOFF_MODEL}").fetchall()
    }
    if built and built != {cutoff}:
        raise RuntimeError(
            f"{EVALUATION_CUTOFF_MODEL} was built for cutoff {sorted(built)}, the evaluation needs "
            f"{cutoff} ({horizon} months before {end_month}): set dbt var evaluation_horizon_months "
            f"(dbt/dbt_project.yml) to {horizon}"
        )
    return cutoff


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


def signal_observations_sql(from_month: date, to_month: date, ordered: bool = True) -> str:
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
    SELECT client_key, month_end, 'arrears' AS signal, dpd::DOUBLE AS observed_value, {t["arrears"]}::DOUBLE AS
        threshold,
        snapshot_month AS signal_date FROM valid WHERE dpd >= {t["arrears"]}
    UNION ALL
    SELECT client_key, month_end, 'high_utilisation', util_run, {t["high_utilisation"]}, snapshot_month
        FROM valid WHERE util_run >= {t["high_utilisation"]}
    UNION ALL
    SELECT client_key, month_end, 'score_drop', prev_score - bureau_score, {t["score_drop"]}, report_date
        FROM valid WHERE report_valid AND prev_score - bureau_score >= {t["score_drop"]}
    UNION ALL
    SELECT client_key, month_end, 'negative_cash_flow', negative_cf_run, {t["negative_cash_flow"]}, report_date
        FROM valid WHERE report_valid AND negative_cf_run >= {t["negative_cash_flow"]}
    UNION ALL
    SELECT client_key, month_end, 'legal_judgments', legal_judgments - prev_judgments, {t["legal_judgments"]},
        report_date
        FROM valid WHERE report_valid AND legal_judgments - prev_judgments >= {t["legal_judgments"]}
    UNION ALL
    SELECT client_key, month_end, 'inquiries', inquiries_6m - prev_inquiries, {t["inquiries"]}, report_date
        FROM valid WHERE report_valid AND inquiries_6m - prev_inquiries >= {t["inquiries"]}
    UNION ALL
    SELECT client_key, month_end, 'collateral', round(coverage, 4), {t["collateral"]}, report_date
        FROM valid WHERE report_valid AND coverage < {t["collateral"]}
)
SELECT client_key, month_end, signal, observed_value::DOUBLE AS observed_value, threshold::DOUBLE AS threshold,
    signal_date::DATE AS signal_date
FROM obs{" ORDER BY month_end, client_key, signal" if ordered else ""}
"""


def first_default_sql() -> str:
    """First month each client reached 90+ days past due in the usage data."""
    return """
SELECT client_key, min(snapshot_month) AS first_90_month
FROM marts.fct_product_usage_monthly WHERE max_days_past_due >= 90 GROUP BY client_key
"""


def as_of_month(con: duckdb.DuckDBPyConnection) -> date:
    return con.execute("SELECT as_of_month FROM intermediate.int_as_of_date_derived").fetchall()[0][0]
