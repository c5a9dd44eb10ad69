-- One row per segment id ever issued - model segments (positive ids) and the rule segments (negative ids,
-- seed rule_segments, always listed): stable name, generated description, status, current size (clients whose
-- segment of record is the segment, marts.client_segments.final_segment_id) and the champion model's profile of
-- the segment against the population (medians / shares; see segment_profile; null for rule segments).
{% set features = [
    'annual_revenue', 'employee_count', 'total_credit_limit', 'firm_age_months', 'bureau_score',
    'months_in_arrears_12m', 'avg_utilisation_12m', 'limit_weighted_term_months', 'secured_limit_share',
    'online_share_12m', 'limit_share_term_loan', 'limit_share_revolving_credit', 'limit_share_project_finance',
    'limit_share_trade_finance', 'limit_share_ip_pledge_loan', 'limit_share_equipment_leasing',
    'limit_share_supply_chain_finance', 'limit_share_startup_credit_loan'] %}
with catalog as (
    select * from {{ source('ml', 'segment_catalog') }}
),

assignments as (
    select * from {{ source('ml', 'segment_assignments') }}
),

champion as (
    select max(model_version) as model_version from assignments
),

members as (
    select final_segment_id as segment_id from {{ ref('client_segments') }}
),

sizes as (
    select segment_id, count(*) as clients from members group by segment_id
),

book as (
    select count(*) as all_clients from members
),

profile as (
    select p.* from {{ source('ml', 'segment_profiles') }} as p
    inner join champion as c on p.model_version = c.model_version
)

select
    c.segment_id,
    c.segment_name,
    case when c.segment_id < 0 then 'rule_based' else 'model' end as segment_source,
    c.description,
    c.status,
    cast(c.created_in_version as {{ dbt.type_string() }}) as created_in_version,
    cast(c.last_model_version as {{ dbt.type_string() }}) as last_model_version,
    cast(c.retired_in_version as {{ dbt.type_string() }}) as retired_in_version,
    coalesce(s.clients, 0) as clients,
    {{ ratio('coalesce(s.clients, 0)', 'nullif(b.all_clients, 0)') }} as share_of_clients,
    {%- for f in features %}
        max(case when p.feature = '{{ f }}' and p.category = '' then p.segment_value end) as {{ f | lower }},
        max(case when p.feature = '{{ f }}' and p.category = '' then p.population_value end)
            as {{ f | lower }}_population,
    {%- endfor %}
    ch.model_version as champion_model_version
from catalog as c
cross join champion as ch
cross join book as b
left join sizes as s on c.segment_id = s.segment_id
left join profile as p on c.segment_id = p.segment_id
group by all
