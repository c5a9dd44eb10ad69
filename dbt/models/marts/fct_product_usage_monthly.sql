-- One row per client and snapshot_month with at least one facility snapshot (client x month).
-- Incremental by month on DuckDB: only the months whose usage rows changed since this table was last built are
-- built again (delete+insert by month); the months it was built from are recorded after it, by
-- int_usage_fact_months_recorded. months_before_as_of moves for every row when a month closes: a post-hook sets it
-- (one column updated, far cheaper than writing every client-month again). full_rebuild and Spark build it whole.
{%- set recorded = api.Relation.create(database=this.database, schema='intermediate',
                                       identifier='int_usage_fact_months_recorded') if is_incremental() else none %}
{{ config(
    materialized=('table' if target.type == 'spark' else 'incremental'),
    incremental_strategy='delete+insert',
    unique_key='snapshot_month',
    post_hook=([] if target.type == 'spark' else [
        "delete from {{ this }} where snapshot_month not in (select snapshot_month from "
        ~ "{{ ref('int_usage_months_fingerprinted') }})",
        "update {{ this }} set months_before_as_of = "
        ~ "{{ dbt.datediff('snapshot_month', '(select as_of_month from ' ~ ref('int_as_of_date_derived') ~ ')', 'month') }}"
    ])
) }}
select
    {{ dbt.concat(['m.client_key', "'|'", dbt.safe_cast('m.snapshot_month', dbt.type_string())]) }} as client_month_key,
    m.client_key,
    m.snapshot_month,
    {{ dbt.datediff('m.snapshot_month', 'a.as_of_month', 'month') }} as months_before_as_of,  -- noqa: LT05
    m.accounts_count,
    m.products_held,
    m.total_credit_limit,
    m.total_outstanding,
    m.utilisation,
    m.drawdown_amount,
    m.repayment_amount,
    m.max_days_past_due,
    m.accounts_in_arrears,
    m.is_in_arrears,
    m.is_30_plus_dpd,
    m.is_90_plus_dpd,
    m.interaction_count,
    m.branch_accounts,
    m.online_accounts,
    m.relationship_manager_accounts,
    m.primary_channel,
    m.is_active
from {{ ref('int_client_usage_months_aggregated') }} as m
cross join {{ ref('int_as_of_date_derived') }} as a
{%- if is_incremental() %}
where m.snapshot_month in {{ months_to_build(ref('int_usage_months_fingerprinted'), recorded) }}
{%- endif %}
