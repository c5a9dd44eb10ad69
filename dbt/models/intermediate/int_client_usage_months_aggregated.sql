-- One row per client and snapshot_month in which the client had at least one facility snapshot:
-- the client's facilities summed over accounts. Months without any snapshot have no row. Amounts are summed
-- as exact decimals (dbt.type_numeric) so results do not depend on the order parallel threads add them in.
with snapshots as (
    select * from {{ ref('stg_usage__product_snapshots') }}
),

channel_counts as (
    select
        client_key,
        snapshot_month,
        channel,
        count(*) as channel_accounts,
        row_number() over (
            partition by client_key, snapshot_month
            order by count(*) desc, channel
        ) as channel_rank
    from snapshots
    group by client_key, snapshot_month, channel
),

aggregated as (
    select
        client_key,
        snapshot_month,
        count(*)                                                         as accounts_count,
        count(distinct product_code)                                     as products_held,
        sum({{ dbt.safe_cast('credit_limit', dbt.type_numeric()) }}) as total_credit_limit,
        sum({{ dbt.safe_cast('outstanding_balance', dbt.type_numeric()) }}) as total_outstanding,
        sum({{ dbt.safe_cast('drawdown_amount', dbt.type_numeric()) }}) as drawdown_amount,
        sum({{ dbt.safe_cast('repayment_amount', dbt.type_numeric()) }}) as repayment_amount,
        max(days_past_due)                                               as max_days_past_due,
        sum(case when days_past_due > 0 then 1 else 0 end)               as accounts_in_arrears,
        sum(interaction_count)                                           as interaction_count,
        sum(case when channel = 'branch' then 1 else 0 end)              as branch_accounts,
        sum(case when channel = 'online' then 1 else 0 end)              as online_accounts,
        sum(case when channel = 'relationship_manager' then 1 else 0 end) as relationship_manager_accounts,
        max(case
                when outstanding_balance > 0 or drawdown_amount > 0 or repayment_amount > 0 then 1
                else 0
            end)                                                         as active_flag
    from snapshots
    group by client_key, snapshot_month
)

select
    a.client_key,
    a.snapshot_month,
    a.accounts_count,
    a.products_held,
    a.total_credit_limit,
    a.total_outstanding,
    case when a.total_credit_limit > 0 then {{ ratio("a.total_outstanding", "a.total_credit_limit") }} end as utilisation,
    a.drawdown_amount,
    a.repayment_amount,
    a.max_days_past_due,
    a.accounts_in_arrears,
    coalesce(a.max_days_past_due > 0, false)                           as is_in_arrears,
    coalesce(a.max_days_past_due >= 30, false)                         as is_30_plus_dpd,
    coalesce(a.max_days_past_due >= 90, false)                         as is_90_plus_dpd,
    a.interaction_count,
    a.branch_accounts,
    a.online_accounts,
    a.relationship_manager_accounts,
    ch.channel                                                         as primary_channel,
    a.active_flag = 1                                                  as is_active
from aggregated as a
left join channel_counts as ch
    on a.client_key = ch.client_key
    and a.snapshot_month = ch.snapshot_month
    and ch.channel_rank = 1
