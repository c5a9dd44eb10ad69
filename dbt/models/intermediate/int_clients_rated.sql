-- One row per CRM client: internal rating grade on the master scale (seed rating_master_scale).
--   1. DEFAULT OVERRIDE (macro default_trigger, macros/credit_rules.sql) -> 'D' whatever the score, and even without a
--      bureau report: latest usage month 90+ days past due on any facility, or latest bureau report with
--      max_days_past_due_12m >= 90, or a default registered in the last 12 months (defaults_5y rose, see
--      int_clients_credit_summarised).
--   2. Otherwise the band of the latest bureau score (score_min <= score <= score_max, inclusive).
--   3. Otherwise 'unrated': no bureau report, or a report without a score inside 300-900.
with clients as (
    select client_key from {{ ref('stg_crm__clients') }}
),

credit as (
    select
        client_key,
        latest_report_date,
        bureau_score,
        max_days_past_due_12m,
        default_in_last_12m
    from {{ ref('int_clients_credit_summarised') }}
),

usage_latest as (
    -- the client's latest usage month ((client_key, snapshot_month) is unique): by client, not ranked over all months
    select
        client_key,
        max(snapshot_month) as snapshot_month,
        {{ arg_max("max_days_past_due", "snapshot_month") }} as max_days_past_due
    from {{ ref('int_client_usage_months_aggregated') }}
    group by client_key
),

scale as (
    select * from {{ ref('rating_master_scale') }}
),

graded as (
    select
        c.client_key,
        cr.latest_report_date,
        cr.bureau_score,
        cr.max_days_past_due_12m as bureau_max_days_past_due_12m,
        coalesce(cr.default_in_last_12m, false) as bureau_default_in_last_12m,
        u.snapshot_month as latest_usage_month,
        u.max_days_past_due as latest_usage_days_past_due,
        {{ default_trigger('u.max_days_past_due', 'cr.max_days_past_due_12m', 'cr.default_in_last_12m') }}
            as default_trigger,
        s.rating_grade as score_grade
    from clients as c
    left join credit as cr
        on c.client_key = cr.client_key
    left join usage_latest as u
        on c.client_key = u.client_key
    left join scale as s
        on
            cr.bureau_score >= s.score_min
            and cr.bureau_score <= s.score_max
),

final as (
    select
        g.*,
        case
            when g.default_trigger is not null then 'D'
            when g.score_grade is not null then g.score_grade
            else 'unrated'
        end as rating_grade,
        case
            when g.default_trigger is not null then 'default_override'
            when g.score_grade is not null then 'bureau_score'
            when g.latest_report_date is null then 'no_bureau_report'
            else 'no_valid_score'
        end as rating_basis
    from graded as g
)

select
    f.client_key,
    f.rating_grade,
    f.rating_basis,
    f.default_trigger,
    f.score_grade,
    f.bureau_score,
    f.latest_report_date,
    f.bureau_max_days_past_due_12m,
    f.bureau_default_in_last_12m,
    f.latest_usage_month,
    f.latest_usage_days_past_due,
    s.grade_order as rating_grade_order,
    coalesce(s.credit_band, 'unrated') as credit_band,
    s.pd_min,
    s.pd_max,
    case
        when s.rating_grade is not null then {{ dbt.concat([
            dbt.safe_cast('cast(s.pd_min * 100 as decimal(9, 2))', dbt.type_string()),
            "'%-'",
            dbt.safe_cast('cast(s.pd_max * 100 as decimal(9, 2))', dbt.type_string()),
            "'%'"]) }}
        else 'unrated'
    end as pd_band
from final as f
left join scale as s
    on f.rating_grade = s.rating_grade
