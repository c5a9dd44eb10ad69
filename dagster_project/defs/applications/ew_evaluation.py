"""The early warnings' time-split evaluations in SQL (no Dagster here).

Both evaluations level the stored signals (``state.client_month_signals``) with the calibration they evaluate, up to
their cutoff - never the live episodes. A client is flagged at a level when its warnings at the cutoff's month reach
it (an open episode at the cutoff is a level row in its last evaluated month); its lead starts at its first month
at warning or above in the 12 months up to the cutoff. SQL reduces the population to a handful of cells (flagged,
positive, lead) with counts; point estimates and the bootstrap (multinomial counts over the cells, the same as
resampling clients) are computed from those cells.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications.as_of import first_default_sql, lit
from dagster_project.defs.applications.ew_sql import levels_sql
from dagster_project.defs.applications.ew_state import SIGNALS, USAGE, evaluated_months_sql
from dagster_project.lib.months import add_months, month_end

LOOKBACK_MONTHS = 12  # lead time: first warning+ month in the 12 months up to the cutoff


def _mnum(col: str) -> str:
    return f"(year({col}) * 12 + month({col}))"


def cells_sql(calibration, cutoff: date, end: date, flag_month: date) -> str:
    """Cells (level_rank at the flag month, positive, lead months) with their client counts, for the clients with a
    facility at ``cutoff`` not at 90+ dpd by then; positive = first 90+ dpd in (cutoff, end]; ``lead_r2`` /
    ``lead_r3``: months from the first month at level >= 2 / >= 3 in the lookback window (the flag month when none)
    to that default."""
    ce = lit(month_end(cutoff))
    lo = lit(month_end(add_months(cutoff, -(LOOKBACK_MONTHS - 1))))
    sig = f"SELECT * FROM {SIGNALS} WHERE month_end BETWEEN {lo} AND {ce}"
    return f"""
