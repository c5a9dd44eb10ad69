"""The private build database: connections and the one-writer-at-a-time lock.

DuckDB allows one writing process per file. Every run that writes the build database holds an
exclusive ``flock`` on ``$LENDSEG_DATA_DIR/build/writer.lock`` for the whole run (see
``resources.WriterLock``), so the steps of two runs never interleave. The kernel releases a flock when
its process dies, so a killed run needs no clean-up.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from dagster_project.lib.settings import Settings

log = logging.getLogger(__name__)


class SpillLimitError(RuntimeError):
    """A step needed more spill space than LENDSEG_DUCKDB_MAX_TEMP_SIZE allows."""


def spill_limit_message(settings: Settings, error: BaseException | str) -> str | None:
    """One line for a DuckDB error (or its text) that hit the spill limit (max_temp_directory_size), else None."""
    text = str(error)
    if "max_temp_directory_size" not in text:
        return None
    return (
        f"DuckDB needed more than LENDSEG_DUCKDB_MAX_TEMP_SIZE={settings.max_temp_size} of spill space in "
        f"{settings.temp_dir}: raise the setting or free disk there (nothing published changed)"
    )


def dbt_spill_message(settings: Settings, run_results: dict) -> str | None:
    """One line when a node of a ``dbt build`` (its run_results.json) failed for lack of spill space, else None.

    dbt reports such a model as an error whose message is DuckDB's several-line out-of-memory text; the line names
    the node and the setting instead, like :class:`SpillLimitError` does for the pipeline's own connections.
    """
    for result in run_results.get("results", []):
        message = spill_limit_message(settings, str(result.get("message") or ""))
        if result.get("status") == "error" and message:
            kind, _, rest = str(result.get("unique_id", "")).partition(".")
            name = rest.partition(".")[2] or rest
            return f"dbt {kind} {name}: {message}"
    return None


def duckdb_config(settings: Settings) -> dict[str, str | int]:
    """Memory, threads and the spill limit of every pipeline connection (dbt's profile reads the same settings)."""
    return {
        "memory_limit": settings.memory_limit,
        "threads": settings.threads,
        "temp_directory": str(settings.temp_dir),
        "max_temp_directory_size": settings.max_temp_size,
    }


@contextmanager
def connect(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the build database with the configured memory and spill limits; always closed on exit.

    A statement that would spill more than LENDSEG_DUCKDB_MAX_TEMP_SIZE fails with :class:`SpillLimitError`, one
    line naming the setting; the build's transaction is rolled back and nothing published changes.
    """
    settings.build_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.build_path), read_only=read_only, config=duckdb_config(settings))
    try:
        yield con
    except duckdb.Error as e:
        message = spill_limit_message(settings, e)
        if message:
            raise SpillLimitError(message) from None
        raise
    finally:
        con.close()


class LockTimeout(RuntimeError):
    pass


@contextmanager
def writer_lock(
    lock_path: Path,
    timeout_s: float = 6 * 3600,
    on_wait: Callable[[str], None] | None = None,
    poll_s: float = 0.5,
) -> Iterator[None]:
    """Hold an exclusive, process-owned lock on ``lock_path``; wait (reporting every 10 s) until free."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    start = time.monotonic()
    last_report = 0.0
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                if waited > timeout_s:
                    raise LockTimeout(f"another run has held {lock_path} for over {timeout_s:.0f} s") from None
                if on_wait and waited - last_report >= 10:
                    last_report = waited
                    on_wait(f"waiting for the build-database writer lock ({waited:.0f} s): another run is writing")
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid={os.getpid()}\n".encode())
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
