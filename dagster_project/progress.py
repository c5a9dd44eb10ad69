"""``lendseg run``'s view: one line per step as it ends, a live progress bar on a terminal, and a summary.

The job runs in this process (``execute_in_process``); a thread follows the run's event log in
``DAGSTER_HOME`` and prints each step when it ends: status, seconds and what it produced (rows loaded,
assets, checks). Everything Dagster and dbt print goes to ``$LENDSEG_DATA_DIR/logs/<run_id>.log``
(file descriptors 1 and 2 are redirected for the run), unless ``--verbose`` streams it to the terminal.
The view itself is built by the pure :class:`Tracker` (fed event log entries) and the ``format_*`` functions.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

LOGS_KEPT = 50
POLL_S = 0.5
BAR_WIDTH = 24
MODEL_LABELS = {
    "segmentation_model": "model training (challenger)",
    "champion_model": "model promotion",
    "segment_scoring": "model scoring + drift",
}


@dataclass
class Step:
    key: str
    started: float | None = None
    ended: float | None = None
    status: str = "planned"  # planned, running, ok, FAILED, skipped
    planned: int = 0  # planned materialisations + check evaluations (the progress bar's total)
    done: int = 0
    assets: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    checks_passed: int = 0
    checks_failed: int = 0
    checks_warned: int = 0
    error: str = ""

    @property
    def seconds(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.time()) - self.started


def _meta_values(metadata) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in (metadata or {}).items()}


class Tracker:
    """Folds a run's event log entries into per-step state (pure: no I/O)."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self.order: list[str] = []
        self.run_status: str | None = None

    def _step(self, key: str) -> Step:
        if key not in self.steps:
            self.steps[key] = Step(key)
        return self.steps[key]

    def consume(self, entry) -> Step | None:
        """Apply one EventLogEntry; returns the step if it just ended (to be printed)."""
        ev = entry.dagster_event
        if ev is None:
            return None
        kind = ev.event_type_value
        if kind in ("PIPELINE_SUCCESS", "RUN_SUCCESS"):
            self.run_status = "ok"
        elif kind in ("PIPELINE_FAILURE", "RUN_FAILURE"):
            self.run_status = "FAILED"
        if not entry.step_key:
            return None
        st = self._step(entry.step_key)
        if kind in ("ASSET_MATERIALIZATION_PLANNED", "ASSET_CHECK_EVALUATION_PLANNED"):
            st.planned += 1
        elif kind == "STEP_START":
            st.started, st.status = entry.timestamp, "running"
            self.order.append(st.key)
        elif kind == "ASSET_MATERIALIZATION":
            st.done += 1
            st.assets.append(ev.asset_key.to_user_string())
            st.metadata.append(_meta_values(ev.event_specific_data.materialization.metadata))
        elif kind == "ASSET_CHECK_EVALUATION":
            st.done += 1
            data = ev.event_specific_data
            if data.passed:
                st.checks_passed += 1
            elif data.severity.value == "WARN":
                st.checks_warned += 1
            else:
                st.checks_failed += 1
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
            st.ended = entry.timestamp
            st.status = {"STEP_SUCCESS": "ok", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}[kind]
            if kind == "STEP_SKIPPED" and st.started is None:
                st.started = entry.timestamp
                self.order.append(st.key)
            if kind == "STEP_FAILURE" and ev.step_failure_data and ev.step_failure_data.error:
                st.error = ev.step_failure_data.error.message or ""
            return st
        return None

    def running(self) -> Step | None:
        live = [self.steps[k] for k in self.order if self.steps[k].status == "running"]
        return live[-1] if live else None

    def totals(self) -> dict[str, int]:
        out = {"passed": 0, "failed": 0, "warned": 0, "quarantined": 0, "held": 0, "loaded": 0}
        for st in self.steps.values():
            out["passed"] += st.checks_passed
            out["failed"] += st.checks_failed
            out["warned"] += st.checks_warned
            for m in st.metadata:
                out["quarantined"] += int(m.get("rows_quarantined") or 0)
                out["held"] += int(m.get("rows_held") or 0)
                out["loaded"] += int(m.get("rows_loaded") or 0)
        return out

    def published(self) -> dict[str, Any] | None:
        st = self.steps.get("published_warehouse")
        return st.metadata[-1] if st and st.metadata else None


