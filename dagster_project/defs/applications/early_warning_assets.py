"""Risk early warnings and their time-split evaluation, as Dagster assets (group ``applications``).

The state and its SQL advance are in ``ew_state.py`` / ``ew_sql.py``, the per-signal rules in ``early_warning.py``,
the calibrated levels in ``ew_calibration_store.py`` / ``ew_calibration_assets.py``.
"""

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications import evaluation_inputs as inputs
from dagster_project.defs.applications.as_of import EVAL_HORIZON_MONTHS
from dagster_project.defs.applications.ew_calibration_assets import evaluation_with_comparison
from dagster_project.defs.applications.ew_calibration_store import current_calibration
from dagster_project.defs.applications.ew_state import EPISODES, USAGE, advance_warning_state, recompute_from
from dagster_project.defs.applications.keys import (
    AS_OF,
    DIM_CLIENT,
    EW_CALIBRATION,
    EW_EVAL,
    GROUP,
    SEGMENT_DEPS,
    SEGMENT_DOCS,
    SEGMENT_OF_RECORD,
    STG_BUREAU,
    USAGE_MONTHLY,
    WARNINGS,
    WORKOUT,
)
from dagster_project.defs.applications.store import write_app_table
from dagster_project.lib.metadata import chart_first, figure, md_table, png_markdown
from dagster_project.lib.resources import Warehouse
from dagster_project.lib.tables import sql_literal
from dagster_project.lib.warehouse import connect

WARNING_COLUMNS = {
    "warning_id": "Stable id of the warning: client_key|signal|opened_at.",
    "client_key": "Pseudonymous client key.",
    **SEGMENT_DOCS,
    "signal": "score_drop, arrears, high_utilisation, negative_cash_flow, legal_judgments, inquiries, collateral "
    "or multiple_signals.",
    "signal_description": "What the observed value measures.",
    "status": "open (signal still seen in the latest evaluated month) or cleared.",
    "severity": "Severity in the latest month the signal was seen: watch, warning or critical (rules in "
    "docs/applications.md; with a calibrated combined score, ml.early_warning_calibration, the "
    "client's score level).",
    "max_severity": "Highest severity while the warning was open.",
    "observed_value": "Latest observed value of the signal.",
    "level_driver": "What set the severity: expert (the signal's own thresholds) or score (the client's calibrated "
    "combined score, client_score); null on warnings last seen before this was recorded.",
    "threshold": "Threshold of the row's own severity: level_driver expert - the signal's threshold at that "
    "severity (compare with observed_value); score - the combined score's point of that severity "
    "(compare with client_score); null when not recorded.",
    "client_score": "The client's combined early-warning score (0-1) in the latest month seen, when level_driver "
    "is score.",
    "watch_threshold": "Expert rule: observed value from which the signal is seen (a reason code); alone it makes "
    "a watch only with another signal at once.",
    "warning_threshold": "Expert rule: observed value from which the severity is `warning` (null: never; not used "
    "while a calibrated combined score drives the levels).",
    "critical_threshold": "Expert rule: observed value from which the severity is `critical` (null: never; see "
    "warning_threshold).",
    "signal_date": "Date of the observation behind the latest value (bureau report date or snapshot month).",
    "opened_at": "Month end in which the signal was first seen (kept across runs in state.early_warning_episodes).",
    "first_warning_at": "First month end with severity warning or critical (null: watch only).",
    "last_seen_at": "Latest month end in which the signal was seen.",
    "cleared_at": "First month end in which the signal was no longer seen; null while open.",
    "months_open": "Months from opened_at to cleared_at (or to the as-of month while open).",
    "as_of_date": "The build's as-of date.",
}


def _num(v: float | None) -> str:
    return "NULL" if v is None else repr(float(v))


def _signal_catalogue_sql() -> str:
    vals = ", ".join(
        f"({sql_literal(s.name)}, {sql_literal(s.description)}, {_num(s.watch)}, {_num(s.warning)}, {_num(s.critical)})"
        for s in ew.SIGNALS.values()
    )
    return (
        f"SELECT * FROM (VALUES {vals}) AS t(signal, signal_description, watch_threshold, warning_threshold, "
        "critical_threshold)"
    )


