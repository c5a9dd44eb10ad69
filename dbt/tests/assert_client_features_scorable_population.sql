-- Attached to model client_features as a blocking Dagster asset check (dagster-dbt meta.dagster.ref).
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'client_features'}}}) }}
-- client_features holds exactly the scorable clients: lifecycle_stage <> 'prospect' and at least one bureau
-- report (fct_credit_profile) or one facility snapshot (fct_client_usage_profile).
with expected as (
    select d.client_key
    from {{ ref('dim_client') }} as d
    where
        d.lifecycle_stage <> 'prospect'
        and (
            d.client_key in (select cp.client_key from {{ ref('fct_credit_profile') }} as cp)
            or d.client_key in (select up.client_key from {{ ref('fct_client_usage_profile') }} as up)
        )
),

actual as (
    select client_key from {{ ref('client_features') }}
)

select e.client_key, 'scorable client missing from client_features' as problem
from expected as e
left join actual as a
    on e.client_key = a.client_key
where a.client_key is null
union all
select a.client_key, 'client_features row that is not scorable' as problem
from actual as a
left join expected as e
    on a.client_key = e.client_key
where e.client_key is null
