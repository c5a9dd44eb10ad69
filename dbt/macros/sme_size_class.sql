{#-
  SME size classification of 工信部联企业〔2011〕300号《中小企业划型标准规定》 (seed sme_size_thresholds).
  The single implementation of the rule: int_clients_size_classified and the singular test
  assert_size_class_cases (hand-classified firms in seed size_class_cases) both call these macros.

  sme_measure_value(measure, employees, revenue, total_assets): the client's value of the measure named
  in a threshold row (measure_a / measure_b: employees, revenue or total_assets); null for a null measure.

  sme_size_class(t, value_a, value_b): t = alias of the joined sme_size_thresholds row, value_a / value_b =
  the client's values of t.measure_a / t.measure_b. Reading rules (seed description):
    unknown  no threshold row (industry not mapped), or a needed measure is missing or negative: never a guess;
             single-measure groups (measure_b empty) need measure A only;
    large    A >= sme_ceiling_a AND (no measure B OR B >= sme_ceiling_b)  = not SME (SME if either is below);
    medium   A >= medium_min_a AND (no B OR B >= medium_min_b)            (both lower bounds, inclusive);
    small    A >= small_min_a  AND (no B OR B >= small_min_b)             (both lower bounds, inclusive);
    micro    otherwise, i.e. A < small_min_a OR B < small_min_b.
-#}
{% macro sme_measure_value(measure, employees, revenue, total_assets) -%}
    case {{ measure }}
        when 'employees' then {{ dbt.safe_cast(employees, dbt.type_numeric()) }}
        when 'revenue' then {{ dbt.safe_cast(revenue, dbt.type_numeric()) }}
        when 'total_assets' then {{ dbt.safe_cast(total_assets, dbt.type_numeric()) }}
    end
{%- endmacro %}

{% macro sme_size_class(t, value_a, value_b) -%}
    case
        when {{ t }}.group_code is null then 'unknown'
        when {{ value_a }} is null or {{ value_a }} < 0 then 'unknown'
        when {{ t }}.measure_b is not null and ({{ value_b }} is null or {{ value_b }} < 0) then 'unknown'
        when {{ value_a }} >= {{ t }}.sme_ceiling_a
             and ({{ t }}.measure_b is null or {{ value_b }} >= {{ t }}.sme_ceiling_b) then 'large'
        when {{ value_a }} >= {{ t }}.medium_min_a
             and ({{ t }}.measure_b is null or {{ value_b }} >= {{ t }}.medium_min_b) then 'medium'
        when {{ value_a }} >= {{ t }}.small_min_a
             and ({{ t }}.measure_b is null or {{ value_b }} >= {{ t }}.small_min_b) then 'small'
        else 'micro'
    end
{%- endmacro %}
