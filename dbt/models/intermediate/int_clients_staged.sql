-- One row per CRM client: firm age and firm stage (from founded_date), relationship tenure and
-- relationship lifecycle stage, all measured at the as-of date of int_as_of_date_derived.
--
-- firm_stage (macro firm_stage, macros/credit_rules.sql): startup = firm age < 36 completed months
--   (< 3 years); growth = 36 to < 120 months (3 to < 10 years); established = 120 months (10 years) or
--   more; unknown = founded_date missing or after the as-of date.
-- lifecycle_stage, first matching rule wins:
--   1 prospect  no onboarding_date, onboarding after the as-of date, or CRM status 'prospect';
--   2 churned   CRM status 'closed';
--   3 dormant   CRM status 'dormant', or tenure >= 6 months and no product activity (a facility with a
--               balance, drawdown or repayment) in the 6 months up to and including the as-of month;
--   4 new       tenure < 12 months;
--   5 growing   tenure 12 to < 36 months, or a product first opened in the last 12 months;
--   6 mature    everything else (tenure >= 36 months and no new product in the last 12 months).
with clients as (
    select client_key, founded_date, onboarding_date, relationship_status
    from {{ ref('stg_crm__clients') }}
),

as_of as (
    select as_of_date, as_of_month from {{ ref('int_as_of_date_derived') }}
),

activity as (
    select
        client_key,
        max(case when is_active then snapshot_month end) as last_active_month,
        max(snapshot_month) as last_usage_month
    from {{ ref('int_client_usage_months_aggregated') }}
    group by client_key
),

new_products as (
    select
        p.client_key,
        max(p.first_opened_month) as last_product_opened_month,
        max(case
            when
                not p.opened_before_window
                and p.first_opened_month > {{ dbt.dateadd('month', -12, 'a.as_of_month') }} then 1
            else 0
        end) as opened_product_last_12m
    from {{ ref('int_client_products_summarised') }} as p
    cross join as_of as a
    group by p.client_key
),

measured as (
    select
        c.client_key,
        c.founded_date,
        c.onboarding_date,
        c.relationship_status,
        a.as_of_date,
        case
            when c.founded_date <= a.as_of_date then {{ whole_months_between('c.founded_date', 'a.as_of_date') }}
        end as firm_age_months,
        case
            when c.onboarding_date <= a.as_of_date then {{ whole_months_between('c.onboarding_date', 'a.as_of_date') }}
        end as tenure_months,
        act.last_active_month,
        case
            when act.last_active_month is not null
                then {{ dbt.datediff('act.last_active_month', 'a.as_of_month', 'month') }}
        end as months_since_last_activity,
        coalesce(
            act.last_active_month is null
            or act.last_active_month <= {{ dbt.dateadd('month', -6, 'a.as_of_month') }},
            true
        ) as inactive_6m,
        coalesce(np.opened_product_last_12m = 1, false) as opened_product_last_12m
    from clients as c
    cross join as_of as a
    left join activity as act
        on c.client_key = act.client_key
    left join new_products as np
        on c.client_key = np.client_key
)

select
    m.client_key,
    m.firm_age_months,
    {{ firm_stage('m.firm_age_months') }} as firm_stage,
    m.tenure_months,
    m.last_active_month,
    m.months_since_last_activity,
    m.inactive_6m,
    m.opened_product_last_12m,
    case
        when m.onboarding_date is null or m.tenure_months is null or m.relationship_status = 'prospect'
            then 'prospect'
        when m.relationship_status = 'closed' then 'churned'
        when m.relationship_status = 'dormant' then 'dormant'
        when m.tenure_months >= 6 and m.inactive_6m then 'dormant'
        when m.tenure_months < 12 then 'new'
        when m.tenure_months < 36 or m.opened_product_last_12m then 'growing'
        else 'mature'
    end as lifecycle_stage
from measured as m
