"""``landing_sensor``: request a run when new delivery files appear in the landing zone.

The cursor is the set of files already seen (``<source>/<name>`` -> ``mtime_ns``). Each tick:

1. lists ``$LENDSEG_LANDING_DIR/<source>/*.csv|*.parquet`` (hidden files ignored; a file must have been
   left alone for ``LENDSEG_LANDING_SETTLE_S`` seconds, default 30, so a copy in progress is not taken);
2. if nothing is new: SkipReason;
3. if a writing run (``daily_refresh``, ``monthly_retrain``, ``full_rebuild``, ``intraday_warnings``) is queued
   or in progress:
   SkipReason *without* advancing the cursor - the files are picked up on the first tick after it ends
   (no pile-up of queued runs);
4. otherwise one RunRequest for the whole batch, ``run_key`` = hash of the batch (Dagster never launches
   a run key twice), and the cursor advances past the batch. The request is ``intraday_warnings`` (only the
   batch's sources and the models between them and the warnings; ``jobs.choose_job``) for a mid-month bureau
   or usage file once something is published, ``daily_refresh`` otherwise.

A file re-delivered under the same name with a new mtime counts as new (ingest then decides, by content,
whether there is anything to load). Files the delivery ledger (``raw._deliveries``) already holds with the
same name, size and mtime - loaded or rejected by any run, e.g. a headless ``lendseg run`` before the
daemon started - are not new: the sensor reads the ledger (read-only, only while no run holds the writer
lock) and requests no run for them. The pure functions below hold all the cursor logic.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from dagster_project.defs.ingest.contract import SOURCES
from dagster_project.defs.ingest.landing import SUFFIXES
from dagster_project.defs.operations.jobs import (
    INTRADAY,
    INTRADAY_SOURCES,
    WRITING_JOB_NAMES,
    choose_job,
    daily_refresh,
    intraday_keys,
    intraday_warnings,
)
from dagster_project.defs.operations.schedules import default_sensor_status
from dagster_project.lib.settings import landing_sensor_interval_s, landing_settle_s, load_settings

SETTLE_S_DEFAULT = 30.0  # default of LENDSEG_LANDING_SETTLE_S
# A run recorded as in progress but older than this while nobody holds the writer lock is an orphan
# (e.g. a `lendseg run` killed with SIGKILL never records its end) and no longer blocks the sensor.
ORPHAN_GRACE_S = 600.0

IN_PROGRESS_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


# ---------------------------------------------------------------- pure cursor logic (unit tested)


@dataclass(frozen=True, order=True)
class LandingFile:
    mtime_ns: int
    relpath: str  # "<source>/<file name>"
    size: int = 0


def scan_landing(
    landing_dir: Path,
    sources: list[str] | tuple[str, ...],
    now_ns: int | None = None,
    settle_s: float = SETTLE_S_DEFAULT,
) -> list[LandingFile]:
    """Delivery files under ``landing_dir/<source>/`` that have settled, sorted by (mtime_ns, relpath)."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    out: list[LandingFile] = []
    for source in sources:
        folder = landing_dir / source
        if not folder.is_dir():
            continue
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in SUFFIXES:
                    continue
                try:
                    if not entry.is_file():
                        continue
                    st = entry.stat()
                except FileNotFoundError:  # vanished between listing and stat
                    continue
                if now_ns - st.st_mtime_ns < settle_s * 1e9:
                    continue  # still being written, or just written: next tick
                out.append(LandingFile(st.st_mtime_ns, f"{source}/{entry.name}", st.st_size))
    return sorted(out)


def parse_cursor(cursor: str | None) -> dict[str, int]:
    """``{relpath: mtime_ns}`` of files already requested; empty for a new or unreadable cursor."""
    if not cursor:
        return {}
    try:
        seen = json.loads(cursor).get("seen", {})
        return {str(k): int(v) for k, v in seen.items()}
    except (ValueError, AttributeError, TypeError):
        return {}


def new_files(files: list[LandingFile], seen: dict[str, int]) -> list[LandingFile]:
    """Files not seen before, or seen with a different mtime (a same-name re-delivery)."""
    return [f for f in files if seen.get(f.relpath) != f.mtime_ns]


def without_ledgered(files: list[LandingFile], ledger: set[tuple[str, int, int]]) -> list[LandingFile]:
    """Files the delivery ledger does not hold; ``ledger`` = {(relpath, size, mtime_ns)} of recorded deliveries."""
    return [f for f in files if (f.relpath, f.size, f.mtime_ns) not in ledger]


