-- One row per client with at least one credit-bureau report: the latest report's features plus
-- 12-month trends and cash-flow stability across the client's reports.
{%- set proxy_rate = var('repayment_proxy_debt_service_rate', 0.20) %}
with reports as (
    select * from {{ ref('int_credit_reports_sequenced') }}
),

latest as (
    select * from reports where report_seq = 1
),

-- Score/debt baseline: the report closest to 12 months (365 days) before the latest report, searched
-- between 9 and 15 months (274-456 days) before it; ties go to the older report. None -> no 12m change.
baseline_12m as (
    select *
    from (
        select
            r.*,
            row_number() over (
                partition by r.client_key
                order by abs(r.days_before_latest - 365), r.report_date, r.report_id
            ) as baseline_rank
        from reports as r
        where r.days_before_latest between 274 and 456
    ) as ranked
    where baseline_rank = 1
),

-- Default baseline: the latest report dated at least 12 months before the as-of date; when every report
-- is younger, the client's earliest report. A rise of defaults_5y from it to the latest report means a
-- default was registered in (about) the last 12 months.
default_baseline as (
    select *
    from (
        select
            r.*,
            row_number() over (
                partition by r.client_key
                order by {{ default_baseline_order('r.is_12m_before_as_of') }}
            ) as default_baseline_rank
        from reports as r
    ) as ranked
    where default_baseline_rank = 1
),

cash_flow as (
    select
        client_key,
        count(*) as reports_count,
        count(operating_cash_flow) as cash_flow_reports,
        avg(operating_cash_flow) as operating_cash_flow_mean,
        stddev_samp(operating_cash_flow) as operating_cash_flow_stddev,
        avg(
            case
                when operating_cash_flow < 0 then cast(1 as double) when operating_cash_flow >= 0 then cast(0 as double)
            end
        )
            as negative_cash_flow_share,
        min(report_date) as first_report_date,
        max(inquiries_6m) as max_inquiries_6m,
        min(bureau_score) as min_bureau_score,
        max(bureau_score) as max_bureau_score
    from reports
    group by client_key
),

summarised as (
    select
        l.client_key,
        l.report_id as latest_report_id,
        l.report_date as latest_report_date,
        cf.first_report_date,
        cf.reports_count,
        l.bureau_score,
        b.report_date as baseline_12m_report_date,
        b.bureau_score as bureau_score_12m_ago,
        l.bureau_score - b.bureau_score as bureau_score_change_12m,
        cf.min_bureau_score,
        cf.max_bureau_score,
        l.total_debt,
        case when b.total_debt > 0 then (l.total_debt - b.total_debt) / b.total_debt end
            as total_debt_change_12m_pct,
        l.overdue_amount,
        l.overdue_ratio,
        l.max_days_past_due_12m,
        l.defaults_5y,
        db.report_date as default_baseline_report_date,
        db.defaults_5y as default_baseline_defaults_5y,
        coalesce(l.defaults_5y > db.defaults_5y, false) as default_in_last_12m,
        l.inquiries_6m,
        cf.max_inquiries_6m,
        l.legal_judgments,
        l.collateral_value,
        l.collateral_coverage,
        l.debt_to_equity,
        l.current_ratio,
        l.operating_cash_flow,
        l.debt_service_12m,
        case
            when l.operating_cash_flow is not null and l.debt_service_12m > 0
                then l.operating_cash_flow / l.debt_service_12m
            when l.operating_cash_flow is not null and l.total_debt > 0
                then l.operating_cash_flow / (l.total_debt * {{ proxy_rate }})
        end as repayment_capacity,
        case
            when l.operating_cash_flow is not null and l.debt_service_12m > 0 then 'reported_debt_service'
            when l.operating_cash_flow is not null and l.total_debt > 0 then 'proxy_total_debt_20pct'
            when l.total_debt = 0 then 'no_debt'
            else 'not_computable'
        end as repayment_capacity_basis,
        cf.cash_flow_reports,
        cf.operating_cash_flow_mean,
        cf.operating_cash_flow_stddev,
        case
            when cf.cash_flow_reports >= 3 and cf.operating_cash_flow_mean <> 0
                then cf.operating_cash_flow_stddev / abs(cf.operating_cash_flow_mean)
        end as cash_flow_cv,
        cf.negative_cash_flow_share
    from latest as l
    inner join cash_flow as cf
        on l.client_key = cf.client_key
    left join baseline_12m as b
        on l.client_key = b.client_key
    left join default_baseline as db
        on l.client_key = db.client_key
)

select
    s.*,
    case
        when s.cash_flow_reports < 3 then 'insufficient_history'
        when s.negative_cash_flow_share >= 0.5 or s.cash_flow_cv is null or s.cash_flow_cv >= 0.75 then 'volatile'
        when s.negative_cash_flow_share = 0 and s.cash_flow_cv < 0.25 then 'stable'
        else 'variable'
    end as cash_flow_stability
from summarised as s
