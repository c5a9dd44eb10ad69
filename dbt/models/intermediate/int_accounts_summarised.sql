-- One row per account over every delivered snapshot: its first and latest snapshot month, the months delivered, and
-- its values at the latest snapshot (client, product, limit, balance; term_months and security_type the latest
-- delivered, from an earlier snapshot when the latest omits them).
-- State, incremental by account on DuckDB: a run reads only the months whose usage rows changed
-- (int_usage_months_fingerprinted). An account whose stored latest month is before every changed month gets the
-- new months appended to its stored row (first month kept, months added, latest values from the new rows, term and
-- security kept when the new rows omit them); an account whose history reaches a changed month (a corrected,
-- removed or released row) is summarised again from all its snapshots, and one with none left is removed (post-hook).
-- full_rebuild and Spark (parquet tables, no delete) summarise every account from all snapshots.
-- The months changed since the last build are those whose fingerprint differs from the one the client-month model
-- (int_client_usage_months_aggregated, built after this model) stored.
-- depends_on: {{ ref('int_usage_months_fingerprinted') }}
{{ config(
    materialized=('table' if target.type == 'spark' else 'incremental'),
    incremental_strategy='delete+insert',
    unique_key='account_key',
    on_schema_change='append_new_columns',
    post_hook=("" if target.type == 'spark' else "delete from {{ this }} where months_delivered is null")
) }}
{#- The months to build again are read against the fingerprints the client-month model was last built from: that
    model is built after this one (it depends_on this one), so it still holds them; when it failed after this one was
    built, the months are taken again, and an account whose latest month they reach is summarised again - a
    superset, never a month missed. -#}
{%- if is_incremental() %}
{%- set months_model = api.Relation.create(database=this.database, schema=this.schema,
                                           identifier='int_client_usage_months_aggregated') %}
{%- set new_months = months_to_build(ref('int_usage_months_fingerprinted'), months_model) %}
{%- endif %}
with
{%- if is_incremental() %}
first_changed as (
    select min(m.snapshot_month) as first_changed_month from {{ new_months }} as m
),

rebuilt as (
    -- stored accounts with a snapshot in or after the first changed month: their whole history again
    select t.account_key
    from {{ this }} as t
    cross join first_changed as c
    where t.last_month >= c.first_changed_month
),

rows_in as (
    select s.account_key, s.client_key, s.product_code, s.snapshot_month, s.credit_limit, s.outstanding_balance,
           s.term_months, s.security_type
    from {{ ref('stg_usage__product_snapshots') }} as s
    where s.snapshot_month in {{ new_months }}
      and s.account_key not in (select account_key from rebuilt)
    union all
    select s.account_key, s.client_key, s.product_code, s.snapshot_month, s.credit_limit, s.outstanding_balance,
           s.term_months, s.security_type
    from {{ ref('stg_usage__product_snapshots') }} as s
    where s.account_key in (select account_key from rebuilt)
),
{%- else %}
    rows_in as (
        select
            account_key, client_key, product_code, snapshot_month, credit_limit, outstanding_balance, term_months,
            security_type
        from {{ ref('stg_usage__product_snapshots') }}
    ),
{%- endif %}

summarised as (
    select
        account_key,
        min(snapshot_month) as first_month,
        max(snapshot_month) as last_month,
        count(*) as months_delivered,
        {{ arg_max("client_key", "snapshot_month") }} as client_key,
        {{ arg_max("product_code", "snapshot_month") }} as product_code,
        {{ arg_max("credit_limit", "snapshot_month") }} as credit_limit,
        {{ arg_max("outstanding_balance", "snapshot_month") }} as outstanding_balance,
        {{ arg_max("term_months", "snapshot_month") }} filter (where term_months is not null) as term_months,
        {{ arg_max("security_type", "snapshot_month") }} filter (where security_type is not null) as security_type
    from rows_in
    group by account_key
)

{%- if is_incremental() %}

select
    s.account_key,
    coalesce(t.first_month, s.first_month)                             as first_month,
    s.last_month,
    s.months_delivered + coalesce(t.months_delivered, 0)               as months_delivered,
    s.client_key,
    s.product_code,
    s.credit_limit,
    s.outstanding_balance,
    coalesce(s.term_months, t.term_months)                             as term_months,
    coalesce(s.security_type, t.security_type)                         as security_type
from summarised as s
left join {{ this }} as t
    on s.account_key = t.account_key
    and t.account_key not in (select account_key from rebuilt)
union all
select r.account_key, null, null, null, null, null, null, null, null, null
from rebuilt as r
where r.account_key not in (select account_key from summarised)
{%- else %}

    select
        account_key, first_month, last_month, months_delivered, client_key, product_code, credit_limit,
        outstanding_balance, term_months, security_type
    from summarised
{%- endif %}
