"""``lendseg bench``: generate a delivery set, run the whole pipeline through Dagster in a temp location,
and report wall time per step, rows/s, peak memory of the whole process tree and file sizes, next to a
bare-DuckDB floor (``bench_floor.py``) on the same files. Timings live here, never in tests."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

from dagster_project.lib.settings import DEMO_PII_KEY, VARIABLES, load_settings

# Which floor step each pipeline step corresponds to (the rest is orchestration and checks: floor 0).
FLOOR_OF = {"ingest": "ingest", "dbt": "dimensions+profiles_features", "ml": "model_fit_score", "publish": "publish"}


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, from /proc (MB)."""
    total, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        todo += _children(pid)
    return total / 1024


def folder_mb(path: Path | None) -> float:
    """Size of the files under ``path`` in MB (0 when absent; files vanishing while counted are skipped)."""
    if path is None or not path.exists():
        return 0.0
    total = 0
    for f in path.rglob("*"):
        try:
            total += f.stat().st_size if f.is_file() else 0
        except OSError:
            continue
    return total / 1e6


class TreeSampler(threading.Thread):
    """Peak RSS of a process tree and, when ``spill_dir`` is given, the peak size of DuckDB's spill folder."""

    def __init__(self, pid: int, every_s: float = 0.5, spill_dir: Path | None = None):
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak_mb, self._halt = pid, every_s, 0.0, threading.Event()
        self.spill_dir, self.peak_spill_mb = spill_dir, 0.0

    def run(self) -> None:
        while not self._halt.is_set():
            self.peak_mb = max(self.peak_mb, tree_rss_mb(self.pid))
            self.peak_spill_mb = max(self.peak_spill_mb, folder_mb(self.spill_dir))
            self._halt.wait(self.every_s)

    def stop(self) -> float:
        self._halt.set()
        self.join()
        return self.peak_mb


def _step_group(step_key: str) -> str:
    if step_key.startswith("raw_"):
        return "ingest"
    if step_key.startswith("dbt_"):
        return "dbt"
    if step_key == "published_warehouse":
        return "publish"
    if "check" in step_key or "valid" in step_key or "anomal" in step_key:
        return "checks"
    if step_key.startswith(("segment", "ml", "score", "model")):
        return "ml"
    return "applications"


