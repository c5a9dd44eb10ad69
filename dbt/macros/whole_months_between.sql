{#-
  Completed calendar months from start_date to end_date (like an age in months): the month difference
  minus one when end_date's day-of-month has not yet reached start_date's. Built only from dbt's
  cross-database macros (dbt.datediff, dbt.dateadd), so it runs unchanged on DuckDB and Spark.
  Negative when end_date < start_date; null when either is null.
-#}
{% macro whole_months_between(start_date, end_date) -%}
    (
        {{ dbt.datediff(start_date, end_date, 'month') }}
        - case
            when {{ dbt.dateadd('month', dbt.datediff(start_date, end_date, 'month'), start_date) }} > {{ end_date }}
                then 1
            else 0
          end
    )
{%- endmacro %}
