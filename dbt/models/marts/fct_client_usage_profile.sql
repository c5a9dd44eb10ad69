-- One row per client with at least one facility snapshot in the usage data: holdings, exposure,
-- utilisation, drawdown/repayment behaviour, arrears, channel mix and CRM interactions.
-- "12m" = the 12 snapshot months up to and including the as-of month.
-- The client-months are read where used, not through one shared CTE: DuckDB materialises a CTE that several
-- others read, which wrote every client-month to the spill folder.
with products as (
    select * from {{ ref('int_client_products_summarised') }}
),

as_of as (
    select as_of_date, as_of_month from {{ ref('int_as_of_date_derived') }}
),

history as (
    select
        m.client_key,
        min(m.snapshot_month) as first_usage_month,
        max(m.snapshot_month) as last_usage_month,
        count(*) as months_observed,
        max(case when m.is_active then m.snapshot_month end) as last_active_month,
        sum(case when m.is_in_arrears then 1 else 0 end) as months_in_arrears_total,
        max(m.max_days_past_due) as max_days_past_due_ever
    from {{ ref('int_client_usage_months_aggregated') }} as m
    group by m.client_key
),

last_12m as (
    select
        m.client_key,
        count(*) as months_observed_12m,
        sum(case when m.is_active then 1 else 0 end) as active_months_12m,
        round(avg(m.utilisation), 6) as avg_utilisation_12m,  -- rounded: parallel float sums differ in the last bit
        max(m.utilisation) as max_utilisation_12m,
        avg(m.total_credit_limit) as avg_credit_limit_12m,
        sum(m.drawdown_amount) as drawdown_12m,
        sum(m.repayment_amount) as repayment_12m,
        sum(case when m.drawdown_amount > 0 then 1 else 0 end) as drawdown_months_12m,
        sum(case when m.is_in_arrears then 1 else 0 end) as months_in_arrears_12m,
        sum(case when m.is_30_plus_dpd then 1 else 0 end) as months_30_plus_dpd_12m,
        sum(case when m.is_90_plus_dpd then 1 else 0 end) as months_90_plus_dpd_12m,
        max(m.max_days_past_due) as max_days_past_due_12m,
        sum(m.interaction_count) as interactions_12m,
        sum(m.branch_accounts) as branch_account_months_12m,
        sum(m.online_accounts) as online_account_months_12m,
        sum(m.relationship_manager_accounts) as relationship_manager_account_months_12m,
        sum(m.accounts_count) as account_months_12m
    from {{ ref('int_client_usage_months_aggregated') }} as m
    cross join as_of as a
    where
        m.snapshot_month > {{ dbt.dateadd('month', -12, 'a.as_of_month') }}
        and m.snapshot_month <= a.as_of_month
    group by m.client_key
),

current_month as (
    select m.*
    from {{ ref('int_client_usage_months_aggregated') }} as m
    inner join as_of as a
        on m.snapshot_month = a.as_of_month
),

book as (
    -- the facility book: every account at its latest snapshot (int_accounts_latest_selected), limit-weighted
    select
        client_key,
        count(*) as facilities_in_book,
        sum(credit_limit) as book_credit_limit,
        {%- for p in lendseg_products() %}
            sum(case when product_code = '{{ p }}' then credit_limit else 0 end) as book_limit_{{ p }},
        {%- endfor %}
        sum(case when term_months is not null then credit_limit * term_months end) as term_weighted_limit,
        sum(case when term_months is not null then credit_limit end) as termed_limit,
        sum(case when security_type is not null and security_type <> 'unsecured' then credit_limit else 0 end)
            as secured_limit,
        sum(case when security_type = 'guaranteed' then credit_limit else 0 end) as guaranteed_limit,
        sum(case when security_type is not null then credit_limit end) as security_known_limit
    from {{ ref('int_accounts_latest_selected') }}
    group by client_key
),

