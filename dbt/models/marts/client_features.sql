-- Model-ready feature table: one row per scorable client = lifecycle_stage other than 'prospect' and at
-- least one credit-bureau report or one facility snapshot. Every column is documented in
-- _marts__models.yml with its derivation. Missing values are left null (no imputation here).
with dim as (
    select * from {{ ref('dim_client') }}
),

credit as (
    select * from {{ ref('fct_credit_profile') }}
),

usage_profile as (
    select * from {{ ref('fct_client_usage_profile') }}
)

select
    d.client_key,
    -- flags of what evidence the client has
    cr.client_key is not null as has_bureau_report,
    u.client_key is not null as has_usage,
    -- firmographics (numeric)
    d.firm_age_months,
    d.tenure_months,
    d.employee_count,
    d.annual_revenue,
    d.total_assets,
    d.registered_capital,
    case when d.employee_count > 0 then d.annual_revenue / d.employee_count end as revenue_per_employee,
    -- credit (latest bureau report and trends)
    cr.bureau_score,
    cr.bureau_score_change_12m,
    cr.overdue_ratio,
    cr.max_days_past_due_12m as bureau_max_days_past_due_12m,
    cr.defaults_5y,
    cr.default_in_last_12m,
    cr.inquiries_6m,
    cr.legal_judgments,
    cr.collateral_coverage,
    cr.debt_to_equity,
    cr.debt_to_assets,
    cr.current_ratio,
    cr.repayment_capacity,
    cr.repayment_capacity_basis,
    cr.cash_flow_cv,
    cr.negative_cash_flow_share,
    -- usage (as-of month and last 12 months)
    coalesce(u.products_held, 0) as products_held,
    coalesce(u.product_breadth_ever, 0) as product_breadth_ever,
    coalesce(u.total_credit_limit, 0) as total_credit_limit,
    coalesce(u.total_outstanding, 0) as total_outstanding,
    u.current_utilisation,
    u.avg_utilisation_12m,
    u.drawdown_to_limit_12m,
    u.repayment_to_drawdown_12m,
    coalesce(u.months_in_arrears_12m, 0) as months_in_arrears_12m,
    coalesce(u.max_days_past_due_12m, 0) as usage_max_days_past_due_12m,
    coalesce(u.interactions_12m, 0) as interactions_12m,
    u.branch_share_12m,
    u.online_share_12m,
    u.relationship_manager_share_12m,
    u.months_since_last_activity,
    -- product mix of the facility book (share of its limit per catalogue product) and facility terms (v1.1)
    {%- for p in lendseg_products() %}
        u.limit_share_{{ p }},
    {%- endfor %}
    u.limit_weighted_term_months,
    u.secured_limit_share,
    u.guaranteed_limit_share,
    -- categoricals
    d.industry_section,
    d.industry_group,
    d.industry_risk_class,
    d.technology_firm,
    d.size_class,
    d.firm_stage,
    d.economic_region,
    d.region_tier,
    d.lifecycle_stage,
    d.rating_grade,
    d.credit_band,
    d.value_tier,
    u.primary_channel_12m,
    d.as_of_date
from dim as d
left join credit as cr
    on d.client_key = cr.client_key
left join usage_profile as u
    on d.client_key = u.client_key
where
    d.lifecycle_stage <> 'prospect'
    and (cr.client_key is not null or u.client_key is not null)
