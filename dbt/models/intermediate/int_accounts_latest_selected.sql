-- One row per account: its latest snapshot up to the as-of month - the client's facility book (open facilities
-- and those repaid or closed since), each at its latest limit, with its product and its contract v1.1 terms
-- (term_months, security_type: the latest delivered value, null when never delivered).
with snapshots as (
    select * from {{ ref('stg_usage__product_snapshots') }}
),

as_of as (
    select as_of_month from {{ ref('int_as_of_date_derived') }}
),

ranked as (
    select
        s.*,
        row_number() over (partition by s.account_key order by s.snapshot_month desc) as recency_rank
    from snapshots as s
    cross join as_of as a
    where s.snapshot_month <= a.as_of_month
),

term as (
    -- the latest delivered term of each account (an account's later snapshots may omit it)
    select account_key, {{ arg_max("term_months", "snapshot_month") }} as term_months
    from snapshots
    where term_months is not null
    group by account_key
),

security as (
    select account_key, {{ arg_max("security_type", "snapshot_month") }} as security_type
    from snapshots
    where security_type is not null
    group by account_key
)

select
    r.account_key,
    r.client_key,
    r.product_code,
    r.snapshot_month                                                   as latest_snapshot_month,
    r.snapshot_month = a.as_of_month                                   as is_current,
    {{ dbt.safe_cast('r.credit_limit', dbt.type_numeric()) }}          as credit_limit,
    {{ dbt.safe_cast('r.outstanding_balance', dbt.type_numeric()) }}   as outstanding_balance,
    t.term_months,
    sc.security_type
from ranked as r
cross join as_of as a
left join term as t
    on r.account_key = t.account_key
left join security as sc
    on r.account_key = sc.account_key
where r.recency_rank = 1
