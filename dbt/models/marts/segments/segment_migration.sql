-- From-segment x to-segment client counts between consecutive as-of snapshots (null from = new client,
-- null to = no longer scorable).
with snaps as (
    select as_of_date, client_key, segment_id from {{ source('ml', 'segment_assignment_snapshots') }}
),

pairs as (
    select lag(as_of_date) over (order by as_of_date) as from_as_of_date, as_of_date as to_as_of_date
    from (select distinct as_of_date from snaps) as d
),

moves as (
    select
        p.from_as_of_date,
        p.to_as_of_date,
        a.segment_id as from_segment_id,
        b.segment_id as to_segment_id
    from pairs as p
    inner join snaps as b on p.to_as_of_date = b.as_of_date
    left join snaps as a on p.from_as_of_date = a.as_of_date and b.client_key = a.client_key
    where p.from_as_of_date is not null
    union all
    select p.from_as_of_date, p.to_as_of_date, a.segment_id, null as to_segment_id
    from pairs as p
    inner join snaps as a on p.from_as_of_date = a.as_of_date
    where not exists (select 1 from snaps as b where b.as_of_date = p.to_as_of_date and b.client_key = a.client_key)
)

select
    from_as_of_date,
    to_as_of_date,
    from_segment_id,
    to_segment_id,
    count(*) as clients
from moves
group by all