# ---------------------------------------------------------------- formatting (pure)


def label(st: Step) -> str:
    key = st.key
    if key.startswith("raw_"):
        return f"ingest {key[4:]}"
    if key.startswith("dbt_"):
        order = ["reference", "staging", "intermediate", "marts", "ml"]
        layers = sorted(
            {a.split("/")[0] for a in st.assets}, key=lambda g: order.index(g) if g in order else len(order)
        )
        return "dbt " + (" + ".join(layers) if layers else "models")
    if key in MODEL_LABELS:
        return MODEL_LABELS[key]
    if key == "published_warehouse":
        return "publish"
    name = key.removeprefix("app__").removeprefix("marts__")
    return f"applications {name}" if st.assets else f"check {name}"


def _n(x: int) -> str:
    return f"{x:,}"


def detail(st: Step) -> str:
    parts = []
    if st.key.startswith("raw_"):
        m = st.metadata[-1] if st.metadata else {}
        parts.append(f"{_n(int(m.get('files_loaded') or 0))} files, {_n(int(m.get('rows_loaded') or 0))} rows loaded")
        if m.get("rows_quarantined"):
            parts.append(f"{_n(int(m['rows_quarantined']))} quarantined")
        if m.get("rows_held"):
            parts.append(f"{_n(int(m['rows_held']))} held")
    elif st.key == "published_warehouse" and st.metadata:
        m = st.metadata[-1]
        rows = sum(int(v) for k, v in m.items() if k.startswith("rows/"))
        parts.append(f"{m.get('version')}: {sum(1 for k in m if k.startswith('rows/'))} tables, {_n(rows)} rows")
    elif st.key.startswith("dbt_"):
        parts.append(f"{len(st.assets)} models/seeds")
    else:
        rows = [
            int(m["dagster/row_count"] if "dagster/row_count" in m else m["rows"])
            for m in st.metadata
            if "dagster/row_count" in m or "rows" in m
        ]
        if rows:
            parts.append(f"{_n(sum(rows))} rows")
        elif st.assets:
            parts.append(f"{len(st.assets)} asset{'s' if len(st.assets) != 1 else ''}")
        if "segmentation_model" in st.assets:
            model = next((m.get("version") for m in st.metadata if "k_curve_chart" in m), None)
            parts.append(f"bootstrap: trained and promoted {model or 'a first model'}")
    checks = st.checks_passed + st.checks_failed + st.checks_warned
    if checks:
        c = f"{checks} checks"
        if st.checks_failed or st.checks_warned:
            c += f" ({st.checks_failed} failed, {st.checks_warned} warned)"
        parts.append(c)
    return ", ".join(parts)


def format_step(st: Step) -> str:
    secs = f"{st.seconds:6.1f} s" if st.status != "skipped" else "       -"
    return f"  {st.status:<7} {label(st):<44} {secs}  {detail(st)}".rstrip()


def format_live(st: Step) -> str:
    total = max(st.planned, 1)
    filled = min(BAR_WIDTH, round(BAR_WIDTH * st.done / total))
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"  running {label(st):<44} {st.seconds:6.1f} s  [{bar}] {st.done}/{st.planned}"


def _wrap(items: list[str], width: int = 100, indent: str = "    ") -> list[str]:
    lines, cur = [], ""
    for it in items:
        if cur and len(cur) + len(it) + 3 > width:
            lines.append(indent + cur)
            cur = ""
        cur = f"{cur} . {it}" if cur else it
    return lines + ([indent + cur] if cur else [])


