{#-
  Spark engine only (LENDSEG_ENGINE=spark): before a dbt invocation, each dbt source the selected nodes read
  becomes a view over its Parquet folder in the raw layer (LENDSEG_LAKE_DIR/<schema>/<table>, written by the
  dbt step's export, dagster_project/defs/transform/lake.py). Only the sources this invocation needs are
  declared, because a source's folder exists once its table has been written (the model's ml tables only
  after scoring). On DuckDB the sources are the build database's own tables and nothing is run.
-#}
{% macro register_lake_sources() -%}
    {%- if execute and target.type == 'spark' -%}
        {%- set lake = env_var('LENDSEG_LAKE_DIR', '../data/lake') -%}
        {%- set wanted = [] -%}
        {%- for uid in selected_resources -%}
            {%- set node = graph.nodes.get(uid) -%}
            {%- if node -%}
                {%- for dep in node.depends_on.nodes if dep.startswith('source.') and dep not in wanted -%}
                    {%- do wanted.append(dep) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for uid in wanted -%}
            {%- set src = graph.sources[uid] -%}
            {%- do run_query('create database if not exists ' ~ src.schema) -%}
            {%- do run_query('create or replace view ' ~ src.schema ~ '.' ~ src.identifier
                             ~ ' as select * from parquet.`' ~ lake ~ '/' ~ src.schema ~ '/' ~ src.identifier ~ '`') -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
