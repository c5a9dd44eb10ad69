"""The early-warning timeline in the build database and its replays (no Dagster here).

``state.early_warning_episodes`` holds every warning episode (opened, last seen, cleared) across runs; each run
replays only the months not processed yet. ``evaluate_warnings`` replays from scratch up to a cutoff for the
time-split evaluation. Rules per month: ``early_warning.py``; signal SQL: ``as_of.signal_observations_sql``.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

import duckdb
import pandas as pd

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications.as_of import (EVAL_HORIZON_MONTHS, as_of_month, first_default_sql, lit,
                                                     signal_observations_sql)
from dagster_project.lib.months import add_months, month_end


STATE_SCHEMA = "state"  # never dropped by dbt nor by full_rebuild; not published
EPISODES = f"{STATE_SCHEMA}.early_warning_episodes"
PROGRESS = f"{STATE_SCHEMA}.early_warning_progress"


def ensure_state(con: duckdb.DuckDBPyConnection) -> None:
    """The warning timeline lives in its own schema: dbt never touches it, full_rebuild keeps it."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {EPISODES} (
        client_key VARCHAR NOT NULL, signal VARCHAR NOT NULL, opened_at DATE NOT NULL, last_seen_at DATE NOT NULL,
        cleared_at DATE, severity VARCHAR NOT NULL, max_severity VARCHAR NOT NULL, observed_value DOUBLE,
        threshold DOUBLE, signal_date DATE, first_warning_at DATE, PRIMARY KEY (client_key, signal, opened_at))""")
    # what set each episode's latest severity (and so its threshold); added in issue 24, null on older episodes
    con.execute(f"ALTER TABLE {EPISODES} ADD COLUMN IF NOT EXISTS level_driver VARCHAR")
    con.execute(f"ALTER TABLE {EPISODES} ADD COLUMN IF NOT EXISTS client_score DOUBLE")
    con.execute(f"CREATE TABLE IF NOT EXISTS {PROGRESS} (last_processed_month DATE NOT NULL, run_id VARCHAR, "
                "processed_at TIMESTAMP)")


def evaluation_months_sql(from_month: date, to_month: date) -> str:
    """The month ends with usage snapshots from ``from_month`` to ``to_month``: the months warnings are evaluated in."""
    return ("SELECT DISTINCT last_day(snapshot_month) FROM marts.fct_product_usage_monthly "
            f"WHERE snapshot_month BETWEEN {lit(from_month)} AND {lit(to_month)}")


def monthly_observations(con: duckdb.DuckDBPyConnection, from_month: date, to_month: date, calibration=None
                         ) -> list[tuple[date, dict[ew.Key, ew.Observation]]]:
    """Observations per month end (ascending), composite signal added.

    ``calibration`` None: every signal at its own expert severity, none dropped (the calibration's features).
    Otherwise (an ``ew_calibration.Calibration``, ``EXPERT`` included) the levels in force
    (``ew_calibration.apply_levels``): each observation at its level with the threshold of that level, and
    observations below the watch level dropped.
    """
    by_month: dict[date, dict[ew.Key, ew.Observation]] = defaultdict(dict)
    months = [r[0] for r in con.execute(f"{evaluation_months_sql(from_month, to_month)} ORDER BY 1").fetchall()]
    for ck, month_end, sig, value, thr, sdate in con.execute(signal_observations_sql(from_month, to_month)).fetchall():
        sev = ew.severity(sig, value)
        if sev:
            by_month[month_end][(ck, sig)] = ew.Observation(value, ew.threshold_for(sig, sev), sdate, sev)
    out = [(m, ew.add_multiple_signals(by_month.get(m, {}), m)) for m in months]
    if calibration is not None:
        from dagster_project.defs.applications import ew_calibration

        out = [(m, ew_calibration.apply_levels(calibration, active)) for m, active in out]
    return out


def _episode_rows(episodes: Sequence[ew.Episode]) -> pd.DataFrame:
    cols = ["client_key", "signal", "opened_at", "last_seen_at", "cleared_at", "severity", "max_severity",
            "observed_value", "threshold", "signal_date", "first_warning_at", "level_driver", "client_score"]
    return pd.DataFrame([{c: getattr(e, c) for c in cols} for e in episodes], columns=cols)


def advance_warning_state(con: duckdb.DuckDBPyConnection, run_id: str, calibration=None) -> dict[str, int]:
    """Replay the months not processed yet onto the state table (idempotent: no new month, no change)."""
    ensure_state(con)
    end = as_of_month(con)
    last = con.execute(f"SELECT max(last_processed_month) FROM {PROGRESS}").fetchall()[0][0]
    first = con.execute("SELECT min(snapshot_month) FROM marts.fct_product_usage_monthly").fetchall()[0][0]
    start = add_months(last, 1) if last else first
    if start is None or end is None or start > end:
        return {"months_processed": 0, "opened": 0, "cleared": 0}
    open_eps = {}
    for r in con.execute(f"SELECT client_key, signal, opened_at, last_seen_at, severity, max_severity, observed_value, "
                         f"threshold, signal_date, first_warning_at, level_driver, client_score FROM {EPISODES} "
                         "WHERE cleared_at IS NULL").fetchall():
        open_eps[(r[0], r[1])] = ew.Episode(client_key=r[0], signal=r[1], opened_at=r[2], last_seen_at=r[3], severity=r[4],
                                            max_severity=r[5], observed_value=r[6], threshold=r[7], signal_date=r[8],
                                            first_warning_at=r[9], level_driver=r[10], client_score=r[11])
    months = monthly_observations(con, start, end, calibration)
    now_open, cleared = ew.replay(open_eps, months)
    df = _episode_rows([*now_open.values(), *cleared])
    con.register("eps_df", df)
    try:
        con.execute("BEGIN")
        con.execute(f"DELETE FROM {EPISODES} WHERE cleared_at IS NULL")
        con.execute(f"INSERT INTO {EPISODES} BY NAME SELECT client_key, signal, opened_at::DATE AS opened_at, "
                    "last_seen_at::DATE AS last_seen_at, cleared_at::DATE AS cleared_at, severity, max_severity, "
                    "observed_value::DOUBLE AS observed_value, threshold::DOUBLE AS threshold, "
                    "signal_date::DATE AS signal_date, first_warning_at::DATE AS first_warning_at, "
                    "level_driver::VARCHAR AS level_driver, client_score::DOUBLE AS client_score FROM eps_df")
        con.execute(f"INSERT INTO {PROGRESS} VALUES ({lit(end)}, ?, now()::TIMESTAMP)", [run_id])
        con.execute("COMMIT")
    finally:
        con.unregister("eps_df")
    first_end = month_end(start)
    opened = sum(1 for e in [*now_open.values(), *cleared] if e.opened_at >= first_end)
    return {"months_processed": len(months), "opened": opened, "cleared": len(cleared)}


def evaluate_warnings(con: duckdb.DuckDBPyConnection, horizon: int = EVAL_HORIZON_MONTHS, calibration=None) -> pd.DataFrame:
    """Time split: warnings replayed from scratch on data up to the cutoff vs first 90+ dpd after it.

    ``calibration``: the levels of that calibration (ew_calibration_assets.calibration_for_evaluation makes sure it
    read no data after the cutoff); None = expert thresholds.
    """
    end = as_of_month(con)
    cutoff = add_months(end, -horizon)
    first = con.execute("SELECT min(snapshot_month) FROM marts.fct_product_usage_monthly").fetchall()[0][0]
    months = monthly_observations(con, first, cutoff, calibration) if first and first <= cutoff else []
    open_eps, _ = ew.replay({}, months)
    first_default = dict(con.execute(first_default_sql()).fetchall())
    population = [r[0] for r in con.execute(
        f"SELECT DISTINCT client_key FROM marts.fct_product_usage_monthly WHERE snapshot_month = {lit(cutoff)}").fetchall()]
    population = [c for c in population if not (c in first_default and first_default[c] <= cutoff)]
    positives = {c: m for c, m in first_default.items() if cutoff < m <= end}
    cutoff_end = month_end(cutoff)
    rows = []
    for level in ew.SEVERITIES:
        need = ew.SEVERITY_RANK[level]
        history: dict[str, date] = {}
        for m, active in months:
            if ew.months_between(m, cutoff_end) >= 12:
                continue
            for (ck, _sig), o in active.items():
                if ew.SEVERITY_RANK[o.severity] >= max(need, 2) and ck not in history:
                    history[ck] = m
        flagged = {}
        for (ck, _sig), ep in open_eps.items():
            if ew.SEVERITY_RANK[ep.severity] >= need:
                flagged[ck] = min(history.get(ck, cutoff_end), flagged.get(ck, cutoff_end))
        r = ew.evaluate(flagged, positives, population)
        rows.append({"flag_level": level, "cutoff_month": cutoff, "outcome_end_month": end, "clients": r.clients,
                     "flagged": r.flagged, "positives": r.positives, "true_positives": r.true_positives,
                     "precision": r.precision, "recall": r.recall, "median_lead_months": r.median_lead_months,
                     "meets_bar": bool(r.recall >= 0.70 and r.precision >= 0.30 and (r.median_lead_months or 0) >= 2),
                     "share_flagged": r.flagged / r.clients if r.clients else 0.0,
                     "level_driver": calibration.method if calibration is not None else "expert",
                     "calibration_version": (calibration.version or "expert") if calibration is not None else "expert"})
    return pd.DataFrame(rows)
