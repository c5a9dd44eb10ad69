-- Attached to model dim_client as a blocking Dagster asset check (dagster-dbt meta.dagster.ref).
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'dim_client'}}}) }}
-- Rating consistency in dim_client:
--   * grade D exactly when a default trigger is set;
--   * a score-based grade's band contains the client's bureau score (master scale, bounds inclusive);
--   * 'unrated' only without a usable score and without a default trigger.
with d as (
    select * from {{ ref('dim_client') }}
)

select
    d.client_key, d.rating_grade, d.bureau_score, d.default_trigger, 'D without trigger or trigger without D' as problem
from d
where (d.rating_grade = 'D') <> (d.default_trigger is not null)
union all
select d.client_key, d.rating_grade, d.bureau_score, d.default_trigger, 'score outside the grade band' as problem
from d
inner join {{ ref('rating_master_scale') }} as s
    on d.rating_grade = s.rating_grade
where
    d.rating_basis = 'bureau_score'
    and not (d.bureau_score >= s.score_min and d.bureau_score <= s.score_max)
union all
select d.client_key, d.rating_grade, d.bureau_score, d.default_trigger, 'unrated with a usable score' as problem
from d
where
    d.rating_grade = 'unrated'
    and d.bureau_score between 300 and 900
