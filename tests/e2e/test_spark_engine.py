"""LENDSEG_ENGINE=spark: a whole Dagster run with dbt-spark (session method, local Spark) and scoring on Spark,
then every relation of the dbt project and every score compared with DuckDB on the same inputs.

One run, then the DuckDB side is built from a copy of that run's build file (the same raw and ml tables, load
times included), so any difference is the engines' and not the inputs'. Numbers are compared to 9
significant digits (tools/engine_compare.py).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.ingest.contract import PII_COLUMNS
from dagster_project.defs.segmentation.registry import champion, load_meta, load_pipeline
from dagster_project.defs.segmentation.scoring import score_in_duckdb, scoring_task
from dagster_project.lib.settings import DBT_PROJECT_DIR
from dagster_project.tools.engine_compare import compare_builds
from tests.conftest import make_workspace

pytestmark = pytest.mark.e2e
DBT = str(Path(sys.executable).parent / "dbt")


@pytest.fixture(scope="module")
def spark_ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("spark"), clients=250, months=9, seed=29)
    ws.first_run = ws.lendseg("run", "--demo", timeout=1800, LENDSEG_ENGINE="spark")
    return ws


def test_spark_run_publishes_through_spark(spark_ws):
    out = spark_ws.first_run.stdout
    assert "succeeded" in out and "published v000001" in out, out[-3000:]
    spark_dir = spark_ws.data / "build" / "spark"
    # dbt-spark built the marts as Parquet tables in the session's warehouse, scoring wrote Parquet scores
    assert list((spark_dir / "warehouse" / "marts.db" / "client_segments").glob("*.parquet"))
    assert list((spark_dir / "scores").glob("*/*.parquet"))
    # the raw layer Spark read: month partitions, pseudonymous keys only
    lake = spark_ws.data / "lake"
    months = sorted(p.name for p in (lake / "raw" / "product_usage").iterdir() if p.is_dir())
    assert len(months) == 9 and all(m.startswith("delivery_month=") for m in months)
    con = duckdb.connect()
    clear = {c for cols in PII_COLUMNS.values() for c in cols}
    for folder in (lake / "raw").iterdir():
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{folder}/**/*.parquet')").fetchall()}
        assert not cols & clear, (folder.name, cols & clear)
    bad_keys = con.execute(
        f"SELECT count(*) FROM read_parquet('{lake}/raw/clients/**/*.parquet') "
        "WHERE NOT regexp_full_match(client_key, '[0-9a-f]{64}')"
    ).fetchone()[0]
    assert bad_keys == 0


def test_every_relation_and_every_score_equal_duckdb(spark_ws, tmp_path):
    build = spark_ws.data / "build" / "build.duckdb"
    duck = tmp_path / "duck.duckdb"
    shutil.copy(build, duck)
    env = {
        **os.environ,
        "LENDSEG_BUILD_PATH": str(duck),
        "LENDSEG_DUCKDB_THREADS": "2",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    target = tmp_path / "dbt_target"
    proc = subprocess.run(
        [
            DBT,
            "build",
            "--target",
            "duckdb",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    manifest = json.loads((target / "manifest.json").read_text())
    relations = sorted(
        (n["schema"], n["alias"]) for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")
    )
    assert len(relations) >= 30
    con = duckdb.connect()
    con.execute(f"ATTACH '{build}' AS spark (READ_ONLY)")
    con.execute(f"ATTACH '{duck}' AS duck")
    assert compare_builds(con, "spark", "duck", relations) == []

    # scoring: the DuckDB engine's chunks over DuckDB-built features give Spark's segments and confidences
    mdir = spark_ws.data / "models"
    version = champion(mdir)
    meta = load_meta(mdir, version)
    task = scoring_task(meta, json.loads((mdir / version / "reference.json").read_text()), 0.1)
    con.execute("USE duck")
    score_in_duckdb(con, load_pipeline(mdir, version), task)
    n, diff = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE s.segment_id IS DISTINCT FROM d.segment_id "
        "OR abs(s.confidence - d.confidence) > 1e-9 OR s.low_confidence IS DISTINCT FROM d.low_confidence) "
        "FROM spark.ml.segment_assignments s FULL JOIN duck.ml._scoring d USING (client_key)"
    ).fetchone()
    assert n >= 200 and diff == 0, (n, diff)
