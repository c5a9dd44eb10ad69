"""Settings read from ``LENDSEG_*`` environment variables, each with a documented default.

Every path the pipeline writes lives under ``LENDSEG_DATA_DIR`` unless its own variable says otherwise.
The README's configuration table lists the same variables; keep the two in step.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"

# A fixed, public key for the built-in demo data only. Never use it on real deliveries.
DEMO_PII_KEY = "lendseg-demo-key-not-for-production"

# (variable, default, description) - rendered into the README table by hand; tests check they agree.
VARIABLES: list[tuple[str, str, str]] = [
    (
        "LENDSEG_DATA_DIR",
        "data",
        "Root of everything the pipeline writes (relative paths are taken from the current directory).",
    ),
    (
        "LENDSEG_LANDING_DIR",
        "$LENDSEG_DATA_DIR/landing",
        "Landing zone: one folder per source with the delivered files.",
    ),
    ("LENDSEG_WAREHOUSE_PATH", "$LENDSEG_DATA_DIR/warehouse.duckdb", "The published, reader-facing DuckDB file."),
    (
        "LENDSEG_BUILD_PATH",
        "$LENDSEG_DATA_DIR/build/build.duckdb",
        "The private build database only pipeline runs write.",
    ),
    (
        "LENDSEG_PII_KEY",
        "(none: required)",
        "Secret key for HMAC-SHA256 pseudonyms of client and account ids. Never logged or stored.",
    ),
    (
        "LENDSEG_DEMO",
        "0",
        "Set to 1 to run on the public demo key when LENDSEG_PII_KEY is unset (demo data only; logs a warning).",
    ),
    (
        "LENDSEG_QUARANTINE_MAX_SHARE",
        "0.01",
        "Largest share of a delivery's rows that may be quarantined; above it the file is rejected whole.",
    ),
    (
        "LENDSEG_ORPHAN_MAX_SHARE",
        "0.2",
        "Largest share of a bureau or usage delivery's rows whose client is unknown; above it the file is rejected "
        "as a likely mix-up.",
    ),
    ("LENDSEG_PUBLISH_KEEP", "5", "How many published versions are kept for rollback."),
    ("LENDSEG_DUCKDB_MEMORY_LIMIT", "4GB", "DuckDB memory_limit for pipeline connections."),
    ("LENDSEG_DUCKDB_THREADS", "2", "DuckDB threads for pipeline connections."),
    (
        "LENDSEG_DUCKDB_TEMP_DIR",
        "$LENDSEG_BUILD_PATH.tmp",
        "Where DuckDB spills what does not fit in its memory limit (pipeline connections and dbt).",
    ),
    (
        "LENDSEG_DUCKDB_MAX_TEMP_SIZE",
        "20GB",
        "Most disk DuckDB may spill to; a step that needs more fails with one line naming this setting, and "
        "nothing published changes.",
    ),
    ("LENDSEG_TIMEZONE", "Asia/Shanghai", "Time zone (IANA name) of the schedules' cron strings."),
    ("LENDSEG_DAILY_CRON", "0 6 * * *", "When daily_refresh runs (five-field cron)."),
    ("LENDSEG_MONTHLY_CRON", "0 8 1 * *", "When monthly_retrain runs (five-field cron)."),
    ("LENDSEG_AUTOMATION", "on", "off: schedules and sensors start STOPPED and fire only when started by hand."),
    (
        "LENDSEG_STALE_AFTER_HOURS",
        "36",
        "published_warehouse counts as stale (freshness failing) after this many hours.",
    ),
    (
        "LENDSEG_LANDING_SETTLE_S",
        "30",
        "A landing file must be unchanged this long before the landing sensor takes it.",
    ),
    ("LENDSEG_LANDING_SENSOR_INTERVAL_S", "60", "How often the landing sensor looks for new files."),
    (
        "LENDSEG_MODEL_DIR",
        "$LENDSEG_DATA_DIR/models",
        "Segmentation model store: every model version, the registry and the segment catalog.",
    ),
    (
        "LENDSEG_SEG_REVIEW_CONFIDENCE",
        "0.1",
        "Clients scored with a segment confidence below this go to the review queue.",
    ),
    (
        "LENDSEG_SEG_STABILITY_REFITS",
        "20",
        "clusterboot subsample refits per training (at least LENDSEG_SEG_MIN_REFITS).",
    ),
    (
        "LENDSEG_SEG_MIN_REFITS",
        "20",
        "Blocking: a trained model's clusterboot needs at least this many refits. Keep 20; tests lower it to train "
        "fast.",
    ),
    (
        "LENDSEG_SEG_SILHOUETTE_FLOOR",
        "0.1",
        "Promotion floor of the silhouette of a trained segmentation model (a failing first model publishes "
        "rule-based segments).",
    ),
    (
        "LENDSEG_SEG_SEED",
        "20240601",
        "Seed of the segmentation's k-means fits and refits (model.SEED). Keep it; `lendseg evaluate --perturb` "
        "varies it to measure how the model moves.",
    ),
    (
        "LENDSEG_SEG_SAMPLE_SALT",
        "lendseg-training-sample-v1",
        "Salt of the key-free training sample (above 5,000 scorable clients). Keep it; `lendseg evaluate "
        "--perturb` varies it.",
    ),
    (
        "LENDSEG_ENGINE",
        "duckdb",
        "Engine of the dbt project and of scoring: duckdb (one machine) or spark (dbt-spark and a Spark session; "
        "docs/scale_out.md).",
    ),
    (
        "LENDSEG_LAKE_DIR",
        "$LENDSEG_DATA_DIR/lake",
        "Spark engine: the Parquet raw layer (validated, pseudonymised) and model tables Spark reads.",
    ),
    (
        "LENDSEG_SPARK_DIR",
        "$LENDSEG_DATA_DIR/build/spark",
        "Spark engine: the session's warehouse (tables as Parquet) and its metastore.",
    ),
    (
        "LENDSEG_SPARK_MEMORY",
        "4g",
        "Spark engine: driver memory of the local Spark session (dbt and scoring; local mode runs in the driver).",
    ),
    (
        "LENDSEG_EVAL_BOOTSTRAP",
        "2000",
        "Bootstrap resamples behind the recommendation evaluation's 95 % intervals. Keep 2000; tests lower it.",
    ),
    ("DAGSTER_HOME", "$PWD/.dagster_home", "Dagster instance folder (run history); the README's commands create it."),
]


class ConfigError(RuntimeError):
    """Raised when the environment does not allow the pipeline to run."""


DEFAULTS: dict[str, str] = {var: default for var, default, _ in VARIABLES}


def env_value(var: str) -> str:
    """The value of a ``LENDSEG_*`` variable, else its documented default (VARIABLES): the one reader of them."""
    return os.environ.get(var, "").strip() or DEFAULTS[var]


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default.resolve()


def key_id_for(key: str) -> str:
    """A non-reversible identifier of a PII key, safe to store: first 16 hex of SHA-256 over a label + key."""
    return hashlib.sha256(b"lendseg-key-id\x00" + key.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    landing_dir: Path
    warehouse_path: Path
    build_path: Path
    memory_limit: str
    threads: int
    quarantine_max_share: float = 0.01
    publish_keep: int = 5
    orphan_max_share: float = 0.2
    model_dir: Path | None = None  # None: $LENDSEG_DATA_DIR/models
    seg_review_confidence: float = 0.1
    seg_stability_refits: int = 20
    seg_silhouette_floor: float = 0.1
    seg_min_refits: int = 20
    eval_bootstrap: int = 2000
    engine: str = "duckdb"
    lake_path: Path | None = None  # None: $LENDSEG_DATA_DIR/lake
    spark_path: Path | None = None  # None: next to the build file, build/spark
    spark_memory: str = "4g"
    temp_path: Path | None = None  # None: next to the build file, <build>.tmp (DuckDB's own default)
    max_temp_size: str = "20GB"

    @property
    def temp_dir(self) -> Path:
        """Where DuckDB spills (LENDSEG_DUCKDB_TEMP_DIR)."""
        return self.temp_path or Path(f"{self.build_path}.tmp")

    @property
    def lake_dir(self) -> Path:
        """The Parquet raw layer both engines can read (LENDSEG_LAKE_DIR; written only by the Spark engine)."""
        return self.lake_path or self.data_dir / "lake"

    @property
    def spark_dir(self) -> Path:
        """The Spark session's warehouse and metastore (LENDSEG_SPARK_DIR)."""
        return self.spark_path or self.build_path.parent / "spark"

    @property
    def models_dir(self) -> Path:
        """The segmentation model store (LENDSEG_MODEL_DIR)."""
        return self.model_dir or self.data_dir / "models"

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "build" / "writer.lock"

    @property
    def versions_dir(self) -> Path:
        return self.warehouse_path.parent / "published_versions"

    @property
    def rejected_dir(self) -> Path:
        return self.data_dir / "rejected"

    @property
    def remedies_dir(self) -> Path:
        """Rows implicated in a run's later-stage failure, one JSON per run (``lendseg quarantine --run``)."""
        return self.data_dir / "remedies"

    def ensure_dirs(self) -> None:
        for d in (self.data_dir, self.landing_dir, self.build_path.parent, self.warehouse_path.parent):
            d.mkdir(parents=True, exist_ok=True)


