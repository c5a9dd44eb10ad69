"""The Dagster instance configuration: ``$DAGSTER_HOME/dagster.yaml``, written once if absent.

What it sets:

* a run queue (the queued run coordinator, dequeued by the daemon that ``dagster dev`` /
  ``dagster-daemon run`` start) that lets only ONE run tagged ``lendseg/writer=build`` (every writing job)
  be in progress at a time; the others wait in the queue, so they do not even start and wait on the
  writer lock. Runs that bypass the queue (``lendseg run``) still wait on the writer lock;
* telemetry off.

An existing ``dagster.yaml`` is never overwritten: edit it freely. Create it before ``dagster dev`` with
``python -m dagster_project.defs.operations.instance`` (``lendseg run`` does it too, via ``ensure_instance``, which also
creates the instance's storages under a lock so that concurrent first runs do not collide).
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from dagster_project.defs.operations.jobs import WRITER_TAG_KEY, WRITER_TAG_VALUE

MAX_CONCURRENT_RUNS = 4  # non-writing runs (none yet) may run beside the single writer

DAGSTER_YAML = f"""\
# Written by lendseg (dagster_project/instance.py) because no dagster.yaml existed. Never overwritten.
telemetry:
  enabled: false

# One writer at a time: every writing job carries the run tag {WRITER_TAG_KEY}={WRITER_TAG_VALUE}. The run queue
# (dequeued by the daemon of `dagster dev` / `dagster-daemon run`) starts at most one such run at a time.
concurrency:
  runs:
    max_concurrent_runs: {MAX_CONCURRENT_RUNS}
    tag_concurrency_limits:
      - key: "{WRITER_TAG_KEY}"
        value: "{WRITER_TAG_VALUE}"
        limit: 1
"""


def ensure_dagster_yaml(home: Path | str) -> Path:
    """Write ``home/dagster.yaml`` when absent (atomically, so a concurrent writer cannot leave half a file)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if path.exists():
        return path
    tmp = home / f".dagster.yaml.{os.getpid()}.tmp"
    tmp.write_text(DAGSTER_YAML, encoding="utf-8")
    try:
        os.link(tmp, path)  # fails if another process created it first: theirs wins, same content
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path


# SQLite storages of the default instance; created (and migrated) when an instance first opens the folder.
STORAGE_FILES = ("history/runs.db", "history/runs/index.db", "schedules/schedules.db")


def ensure_instance(home: Path | str) -> Path:
    """``dagster.yaml`` (if absent) plus the instance's storages, created by one process at a time.

    Two ``lendseg run`` started at the same moment on a new DAGSTER_HOME would otherwise both create the
    SQLite storages and collide in their schema migrations ("table alembic_version already exists").
    """
    home = Path(home)
    path = ensure_dagster_yaml(home)
    if all((home / f).exists() for f in STORAGE_FILES):
        return path
    with open(home / ".lendseg-init.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all((home / f).exists() for f in STORAGE_FILES):
            import dagster as dg

            dg.DagsterInstance.from_config(str(home)).dispose()
    return path


def main() -> int:
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    path = ensure_instance(home)
    print(f"{path} ready; export DAGSTER_HOME={home}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
