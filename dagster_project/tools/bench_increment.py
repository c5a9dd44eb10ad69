"""``lendseg bench --increment``: what one more month costs after the first load, and a mid-month bureau file.

The generator writes ``months + 1`` months ending in a quarter-end month; the first load gets every file but the
last month's (its usage file, its quarter-end bureau file; the client master is delivered as of the month before).
After the first load's run, the increment delivers the last month: its usage and bureau files and a client-master
file of the clients whose data changed (``CHANGED_SHARE``), and a run is timed; then a bureau file of
``MID_MONTH_SHARE`` of the clients dated in the middle of the next month lands and that run is timed too. The floor
does the same increment bare on its own database (``bench_floor.run_floor_increment``). Timings live here, never in
tests."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.lib.months import add_months
from dagster_project.lib.settings import DEMO_PII_KEY
from dagster_project.tools.bench import PipelineRun, _dagster_steps, _raise_interrupt, bench_env, check_disk, with_floor

LAST_MONTH = date(2026, 9, 1)  # a quarter end: the increment carries a bureau file
CHANGED_SHARE = 1  # percent of the clients whose master data change in the increment
MID_MONTH_SHARE = 1  # percent of the clients in the mid-month bureau file
MID_MONTH_DAY = 15


def split_last_month(full: Path, first: Path, increment: Path, last: date, fmt: str) -> dict[str, list[str]]:
    """Move the generated files of month ``last`` from ``full`` into ``increment``; the rest into ``first``.

    The client master (one snapshot named after the last month) goes to the first load renamed to the month before,
    and stays in ``full`` as the source of the increment's client changes. Returns the file names of each part.
    """
    tag, before = f"{last:%Y%m}", f"{add_months(last, -1):%Y%m}"
    out: dict[str, list[str]] = {"first": [], "increment": []}
    for folder in sorted(p for p in full.iterdir() if p.is_dir()):
        for f in sorted(folder.glob(f"*.{fmt}")):
            if folder.name == "clients":
                dest = first / "clients" / f.name.replace(tag, before)
                part = "first"
            elif f.stem.endswith(tag):
                dest, part = increment / folder.name / f.name, "increment"
            else:
                dest, part = first / folder.name / f.name, "first"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
            out[part].append(f"{folder.name}/{dest.name}")
    return out


def _options(fmt: str) -> str:
    return "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER"


def _reader(path: Path, fmt: str) -> str:
    return f"read_parquet('{path}')" if fmt == "parquet" else f"read_csv('{path}', header=true, all_varchar=true)"


def client_changes(clients_file: Path, out: Path, fmt: str, percent: int, updated_at: str) -> int:
    """A client-master delivery of ``percent`` % of the clients (chosen by id) with one more employee and a newer
    ``updated_at``: the changes a month brings. Returns its row count."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"""COPY (SELECT * REPLACE (CAST(CAST(employee_count AS BIGINT) + 1 AS VARCHAR) AS employee_count,
                                        '{updated_at}' AS updated_at)
                              FROM {_reader(clients_file, fmt)} WHERE hash(client_id) % 100 < {percent})
                        TO '{out}' ({_options(fmt)})""")
        return con.execute(f"SELECT count(*) FROM {_reader(out, fmt)}").fetchall()[0][0]


def mid_month_bureau(bureau_file: Path, out: Path, fmt: str, percent: int, report_date: date) -> int:
    """A bureau delivery of new reports for ``percent`` % of the clients dated ``report_date`` (new report ids, the
    score 40 points lower: enough to raise early warnings). Returns its row count."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect() as con:
        con.execute(f"""COPY (SELECT * REPLACE (report_id || '-M{report_date:%Y%m%d}' AS report_id,
                                        '{report_date:%Y-%m-%d}' AS report_date,
                                        CAST(greatest(300, CAST(bureau_score AS INTEGER) - 40) AS VARCHAR) AS
                                            bureau_score)
                              FROM {_reader(bureau_file, fmt)} WHERE hash(client_id) % 100 < {percent})
                        TO '{out}' ({_options(fmt)})""")
        return con.execute(f"SELECT count(*) FROM {_reader(out, fmt)}").fetchall()[0][0]


def _deliver(src: Path, landing: Path) -> None:
    """Files of ``src`` into the landing zone, each written under a temp name and renamed (as an upstream would)."""
    for f in sorted(src.rglob("*")):
        if f.is_file():
            dest = landing / f.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.part")
            shutil.copy(f, tmp)
            os.replace(tmp, dest)