ENGINES = ("duckdb", "spark")


def engine(value: str) -> str:
    """A valid LENDSEG_ENGINE value (lower-cased), else a ValueError naming the choices."""
    v = value.strip().lower()
    if v not in ENGINES:
        raise ValueError(f"LENDSEG_ENGINE={value!r}: expected one of {', '.join(ENGINES)}")
    return v


def load_settings() -> Settings:
    data_dir = _path("LENDSEG_DATA_DIR", Path("data"))
    return Settings(
        data_dir=data_dir,
        landing_dir=_path("LENDSEG_LANDING_DIR", data_dir / "landing"),
        warehouse_path=_path("LENDSEG_WAREHOUSE_PATH", data_dir / "warehouse.duckdb"),
        build_path=_path("LENDSEG_BUILD_PATH", data_dir / "build" / "build.duckdb"),
        memory_limit=env_value("LENDSEG_DUCKDB_MEMORY_LIMIT"),
        threads=int(env_value("LENDSEG_DUCKDB_THREADS")),
        quarantine_max_share=float(env_value("LENDSEG_QUARANTINE_MAX_SHARE")),
        publish_keep=int(env_value("LENDSEG_PUBLISH_KEEP")),
        orphan_max_share=float(env_value("LENDSEG_ORPHAN_MAX_SHARE")),
        model_dir=_path("LENDSEG_MODEL_DIR", data_dir / "models"),
        seg_review_confidence=float(env_value("LENDSEG_SEG_REVIEW_CONFIDENCE")),
        seg_stability_refits=max(
            int(env_value("LENDSEG_SEG_MIN_REFITS")), int(env_value("LENDSEG_SEG_STABILITY_REFITS"))
        ),
        seg_silhouette_floor=float(env_value("LENDSEG_SEG_SILHOUETTE_FLOOR")),
        seg_min_refits=int(env_value("LENDSEG_SEG_MIN_REFITS")),
        eval_bootstrap=int(env_value("LENDSEG_EVAL_BOOTSTRAP")),
        engine=engine(env_value("LENDSEG_ENGINE")),
        lake_path=_path("LENDSEG_LAKE_DIR", data_dir / "lake"),
        spark_memory=env_value("LENDSEG_SPARK_MEMORY"),
        spark_path=_path("LENDSEG_SPARK_DIR", Path()) if os.environ.get("LENDSEG_SPARK_DIR") else None,
        temp_path=_path("LENDSEG_DUCKDB_TEMP_DIR", Path()) if os.environ.get("LENDSEG_DUCKDB_TEMP_DIR") else None,
        max_temp_size=env_value("LENDSEG_DUCKDB_MAX_TEMP_SIZE"),
    )


