-- One row per account: its latest snapshot up to the as-of month - the client's facility book (open facilities
-- and those repaid or closed since), each at its latest limit, with its product and its contract v1.1 terms
-- (term_months, security_type: the latest delivered value, null when never delivered).
-- Aggregated by account (arg_max by snapshot_month), not ranked over the whole history: a window over every
-- account-month sorts all of it and spilled past LENDSEG_DUCKDB_MAX_TEMP_SIZE at 1 M clients. (account_key,
-- snapshot_month) is unique (blocking check raw_product_usage.key_unique), so every arg_max reads the same row.
-- Each CTE reads the staging view itself: a CTE that several others read is materialised by DuckDB, which wrote
-- every account-month to the spill folder.
with as_of as (
    select as_of_month from {{ ref('int_as_of_date_derived') }}
),

latest as (
    select
        s.account_key,
        max(s.snapshot_month)                                          as latest_snapshot_month,
        {{ arg_max("s.client_key", "s.snapshot_month") }}              as client_key,
        {{ arg_max("s.product_code", "s.snapshot_month") }}            as product_code,
        {{ arg_max("s.credit_limit", "s.snapshot_month") }}            as credit_limit,
        {{ arg_max("s.outstanding_balance", "s.snapshot_month") }}     as outstanding_balance
    from {{ ref('stg_usage__product_snapshots') }} as s
    cross join as_of as a
    where s.snapshot_month <= a.as_of_month
    group by s.account_key
),

term as (
    -- the latest delivered term of each account (an account's later snapshots may omit it)
    select account_key, {{ arg_max("term_months", "snapshot_month") }} as term_months
    from {{ ref('stg_usage__product_snapshots') }}
    where term_months is not null
    group by account_key
),

security as (
    select account_key, {{ arg_max("security_type", "snapshot_month") }} as security_type
    from {{ ref('stg_usage__product_snapshots') }}
    where security_type is not null
    group by account_key
)

select
    l.account_key,
    l.client_key,
    l.product_code,
    l.latest_snapshot_month,
    l.latest_snapshot_month = a.as_of_month                            as is_current,
    {{ dbt.safe_cast('l.credit_limit', dbt.type_numeric()) }}          as credit_limit,
    {{ dbt.safe_cast('l.outstanding_balance', dbt.type_numeric()) }}   as outstanding_balance,
    t.term_months,
    sc.security_type
from latest as l
cross join as_of as a
left join term as t
    on l.account_key = t.account_key
left join security as sc
    on l.account_key = sc.account_key
