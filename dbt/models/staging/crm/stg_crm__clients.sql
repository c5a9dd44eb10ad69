-- One row per client: typed, trimmed and normalised CRM attributes. No personal data reaches this layer.
select
    client_key,
    upper(trim(industry_code)) as industry_code,
    upper(substring(trim(industry_code), 1, 1)) as industry_section,
    lpad(trim(province_code), 2, '0') as province_code,
    registered_capital,
    employee_count,
    annual_revenue,
    total_assets,
    founded_date,
    onboarding_date,
    lower(trim(relationship_status)) as relationship_status,
    updated_at,
    _source_file as source_file,
    _ingested_at as ingested_at
from {{ source('crm', 'clients') }}
