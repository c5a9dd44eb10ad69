-- One row per credit-bureau report, typed; amounts in CNY.
select
    report_id,
    client_key,
    report_date,
    bureau_score,
    total_debt,
    overdue_amount,
    max_days_past_due_12m,
    defaults_5y,
    inquiries_6m,
    collateral_value,
    operating_cash_flow,
    debt_service_12m,
    current_ratio,
    debt_to_equity,
    legal_judgments,
    _source_file as source_file,
    _ingested_at as ingested_at
from {{ source('bureau', 'credit_bureau') }}
