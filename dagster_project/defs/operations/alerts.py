"""Alerts: failed runs go to the append-only audit store; the published warehouse has a freshness policy.

``pipeline_failure_alert`` (a run-failure sensor, evaluated by the Dagster daemon) writes one NEW file per
failed run, ``$LENDSEG_DATA_DIR/audit/pipeline_alerts/<UTC timestamp>-<run_id>.jsonl``, holding one JSON
object with ``alerted_at, job_name, run_id, failed_steps, error_summary, severity``; the publish step
exposes the folder as table ``audit.pipeline_alerts``. It monitors every run in the instance, so a failed
headless ``lendseg run`` is alerted too (once a daemon is running). Existing files are never modified.

The error summary is one line, at most 300 characters, with anything that could be a client identifier
masked (quoted values, e-mails, long digit runs, runs of non-Latin letters): alerts never carry a clear
client identifier; the full error stays in the run's logs.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from dagster_project.defs.operations.schedules import default_sensor_status
from dagster_project.lib.settings import load_settings, stale_after_hours

ALERT_TABLE = "pipeline_alerts"
_FRAMEWORK_ERRORS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"}
SUMMARY_MAX_CHARS = 300

# ---------------------------------------------------------------- redaction (pure, unit tested)

_HEX_KEY = re.compile(r"\b[0-9a-f]{32,64}\b")  # pseudonymous keys and hashes are not identifiers
_UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
_QUOTED = re.compile(r"'[^'\n]{1,200}'|\"[^\"\n]{1,200}\"")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_ID_TOKEN = re.compile(r"\b(?=[A-Za-z0-9-]*\d{4})[A-Za-z0-9][A-Za-z0-9-]{3,}\b")  # ids, registration/phone numbers
_NON_LATIN = re.compile(r"[^\x00-\x7F]+")
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2})?$")
_CODE_NAME = re.compile(r"^[a-z][a-z0-9]*([_.][a-z0-9]+)+$")  # dim_client, raw.clients: schema, not data
_FILE_NAME = re.compile(r"^[\w.-]+\.(csv|parquet|sql|py|json|yml|yaml)$", re.I)


def _mask_quoted(m: re.Match) -> str:
    inner = m.group(0)[1:-1]
    if _FILE_NAME.match(inner) or _DATE.match(inner) or _HEX_KEY.fullmatch(inner) or _CODE_NAME.match(inner):
        return m.group(0)
    return m.group(0)[0] + "<redacted>" + m.group(0)[-1]


def _mask_token(m: re.Match) -> str:
    tok = m.group(0)
    return tok if _DATE.match(tok) or re.fullmatch(r"\d{4}", tok) else "<id>"  # dates and years stay


def redact(text: str, max_chars: int = SUMMARY_MAX_CHARS) -> str:
    """One line without anything that could identify a client: keys/UUIDs/dates/file names kept, the rest masked."""
    line = " ".join(text.split())
    keep: list[str] = []

    def protect(m: re.Match) -> str:
        keep.append(m.group(0))
        return f"\x00{len(keep) - 1}\x00"

    line = _UUID.sub(protect, line)
    line = _HEX_KEY.sub(protect, line)
    line = _EMAIL.sub("<email>", line)
    line = _QUOTED.sub(_mask_quoted, line)
    line = _NON_LATIN.sub("<text>", line)
    line = re.sub(r"[\w.-]+\.(csv|parquet)\b", protect, line, flags=re.I)  # delivery file names stay readable
    line = _ID_TOKEN.sub(_mask_token, line)
    line = re.sub(r"\x00(\d+)\x00", lambda m: keep[int(m.group(1))], line)
    return line if len(line) <= max_chars else line[: max_chars - 3] + "..."


# ---------------------------------------------------------------- the alert record


def alert_dir(data_dir: Path | None = None) -> Path:
    return (data_dir or load_settings().data_dir) / "audit" / ALERT_TABLE


def build_alert(
    job_name: str,
    run_id: str,
    failed_steps: list[str],
    error: str,
    severity: str = "ERROR",
    now: datetime | None = None,
) -> dict:
    now = now or datetime.now(UTC)
    return {
        "alerted_at": now.isoformat(timespec="seconds"),
        "job_name": job_name,
        "run_id": run_id,
        "failed_steps": sorted(set(failed_steps)),
        "error_summary": redact(error) if error else "",
        "severity": severity,
    }


def write_alert(record: dict, folder: Path, tag: str = "") -> Path:
    """Write ``record`` as a new ``<timestamp>-<run_id>[-<tag>].jsonl`` file (never overwrites: append-only store)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(record["alerted_at"]).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{stamp}-{record['run_id']}{'-' + tag if tag else ''}.jsonl"
    tmp = folder / f".{path.name}.tmp"
    tmp.write_text(json.dumps(record, ensure_ascii=True, sort_keys=False) + "\n", encoding="utf-8")
    try:
        os.link(tmp, path)  # atomic create-if-absent: a reader never sees a half-written alert
    except FileExistsError:
        pass  # already alerted (sensor tick retried): keep the first record
    finally:
        tmp.unlink(missing_ok=True)
    return path


def alert_from_failure(context: dg.RunFailureSensorContext) -> dict:
    run = context.dagster_run
    steps, errors = [], []
    for event in context.get_step_failure_events():
        steps.append(event.step_key or "?")
        err = event.step_failure_data.error if event.step_failure_data else None
        while err is not None and err.cause is not None and err.cls_name in _FRAMEWORK_ERRORS:
            err = err.cause  # the user code's own error, not Dagster's wrapper
        if err is not None:
            first = (err.message or "").strip().splitlines()
            message = first[0] if first else ""
            errors.append(
                f"{event.step_key}: "
                f"{message if message.startswith(err.cls_name or '@') else f'{err.cls_name}: {message}'}"
            )
    if not errors:
        errors.append(context.failure_event.message or "run failed")
    return build_alert(run.job_name, run.run_id, steps, " | ".join(errors))


@dg.run_failure_sensor(
    name="pipeline_failure_alert",
    monitor_all_code_locations=True,  # headless `lendseg run` runs have no code-location origin
    default_status=default_sensor_status(),
    minimum_interval_seconds=30,
    description="Writes an alert record for every failed run to $LENDSEG_DATA_DIR/audit/pipeline_alerts/ "
    "(published as audit.pipeline_alerts) and logs it.",
)
def pipeline_failure_alert(context: dg.RunFailureSensorContext) -> None:
    record = alert_from_failure(context)
    path = write_alert(record, alert_dir())
    context.log.error(
        f"ALERT {record['job_name']} run {record['run_id']} failed at "
        f"{', '.join(record['failed_steps']) or 'run level'}: {record['error_summary']} -> {path}"
    )


# ---------------------------------------------------------------- freshness of the published warehouse


def published_freshness_policy() -> dg.FreshnessPolicy:
    """Fail when ``published_warehouse`` was last materialised over ``LENDSEG_STALE_AFTER_HOURS`` ago."""
    return dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=stale_after_hours()))


def with_freshness(asset: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """``asset`` with the staleness policy attached (evaluated by the daemon, shown in the UI as Freshness)."""
    policy = published_freshness_policy()
    return asset.map_asset_specs(lambda spec: dg.apply_freshness_policy(spec, policy))


sensors = [pipeline_failure_alert]
