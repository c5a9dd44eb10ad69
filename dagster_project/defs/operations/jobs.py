"""The three writing jobs, each defined as an ordered list of asset groups.

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

DESCRIPTIONS = {
    "daily_refresh": "Ingest new deliveries -> dbt build (models + tests) -> score segments with the champion model "
    "(bootstraps one on the first run) -> publish the checked warehouse.",
    "monthly_retrain": "Monthly: retrain the segment model (challenger), blocking checks, promote, rescore -> publish.",
    "full_rebuild": "After a code change: rebuild every derived table from the raw layer and publish. Keeps state: "
    f"the raw layer, delivery ledger and audit store are never dropped. Tagged {FULL_REFRESH_TAG}=true "
    "so that incremental dbt models can be built with --full-refresh.",
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

writing_jobs = [daily_refresh, monthly_retrain, full_rebuild]
WRITING_JOB_NAMES: tuple[str, ...] = tuple(j.name for j in writing_jobs)
