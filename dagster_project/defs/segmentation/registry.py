"""The segmentation model store in ``$LENDSEG_MODEL_DIR`` (default ``$LENDSEG_DATA_DIR/models``), never in dbt's hands.

* ``<version>/`` per trained model: ``pipeline.joblib``, ``metadata.json``, ``reference.json`` (training
  distributions for PSI), ``profile.json``, ``k_curve.png``, ``profile.png``. Every version is kept.
* ``registry.jsonl``: append-only status events (challenger, champion, retired, rejected).
* ``catalog.json``: every segment id ever issued with its name, description and status.
* ``run_notes.jsonl``: model notes of runs (bootstrap fallback, rejected challenger) for ``lendseg run``.
"""

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster_project.defs.operations.alerts import alert_dir, build_alert, write_alert
from dagster_project.lib.settings import Settings


def model_dir(settings: Settings) -> Path:
    """The model store (LENDSEG_MODEL_DIR, default $LENDSEG_DATA_DIR/models)."""
    return settings.models_dir


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def registry_events(mdir: Path) -> list[dict]:
    path = mdir / "registry.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def append_event(mdir: Path, version: str, status: str, reason: str, run_id: str) -> None:
    mdir.mkdir(parents=True, exist_ok=True)
    with open(mdir / "registry.jsonl", "a") as f:
        f.write(
            json.dumps(
                {"version": version, "status": status, "at": utc_now().isoformat(), "reason": reason, "run_id": run_id}
            )
            + "\n"
        )
        f.flush()
        os.fsync(f.fileno())


def statuses(mdir: Path) -> dict[str, dict]:
    """Current status event of every version (the last event wins)."""
    out: dict[str, dict] = {}
    for e in registry_events(mdir):
        out[e["version"]] = e
    return out


def champion(mdir: Path) -> str | None:
    champs = [v for v, e in statuses(mdir).items() if e["status"] == "champion"]
    return max(champs) if champs else None


def load_meta(mdir: Path, version: str) -> dict:
    return json.loads((mdir / version / "metadata.json").read_text())


def load_pipeline(mdir: Path, version: str):
    import joblib

    return joblib.load(mdir / version / "pipeline.joblib")


def catalog(mdir: Path) -> dict[int, dict]:
    path = mdir / "catalog.json"
    return {int(k): v for k, v in json.loads(path.read_text()).items()} if path.exists() else {}


def next_version(mdir: Path) -> str:
    nums = [int(p.name[1:]) for p in mdir.glob("m[0-9][0-9][0-9][0-9]*") if p.is_dir() and p.name[1:].isdigit()]
    return f"m{(max(nums) + 1) if nums else 1:04d}"


def run_notes(settings: Settings, run_id: str) -> list[str]:
    """Model notes of one run (bootstrap fallback, rejected challenger), for the `lendseg run` output."""
    path = model_dir(settings) / "run_notes.jsonl"
    if not path.exists():
        return []
    return [e["note"] for e in map(json.loads, path.read_text().splitlines()) if e.get("run_id") == run_id]


def report_model_failure(settings: Settings, run_id: str, job_name: str, note: str) -> None:
    """A failed model check that did not stop the run: run note (CLI output) + pipeline alert (WARNING)."""
    mdir = model_dir(settings)
    mdir.mkdir(parents=True, exist_ok=True)
    with open(mdir / "run_notes.jsonl", "a") as f:
        f.write(json.dumps({"run_id": run_id, "at": utc_now().isoformat(), "note": note}) + "\n")
    record = build_alert(job_name or "?", run_id, ["segmentation_model"], "", severity="WARNING")
    record["error_summary"] = note if len(note) <= 300 else note[:297] + "..."  # model figures only, no client data
    write_alert(record, alert_dir(settings.data_dir))
