-- Every profile feature of every segment of the champion model against the population (long form).
with champion as (
    select any_value(model_version) as model_version from {{ source('ml', 'segment_assignments') }}
)

select
    p.segment_id,
    c.segment_name,
    p.feature,
    p.category,
    p.stat,
    p.segment_value,
    p.population_value,
    p.difference,
    p.model_version
from {{ source('ml', 'segment_profiles') }} as p
inner join champion as ch on p.model_version = ch.model_version
left join {{ source('ml', 'segment_catalog') }} as c on p.segment_id = c.segment_id
