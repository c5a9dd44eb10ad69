"""Stopping a run cleanly on SIGINT / SIGTERM, whatever step it is in.

Dagster defers an interrupt until the running step yields an event, so a long step (a model fit, a dbt
build, a neighbour search) used to ignore SIGTERM until it ended. ``lendseg run`` therefore executes the job
in a worker thread and keeps the main thread free for signals (:func:`run_stoppable`). On a stop signal it
ends the run's child processes (dbt), records the run as canceled, removes the temp files a run that never
finished leaves behind (:func:`leftovers`) and exits. The build database needs nothing more: a DuckDB
transaction that never committed is rolled back when the file is next opened (the SIGKILL tests hold this),
the writer lock is an ``flock`` the kernel releases with the process, and publishing swaps a finished file in
atomically, so nothing half-written is ever published.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster_project.lib.settings import Settings

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children.get(p, [])
    return out


def end_processes(pids: list[int], grace_s: float = 5.0, kill_wait_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL what is still alive after ``grace_s``, then wait (up to ``kill_wait_s``) until the killed
    are gone: a SIGKILL is delivered asynchronously, and on a busy machine a killed process can still be running for a
    moment - "ended" means no longer running when this returns."""
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _alive(p)]
    for p in alive:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + kill_wait_s
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def leftovers(s: Settings) -> list[Path]:
    """Temp files and folders of a run that did not finish: publish's ``.*.writing`` files, staged deliveries,
    DuckDB's spill folder beside the build database."""
    out: list[Path] = []
    for folder in (s.warehouse_path.parent / "published_versions", s.warehouse_path.parent):
        if folder.exists():
            out += sorted(folder.glob(".*.writing*"))
    staging = s.build_path.parent / "staging"
    if staging.exists():
        out += sorted(p for p in staging.iterdir() if p.suffix in (".duckdb", ".wal") or p.name.endswith(".duckdb.wal"))
    spill = s.build_path.with_name(s.build_path.name + ".tmp")
    if spill.exists():
        out.append(spill)
    return out


def remove(paths: list[Path]) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def run_stoppable(execute: Callable[[], Any], on_stop: Callable[[int], None]) -> Any:
    """``execute()`` in a worker thread; ``on_stop(signum)`` runs in the main thread when a stop signal comes.

    ``on_stop`` is expected to end the process (``os._exit``); if it returns, the run goes on.
    """
    box: dict[str, Any] = {}
    received: list[int] = []

    def work() -> None:
        try:
            box["value"] = execute()
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            box["error"] = e

    previous = {sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in STOP_SIGNALS}
    worker = threading.Thread(target=work, name="lendseg-run", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
            if received:
                on_stop(received.pop(0))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if "error" in box:
        raise box["error"]
    return box["value"]


def stop_run(signum: int, instance, run_id: str, s: Settings, err=None) -> None:  # noqa: ANN001
    """A stop signal during ``lendseg run``: end dbt, record the run canceled, remove its temp files, exit."""
    import dagster as dg

    name = signal.Signals(signum).name
    err = err or sys.__stderr__
    print(f"\nlendseg run: {name} received - stopping run {run_id}", file=err, flush=True)
    published = False
    try:
        published = any(
            e.step_key == "published_warehouse"
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_SUCCESS)
        )
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_run_canceled(run, message=f"stopped by {name}")
    except Exception as e:  # noqa: BLE001 - stopping must not fail on the run history
        print(f"lendseg run: could not record the run as canceled: {e}", file=err, flush=True)
    # from here on the run's own thread records nothing (e.g. the failure of a dbt step it sees when dbt ends)
    instance.handle_new_event = lambda *_args, **_kwargs: None
    end_processes(descendants(os.getpid()))
    remove(leftovers(s))
    what = (
        "it had published the warehouse before the stop"
        if published
        else "nothing of it was published, the published warehouse is as it was"
    )
    print(f"run {run_id} STOPPED ({name}): {what}; the writer lock is released.", file=err, flush=True)
    os._exit(128 + signum)