def demo_mode() -> bool:
    return env_value("LENDSEG_DEMO").lower() in {"1", "true", "yes"}


# Operations: read when the code location loads (schedules, sensors, freshness policy).


def automation_enabled() -> bool:
    """False when ``LENDSEG_AUTOMATION`` is off/0/false/no: nothing starts on its own."""
    return env_value("LENDSEG_AUTOMATION").lower() not in {"off", "0", "false", "no"}


def stale_after_hours() -> float:
    return float(env_value("LENDSEG_STALE_AFTER_HOURS"))


def landing_settle_s() -> float:
    return float(env_value("LENDSEG_LANDING_SETTLE_S"))


def landing_sensor_interval_s() -> int:
    return int(env_value("LENDSEG_LANDING_SENSOR_INTERVAL_S"))


def pii_key() -> str:
    """The pseudonymisation key, or a ConfigError explaining how to provide one."""
    key = os.environ.get("LENDSEG_PII_KEY", "")
    if key:
        return key
    if demo_mode():
        warnings.warn(
            "LENDSEG_PII_KEY is not set: running in DEMO mode with the public demo key. "
            "Pseudonyms are NOT secret; use this only on the generated demo data.",
            stacklevel=2,
        )
        return DEMO_PII_KEY
    raise ConfigError(
        "LENDSEG_PII_KEY is not set. Set it to the bank's secret pseudonymisation key, "
        "or set LENDSEG_DEMO=1 to run on the built-in demo data with the public demo key."
    )