def _rank_sql(col: str) -> str:
    return f"CASE {col} WHEN 'watch' THEN 1 WHEN 'warning' THEN 2 WHEN 'critical' THEN 3 ELSE 0 END"


def _warning_chart(con: duckdb.DuckDBPyConnection):
    df = con.execute(f"""
        WITH months AS (SELECT DISTINCT last_day(snapshot_month) AS m FROM marts.fct_product_usage_monthly)
        SELECT m, e.max_severity AS severity, count(*) AS n FROM months
        JOIN {EPISODES} AS e ON e.opened_at <= m AND (e.cleared_at IS NULL OR e.cleared_at > m)
        WHERE e.signal <> 'collateral' GROUP BY ALL ORDER BY 1""").df()
    fig, ax = figure(9, 4)
    if df.empty:
        ax.text(0.5, 0.5, "no warnings", ha="center")
        return fig
    piv = df.pivot_table(index="m", columns="severity", values="n", fill_value=0)
    piv = piv[[s for s in ew.SEVERITIES if s in piv.columns]]
    piv.plot.area(ax=ax, color={"watch": "#f2c14e", "warning": "#f78154", "critical": "#b3001b"}, alpha=0.85)
    ax.set_title("Open warnings by (highest) severity, month by month (collateral coverage excluded)")
    ax.set_xlabel("")
    ax.set_ylabel("open warnings")
    return fig


def warnings_sql(episodes: str = EPISODES) -> str:
    """``marts.risk_early_warnings`` from the timeline ``episodes``: one row per warning, clients in default left
    out."""
    return f"""
            SELECT e.client_key || '|' || e.signal || '|' || strftime(e.opened_at, '%Y-%m-%d') AS warning_id,
                e.client_key, s.segment_id, s.segment_name, s.segment_source, e.signal, sc.signal_description,
                CASE WHEN e.cleared_at IS NULL THEN 'open' ELSE 'cleared' END AS status,
                e.severity, e.max_severity, e.observed_value, e.level_driver,
                CASE WHEN e.level_driver IS NULL THEN NULL ELSE e.threshold END AS threshold, e.client_score,
                sc.watch_threshold::DOUBLE AS watch_threshold, sc.warning_threshold::DOUBLE AS warning_threshold,
                sc.critical_threshold::DOUBLE AS critical_threshold, e.signal_date, e.opened_at, e.first_warning_at,
                e.last_seen_at, e.cleared_at,
                date_diff('month', e.opened_at, coalesce(e.cleared_at, d.as_of_date)) AS months_open, d.as_of_date
            FROM {episodes} AS e
            JOIN marts.dim_client AS d USING (client_key)
            JOIN ({SEGMENT_OF_RECORD}) AS s USING (client_key)
            LEFT JOIN ({_signal_catalogue_sql()}) AS sc USING (signal)
            WHERE e.client_key NOT IN (SELECT client_key FROM marts.workout_clients)
            ORDER BY e.client_key, e.signal, e.opened_at"""


