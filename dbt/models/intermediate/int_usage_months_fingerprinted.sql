-- One row per snapshot_month of the product-usage deliveries: its account snapshots counted and fingerprinted
-- (account, source file, ingestion time). A month whose fingerprint changed - a new month, a corrected file, rows
-- quarantined, restored or released from the held table - is the unit the incremental usage models build again.
select
    snapshot_month,
    count(*) as account_snapshots,
    {{ fingerprint(['account_key', 'source_file', 'ingested_at']) }} as month_fingerprint
from {{ ref('stg_usage__product_snapshots') }}
group by snapshot_month
