"""Early-warning calibration features: one row per client and month end from the month's signals, in SQL.

Every feature grows with risk (expected coefficient sign >= 0); ``ew_score.py`` fits them, ``ew_calibration.py``
chooses the score's operating points, ``ew_sql.client_months_sql`` computes them per client and month from
``state.client_month_signals``. The features' one definition is :data:`FEATURE_SQL` (a column per base signal's
observed value, NULL when the signal is not seen).
"""

from __future__ import annotations

from dagster_project.defs.applications import early_warning as ew

BASE_SIGNALS: tuple[str, ...] = tuple(s for s in ew.SIGNALS if s != "multiple_signals")


# Feature -> (signal, transform). Every feature grows with risk: expected coefficient sign >= 0.
FEATURES: tuple[str, ...] = (
    "arrears_30",
    "arrears_dpd",
    "score_drop",
    "high_utilisation",
    "negative_cash_flow",
    "legal_judgments",
    "inquiries",
    "collateral_gap",
    "n_signals",
)


def severity_rank_sql(signal: str, value: str) -> str:
    """SQL: the rank (1..3 = watch..critical, NULL = no signal) :func:`early_warning.severity` gives ``value``."""
    sig = ew.SIGNALS[signal]
    op = ">=" if sig.direction == ">=" else "<"
    whens = [
        f"WHEN {value} {op} {float(t)!r} THEN {ew.SEVERITY_RANK[level]}"
        for level, t in (("critical", sig.critical), ("warning", sig.warning), ("watch", sig.watch))
        if t is not None
    ]
    return f"CASE {' '.join(whens)} END"


FEATURE_SQL: dict[str, str] = {
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
