"""Asset keys the applications stage reads and writes, its group, and the segmentation outputs it depends on."""

import dagster as dg

GROUP = "applications"

K = dg.AssetKey
DIM_CLIENT, CATALOGUE = K(["marts", "dim_client"]), K(["reference", "product_catalogue"])
USAGE_MONTHLY, USAGE_PROFILE = K(["marts", "fct_product_usage_monthly"]), K(["marts", "fct_client_usage_profile"])
STG_USAGE, STG_BUREAU = K(["staging", "stg_usage__product_snapshots"]), K(["staging", "stg_bureau__credit_reports"])
AS_OF, MASTER_SCALE = K(["intermediate", "int_as_of_date_derived"]), K(["reference", "rating_master_scale"])
AT_CUTOFF = K(["intermediate", "int_clients_at_evaluation_cutoff"])  # firm stage and grade at the evaluation cutoff
# The segmentation stage's outputs this stage reads: the dbt mart and the model's own assignments.
SEGMENT_DEPS = [K(["marts", "client_segments"]), K(["ml", "segment_assignments"])]
EW_CALIBRATION = K(["ml", "early_warning_calibration"])  # ew_calibration_assets.py

# What this stage writes: schema app of the build database (store.py), published as marts.
RECS, REC_EVAL = K(["app", "client_product_recommendations"]), K(["app", "recommendation_evaluation"])
WARNINGS, EW_EVAL = K(["app", "risk_early_warnings"]), K(["app", "early_warning_evaluation"])
SEG_POLICY, CLIENT_POLICY = K(["app", "segment_policy"]), K(["app", "client_policy"])
SEG_MARKETING = K(["app", "segment_marketing"])
APPLICATION_KEYS = (RECS, REC_EVAL, WARNINGS, EW_EVAL, SEG_POLICY, CLIENT_POLICY, SEG_MARKETING)
