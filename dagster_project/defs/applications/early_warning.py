"""Risk early warnings: signal thresholds, severity rules, the open/clear timeline and the evaluation maths.

Pure definitions only: the signal observations are computed in DuckDB (``as_of.signal_observations_sql``), their
severities, levels and the timeline in SQL (``ew_sql.py``) from :data:`SIGNALS`, kept in the state tables of
``ew_state.py``.

Severity rules (documented in docs/applications.md; ``severity`` implements them):

================== ================================================= ======== ========== ==========
signal             observed value                                    watch    warning    critical
================== ================================================= ======== ========== ==========
score_drop         bureau score fall since the previous report (pts) >= 20    >= 30      >= 60
arrears            worst days past due in the month (usage)          >= 1     >= 30      >= 60
high_utilisation   consecutive months with utilisation > 90 %        >= 2     >= 6       -
negative_cash_flow consecutive reports with operating cash flow < 0  >= 2     >= 4       -
legal_judgments    new legal judgments since the previous report     >= 1     >= 3       -
inquiries          rise of 6-month inquiries since previous report   >= 3     >= 6       -
collateral         collateral coverage (collateral / total debt)     < 1      -          -
multiple_signals   other signals open in the same month              >= 4 -> warning, >= 5 -> critical
================== ================================================= ======== ========== ==========

A signal at its watch threshold alone is no warning: by these rules a client is on ``watch`` only with at least
:data:`WATCH_MIN_SIGNALS` signals at once (``expert_ranks``); one signal at warning or critical is enough for those
levels. With a calibrated combined score the levels come from the score instead (``ew_sql.levels_sql``).
Every observation carries the threshold of its own severity (``threshold_for``).
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES: tuple[str, ...] = ("watch", "warning", "critical")
SEVERITY_RANK: dict[str, int] = {s: i + 1 for i, s in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Signal:
    name: str
    description: str
    direction: str  # ">=" (observed at or above) or "<" (observed below)
    watch: float
    warning: float | None = None
    critical: float | None = None


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("score_drop", "bureau score fall since the previous report (points)", ">=", 20, 30, 60),
        Signal("arrears", "worst days past due over the client's facilities in the month", ">=", 1, 30, 60),
        Signal("high_utilisation", "consecutive months with utilisation above 90 %", ">=", 2, 6),
        Signal("negative_cash_flow", "consecutive bureau reports with negative operating cash flow", ">=", 2, 4),
        Signal("legal_judgments", "new legal judgments since the previous report", ">=", 1, 3),
        Signal("inquiries", "rise of credit inquiries (6 months) since the previous report", ">=", 3, 6),
        Signal("collateral", "collateral coverage = collateral / total debt on the latest report", "<", 1.0),
        Signal("multiple_signals", "number of other signals open for the client in the same month", ">=", 4, 4, 5),
    )
}
WATCH_MIN_SIGNALS = 2  # expert rules: signals at watch needed at once for the watch level (docs/applications.md)
UTILISATION_LIMIT = 0.90
REPORT_VALID_MONTHS = 6  # a bureau report older than this no longer raises signals


def severity(signal: str, observed: float | None) -> str | None:
    """Severity of one observation of ``signal`` (None = below the watch threshold, i.e. no signal)."""
    if observed is None:
        return None
    s = SIGNALS[signal]
    hit = (
        (lambda t: t is not None and observed >= t)
        if s.direction == ">="
        else (lambda t: t is not None and observed < t)
    )
    if hit(s.critical):
        return "critical"
    if hit(s.warning):
        return "warning"
    if hit(s.watch):
        return "watch"
    return None


def threshold_for(signal: str, level: str) -> float | None:
    """The expert threshold of ``signal`` at ``level`` (watch / warning / critical); None when it has none."""
    return getattr(SIGNALS[signal], level)
