"""dbt's parse, once per project change and once per data dir: the manifest the definitions are built from, and
the parse cache each dbt invocation of a run starts from (dbt reuses a parse only for the same profile values)."""

import fcntl
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from dagster_project.lib.settings import DBT_PROJECT_DIR, Settings

DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt") if (Path(sys.executable).parent / "dbt").exists() else "dbt"
DBT_TARGETS_KEPT = 20


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


def _parse_env_and_cache() -> tuple[dict[str, str], Path | None]:
    """The environment ``dbt parse`` runs in, and the data dir's dbt folder whose parse cache it can seed.

    A parse with the data dir's profile values is the parse the first dbt step of a run would otherwise do again
    (dbt reuses a parse only for the same profile values: ``reuse_parse``), so a fresh clone's first run parses
    once, not twice. Without a usable data dir (tests importing the definitions, a bad setting) the parse is a
    plain one into a scratch build path, as before.
    """
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    try:
        from dagster_project.lib.settings import load_settings

        settings = load_settings()
    except Exception:  # noqa: BLE001 - any settings problem is reported by the run itself, not at import
        settings = None
    if settings is not None and settings.engine == "duckdb" and settings.data_dir.is_dir():
        return env | dbt_env(settings), dbt_target_dir(settings)
    env.setdefault("LENDSEG_BUILD_PATH", str(DBT_PROJECT_DIR / "target" / "parse-only.duckdb"))
    return env, None


def ensure_manifest(project_dir: Path = DBT_PROJECT_DIR) -> Path:
    """Run ``dbt parse`` when target/manifest.json is missing or stale; return its path."""
    manifest = project_dir / "target" / "manifest.json"
    if manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime(project_dir):
        return manifest
    (project_dir / "target").mkdir(exist_ok=True)
    with open(project_dir / "target" / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime(project_dir)):
            env, cache = _parse_env_and_cache()
            target = project_dir / "target" if cache is None else cache / f"parse-{uuid.uuid4().hex[:6]}"
            proc = subprocess.run(
                [
                    DBT_EXECUTABLE,
                    "parse",
                    "--project-dir",
                    str(project_dir),
                    "--profiles-dir",
                    str(project_dir),
                    "--target-path",
                    str(target),
                    # as the run's dbt steps name it: dbt reuses a parse only for the same target name too
                    "--target",
                    "duckdb",
                ],
                capture_output=True,
                text=True,
                env=env,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"dbt parse failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
            if cache is not None:  # the manifest for the definitions, the parse for the data dir's first dbt step
                shutil.copy(target / "manifest.json", manifest.with_suffix(".json.tmp"))
                os.replace(manifest.with_suffix(".json.tmp"), manifest)
                keep_parse(target, cache)
                shutil.rmtree(target, ignore_errors=True)
    return manifest
