"""Early-warning calibration features: one row per client and month end from the month's signal observations.

Every feature grows with risk (expected coefficient sign >= 0); ``ew_score.py`` fits them, ``ew_calibration.py``
turns the score into levels.
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
