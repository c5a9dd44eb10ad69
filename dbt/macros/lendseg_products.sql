{#- The eight catalogue products (seed product_catalogue), in catalogue order, for per-product pivots. -#}
{% macro lendseg_products() -%}
    {{ return(['term_loan', 'revolving_credit', 'project_finance', 'trade_finance', 'ip_pledge_loan',
               'equipment_leasing', 'supply_chain_finance', 'startup_credit_loan']) }}
{%- endmacro %}
