"""Operations: jobs, schedules, sensors, alerts and the run queue (the runs themselves:
tests/e2e/test_operations_e2e.py)."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

os.environ.setdefault("LENDSEG_AUTOMATION", "off")

# ======================================================================== definitions (fast)


def test_jobs_select_stages_by_group_and_carry_the_writer_tag() -> None:
    from dagster_project.definitions import defs
    from dagster_project.defs.operations.jobs import JOB_GROUPS, WRITER_TAG_KEY, WRITER_TAG_VALUE

    graph = defs.resolve_asset_graph()
    training = dg.AssetSelection.groups("ml_training")
    assert training.resolve(graph), "the training stage exists"
    for name in ("daily_refresh", "monthly_retrain", "full_rebuild"):
        job = defs.resolve_job_def(name)
        assert job.tags[WRITER_TAG_KEY] == WRITER_TAG_VALUE
        assert job.executor_def.name == "in_process"
        # every stage runs in every job, except training: only monthly_retrain retrains (daily runs only score)
        expected = dg.AssetSelection.all() if name == "monthly_retrain" else dg.AssetSelection.all() - training
        selected = dg.AssetSelection.groups(*JOB_GROUPS[name]).resolve(graph)
        assert selected == expected.resolve(graph)
        checks = dg.AssetSelection.groups(*JOB_GROUPS[name]).resolve_checks(graph)
        assert checks == expected.resolve_checks(graph) and checks  # dbt tests and model checks travel along
    assert defs.resolve_job_def("full_rebuild").tags["lendseg/full_refresh"] == "true"


def test_schedules_timezone_cron_and_automation_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_project.defs.operations import schedules as sched

    monkeypatch.delenv("LENDSEG_TIMEZONE", raising=False)
    monkeypatch.delenv("LENDSEG_DAILY_CRON", raising=False)
    monkeypatch.delenv("LENDSEG_MONTHLY_CRON", raising=False)
    monkeypatch.setenv("LENDSEG_AUTOMATION", "off")
    daily, monthly = sched.build_schedules()
    assert (daily.job_name, daily.cron_schedule, daily.execution_timezone) == (
        "daily_refresh",
        "0 6 * * *",
        "Asia/Shanghai",
    )
    assert (monthly.job_name, monthly.cron_schedule) == ("monthly_retrain", "0 8 1 * *")
    assert daily.default_status == dg.DefaultScheduleStatus.STOPPED

    monkeypatch.setenv("LENDSEG_AUTOMATION", "on")
    monkeypatch.setenv("LENDSEG_TIMEZONE", "Europe/Zurich")
    monkeypatch.setenv("LENDSEG_DAILY_CRON", "30 5 * * 1-5")
    daily, _ = sched.build_schedules()
    assert (daily.cron_schedule, daily.execution_timezone) == ("30 5 * * 1-5", "Europe/Zurich")
    assert daily.default_status == dg.DefaultScheduleStatus.RUNNING

    monkeypatch.setenv("LENDSEG_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="LENDSEG_TIMEZONE"):
        sched.build_schedules()


def test_published_warehouse_has_a_freshness_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_project.definitions import defs
    from dagster_project.defs.operations.alerts import published_freshness_policy

    node = defs.resolve_asset_graph().get(dg.AssetKey("published_warehouse"))
    assert node.freshness_policy.fail_window.to_timedelta().total_seconds() == 36 * 3600
    monkeypatch.setenv("LENDSEG_STALE_AFTER_HOURS", "12")
    assert published_freshness_policy().fail_window.to_timedelta().total_seconds() == 12 * 3600


def test_instance_yaml_is_written_once_and_is_valid(tmp_path: Path) -> None:
    from dagster_project.defs.operations.instance import ensure_dagster_yaml

    path = ensure_dagster_yaml(tmp_path / "home")
    text = path.read_text()
    assert "tag_concurrency_limits" in text and "telemetry" in text
    instance = dg.DagsterInstance.from_config(str(tmp_path / "home"))
    try:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "lendseg/writer", "value": "build", "limit": 1} in limits
        assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
    finally:
        instance.dispose()
    from dagster_project.defs.operations.instance import STORAGE_FILES, ensure_instance

    ensure_instance(tmp_path / "home2")
    assert all((tmp_path / "home2" / f).exists() for f in STORAGE_FILES)
    path.write_text("# mine\n")
    ensure_dagster_yaml(tmp_path / "home")
    assert path.read_text() == "# mine\n"  # never overwritten


# ======================================================================== landing sensor (pure cursor logic)


def _touch(path: Path, mtime_ns: int, text: str = "a,b\n1,2\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_landing_cursor_logic(tmp_path: Path) -> None:
    from dagster_project.defs.operations.sensors import (
        advance_cursor,
        batch_run_key,
        new_files,
        parse_cursor,
        scan_landing,
    )

    now = time.time_ns()
    old = now - 3600 * 10**9
    _touch(tmp_path / "clients" / "clients_2026-01.csv", old)
    _touch(tmp_path / "credit_bureau" / "cb_2026q1.parquet", old + 1)
    _touch(tmp_path / "clients" / ".clients_tmp.csv", old)  # hidden: ignored
    _touch(tmp_path / "clients" / "notes.txt", old)  # not a delivery format
    _touch(tmp_path / "other" / "x.csv", old)  # not a source folder
    _touch(tmp_path / "clients" / "clients_2026-02.csv", now)  # still settling
    sources = ("clients", "credit_bureau", "product_usage")

    files = scan_landing(tmp_path, sources, now_ns=now, settle_s=30)
    assert [f.relpath for f in files] == ["clients/clients_2026-01.csv", "credit_bureau/cb_2026q1.parquet"]
    assert parse_cursor(None) == {} and parse_cursor("garbage") == {}

    batch = new_files(files, parse_cursor(None))
    assert batch == files
    key = batch_run_key(batch)
    assert key == batch_run_key(list(reversed(batch)))  # order-independent, deterministic
    cursor = advance_cursor({}, batch, present=files)
    assert new_files(files, parse_cursor(cursor)) == []  # the same files never trigger twice

    later = now + 60 * 10**9  # the settling file is now old enough: a batch of one
    files2 = scan_landing(tmp_path, sources, now_ns=later, settle_s=30)
    batch2 = new_files(files2, parse_cursor(cursor))
    assert [f.relpath for f in batch2] == ["clients/clients_2026-02.csv"]
    assert batch_run_key(batch2) != key
    cursor2 = advance_cursor(parse_cursor(cursor), batch2, present=files2)
    assert new_files(files2, parse_cursor(cursor2)) == []

    # a same-name re-delivery (new mtime) is new; a removed file is forgotten
    _touch(tmp_path / "clients" / "clients_2026-01.csv", old + 5)
    (tmp_path / "credit_bureau" / "cb_2026q1.parquet").unlink()
    files3 = scan_landing(tmp_path, sources, now_ns=later, settle_s=30)
    batch3 = new_files(files3, parse_cursor(cursor2))
    assert [f.relpath for f in batch3] == ["clients/clients_2026-01.csv"]
    assert "credit_bureau/cb_2026q1.parquet" not in parse_cursor(advance_cursor(parse_cursor(cursor2), batch3, files3))


def test_landing_sensor_requests_once_and_waits_while_a_writer_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.defs.operations.sensors import active_writing_runs, landing_sensor, writer_lock_is_held

    monkeypatch.setenv("LENDSEG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LENDSEG_LANDING_DIR", raising=False)
    monkeypatch.setenv("LENDSEG_LANDING_SETTLE_S", "0")
    landing = tmp_path / "data" / "landing"
    _touch(landing / "clients" / "clients_a.csv", time.time_ns() - 10**9)
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, cursor=None)
        result = landing_sensor(ctx)
        assert isinstance(result, dg.SensorResult) and len(result.run_requests) == 1
        request = result.run_requests[0]
        assert request.run_key.startswith("landing-") and request.tags["lendseg/new_files"] == "1"
        cursor = result.cursor

        skipped = landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(skipped, dg.SkipReason) and "no new" in skipped.skip_message

        # a daily_refresh run is waiting to start: new files wait, the cursor does not move
        _touch(landing / "product_usage" / "usage_b.csv", time.time_ns() - 10**9)
        run = instance.add_run(
            dg.DagsterRun(job_name="daily_refresh", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.NOT_STARTED)
        )
        waiting = landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(waiting, dg.SkipReason) and run.run_id in waiting.skip_message

        # a run on record as STARTED long ago while nobody holds the writer lock (killed) does not block
        started = instance.add_run(
            dg.DagsterRun(job_name="full_rebuild", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED)
        )
        lock = tmp_path / "data" / "build" / "writer.lock"
        active, orphaned = active_writing_runs(instance, lock, now=time.time() + 3600)
        assert started.run_id in orphaned and started.run_id not in active
        from dagster_project.lib.warehouse import writer_lock

        with writer_lock(lock):
            assert writer_lock_is_held(lock)
            active, orphaned = active_writing_runs(instance, lock, now=time.time() + 3600)
            assert started.run_id in active  # the lock is held: it may well be writing
        assert not writer_lock_is_held(lock)
        instance.report_run_canceled(started)

        instance.report_run_canceled(run)  # it ended: the waiting file is requested now, as one batch
        result2 = landing_sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(result2, dg.SensorResult) and result2.run_requests[0].tags["lendseg/new_files"] == "1"
        assert result2.run_requests[0].run_key != request.run_key


# ======================================================================== failure alerts


def test_failure_alert_record_has_the_fields_and_no_clear_identifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster_project.defs.operations.alerts import pipeline_failure_alert, redact

    monkeypatch.setenv("LENDSEG_DATA_DIR", str(tmp_path / "data"))

    @dg.op
    def load_clients():
        raise ValueError(
            "Conversion Error: could not convert 'Shenzhen Acme Ltd' (client CL00001234, "
            "reg 91440300MA5FXXXX1T, ops@acme.cn, 13800138000, 深圳市某某科技有限公司) in clients_2026-01.csv"
        )

    @dg.job
    def failing_job():
        load_clients()

    with dg.instance_for_test() as instance:
        result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        ctx = dg.build_run_status_sensor_context(
            sensor_name="pipeline_failure_alert", dagster_event=failure, dagster_instance=instance, dagster_run=run
        ).for_run_failure()
        pipeline_failure_alert(ctx)

    files = list((tmp_path / "data" / "audit" / "pipeline_alerts").glob("*.jsonl"))
    assert len(files) == 1 and files[0].name.endswith(f"-{result.run_id}.jsonl")
    lines = files[0].read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert set(record) == {"alerted_at", "job_name", "run_id", "failed_steps", "error_summary", "severity"}
    assert record["job_name"] == "failing_job" and record["run_id"] == result.run_id
    assert record["failed_steps"] == ["load_clients"] and record["severity"] == "ERROR"
    assert datetime.fromisoformat(record["alerted_at"]).tzinfo is not None
    summary = record["error_summary"]
    assert "ValueError" in summary and "clients_2026-01.csv" in summary, summary
    for secret in ("Acme", "CL00001234", "91440300MA5FXXXX1T", "ops@acme", "13800138000", "深圳"):
        assert secret not in summary, summary
    # keys, run ids, dates and versions stay readable
    kept = "key 3f2a9c" + "0" * 58 + f" run {result.run_id} on 2026-10-01 v1.5.0"
    assert redact(kept) == kept
