-- One row per delivered client: the segment dimensions SQL users group by.
select
    c.client_key,
    c.industry_code,
    c.industry_section,
    c.province_code,
    c.employee_count,
    c.annual_revenue,
    c.total_assets,
    c.registered_capital,
    c.founded_date,
    c.onboarding_date,
    c.relationship_status,
    c.updated_at
from {{ ref('stg_crm__clients') }} as c