def format_summary(
    tracker: Tracker,
    run_id: str,
    job: str,
    seconds: float,
    success: bool,
    warehouse: Path,
    log_path: Path | None,
    alerts: int,
) -> list[str]:
    t = tracker.totals()
    out = [f"run {run_id} {'succeeded' if success else 'FAILED'} in {seconds:.0f} s (job {job})"]
    pub = tracker.published()
    if success and pub:
        counts = {k[5:]: int(v) for k, v in pub.items() if k.startswith("rows/")}
        out.append(
            f"published {pub.get('version')} -> {warehouse}: {len(counts)} tables, {_n(sum(counts.values()))} rows"
        )
        by_schema: dict[str, list[str]] = {}
        for table, n in counts.items():
            schema, name = table.split(".", 1)
            by_schema.setdefault(schema, []).append(f"{name} {_n(n)}")
        for schema, items in by_schema.items():
            out.append(f"  {schema}:")
            out += _wrap(items)
    elif not success:
        out.append(f"nothing published: the warehouse {warehouse} was left as it was")
    out.append(f"checks: {t['passed']} passed, {t['failed']} failed, {t['warned']} warned")
    out.append(
        f"ingest: {_n(t['loaded'])} rows loaded, {_n(t['quarantined'])} quarantined (audit.quarantined_rows), "
        f"{_n(t['held'])} held for unknown clients"
    )
    out.append(f"alerts: {alerts} recorded (audit.pipeline_alerts)")
    if log_path:
        out.append(f"full log: {log_path}")
    return out


# ---------------------------------------------------------------- following a run


class Follower(threading.Thread):
    """Reads the run's new event log records every POLL_S seconds and prints ended steps / the live bar."""

    def __init__(self, instance, run_id: str, out: TextIO, live: bool) -> None:
        super().__init__(daemon=True)
        self.instance, self.run_id, self.out, self.live = instance, run_id, out, live
        self.tracker = Tracker()
        self.cursor: str | None = None
        self._stop_evt = threading.Event()
        self._live_shown = False

    def drain(self) -> None:
        try:
            has_run = self.instance.get_run_by_id(self.run_id) is not None
        except Exception:  # noqa: BLE001 - storage busy: next poll
            return
        while has_run:
            conn = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=1000)
            for rec in conn.records:
                ended = self.tracker.consume(rec.event_log_entry)
                if ended is not None and not (ended.status == "ok" and not ended.assets and not ended.checks_failed):
                    self._print(format_step(ended))
            self.cursor = conn.cursor
            if not conn.has_more:
                break

    def _print(self, line: str, live: bool = False) -> None:
        if self._live_shown:
            self.out.write("\r\033[K")
        self.out.write(line if live else line + "\n")
        self.out.flush()
        self._live_shown = live

    def run(self) -> None:
        while not self._stop_evt.is_set():
            self.drain()
            if self.live and (st := self.tracker.running()) is not None:
                self._print(format_live(st), live=True)
            self._stop_evt.wait(POLL_S)

    def finish(self) -> Tracker:
        self._stop_evt.set()
        self.join(timeout=10)
        self.drain()
        if self._live_shown:
            self.out.write("\r\033[K")
            self.out.flush()
        return self.tracker


@contextmanager
def redirected_output(log_path: Path) -> Iterator[tuple[TextIO, TextIO]]:
    """Send fds 1 and 2 (Dagster, dbt, warnings, subprocesses) to ``log_path``; yield the real terminal streams."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    term_out = os.fdopen(os.dup(saved_out), "w", buffering=1)
    term_err = os.fdopen(os.dup(saved_err), "w", buffering=1)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield term_out, term_err
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        term_out.flush()
        term_err.flush()


def prune_logs(folder: Path, keep: int = LOGS_KEPT) -> None:
    logs = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def follow(execute: Callable[[], Any], instance, run_id: str, out: TextIO, live: bool) -> tuple[Any, Tracker]:
    """Run ``execute()`` while a Follower prints the run's steps to ``out``."""
    f = Follower(instance, run_id, out, live)
    f.start()
    try:
        result = execute()
    finally:
        tracker = f.finish()
    return result, tracker
