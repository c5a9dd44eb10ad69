{#-
  The few places where DuckDB and Spark SQL differ, dispatched by adapter (LENDSEG_ENGINE picks the target).
  arg_max(value, order_by): value of the row with the largest order_by, null when that row's value is null
    (DuckDB arg_max_null, Spark max_by). DuckDB's plain arg_max skips null values, which made the open spell
    of fct_segment_assignment_history end at its own latest date instead of staying current.
  arg_min(value, order_by): the same for the smallest order_by (DuckDB arg_min_null, Spark min_by).
-#}
{% macro arg_max(value, order_by) -%}
    {{ return(adapter.dispatch('arg_max', 'lendseg')(value, order_by)) }}
{%- endmacro %}
{% macro default__arg_max(value, order_by) -%} arg_max_null({{ value }}, {{ order_by }}) {%- endmacro %}
{% macro spark__arg_max(value, order_by) -%} max_by({{ value }}, {{ order_by }}) {%- endmacro %}

{% macro arg_min(value, order_by) -%}
    {{ return(adapter.dispatch('arg_min', 'lendseg')(value, order_by)) }}
{%- endmacro %}
{% macro default__arg_min(value, order_by) -%} arg_min_null({{ value }}, {{ order_by }}) {%- endmacro %}
{% macro spark__arg_min(value, order_by) -%} min_by({{ value }}, {{ order_by }}) {%- endmacro %}

{#-
  Seeds on dbt-spark's `session` method: its loader pastes each value into the SQL as '<value>' - a value
  holding a quote breaks the statement and an empty cell arrives as the string 'None' (dbt-spark 1.11.0,
  session.py _fix_binding). This loader writes SQL literals itself (null for an empty cell, quotes escaped),
  which every connection method accepts.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                    {%- set v = row[loop.index0] -%}
                    {%- if v is none -%} cast(null as {{ type }})
                    {%- elif v is number and v is not boolean -%} cast({{ v }} as {{ type }})
                    {%- else -%} cast('{{ v | string | replace("\\", "\\\\") | replace("'", "\\'") }}' as {{ type }})
                    {%- endif -%}
                    {%- if not loop.last %},{% endif -%}
                {%- endfor -%})
                {%- if not loop.last %},{% endif %}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.index0 == 0 -%}{%- do statements.append(sql) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}

{#-
  ratio(numerator, denominator): the quotient as a double on both engines. Spark divides exact decimals into a
  decimal of at most 6 decimal places (0.33333 where DuckDB gives 0.333333333...), so a ratio of decimal sums
  or of `x * 1.0` would differ between engines.
-#}
{% macro ratio(numerator, denominator) -%}
    (cast({{ numerator }} as double) / {{ denominator }})
{%- endmacro %}

{#-
  sorted_listagg(measure, delimiter_text): the non-null values joined in ascending order, null when there are
  none. dbt-spark's listagg ignores the order_by clause (warns and collects in arbitrary order) and returns ''
  for no values, so Spark sorts the collected array itself.
-#}
{% macro sorted_listagg(measure, delimiter_text) -%}
    {{ return(adapter.dispatch('sorted_listagg', 'lendseg')(measure, delimiter_text)) }}
{%- endmacro %}
{% macro default__sorted_listagg(measure, delimiter_text) -%}
    {{ dbt.listagg(measure, delimiter_text, "order by " ~ measure) }}
{%- endmacro %}
{% macro spark__sorted_listagg(measure, delimiter_text) -%}
    nullif(array_join(array_sort(collect_list({{ measure }})), {{ delimiter_text }}), '')
{%- endmacro %}
