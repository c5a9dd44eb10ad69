"""Scoring on Spark (LENDSEG_ENGINE=spark): the champion's scikit-learn pipeline over every client.

The segment_scoring asset calls :func:`score`, which runs this module as its own process (its own JVM, ended
with it, like a dbt invocation): a Spark session reads ``marts.client_features`` and ``marts.dim_client`` where
dbt-spark wrote them (Parquet under LENDSEG_SPARK_DIR/warehouse), scores every row with ``mapInPandas`` through
:func:`scoring.score_frame` - the same function the DuckDB engine calls chunk by chunk, so both engines give
the same segment and confidence - and writes the scores as Parquet. The asset reads them back into
``ml._scoring``; stable ids, review context, drift and the ``ml`` tables are then written as on DuckDB.
Training stays on one machine, on a sample (docs/scale_out.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

from dagster_project.defs.segmentation.scoring import CHUNK_ROWS, ScoringTask, score_columns, score_frame, scoring_sql
from dagster_project.defs.transform.lake import parquet_list_sql, prepare_spark_dir, spark_table_dir
from dagster_project.lib.settings import Settings

READS = ("client_features", "dim_client")


SPARK_TYPES = {
    "VARCHAR": "string",
    "BIGINT": "bigint",
    "DOUBLE": "double",
    "BOOLEAN": "boolean",
    "SMALLINT": "smallint",
    "INTEGER": "int",
}


def output_schema(task: ScoringTask) -> str:
    """Spark DDL of :func:`scoring.score_frame`'s columns (scoring.score_columns)."""
    return ", ".join(f"{c} {SPARK_TYPES[t]}" for c, t in score_columns(task))


def score(settings: Settings, version: str, task: ScoringTask, log=None) -> str:
    """Score every client of the Spark build with model ``version``; a DuckDB list literal of the output files."""
    out = settings.spark_dir / "scores" / version
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    request = {
        "model_dir": str(settings.models_dir),
        "version": version,
        "task": asdict(task),
        "warehouse": str(settings.spark_dir / "warehouse"),
        "spark_dir": str(settings.spark_dir),
        "out": str(out),
        "threads": settings.threads,
        "memory": settings.spark_memory,
    }
    req = out.parent / f".request-{uuid.uuid4().hex[:8]}.json"
    req.write_text(json.dumps(request))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    if log:
        log(f"scoring on Spark (local[{settings.threads}]) with model {version}")
    try:
        proc = subprocess.run([sys.executable, "-m", __name__, str(req)], capture_output=True, text=True, env=env)
    finally:
        req.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"scoring on Spark failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    files = sorted(str(p) for p in out.glob("*.parquet"))
    if not files:
        raise RuntimeError(f"scoring on Spark wrote no Parquet file to {out}")
    return parquet_list_sql(files)


def session(threads: int, scratch: Path, log_conf: Path, memory: str = "4g"):
    """A local Spark session with an in-memory catalogue (no metastore: dbt's stays free)."""
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(f"local[{threads}]")
        .appName("lendseg-scoring")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_conf}")
        .config("spark.driver.memory", memory)
        .config("spark.sql.catalogImplementation", "in-memory")
        .config("spark.sql.warehouse.dir", str(scratch))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(max(threads * 2, 2)))
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(CHUNK_ROWS))
        .getOrCreate()
    )


def run(request: dict) -> None:
    """The Spark job (this module's process): read the two marts, score in batches, write Parquet."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import DecimalType

    from dagster_project.defs.segmentation.registry import load_pipeline

    task = ScoringTask(**request["task"])
    pipe = load_pipeline(Path(request["model_dir"]), request["version"])
    scratch = Path(request["out"]).parent / f".scratch-{uuid.uuid4().hex[:6]}"
    spark = session(int(request["threads"]), scratch, prepare_spark_dir(Path(request["spark_dir"])), request["memory"])
    try:
        spark.sql("CREATE DATABASE IF NOT EXISTS marts")
        for table in READS:
            spark.catalog.createTable(
                f"marts.{table}",
                source="parquet",
                path=str(spark_table_dir(Path(request["warehouse"]), "marts", table)),
            )
        rows = spark.sql(scoring_sql())
        # exact decimals arrive in pandas as Python Decimals; DuckDB hands the model floats
        rows = rows.select(
            [
                F.col(f.name).cast("double") if isinstance(f.dataType, DecimalType) else F.col(f.name)
                for f in rows.schema.fields
            ]
        )

        def batches(frames):
            for frame in frames:
                if len(frame):
                    yield score_frame(frame, pipe, task)

        rows.mapInPandas(batches, output_schema(task)).write.mode("overwrite").parquet(request["out"])
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
