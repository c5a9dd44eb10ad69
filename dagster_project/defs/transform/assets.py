"""dbt models (dbt-duckdb) as Dagster assets; dbt tests appear as asset checks.

The manifest is built when missing or older than the dbt sources (parse.py), so CLI runs, tests and CI work
without ``dagster dev`` (whose ``prepare_if_dev`` only runs under ``dagster dev``).
"""

import importlib.metadata
import json
import os
import uuid
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets
from packaging import version

from dagster_project.defs.transform.lake import (
    built_relations,
    export_sources,
    mirror_built,
    prepare_spark_dir,
    step_sources,
)
from dagster_project.defs.transform.parse import (
    DBT_EXECUTABLE,
    dbt_env,
    dbt_target_dir,
    ensure_manifest,
    keep_parse,
    prune_targets,
    reuse_parse,
)
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.settings import DBT_PROJECT_DIR, Settings
from dagster_project.lib.warehouse import connect, dbt_spill_message

__all__ = ["DBT_EXECUTABLE", "DBT_KEYS", "dbt_resource", "dbt_steps"]

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class LendsegTranslator(DagsterDbtTranslator):
    """Groups dbt nodes by layer (staging, intermediate, marts, reference) for the asset graph."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


translator = LendsegTranslator(settings=DagsterDbtTranslatorSettings(enable_source_metadata=False))


# A run invokes dbt twice: everything the model reads (seeds, staging, intermediate, dimensions, features), then
# the segment marts built on the model's scores. One @dbt_assets over the whole project used to be split by
# Dagster into four steps (seeds / CRM staging / bureau+usage / segments), each paying dbt's start-up.
SEGMENT_MARTS = "path:models/marts/segments"
MANIFEST = json.loads(ensure_manifest().read_text())  # read once for both steps


def step_node_ids(segments: bool) -> list[str]:
    """The dbt nodes of one dbt step: the segment marts (``segments``) or everything else."""
    return [
        uid
        for uid, n in MANIFEST["nodes"].items()
        if n.get("original_file_path", "").startswith("models/marts/segments/") == segments
    ]


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse, segments: bool):
    settings = warehouse.settings
    os.environ.update(dbt_env(settings))
    if settings.engine == "spark":  # the sources this step reads, into the Parquet raw layer (lake.py)
        prepare_spark_dir(settings.spark_dir)
        with connect(settings) as con:
            written = export_sources(con, settings.lake_dir, step_sources(MANIFEST, step_node_ids(segments)))
        context.log.info(f"raw layer for Spark ({settings.lake_dir}): partitions written {written}")
    # A test with parents in both steps (e.g. a segment mart's relationship to dim_client) runs once all its
    # parents are built, so tests are selected "buildable" instead of dbt's default "eager".
    os.environ.setdefault("DBT_INDIRECT_SELECTION", "buildable")
    # full_rebuild (jobs.py) tags its runs so incremental models are rebuilt from the raw layer.
    args = ["build", "--full-refresh"] if context.run.tags.get("lendseg/full_refresh") == "true" else ["build"]
    # dbt's unit tests prove the models' logic on fixed rows, not the data: they run in CI (tests/), not in every
    # production run (issue "Cost follows what is new", item 2).
    args += ["--target", settings.engine, "--exclude-resource-type", "unit_test"]
    targets = dbt_target_dir(settings)
    target = targets / f"{context.run_id[:8]}-{uuid.uuid4().hex[:6]}"
    reuse_parse(targets, target)
    invocation = dbt.cli(args, context=context, target_path=target, raise_on_error=False)
    yield from invocation.stream()
    keep_parse(target, targets)
    prune_targets(targets)
    if settings.engine == "spark" and (target / "run_results.json").exists():
        # What dbt built on Spark, into the build database for the next stages - also when a test failed, as
        # dbt-duckdb keeps the models it built, so the failure report below reads the rows that failed.
        built = built_relations(json.loads((target / "run_results.json").read_text()), dict(invocation.manifest))
        with connect(settings) as con:
            n = mirror_built(con, settings.spark_dir / "warehouse", built)
        context.log.info(f"copied {n} tables dbt built on Spark into the build database")
    if not invocation.is_successful():
        raise dg.Failure(description=_failure_report(settings, context.run_id, invocation), allow_retries=False)


@dbt_assets(
    manifest=MANIFEST,
    project=dbt_project,
    dagster_dbt_translator=translator,
    name="dbt_client_dimensions",
    exclude=SEGMENT_MARTS,
)
def dbt_client_dimensions(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse):
    """``dbt build`` of seeds, staging, intermediate models, client dimensions and features, with their tests."""
    yield from _build(context, dbt, warehouse, segments=False)


@dbt_assets(
    manifest=MANIFEST,
    project=dbt_project,
    dagster_dbt_translator=translator,
    name="dbt_segment_marts",
    select=SEGMENT_MARTS,
)
def dbt_segment_marts(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse):
    """``dbt build`` of the segment marts (assignments, profiles, migration, review queue) on the model's output."""
    yield from _build(context, dbt, warehouse, segments=True)


dbt_steps = [dbt_client_dimensions, dbt_segment_marts]
DBT_KEYS = [k for d in dbt_steps for k in d.keys]


def _failure_report(settings: Settings, run_id: str, invocation) -> str:
    """The failing tests/models with the delivered rows behind them, and the command that quarantines them."""
    from dagster_project.defs.ingest.remedy import dbt_failure_report

    try:
        run_results = invocation.get_artifact("run_results.json")
    except Exception:  # noqa: BLE001 - dbt failed before writing results (e.g. a compile error)
        return "dbt build failed before writing run_results.json; see the run's logs"
    if spill := dbt_spill_message(settings, run_results):  # no delivered row to trace: the disk cap was hit
        return spill
    with connect(settings) as con:
        return dbt_failure_report(con, settings.remedies_dir, run_id, run_results, dict(invocation.manifest))


class LendsegDbtCli(DbtCliResource):
    """dagster-dbt's CLI resource without two start-up costs this project does not use (measured 7.6 s per step).

    Before each dbt command dagster-dbt runs ``dbt --version`` in a subprocess (4.8 s here, again in every step)
    and loads a dbt adapter with the project's macros in-process (2.8 s); the adapter only serves the optional
    row-count and column metadata fetches (``fetch_row_counts`` / ``fetch_column_metadata``), which this
    project does not call. The version is read from the installed dbt-core package instead (the executable is
    that package's ``dbt``, ``DBT_EXECUTABLE``); tests/unit/transform/test_dbt_resource.py holds both to the real
    thing.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001, ARG002 - dagster-dbt's private hook
        return None


dbt_resource = LendsegDbtCli(project_dir=dbt_project, profiles_dir=str(DBT_PROJECT_DIR), dbt_executable=DBT_EXECUTABLE)
