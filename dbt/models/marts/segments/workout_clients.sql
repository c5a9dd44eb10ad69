-- Clients in default, for the workout (recovery) team: every dim_client row with rating grade D, i.e. with a
-- default trigger (macro default_trigger, macros/credit_rules.sql - the same definition the rating applies):
-- the latest usage month 90+ days past due on any facility, else a latest bureau report with
-- max_days_past_due_12m >= 90, else a default registered in the last 12 months. Such clients are already in
-- default, so they are no early warning: marts.risk_early_warnings leaves them out (docs/applications.md).
-- default_since = the first month / report of the current default spell: for usage, the first 90+ dpd month
-- after the client's latest month below 90 dpd; for the bureau 90+ dpd trigger, the first report with
-- max_days_past_due_12m >= 90 after the latest report below; for a registered default, the first report after
-- the default baseline report whose defaults_5y rose. Null when the history does not show the start.
with defaulted as (
    select * from {{ ref('client_segments') }}
    where rating_grade = 'D'
),

usage as (
    select client_key, snapshot_month, max_days_past_due
    from {{ ref('fct_product_usage_monthly') }}
    where client_key in (select dc.client_key from defaulted as dc)
),

usage_last_current as (
    select client_key, max(snapshot_month) as last_month_below_90
    from usage
    where max_days_past_due < 90
    group by client_key
),

usage_spell as (
    select
        u.client_key,
        min(u.snapshot_month) as usage_default_since
    from usage as u
    left join usage_last_current as c
        on u.client_key = c.client_key
    where
        u.max_days_past_due >= 90
        and (c.last_month_below_90 is null or u.snapshot_month > c.last_month_below_90)
    group by u.client_key
),

usage_latest as (
    select client_key, {{ arg_max('max_days_past_due', 'snapshot_month') }} as latest_days_past_due
    from usage
    group by client_key
),

reports as (
    select client_key, report_date, max_days_past_due_12m, defaults_5y
    from {{ ref('stg_bureau__credit_reports') }}
    where client_key in (select dc.client_key from defaulted as dc)
),

bureau_last_current as (
    select client_key, max(report_date) as last_report_below_90
    from reports
    where max_days_past_due_12m < 90
    group by client_key
),

bureau_spell as (
    select r.client_key, min(r.report_date) as bureau_default_since
    from reports as r
    left join bureau_last_current as c
        on r.client_key = c.client_key
    where
        r.max_days_past_due_12m >= 90
        and (c.last_report_below_90 is null or r.report_date > c.last_report_below_90)
    group by r.client_key
),

registered as (
    select r.client_key, min(r.report_date) as registered_default_since
    from reports as r
    inner join {{ ref('int_clients_credit_summarised') }} as s
        on r.client_key = s.client_key
    where
        r.report_date > s.default_baseline_report_date
        and r.defaults_5y > s.default_baseline_defaults_5y
    group by r.client_key
),

spells as (
    select
        d.*,
        case d.default_trigger
            when 'usage_90_plus_dpd' then us.usage_default_since
            when 'bureau_90_plus_dpd_12m' then bs.bureau_default_since
            when 'bureau_default_last_12m' then rg.registered_default_since
        end as default_since,
        ul.latest_days_past_due
    from defaulted as d
    left join usage_spell as us on d.client_key = us.client_key
    left join bureau_spell as bs on d.client_key = bs.client_key
    left join registered as rg on d.client_key = rg.client_key
    left join usage_latest as ul on d.client_key = ul.client_key
)

select
    client_key,
    final_segment_id as segment_id,
    final_segment_name as segment_name,
    segment_source,
    default_trigger,
    case default_trigger
        when 'usage_90_plus_dpd' then 'latest usage month 90+ days past due on a facility'
        when 'bureau_90_plus_dpd_12m' then 'latest bureau report: 90+ days past due in the last 12 months'
        when 'bureau_default_last_12m' then 'bureau registered a default in the last 12 months'
    end as default_reason,
    default_since,
    case
        when default_since is not null
            then {{ dbt.datediff('default_since', 'as_of_date', 'month') }} end  -- noqa: LT05
        as months_in_default,
    latest_days_past_due,
    current_credit_limit as exposure,
    current_outstanding as outstanding,
    current_products_held as products_held,
    rating_grade,
    size_class,
    industry_section,
    industry_risk_class,
    lifecycle_stage,
    relationship_status,
    value_tier,
    as_of_date
from spells
