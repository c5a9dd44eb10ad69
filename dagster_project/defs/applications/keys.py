"""Asset keys the applications stage reads and writes, its group, and the segmentation outputs it depends on."""

import dagster as dg

GROUP = "applications"

K = dg.AssetKey
DIM_CLIENT, CATALOGUE = K(["marts", "dim_client"]), K(["reference", "product_catalogue"])
USAGE_MONTHLY, USAGE_PROFILE = K(["marts", "fct_product_usage_monthly"]), K(["marts", "fct_client_usage_profile"])
STG_USAGE, STG_BUREAU = K(["staging", "stg_usage__product_snapshots"]), K(["staging", "stg_bureau__credit_reports"])
AS_OF, MASTER_SCALE = K(["intermediate", "int_as_of_date_derived"]), K(["reference", "rating_master_scale"])
AT_CUTOFF = K(["intermediate", "int_clients_at_evaluation_cutoff"])  # firm stage and grade at the evaluation cutoff
# The one segment of record per client (dbt, step dbt_segment_marts; final_segment_id) and the segment dimension:
# the only segmentation outputs this stage reads (docs/applications.md, "Segments used").
CLIENT_SEGMENTS, DIM_SEGMENT = K(["marts", "client_segments"]), K(["marts", "dim_segment"])
SEGMENT_DEPS = [CLIENT_SEGMENTS, DIM_SEGMENT]
SEGMENT_OF_RECORD = (
    "SELECT client_key, final_segment_id AS segment_id, final_segment_name AS segment_name, segment_source "
    "FROM marts.client_segments"
)  # one row per dim_client row; segment_id BIGINT (rule segments < 0)
SEGMENT_DOCS = {  # the segment columns of every application table
    "segment_id": "Segment of record of the client (marts.client_segments.final_segment_id; BIGINT, a "
    "marts.dim_segment "
    "row; negative = rule segment size_class x industry_risk_class).",
    "segment_name": "Segment name (marts.dim_segment.segment_name).",
    "segment_source": "model (a segment of the segmentation model) or rule_based (size_class x industry_risk_class).",
}
WORKOUT = K(["marts", "workout_clients"])  # clients in default (dbt): no early warning for them
EW_CALIBRATION = K(["ml", "early_warning_calibration"])  # ew_calibration_assets.py

# What this stage writes: schema app of the build database (store.py), published as marts.
RECS, REC_EVAL = K(["app", "client_product_recommendations"]), K(["app", "recommendation_evaluation"])
WARNINGS, EW_EVAL = K(["app", "risk_early_warnings"]), K(["app", "early_warning_evaluation"])
SEG_POLICY, CLIENT_POLICY = K(["app", "segment_policy"]), K(["app", "client_policy"])
SEG_MARKETING = K(["app", "segment_marketing"])
APPLICATION_KEYS = (RECS, REC_EVAL, WARNINGS, EW_EVAL, SEG_POLICY, CLIENT_POLICY, SEG_MARKETING)