@dg.asset(
    key=WARNINGS,
    group_name=GROUP,
    kinds={"duckdb", "python"},
    deps=[USAGE_MONTHLY, STG_BUREAU, DIM_CLIENT, AS_OF, EW_CALIBRATION, WORKOUT, *SEGMENT_DEPS],
)
def risk_early_warnings(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Risk early warnings per client and signal (bureau and usage history), one open warning per client and signal.

    Signals: bureau score drop since the previous report, new or rising arrears, utilisation > 90 % in
    consecutive months, negative operating cash flow in consecutive reports, new legal judgments, rising
    inquiries, collateral coverage below 1, several signals at once. Severity watch / warning / critical by the
    rules in docs/applications.md. The timeline (opened_at, cleared_at) is kept across runs in
    state.early_warning_episodes, which dbt and full_rebuild never drop; each run advances it in SQL from the open
    warnings by the months not processed yet (signals and levels per client and month in state, ew_state.py).
    Clients already in default (marts.workout_clients) are left out: they are the workout team's, not a warning.
    A corrected delivery month is recomputed with every month after it; full_rebuild recomputes the whole state from
    the first month with the calibration in force.
    """
    calibration = current_calibration(warehouse.settings)  # ml/early_warning_calibration (expert when none)
    rebuild = context.run.job_name == "full_rebuild" or context.run.tags.get("lendseg/full_refresh") == "true"
    with connect(warehouse.settings) as con:
        first = con.execute(f"SELECT min(snapshot_month) FROM {USAGE}").fetchone()[0]
        if (
            rebuild and first is not None
        ):  # full_rebuild: the state too, from the first month, with the calibration in force
            stats = recompute_from(con, first, context.run.run_id, calibration) | {"recomputed_from": str(first)}
        else:
            stats = advance_warning_state(con, context.run.run_id, calibration)
        con.execute("BEGIN")
        n = write_app_table(
            con,
            "risk_early_warnings",
            warnings_sql(),
            "Risk early warnings: one row per warning (client x signal x opening), open or cleared "
            "(docs/applications.md).",
            WARNING_COLUMNS,
        )
        con.execute("COMMIT")
        summary = con.execute("""
            SELECT signal, count(*) FILTER (WHERE status = 'open') AS open,
                count(*) FILTER (WHERE status = 'open' AND severity = 'watch') AS watch,
                count(*) FILTER (WHERE status = 'open' AND severity = 'warning') AS warning,
                count(*) FILTER (WHERE status = 'open' AND severity = 'critical') AS critical,
                count(*) FILTER (WHERE status = 'cleared') AS cleared
            FROM app.risk_early_warnings GROUP BY signal ORDER BY open DESC""").df()
        clients_flagged = con.execute(
            "SELECT count(DISTINCT client_key) FROM app.risk_early_warnings WHERE status = 'open' "
            "AND severity IN ('warning', 'critical')"
        ).fetchall()[0][0]
        shares = con.execute(f"""
            WITH pop AS (SELECT DISTINCT client_key FROM marts.fct_product_usage_monthly
                         WHERE snapshot_month = (SELECT as_of_month FROM intermediate.int_as_of_date_derived)
                           AND client_key NOT IN (SELECT client_key FROM marts.workout_clients)),
                 lvl AS (SELECT client_key, max({_rank_sql("severity")}) AS r FROM app.risk_early_warnings
                         WHERE status = 'open' GROUP BY 1)
            SELECT count(*), count(*) FILTER (WHERE l.r >= 1), count(*) FILTER (WHERE l.r >= 2),
                (SELECT count(*) FROM marts.dim_client), (SELECT count(*) FROM marts.workout_clients)
            FROM pop LEFT JOIN lvl AS l USING (client_key)""").fetchone()
        chart = png_markdown(_warning_chart(con), "warnings by severity over time")
    return dg.MaterializeResult(
        metadata=chart_first(
            {
                "rows": n,
                **stats,
                "clients_with_open_warning_or_critical": clients_flagged,
                "performing_customers": shares[0],
                "share_watch_or_above": round(shares[1] / shares[0], 4) if shares[0] else 0.0,
                "share_warning_or_above": round(shares[2] / shares[0], 4) if shares[0] else 0.0,
                "clients_in_default_left_out": shares[4],
                "book_clients": shares[3],
                "calibration_version": calibration.version or "expert",
                "level_driver": calibration.method,
                "summary": md_table(summary),
                "chart": chart,
            }
        )
    )


EW_EVAL_COLUMNS = {
    "flag_level": "A client counts as flagged at the cutoff when it has an open warning of at least this severity "
    "(`warning` is the operating rule).",
    "cutoff_month": "Warnings are replayed on data up to the end of this month only.",
    "outcome_end_month": "Outcome window end (months after the cutoff up to here).",
    "clients": "Clients with a facility snapshot in the cutoff month that had not reached 90+ dpd by then.",
    "flagged": "Of those, clients flagged at the cutoff.",
    "positives": "Clients that FIRST reached 90+ days past due in the outcome window.",
    "true_positives": "Flagged clients among the positives.",
    "precision": "true_positives / flagged.",
    "recall": "true_positives / positives.",
    "median_lead_months": "Median months from the client's first warning/critical (12 months up to the cutoff) to "
    "its first 90+ dpd month.",
    "meets_bar": "recall >= 0.70, precision >= 0.30 and median lead >= 2 months.",
    "share_flagged": "flagged / clients.",
    "level_driver": "What set the levels: score (calibrated combined score) or expert (fixed thresholds).",
    "calibration_version": "ml.early_warning_calibration version evaluated (expert: fallback thresholds); it read "
    "no data after cutoff_month.",
}


def _ew_eval_chart(ev: pd.DataFrame):
    fig, ax = figure(8, 4)
    x = np.arange(len(ev))
    ax.bar(x - 0.2, ev.precision, 0.4, label="precision")
    ax.bar(x + 0.2, ev.recall, 0.4, label="recall")
    ax.axhline(0.7, ls="--", c="tab:orange", lw=1)
    ax.axhline(0.3, ls=":", c="tab:blue", lw=1)
    ax.set_xticks(
        x,
        [
            f"{lvl}+\nlead {ld if ld == ld else '-'} m"
            for lvl, ld in zip(ev.flag_level, ev.median_lead_months, strict=False)
        ],
    )
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title(f"Early warnings at {ev.cutoff_month.iat[0]} vs first 90+ dpd up to {ev.outcome_end_month.iat[0]}")
    return fig


@dg.asset(
    key=EW_EVAL, group_name=GROUP, kinds={"duckdb", "python"}, deps=[USAGE_MONTHLY, STG_BUREAU, AS_OF, EW_CALIBRATION]
)
def early_warning_evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    """Time-split evaluation of the early warnings: precision, recall and median lead time.

    The stored signals (state.client_month_signals) up to 6 months before the last snapshot are levelled again
    with the calibration evaluated - never the live warnings -, in SQL; the outcome is a client first reaching
    90+ days past due in those last 6 months.
    """
    with connect(warehouse.settings) as con:
        fp = inputs.fingerprint(
            con,
            {
                "n_bootstrap": warehouse.settings.eval_bootstrap,
                "horizon": EVAL_HORIZON_MONTHS,
                "calibration": current_calibration(warehouse.settings).version,
            },
        )
        last = inputs.last_run_if_unchanged(
            context, con, "early_warning_evaluation", fp, "app.early_warning_evaluation"
        )
        if last:
            context.log.info(f"inputs unchanged since run {last}: its evaluation stands (evaluation_inputs.py)")
            ev = con.execute("SELECT * FROM app.early_warning_evaluation").df()
            comparison_md = md_table(
                con.execute(
                    "SELECT method, in_force, flag_level, flagged, precision, precision_ci_low, precision_ci_high, "
                    "recall, "
                    "recall_ci_low, recall_ci_high, share_flagged, median_lead_months, meets_bar "
                    "FROM app.early_warning_method_comparison"
                ).df()
            )
        else:
            ev, comparison_md = evaluation_with_comparison(con, warehouse.settings, EVAL_HORIZON_MONTHS)
            inputs.store(
                con,
                "early_warning_evaluation",
                ev,
                "Time-split evaluation of the risk early warnings (precision, recall, lead time).",
                EW_EVAL_COLUMNS,
                fp,
                context.run_id,
            )
    op = ev[ev.flag_level == "warning"].iloc[0]
    if not op.meets_bar:
        context.log.warning("early warnings miss the evaluation bar on this data")
    return dg.MaterializeResult(
        metadata=chart_first(
            {
                "cutoff_month": str(op.cutoff_month),
                "precision": float(op.precision),
                "recall": float(op.recall),
                "median_lead_months": float(op.median_lead_months)
                if op.median_lead_months == op.median_lead_months and op.median_lead_months is not None
                else None,
                "meets_bar": bool(op.meets_bar),
                "summary": md_table(ev.drop(columns=["cutoff_month", "outcome_end_month"])),
                "level_driver": str(op.level_driver),
                "calibration_version": str(op.calibration_version),
                "share_flagged": float(op.share_flagged),
                "method_comparison": comparison_md,
                "evaluated_in_run": last or context.run_id,
                "chart": png_markdown(_ew_eval_chart(ev), "precision and recall"),
            }
        )
    )
