"""The landing sensor knows what the delivery ledger already holds: no run for files a headless run loaded."""

import os
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest


def _touch(path: Path, mtime_ns: int, text: str = "client_id\n1\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def _ledger(build: Path, files: list[Path]) -> None:
    from dagster_project.defs.ingest.landing import ensure_raw_schema

    build.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(build))
    ensure_raw_schema(con)
    for f in files:
        st = f.stat()
        con.execute(
            "INSERT INTO raw._deliveries (source, file_name, checksum, file_size, file_mtime_ns) "
            "VALUES (?, ?, 'x', ?, ?)",
            [f.parent.name, f.name, st.st_size, st.st_mtime_ns],
        )
    con.close()


def test_sensor_requests_no_run_for_files_already_in_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.defs.operations.sensors import landing_sensor, parse_cursor
    from dagster_project.lib.warehouse import writer_lock

    data = tmp_path / "data"
    monkeypatch.setenv("LENDSEG_DATA_DIR", str(data))
    for var in ("LENDSEG_LANDING_DIR", "LENDSEG_BUILD_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LENDSEG_LANDING_SETTLE_S", "0")
    old = time.time_ns() - 10**10
    loaded = [data / "landing" / "clients" / "clients_a.csv", data / "landing" / "credit_bureau" / "bureau_a.csv"]
    for f in loaded:
        _touch(f, old)
    _ledger(data / "build" / "build.duckdb", loaded)  # a headless `lendseg run` loaded both before the daemon started

    with dg.instance_for_test() as instance:
        first = landing_sensor(dg.build_sensor_context(instance=instance, cursor=None))
        assert isinstance(first, dg.SensorResult) and not first.run_requests
        assert "already in the delivery ledger" in first.skip_reason.skip_message
        assert set(parse_cursor(first.cursor)) == {"clients/clients_a.csv", "credit_bureau/bureau_a.csv"}

        # a new file, and a re-delivery of a ledgered name with a new mtime, are requested (only those)
        _touch(data / "landing" / "clients" / "clients_b.csv", old + 10**9)
        _touch(loaded[0], old + 2 * 10**9, "client_id\n2\n")
        second = landing_sensor(dg.build_sensor_context(instance=instance, cursor=None))
        assert isinstance(second, dg.SensorResult) and len(second.run_requests) == 1
        assert second.run_requests[0].tags["lendseg/new_files"] == "2"

        # while a run holds the writer lock the ledger is not read and nothing is requested
        with writer_lock(data / "build" / "writer.lock"):
            waiting = landing_sensor(dg.build_sensor_context(instance=instance, cursor=None))
        assert isinstance(waiting, dg.SkipReason) and "writer lock" in waiting.skip_message
