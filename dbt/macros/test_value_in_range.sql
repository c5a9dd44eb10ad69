{#-
  Generic range test (no dbt_utils): fails for every non-null value of column_name outside
  [min_value, max_value]. Either bound may be omitted; inclusive=false makes both bounds strict.
  Usage:
    data_tests:
      - value_in_range:
          arguments: {min_value: 0, max_value: 1}
-#}
{% test value_in_range(model, column_name, min_value=none, max_value=none, inclusive=true) %}
{%- set lo_op = '<' if inclusive else '<=' -%}
{%- set hi_op = '>' if inclusive else '>=' -%}
select {{ column_name }} as out_of_range_value
from {{ model }}
where {{ column_name }} is not null
  and (
        1 = 0
        {%- if min_value is not none %} or {{ column_name }} {{ lo_op }} {{ min_value }}{% endif %}
        {%- if max_value is not none %} or {{ column_name }} {{ hi_op }} {{ max_value }}{% endif %}
      )
{% endtest %}