@dataclass(frozen=True)
class BuildState:
    ledger: set[tuple[str, int, int]]  # (relpath, size, mtime_ns) of every delivery in raw._deliveries
    newest_usage_month: str | None  # YYYY-MM of the newest snapshot in raw.product_usage; None before any


def read_build_state(build_path: Path, lock_path: Path) -> BuildState | None:
    """The delivery ledger and the newest usage month of the build; None while a run holds the writer lock.

    The writer lock is taken (non-blocking) for the read, so no run can start writing meanwhile.
    """
    import duckdb

    if not build_path.exists():
        return BuildState(set(), None)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        try:
            con = duckdb.connect(str(build_path), read_only=True)
        except duckdb.Error:
            return None
        try:
            tables = {
                t
                for (t,) in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw' "
                    "AND table_name IN ('_deliveries', 'product_usage')"
                ).fetchall()
            }
            rows = (
                con.execute(
                    "SELECT source, file_name, file_size, file_mtime_ns FROM raw._deliveries "
                    "WHERE file_size IS NOT NULL AND file_mtime_ns IS NOT NULL"
                ).fetchall()
                if "_deliveries" in tables
                else []
            )
            month = (
                con.execute("SELECT strftime(max(snapshot_month), '%Y-%m') FROM raw.product_usage").fetchone()[0]
                if "product_usage" in tables
                else None
            )
        finally:
            con.close()
        return BuildState({(f"{source}/{name}", int(size), int(mtime)) for source, name, size, mtime in rows}, month)
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def read_ledger(build_path: Path, lock_path: Path) -> set[tuple[str, int, int]] | None:
    """{(relpath, size, mtime_ns)} of every delivery in raw._deliveries; None while a run holds the writer lock."""
    state = read_build_state(build_path, lock_path)
    return None if state is None else state.ledger


def newest_usage_month(paths: list[Path]) -> str | None:
    """YYYY-MM of the newest ``snapshot_month`` in these usage files; None if any cannot be read (the run then
    ingests them and names what is wrong)."""
    import duckdb

    months = []
    with duckdb.connect() as con:
        for path in paths:
            reader = (
                "read_parquet(?)"
                if path.suffix.lower() == ".parquet"
                else "read_csv(?, header = true, all_varchar = true)"
            )
            try:
                month = con.execute(
                    f"SELECT strftime(max(TRY_CAST(snapshot_month AS DATE)), '%Y-%m') FROM {reader}", [str(path)]
                ).fetchone()[0]
            except duckdb.Error:
                return None
            if month is None:
                return None
            months.append(month)
    return max(months) if months else None


def batch_job(batch: list[LandingFile], landing_dir: Path, published: bool, state: BuildState) -> str:
    """The job a batch runs (jobs.choose_job): the intraday warnings for a mid-month bureau or usage file."""
    sources = {f.relpath.split("/", 1)[0] for f in batch}
    usage = [landing_dir / f.relpath for f in batch if f.relpath.startswith("product_usage/")]
    return choose_job(sources, published, state.newest_usage_month, newest_usage_month(usage) if usage else None)


def pending_sources(landing_dir: Path, build_path: Path, lock_path: Path) -> list[str]:
    """The intraday sources with files the delivery ledger does not hold yet.

    ``lendseg run --job intraday_warnings`` runs these, as the landing sensor would.
    """
    files = scan_landing(landing_dir, INTRADAY_SOURCES, settle_s=0)
    ledger = read_ledger(build_path, lock_path)
    todo = files if ledger is None else without_ledgered(files, ledger)
    return sorted({f.relpath.split("/", 1)[0] for f in todo})


def advance_cursor(seen: dict[str, int], batch: list[LandingFile], present: list[LandingFile] | None = None) -> str:
    """The cursor after requesting ``batch``; files no longer in the landing zone are forgotten."""
    merged = dict(seen)
    if present is not None:
        keep = {f.relpath for f in present}
        merged = {k: v for k, v in merged.items() if k in keep}
    merged |= {f.relpath: f.mtime_ns for f in batch}
    return json.dumps({"seen": dict(sorted(merged.items()))}, separators=(",", ":"))


def batch_run_key(batch: list[LandingFile]) -> str:
    """Deterministic key of a batch: the same files (name + mtime) always give the same key."""
    digest = hashlib.sha256("\n".join(f"{f.relpath}@{f.mtime_ns}" for f in sorted(batch)).encode()).hexdigest()
    return f"landing-{digest[:24]}"


