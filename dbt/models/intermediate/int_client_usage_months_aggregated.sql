-- One row per client and snapshot_month in which the client had at least one facility snapshot:
-- the client's facilities summed over accounts. Months without any snapshot have no row. Amounts are summed
-- as exact decimals (dbt.type_numeric) so results do not depend on the order parallel threads add them in.
-- products_held = distinct products; primary_channel = the channel of most accounts, ties to the first channel
-- in sort order. Both come from the one aggregation by client-month: a flag per catalogue product and the counts
-- per contract channel (branch < online < relationship_manager). A distinct count and a ranked join of
-- per-channel counts over every account-month spilled past LENDSEG_DUCKDB_MAX_TEMP_SIZE at 1 M clients; they
-- remain only for client-months with a product outside the catalogue or a channel outside the three (or none),
-- which valid deliveries do not have. Each CTE reads the staging view itself: a CTE that several others read is
-- materialised by DuckDB, which wrote every account-month to the spill folder.
-- Incremental by month on DuckDB: a run builds again only the months whose usage rows changed since the last build
-- (int_usage_months_fingerprinted), delete+insert by month; full_rebuild rebuilds every month. month_fingerprint is
-- the fingerprint a month was built from. On Spark (parquet tables, no delete) the model is rebuilt whole as before.
{{ config(
    materialized=('table' if target.type == 'spark' else 'incremental'),
    incremental_strategy='delete+insert',
    unique_key='snapshot_month',
    on_schema_change='append_new_columns',
    post_hook=("" if target.type == 'spark' else
               "delete from {{ this }} where snapshot_month not in (select snapshot_month from "
               ~ "{{ ref('int_usage_months_fingerprinted') }})")
) }}
-- depends_on: {{ ref('int_accounts_summarised') }}
-- (built after the accounts' state, which reads the fingerprints this model stored: int_accounts_summarised.sql)
{%- set channels = ['branch', 'online', 'relationship_manager'] %}
{%- set channel_list = "('" ~ channels | join("', '") ~ "')" %}
{%- set product_list = "('" ~ lendseg_products() | join("', '") ~ "')" %}
{%- set new_months = months_to_build(ref('int_usage_months_fingerprinted')) %}
{%- set only_new = "snapshot_month in (select snapshot_month from changed_months)" %}
with
{%- if is_incremental() %}
changed_months as (
    -- the months to build again, found once for both reads of the staging view below
    select m.snapshot_month from {{ new_months }} as m
),
{%- endif %}

aggregated as (
    select
        client_key,
        snapshot_month,
        count(*) as accounts_count,
        {%- for p in lendseg_products() %}
            max(case when product_code = '{{ p }}' then 1 else 0 end) +
        {%- endfor %} 0 as catalogue_products_held,
        sum({{ dbt.safe_cast('credit_limit', dbt.type_numeric()) }}) as total_credit_limit,
        sum({{ dbt.safe_cast('outstanding_balance', dbt.type_numeric()) }}) as total_outstanding,
        sum({{ dbt.safe_cast('drawdown_amount', dbt.type_numeric()) }}) as drawdown_amount,
        sum({{ dbt.safe_cast('repayment_amount', dbt.type_numeric()) }}) as repayment_amount,
        max(days_past_due) as max_days_past_due,
        sum(case when days_past_due > 0 then 1 else 0 end) as accounts_in_arrears,
        sum(interaction_count) as interaction_count,
        sum(case when channel = 'branch' then 1 else 0 end) as branch_accounts,
        sum(case when channel = 'online' then 1 else 0 end) as online_accounts,
        sum(case when channel = 'relationship_manager' then 1 else 0 end) as relationship_manager_accounts,
        max(case
            when outstanding_balance > 0 or drawdown_amount > 0 or repayment_amount > 0 then 1
            else 0
        end) as active_flag
    from {{ ref('stg_usage__product_snapshots') }}
    {% if is_incremental() %}where {{ only_new }}{% endif %}
    group by client_key, snapshot_month
),

irregular_months as (
    -- client-months with a product outside the catalogue or a channel outside the contract's three (or none)
    select distinct client_key, snapshot_month
    from {{ ref('stg_usage__product_snapshots') }}
    where (
        product_code not in {{ product_list }}
        or channel is null
        or channel not in {{ channel_list }}
    )
    {% if is_incremental() %}and {{ only_new }}{% endif %}
),

irregular_snapshots as (
    select s.*
    from {{ ref('stg_usage__product_snapshots') }} as s
    inner join irregular_months as i
        on
            s.client_key = i.client_key
            and s.snapshot_month = i.snapshot_month
),

irregular_products as (
    select client_key, snapshot_month, count(distinct product_code) as products_held
    from irregular_snapshots
    group by client_key, snapshot_month
),

irregular_channels as (
    select
        client_key,
        snapshot_month,
        channel,
        row_number() over (
            partition by client_key, snapshot_month
            order by count(*) desc, channel
        ) as channel_rank
    from irregular_snapshots
    group by client_key, snapshot_month, channel
)

select
    a.client_key,
    a.snapshot_month,
    a.accounts_count,
    cast(case
        when ip.client_key is not null then ip.products_held
        else a.catalogue_products_held
    end as {{ dbt.type_bigint() }}) as products_held,
    a.total_credit_limit,
    a.total_outstanding,
    case when a.total_credit_limit > 0 then {{ ratio("a.total_outstanding", "a.total_credit_limit") }} end
        as utilisation,
    a.drawdown_amount,
    a.repayment_amount,
    a.max_days_past_due,
    a.accounts_in_arrears,
    coalesce(a.max_days_past_due > 0, false) as is_in_arrears,
    coalesce(a.max_days_past_due >= 30, false) as is_30_plus_dpd,
    coalesce(a.max_days_past_due >= 90, false) as is_90_plus_dpd,
    a.interaction_count,
    a.branch_accounts,
    a.online_accounts,
    a.relationship_manager_accounts,
    case
        when ip.client_key is not null then ich.channel
        when
            a.branch_accounts >= a.online_accounts
            and a.branch_accounts >= a.relationship_manager_accounts then 'branch'
        when a.online_accounts >= a.relationship_manager_accounts then 'online'
        else 'relationship_manager'
    end as primary_channel,
    a.active_flag = 1 as is_active,
    f.month_fingerprint
from aggregated as a
inner join {{ ref('int_usage_months_fingerprinted') }} as f
    on a.snapshot_month = f.snapshot_month
left join irregular_products as ip
    on
        a.client_key = ip.client_key
        and a.snapshot_month = ip.snapshot_month
left join irregular_channels as ich
    on
        a.client_key = ich.client_key
        and a.snapshot_month = ich.snapshot_month
        and ich.channel_rank = 1
