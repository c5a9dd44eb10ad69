-- One row per account: its latest snapshot up to the as-of month - the client's facility book (open facilities
-- and those repaid or closed since), each at its latest limit, with its product and its contract v1.1 terms
-- (term_months, security_type: the latest delivered value, null when never delivered).
-- Read from the accounts' running state (int_accounts_summarised, built incrementally), not from every
-- account-month. The as-of month is the newest usage month (int_as_of_date_derived), so an account whose latest
-- snapshot lies after it exists only when no usage is delivered at all; such an account is left out.
with as_of as (
    select as_of_month from {{ ref('int_as_of_date_derived') }}
)

select
    s.account_key,
    s.client_key,
    s.product_code,
    s.last_month as latest_snapshot_month,
    s.last_month = a.as_of_month as is_current,
    {{ dbt.safe_cast('s.credit_limit', dbt.type_numeric()) }}          as credit_limit,
    {{ dbt.safe_cast('s.outstanding_balance', dbt.type_numeric()) }}   as outstanding_balance,
    s.term_months,
    s.security_type
from {{ ref('int_accounts_summarised') }} as s
cross join as_of as a
where s.last_month <= a.as_of_month
