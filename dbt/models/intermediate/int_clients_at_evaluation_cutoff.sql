-- One row per CRM client: firm stage and internal rating grade as of the EVALUATION CUTOFF, the month end
-- var('evaluation_horizon_months') (6) months before the as-of month. The time-split recommendation
-- evaluation (defs/applications/recommend_assets.py) reads these columns instead of re-coding the rules:
-- the same macros as int_clients_staged (whole_months_between, firm_stage) and int_clients_rated
-- (default_trigger, score band of seed rating_master_scale), on the data dated on or before the cutoff:
--   firm age = completed months from founded_date to the cutoff date;
--   usage: the client's latest usage month on or before the cutoff month;
--   bureau: the latest report dated on or before the cutoff date; the default baseline is the latest report
--   at least 12 months before the cutoff date, else the client's earliest report (macro default_baseline_order, as
--   int_clients_credit_summarised).
{%- set horizon = var('evaluation_horizon_months', 6) %}
with cutoff as (
    select
        cast({{ dbt.dateadd('month', -horizon, 'as_of_month') }} as date) as evaluation_cutoff_month
    from {{ ref('int_as_of_date_derived') }}
),

cutoff_dates as (
    select
        evaluation_cutoff_month,
        cast({{ dbt.last_day('evaluation_cutoff_month', 'month') }} as date) as evaluation_cutoff_date
    from cutoff
),

clients as (
    select client_key, founded_date from {{ ref('stg_crm__clients') }}
),

reports as (
    select
        r.client_key,
        r.report_date,
        r.bureau_score,
        r.max_days_past_due_12m,
        r.defaults_5y,
        r.report_date <= {{ dbt.dateadd('month', -12, 'c.evaluation_cutoff_date') }} as is_12m_before_cutoff,
        row_number() over (partition by r.client_key order by r.report_date desc, r.report_id desc) as report_seq,
        row_number() over (partition by r.client_key order by r.report_date asc, r.report_id asc) as report_seq_asc
    from {{ ref('stg_bureau__credit_reports') }} as r
    cross join cutoff_dates as c
    where r.report_date <= c.evaluation_cutoff_date
),

latest as (
    select * from reports where report_seq = 1
),

default_baseline as (
    select *
    from (
        select
            r.client_key,
            r.defaults_5y,
            row_number() over (
                partition by r.client_key
                order by {{ default_baseline_order('r.is_12m_before_cutoff') }}
            ) as default_baseline_rank
        from reports as r
    ) as ranked
    where default_baseline_rank = 1
),

usage_latest as (
    -- the latest usage month on or before the cutoff ((client_key, snapshot_month) is unique): by client, not ranked
    select
        u.client_key,
        {{ arg_max("u.max_days_past_due", "u.snapshot_month") }} as max_days_past_due
    from {{ ref('int_client_usage_months_aggregated') }} as u
    cross join cutoff_dates as c
    where u.snapshot_month <= c.evaluation_cutoff_month
    group by u.client_key
),

measured as (
    select
        cl.client_key,
        c.evaluation_cutoff_month,
        c.evaluation_cutoff_date,
        case
            when cl.founded_date <= c.evaluation_cutoff_date
                then {{ whole_months_between('cl.founded_date', 'c.evaluation_cutoff_date') }}
        end as firm_age_months,
        {{ default_trigger('u.max_days_past_due', 'l.max_days_past_due_12m',
                           'coalesce(l.defaults_5y > b.defaults_5y, false)') }} as default_trigger,
        s.rating_grade as score_grade
    from clients as cl
    cross join cutoff_dates as c
    left join latest as l
        on cl.client_key = l.client_key
    left join default_baseline as b
        on cl.client_key = b.client_key
    left join usage_latest as u
        on cl.client_key = u.client_key
    left join {{ ref('rating_master_scale') }} as s
        on
            l.bureau_score >= s.score_min
            and l.bureau_score <= s.score_max
)

select
    client_key,
    evaluation_cutoff_month,
    evaluation_cutoff_date,
    firm_age_months,
    {{ firm_stage('firm_age_months') }} as firm_stage,
    default_trigger,
    case
        when default_trigger is not null then 'D'
        when score_grade is not null then score_grade
        else 'unrated'
    end as rating_grade
from measured
