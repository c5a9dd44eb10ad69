-- Attached to seed rule_segments as a blocking Dagster asset check (dagster-dbt meta.dagster.ref).
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'rule_segments'}}}) }}
-- The rule-segment seed follows its documented id rule and is complete: segment_id = -(10 * size_rank + risk_rank),
-- one rank per class, every size x risk combination present (so every client, `unknown` included, has a row).
with seed as (
    select * from {{ ref('rule_segments') }}
),

sizes as (
    select size_class, count(distinct size_rank) as ranks from seed group by size_class
),

risks as (
    select industry_risk_class, count(distinct risk_rank) as ranks from seed group by industry_risk_class
)

select
    cast(segment_id as {{ dbt.type_string() }}) as problem_key, 'id_is_not_minus_10_size_rank_plus_risk_rank' as problem
from seed
where segment_id <> -(10 * size_rank + risk_rank)
union all
select size_class as problem_key, 'size_class_with_two_ranks' as problem from sizes where ranks <> 1
union all
select industry_risk_class as problem_key, 'risk_class_with_two_ranks' as problem from risks where ranks <> 1
union all
select 'combinations' as problem_key, 'not_every_size_x_risk_combination' as problem
from (select count(*) as n from seed) as c
where c.n <> (select count(*) from sizes) * (select count(*) from risks)
union all
select 'unknown' as problem_key, 'no_unknown_fallback_row' as problem
from (select count(*) as n from seed where size_class = 'unknown' and industry_risk_class = 'unknown') as u
where u.n <> 1
