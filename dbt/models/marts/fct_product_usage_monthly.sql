-- One row per client and snapshot_month with at least one facility snapshot (client x month).
select
    {{ dbt.concat(['m.client_key', "'|'", dbt.safe_cast('m.snapshot_month', dbt.type_string())]) }} as client_month_key,
    m.client_key,
    m.snapshot_month,
    {{ dbt.datediff('m.snapshot_month', 'a.as_of_month', 'month') }}  as months_before_as_of,
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
