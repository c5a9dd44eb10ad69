"""The early-warning state in the build database, advanced by SQL (no Dagster here; queries in ``ew_sql.py``).

Schema ``state`` (never dropped by dbt nor by ``full_rebuild``; not published):

* ``client_month_signals`` - one row per client x evaluation month x signal (value, expert severity, threshold,
  the composite signal), calibration-free. Appended for the months not in it yet; a month whose usage facts or
  bureau reports changed since it was stored (``signal_months`` keeps a fingerprint per month) is recomputed with
  every later month (``recompute_from``).
* ``client_month_levels`` - the warnings those signals raised under the calibration in force when the month was
  advanced (level, threshold, driver, client score).
* ``early_warning_episodes`` - the timeline: one row per client x signal x opening; a run advances it from the
  previous month's open episodes (``ew_sql.episodes_sql`` with seeds), a recompute rebuilds it from the levels.
* ``early_warning_progress`` - the last month the levels and episodes were advanced to.
"""

from __future__ import annotations

from datetime import date

import duckdb

from dagster_project.defs.applications.as_of import as_of_month, lit, signal_observations_sql
from dagster_project.defs.applications.ew_sql import EPISODE_COLUMNS, episodes_sql, levels_sql, signals_sql
from dagster_project.lib.months import add_months, month_end

STATE_SCHEMA = "state"
SIGNALS = f"{STATE_SCHEMA}.client_month_signals"
SIGNAL_MONTHS = f"{STATE_SCHEMA}.signal_months"
LEVELS = f"{STATE_SCHEMA}.client_month_levels"
EPISODES = f"{STATE_SCHEMA}.early_warning_episodes"
PROGRESS = f"{STATE_SCHEMA}.early_warning_progress"
USAGE = "marts.fct_product_usage_monthly"
BUREAU = "staging.stg_bureau__credit_reports"


