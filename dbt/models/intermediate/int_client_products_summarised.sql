-- depends_on: {{ ref('product_catalogue') }}
-- (the catalogue is an ancestor so that the relationships test to it is built in the same dbt step)
-- One row per client and product the client has ever held in the usage data (any snapshot):
-- first_opened_month = first snapshot_month with an account of that product (the usage window starts at
-- the first delivered month, so a facility opened before the window shows the window's first month).
-- Each CTE reads the staging view itself: a CTE that several others read is materialised by DuckDB, which wrote
-- every account-month to the spill folder.
with as_of as (
    select as_of_month from {{ ref('int_as_of_date_derived') }}
),

by_account as (
    -- one row per account from the accounts' running state (int_accounts_summarised): its client and product at its
    -- latest snapshot, its first and latest month and the months delivered ((account_key, snapshot_month) is unique)
    select
        client_key,
        product_code,
        account_key,
        first_month,
        last_month,
        months_delivered as months
    from {{ ref('int_accounts_summarised') }}
),

by_product as (
    select
        client_key,
        product_code,
        min(first_month) as first_opened_month,
        max(last_month) as last_seen_month,
        sum(months) as account_months,
        count(account_key) as accounts_ever,
        count(*) as account_groups
    from by_account
    group by client_key, product_code
),

shared_months as (
    -- several accounts of one product (or one without a key): a month counts once however many were held in it.
    -- Distinct months per client and product over every snapshot spilled at 1 M clients; one account each is the rule.
    select s.client_key, s.product_code, count(distinct s.snapshot_month) as months_held
    from {{ ref('stg_usage__product_snapshots') }} as s
    inner join by_product as p
        on
            s.client_key = p.client_key
            and s.product_code = p.product_code
    where p.account_groups > 1 or p.accounts_ever = 0
    group by s.client_key, s.product_code
),

current_month as (
    select
        s.client_key,
        s.product_code,
        count(*) as current_accounts,
        sum({{ dbt.safe_cast('s.credit_limit', dbt.type_numeric()) }}) as current_credit_limit,
        sum({{ dbt.safe_cast('s.outstanding_balance', dbt.type_numeric()) }}) as current_outstanding
    from {{ ref('stg_usage__product_snapshots') }} as s
    inner join as_of as a
        on s.snapshot_month = a.as_of_month
    group by s.client_key, s.product_code
),

window_start as (
    select min(snapshot_month) as first_window_month from {{ ref('int_usage_months_fingerprinted') }}
)

select
    p.client_key,
    p.product_code,
    p.first_opened_month,
    p.first_opened_month = w.first_window_month as opened_before_window,
    p.last_seen_month,
    cast(case
        when sm.client_key is not null then sm.months_held
        else p.account_months
    end as {{ dbt.type_bigint() }}) as months_held,
    p.accounts_ever,
    cm.client_key is not null as currently_held,
    coalesce(cm.current_accounts, 0) as current_accounts,
    coalesce(cm.current_credit_limit, 0) as current_credit_limit,
    coalesce(cm.current_outstanding, 0) as current_outstanding
from by_product as p
cross join window_start as w
left join shared_months as sm
    on
        p.client_key = sm.client_key
        and p.product_code = sm.product_code
left join current_month as cm
    on
        p.client_key = cm.client_key
        and p.product_code = cm.product_code