WITH lv AS (
    SELECT client_key, month_end, max(level_rank) AS r FROM ({levels_sql(sig, calibration)}) GROUP BY ALL
), fd AS ({first_default_sql()}
), pop AS (
    SELECT DISTINCT client_key FROM {USAGE} WHERE snapshot_month = {lit(cutoff)}
      AND client_key NOT IN (SELECT client_key FROM fd WHERE first_90_month <= {lit(cutoff)})
), hist AS (
    SELECT client_key, min(month_end) FILTER (WHERE r >= 2) AS h2, min(month_end) FILTER (WHERE r >= 3) AS h3
    FROM lv GROUP BY client_key
), per_client AS (
    SELECT p.client_key, coalesce(a.r, 0) AS r,
        fd.first_90_month > {lit(cutoff)} AND fd.first_90_month <= {lit(end)} AS positive,
        CASE WHEN fd.first_90_month > {lit(cutoff)} AND fd.first_90_month <= {lit(end)}
             THEN {_mnum("fd.first_90_month")} - {_mnum(f"coalesce(least(h.h2, {ce}), {ce})")} END AS lead_r2,
        CASE WHEN fd.first_90_month > {lit(cutoff)} AND fd.first_90_month <= {lit(end)}
             THEN {_mnum("fd.first_90_month")} - {_mnum(f"coalesce(least(h.h3, {ce}), {ce})")} END AS lead_r3
    FROM pop AS p
    LEFT JOIN (SELECT * FROM lv WHERE month_end = {lit(month_end(flag_month))}) AS a USING (client_key)
    LEFT JOIN fd USING (client_key)
    LEFT JOIN hist AS h USING (client_key)
)
SELECT r, coalesce(positive, false) AS positive, lead_r2, lead_r3, count(*) AS n
FROM per_client GROUP BY ALL ORDER BY ALL"""


def level_cells(cells: pd.DataFrame, level: str) -> pd.DataFrame:
    """The cells of one flag level: flagged, positive, lead (the true positives' lead), n."""
    need = ew.SEVERITY_RANK[level]
    lead = cells["lead_r3"] if need >= 3 else cells["lead_r2"]
    flagged = cells.r.to_numpy() >= need
    out = pd.DataFrame(
        {
            "flagged": flagged,
            "positive": cells.positive.to_numpy(bool),
            "lead": np.where(flagged & cells.positive.to_numpy(bool), lead.to_numpy(dtype=float), np.nan),
            "n": cells.n.to_numpy(dtype=np.int64),
        }
    )
    return out.groupby(["flagged", "positive", "lead"], dropna=False, as_index=False).n.sum()


def _weighted_median(values: np.ndarray, counts: np.ndarray) -> float:
    """statistics.median of ``values`` repeated ``counts`` times (the mean of the two middle values when even)."""
    total = int(counts.sum())
    if total == 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(counts[order])
    lo = v[np.searchsorted(cum, (total - 1) // 2 + 1)]
    hi = v[np.searchsorted(cum, total // 2 + 1)]
    return float((lo + hi) / 2)


def rates(cells: pd.DataFrame, counts: np.ndarray | None = None) -> tuple[float, float, float, float]:
    """(precision, recall, share flagged, median lead) of level cells, with ``counts`` in place of their n."""
    n = cells.n.to_numpy(dtype=float) if counts is None else counts
    f, y = cells.flagged.to_numpy(bool), cells.positive.to_numpy(bool)
    nf, npos, tp, total = n[f].sum(), n[y].sum(), n[f & y].sum(), n.sum()
    leads = cells.lead.to_numpy(dtype=float)[f & y]
    return (
        float(tp / nf) if nf else 0.0,
        float(tp / npos) if npos else 0.0,
        float(nf / total) if total else 0.0,
        _weighted_median(leads, n[f & y]) if tp else float("nan"),
    )


def bootstrap_ci(cells: pd.DataFrame, n_boot: int, seed: int = 17) -> dict[str, tuple[float, float]]:
    """Bootstrap 95 % intervals over clients: each resample draws the cells' counts from a multinomial with the
    population's size and the cells' shares (the same distribution as resampling clients with replacement). The
    cells are merged and put in one order first (flagged, positive, lead), so the draws do not depend on how they
    came."""
    cells = cells.groupby(["flagged", "positive", "lead"], dropna=False, as_index=False, sort=True).n.sum()
    n = cells.n.to_numpy(dtype=np.int64)
    total = int(n.sum())
    if not total or not n_boot:
        return {}
    boots = np.random.default_rng(seed).multinomial(total, n / total, size=n_boot)
    stats = np.array([rates(cells, b.astype(float)) for b in boots], dtype=float)
    out = {}
    for j, name in enumerate(("precision", "recall", "share_flagged", "median_lead_months")):
        col = stats[:, j][~np.isnan(stats[:, j])]
        out[name] = (
            (float(np.percentile(col, 2.5)), float(np.percentile(col, 97.5)))
            if len(col)
            else (float("nan"), float("nan"))
        )
    return out


def flag_month(con: duckdb.DuckDBPyConnection, cutoff: date) -> date:
    """The last evaluated month up to the cutoff: the month whose open warnings are the cutoff's."""
    m = con.execute(f"SELECT max(month_end) FROM ({evaluated_months_sql(cutoff)})").fetchone()[0]
    return m or month_end(cutoff)


def level_rows(
    con: duckdb.DuckDBPyConnection, calibration, cutoff: date, end: date, flag: date, n_boot: int = 0
) -> list[dict]:
    """Per flag level: clients, flagged, positives, true positives, precision, recall, share flagged, median lead,
    meets_bar and (``n_boot`` > 0) bootstrap intervals ``ci``."""
    from dagster_project.defs.applications.ew_calibration import meets_bar

    cells = con.execute(cells_sql(calibration, cutoff, end, flag)).df()
    out = []
    for level in ew.SEVERITIES:
        lc = level_cells(cells, level)
        p, r, share, lead = rates(lc)
        n, f, y = lc.n.to_numpy(), lc.flagged.to_numpy(bool), lc.positive.to_numpy(bool)
        med = None if np.isnan(lead) else lead
        out.append(
            {
                "flag_level": level,
                "clients": int(n.sum()),
                "flagged": int(n[f].sum()),
                "positives": int(n[y].sum()),
                "true_positives": int(n[f & y].sum()),
                "precision": p,
                "recall": r,
                "median_lead_months": med,
                "meets_bar": meets_bar(r, p, med),
                "share_flagged": share,
                "ci": bootstrap_ci(lc, n_boot) if n_boot else {},
            }
        )
    return out


def evaluate_warnings(con: duckdb.DuckDBPyConnection, end: date, horizon: int, calibration) -> pd.DataFrame:
    """``marts.early_warning_evaluation``: the levels of ``calibration`` at the cutoff (``horizon`` months before
    ``end``) against the first 90+ dpd after it."""
    cutoff = add_months(end, -horizon)
    rows = level_rows(con, calibration, cutoff, end, flag_month(con, cutoff))
    return pd.DataFrame(
        [
            {k: v for k, v in r.items() if k != "ci"}
            | {
                "cutoff_month": cutoff,
                "outcome_end_month": end,
                "level_driver": calibration.method if calibration is not None else "expert",
                "calibration_version": calibration.version or "expert",
            }
            for r in rows
        ],
        columns=[
            "flag_level",
            "cutoff_month",
            "outcome_end_month",
            "clients",
            "flagged",
            "positives",
            "true_positives",
            "precision",
            "recall",
            "median_lead_months",
            "meets_bar",
            "share_flagged",
            "level_driver",
            "calibration_version",
        ],
    )
