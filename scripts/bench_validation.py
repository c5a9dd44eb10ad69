"""Benchmark: staging + the GX landing suite (run as SQL inside DuckDB) on one large usage delivery.

    .venv/bin/python scripts/bench_validation.py --clients 100000 --months 24

Generates a delivery set in a temp dir, merges all usage months into ONE delivery file, then times
(1) staging it into a scratch DuckDB file (CSV read + HMAC pseudonyms), (2) the landing_product_usage
GX suite (counts pass), (3) the same with 0.5 % bad rows (counts + row-number pass). Prints a markdown table.
Peak memory is this process's max RSS (GX and DuckDB run in-process).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.contract import SOURCES
from dagster_project.defs.ingest.landing import csv_header, stage_sql
from dagster_project.defs.ingest.suites import rules
from dagster_project.defs.ingest.validation import SqlSuite, landing_query
from dagster_project.tools.demo.generate import generate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=100_000)
    ap.add_argument("--months", type=int, default=24)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        generate(
            root / "landing",
            n_clients=args.clients,
            months=args.months,
            seed=1,
            progress=False,
            end_month=date(2026, 10, 1),
        )
        merged = root / "usage_all.csv"
        duckdb.connect().execute(
            f"COPY (SELECT * FROM read_csv('{root}/landing/product_usage/*.csv', all_varchar=true)) "
            f"TO '{merged}' (HEADER)"
        )
        print(f"generated and merged in {time.perf_counter() - t:.1f} s (not counted)\n")
        src = SOURCES["product_usage"]
        con = duckdb.connect(config={"memory_limit": "4GB", "threads": 2})
        scratch = root / "stage.duckdb"
        t = time.perf_counter()
        con.execute(f"ATTACH '{scratch}' AS stg")
        con.execute(f"CREATE TABLE stg.stage AS {stage_sql(src, merged, 'bench-key', csv_header(merged))}")
        rows = con.execute("SELECT count(*) FROM stg.stage").fetchall()[0][0]
        t_stage = time.perf_counter() - t
        print("| step | rows | seconds | rows/s | peak RSS MB |\n|---|---:|---:|---:|---:|")
        print(
            f"| stage to scratch file (read CSV + HMAC) | {rows:,} | {t_stage:.1f} | {rows / t_stage:,.0f} | "
            f"{peak_rss_mb():,.0f} |"
        )
        con.execute("DETACH stg")
        suite_rules = rules("product_usage", date.today())
        for label, budget in (("clean file, counts pass", 10_000),):
            t = time.perf_counter()
            suite = SqlSuite("landing_product_usage", suite_rules, scratch, landing_query("product_usage"))
            t_init = time.perf_counter() - t
            t = time.perf_counter()
            out = suite.validate(flag_budget=budget)
            dt = time.perf_counter() - t
            suite.close()
            print(
                f"| GX import + context + suite ({len(suite_rules)} rules) | - | {t_init:.1f} | - | "
                f"{peak_rss_mb():,.0f} |"
            )
            print(f"| GX suite as SQL, {label} | {rows:,} | {dt:.1f} | {rows / dt:,.0f} | {peak_rss_mb():,.0f} |")
        con.execute(f"ATTACH '{scratch}' AS stg")
        con.execute("UPDATE stg.stage SET credit_limit = '-1' WHERE rowid % 200 = 7")
        bad = con.execute("SELECT count(*) FROM stg.stage WHERE credit_limit = '-1'").fetchall()[0][0]
        con.execute("DETACH stg")
        t = time.perf_counter()
        suite = SqlSuite("landing_product_usage_bad", suite_rules, scratch, landing_query("product_usage"))
        out = suite.validate(flag_budget=10 * bad)
        dt = time.perf_counter() - t
        suite.close()
        print(
            f"| GX suite as SQL, {bad:,} bad rows (counts + row numbers) | {rows:,} | {dt:.1f} | {rows / dt:,.0f} | "
            f"{peak_rss_mb():,.0f} |"
        )
        assert out.complete and len(out.flags) == bad, (out.complete, len(out.flags), bad)


if __name__ == "__main__":
    main()
