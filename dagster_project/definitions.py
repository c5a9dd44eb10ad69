"""The lendseg code location: every asset, check, job, schedule, sensor and resource, assembled in one place."""


import dagster as dg

from .defs.operations.alerts import sensors as alert_sensors
from .defs.operations.alerts import with_freshness
from .defs.applications.assets import application_assets
from .ew_calibration_assets import calibration_assets
from .defs.ingest.assets import ingest_assets
from .defs.operations.jobs import daily_refresh, writing_jobs
from .defs.segmentation.assets import ml_assets
from .defs.publish.assets import published_warehouse
from .defs.transform.checks import quality_checks
from .lib.resources import Warehouse
from .defs.operations.schedules import schedules
from .defs.publish.checks import stage_checks
from .defs.operations.sensors import sensors as landing_sensors
from .defs.transform.assets import dbt_models, dbt_resource

__all__ = ["daily_refresh", "defs"]

# Every asset has an owner (README "Owners"): the team that answers for the warehouse's content.
OWNER = "team:credit-risk-analytics"


def with_owner(assets: list[dg.AssetsDefinition], owner: str = OWNER) -> list[dg.AssetsDefinition]:
    """The same assets, each spec owned by ``owner`` (kept owners stay, ``owner`` is added)."""
    return [a.map_asset_specs(lambda spec: spec.replace_attributes(owners=sorted({*spec.owners, owner})))
            for a in assets]


defs = dg.Definitions(
    # ml_assets (ml.py): segmentation model training, promotion, scoring; calibration_assets (ew_calibration_assets.py): early-warning calibration; application_assets (applications.py): recommendations, early warnings, credit policy, marketing
    assets=with_owner([*ingest_assets, dbt_models, *ml_assets, *calibration_assets, *application_assets,
                       with_freshness(published_warehouse)]),  # stale after LENDSEG_STALE_AFTER_HOURS
    asset_checks=[*quality_checks, *stage_checks],  # GX suites (quality.py); applications and published file (stage_checks.py)
    jobs=writing_jobs,  # daily_refresh, monthly_retrain, full_rebuild (jobs.py: stages as asset groups)
    schedules=schedules,
    sensors=[*landing_sensors, *alert_sensors],
    resources={"warehouse": Warehouse.from_env(), "dbt": dbt_resource},
    # One process per run: steps run one after another and the run-long writer lock is taken once.
    executor=dg.in_process_executor,
)
