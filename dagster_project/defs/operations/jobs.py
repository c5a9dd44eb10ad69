"""The writing jobs: three defined as ordered lists of asset groups, and ``intraday_warnings``.

Add a new stage by adding its group name to the job(s) in ``JOB_GROUPS`` below, in data-flow order:
nothing else changes. A group that does not exist yet selects nothing. Asset checks (dbt tests included) travel
with their assets.

Every job is tagged ``lendseg/writer=build``: the instance's run queue (see ``instance.py``) lets only one
run with that tag be in progress at a time, and the run-long writer lock (``resources.Warehouse``) is the
backstop for runs that bypass the queue (``lendseg run``).
"""

from __future__ import annotations

import dagster as dg

# dbt layers: seeds (reference) and models by folder; "dbt" catches a model outside the layer folders.
TRANSFORM_GROUPS: tuple[str, ...] = ("reference", "staging", "intermediate", "marts", "dbt")

# Job -> asset groups, in pipeline order: ingest -> dbt -> (training) -> scoring -> applications -> publish.
JOB_GROUPS: dict[str, tuple[str, ...]] = {
    # ingest new deliveries -> dbt -> score with the current model -> applications -> publish
    "daily_refresh": ("ingest", *TRANSFORM_GROUPS, "ml", "applications", "publish"),
    # retrain -> challenger checks -> promotion -> rescore -> publish
    "monthly_retrain": ("ingest", *TRANSFORM_GROUPS, "ml_training", "ml", "applications", "publish"),
    # rebuild every derived table from the raw layer after a code change (raw, ledgers, audit kept)
    "full_rebuild": ("ingest", *TRANSFORM_GROUPS, "ml", "applications", "publish"),
}

WRITER_TAG_KEY = "lendseg/writer"
WRITER_TAG_VALUE = "build"
FULL_REFRESH_TAG = "lendseg/full_refresh"

# intraday_warnings (issue "Cost follows what is new", item 5): a bureau or usage file that lands mid-month updates
# and publishes the early warnings (and the client policy tracks they raise) of the clients it touches, without
# the segments, recommendations and evaluations, which the daily run (and the month close) bring up to date. It
# runs what lies between the delivered raw tables and the tables the warnings read, the warnings, the policy and
# the publish. Another stage's assets by key only (README "Architecture").
K = dg.AssetKey
INTRADAY = "intraday_warnings"
WARNING_INPUTS = (
    K(["marts", "fct_product_usage_monthly"]),
    K(["staging", "stg_bureau__credit_reports"]),
    K(["marts", "dim_client"]),
    K(["intermediate", "int_as_of_date_derived"]),
)
USAGE_MONTHS_RECORDED = K(["intermediate", "int_usage_fact_months_recorded"])  # after the fact table: its months' state
WARNING_OUTPUTS = (K(["app", "risk_early_warnings"]), K(["app", "segment_policy"]), K(["app", "client_policy"]))
INTRADAY_SOURCES = ("credit_bureau", "product_usage")  # the deliveries an intraday run takes


def raw_key(source: str) -> dg.AssetKey:
    return K([f"raw_{source}"])


def intraday_selection(sources: tuple[str, ...] | list[str] = INTRADAY_SOURCES) -> dg.AssetSelection:
    """What an intraday run of ``sources``' new files materialises: their raw tables, the dbt models between
    those and the tables the warnings read, the warnings, the policy and the publish (checks travel along)."""
    raws = dg.AssetSelection.assets(*(raw_key(s) for s in sources))
    between = (
        raws.downstream()
        & dg.AssetSelection.assets(*WARNING_INPUTS).upstream()
        & dg.AssetSelection.groups(*TRANSFORM_GROUPS)
    )
    recorded = dg.AssetSelection.assets(USAGE_MONTHS_RECORDED) & raws.downstream()
    return raws | between | recorded | dg.AssetSelection.assets(*WARNING_OUTPUTS) | dg.AssetSelection.groups("publish")


def intraday_keys(asset_graph, sources: tuple[str, ...] | list[str]) -> set[dg.AssetKey]:
    """The asset keys of an intraday run of ``sources`` (``execute_in_process(asset_selection=...)``, RunRequest)."""
    return set(intraday_selection(tuple(sources)).resolve(asset_graph))


def choose_job(
    sources: set[str], published: bool, newest_build_month: str | None, newest_batch_usage_month: str | None
) -> str:
    """``intraday_warnings`` for a mid-month batch of bureau and usage files; ``daily_refresh`` otherwise.

    A batch runs the whole daily job when nothing is published yet (a first run publishes everything), when it
    holds client-master or review files (segments and dimensions follow them), or when a usage file brings a
    month newer than the build's newest (a month closes: segments, recommendations, evaluations). Months are
    ``YYYY-MM``; an unreadable usage file counts as a new month (ingest then names what is wrong with it).
    """
    if not published or not sources or not sources <= set(INTRADAY_SOURCES):
        return "daily_refresh"
    if "product_usage" in sources and (
        newest_build_month is None or newest_batch_usage_month is None or newest_batch_usage_month > newest_build_month
    ):
        return "daily_refresh"
    return INTRADAY


DESCRIPTIONS = {
    "daily_refresh": "Ingest new deliveries -> dbt build (models + tests) -> score segments with the champion model "
    "(bootstraps one on the first run) -> publish the checked warehouse.",
    "monthly_retrain": "Monthly: retrain the segment model (challenger), blocking checks, promote, rescore -> publish.",
    "full_rebuild": "After a code change: rebuild every derived table from the raw layer and publish. Keeps state: "
    f"the raw layer, delivery ledger and audit store are never dropped. Tagged {FULL_REFRESH_TAG}=true "
    "so that incremental dbt models can be built with --full-refresh.",
    INTRADAY: "Mid-month bureau or usage file (landing sensor): ingest it -> the dbt models between it and the "
    "early warnings -> warnings -> client policy -> publish. Segments, recommendations and evaluations "
    "wait for the daily run.",
}


def selection_for(job_name: str) -> dg.AssetSelection:
    return dg.AssetSelection.groups(*JOB_GROUPS[job_name])


def _job(name: str, **extra_tags: str) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name,
        selection=selection_for(name),
        description=DESCRIPTIONS[name],
        tags={WRITER_TAG_KEY: WRITER_TAG_VALUE, **extra_tags},
    )


daily_refresh = _job("daily_refresh")
monthly_retrain = _job("monthly_retrain")
full_rebuild = _job("full_rebuild", **{FULL_REFRESH_TAG: "true"})
intraday_warnings = dg.define_asset_job(
    INTRADAY,
    selection=intraday_selection(),
    description=DESCRIPTIONS[INTRADAY],
    tags={WRITER_TAG_KEY: WRITER_TAG_VALUE},
)

writing_jobs = [daily_refresh, monthly_retrain, full_rebuild, intraday_warnings]
WRITING_JOB_NAMES: tuple[str, ...] = tuple(j.name for j in writing_jobs)
