"""Schedules: ``daily_refresh`` every morning, ``monthly_retrain`` on the first of each month.

Configured by environment variables (read when the code location loads; restart ``dagster dev`` or
reload the code location after changing them):

``LENDSEG_TIMEZONE``       time zone of both cron strings (IANA name), default ``Asia/Shanghai``
``LENDSEG_DAILY_CRON``     default ``0 6 * * *``  (06:00 every day)
``LENDSEG_MONTHLY_CRON``   default ``0 8 1 * *``  (08:00 on the 1st, after that morning's daily refresh)
``LENDSEG_AUTOMATION``     ``on`` (default): schedules and sensors start RUNNING under ``dagster dev`` /
                           ``dagster-daemon``; ``off``: they start STOPPED and never fire unless started
                           in the UI (tests use ``off``).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import dagster as dg

from dagster_project.defs.operations.jobs import daily_refresh, monthly_retrain
from dagster_project.lib.settings import automation_enabled, env_value


def default_schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if automation_enabled() else dg.DefaultScheduleStatus.STOPPED


def default_sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if automation_enabled() else dg.DefaultSensorStatus.STOPPED


def schedule_timezone() -> str:
    tz = env_value("LENDSEG_TIMEZONE")
    try:
        ZoneInfo(tz)
    except Exception as e:  # noqa: BLE001 - any lookup error means the same thing
        raise ValueError(f"LENDSEG_TIMEZONE={tz!r} is not an IANA time zone name (e.g. Asia/Shanghai, UTC)") from e
    return tz


def _cron(var: str) -> str:
    cron = env_value(var)
    if len(cron.split()) != 5:  # ScheduleDefinition validates the fields themselves
        raise ValueError(f"{var}={cron!r} is not a five-field cron string (minute hour day month weekday)")
    return cron


def build_schedules() -> list[dg.ScheduleDefinition]:
    tz = schedule_timezone()
    status = default_schedule_status()
    return [
        dg.ScheduleDefinition(
            name="daily_refresh_schedule",
            job=daily_refresh,
            cron_schedule=_cron("LENDSEG_DAILY_CRON"),
            execution_timezone=tz,
            default_status=status,
            description="Every morning: ingest whatever was delivered, rebuild and publish (LENDSEG_DAILY_CRON).",
        ),
        dg.ScheduleDefinition(
            name="monthly_retrain_schedule",
            job=monthly_retrain,
            cron_schedule=_cron("LENDSEG_MONTHLY_CRON"),
            execution_timezone=tz,
            default_status=status,
            description="First of each month: retrain, challenge, promote, rescore and publish (LENDSEG_MONTHLY_CRON).",
        ),
    ]


schedules = build_schedules()
