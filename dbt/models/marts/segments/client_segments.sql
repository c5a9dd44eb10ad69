-- One row per dim_client row: every dim_client column plus the client's scored segment, the review outcome and
-- the segment of record (final_segment_id, never null).
-- Review rules (docs/segmentation.md): the latest decision per client counts. It is VALID while the
-- client's size_class, rating_grade and industry_code equal those the reviewer saw (ml.review_decision_context:
-- the client's published snapshot when the decision was first processed); a confirm also needs the model
-- segment to be unchanged. A valid override sets final_segment_id; an expired decision sends the client
-- back to the queue.
-- Rule-based fallback (docs/segmentation.md, "Fallback"): when the first model failed its checks, scoring wrote
-- rule segments (negative ids, model_version 'rules-v1', null confidence); segment_source / assignment_source
-- say 'rule_based' and such clients are never queued for review.
-- Segment of record: a valid override, else the scored segment, else - clients the model does not score (prospects,
-- clients without bureau report or usage) - the rule segment size_class x industry_risk_class from the seed
-- rule_segments (the one definition of rule ids, also read by defs/segmentation/rules.py; a class the seed does not
-- list maps to its `unknown` row). An override to a segment id the catalog does not know is not applied (the
-- client is queued with reason override_segment_unknown): every final_segment_id has a dim_segment row.
with dim as (
    select * from {{ ref('dim_client') }}
),

assignments as (
    select * from {{ source('ml', 'segment_assignments') }}
),

snapshots as (
    select * from {{ source('ml', 'segment_assignment_snapshots') }}
),

catalog as (
    select * from {{ source('ml', 'segment_catalog') }}
),

rule_segments as (
    select * from {{ ref('rule_segments') }}
),

rule_sizes as (
    select distinct size_class from rule_segments
),

rule_risks as (
    select distinct industry_risk_class from rule_segments
),

rule_segment as (
    -- every client's rule segment; a class the seed does not list (or null) maps to `unknown`
    select k.client_key, rs.segment_id as rule_segment_id
    from (
        select
            d.client_key,
            coalesce(s.size_class, 'unknown') as rule_size_class,
            coalesce(r.industry_risk_class, 'unknown') as rule_risk_class
        from dim as d
        left join rule_sizes as s on d.size_class = s.size_class
        left join rule_risks as r on d.industry_risk_class = r.industry_risk_class
    ) as k
    inner join rule_segments as rs
        on k.rule_size_class = rs.size_class and k.rule_risk_class = rs.industry_risk_class
),

latest_decision as (
    select *
    from (
        select *, row_number() over (partition by client_key order by decided_at desc) as decision_rank
        from {{ source('review', 'review_decisions') }}
    ) as ranked
    where decision_rank = 1
),

review as (
    select
        l.client_key,
        l.decision,
        l.segment_id as review_segment_id,
        l.reviewer,
        l.decided_at,
        c.seen_segment_id,
        c.seen_size_class,
        c.seen_rating_grade,
        c.seen_industry_code,
        c.client_key is not null as seen_known,
        l.decision = 'override' and k.segment_id is null as override_unknown
    from latest_decision as l
    left join {{ source('ml', 'review_decision_context') }} as c
        on l.client_key = c.client_key and l.decided_at = c.decided_at
    left join catalog as k
        on l.segment_id = k.segment_id
),

previous_snapshot as (
    -- the client's segment in the latest snapshot before the current as-of date
    select s.client_key, {{ arg_max("s.segment_id", "s.as_of_date") }} as previous_segment_id
    from snapshots as s
    where s.as_of_date < (select max(asg.as_of_date) from assignments as asg)
    group by 1
),

scored as (
    select
        d.*,
        a.segment_id,
        a.confidence,
        a.low_confidence,
        a.runner_up_segment_id,
        a.runner_up_margin,
        a.reason_1,
        a.reason_2,
        a.reason_3,
        a.model_version,
        a.scored_at,
        rs.rule_segment_id,
        p.previous_segment_id,
        a.client_key is not null
        and percent_rank() over (
            partition by a.client_key is not null
            order by d.current_credit_limit
        ) >= 0.95 as top_exposure,
        r.decision,
        r.review_segment_id,
        r.reviewer,
        r.decided_at,
        coalesce(r.override_unknown, false) as override_unknown,
        r.decision is not null
        and not r.override_unknown
        and (not r.seen_known or (
            d.size_class is not distinct from r.seen_size_class
            and d.rating_grade is not distinct from r.seen_rating_grade
            and d.industry_code is not distinct from r.seen_industry_code
        ))
        and (r.decision = 'override' or a.segment_id is not distinct from r.seen_segment_id)
            as review_valid
    from dim as d
    left join assignments as a on d.client_key = a.client_key
    left join previous_snapshot as p on d.client_key = p.client_key
    left join review as r on d.client_key = r.client_key
    left join rule_segment as rs on d.client_key = rs.client_key
),

flagged as (
    select
        *,
        coalesce(previous_segment_id <> segment_id, false) as segment_changed,
        decision is not null and not review_valid and not override_unknown as review_expired,
        case
            when review_valid and decision = 'override' then review_segment_id
            else coalesce(segment_id, rule_segment_id)
        end as record_segment_id
    from scored
)

select
{#- every dim_client column, in its order (written out: DuckDB's `* exclude` is not Spark SQL) #}
{%- for col in adapter.get_columns_in_relation(ref('dim_client')) %}
    f.{{ col.name }},
    {%- endfor %}
    f.segment_id,
    c.segment_name,
    f.confidence,
    f.runner_up_segment_id,
    f.runner_up_margin,
    case
        when f.record_segment_id < 0 and f.reason_1 is null
            then concat(
                'rule segment: size class ', coalesce(f.size_class, 'unknown'), ' x industry risk class ',
                coalesce(f.industry_risk_class, 'unknown'),
                case
                    when f.lifecycle_stage = 'prospect' then ' (a prospect: the model scores customers)'
                    else ' (not scored by the model: no bureau report or facility yet)'
                end
            )
        else f.reason_1
    end as reason_1,
    f.reason_2,
    f.reason_3,
    f.segment_id is not null and (f.model_version is distinct from 'rules-v1') and not f.review_valid and (
        f.low_confidence or (f.top_exposure and f.segment_changed) or f.review_expired or f.override_unknown)
        as needs_review,
    case
        when f.segment_id is null or f.review_valid or f.model_version = 'rules-v1' then null
        else nullif(concat_ws(
            '; ',
            case when f.low_confidence then 'low_confidence' end,
            case when f.top_exposure and f.segment_changed then 'top_exposure_segment_changed' end,
            case when f.review_expired then 'review_expired_attributes_changed' end,
            case when f.override_unknown then 'override_segment_unknown' end
        ), '')
    end as review_reason,
    f.record_segment_id as final_segment_id,
    fc.segment_name as final_segment_name,
    case
        when f.review_valid then 'review'
        when f.segment_id is null or f.model_version = 'rules-v1' then 'rule_based'
        else 'model'
    end as assignment_source,
    case when f.record_segment_id < 0 then 'rule_based' else 'model' end as segment_source,
    f.previous_segment_id,
    f.segment_changed,
    f.top_exposure,
    f.decision as review_decision,
    f.decided_at as review_decided_at,
    f.reviewer,
    f.model_version,
    f.scored_at
from flagged as f
left join catalog as c on f.segment_id = c.segment_id
left join catalog as fc on f.record_segment_id = fc.segment_id
