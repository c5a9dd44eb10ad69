"""The early warnings as SQL (DuckDB): signals per client x month x signal, their levels under a calibration, and
the warning episodes as gaps-and-islands over the months. Pure query builders, no connection here; the state tables
they read and write are kept by ``ew_state.py``.

Three relations, one per stage:

* **signals** (``signals_sql``): one row per client x evaluation month x signal at or beyond the signal's watch
  threshold - the observed value, its expert severity rank (1..3 = watch..critical, ``early_warning.severity``), the
  threshold of that severity, the observation date - and the composite ``multiple_signals``
  (``early_warning.SIGNALS``). Calibration-free: ``state.client_month_signals`` stores it.
* **levels** (``levels_sql``): the signals a calibration turns into warnings, each with its level, the threshold of
  that level, what set it (``level_driver``) and the client's combined score. The score is the stored coefficients'
  linear predictor (a logit) compared with the operating points' logits, so no ``exp`` decides a level.
* **episodes** (``episodes_sql``): one warning per client and signal while its level rows run month after month
  (consecutive evaluation months); optional seed rows (the open episodes of the last processed month) let a run
  advance the timeline from where it stopped instead of replaying history.
"""

from __future__ import annotations

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications.ew_features import BASE_SIGNALS, FEATURE_SQL, FEATURES, severity_rank_sql


def _num(v: float | None) -> str:
    return "NULL" if v is None else f"{float(v)!r}::DOUBLE"


def _threshold_case(signal_col: str, rank_col: str) -> str:
    """SQL: the expert threshold of ``signal_col`` at the severity ``rank_col`` (``early_warning.threshold_for``)."""
    whens = []
    for s in ew.SIGNALS.values():
        for level in ew.SEVERITIES:
            t = getattr(s, level)
            if t is not None:
                whens.append(
                    f"WHEN {signal_col} = '{s.name}' AND {rank_col} = {ew.SEVERITY_RANK[level]} THEN {_num(t)}"
                )
    return f"CASE {' '.join(whens)} END"


def severity_name_sql(rank_col: str) -> str:
    return "CASE " + " ".join(f"WHEN {rank_col} = {r} THEN '{s}'" for s, r in ew.SEVERITY_RANK.items()) + " END"


def severity_rank_of_name_sql(name_col: str) -> str:
    return "CASE " + " ".join(f"WHEN {name_col} = '{s}' THEN {r}" for s, r in ew.SEVERITY_RANK.items()) + " ELSE 0 END"


def signals_sql(observations_sql: str) -> str:
    """Signals with their expert severity and the composite ``multiple_signals`` from long observations
    (``as_of.signal_observations_sql``): columns client_key, month_end, signal, observed_value, severity_rank,
    threshold, signal_date."""
    ranks = " ".join(f"WHEN '{sg}' THEN {severity_rank_sql(sg, 'observed_value')}" for sg in BASE_SIGNALS)
    multiple = severity_rank_sql("multiple_signals", "n_base")
    return f"""
WITH base AS (
    SELECT o.client_key, o.month_end::DATE AS month_end, o.signal, o.observed_value::DOUBLE AS observed_value,
        (CASE o.signal {ranks} END)::INTEGER AS severity_rank, o.signal_date::DATE AS signal_date
    FROM ({observations_sql}) AS o
), seen AS (
    SELECT * FROM base WHERE severity_rank IS NOT NULL
), multi AS (
    SELECT client_key, month_end, 'multiple_signals' AS signal, count(*)::DOUBLE AS observed_value,
        ({multiple.replace("n_base", "count(*)")})::INTEGER AS severity_rank, month_end AS signal_date
    FROM seen GROUP BY client_key, month_end
), all_signals AS (
    SELECT * FROM seen
    UNION ALL
    SELECT * FROM multi WHERE severity_rank IS NOT NULL
)
SELECT client_key, month_end, signal, observed_value, severity_rank,
    {_threshold_case("signal", "severity_rank")} AS threshold, signal_date
FROM all_signals"""


