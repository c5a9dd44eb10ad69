"""The lendseg code location: every asset, check, job and resource, assembled in one place."""


import dagster as dg

from .ingest import ingest_assets
from .publishing import published_warehouse
from .resources import Warehouse
from .transform import dbt_models, dbt_resource

daily_refresh = dg.define_asset_job(
    "daily_refresh",
    selection=dg.AssetSelection.all(),
    description="Ingest new deliveries -> dbt build (models + tests) -> publish the checked warehouse.",
)

defs = dg.Definitions(
    assets=[*ingest_assets, dbt_models, published_warehouse],
    jobs=[daily_refresh],
    resources={"warehouse": Warehouse.from_env(), "dbt": dbt_resource},
    # One process per run: steps run one after another and the run-long writer lock is taken once.
    executor=dg.in_process_executor,
)
