"""The ``lendseg`` commands of the tools: ``generate``, ``import-sba``, ``evaluate``, ``bench`` (parser: ``cli.py``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dagster_project.lib.settings import load_settings


def cmd_generate(args: argparse.Namespace) -> int:
    from dagster_project.tools.demo.generate import generate

    s = load_settings()
    out = Path(args.out) if args.out else s.landing_dir
    truth = Path(args.truth) if args.truth else s.data_dir / "ground_truth" / "archetypes.csv"
    files = generate(
        out_dir=out,
        n_clients=args.clients,
        months=args.months,
        seed=args.seed,
        fmt=args.format,
        truth_path=truth,
        progress=not args.quiet,
        scenario=args.scenario,
    )
    print(f"wrote {sum(len(v) for v in files.values())} delivery files under {out}; ground truth: {truth}")
    return 0


def cmd_import_sba(args: argparse.Namespace) -> int:
    from dagster_project.tools.sba_import import USD_CNY, import_sba

    s = load_settings()
    out = Path(args.out) if args.out else s.landing_dir
    truth = Path(args.truth) if args.truth else s.data_dir / "ground_truth" / "sba_outcomes.csv"
    try:
        files = import_sba(Path(args.csv), out, truth, rate=args.rate or USD_CNY)
    except (ValueError, FileNotFoundError) as e:
        print(f"import-sba failed: {e}", file=sys.stderr)
        return 1
    print(f"wrote {sum(len(v) for v in files.values())} delivery files under {out}; outcomes (never landed): {truth}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import tempfile

    from dagster_project.tools.demo.scenarios import JUDGING_SEEDS, SCENARIOS
    from dagster_project.tools.evaluate import APP_DOC, DOC, evaluate

    demo_seeds: list[int] = []
    if args.smoke:
        scenarios, seeds, clients, months, sba = ["coastal_industry"], [101], 1500, 12, None
    else:
        scenarios = list(SCENARIOS) if args.scenarios is None else [s for s in args.scenarios if s != "demo"]
        seeds, clients, months = args.seeds or list(JUDGING_SEEDS), args.clients, args.months
        sba = None if args.no_sba else Path(args.sba)
        demo_seeds = [] if args.no_demo else list(args.demo_seeds)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lendseg-evaluate-"))
    docs = "none" if (args.smoke or args.no_doc) else args.docs
    doc = DOC if docs in ("all", "segmentation") else None
    app_doc = APP_DOC if docs in ("all", "applications") else None
    rows, _ = evaluate(
        scenarios,
        seeds,
        clients,
        months,
        work,
        sba,
        doc,
        log=lambda m: print(m, file=sys.stderr),
        demo_seeds=demo_seeds,
        demo_clients=args.demo_clients,
        demo_months=args.demo_months,
        app_doc=app_doc,
        reuse=args.reuse,
        perturbed=args.perturb,
    )
    for r in rows:
        print(
            f"{r.case} seed={r.seed} published_model={'yes' if r.published_model else 'no'} k={r.k} ari={r.ari} "
            f"baseline_ari={r.baseline_ari} min_jaccard={r.min_jaccard} {r.note}"
        )
    print(f"segmentation record: {work / 'segmentation_record.md'}")
    for d in (doc, app_doc):
        if d:
            print(f"table written to {d}")
    return 0 if all(r.published_model for r in rows) else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from dagster_project.tools.bench import BenchFailed, BenchRefused, run_bench
    from dagster_project.tools.bench_increment import run_increment_bench

    out = Path(args.out) if args.out else load_settings().data_dir / "bench"
    bench = run_increment_bench if getattr(args, "increment", False) else run_bench
    try:
        report = bench(args.clients, args.months, args.format, out, seed=args.seed, keep=args.keep)
    except BenchRefused as e:
        print(f"refused: {e}", file=sys.stderr)
        return 2
    except BenchFailed as e:
        print(f"bench failed: {e}", file=sys.stderr)
        return 1
    print(
        f"pipeline {report['pipeline_wall_s']} s, floor {report['floor_wall_s']} s, ratio "
        f"{report['ratio_pipeline_to_floor']}; floor with the applications "
        f"{report['floor_with_applications_wall_s']} s, "
        f"ratio {report['ratio_pipeline_to_floor_with_applications']}; peak RSS {report['peak_tree_rss_mb']} MB; "
        f"report in {out}"
    )
    if inc := report.get("increment"):
        print(
            f"one more month {inc['pipeline_wall_s']} s (floor {inc['floor_wall_s']} s, ratio "
            f"{inc['ratio_pipeline_to_floor']}); mid-month bureau file {inc['mid_month_s']} s"
        )
    return 0