def client_months_sql(signals: str) -> str:
    """One row per client and month with a signal: the expert rank (``early_warning.expert_ranks``; 0 = signals too
    weak for a level) and the calibration features (``ew_features.FEATURES``)."""
    pivot = ",\n        ".join(f"max(observed_value) FILTER (WHERE signal = '{sg}') AS {sg}" for sg in BASE_SIGNALS)
    features = ",\n    ".join(f"({FEATURE_SQL[f]})::DOUBLE AS {f}" for f in FEATURES)
    return f"""
SELECT client_key, month_end,
    (CASE WHEN top_all >= 2 OR n_base >= {ew.WATCH_MIN_SIGNALS} THEN top_all ELSE 0 END)::BIGINT AS expert_rank,
    {features}
FROM (
    SELECT client_key, month_end, count(*) FILTER (WHERE signal <> 'multiple_signals') AS n_base,
        max(severity_rank) AS top_all,
        {pivot}
    FROM ({signals}) GROUP BY client_key, month_end
)"""


def logit_sql(intercept: float, coefficients: dict[str, float]) -> str:
    """The score's linear predictor over the feature columns, summed in the coefficients' order (as ``Score.logit``)."""
    return " + ".join([_num(intercept)] + [f"{_num(c)} * {f}" for f, c in coefficients.items()])


def levels_sql(signals: str, cal) -> str:
    """The warnings one month's signals raise under calibration ``cal`` (``ew_calibration.Calibration``; expert when
    it has no score): columns client_key, month_end, signal, level_rank, observed_value, threshold, signal_date,
    level_driver, client_score.

    expert: every signal of a client with an expert rank keeps its own severity and threshold. score: every signal
    carries the client's level from its score (``ew_calibration.level_logits``), with the threshold of that level;
    without a critical point a signal critical by its own threshold stays critical (driver expert); without a watch
    point the watch level is the expert two-signal rule's. Rows below the watch level are dropped."""
    from dagster_project.defs.applications.ew_calibration import level_logits

    cm = client_months_sql(signals)
    pts = level_logits(cal)
    if pts is None:
        return f"""
SELECT s.client_key, s.month_end, s.signal, s.severity_rank AS level_rank, s.observed_value, s.threshold,
    s.signal_date, 'expert' AS level_driver, NULL::DOUBLE AS client_score
FROM ({signals}) AS s JOIN ({cm}) AS c USING (client_key, month_end)
WHERE c.expert_rank > 0"""
    watch_l, warn_l, crit_l = pts
    z = logit_sql(cal.score.intercept, cal.score.coefficients)
    watch = f"z >= {_num(watch_l)}" if watch_l is not None else "expert_rank >= 1"
    crit = f"WHEN z >= {_num(crit_l)} THEN 3" if crit_l is not None else "WHEN expert_rank >= 3 THEN 3"
    points = {1: cal.watch_threshold, 2: cal.warning_threshold, 3: cal.critical_threshold}
    point_case = "CASE lvl " + " ".join(f"WHEN {r} THEN {_num(t)}" for r, t in points.items()) + " END"
    keep_critical = "TRUE" if crit_l is None else "FALSE"
    watch_by_rules = "TRUE" if watch_l is None else "FALSE"
    return f"""
WITH c AS (
    SELECT client_key, month_end, expert_rank, 1.0 / (1.0 + exp(-z)) AS p,
        CASE {crit} WHEN z >= {_num(warn_l)} THEN 2 WHEN {watch} THEN 1 ELSE 0 END AS lvl
    FROM (SELECT *, {z} AS z FROM ({cm}))
), l AS (
    SELECT s.*, c.lvl, c.p,
        CASE WHEN {keep_critical} AND s.severity_rank = 3 THEN 'own'
             WHEN c.lvl = 1 AND {watch_by_rules} THEN 'rules_watch'
             WHEN c.lvl > 0 THEN 'score' END AS how
    FROM ({signals}) AS s JOIN c USING (client_key, month_end)
)
SELECT client_key, month_end, signal,
    CASE how WHEN 'own' THEN severity_rank ELSE lvl END AS level_rank, observed_value,
    CASE how WHEN 'own' THEN threshold
             WHEN 'rules_watch' THEN {_threshold_case("signal", "1")}
             ELSE {point_case} END AS threshold,
    signal_date,
    CASE how WHEN 'score' THEN 'score' ELSE 'expert' END AS level_driver,
    CASE how WHEN 'own' THEN NULL ELSE p END AS client_score
FROM l WHERE how IS NOT NULL"""


