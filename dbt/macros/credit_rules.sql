{#-
  The client rules that more than one model applies, written once:
  - firm_stage: from a firm age in completed months (whole_months_between): startup < 36 months
    (< 3 years), growth 36 to < 120 months (3 to < 10 years), established 120 months or more, unknown when
    the age is null (founded_date missing or after the as-of date).
  - default_trigger: the DEFAULT OVERRIDE of the internal rating (grade 'D' whatever the score): the latest
    usage month 90+ days past due on any facility, else a latest bureau report with max_days_past_due_12m
    >= 90, else a default registered in the last 12 months; null when none applies.
  - default_baseline_order: which report a default is measured against - the latest report dated at least
    12 months before the as-of date (is_12m_before), else the client's earliest report; an ORDER BY for
    row_number() over the client's reports (alias r, with report_seq = 1 latest and report_seq_asc = 1 earliest).
  Used by int_clients_staged / int_clients_rated (as of the as-of date) and int_clients_at_evaluation_cutoff
  (as of the evaluation cutoff), which the time-split recommendation evaluation reads.
-#}
{% macro firm_stage(firm_age_months) -%}
    case
        when {{ firm_age_months }} is null then 'unknown'
        when {{ firm_age_months }} < 36 then 'startup'
        when {{ firm_age_months }} < 120 then 'growth'
        else 'established'
    end
{%- endmacro %}

{% macro default_trigger(usage_days_past_due, bureau_max_days_past_due_12m, bureau_default_in_last_12m) -%}
    case
        when {{ usage_days_past_due }} >= 90 then 'usage_90_plus_dpd'
        when {{ bureau_max_days_past_due_12m }} >= 90 then 'bureau_90_plus_dpd_12m'
        when {{ bureau_default_in_last_12m }} then 'bureau_default_last_12m'
    end
{%- endmacro %}

{% macro default_baseline_order(is_12m_before) -%}
    case when {{ is_12m_before }} then 0 else 1 end,
    case when {{ is_12m_before }} then r.report_seq else r.report_seq_asc end
{%- endmacro %}
