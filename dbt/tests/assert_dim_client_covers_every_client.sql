-- Attached to model dim_client as a blocking Dagster asset check (dagster-dbt meta.dagster.ref).
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'dim_client'}}}) }}
-- dim_client has exactly one row per delivered CRM client: no client is lost or added by the joins.
select s.client_key, 'missing_from_dim_client' as problem
from {{ ref('stg_crm__clients') }} as s
left join {{ ref('dim_client') }} as d
    on s.client_key = d.client_key
where d.client_key is null
union all
select d.client_key, 'not_in_crm' as problem
from {{ ref('dim_client') }} as d
left join {{ ref('stg_crm__clients') }} as s
    on d.client_key = s.client_key
where s.client_key is null
