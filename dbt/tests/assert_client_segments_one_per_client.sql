-- Attached to model client_segments as a blocking Dagster asset check (dagster-dbt meta.dagster.ref).
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'client_segments'}}}) }}
-- Every dim_client row - prospects included - has exactly one client_segments row with a segment of record, and
-- that segment has exactly one dim_segment row (one segment per client, one id type everywhere).
with per_client as (
    select d.client_key, count(s.client_key) as rows_, count(s.final_segment_id) as segments
    from {{ ref('dim_client') }} as d
    left join {{ ref('client_segments') }} as s
        on d.client_key = s.client_key
    group by d.client_key
),

per_segment as (
    select s.final_segment_id, count(g.segment_id) as dim_rows
    from (select distinct final_segment_id from {{ ref('client_segments') }}) as s
    left join {{ ref('dim_segment') }} as g
        on s.final_segment_id = g.segment_id
    group by s.final_segment_id
)

select client_key as problem_key, 'client_without_exactly_one_segment' as problem
from per_client
where rows_ <> 1 or segments <> 1
union all
select s.client_key as problem_key, 'segment_row_of_no_dim_client_row' as problem
from {{ ref('client_segments') }} as s
left join {{ ref('dim_client') }} as d
    on s.client_key = d.client_key
where d.client_key is null
union all
select
    cast(final_segment_id as {{ dbt.type_string() }}) as problem_key,
    'segment_without_exactly_one_dim_segment_row' as problem
from per_segment
where dim_rows <> 1
