"""Shared fixtures: a generated demo delivery set and a helper that runs the real CLI in a temp data dir."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

LENDSEG = str(Path(sys.executable).parent / "lendseg")

# Settings that only buy precision, lowered for test runs (production defaults and the blocking rule are
# unchanged: tests/unit/lib/test_settings.py). A test that needs the production value passes it to lendseg().
TEST_SETTINGS = {"LENDSEG_SEG_MIN_REFITS": "5", "LENDSEG_SEG_STABILITY_REFITS": "5", "LENDSEG_EVAL_BOOTSTRAP": "200"}


@dataclass
class Workspace:
    root: Path
    first_run: subprocess.CompletedProcess | None = None  # published_ws: the run that built it

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def landing(self) -> Path:
        return self.data / "landing"

    @property
    def warehouse(self) -> Path:
        return self.data / "warehouse.duckdb"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LENDSEG_", "DAGSTER_HOME"))}
        env |= {
            "LENDSEG_DATA_DIR": str(self.data),
            "DAGSTER_HOME": str(self.root / "dagster_home"),
            "LENDSEG_DUCKDB_MEMORY_LIMIT": "2GB",
            **TEST_SETTINGS,
        }
        return env | extra

    def lendseg(self, *args: str, check: bool = True, timeout: int = 600, **env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [LENDSEG, *args], cwd=self.root, env=self.env(**env), capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"lendseg {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
            )
        return proc


def make_workspace(root: Path, clients: int = 400, months: int = 12, seed: int = 11) -> Workspace:
    from dagster_project.tools.demo.generate import generate

    ws = Workspace(root)
    generate(
        out_dir=ws.landing,
        n_clients=clients,
        months=months,
        seed=seed,
        fmt="csv",
        truth_path=ws.data / "ground_truth" / "archetypes.csv",
        end_month=date(2026, 10, 1),
        progress=False,
    )
    return ws


CATALOGUE_SNAPSHOT = Path(__file__).parent / "snapshots" / "published_catalogue.csv"


def published_catalogue(path: Path) -> list[tuple[str, str, str, str]]:
    """(schema, table, column, type) of every published column, in table and column order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND NOT internal "
            "ORDER BY 1, 2, column_index"
        ).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="session")
def published_ws(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Workspace:
    """READ ONLY: a small generated delivery set, run once through daily_refresh with the demo key.

    Shared by every test that only reads the result (published file, run output, event log), across pytest-xdist
    workers too: the first worker to need it builds it under a file lock, the others wait and reuse it. A test
    that runs the pipeline again, adds deliveries or otherwise writes takes a copy (``demo_ws``, ``copy_workspace``).
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    root = (base.parent if worker_id != "master" else base) / "published_ws"
    record = root / "first_run.json"
    with FileLock(f"{root}.lock"):
        if not record.exists():
            shutil.rmtree(root, ignore_errors=True)  # a worker that failed half-way leaves nothing to reuse
            ws = make_workspace(root)
            run = ws.lendseg("run", "--demo", timeout=900)
            record.write_text(
                json.dumps({"args": run.args, "returncode": run.returncode, "stdout": run.stdout, "stderr": run.stderr})
            )
    ws = Workspace(root)
    ws.first_run = subprocess.CompletedProcess(**json.loads(record.read_text()))
    return ws


def copy_workspace(ws: Workspace, dest: Path) -> Workspace:
    """A private copy of ``ws`` at ``dest`` (cp -a keeps hard links: the published file stays its version file)."""
    subprocess.run(["cp", "-a", str(ws.root), str(dest)], check=True)
    return Workspace(dest)


@pytest.fixture(scope="module")
def demo_ws(published_ws: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A module's own copy of the published workspace, for tests that run the pipeline again or change files."""
    return copy_workspace(published_ws, tmp_path_factory.mktemp("e2e") / "ws")


# Seconds each whole-run module costs (setup + calls; the CI log of b211d0b, 2 workers, 2026-12-07, with issue 36's
# cuts). Longest first: with ``--dist loadfile`` a worker takes the next module in collection order when it is
# nearly done, so the long modules start early, the short ones fill in and the two workers end together. A module
# not listed counts as LISTED_DEFAULT_S. Keep it roughly true: a wrong figure costs wall time, never a result.
# Issue 36 (second round): test_publish, test_operations_e2e and test_webserver start from copies of
# ``published_ws`` instead of first loads of their own (publish 5 -> 2 whole runs; operations no first load and
# 4 -> 3 whole runs; webserver a daily run instead of a first load); their figures are CI's scaled by what they cost
# before and after on one loaded machine. ``published_ws`` itself (~50 s) is paid by the first module that asks for
# it: test_e2e.py carries it here, so that it sorts just after the two longest modules and its light first test
# builds the workspace before the heavier modules that copy it (else the build lands in a whole-run test's setup).
E2E_SECONDS = {
    "test_ml_e2e.py": 255,
    "test_spark_engine.py": 255,
    "test_e2e.py": 200,
    "test_ml_fallback.py": 170,
    "test_operations_e2e.py": 150,
    "test_applications_e2e.py": 150,
    "test_publish.py": 135,
    "test_upgrade.py": 135,
    "test_webserver.py": 80,
    "test_evaluate_smoke.py": 70,
    "test_bench_e2e.py": 65,
    "test_readable.py": 40,
    "test_segment_of_record.py": 20,
    "test_dbt_unit_tests.py": 15,
}
LISTED_DEFAULT_S = 60


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Whole pipeline runs (tests/e2e) first, longest module first (E2E_SECONDS), so the two xdist workers
    (``--dist loadfile``) start on the longest modules and the short ones fill in at the end."""

    def cost(item: pytest.Item) -> tuple[bool, float]:
        e2e = "/e2e/" in str(item.path)
        return (not e2e, -E2E_SECONDS.get(item.path.name, LISTED_DEFAULT_S) if e2e else 0.0)

    items.sort(key=cost)  # stable: keeps the order within each module
