"""Stopping a run: the worker thread keeps the main thread free for signals; children and temp files found."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dagster_project.lib import stop
from dagster_project.lib.settings import load_settings


def test_a_stop_signal_reaches_on_stop_while_the_work_is_busy() -> None:
    seen: list[int] = []
    release = threading.Event()

    def busy() -> str:
        release.wait(20)  # a long step: the main thread must still answer the signal
        return "finished"

    def on_stop(signum: int) -> None:
        seen.append(signum)
        release.set()  # a real on_stop exits the process; here the work is let go instead

    before = signal.getsignal(signal.SIGTERM)
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    t = time.monotonic()
    assert stop.run_stoppable(busy, on_stop) == "finished"
    assert seen == [signal.SIGTERM] and time.monotonic() - t < 5
    assert signal.getsignal(signal.SIGTERM) == before  # the caller's handler is back


def test_errors_of_the_work_are_raised_in_the_caller() -> None:
    def fails() -> None:
        raise ValueError("step failed")

    with pytest.raises(ValueError, match="step failed"):
        stop.run_stoppable(fails, lambda _s: None)


def test_descendants_are_found_and_ended() -> None:
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)",
        ]
    )
    try:
        deadline = time.monotonic() + 20
        while not stop.descendants(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        kids = stop.descendants(os.getpid())  # this process may have other children (another test's)
        assert parent.pid in kids and len(stop.descendants(parent.pid)) == 1
        assert set(stop.descendants(parent.pid)) <= set(kids)
        grandchild = stop.descendants(parent.pid)[0]
        stop.end_processes([parent.pid, grandchild], grace_s=5)
        parent.wait(10)
        assert not stop._alive(grandchild)
    finally:
        parent.kill()


def test_leftovers_are_a_stopped_runs_temp_files_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LENDSEG_DATA_DIR", str(tmp_path / "data"))
    for var in ("LENDSEG_WAREHOUSE_PATH", "LENDSEG_BUILD_PATH"):
        monkeypatch.delenv(var, raising=False)
    s = load_settings()
    versions = s.warehouse_path.parent / "published_versions"
    staging = s.build_path.parent / "staging"
    spill = s.build_path.with_name(s.build_path.name + ".tmp")
    for d in (versions, staging, spill):
        d.mkdir(parents=True)
    kept = [versions / "warehouse-v3.duckdb", s.build_path, s.warehouse_path, staging / "notes.txt"]
    gone = [
        versions / ".warehouse-v4.duckdb.writing",
        staging / "product_usage_b0.duckdb",
        staging / "product_usage_b0.duckdb.wal",
        spill / "duckdb_temp_storage-0.tmp",
    ]
    for p in kept + gone:
        p.write_text("x")
    found = stop.leftovers(s)
    assert set(found) == set(gone[:3]) | {spill}
    stop.remove(found)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in gone) and not spill.exists()
