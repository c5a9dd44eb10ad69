"""The lendseg code location: every asset, check, job, schedule, sensor and resource, assembled in one place."""

import dagster as dg

from .defs.applications.checks import application_checks
from .defs.applications.early_warning_assets import early_warning_evaluation, risk_early_warnings
from .defs.applications.ew_calibration_assets import calibration_assets
from .defs.applications.marketing_assets import segment_marketing
from .defs.applications.policy_assets import credit_policy
from .defs.applications.recommend_assets import client_product_recommendations, recommendation_evaluation
from .defs.ingest.assets import ingest_assets
from .defs.operations.alerts import sensors as alert_sensors
from .defs.operations.alerts import with_freshness
from .defs.operations.jobs import daily_refresh, writing_jobs
from .defs.operations.schedules import schedules
from .defs.operations.sensors import sensors as landing_sensors
from .defs.publish.assets import published_warehouse
from .defs.publish.checks import published_checks
from .defs.segmentation.assets import ml_assets
from .defs.transform.assets import dbt_resource, dbt_steps
from .defs.transform.checks import quality_checks
from .lib.resources import Warehouse

__all__ = ["daily_refresh", "defs"]

# Every asset has an owner (README "Owners"): the team that answers for the warehouse's content.
OWNER = "team:credit-risk-analytics"


def with_owner(assets: list[dg.AssetsDefinition], owner: str = OWNER) -> list[dg.AssetsDefinition]:
    """The same assets, each spec owned by ``owner`` (kept owners stay, ``owner`` is added)."""
    return [
        a.map_asset_specs(lambda spec: spec.replace_attributes(owners=sorted({*spec.owners, owner}))) for a in assets
    ]


application_assets = [
    client_product_recommendations,
    recommendation_evaluation,
    risk_early_warnings,
    early_warning_evaluation,
    credit_policy,
    segment_marketing,
]

defs = dg.Definitions(
    # stage by stage, in data-flow order (README "Architecture")
    assets=with_owner(
        [
            *ingest_assets,
            *dbt_steps,
            *ml_assets,
            *calibration_assets,
            *application_assets,
            with_freshness(published_warehouse),
        ]
    ),  # stale after LENDSEG_STALE_AFTER_HOURS
    asset_checks=[*quality_checks, *application_checks, *published_checks],
    jobs=writing_jobs,  # daily_refresh, monthly_retrain, full_rebuild (jobs.py: stages as asset groups)
    schedules=schedules,
    sensors=[*landing_sensors, *alert_sensors],
    resources={"warehouse": Warehouse.from_env(), "dbt": dbt_resource},
    # One process per run: steps run one after another and the run-long writer lock is taken once.
    executor=dg.in_process_executor,
)
