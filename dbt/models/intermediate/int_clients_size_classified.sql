-- One row per CRM client: size class under the 2011 SME standard (工信部联企业〔2011〕300号), using the
-- thresholds of the client's industry group (seed sme_size_thresholds). The rule lives in macro
-- sme_size_class (see macros/sme_size_class.sql); the hand-classified cases in seed size_class_cases are
-- checked against the same macro by the singular test assert_size_class_cases.
with clients as (
    select
        c.client_key,
        c.employee_count,
        c.annual_revenue,
        c.total_assets,
        i.industry_section,
        i.industry_group
    from {{ ref('stg_crm__clients') }} as c
    inner join {{ ref('int_clients_industry_mapped') }} as i
        on c.client_key = i.client_key
),

joined as (
    select
        c.*,
        t.group_code,
        t.measure_a,
        t.measure_b,
        t.sme_ceiling_a,
        t.sme_ceiling_b,
        t.medium_min_a,
        t.medium_min_b,
        t.small_min_a,
        t.small_min_b,
        {{ sme_measure_value('t.measure_a', 'c.employee_count', 'c.annual_revenue', 'c.total_assets') }}
            as measure_a_value,
        {{ sme_measure_value('t.measure_b', 'c.employee_count', 'c.annual_revenue', 'c.total_assets') }}
            as measure_b_value
    from clients as c
    -- Financial firms (section J) are sized under the separate 2015 standard 银发〔2015〕309号, which this
    -- project does not hold: no threshold row, hence size_class unknown (never a guess).
    left join {{ ref('sme_size_thresholds') }} as t
        on
            c.industry_group = t.group_code
            and c.industry_section <> 'J'
)

select
    client_key,
    industry_group,
    measure_a,
    measure_b,
    measure_a_value,
    measure_b_value,
    {{ sme_size_class('joined', 'measure_a_value', 'measure_b_value') }} as size_class,
    case
        when industry_section = 'J' then 'financial_sector_not_covered'
        when group_code is null then 'industry_unmapped'
        when measure_a_value is null or measure_a_value < 0 then 'missing_measure'
        when measure_b is not null and (measure_b_value is null or measure_b_value < 0) then 'missing_measure'
        else 'sme_standard_2011'
    end as size_class_basis
from joined