def _dagster_steps(home: Path) -> tuple[dict, dict]:
    """Per-step wall seconds and materialization metadata of the single run recorded in ``home``."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home))
    run = instance.get_runs()[0]
    starts, steps, meta = {}, {}, {}
    for e in instance.all_logs(run.run_id):
        ev = e.dagster_event
        if ev is None or ev.step_key is None:
            continue
        if ev.event_type == dg.DagsterEventType.STEP_START:
            starts[ev.step_key] = e.timestamp
        elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            steps[ev.step_key] = steps.get(ev.step_key, 0.0) + e.timestamp - starts.get(ev.step_key, e.timestamp)
        elif ev.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            m = ev.event_specific_data.materialization
            meta[m.asset_key.to_user_string()] = {k: getattr(v, "value", v) for k, v in m.metadata.items()}
    return steps, meta | {"_run": {"status": run.status.value, "run_id": run.run_id}}


def _dbt_groups(run_id: str, data: Path) -> dict[str, float]:
    """dbt execution seconds by layer (staging, intermediate, marts, seeds, tests) from run_results.json."""
    out: dict[str, float] = defaultdict(float)
    for rr in (data / "dbt_target").glob(f"{run_id[:8]}-*/run_results.json"):
        for r in json.loads(rr.read_text())["results"]:
            uid = r["unique_id"]
            kind = uid.split(".")[0]
            layer = uid.split(".")[2] if kind == "model" else kind
            if kind == "model":
                layer = next((p for p in ("staging", "intermediate", "marts") if f".{p}" in uid or p in uid), "models")
            out[f"dbt {kind if kind != 'model' else layer}"] += r.get("execution_time") or 0.0
    return dict(out)


def path_variables() -> list[str]:
    """Every ``LENDSEG_*`` variable that names a location (LENDSEG_DATA_DIR and those documented under it)."""
    return [
        v
        for v, default, _ in VARIABLES
        if v.startswith("LENDSEG_")
        and (v == "LENDSEG_DATA_DIR" or default.startswith(("$LENDSEG_DATA_DIR", "$LENDSEG_BUILD_PATH")))
    ]


def bench_env(inherited: Mapping[str, str], data: Path, home: Path) -> dict[str, str]:
    """The bench run's environment: every location inside the bench's temp folder, whatever ``inherited`` holds.

    Inherited location variables (landing zone, published warehouse, build database, model store) and the PII key
    are dropped, so a bench started from a shell configured for a real installation can neither read that
    installation's deliveries nor publish onto its warehouse; settings that are not locations (memory limit,
    threads) are kept.
    """
    drop = set(path_variables()) | {"LENDSEG_PII_KEY", "DAGSTER_HOME"}
    env = {k: v for k, v in inherited.items() if k not in drop}
    return env | {
        "LENDSEG_DATA_DIR": str(data),
        "DAGSTER_HOME": str(home),
        "LENDSEG_DEMO": "1",
        "LENDSEG_AUTOMATION": "off",
    }


def _raise_interrupt(signum, frame) -> None:  # noqa: ANN001
    raise KeyboardInterrupt(f"stopped by signal {signum}")


# Disk a bench needs besides DuckDB's spill, per client-month: landing files, build file, published copy and the
# floor's own database. Measured at 1 M x 24 (issue 26's baseline): landing 4.9 GB + build up to 8.8 GB = 570 bytes;
# rounded up to 1,000 for the published copy and the floor.
DISK_BYTES_PER_CLIENT_MONTH = 1_000
_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


class BenchRefused(RuntimeError):
    """The bench would not fit on the disk it was asked to use."""


class BenchFailed(RuntimeError):
    """The pipeline run of a bench failed; the message is one line naming the reason and the kept logs."""


def failure_reason(log: str) -> str:
    """The first failing step and its error's first line from ``lendseg run``'s output, else its last line."""
    lines = [line.strip() for line in log.splitlines()]
    for i, line in enumerate(lines):
        if m := re.fullmatch(r"step (\S+) failed:", line):
            detail = next((x for x in lines[i + 1 :] if x), "")
            return f"step {m.group(1)} failed: {detail}".rstrip(": ")
    return next((x for x in reversed(lines) if x), "no output")


def size_bytes(text: str) -> int:
    """'20GB', '512 MiB', '1.5TB' -> bytes (DuckDB's size units)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {text!r} (e.g. 20GB, 512MiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def disk_needed(clients: int, months: int, max_temp_size: str) -> int:
    """Bytes a bench of this size may need: files and databases, plus DuckDB's spill (as much again, at most the
    cap)."""
    files = clients * months * DISK_BYTES_PER_CLIENT_MONTH
    return files + min(files, size_bytes(max_temp_size))


def check_disk(clients: int, months: int, where: Path, max_temp_size: str) -> None:
    """Refuse up front, in one line, when ``where`` has less free disk than the bench may need."""
    need = disk_needed(clients, months, max_temp_size)
    free = shutil.disk_usage(where).free
    if free < need:
        raise BenchRefused(
            f"lendseg bench --clients {clients} --months {months} may need {need / 1e9:.1f} GB in {where} "
            f"(files {clients * months * DISK_BYTES_PER_CLIENT_MONTH / 1e9:.1f} GB + DuckDB spill up to "
            f"LENDSEG_DUCKDB_MAX_TEMP_SIZE={max_temp_size}); {free / 1e9:.1f} GB are free"
        )


def keep_failed_logs(data: Path, out_dir: Path) -> Path:
    """Copy a failed bench run's logs (the run's log, dbt's logs) out of the temp folder before it is removed."""
    dest = out_dir / "failed-run-logs"
    dest.mkdir(parents=True, exist_ok=True)
    for log in [*(data / "logs").glob("*.log"), *(data / "dbt_target").rglob("*.log")]:
        shutil.copy2(log, dest / f"{log.parent.name}-{log.name}")
    return dest


class PipelineRun:
    """``lendseg run --demo --job JOB`` in ``env`` as a child process; its process tree's peak memory and DuckDB
    spill sampled."""

    def __init__(self, env: Mapping[str, str], data: Path, job: str = "daily_refresh"):
        self.data = data
        self.started = time.perf_counter()
        lendseg = str(Path(sys.executable).parent / "lendseg")
        self.proc = subprocess.Popen(
            [lendseg, "run", "--demo", "--job", job],
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.sampler = TreeSampler(self.proc.pid, spill_dir=data / "build" / "build.duckdb.tmp")  # bench_env's default
        self.sampler.start()

    def wait(self, out_dir: Path) -> tuple[float, float, TreeSampler]:
        """Wall seconds, peak tree RSS (MB) and the sampler; a failed run raises BenchFailed with its logs kept."""
        log, _ = self.proc.communicate()
        wall = time.perf_counter() - self.started
        peak = self.sampler.stop()
        if self.proc.returncode != 0:
            kept = keep_failed_logs(self.data, out_dir)
            (kept / "lendseg-run-output.txt").write_text(log)
            raise BenchFailed(f"the pipeline failed ({failure_reason(log)}); its run and dbt logs are kept in {kept}")
        return wall, peak, self.sampler

    def stop(self) -> None:
        """Stop the run if it is still going (lendseg run stops cleanly on SIGTERM: lib/stop.py)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_bench(clients: int, months: int, fmt: str, out_dir: Path, seed: int = 42, keep: bool = False) -> dict:
    from dagster_project.lib.settings import env_value
    from dagster_project.tools.demo.generate import generate

    check_disk(clients, months, Path(tempfile.gettempdir()), env_value("LENDSEG_DUCKDB_MAX_TEMP_SIZE"))
    tmp = Path(tempfile.mkdtemp(prefix="lendseg-bench-"))
    data, home = tmp / "data", tmp / "dagster_home"
    proc = None
    # stopped (SIGTERM, Ctrl-C): the run is stopped and the temp folder, DuckDB spill files included, removed
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        t = time.perf_counter()
        generate(
            data / "landing",
            n_clients=clients,
            months=months,
            seed=seed,
            fmt=fmt,
            progress=True,
            truth_path=tmp / "truth.csv",
            end_month=date(2026, 10, 1),
        )
        gen_s = time.perf_counter() - t
        env = bench_env(os.environ, data, home)
        proc = PipelineRun(env, data)
        wall, peak, sampler = proc.wait(out_dir)
        steps, meta = _dagster_steps(home)
        report = with_floor(
            clients,
            months,
            fmt,
            gen_s,
            {"wall": wall, "peak": peak, "spill": sampler.peak_spill_mb, "steps": steps, "meta": meta},
            tmp,
            data,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if proc is not None:
            proc.stop()
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    engine = report["engine"]
    stem = f"bench-{clients}-{months}m-{fmt}" + ("" if engine == "duckdb" else f"-{engine}")
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (out_dir / f"{stem}.md").write_text(to_markdown(report))
    return report


def with_floor(clients: int, months: int, fmt: str, gen_s: float, run: dict, tmp: Path, data: Path) -> dict:
    """The report of a timed run (``run``: wall, peak, spill, steps, meta) with the floor and the floor with the
    applications made on the same landing files, each timed."""
    from dagster_project.tools.bench_floor import run_floor, run_floor_applications

    t = time.perf_counter()
    floor = run_floor(data / "landing", tmp / "floor", fmt, DEMO_PII_KEY)
    floor_wall = time.perf_counter() - t
    t = time.perf_counter()
    floor_apps = run_floor_applications(tmp / "floor")
    floor_apps_wall = time.perf_counter() - t
    report = _report(
        clients, months, fmt, gen_s, run["wall"], run["peak"], run["steps"], run["meta"], floor, floor_wall, data
    )
    report |= floor_with_applications(run["wall"], floor_wall, floor_apps, floor_apps_wall)
    report["peak_spill_mb"] = round(run["spill"])
    return report


def _report(clients, months, fmt, gen_s, wall, peak, steps, meta, floor, floor_wall, data: Path) -> dict:
    groups: dict[str, float] = defaultdict(float)
    for k, v in steps.items():
        groups[_step_group(k)] += v
    ingest = {k: v for k, v in meta.items() if k.startswith("raw_")}
    rows_in = {k: int(v.get("rows_loaded", 0) or 0) for k, v in ingest.items()}
    step_rows = []
    for k, v in sorted(steps.items(), key=lambda kv: -kv[1]):
        rows = rows_in.get(k, 0)
        step_rows.append(
            {
                "step": k,
                "group": _step_group(k),
                "seconds": round(v, 2),
                "rows": rows,
                "rows_per_s": round(rows / v) if rows and v else None,
                **{f"{p}_s": meta.get(k, {}).get(f"seconds_{p}") for p in ("stage", "validate", "load") if k in ingest},
            }
        )
    floor_groups = {
        "ingest": floor["ingest"]["seconds"],
        "dbt": floor["dimensions"]["seconds"] + floor["profiles_features"]["seconds"],
        "ml": floor["model_fit_score"]["seconds"],
        "publish": floor["publish"]["seconds"],
    }
    diff = wall - floor_wall
    shares = {
        g: round((groups.get(g, 0.0) - floor_groups.get(g, 0.0)) / diff, 3) if diff > 0 else None
        for g in sorted(set(groups) | set(floor_groups))
    }
    overhead = wall - sum(steps.values())
    shares["process start + orchestration outside steps"] = round((overhead) / diff, 3) if diff > 0 else None
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {_mem_gb()} GB RAM, Python "
        f"{platform.python_version()}",
        "clients": clients,
        "months": months,
        "format": fmt,
        "engine": load_settings().engine,
        "generation_s": round(gen_s, 1),
        "pipeline_wall_s": round(wall, 1),
        "peak_tree_rss_mb": round(peak),
        "rows_ingested": sum(rows_in.values()),
        "steps": step_rows,
        "groups_s": {k: round(v, 2) for k, v in groups.items()},
        "dbt_layers_s": _dbt_groups(meta["_run"]["run_id"], data),
        "floor": floor,
        "floor_wall_s": round(floor_wall, 1),
        "ratio_pipeline_to_floor": round(wall / floor_wall, 2),
        "share_of_difference": shares,
        "build_mb": _size_mb(data / "build" / "build.duckdb"),
        "published_mb": _size_mb(data / "warehouse.duckdb"),
    }


def floor_with_applications(wall: float, floor_wall: float, floor_apps: dict, floor_apps_wall: float) -> dict:
    """The floor that also does the applications bare (bench_floor.run_floor_applications) and the pipeline's ratio
    to it."""
    with_apps = floor_wall + floor_apps_wall
    return {
        "floor_applications": floor_apps,
        "floor_with_applications_wall_s": round(with_apps, 1),
        "ratio_pipeline_to_floor_with_applications": round(wall / with_apps, 2),
    }


def _mem_gb() -> int:
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)


def _size_mb(p: Path) -> float:
    return round(p.stat().st_size / 1e6, 1) if p.exists() else 0.0


def to_markdown(r: dict) -> str:
    engine = r.get("engine", "duckdb")
    lines = [
        f"## {r['clients']:,} clients, {r['months']} months, {r['format']}, engine {engine} ({r['date']})",
        "",
        f"Machine: {r['machine']}. Generation {r['generation_s']} s (not counted).",
        "",
        f"**Pipeline {r['pipeline_wall_s']} s wall, peak process-tree RSS {r['peak_tree_rss_mb']:,} MB, peak "
        f"DuckDB spill {r.get('peak_spill_mb', 0):,} MB; "
        f"floor {r['floor_wall_s']} s; ratio {r['ratio_pipeline_to_floor']}; floor with the applications "
        f"{r.get('floor_with_applications_wall_s')} s; ratio {r.get('ratio_pipeline_to_floor_with_applications')}.** "
        f"Build file {r['build_mb']} MB, "
        f"published {r['published_mb']} MB, {r['rows_ingested']:,} rows ingested.",
        "",
        "| step | group | seconds | rows | rows/s | stage s | validate s | load s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for s in r["steps"]:
        lines.append(
            f"| {s['step']} | {s['group']} | {s['seconds']} | {s['rows'] or ''} | {s['rows_per_s'] or ''} | "
            f"{s.get('stage_s') or ''} | {s.get('validate_s') or ''} | {s.get('load_s') or ''} |"
        )
    lines += ["", "| dbt layer | seconds (dbt's own timing) |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in sorted(r["dbt_layers_s"].items())]
    lines += ["", "| floor step | seconds | rows |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['seconds']} | {v['rows']:,} |" for k, v in r["floor"].items()]
    lines += [
        f"| applications: {k} | {v['seconds']} | {v['rows']:,} |" for k, v in r.get("floor_applications", {}).items()
    ]
    lines += ["", "| share of (pipeline - floor) | share |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in r["share_of_difference"].items()]
    return "\n".join(lines) + "\n"
