-- Clients a person should look at: model confidence below LENDSEG_SEG_REVIEW_CONFIDENCE, top 5 % by
-- exposure whose segment changed since the previous as-of snapshot, or an earlier decision that expired.
select
    client_key,
    segment_id,
    segment_name,
    confidence,
    runner_up_segment_id,
    runner_up_margin,
    reason_1,
    reason_2,
    reason_3,
    previous_segment_id,
    current_credit_limit as exposure,
    size_class,
    rating_grade,
    industry_code,
    review_reason,
    review_decision as last_decision,
    review_decided_at as last_decided_at,
    model_version,
    as_of_date
from {{ ref('client_segments') }}
where needs_review