product_pivot as (
    select
        client_key,
        count(*) as product_breadth_ever,
        sum(case when currently_held then 1 else 0 end) as products_held,
        {{ sorted_listagg("case when currently_held then product_code end", "'|'") }}
            as products_held_list,
        {%- for p in lendseg_products() %}
            min(case when product_code = '{{ p }}' then first_opened_month end) as first_opened_{{ p }}
            {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from products
    group by client_key
)

select
    h.client_key,
    a.as_of_date,
    h.first_usage_month,
    h.last_usage_month,
    h.months_observed,
    h.last_active_month,
    case
        when h.last_active_month is not null
            then {{ dbt.datediff('h.last_active_month', 'a.as_of_month', 'month') }} end  -- noqa: LT05
        as months_since_last_activity,
    -- holdings
    coalesce(pp.products_held, 0) as products_held,
    pp.products_held_list,
    pp.product_breadth_ever,
    coalesce(cm.accounts_count, 0) as accounts_held,
    -- exposure and utilisation (as-of month)
    coalesce(cm.total_credit_limit, 0) as total_credit_limit,
    coalesce(cm.total_outstanding, 0) as total_outstanding,
    cm.utilisation as current_utilisation,
    l.avg_utilisation_12m,
    l.max_utilisation_12m,
    l.avg_credit_limit_12m,
    -- drawdown and repayment behaviour
    coalesce(l.drawdown_12m, 0) as drawdown_12m,
    coalesce(l.repayment_12m, 0) as repayment_12m,
    coalesce(l.drawdown_months_12m, 0) as drawdown_months_12m,
    case when l.drawdown_12m > 0 then {{ ratio("l.repayment_12m", "l.drawdown_12m") }} end as repayment_to_drawdown_12m,
    case when l.avg_credit_limit_12m > 0 then {{ ratio("l.drawdown_12m", "l.avg_credit_limit_12m") }} end
        as drawdown_to_limit_12m,
    coalesce(l.active_months_12m, 0) as active_months_12m,
    -- arrears
    coalesce(cm.max_days_past_due, 0) as current_days_past_due,
    coalesce(l.months_in_arrears_12m, 0) as months_in_arrears_12m,
    coalesce(l.months_30_plus_dpd_12m, 0) as months_30_plus_dpd_12m,
    coalesce(l.months_90_plus_dpd_12m, 0) as months_90_plus_dpd_12m,
    coalesce(l.max_days_past_due_12m, 0) as max_days_past_due_12m,
    h.months_in_arrears_total,
    h.max_days_past_due_ever,
    -- channel mix (share of account-months in the last 12 months)
    case when l.account_months_12m > 0 then {{ ratio("l.branch_account_months_12m", "l.account_months_12m") }} end
        as branch_share_12m,
    case when l.account_months_12m > 0 then {{ ratio("l.online_account_months_12m", "l.account_months_12m") }} end
        as online_share_12m,
    case
        when
            l.account_months_12m > 0
            then {{ ratio("l.relationship_manager_account_months_12m", "l.account_months_12m") }}
    end
        as relationship_manager_share_12m,
    case
        when l.account_months_12m is null or l.account_months_12m = 0 then null
        when
            l.relationship_manager_account_months_12m >= l.branch_account_months_12m
            and l.relationship_manager_account_months_12m >= l.online_account_months_12m then 'relationship_manager'
        when l.branch_account_months_12m >= l.online_account_months_12m then 'branch'
        else 'online'
    end as primary_channel_12m,
    -- CRM interactions
    coalesce(l.interactions_12m, 0) as interactions_12m,
    case when l.months_observed_12m > 0 then {{ ratio("l.interactions_12m", "l.months_observed_12m") }} end
        as interactions_per_month_12m,
    -- product mix: share of the facility book's limit in each catalogue product (null: no limit in the book)
    bk.facilities_in_book,
    bk.book_credit_limit,
    {%- for p in lendseg_products() %}
        case when bk.book_credit_limit > 0 then {{ ratio("bk.book_limit_" ~ p, "bk.book_credit_limit") }} end
            as limit_share_{{ p }},
    {%- endfor %}
    -- facility terms (contract v1.1): limit-weighted original term, secured and guaranteed shares of the limit
    case when bk.termed_limit > 0 then {{ ratio("bk.term_weighted_limit", "bk.termed_limit") }} end
        as limit_weighted_term_months,
    case when bk.security_known_limit > 0 then {{ ratio("bk.secured_limit", "bk.security_known_limit") }} end
        as secured_limit_share,
    case when bk.security_known_limit > 0 then {{ ratio("bk.guaranteed_limit", "bk.security_known_limit") }} end
        as guaranteed_limit_share,
    -- first month each product was seen (null = never held)
    {%- for p in lendseg_products() %}
        pp.first_opened_{{ p }}
        {%- if not loop.last %},{% endif %}
    {%- endfor %}
from history as h
cross join as_of as a
left join last_12m as l
    on h.client_key = l.client_key
left join current_month as cm
    on h.client_key = cm.client_key
left join product_pivot as pp
    on h.client_key = pp.client_key
left join book as bk
    on h.client_key = bk.client_key
