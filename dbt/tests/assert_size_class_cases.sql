-- Attached to seed size_class_cases (both its parents are seeds, built in the same dbt step) as a blocking check.
{{ config(severity='error', meta={'dagster': {'ref': {'name': 'size_class_cases'}}}) }}
-- Every hand-classified firm of seed size_class_cases must get its expected size class when the model's
-- rule (macro sme_size_class, used by int_clients_size_classified) is applied with the real thresholds
-- seed sme_size_thresholds. Returns the disagreeing cases; also fails if fewer than 30 cases are present.
with cases as (
    select * from {{ ref('size_class_cases') }}
),

joined as (
    select
        c.case_id,
        c.expected_size_class,
        c.rationale,
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
    from cases as c
    left join {{ ref('sme_size_thresholds') }} as t
        on c.group_code = t.group_code
),

classified as (
    select
        case_id,
        expected_size_class,
        {{ sme_size_class('joined', 'measure_a_value', 'measure_b_value') }} as computed_size_class,
        rationale
    from joined
)

select case_id, expected_size_class, computed_size_class, rationale
from classified
where computed_size_class <> expected_size_class
union all
select
    'too_few_cases' as case_id,
    '>= 30' as expected_size_class,
    cast(count(*) as {{ dbt.type_string() }}) as computed_size_class,
    'the checked-in case set must hold at least 30 firms' as rationale
from cases
having count(*) < 30
