-- One row per CRM client: relationship value tier from current exposure and product breadth.
-- Ranked population = clients holding at least one facility with a credit limit > 0 in the as-of month.
--   exposure_percentile = percent_rank of the client's total current credit limit (0 lowest .. 1 highest)
--   breadth_percentile  = percent_rank of the number of distinct products currently held
--   value_score         = 0.7 * exposure_percentile + 0.3 * breadth_percentile
-- Clients are ordered by value_score (desc; ties by larger limit, then client_key) and cut by position:
-- platinum = top 10 %, gold = next 20 % (to 30 %), silver = next 30 % (to 60 %), bronze = bottom 40 %.
-- Clients without a current facility (prospects, churned, never used) are 'unranked'.
with clients as (
    select client_key from {{ ref('stg_crm__clients') }}
),

holdings as (
    select
        client_key,
        sum(current_credit_limit) as current_credit_limit,
        sum(current_outstanding) as current_outstanding,
        count(*) as current_products_held
    from {{ ref('int_client_products_summarised') }}
    where currently_held
    group by client_key
    having sum(current_credit_limit) > 0
),

scored as (
    select
        h.*,
        percent_rank() over (order by h.current_credit_limit) as exposure_percentile,
        percent_rank() over (order by h.current_products_held) as breadth_percentile
    from holdings as h
),

positioned as (
    select
        s.*,
        0.7 * s.exposure_percentile + 0.3 * s.breadth_percentile as value_score,
        (row_number() over (
            order by
                0.7 * s.exposure_percentile + 0.3 * s.breadth_percentile desc,
                s.current_credit_limit desc, s.client_key asc
        ) - 1) * cast(1 as double) / count(*) over () as value_rank_position
    from scored as s
)

select
    c.client_key,
    coalesce(p.current_credit_limit, 0) as current_credit_limit,
    coalesce(p.current_outstanding, 0) as current_outstanding,
    coalesce(p.current_products_held, 0) as current_products_held,
    p.exposure_percentile,
    p.breadth_percentile,
    p.value_score,
    case
        when p.client_key is null then 'unranked'
        when p.value_rank_position < 0.10 then 'platinum'
        when p.value_rank_position < 0.30 then 'gold'
        when p.value_rank_position < 0.60 then 'silver'
        else 'bronze'
    end as value_tier
from clients as c
left join positioned as p
    on c.client_key = p.client_key
