"""Risk early warnings: signal thresholds, severity rules, the open/clear timeline and the evaluation maths.

Pure functions only; ``applications.py`` computes the monthly observations in DuckDB (SQL thresholds are
taken from :data:`SIGNALS`) and keeps the timeline in the state table ``state.early_warning_episodes``.

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
levels. With a calibrated combined score the levels come from the score instead (``ew_calibration.apply_levels``).
Every observation carries the threshold of its own severity (``threshold_for``).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date

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


SIGNALS: dict[str, Signal] = {s.name: s for s in (
    Signal("score_drop", "bureau score fall since the previous report (points)", ">=", 20, 30, 60),
    Signal("arrears", "worst days past due over the client's facilities in the month", ">=", 1, 30, 60),
    Signal("high_utilisation", "consecutive months with utilisation above 90 %", ">=", 2, 6),
    Signal("negative_cash_flow", "consecutive bureau reports with negative operating cash flow", ">=", 2, 4),
    Signal("legal_judgments", "new legal judgments since the previous report", ">=", 1, 3),
    Signal("inquiries", "rise of credit inquiries (6 months) since the previous report", ">=", 3, 6),
    Signal("collateral", "collateral coverage = collateral / total debt on the latest report", "<", 1.0),
    Signal("multiple_signals", "number of other signals open for the client in the same month", ">=", 4, 4, 5),
)}
WATCH_MIN_SIGNALS = 2  # expert rules: signals at watch needed at once for the watch level (docs/applications.md)
UTILISATION_LIMIT = 0.90
REPORT_VALID_MONTHS = 6  # a bureau report older than this no longer raises signals


def severity(signal: str, observed: float | None) -> str | None:
    """Severity of one observation of ``signal`` (None = below the watch threshold, i.e. no signal)."""
    if observed is None:
        return None
    s = SIGNALS[signal]
    hit = (lambda t: t is not None and observed >= t) if s.direction == ">=" else (
        lambda t: t is not None and observed < t)
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


def expert_ranks(active: Mapping[Key, Observation]) -> dict[str, int]:
    """Client level by the expert rules (1..3 = watch..critical, 0 = none): the highest severity of its signals,
    except that signals at watch alone make a watch only when at least WATCH_MIN_SIGNALS base signals are seen."""
    top: dict[str, int] = {}
    base: dict[str, int] = {}
    for (client, sig), o in active.items():
        top[client] = max(top.get(client, 0), SEVERITY_RANK[o.severity])
        if sig != "multiple_signals":
            base[client] = base.get(client, 0) + 1
    return {c: (r if r >= 2 or base.get(c, 0) >= WATCH_MIN_SIGNALS else 0) for c, r in top.items()}


def expert_levels(active: Mapping[Key, Observation]) -> dict[Key, Observation]:
    """The month's observations by the expert rules: each keeps its own severity and threshold, and the watch-only
    observations of clients below WATCH_MIN_SIGNALS are dropped (they raise no warning)."""
    ranks = expert_ranks(active)
    return {k: o for k, o in active.items() if ranks.get(k[0], 0) > 0}


def max_severity(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if SEVERITY_RANK[a] >= SEVERITY_RANK[b] else b


@dataclass(frozen=True)
class Observation:
    """One signal seen for a client in an evaluation month."""

    observed_value: float
    threshold: float | None  # the threshold of ``severity`` (expert: the signal's own; score: the score's point)
    signal_date: date  # date of the underlying report or snapshot month
    severity: str
    level_driver: str = "expert"  # what set the severity: expert (the signal's thresholds) or score (combined score)
    client_score: float | None = None  # the client's combined score that month (level_driver score)


@dataclass(frozen=True)
class Episode:
    """One warning: open from ``opened_at`` until the signal is no longer seen (``cleared_at``)."""

    client_key: str
    signal: str
    opened_at: date  # evaluation month end in which the signal was first seen
    last_seen_at: date
    severity: str  # severity in the latest month seen
    max_severity: str
    observed_value: float
    threshold: float | None
    signal_date: date
    first_warning_at: date | None = None  # first month with severity warning or critical
    cleared_at: date | None = None
    level_driver: str | None = "expert"
    client_score: float | None = None

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None


Key = tuple[str, str]  # (client_key, signal)


def add_multiple_signals(active: Mapping[Key, Observation], month_end: date) -> dict[Key, Observation]:
    """Add the composite ``multiple_signals`` observation for clients with many signals in the month."""
    out = dict(active)
    per_client: dict[str, int] = {}
    for (client, sig) in active:
        if sig != "multiple_signals":
            per_client[client] = per_client.get(client, 0) + 1
    for client, n in per_client.items():
        sev = severity("multiple_signals", n)
        if sev is not None:
            out[(client, "multiple_signals")] = Observation(float(n), threshold_for("multiple_signals", sev), month_end, sev)
    return out


def step(open_episodes: Mapping[Key, Episode], active: Mapping[Key, Observation], month_end: date
         ) -> tuple[dict[Key, Episode], list[Episode]]:
    """Advance the timeline by one evaluation month.

    A signal seen this month opens an episode (one per client and signal) or keeps the open one (latest
    value and severity, highest severity so far); an open episode whose signal is not seen this month is
    cleared with ``cleared_at = month_end``. Returns (open episodes, episodes cleared this month).
    """
    still_open: dict[Key, Episode] = {}
    cleared: list[Episode] = []
    for key, ep in open_episodes.items():
        obs = active.get(key)
        if obs is None:
            cleared.append(replace(ep, cleared_at=month_end))
            continue
        first_warning = ep.first_warning_at or (month_end if SEVERITY_RANK[obs.severity] >= 2 else None)
        still_open[key] = replace(ep, last_seen_at=month_end, severity=obs.severity,
                                  max_severity=max_severity(ep.max_severity, obs.severity),
                                  observed_value=obs.observed_value, threshold=obs.threshold,
                                  signal_date=obs.signal_date, first_warning_at=first_warning,
                                  level_driver=obs.level_driver, client_score=obs.client_score)
    for key, obs in active.items():
        if key not in still_open and key not in open_episodes:
            still_open[key] = Episode(client_key=key[0], signal=key[1], opened_at=month_end, last_seen_at=month_end,
                                      severity=obs.severity, max_severity=obs.severity,
                                      observed_value=obs.observed_value, threshold=obs.threshold,
                                      signal_date=obs.signal_date,
                                      first_warning_at=month_end if SEVERITY_RANK[obs.severity] >= 2 else None,
                                      level_driver=obs.level_driver, client_score=obs.client_score)
    return still_open, cleared


def replay(open_episodes: Mapping[Key, Episode], months: Iterable[tuple[date, Mapping[Key, Observation]]]
           ) -> tuple[dict[Key, Episode], list[Episode]]:
    """Apply :func:`step` month by month (months in ascending order). Returns (open, all cleared)."""
    current = dict(open_episodes)
    closed: list[Episode] = []
    for month_end, active in months:
        current, done = step(current, active, month_end)
        closed += done
    return current, closed


def months_between(earlier: date, later: date) -> int:
    return (later.year - earlier.year) * 12 + later.month - earlier.month


@dataclass(frozen=True)
class WarningEvaluation:
    clients: int
    flagged: int
    positives: int
    true_positives: int
    precision: float
    recall: float
    median_lead_months: float | None


def evaluate(flagged_since: Mapping[str, date], first_default: Mapping[str, date], population: Iterable[str]
             ) -> WarningEvaluation:
    """Precision / recall of flags raised at the cutoff and the median lead time of the true positives.

    ``flagged_since``: clients flagged at the cutoff -> month of their first warning/critical;
    ``first_default``: clients that first reached 90+ dpd after the cutoff -> that month.
    """
    pop = set(population)
    flagged = {c for c in flagged_since if c in pop}
    positives = {c for c in first_default if c in pop}
    tp = flagged & positives
    leads = [months_between(flagged_since[c], first_default[c]) for c in sorted(tp)]
    return WarningEvaluation(
        clients=len(pop), flagged=len(flagged), positives=len(positives), true_positives=len(tp),
        precision=len(tp) / len(flagged) if flagged else 0.0,
        recall=len(tp) / len(positives) if positives else 0.0,
        median_lead_months=float(statistics.median(leads)) if leads else None)