def batch_tags(batch: list[LandingFile]) -> dict[str, str]:
    per_source: dict[str, int] = {}
    for f in batch:
        per_source[f.relpath.split("/", 1)[0]] = per_source.get(f.relpath.split("/", 1)[0], 0) + 1
    return {
        "lendseg/trigger": "landing_sensor",
        "lendseg/new_files": str(len(batch)),
        **{f"lendseg/new_files_{s}": str(n) for s, n in sorted(per_source.items())},
    }


# ---------------------------------------------------------------- instance queries


def writer_lock_is_held(lock_path: Path) -> bool:
    """True while some process holds the build-database writer lock (probe: non-blocking, released at once)."""
    if not lock_path.exists():
        return False
    fd = os.open(lock_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def active_writing_runs(
    instance: dg.DagsterInstance, lock_path: Path, now: float | None = None, grace_s: float = ORPHAN_GRACE_S
) -> tuple[list[str], list[str]]:
    """(active, orphaned) run ids of writing jobs that are queued or in progress.

    A STARTED run older than ``grace_s`` while no process holds the writer lock cannot be writing: its
    process died without recording the end (SIGKILL, OOM, power loss). It is reported as orphaned and does
    not block; mark it failed in the UI (Runs -> Terminate) to tidy the run list.
    """
    now = time.time() if now is None else now
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=None, statuses=IN_PROGRESS_STATUSES), limit=50)
    active, orphaned = [], []
    lock_held: bool | None = None
    for rec in records:
        run = rec.dagster_run
        if run.job_name not in WRITING_JOB_NAMES:
            continue
        started = rec.start_time or rec.create_timestamp.timestamp()
        if run.status == dg.DagsterRunStatus.STARTED and now - started > grace_s:
            if lock_held is None:
                lock_held = writer_lock_is_held(lock_path)
            if not lock_held:
                orphaned.append(run.run_id)
                continue
        active.append(run.run_id)
    return active, orphaned


# ---------------------------------------------------------------- the sensor


def _settle_s() -> float:
    return landing_settle_s()


@dg.sensor(
    name="landing_sensor",
    jobs=[daily_refresh, intraday_warnings],
    minimum_interval_seconds=landing_sensor_interval_s(),
    default_status=default_sensor_status(),
    description="Requests one run per batch of new delivery files under $LENDSEG_LANDING_DIR/<source>/: "
    "intraday_warnings for a mid-month bureau or usage file, daily_refresh otherwise; waits while a "
    "writing run is queued or in progress.",
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    s = load_settings()
    files = scan_landing(s.landing_dir, tuple(SOURCES), settle_s=_settle_s())
    seen = parse_cursor(context.cursor)
    batch = new_files(files, seen)
    if not batch:
        return dg.SkipReason(f"no new delivery files in {s.landing_dir} ({len(files)} known)")
    active, orphaned = active_writing_runs(context.instance, s.lock_path)
    if orphaned:
        context.log.warning(
            f"ignoring orphaned runs (in progress on record, but nobody holds the writer lock): {', '.join(orphaned)}"
        )
    if active:
        return dg.SkipReason(
            f"{len(batch)} new delivery file(s) wait: writing run(s) {', '.join(active)} "
            "queued or in progress; they are picked up after it ends"
        )
    state = read_build_state(s.build_path, s.lock_path)
    ledger = None if state is None else state.ledger
    if ledger is None:
        return dg.SkipReason(f"{len(batch)} new delivery file(s) wait: a run holds the build-database writer lock")
    todo = without_ledgered(batch, ledger)
    if not todo:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{len(batch)} file(s) already in the delivery ledger (loaded by an earlier run): no run requested"
            ),
            cursor=advance_cursor(seen, batch, present=files),
        )
    seen_now, batch = batch, todo  # the cursor moves past the ledgered files too
    job = batch_job(batch, s.landing_dir, s.warehouse_path.exists(), state)
    selection = None
    if job == INTRADAY and context.repository_def is not None:  # only the batch's sources and what follows them
        selection = sorted(
            intraday_keys(context.repository_def.asset_graph, sorted({f.relpath.split("/", 1)[0] for f in batch}))
        )
    context.log.info(
        f"requesting {job} for {len(batch)} new file(s): "
        + ", ".join(f.relpath for f in batch[:20])
        + (" ..." if len(batch) > 20 else "")
    )
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=batch_run_key(batch), tags=batch_tags(batch), job_name=job, asset_selection=selection)
        ],
        cursor=advance_cursor(seen, seen_now, present=files),
    )


sensors = [landing_sensor]