def ensure_state(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {EPISODES} (
        client_key VARCHAR NOT NULL, signal VARCHAR NOT NULL, opened_at DATE NOT NULL, last_seen_at DATE NOT NULL,
        cleared_at DATE, severity VARCHAR NOT NULL, max_severity VARCHAR NOT NULL, observed_value DOUBLE,
        threshold DOUBLE, signal_date DATE, first_warning_at DATE, PRIMARY KEY (client_key, signal, opened_at))""")
    con.execute(f"ALTER TABLE {EPISODES} ADD COLUMN IF NOT EXISTS level_driver VARCHAR")
    con.execute(f"ALTER TABLE {EPISODES} ADD COLUMN IF NOT EXISTS client_score DOUBLE")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {PROGRESS} (last_processed_month DATE NOT NULL, run_id VARCHAR, "
        "processed_at TIMESTAMP)"
    )
    con.execute(f"""CREATE TABLE IF NOT EXISTS {SIGNALS} (client_key VARCHAR NOT NULL, month_end DATE NOT NULL,
        signal VARCHAR NOT NULL, observed_value DOUBLE, severity_rank INTEGER NOT NULL, threshold DOUBLE,
        signal_date DATE)""")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SIGNAL_MONTHS} (month_end DATE PRIMARY KEY, usage_fp VARCHAR, bureau_fp VARCHAR)"
    )
    con.execute(f"""CREATE TABLE IF NOT EXISTS {LEVELS} (client_key VARCHAR NOT NULL, month_end DATE NOT NULL,
        signal VARCHAR NOT NULL, level_rank INTEGER NOT NULL, observed_value DOUBLE, threshold DOUBLE,
        signal_date DATE, level_driver VARCHAR, client_score DOUBLE)""")


def evaluated_months_sql(to_month: date) -> str:
    """The evaluation months stored in the state up to ``to_month`` (months with usage facts), one column month_end."""
    return (
        f"SELECT month_end FROM {SIGNAL_MONTHS} WHERE usage_fp IS NOT NULL AND month_end <= last_day({lit(to_month)})"
    )


def _fingerprints_sql(to_month: date) -> str:
    """Per evaluation month: a fingerprint of its usage facts and of the bureau reports dated in it."""
    return f"""
WITH u AS (
    SELECT last_day(snapshot_month) AS month_end, count(*)::VARCHAR || ':' || sum(hash(client_key, snapshot_month,
        max_days_past_due, utilisation))::VARCHAR AS usage_fp
    FROM {USAGE} WHERE snapshot_month <= {lit(to_month)} GROUP BY 1
), b AS (
    SELECT last_day(report_date) AS month_end, count(*)::VARCHAR || ':' || sum(hash(client_key, report_id, report_date,
        bureau_score, inquiries_6m, legal_judgments, total_debt, collateral_value, operating_cash_flow))::VARCHAR
            AS bureau_fp
    FROM {BUREAU} WHERE report_date <= last_day({lit(to_month)}) GROUP BY 1
)
SELECT coalesce(u.month_end, b.month_end) AS month_end, u.usage_fp, b.bureau_fp
FROM u FULL JOIN b USING (month_end)"""


def first_changed_month(con: duckdb.DuckDBPyConnection, to_month: date, now: str | None = None) -> date | None:
    """The first month (first day) whose stored signals no longer match the facts: its usage or bureau fingerprint
    changed, or a month was added before the last stored one. None when every stored month still holds.
    ``now``: a relation holding ``_fingerprints_sql(to_month)`` already computed."""
    row = con.execute(f"""
        WITH now AS ({now or _fingerprints_sql(to_month)}),
        stored AS (SELECT * FROM {SIGNAL_MONTHS}),
        last AS (SELECT max(month_end) AS m FROM stored)
        SELECT min(n.month_end) FROM now AS n FULL JOIN stored AS s USING (month_end), last
        WHERE coalesce(n.month_end, s.month_end) <= last.m AND (s.month_end IS NULL OR n.month_end IS NULL
            OR n.usage_fp IS DISTINCT FROM s.usage_fp OR n.bureau_fp IS DISTINCT FROM s.bureau_fp)""").fetchone()
    gone = con.execute(
        f"SELECT min(month_end) FROM {SIGNAL_MONTHS} WHERE month_end > last_day({lit(to_month)})"
    ).fetchone()[0]
    firsts = [d for d in (row[0] if row else None, gone) if d is not None]
    return date(min(firsts).year, min(firsts).month, 1) if firsts else None


def advance_signals(con: duckdb.DuckDBPyConnection, end: date | None = None) -> dict[str, int]:
    """Append the signals of the months not stored yet (up to the as-of month), after recomputing from the first
    month whose facts changed. Returns {months_added, recomputed_from (0/1)}. Idempotent."""
    ensure_state(con)
    end = end or as_of_month(con)
    if end is None:
        return {"signal_months_added": 0, "signal_months_recomputed": 0}
    con.execute(f"CREATE OR REPLACE TEMP TABLE ew_fingerprints AS {_fingerprints_sql(end)}")  # one scan per run
    changed = first_changed_month(con, end, "SELECT * FROM ew_fingerprints")
    if changed is not None:
        _drop_from(con, changed)
    last = con.execute(f"SELECT max(month_end) FROM {SIGNAL_MONTHS}").fetchone()[0]
    first = con.execute(f"SELECT min(snapshot_month) FROM {USAGE}").fetchone()[0]
    start = add_months(date(last.year, last.month, 1), 1) if last else first
    if start is None or start > end:
        return {"signal_months_added": 0, "signal_months_recomputed": int(changed is not None)}
    con.execute("BEGIN")
    con.execute(f"INSERT INTO {SIGNALS} BY NAME {signals_sql(signal_observations_sql(start, end, ordered=False))}")
    con.execute(f"""INSERT INTO {SIGNAL_MONTHS} BY NAME SELECT * FROM ew_fingerprints
        WHERE month_end NOT IN (SELECT month_end FROM {SIGNAL_MONTHS})""")
    con.execute("COMMIT")
    added = con.execute(
        f"SELECT count(*) FROM {SIGNAL_MONTHS} WHERE month_end >= last_day({lit(start)}) AND usage_fp IS NOT NULL"
    ).fetchone()[0]
    return {"signal_months_added": int(added), "signal_months_recomputed": int(changed is not None)}


def _drop_from(con: duckdb.DuckDBPyConnection, month: date) -> None:
    """Forget the signals and levels of ``month`` and later, and the progress past it (the episodes are rebuilt by
    the next ``advance_warning_state``)."""
    me = lit(month_end(month))
    con.execute("BEGIN")
    con.execute(f"DELETE FROM {SIGNALS} WHERE month_end >= {me}")
    con.execute(f"DELETE FROM {SIGNAL_MONTHS} WHERE month_end >= {me}")
    con.execute(f"DELETE FROM {LEVELS} WHERE month_end >= {me}")
    con.execute(f"DELETE FROM {PROGRESS} WHERE last_processed_month >= {lit(month)}")
    con.execute(f"INSERT INTO {PROGRESS} VALUES ({lit(add_months(month, -1))}, 'recompute', now()::TIMESTAMP)")
    con.execute("COMMIT")


def recompute_from(
    con: duckdb.DuckDBPyConnection, month: date, run_id: str, calibration, end: date | None = None
) -> dict[str, int]:
    """Recompute the state from ``month`` (first day) onward - signals, levels (with ``calibration``) and the
    timeline - as a correction of that month or ``full_rebuild`` needs; the months before keep their levels."""
    ensure_state(con)
    _drop_from(con, month)
    return advance_warning_state(con, run_id, calibration, end)


def _rebuild_episodes_needed(con: duckdb.DuckDBPyConnection, start_end: str) -> bool:
    """After a recompute some stored episodes reach past the last month still levelled: rebuild from the levels."""
    return bool(
        con.execute(
            f"SELECT count(*) FROM {EPISODES} WHERE last_seen_at >= {start_end} OR cleared_at >= {start_end}"
        ).fetchone()[0]
    )


def advance_warning_state(
    con: duckdb.DuckDBPyConnection, run_id: str, calibration, end: date | None = None
) -> dict[str, int]:
    """Level the months not processed yet (up to ``end``, default the as-of month) with ``calibration`` and advance
    the timeline from the open episodes (idempotent: no new month, no change)."""
    end = end or as_of_month(con)
    stats = advance_signals(con, end)
    last = con.execute(f"SELECT max(last_processed_month) FROM {PROGRESS}").fetchone()[0]
    first = con.execute(f"SELECT min(snapshot_month) FROM {USAGE}").fetchone()[0]
    start = add_months(last, 1) if last else first
    if start is None or end is None or start > end:
        return {"months_processed": 0, "opened": 0, "cleared": 0, **stats}
    s_end = lit(month_end(start))
    new_signals = f"SELECT * FROM {SIGNALS} WHERE month_end BETWEEN {s_end} AND last_day({lit(end)})"
    months = evaluated_months_sql(end)
    con.execute("BEGIN")
    con.execute(f"DELETE FROM {LEVELS} WHERE month_end >= {s_end}")
    con.execute(f"INSERT INTO {LEVELS} BY NAME {levels_sql(new_signals, calibration)}")
    cols = ", ".join(EPISODE_COLUMNS)
    if _rebuild_episodes_needed(con, s_end):  # a recompute: the timeline again from every stored level
        con.execute(f"CREATE OR REPLACE TEMP TABLE ew_next AS {episodes_sql(f'SELECT * FROM {LEVELS}', months)}")
        con.execute(f"DELETE FROM {EPISODES}")
    else:
        seeds = f"SELECT * FROM {EPISODES} WHERE cleared_at IS NULL"
        levels = f"SELECT * FROM {LEVELS} WHERE month_end >= {s_end}"
        con.execute(f"CREATE OR REPLACE TEMP TABLE ew_next AS {episodes_sql(levels, months, seeds)}")
        con.execute(f"DELETE FROM {EPISODES} WHERE cleared_at IS NULL")
    con.execute(f"INSERT INTO {EPISODES} ({cols}) SELECT {cols} FROM ew_next")
    con.execute(f"INSERT INTO {PROGRESS} VALUES ({lit(end)}, ?, now()::TIMESTAMP)", [run_id])
    con.execute("COMMIT")
    n_months, opened, cleared = con.execute(f"""
        SELECT (SELECT count(*) FROM ({months}) WHERE month_end >= {s_end}),
            count(*) FILTER (WHERE opened_at >= {s_end}), count(*) FILTER (WHERE cleared_at IS NOT NULL)
        FROM ew_next""").fetchone()
    con.execute("DROP TABLE ew_next")
    return {"months_processed": int(n_months), "opened": int(opened), "cleared": int(cleared), **stats}
