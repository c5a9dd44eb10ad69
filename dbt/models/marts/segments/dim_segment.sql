-- One row per segment id ever issued: stable name, generated description, status, current size and the
-- champion model's profile of the segment against the population (medians / shares; see segment_profile).
{% set features = [
    'annual_revenue', 'employee_count', 'total_credit_limit', 'firm_age_months', 'bureau_score',
    'months_in_arrears_12m', 'avg_utilisation_12m', 'share_technology', 'share_manufacturing',
    'share_high_risk_industry', 'share_services', 'share_rating_D', 'share_prime', 'share_startup_stage'] %}
with catalog as (
    select * from {{ source('ml', 'segment_catalog') }}
),

assignments as (
    select * from {{ source('ml', 'segment_assignments') }}
),

champion as (
    select any_value(model_version) as model_version, count(*) as scored_clients from assignments
),

sizes as (
    select segment_id, count(*) as clients from assignments group by 1
),

profile as (
    select p.* from {{ source('ml', 'segment_profiles') }} as p
    inner join champion as c on p.model_version = c.model_version
)

select
    c.segment_id,
    c.segment_name,
    c.description,
    c.status,
    c.created_in_version,
    c.last_model_version,
    c.retired_in_version,
    coalesce(s.clients, 0)                                                   as clients,
    coalesce(s.clients, 0) / nullif(ch.scored_clients, 0)                    as share_of_clients,
    {%- for f in features %}
    max(case when p.feature = '{{ f }}' then p.segment_value end)            as {{ f | lower }},
    max(case when p.feature = '{{ f }}' then p.population_value end)         as {{ f | lower }}_population,
    {%- endfor %}
    ch.model_version                                                         as champion_model_version
from catalog as c
cross join champion as ch
left join sizes as s on c.segment_id = s.segment_id
left join profile as p on c.segment_id = p.segment_id
group by all
