"""A small scratch warehouse for the property tests: ingestion without Dagster, then one plain ``dbt build``.

The dbt build skips the segment marts (they read the model's ``ml`` tables, which only the Dagster job writes).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.landing import DeliveryRejected, ensure_raw_schema, pending_deliveries
from dagster_project.defs.ingest.loading import Context, LoadOutcome, ingest_delivery, release_held
from dagster_project.defs.transform.assets import DBT_EXECUTABLE
from dagster_project.lib import audit
from dagster_project.lib.settings import DBT_PROJECT_DIR

KEY = "property-test-key"
TODAY = date(2026, 11, 26)
DBT_EXCLUDE = "path:models/marts/segments"


@dataclass
class Scratch:
    root: Path
    max_share: float = 0.01
    rejected_files: set[str] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.landing = self.root / "landing"
        self.build = self.root / "build" / "build.duckdb"
        self.build.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(self.build))
        ensure_raw_schema(self.con)
        self._ctx: Context | None = None

    def ctx(self) -> Context:
        """One context for the whole session: its GX suites are built once per source."""
        if self._ctx is None:
            self._ctx = self._new_ctx()
        return self._ctx

    def _new_ctx(self) -> Context:
        return Context(
            key=KEY,
            run_id="prop",
            asset="raw",
            audit_dir=self.root / "audit",
            rejected_dir=self.root / "rejected",
            max_share=self.max_share,
            today=TODAY,
            staging_dir=self.root / "staging",
        )

    def write(self, source: str, name: str, data: bytes) -> Path:
        p = self.landing / source / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    def ingest(self, source: str) -> dict[str, LoadOutcome | DeliveryRejected]:
        """Ingest pending deliveries of a source: {file name: outcome or the rejection}. Other errors propagate."""
        ctx = self.ctx()
        out: dict[str, LoadOutcome | DeliveryRejected] = {}
        try:
            if source != "clients":
                release_held(self.con, source)
            todo, _ = pending_deliveries(
                self.con, source, self.landing, audit.rejected_checksums(ctx.audit_dir, source)
            )
            for d in todo:
                try:
                    res = ingest_delivery(self.con, d, ctx)
                    self.messages += res.warnings
                    out[d.path.name] = res
                except DeliveryRejected as e:
                    self.rejected_files.add(d.path.name)
                    self.messages.append(str(e))
                    out[d.path.name] = e
        except BaseException:
            self.close_ctx()
            raise
        return out

    def close_ctx(self) -> None:
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    def close(self) -> None:
        self.close_ctx()
        self.con.close()

    def dbt_build(
        self, *extra: str, project_dir: Path = DBT_PROJECT_DIR, command: str = "build"
    ) -> tuple[int, dict, str]:
        """``dbt build`` (or ``command``) on the scratch build database: (exit code, run_results.json, output tail)."""
        self.close_ctx()
        self.con.close()
        target = self.root / "dbt_target"
        env = {
            **os.environ,
            "LENDSEG_BUILD_PATH": str(self.build),
            "LENDSEG_DUCKDB_THREADS": "2",
            "LENDSEG_DUCKDB_MEMORY_LIMIT": "2GB",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        proc = subprocess.run(
            [
                DBT_EXECUTABLE,
                command,
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(project_dir),
                "--target-path",
                str(target),
                "--exclude",
                DBT_EXCLUDE,
                *extra,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=project_dir,
        )
        self.con = duckdb.connect(str(self.build))
        results = (
            json.loads((target / "run_results.json").read_text()) if (target / "run_results.json").exists() else {}
        )
        return proc.returncode, results, proc.stdout[-4000:]

    def manifest(self) -> dict:
        return json.loads((self.root / "dbt_target" / "manifest.json").read_text())


def base_warehouse(root: Path, clients: int = 120, months: int = 3) -> Scratch:
    """Generated demo deliveries, ingested: the good warehouse every bad delivery is dropped into."""
    from dagster_project.tools.demo.generate import generate

    sc = Scratch(root)
    generate(
        out_dir=sc.landing,
        n_clients=clients,
        months=months,
        seed=7,
        fmt="csv",
        truth_path=root / "truth.csv",
        end_month=date(2026, 10, 1),
        progress=False,
    )
    for source in ("clients", "credit_bureau", "product_usage"):
        bad = {k: v for k, v in sc.ingest(source).items() if isinstance(v, DeliveryRejected)}
        assert not bad, bad
    return sc