def _timed_run(env: dict, data: Path, home: Path, out_dir: Path, job: str = "daily_refresh") -> dict:
    run = PipelineRun(env, data, job)
    try:
        wall, peak, sampler = run.wait(out_dir)
    finally:
        run.stop()
    steps, meta = _dagster_steps(home)
    return {"wall": wall, "peak": peak, "spill": sampler.peak_spill_mb, "steps": steps, "meta": meta}


def run_increment_bench(clients: int, months: int, fmt: str, out_dir: Path, seed: int = 42, keep: bool = False) -> dict:
    from dagster_project.lib.settings import env_value
    from dagster_project.tools.bench import to_markdown
    from dagster_project.tools.bench_floor import run_floor_increment
    from dagster_project.tools.demo.generate import generate

    check_disk(clients, months + 1, Path(tempfile.gettempdir()), env_value("LENDSEG_DUCKDB_MAX_TEMP_SIZE"))
    tmp = Path(tempfile.mkdtemp(prefix="lendseg-bench-inc-"))
    data, home = tmp / "data", tmp / "dagster_home"
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        t = time.perf_counter()
        generate(
            tmp / "generated",
            n_clients=clients,
            months=months + 1,
            seed=seed,
            fmt=fmt,
            progress=True,
            truth_path=tmp / "truth.csv",
            end_month=LAST_MONTH,
        )
        parts = split_last_month(tmp / "generated", data / "landing", tmp / "increment", LAST_MONTH, fmt)
        changed = client_changes(
            next((tmp / "generated" / "clients").glob(f"*.{fmt}")),
            tmp / "increment" / "clients" / f"clients_{LAST_MONTH:%Y%m}.{fmt}",
            fmt,
            CHANGED_SHARE,
            f"{add_months(LAST_MONTH, 1):%Y-%m}-01 06:00:00",
        )
        mid_day = date(*add_months(LAST_MONTH, 1).timetuple()[:2], MID_MONTH_DAY)
        mid = mid_month_bureau(
            next((tmp / "increment" / "credit_bureau").glob(f"*.{fmt}")),
            tmp / "mid_month" / "credit_bureau" / f"credit_bureau_{mid_day:%Y%m%d}.{fmt}",
            fmt,
            MID_MONTH_SHARE,
            mid_day,
        )
        gen_s = time.perf_counter() - t
        env = bench_env(os.environ, data, home)
        report = with_floor(clients, months, fmt, gen_s, _timed_run(env, data, home, out_dir), tmp, data)
        _deliver(tmp / "increment", data / "landing")
        inc = _timed_run(env, data, home, out_dir)
        t = time.perf_counter()
        floor_inc = run_floor_increment(tmp / "increment", tmp / "floor", fmt, DEMO_PII_KEY)
        floor_inc_wall = time.perf_counter() - t
        _deliver(tmp / "mid_month", data / "landing")
        mid_run = _timed_run(env, data, home, out_dir, "intraday_warnings")  # what the landing sensor requests
        report["increment"] = {
            "files": parts["increment"] + [f"clients/clients_{LAST_MONTH:%Y%m}.{fmt}"],
            "client_changes": changed,
            "pipeline_wall_s": round(inc["wall"], 1),
            "peak_tree_rss_mb": round(inc["peak"]),
            "floor_wall_s": round(floor_inc_wall, 1),
            "floor": floor_inc,
            "ratio_pipeline_to_floor": round(inc["wall"] / floor_inc_wall, 2),
            "steps": {k: round(v, 2) for k, v in sorted(inc["steps"].items(), key=lambda kv: -kv[1])},
            "mid_month_reports": mid,
            "mid_month_s": round(mid_run["wall"], 1),
            "mid_month_steps": {k: round(v, 2) for k, v in sorted(mid_run["steps"].items(), key=lambda kv: -kv[1])},
        }
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{clients}-{months}m-{fmt}-increment"
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (out_dir / f"{stem}.md").write_text(to_markdown(report) + increment_markdown(report["increment"]))
    return report


def increment_markdown(inc: dict) -> str:
    lines = [
        "",
        f"### One more month: {inc['pipeline_wall_s']} s (floor {inc['floor_wall_s']} s, ratio "
        f"{inc['ratio_pipeline_to_floor']}); mid-month bureau file of {inc['mid_month_reports']:,} reports: "
        f"{inc['mid_month_s']} s",
        "",
        "| step | increment s | mid-month s |",
        "|---|---:|---:|",
    ]
    for k, v in inc["steps"].items():
        lines.append(f"| {k} | {v} | {inc['mid_month_steps'].get(k, '')} |")
    lines += ["", "| floor step (increment) | seconds | rows |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['seconds']} | {v['rows']:,} |" for k, v in inc["floor"].items()]
    return "\n".join(lines) + "\n"
