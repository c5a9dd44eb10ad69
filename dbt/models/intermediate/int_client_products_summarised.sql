-- depends_on: {{ ref('product_catalogue') }}
-- (the catalogue is an ancestor so that the relationships test to it is built in the same dbt step)
-- One row per client and product the client has ever held in the usage data (any snapshot):
-- first_opened_month = first snapshot_month with an account of that product (the usage window starts at
-- the first delivered month, so a facility opened before the window shows the window's first month).
with snapshots as (
    select * from {{ ref('stg_usage__product_snapshots') }}
),

as_of as (
    select as_of_month from {{ ref('int_as_of_date_derived') }}
),

by_product as (
    select
        client_key,
        product_code,
        min(snapshot_month)                                            as first_opened_month,
        max(snapshot_month)                                            as last_seen_month,
        count(distinct snapshot_month)                                 as months_held,
        count(distinct account_key)                                    as accounts_ever
    from snapshots
    group by client_key, product_code
),

current_month as (
    select
        s.client_key,
        s.product_code,
        count(*)                                                       as current_accounts,
        sum({{ dbt.safe_cast('s.credit_limit', dbt.type_numeric()) }})                                          as current_credit_limit,
        sum({{ dbt.safe_cast('s.outstanding_balance', dbt.type_numeric()) }})                                   as current_outstanding
    from snapshots as s
    inner join as_of as a
        on s.snapshot_month = a.as_of_month
    group by s.client_key, s.product_code
),

window_start as (
    select min(snapshot_month) as first_window_month from snapshots
)

select
    p.client_key,
    p.product_code,
    p.first_opened_month,
    p.first_opened_month = w.first_window_month                       as opened_before_window,
    p.last_seen_month,
    p.months_held,
    p.accounts_ever,
    cm.client_key is not null                                          as currently_held,
    coalesce(cm.current_accounts, 0)                                   as current_accounts,
    coalesce(cm.current_credit_limit, 0)                               as current_credit_limit,
    coalesce(cm.current_outstanding, 0)                                as current_outstanding
from by_product as p
cross join window_start as w
left join current_month as cm
    on p.client_key = cm.client_key
    and p.product_code = cm.product_code
