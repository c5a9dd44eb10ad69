-- Segment spells per client from the as-of snapshots: a new spell starts when the segment changes or the
-- client reappears; valid_to is the first as-of date the spell no longer holds (null = current).
with snaps as (
    select as_of_date, client_key, segment_id, model_version from {{ source('ml', 'segment_assignment_snapshots') }}
),

dates as (
    select as_of_date, lead(as_of_date) over (order by as_of_date) as next_as_of_date
    from (select distinct as_of_date from snaps) as d
),

marked as (
    select
        s.*,
        d.next_as_of_date,
        case
            when (lag(s.segment_id) over w is distinct from s.segment_id) then 1
            when (lag(d.next_as_of_date) over w is distinct from s.as_of_date) then 1
            else 0
        end as starts_spell
    from snaps as s
    inner join dates as d on s.as_of_date = d.as_of_date
    window w as (partition by s.client_key order by s.as_of_date)
),

spells as (
    select *, sum(starts_spell) over (partition by client_key order by as_of_date) as spell_no
    from marked
)

select
    client_key,
    spell_no,
    any_value(segment_id) as segment_id,
    min(as_of_date) as valid_from,
    {{ arg_max("next_as_of_date", "as_of_date") }} as valid_to,
    {{ arg_max("next_as_of_date", "as_of_date") }} is null as is_current,
    {{ arg_min("model_version", "as_of_date") }} as first_model_version,
    {{ arg_max("model_version", "as_of_date") }} as last_model_version
from spells
group by client_key, spell_no
