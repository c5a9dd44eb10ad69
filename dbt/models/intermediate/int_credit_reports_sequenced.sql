-- One row per credit-bureau report, numbered within its client (report_seq 1 = latest; ties on
-- report_date broken by report_id descending), with report-level ratios derived.
with reports as (
    select * from {{ ref('stg_bureau__credit_reports') }}
),

as_of as (
    select as_of_date from {{ ref('int_as_of_date_derived') }}
),

numbered as (
    select
        r.*,
        row_number() over (partition by r.client_key order by r.report_date desc, r.report_id desc) as report_seq,
        row_number() over (partition by r.client_key order by r.report_date asc, r.report_id asc) as report_seq_asc,
        max(r.report_date) over (partition by r.client_key) as latest_report_date
    from reports as r
)

select
    n.report_id,
    n.client_key,
    n.report_date,
    n.report_seq,
    n.report_seq_asc,
    {{ dbt.datediff('n.report_date', 'n.latest_report_date', 'day') }} as days_before_latest,  -- noqa: LT05
    n.report_date <= {{ dbt.dateadd('month', -12, 'a.as_of_date') }} as is_12m_before_as_of,
    n.bureau_score,
    n.total_debt,
    n.overdue_amount,
    n.max_days_past_due_12m,
    n.defaults_5y,
    n.inquiries_6m,
    n.collateral_value,
    n.operating_cash_flow,
    n.debt_service_12m,
    n.current_ratio,
    n.debt_to_equity,
    n.legal_judgments,
    case when n.total_debt > 0 then n.overdue_amount / n.total_debt end as overdue_ratio,
    case when n.total_debt > 0 then n.collateral_value / n.total_debt end as collateral_coverage
from numbered as n
cross join as_of as a
