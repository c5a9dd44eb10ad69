-- One row per account and month: facility snapshot with utilisation derived.
select
    snapshot_month,
    account_key,
    client_key,
    lower(trim(product_code)) as product_code,
    credit_limit,
    outstanding_balance,
    drawdown_amount,
    repayment_amount,
    days_past_due,
    interaction_count,
    lower(trim(channel)) as channel,
    term_months,
    lower(trim(security_type)) as security_type,
    case when credit_limit > 0 then outstanding_balance / credit_limit end as utilisation,
    _source_file as source_file,
    _ingested_at as ingested_at
from {{ source('usage', 'product_usage') }}
