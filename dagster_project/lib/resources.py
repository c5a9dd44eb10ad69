"""Dagster resources: where the warehouse lives, and the run-long writer lock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from dagster_project.lib.settings import Settings, key_id_for, load_settings, pii_key
from dagster_project.lib.warehouse import writer_lock


class Warehouse(dg.ConfigurableResource):
    """The build database and the published file. Defaults come from the ``LENDSEG_*`` variables.

    While a run uses this resource it holds the build-database writer lock: with the in-process executor
    the resource is set up once per run, so a second run waits for the first one to end instead of
    interleaving its steps with it.
    """

    data_dir: str = Field(description="LENDSEG_DATA_DIR: root of everything the pipeline writes.")
    landing_dir: str = Field(description="LENDSEG_LANDING_DIR: the landing zone, one folder per source.")
    warehouse_path: str = Field(description="LENDSEG_WAREHOUSE_PATH: the published reader-facing DuckDB file.")
    build_path: str = Field(description="LENDSEG_BUILD_PATH: the private build database.")
    memory_limit: str = Field(default="4GB", description="LENDSEG_DUCKDB_MEMORY_LIMIT: DuckDB memory_limit.")
    threads: int = Field(default=2, description="LENDSEG_DUCKDB_THREADS: DuckDB threads.")
    quarantine_max_share: float = Field(
        default=0.01,
        description="LENDSEG_QUARANTINE_MAX_SHARE: above this share of bad rows a delivery is rejected whole.",
    )
    publish_keep: int = Field(default=5, description="LENDSEG_PUBLISH_KEEP: published versions kept for rollback.")
    orphan_max_share: float = Field(
        default=0.2,
        description="LENDSEG_ORPHAN_MAX_SHARE: above this share of rows of "
        "unknown clients a bureau/usage delivery is rejected.",
    )
    model_dir: str = Field(
        default="", description="LENDSEG_MODEL_DIR: the segmentation model store (empty: $LENDSEG_DATA_DIR/models)."
    )
    seg_review_confidence: float = Field(
        default=0.1,
        description="LENDSEG_SEG_REVIEW_CONFIDENCE: below this segment confidence a client goes to the review queue.",
    )
    seg_stability_refits: int = Field(
        default=20, description="LENDSEG_SEG_STABILITY_REFITS: clusterboot refits per training."
    )
    seg_silhouette_floor: float = Field(
        default=0.1, description="LENDSEG_SEG_SILHOUETTE_FLOOR: promotion floor of the silhouette."
    )
    seg_min_refits: int = Field(
        default=20, description="LENDSEG_SEG_MIN_REFITS: blocking minimum of clusterboot refits."
    )
    eval_bootstrap: int = Field(
        default=2000, description="LENDSEG_EVAL_BOOTSTRAP: bootstrap resamples of the evaluations."
    )
    engine: str = Field(default="duckdb", description="LENDSEG_ENGINE: duckdb or spark (dbt project and scoring).")
    lake_dir: str = Field(
        default="", description="LENDSEG_LAKE_DIR: the Parquet raw layer Spark reads (empty: $LENDSEG_DATA_DIR/lake)."
    )
    spark_dir: str = Field(
        default="", description="LENDSEG_SPARK_DIR: Spark's warehouse and metastore (empty: next to the build file)."
    )
    spark_memory: str = Field(
        default="4g", description="LENDSEG_SPARK_MEMORY: driver memory of the local Spark session."
    )
    temp_dir: str = Field(default="", description="LENDSEG_DUCKDB_TEMP_DIR: where DuckDB spills (empty: <build>.tmp).")
    max_temp_size: str = Field(
        default="20GB", description="LENDSEG_DUCKDB_MAX_TEMP_SIZE: most disk DuckDB may spill to."
    )
    lock_timeout_s: float = Field(default=6 * 3600, description="Longest wait for another run's writer lock.")

    @classmethod
    def from_env(cls) -> Warehouse:
        s = load_settings()
        return cls(
            data_dir=str(s.data_dir),
            landing_dir=str(s.landing_dir),
            warehouse_path=str(s.warehouse_path),
            build_path=str(s.build_path),
            memory_limit=s.memory_limit,
            threads=s.threads,
            quarantine_max_share=s.quarantine_max_share,
            publish_keep=s.publish_keep,
            orphan_max_share=s.orphan_max_share,
            model_dir=str(s.models_dir),
            seg_review_confidence=s.seg_review_confidence,
            seg_stability_refits=s.seg_stability_refits,
            seg_silhouette_floor=s.seg_silhouette_floor,
            seg_min_refits=s.seg_min_refits,
            eval_bootstrap=s.eval_bootstrap,
            engine=s.engine,
            lake_dir=str(s.lake_dir),
            spark_dir=str(s.spark_dir),
            spark_memory=s.spark_memory,
            temp_dir=str(s.temp_dir),
            max_temp_size=s.max_temp_size,
        )

    @property
    def settings(self) -> Settings:
        from pathlib import Path

        return Settings(
            data_dir=Path(self.data_dir),
            landing_dir=Path(self.landing_dir),
            warehouse_path=Path(self.warehouse_path),
            build_path=Path(self.build_path),
            memory_limit=self.memory_limit,
            threads=self.threads,
            quarantine_max_share=self.quarantine_max_share,
            publish_keep=self.publish_keep,
            orphan_max_share=self.orphan_max_share,
            model_dir=Path(self.model_dir) if self.model_dir else None,
            seg_review_confidence=self.seg_review_confidence,
            seg_stability_refits=self.seg_stability_refits,
            seg_silhouette_floor=self.seg_silhouette_floor,
            seg_min_refits=self.seg_min_refits,
            eval_bootstrap=self.eval_bootstrap,
            engine=self.engine,
            lake_path=Path(self.lake_dir) if self.lake_dir else None,
            spark_path=Path(self.spark_dir) if self.spark_dir else None,
            spark_memory=self.spark_memory,
            temp_path=Path(self.temp_dir) if self.temp_dir else None,
            max_temp_size=self.max_temp_size,
        )

    @property
    def pii_key(self) -> str:
        """The pseudonymisation key (never logged); raises ConfigError when absent outside demo mode."""
        return pii_key()

    @property
    def key_id(self) -> str:
        return key_id_for(self.pii_key)

    @contextlib.contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[Warehouse]:
        s = self.settings
        s.ensure_dirs()
        log = context.log
        with writer_lock(s.lock_path, self.lock_timeout_s, on_wait=log.info if log else None):
            if log:
                log.info(f"holding the build-database writer lock {s.lock_path}")
            yield self