EPISODE_COLUMNS = (
    "client_key",
    "signal",
    "opened_at",
    "last_seen_at",
    "cleared_at",
    "severity",
    "max_severity",
    "observed_value",
    "threshold",
    "signal_date",
    "first_warning_at",
    "level_driver",
    "client_score",
)


def episodes_sql(levels: str, months: str, seeds: str | None = None) -> str:
    """Warning episodes from level rows (``levels_sql`` columns) over the evaluation months ``months`` (one column
    month_end, every month evaluated so far; a month without a row of a key clears its episode).

    ``seeds``: open episodes (``EPISODE_COLUMNS``) continued by the level rows of the months after their
    ``last_seen_at``; None = the timeline from scratch. Columns ``EPISODE_COLUMNS``, every episode the seeds and the
    rows give (open, cleared, continued)."""
    last = (
        "struct_pack(sev := ({sev})::INTEGER, observed_value := ({ov})::DOUBLE, threshold := ({th})::DOUBLE, "
        "signal_date := ({sd})::DATE, level_driver := ({ld})::VARCHAR, client_score := ({cs})::DOUBLE)"
    )
    seed_part = (
        ""
        if seeds is None
        else f"""
    UNION ALL
    SELECT e.client_key, e.signal, mo.idx, e.opened_at, {severity_rank_of_name_sql("e.max_severity")},
        e.first_warning_at, e.last_seen_at,
        {
            last.format(
                sev=severity_rank_of_name_sql("e.severity"),
                ov="e.observed_value",
                th="e.threshold",
                sd="e.signal_date",
                ld="e.level_driver",
                cs="e.client_score",
            )
        }
    FROM ({seeds}) AS e JOIN mo ON mo.month_end = e.last_seen_at"""
    )
    return f"""
WITH mo AS (
    SELECT month_end, row_number() OVER (ORDER BY month_end) AS idx FROM (SELECT DISTINCT month_end::DATE AS month_end
    FROM ({months}))
), r AS (
    SELECT l.client_key, l.signal, mo.idx, l.month_end AS opened_at, l.level_rank AS max_rank,
        CASE WHEN l.level_rank >= 2 THEN l.month_end END AS first_warning_at, l.month_end AS last_seen_at,
        {
        last.format(
            sev="l.level_rank",
            ov="l.observed_value",
            th="l.threshold",
            sd="l.signal_date",
            ld="l.level_driver",
            cs="l.client_score",
        )
    } AS latest
    FROM ({levels}) AS l JOIN mo USING (month_end){seed_part}
), isl AS (
    SELECT *, idx - row_number() OVER (PARTITION BY client_key, signal ORDER BY idx) AS grp FROM r
), agg AS (
    SELECT client_key, signal, min(opened_at) AS opened_at, max(last_seen_at) AS last_seen_at, max(idx) AS last_idx,
        max(max_rank) AS max_rank, min(first_warning_at) AS first_warning_at, arg_max(latest, idx) AS latest
    FROM isl GROUP BY client_key, signal, grp
)
SELECT a.client_key, a.signal, a.opened_at::DATE AS opened_at, a.last_seen_at::DATE AS last_seen_at,
    nxt.month_end::DATE AS cleared_at, {severity_name_sql("a.latest.sev")} AS severity,
    {severity_name_sql("a.max_rank")} AS max_severity, a.latest.observed_value::DOUBLE AS observed_value,
    a.latest.threshold::DOUBLE AS threshold, a.latest.signal_date::DATE AS signal_date,
    a.first_warning_at::DATE AS first_warning_at, a.latest.level_driver::VARCHAR AS level_driver,
    a.latest.client_score::DOUBLE AS client_score
FROM agg AS a LEFT JOIN mo AS nxt ON nxt.idx = a.last_idx + 1"""
