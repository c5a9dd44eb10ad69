"""``lendseg`` command line: generate demo data, run the pipeline headless, query the published warehouse."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .lib.settings import load_settings
from .sqlview import cmd_sql
from .tools.commands import cmd_bench, cmd_evaluate, cmd_generate, cmd_import_sba


def _dagster_home() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path.cwd() / ".dagster_home"))).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    from .defs.operations.instance import ensure_instance

    ensure_instance(home)  # dagster.yaml (run queue: one writer; telemetry off) if absent + storages, race-free
    return home


def preflight(job: str, demo: bool) -> str | None:
    """Why ``lendseg run`` must not start (one line), or None. Checked before anything is built."""
    import warnings

    from .defs.operations.jobs import WRITING_JOB_NAMES
    from .lib.settings import ConfigError, load_settings, pii_key

    if job not in WRITING_JOB_NAMES:
        return f"lendseg run: unknown job '{job}'; valid jobs: {', '.join(WRITING_JOB_NAMES)}"
    if demo:
        os.environ["LENDSEG_DEMO"] = "1"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pii_key()
    except ConfigError as e:
        return f"lendseg run refused: {e}"
    try:
        settings = load_settings()
    except ValueError as e:  # an unknown LENDSEG_ENGINE
        return f"lendseg run refused: {e}"
    engine = settings.engine
    if job == "intraday_warnings" and not settings.warehouse_path.exists():
        return (
            "lendseg run refused: intraday_warnings updates a published warehouse and there is none yet at "
            f"{settings.warehouse_path}; run daily_refresh first (the landing sensor does)"
        )
    if engine == "spark":
        from .defs.transform.lake import spark_missing

        if problem := spark_missing():
            return f"lendseg run refused: {problem}"
    return None


def _intraday_selection(defs, s) -> list:
    """The intraday run of the sources with new files, as the landing sensor would request it (jobs.py)."""
    from .defs.operations.jobs import intraday_keys
    from .defs.operations.sensors import pending_sources

    sources = pending_sources(s.landing_dir, s.build_path, s.lock_path)
    print(
        f"intraday_warnings for new files of: {', '.join(sources) or 'no source (warnings and publish only)'}",
        file=sys.stderr,
    )
    return sorted(intraday_keys(defs.resolve_asset_graph(), sources))


def cmd_run(args: argparse.Namespace) -> int:
    if problem := preflight(args.job, args.demo):
        print(problem, file=sys.stderr)
        return 2
    import time
    import uuid

    from . import progress
    from .lib import stop

    s = load_settings()
    if not os.environ.get("LENDSEG_PII_KEY"):
        print("demo mode: LENDSEG_PII_KEY is not set, using the public demo key (demo data only)", file=sys.stderr)
    home = _dagster_home()
    import dagster as dg

    from .definitions import defs

    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def(args.job)
    selection = _intraday_selection(defs, s) if args.job == "intraday_warnings" else None
    run_id = str(uuid.uuid4())
    log_path = None if args.verbose else s.data_dir / "logs" / f"{run_id}.log"
    print(f"running job '{args.job}', run {run_id} (history in DAGSTER_HOME={home})", file=sys.stderr)
    t0 = time.monotonic()

    def execute():
        # in a worker thread, so that SIGINT/SIGTERM stop the run at once whatever step it is in (lib/stop.py)
        return stop.run_stoppable(
            lambda: job.execute_in_process(
                instance=instance, raise_on_error=False, run_id=run_id, asset_selection=selection
            ),
            lambda signum: stop.stop_run(signum, instance, run_id, s, terminal["err"]),
        )

    terminal = {"err": sys.stderr}  # where the stop message goes: the terminal, not the run's log file

    if args.verbose:
        result, tracker = progress.follow(execute, instance, run_id, sys.stderr, live=False)
        out, err = sys.stdout, sys.stderr
    else:
        with progress.redirected_output(log_path) as (out, err):
            terminal["err"] = err
            result, tracker = progress.follow(execute, instance, run_id, out, live=out.isatty())
        progress.prune_logs(log_path.parent)
    alerts_dir = s.audit_dir / "pipeline_alerts"
    alerts = len(list(alerts_dir.glob("*.jsonl"))) if alerts_dir.exists() else 0
    summary = progress.format_summary(
        tracker, result.run_id, args.job, time.monotonic() - t0, result.success, s.warehouse_path, log_path, alerts
    )
    from .defs.segmentation.registry import run_notes

    for note in run_notes(s, result.run_id):
        print(f"model check failed: {note}", file=out)
    if result.success:
        print("\n".join(summary), file=out)
        return 0
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            print(f"step {event.step_key} failed:\n{error.message if error else ''}", file=err)
    print("\n".join(summary), file=err)
    print(f"run {result.run_id} FAILED; the published warehouse was left as it was.", file=err)
    from .defs.ingest.remedy import command, pending_remedies

    if pending_remedies(load_settings().remedies_dir, result.run_id):
        print(
            f"delivered rows caused it; to quarantine them and let the next run proceed: {command(result.run_id)}",
            file=err,
        )
    return 1


def cmd_quarantine(args: argparse.Namespace) -> int:
    """Quarantine the raw rows a failed run traced its later-stage failure to (remedy.py)."""
    from .defs.ingest.landing import ensure_raw_schema
    from .defs.ingest.remedy import apply_remedies, pending_remedies
    from .lib.warehouse import connect, writer_lock

    s = load_settings()
    if not pending_remedies(s.remedies_dir, args.run):
        print(
            f"quarantine refused: no recorded rows for run {args.run} in {s.remedies_dir} (already applied, or "
            f"the run's failure was not traced to delivered rows)",
            file=sys.stderr,
        )
        return 1
    with writer_lock(s.lock_path, on_wait=lambda m: print(m, file=sys.stderr)), connect(s) as con:
        ensure_raw_schema(con)
        try:
            out = apply_remedies(con, s.audit_dir, s.remedies_dir, args.run)
        except ValueError as e:
            print(f"quarantine refused: {e}", file=sys.stderr)
            return 1
    print(
        f"{out['removed']} raw rows quarantined (audit.quarantined_rows), {out['restored']} earlier versions "
        f"restored, {out['held']} bureau/usage rows held until their client arrives again; the next run "
        f"proceeds without them"
    )
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    """Latest data-quality failures, read from the audit store (no warehouse is opened)."""
    import duckdb

    from .lib import audit

    s = load_settings()
    con = duckdb.connect()
    shown = False
    if sql := audit.read(s.audit_dir, audit.DQ_RESULTS):
        df = con.execute(
            f"SELECT checked_at, severity, asset, source_file, rule, unexpected_count, observed_value "
            f"FROM {sql} WHERE NOT success ORDER BY checked_at DESC LIMIT ?",
            [args.limit],
        ).df()
        if len(df):
            print(f"Latest failed rules ({len(df)} shown):\n" + df.to_markdown(index=False))
            shown = True
    if sql := audit.read(s.audit_dir, audit.REJECTED):
        df = con.execute(
            f"SELECT rejected_at, source, file_name, rules FROM {sql} ORDER BY rejected_at DESC LIMIT ?", [args.limit]
        ).df()
        print(f"\nRejected deliveries (details in {s.rejected_dir}):\n" + df.to_markdown(index=False))
        shown = True
    if sql := audit.read(s.audit_dir, audit.QUARANTINED):
        df = con.execute(
            f"SELECT source, source_file, rule, count(*) AS rows, min(row_number) AS first_row "
            f"FROM {sql} GROUP BY ALL ORDER BY rows DESC LIMIT ?",
            [args.limit],
        ).df()
        print("\nQuarantined rows by file and rule:\n" + df.to_markdown(index=False))
        shown = True
    if not shown:
        print(f"no data-quality failures recorded in {s.audit_dir}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from .defs.publish.files import current_version, rollback, rollback_target, tables_in, versions
    from .lib.warehouse import writer_lock

    s = load_settings()
    if args.rollback is not None:
        try:  # refused before the writer lock is taken: a refused rollback changes nothing on disk
            rollback_target(s.warehouse_path, s.versions_dir, args.rollback or None)
            with writer_lock(s.lock_path, on_wait=lambda m: print(m, file=sys.stderr)):
                v = rollback(s.warehouse_path, s.versions_dir, args.rollback or None)  # checked again under the lock
        except ValueError as e:
            print(f"rollback refused: {e}", file=sys.stderr)
            return 2
        print(
            f"published warehouse is now {v.name} (run {v.manifest['run_id']}, published {v.manifest['published_at']})"
        )
        return 0
    cur = current_version(s.warehouse_path, s.versions_dir)
    kept = versions(s.versions_dir)
    if not kept:
        print(f"no published versions in {s.versions_dir}")
        return 0
    for v in kept:
        rows = sum(v.manifest["row_counts"].values())
        mark = "*" if cur and v.number == cur.number else " "
        print(
            f"{mark} {v.name}  {v.manifest['published_at']}  run {v.manifest['run_id'][:8]}  "
            f"{tables_in(v.manifest['row_counts'])} tables  {rows:,} rows  {len(v.manifest['checks_passed'])} "
            "checks passed"
        )
    return 0


def cmd_reidentify(args: argparse.Namespace) -> int:
    """Map client_keys back to client_ids (needs LENDSEG_PII_KEY, or --demo on demo data); prints, never stores."""
    from .defs.segmentation.review import QUEUE_SQL, check_key_available, keys_from_sql, reidentify
    from .lib.settings import ConfigError

    if args.demo:
        os.environ["LENDSEG_DEMO"] = "1"
    try:
        key = check_key_available()
    except ConfigError as e:
        print(f"reidentify refused: {e}", file=sys.stderr)
        return 2
    s = load_settings()
    keys = list(args.keys or [])
    sql = QUEUE_SQL if args.queue else args.from_sql
    if sql:
        if not s.warehouse_path.exists():
            print(f"no published warehouse at {s.warehouse_path}: run `lendseg run` first", file=sys.stderr)
            return 2
        keys += keys_from_sql(s.warehouse_path, sql)
    if not keys:
        print("no client_keys given (use --keys, --queue or --from-sql)", file=sys.stderr)
        return 2
    try:
        rows = reidentify(s, keys, key)
    except ValueError as e:
        print(f"reidentify failed: {e}", file=sys.stderr)
        return 1
    print("client_id,client_key")
    for client_id, client_key in rows:
        print(f"{client_id},{client_key}")
    missing = len(set(keys)) - len(rows)
    if missing:
        print(f"{missing} key(s) not found in the delivered client master files", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .defs.operations.jobs import WRITING_JOB_NAMES

    p = argparse.ArgumentParser(prog="lendseg", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a realistic demo delivery set to the landing zone")
    g.add_argument("--clients", type=int, default=5000, help="number of clients (default 5000)")
    g.add_argument("--months", type=int, default=24, help="months of product-usage snapshots (default 24)")
    g.add_argument("--seed", type=int, default=42, help="random seed: the same seed writes the same files (default 42)")
    g.add_argument("--out", help="landing folder (default $LENDSEG_LANDING_DIR)")
    g.add_argument("--format", choices=["csv", "parquet"], default="csv", help="delivery file format (default csv)")
    g.add_argument("--truth", help="ground-truth CSV (default $LENDSEG_DATA_DIR/ground_truth/archetypes.csv)")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument(
        "--scenario",
        default="demo",
        choices=["demo", "coastal_industry", "thin_file", "diversified"],
        help="portfolio structure (dagster_project/tools/demo/scenarios.py); demo = the one the model was built on",
    )
    g.set_defaults(func=cmd_generate)

    si = sub.add_parser(
        "import-sba",
        help="map real U.S. SBA loans (CSV) onto landing contract v1 "
        "(docs/sba_import.md); outcomes go to a separate truth file",
    )
    si.add_argument("csv", help="SBA loan file with the SBA's column names")
    si.add_argument("--out", help="landing folder (default $LENDSEG_LANDING_DIR)")
    si.add_argument("--truth", help="outcome file (default $LENDSEG_DATA_DIR/ground_truth/sba_outcomes.csv)")
    si.add_argument("--rate", type=float, help="CNY per USD (default sba_import.USD_CNY = 7.10)")
    si.set_defaults(func=cmd_import_sba)

    ev = sub.add_parser(
        "evaluate",
        help="run the pipeline on every scenario x judging seed, the demo and the SBA "
        "sample; write the tables into docs/segmentation.md and docs/applications.md",
    )
    ev.add_argument("--scenarios", nargs="+", help="default: every scenario of dagster_project/tools/demo/scenarios.py")
    ev.add_argument("--seeds", nargs="+", type=int, help="default: the judging seeds 101 102 103")
    ev.add_argument("--clients", type=int, default=2000, help="clients generated per scenario run (default 2000)")
    ev.add_argument(
        "--months",
        type=int,
        default=18,
        help="months of usage per scenario run (default 18: the early-warning "
        "calibration needs 12 months of history before its evaluation cutoff)",
    )
    ev.add_argument("--sba", default="../shared/data/sba/sba_loans_sample.csv", help="SBA loan sample (CSV)")
    ev.add_argument("--no-sba", action="store_true", help="skip the SBA sample")
    ev.add_argument("--no-doc", action="store_true", help="print only, leave the docs alone (= --docs none)")
    ev.add_argument(
        "--docs",
        choices=["all", "segmentation", "applications", "none"],
        default="all",
        help="which tables to rewrite: docs/segmentation.md, docs/applications.md (default both)",
    )
    ev.add_argument("--demo-seeds", nargs="+", type=int, default=[7], help="demo-generator runs (default seed 7)")
    ev.add_argument("--demo-clients", type=int, default=3000, help="clients per demo run (default 3000)")
    ev.add_argument("--demo-months", type=int, default=18, help="months per demo run (default 18)")
    ev.add_argument("--no-demo", action="store_true", help="skip the demo-generator runs")
    ev.add_argument(
        "--reuse",
        action="store_true",
        help="measure a case from its finished run in --workdir instead of running it again",
    )
    ev.add_argument("--workdir", help="where the runs' data dirs go (default: a new temp dir)")
    ev.add_argument("--smoke", action="store_true", help="CI smoke test: one small scenario run, no doc, no SBA")
    ev.add_argument(
        "--perturb",
        action="store_true",
        help="also run every case under the perturbations of issue 34 (two 90 %% client subsamples, two "
        "k-means seeds, on the SBA loans one other sample salt): k and ARI per perturbation, SBA AUC "
        "min / median, in the record",
    )
    ev.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("run", help="run the pipeline headless through Dagster (recorded in DAGSTER_HOME)")
    r.add_argument(
        "--job",
        default="daily_refresh",
        metavar="JOB",
        help=f"job to run: {', '.join(WRITING_JOB_NAMES)} (default daily_refresh)",
    )
    r.add_argument("--demo", action="store_true", help="allow the public demo key when LENDSEG_PII_KEY is unset")
    r.add_argument(
        "--verbose",
        action="store_true",
        help="stream Dagster's and dbt's full logs instead of the progress view "
        "(otherwise they go to $LENDSEG_DATA_DIR/logs/<run_id>.log)",
    )
    r.set_defaults(func=cmd_run)

    q = sub.add_parser("sql", help="run read-only SQL on the published warehouse")
    q.add_argument(
        "query",
        help="SQL, one or more statements (run in order, each result under a header line); "
        "the file is opened read-only",
    )
    q.add_argument(
        "--format",
        choices=["table", "records", "csv"],
        default="table",
        help="table: aligned, numbers with thousands separators, NULL shown as NULL, long cells cut; one "
        "record per row when wider than the terminal (default); records: always one record per "
        "row, values in full; csv: raw values of one statement",
    )
    q.set_defaults(func=cmd_sql)

    qa = sub.add_parser("quality", help="print the latest data-quality failures from the audit store")
    qa.add_argument("--limit", type=int, default=20, help="rows shown per section (default 20)")
    qa.set_defaults(func=cmd_quality)

    pb = sub.add_parser("publish", help="list published versions or roll back to one")
    pb.add_argument("--list", action="store_true", help="list kept versions (default); * marks the current one")
    pb.add_argument(
        "--rollback",
        nargs="?",
        const="",
        metavar="VERSION",
        help="restore VERSION (e.g. v000003), default the one before the current",
    )
    pb.set_defaults(func=cmd_publish)

    ri = sub.add_parser(
        "reidentify", help="map client_keys back to client_ids (holders of LENDSEG_PII_KEY only; printed, never stored)"
    )
    src = ri.add_mutually_exclusive_group(required=True)
    src.add_argument("--keys", nargs="+", metavar="KEY", help="client_keys to map")
    src.add_argument("--queue", action="store_true", help="every client_key in marts.segment_review_queue")
    src.add_argument("--from-sql", metavar="SQL", help="read-only SQL on the published warehouse returning client_keys")
    ri.add_argument("--demo", action="store_true", help="allow the public demo key when LENDSEG_PII_KEY is unset")
    ri.set_defaults(func=cmd_reidentify)

    qr = sub.add_parser(
        "quarantine",
        help="quarantine the delivered rows a failed run named (the command its "
        "error prints) so the next run proceeds without them",
    )
    qr.add_argument("--run", required=True, metavar="RUN_ID", help="the failed run's id")
    qr.set_defaults(func=cmd_quarantine)

    b = sub.add_parser("bench", help="benchmark the whole pipeline against a bare-DuckDB floor (temp location)")
    b.add_argument("--clients", type=int, default=10_000, help="number of clients generated (default 10000)")
    b.add_argument("--months", type=int, default=24, help="months of usage snapshots (default 24)")
    b.add_argument("--format", choices=["csv", "parquet"], default="csv", help="delivery file format (default csv)")
    b.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    b.add_argument("--out", help="report folder (default $LENDSEG_DATA_DIR/bench)")
    b.add_argument("--keep", action="store_true", help="keep the temp data for inspection")
    b.add_argument(
        "--increment",
        action="store_true",
        help="after the first load, deliver one more month (usage, bureau, client changes) and time that "
        "run, then a mid-month bureau file for 1 %% of the clients (JSON: increment.*)",
    )
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # the reader went away (`lendseg sql ... | head`): stop quietly, like any Unix filter
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's last flush does not fail again
        return 141  # 128 + SIGPIPE, what a shell reports for a filter stopped by a closed pipe


if __name__ == "__main__":
    raise SystemExit(main())
