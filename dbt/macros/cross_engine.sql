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

{#-
  fingerprint(columns): an order-free fingerprint of a group's rows, as a string - the sum of a 64-bit hash of
  the given columns (DuckDB hash, Spark xxhash64), summed without overflow. Equal rows give equal fingerprints on
  one engine; a row added, removed or replaced (another source file or ingestion time) changes it. Incremental
  models compare the fingerprint they were built from with the current one to find the months to build again.
-#}
{% macro fingerprint(columns) -%}
    {{ return(adapter.dispatch('fingerprint', 'lendseg')(columns)) }}
{%- endmacro %}
{% macro default__fingerprint(columns) -%}
    cast(count(*) as varchar) || ':' || cast(sum(cast(hash({{ columns | join(', ') }}) as hugeint)) as varchar)
{%- endmacro %}
{% macro spark__fingerprint(columns) -%}
    concat(cast(count(*) as string), ':', cast(sum(cast(xxhash64({{ columns | join(', ') }}) as decimal(38, 0))) as string))
{%- endmacro %}

{#-
  months_to_build(fingerprints, built_from=none): in an incremental run, a subquery of the months to build again -
  every month of `fingerprints` (one row per snapshot_month with its month_fingerprint) whose fingerprint differs
  from the one stored in `built_from` (a relation with snapshot_month and month_fingerprint columns; default: the
  model itself), and every month stored there that no longer has a row; all months when `built_from` is missing or
  has no month_fingerprint column (a build from before the model was incremental). Empty outside incremental runs
  (callers filter only when is_incremental()).
-#}
{% macro months_to_build(fingerprints, built_from=none) -%}
    {%- if is_incremental() -%}
        {%- set built = built_from if built_from is not none else this -%}
        {%- set relation = adapter.get_relation(database=built.database, schema=built.schema, identifier=built.identifier) -%}
        {%- set stored = (adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list)
                         if relation is not none else [] -%}
        {%- if 'month_fingerprint' in stored -%}
    (select f.snapshot_month from {{ fingerprints }} as f
     where not exists (select 1 from {{ relation }} as t
                       where t.snapshot_month = f.snapshot_month and t.month_fingerprint = f.month_fingerprint)
     union
     select distinct t.snapshot_month from {{ relation }} as t
     where not exists (select 1 from {{ fingerprints }} as f where f.snapshot_month = t.snapshot_month))
        {%- else -%}
    (select f.snapshot_month from {{ fingerprints }} as f)
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
