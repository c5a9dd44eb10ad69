-- One row: the reporting "as of" date that ages, tenures and look-back windows are measured against.
-- = month end of the latest snapshot_month in the usage data; if there is no usage data at all, the date
-- of the latest CRM updated_at. Never current_date, so a rebuild of the same data gives the same result.
with usage_months as (
    select max(snapshot_month) as max_snapshot_month
    from {{ ref('stg_usage__product_snapshots') }}
),

crm as (
    select max(updated_at) as max_updated_at
    from {{ ref('stg_crm__clients') }}
),

resolved as (
    select
        case
            when u.max_snapshot_month is not null then {{ dbt.last_day('u.max_snapshot_month', 'month') }}
            else cast(c.max_updated_at as date)
        end as as_of_date,
        case
            when u.max_snapshot_month is not null then 'usage_latest_month_end'
            when c.max_updated_at is not null then 'crm_max_updated_at'
        end as as_of_basis,
        u.max_snapshot_month as latest_snapshot_month,
        c.max_updated_at as latest_crm_updated_at
    from usage_months as u
    cross join crm as c
)

select
    cast(as_of_date as date) as as_of_date,
    cast({{ dbt.date_trunc('month', 'as_of_date') }} as date) as as_of_month,
    as_of_basis,
    latest_snapshot_month,
    latest_crm_updated_at
from resolved
