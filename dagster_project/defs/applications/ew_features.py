"""Early-warning calibration features: one row per client and month end from the month's signal observations.

Every feature grows with risk (expected coefficient sign >= 0); ``ew_score.py`` fits them, ``ew_calibration.py``
turns the score into levels. Two forms of the same frame: :func:`frame_from_months` from Python observations (the
specification) and :func:`frame_sql`, one SQL query over the signal observations (what the calibration reads: no
Python object per client, signal and month; ``tests/e2e/test_applications_e2e.py`` compares the two on one build).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import pandas as pd

from dagster_project.defs.applications import early_warning as ew


BASE_SIGNALS: tuple[str, ...] = tuple(s for s in ew.SIGNALS if s != "multiple_signals")


# Feature -> (signal, transform). Every feature grows with risk: expected coefficient sign >= 0.
FEATURES: tuple[str, ...] = (
    "arrears_30", "arrears_dpd", "score_drop", "high_utilisation", "negative_cash_flow", "legal_judgments",
    "inquiries", "collateral_gap", "n_signals")


def _feature(name: str, values: Mapping[str, float]) -> float:
    v = values.get
    if name == "arrears_30":
        return 1.0 if (v("arrears") or 0) >= 30 else 0.0
    if name == "arrears_dpd":
        return min(v("arrears") or 0.0, 89.0) / 30.0
    if name == "score_drop":
        return min(v("score_drop") or 0.0, 150.0) / 30.0
    if name == "high_utilisation":
        return min(v("high_utilisation") or 0.0, 12.0) / 6.0
    if name == "negative_cash_flow":
        return min(v("negative_cash_flow") or 0.0, 8.0) / 4.0
    if name == "legal_judgments":
        return min(v("legal_judgments") or 0.0, 6.0) / 3.0
    if name == "inquiries":
        return min(v("inquiries") or 0.0, 12.0) / 6.0
    if name == "collateral_gap":
        c = v("collateral")
        return 0.0 if c is None else float(min(max(1.0 - c, 0.0), 1.0))
    if name == "n_signals":
        return float(sum(1 for s in BASE_SIGNALS if s in values))
    raise KeyError(name)


def feature_row(values: Mapping[str, float]) -> dict[str, float]:
    """Features of one client in one month from its observed signal values ({signal: observed_value})."""
    return {f: _feature(f, values) for f in FEATURES}


def client_values(active: Mapping[ew.Key, ew.Observation]) -> dict[str, dict[str, float]]:
    """{client: {signal: observed value}} of the base signals seen in one month."""
    out: dict[str, dict[str, float]] = {}
    for (client, sig), o in active.items():
        if sig in BASE_SIGNALS:
            out.setdefault(client, {})[sig] = float(o.observed_value)
    return out


def frame_from_months(months: Iterable[tuple[date, Mapping[ew.Key, ew.Observation]]]) -> pd.DataFrame:
    """One row per client and month end with a signal: features and the expert level (rank 1..3 = watch..critical,
    0 = signals too weak for a level by the expert rules, ``early_warning.expert_ranks``)."""
    rows = []
    for month_end, active in months:
        ranks = ew.expert_ranks(active)
        for client, vals in client_values(active).items():
            rows.append({"client_key": client, "month_end": month_end, "expert_rank": ranks.get(client, 0),
                         **feature_row(vals)})
    cols = ["client_key", "month_end", "expert_rank", *FEATURES]
    return pd.DataFrame(rows, columns=cols)


def severity_rank_sql(signal: str, value: str) -> str:
    """SQL: the rank (1..3 = watch..critical, NULL = no signal) :func:`early_warning.severity` gives ``value``."""
    sig = ew.SIGNALS[signal]
    op = ">=" if sig.direction == ">=" else "<"
    whens = [f"WHEN {value} {op} {float(t)!r} THEN {ew.SEVERITY_RANK[level]}"
             for level, t in (("critical", sig.critical), ("warning", sig.warning), ("watch", sig.watch)) if t is not None]
    return f"CASE {' '.join(whens)} END"


_FEATURE_SQL: dict[str, str] = {
    "arrears_30": "CASE WHEN coalesce(arrears, 0) >= 30 THEN 1.0 ELSE 0.0 END",
    "arrears_dpd": "least(coalesce(arrears, 0.0), 89.0) / 30.0",
    "score_drop": "least(coalesce(score_drop, 0.0), 150.0) / 30.0",
    "high_utilisation": "least(coalesce(high_utilisation, 0.0), 12.0) / 6.0",
    "negative_cash_flow": "least(coalesce(negative_cash_flow, 0.0), 8.0) / 4.0",
    "legal_judgments": "least(coalesce(legal_judgments, 0.0), 6.0) / 3.0",
    "inquiries": "least(coalesce(inquiries, 0.0), 12.0) / 6.0",
    "collateral_gap": "CASE WHEN collateral IS NULL THEN 0.0 ELSE least(greatest(1.0 - collateral, 0.0), 1.0) END",
    "n_signals": "n_base::DOUBLE",
}


def frame_sql(observations_sql: str, months_sql: str) -> str:
    """:func:`frame_from_months` of the observations as one SQL query (same rows, order and values).

    ``observations_sql``: long rows (client_key, month_end, signal, observed_value, ...) as
    ``as_of.signal_observations_sql`` gives them; ``months_sql``: the month ends to keep (one column). Severity,
    the composite ``multiple_signals`` and the expert rank follow ``early_warning`` (``severity``,
    ``add_multiple_signals``, ``expert_ranks``).
    """
    assert set(_FEATURE_SQL) == set(FEATURES)
    ranks = " ".join(f"WHEN '{sg}' THEN {severity_rank_sql(sg, 'observed_value')}" for sg in BASE_SIGNALS)
    pivot = ",\n        ".join(f"max(observed_value) FILTER (WHERE signal = '{sg}') AS {sg}" for sg in BASE_SIGNALS)
    features = ",\n    ".join(f"({_FEATURE_SQL[f]})::DOUBLE AS {f}" for f in FEATURES)
    multiple = severity_rank_sql("multiple_signals", "n_base")
    return f"""
WITH active AS (
    SELECT o.client_key, o.month_end, o.signal, o.observed_value::DOUBLE AS observed_value,
        CASE o.signal {ranks} END AS rank
    FROM ({observations_sql}) AS o
    WHERE o.month_end IN ({months_sql}) AND o.signal IN ({", ".join(f"'{sg}'" for sg in BASE_SIGNALS)})
), per_client AS (
    SELECT client_key, month_end, count(*) AS n_base, max(rank) AS top,
        {pivot}
    FROM active WHERE rank IS NOT NULL
    GROUP BY client_key, month_end
), ranked AS (
    SELECT *, greatest(top, coalesce({multiple}, 0)) AS top_all FROM per_client
)
SELECT client_key, month_end,
    CASE WHEN top_all >= 2 OR n_base >= {ew.WATCH_MIN_SIGNALS} THEN top_all ELSE 0 END::BIGINT AS expert_rank,
    {features}
FROM ranked
ORDER BY month_end, client_key"""
