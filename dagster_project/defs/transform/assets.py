"""dbt models (dbt-duckdb) as Dagster assets; dbt tests appear as asset checks.

The manifest is built here when missing or older than the dbt sources, so CLI runs, tests and CI work
without ``dagster dev`` (whose ``prepare_if_dev`` only runs under ``dagster dev``).
"""

import fcntl
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
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
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.settings import DBT_PROJECT_DIR, Settings
from dagster_project.lib.warehouse import connect, dbt_spill_message

DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt") if (Path(sys.executable).parent / "dbt").exists() else "dbt"
DBT_TARGETS_KEPT = 20
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_env(settings: Settings) -> dict[str, str]:
    """Environment the dbt profile reads (dbt/profiles.yml)."""
    return {
        "LENDSEG_BUILD_PATH": str(settings.build_path),
        "LENDSEG_LAKE_DIR": str(settings.lake_dir),
        "LENDSEG_SPARK_DIR": str(settings.spark_dir),
        "LENDSEG_SPARK_MEMORY": settings.spark_memory,
        "LENDSEG_DUCKDB_MEMORY_LIMIT": settings.memory_limit,
        "LENDSEG_DUCKDB_THREADS": str(settings.threads),
        "LENDSEG_DUCKDB_TEMP_DIR": str(settings.temp_dir),
        "LENDSEG_DUCKDB_MAX_TEMP_SIZE": settings.max_temp_size,
    }


def _newest_source_mtime(project_dir: Path) -> float:
    paths = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for sub in ("models", "macros", "seeds", "tests", "snapshots"):
        if (project_dir / sub).exists():
            paths += [p for p in (project_dir / sub).rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in paths if p.exists())


def ensure_manifest(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """Run ``dbt parse`` when target/manifest.json is missing or stale; return its path."""
    manifest = project_dir / "target" / "manifest.json"
    if manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime(project_dir):
        return manifest
    (project_dir / "target").mkdir(exist_ok=True)
    with open(project_dir / "target" / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime(project_dir)):
            env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
            env.setdefault("LENDSEG_BUILD_PATH", str(project_dir / "target" / "parse-only.duckdb"))
            proc = subprocess.run(
                [DBT_EXECUTABLE, "parse", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)],
                capture_output=True,
                text=True,
                env=env,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"dbt parse failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return manifest


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


def dbt_target_dir(settings: Settings) -> Path:
    """Per-invocation dbt artefacts (run_results.json, logs) live under the data dir, not in the repository."""
    return settings.data_dir / "dbt_target"


PARSE_CACHE = "partial_parse.msgpack"


def reuse_parse(cache_dir: Path, target: Path) -> None:
    """Seed a new invocation folder with this data dir's last parse, so dbt parses only what changed.

    dbt reuses a parse only when the profile's connection values match; those include the build path, so
    the project's own target/partial_parse.msgpack (parsed without a data dir) is never reusable here and
    every invocation used to parse the whole project again (~6 s). dbt itself checks file hashes and its own
    version, so a stale cache costs one full parse, never a wrong manifest.
    """
    cached = cache_dir / PARSE_CACHE
    if cached.exists():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(cached, target / PARSE_CACHE)


def keep_parse(target: Path, cache_dir: Path) -> None:
    """Keep the invocation's parse as the data dir's cache (atomic replace; none if dbt wrote none)."""
    fresh = target / PARSE_CACHE
    if fresh.exists():
        tmp = cache_dir / f".{PARSE_CACHE}.{uuid.uuid4().hex[:6]}"
        shutil.copy(fresh, tmp)
        os.replace(tmp, cache_dir / PARSE_CACHE)


def prune_targets(folder: Path, keep: int = DBT_TARGETS_KEPT) -> None:
    """Keep the newest ``keep`` invocation folders so weeks of unattended runs do not fill the disk."""
    dirs = sorted((d for d in folder.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    for old in dirs[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


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
