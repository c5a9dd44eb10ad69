"""The publishing gate: which checks of this run passed, failed, warned - and which blocking ones never ran.

Dagster lets a downstream step proceed when a blocking check emitted no result ("will proceed without
gating on it"). For publishing, *skipped is not passed*: a blocking check planned for an asset that was
materialised in this run must have a passing result, or ``published_warehouse`` refuses and names it.
The verdict logic is the pure function :func:`gate`; :func:`run_gate` reads the run's events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import dagster as dg

# Checks of these assets are not publishing gates: the published file's own checks run after it, and the
# segmentation model's checks (ERROR severity in the UI) gate promotion of a challenger in champion_model, not
# publishing - a failed one counts as warned here.
NOT_PUBLISHING_GATES: tuple[str, ...] = ("published_warehouse", "segmentation_model")


@dataclass
class Verdict:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # blocking (ERROR severity) checks that failed
    warned: list[str] = field(default_factory=list)  # WARN-severity checks that did not pass
    missing: list[str] = field(default_factory=list)  # blocking checks of a materialised asset without a result

    @property
    def refused(self) -> bool:
        return bool(self.failed or self.missing)

    def reason(self) -> str:
        parts = []
        if self.failed:
            parts.append(f"blocking checks failed in this run: {', '.join(self.failed)}")
        if self.missing:
            parts.append(
                f"blocking checks of assets materialised in this run have no result (skipped is not "
                f"passed): {', '.join(self.missing)}"
            )
        return "; ".join(parts)


def check_name(asset: str, name: str) -> str:
    return f"{asset}:{name}"


def gate(
    planned: Mapping[str, tuple[str, bool]],
    evaluated: Mapping[str, tuple[bool, str]],
    materialized: Iterable[str],
    exclude_assets: Iterable[str] = NOT_PUBLISHING_GATES,
) -> Verdict:
    """The publishing verdict.

    ``planned``: ``{check: (asset, blocking)}`` of checks planned in the run; ``evaluated``: ``{check:
    (passed, severity 'ERROR'|'WARN')}``; ``materialized``: asset keys (user strings) materialised in the run.
    """
    done, skip = set(materialized), set(exclude_assets)
    v = Verdict()
    for name, (passed, severity) in sorted(evaluated.items()):
        if passed:
            v.passed.append(name)
        elif severity.upper() == "WARN" or name.split(":", 1)[0] in skip:  # the model's ERROR checks decide promotion
            v.warned.append(name)
        else:
            v.failed.append(name)
    for name, (asset, blocking) in sorted(planned.items()):
        if blocking and asset in done and asset not in skip and name not in evaluated:
            v.missing.append(name)
    return v


def _events(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType):
    for entry in instance.all_logs(run_id, of_type=kind):
        if entry.dagster_event is not None:
            yield entry.dagster_event


def run_gate(instance: dg.DagsterInstance, run_id: str, asset_graph) -> Verdict:
    """Verdict for ``run_id`` from its event log; ``asset_graph`` tells which checks are blocking."""
    evaluated: dict[str, tuple[bool, str]] = {}
    for ev in _events(instance, run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION):
        data = ev.event_specific_data
        evaluated[check_name(data.asset_key.to_user_string(), data.check_name)] = (
            bool(data.passed),
            data.severity.value,
        )
    planned: dict[str, tuple[str, bool]] = {}
    for ev in _events(instance, run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED):
        data = ev.event_specific_data
        key = dg.AssetCheckKey(data.asset_key, data.check_name)
        try:
            blocking = bool(asset_graph.get_check_spec(key).blocking)
        except Exception:  # a check the graph does not know (never expected): treat it as blocking
            blocking = True
        planned[check_name(data.asset_key.to_user_string(), data.check_name)] = (
            data.asset_key.to_user_string(),
            blocking,
        )
    materialized = {
        ev.asset_key.to_user_string() for ev in _events(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)
    }
    return gate(planned, evaluated, materialized)
