-- depends_on: {{ ref('fct_product_usage_monthly') }}
-- The month fingerprints marts.fct_product_usage_monthly was last built from: one row per snapshot_month, written
-- after that table (its depends_on above). The incremental fact table reads them to find the months to build again;
-- a run whose fact table failed leaves them as they were, so its months are taken again by the next run.
select snapshot_month, month_fingerprint
from {{ ref('int_usage_months_fingerprinted') }}
