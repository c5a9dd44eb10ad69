-- One row per delivered CRM client (client_key): the segment dimensions SQL users group by, with the
-- attributes they derive from. Rules are documented in _marts__models.yml and in the intermediate models.
with clients as (
    select * from {{ ref('stg_crm__clients') }}
),

as_of as (
    select as_of_date from {{ ref('int_as_of_date_derived') }}
)

select
    c.client_key,
    -- industry
    c.industry_code,
    c.industry_section,
    sec.section_name_en as industry_section_name_en,
    ind.industry_division_code,
    ind.industry_matched_prefix,
    ind.industry_match_level,
    ind.industry_group,
    ind.industry_risk_class,
    ind.technology_firm,
    -- size (2011 SME standard)
    c.employee_count,
    c.annual_revenue,
    c.total_assets,
    c.registered_capital,
    sz.measure_a as size_measure_a,
    sz.measure_b as size_measure_b,
    sz.size_class,
    sz.size_class_basis,
    -- firm stage
    c.founded_date,
    st.firm_age_months,
    st.firm_stage,
    -- geography
    c.province_code,
    pr.province_name_en,
    coalesce(pr.economic_region, 'unknown') as economic_region,
    coalesce(pr.region_tier, 'unknown') as region_tier,
    -- relationship lifecycle
    c.onboarding_date,
    c.relationship_status,
    st.tenure_months,
    st.last_active_month,
    st.months_since_last_activity,
    st.opened_product_last_12m,
    st.lifecycle_stage,
    -- rating
    rt.latest_report_date,
    rt.bureau_score,
    rt.rating_grade,
    rt.rating_grade_order,
    rt.rating_basis,
    rt.default_trigger,
    rt.credit_band,
    rt.pd_min,
    rt.pd_max,
    rt.pd_band,
    -- value
    vt.current_credit_limit,
    vt.current_outstanding,
    vt.current_products_held,
    vt.value_score,
    vt.value_tier,
    -- bookkeeping
    a.as_of_date,
    c.updated_at
from clients as c
cross join as_of as a
left join {{ ref('int_clients_industry_mapped') }} as ind
    on c.client_key = ind.client_key
left join {{ ref('industry_sections') }} as sec
    on c.industry_section = sec.section_code
left join {{ ref('int_clients_size_classified') }} as sz
    on c.client_key = sz.client_key
left join {{ ref('int_clients_staged') }} as st
    on c.client_key = st.client_key
left join {{ ref('province_regions') }} as pr
    on c.province_code = pr.province_code
left join {{ ref('int_clients_rated') }} as rt
    on c.client_key = rt.client_key
left join {{ ref('int_clients_value_tiered') }} as vt
    on c.client_key = vt.client_key
