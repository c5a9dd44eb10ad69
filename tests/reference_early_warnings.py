"""The early warnings as they were computed before issue 33: Python observations per client x signal x month, a
month-by-month replay of the episodes, evaluations replayed from scratch.

Kept as the reference the SQL state (``ew_state.py``, ``ew_sql.py``, ``ew_evaluation.py``) is compared with on the
same build (tests/e2e/test_applications_e2e.py): same episodes, same warnings, same evaluation tables. One change
from the code of that time, made in both: a score level compares the score's logit with the point's logit
(``ew_calibration.level_logits``), not the probabilities.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications.as_of import first_default_sql, lit, signal_observations_sql
from dagster_project.defs.applications.ew_calibration import level_logits
from dagster_project.defs.applications.ew_features import BASE_SIGNALS, FEATURES
from dagster_project.lib.months import month_end, months_between

Key = tuple[str, str]


def evaluation_months_sql(from_month: date, to_month: date) -> str:
    """The month ends with usage snapshots from ``from_month`` to ``to_month``: the months warnings are evaluated in."""
    return (
        f"SELECT DISTINCT last_day(snapshot_month) FROM marts.fct_product_usage_monthly "
        f"WHERE snapshot_month BETWEEN {lit(from_month)} AND {lit(to_month)}"
    )


@dataclass(frozen=True)
class Observation:
    observed_value: float
    threshold: float | None
    signal_date: date
    severity: str
    level_driver: str = "expert"
    client_score: float | None = None


@dataclass(frozen=True)
class Episode:
    client_key: str
    signal: str
    opened_at: date
    last_seen_at: date
    severity: str
    max_severity: str
    observed_value: float
    threshold: float | None
    signal_date: date
    first_warning_at: date | None = None
    cleared_at: date | None = None
    level_driver: str | None = "expert"
    client_score: float | None = None


def max_severity(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if ew.SEVERITY_RANK[a] >= ew.SEVERITY_RANK[b] else b


def expert_ranks(active: Mapping[Key, Observation]) -> dict[str, int]:
    top: dict[str, int] = {}
    base: dict[str, int] = {}
    for (client, sig), o in active.items():
        top[client] = max(top.get(client, 0), ew.SEVERITY_RANK[o.severity])
        if sig != "multiple_signals":
            base[client] = base.get(client, 0) + 1
    return {c: (r if r >= 2 or base.get(c, 0) >= ew.WATCH_MIN_SIGNALS else 0) for c, r in top.items()}


def expert_levels(active: Mapping[Key, Observation]) -> dict[Key, Observation]:
    ranks = expert_ranks(active)
    return {k: o for k, o in active.items() if ranks.get(k[0], 0) > 0}


def add_multiple_signals(active: Mapping[Key, Observation], month_end_: date) -> dict[Key, Observation]:
    out = dict(active)
    per_client: dict[str, int] = {}
    for client, sig in active:
        if sig != "multiple_signals":
            per_client[client] = per_client.get(client, 0) + 1
    for client, n in per_client.items():
        sev = ew.severity("multiple_signals", n)
        if sev is not None:
            out[(client, "multiple_signals")] = Observation(
                float(n), ew.threshold_for("multiple_signals", sev), month_end_, sev
            )
    return out


def step(
    open_episodes: Mapping[Key, Episode], active: Mapping[Key, Observation], month_end_: date
) -> tuple[dict[Key, Episode], list[Episode]]:
    still_open: dict[Key, Episode] = {}
    cleared: list[Episode] = []
    for key, ep in open_episodes.items():
        obs = active.get(key)
        if obs is None:
            cleared.append(replace(ep, cleared_at=month_end_))
            continue
        first_warning = ep.first_warning_at or (month_end_ if ew.SEVERITY_RANK[obs.severity] >= 2 else None)
        still_open[key] = replace(
            ep,
            last_seen_at=month_end_,
            severity=obs.severity,
            max_severity=max_severity(ep.max_severity, obs.severity),
            observed_value=obs.observed_value,
            threshold=obs.threshold,
            signal_date=obs.signal_date,
            first_warning_at=first_warning,
            level_driver=obs.level_driver,
            client_score=obs.client_score,
        )
    for key, obs in active.items():
        if key not in still_open and key not in open_episodes:
            still_open[key] = Episode(
                client_key=key[0],
                signal=key[1],
                opened_at=month_end_,
                last_seen_at=month_end_,
                severity=obs.severity,
                max_severity=obs.severity,
                observed_value=obs.observed_value,
                threshold=obs.threshold,
                signal_date=obs.signal_date,
                first_warning_at=month_end_ if ew.SEVERITY_RANK[obs.severity] >= 2 else None,
                level_driver=obs.level_driver,
                client_score=obs.client_score,
            )
    return still_open, cleared


def replay(
    open_episodes: Mapping[Key, Episode], months: Iterable[tuple[date, Mapping[Key, Observation]]]
) -> tuple[dict[Key, Episode], list[Episode]]:
    current = dict(open_episodes)
    closed: list[Episode] = []
    for m, active in months:
        current, done = step(current, active, m)
        closed += done
    return current, closed


def feature_row(values: Mapping[str, float]) -> dict[str, float]:
    """Features of one client in one month from its observed signal values (the Python form of ``_FEATURE_SQL``)."""
    v = values.get
    c = v("collateral")
    return {
        "arrears_30": 1.0 if (v("arrears") or 0) >= 30 else 0.0,
        "arrears_dpd": min(v("arrears") or 0.0, 89.0) / 30.0,
        "score_drop": min(v("score_drop") or 0.0, 150.0) / 30.0,
        "high_utilisation": min(v("high_utilisation") or 0.0, 12.0) / 6.0,
        "negative_cash_flow": min(v("negative_cash_flow") or 0.0, 8.0) / 4.0,
        "legal_judgments": min(v("legal_judgments") or 0.0, 6.0) / 3.0,
        "inquiries": min(v("inquiries") or 0.0, 12.0) / 6.0,
        "collateral_gap": 0.0 if c is None else float(min(max(1.0 - c, 0.0), 1.0)),
        "n_signals": float(sum(1 for s in BASE_SIGNALS if s in values)),
    }


def client_values(active: Mapping[Key, Observation]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for (client, sig), o in active.items():
        if sig in BASE_SIGNALS:
            out.setdefault(client, {})[sig] = float(o.observed_value)
    return out


def frame_from_months(months: Iterable[tuple[date, Mapping[Key, Observation]]]) -> pd.DataFrame:
    rows = []
    for m, active in months:
        ranks = expert_ranks(active)
        for client, vals in client_values(active).items():
            rows.append(
                {"client_key": client, "month_end": m, "expert_rank": ranks.get(client, 0), **feature_row(vals)}
            )
    return pd.DataFrame(rows, columns=["client_key", "month_end", "expert_rank", *FEATURES])


def _score_ranks(cal, z: np.ndarray, expert: np.ndarray) -> np.ndarray:
    watch_l, warn_l, crit_l = level_logits(cal)
    watch = (z >= watch_l) if watch_l is not None else (expert >= 1)
    out = np.where(z >= warn_l, 2, np.where(watch, 1, 0))
    return np.where(z >= crit_l, 3, out) if crit_l is not None else np.where(expert >= 3, 3, out)


def apply_levels(cal, active: Mapping[Key, Observation]) -> dict[Key, Observation]:
    if level_logits(cal) is None:
        return expert_levels(active)
    vals = client_values(active)
    expert = expert_ranks(active)
    if not expert:
        return {}
    clients = list(expert)
    x = pd.DataFrame([feature_row(vals.get(c, {})) for c in clients], columns=list(FEATURES))
    z = np.asarray(cal.score.logit(x), dtype=float)
    p = 1.0 / (1.0 + np.exp(-z))
    ranks = _score_ranks(cal, z, np.array([expert[c] for c in clients]))
    level = {c: (int(r), float(pc)) for c, r, pc in zip(clients, ranks, p, strict=False)}
    points = {1: cal.watch_threshold, 2: cal.warning_threshold, 3: cal.critical_threshold}
    out: dict[Key, Observation] = {}
    for key, o in active.items():
        rank, pc = level[key[0]]
        if cal.critical_threshold is None and o.severity == "critical":
            out[key] = replace(o, level_driver="expert")
        elif rank == 1 and cal.watch_threshold is None:
            out[key] = replace(
                o, severity="watch", threshold=ew.threshold_for(key[1], "watch"), level_driver="expert", client_score=pc
            )
        elif rank > 0:
            out[key] = replace(
                o, severity=ew.SEVERITIES[rank - 1], threshold=points[rank], level_driver="score", client_score=pc
            )
    return out


def monthly_observations(
    con: duckdb.DuckDBPyConnection, from_month: date, to_month: date, calibration=None
) -> list[tuple[date, dict[Key, Observation]]]:
    by_month: dict[date, dict[Key, Observation]] = defaultdict(dict)
    months = [r[0] for r in con.execute(f"{evaluation_months_sql(from_month, to_month)} ORDER BY 1").fetchall()]
    for ck, m, sig, value, _thr, sdate in con.execute(signal_observations_sql(from_month, to_month)).fetchall():
        sev = ew.severity(sig, value)
        if sev:
            by_month[m][(ck, sig)] = Observation(value, ew.threshold_for(sig, sev), sdate, sev)
    out = [(m, add_multiple_signals(by_month.get(m, {}), m)) for m in months]
    if calibration is not None:
        out = [(m, apply_levels(calibration, active)) for m, active in out]
    return out


EPISODE_COLUMNS = [
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
]


def episodes(con: duckdb.DuckDBPyConnection, end: date, calibration) -> pd.DataFrame:
    """The timeline replayed from the first month to ``end`` (what the state holds after advancing to ``end``)."""
    first = con.execute("SELECT min(snapshot_month) FROM marts.fct_product_usage_monthly").fetchone()[0]
    now_open, cleared = replay({}, monthly_observations(con, first, end, calibration))
    return pd.DataFrame(
        [{c: getattr(e, c) for c in EPISODE_COLUMNS} for e in [*now_open.values(), *cleared]], columns=EPISODE_COLUMNS
    )


def level_cells(
    con: duckdb.DuckDBPyConnection, calibration, cutoff: date, end: date, level: str, exact_month: bool
) -> pd.DataFrame:
    """The evaluation of one level as cells (flagged, positive, lead, n), from a replay up to the cutoff.
    ``exact_month``: flagged at the cutoff's month end (the method comparison) rather than by the open episodes after
    the last evaluated month (the evaluation table); the same month whenever the cutoff month has snapshots."""
    first = con.execute("SELECT min(snapshot_month) FROM marts.fct_product_usage_monthly").fetchone()[0]
    months = monthly_observations(con, first, cutoff, calibration) if first and first <= cutoff else []
    cutoff_end = month_end(cutoff)
    need = ew.SEVERITY_RANK[level]
    history: dict[str, date] = {}
    for m, active in months:
        if months_between(m, cutoff_end) >= 12:
            continue
        for (ck, _sig), o in active.items():
            if ew.SEVERITY_RANK[o.severity] >= max(need, 2) and ck not in history:
                history[ck] = m
    flagged: dict[str, date] = {}
    if exact_month:
        at = dict(months).get(cutoff_end, {})
        for (ck, _sig), o in at.items():
            if ew.SEVERITY_RANK[o.severity] >= need:
                flagged[ck] = min(history.get(ck, cutoff_end), cutoff_end)
    else:
        open_eps, _ = replay({}, months)
        for (ck, _sig), ep in open_eps.items():
            if ew.SEVERITY_RANK[ep.severity] >= need:
                flagged[ck] = min(history.get(ck, cutoff_end), flagged.get(ck, cutoff_end))
    first_default = dict(con.execute(first_default_sql()).fetchall())
    pop = {
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT client_key FROM marts.fct_product_usage_monthly WHERE snapshot_month = {lit(cutoff)}"
        ).fetchall()
    }
    pop = {c for c in pop if not (c in first_default and first_default[c] <= cutoff)}
    cells: dict[tuple[bool, bool, float | None], int] = defaultdict(int)
    for c in pop:
        f = c in flagged
        y = c in first_default and cutoff < first_default[c] <= end
        lead = float(months_between(flagged[c], first_default[c])) if f and y else None
        cells[(f, y, lead)] += 1
    rows = [
        {"flagged": f, "positive": y, "lead": float("nan") if lead is None else lead, "n": n}
        for (f, y, lead), n in cells.items()
    ]
    return pd.DataFrame(rows, columns=["flagged", "positive", "lead", "n"])


def evaluate(
    flagged_since: Mapping[str, date], first_default: Mapping[str, date], population: Iterable[str]
) -> tuple[int, int, int, int, float, float, float | None]:
    """(clients, flagged, positives, true positives, precision, recall, median lead) as the old ``ew.evaluate``."""
    pop = set(population)
    flagged = {c for c in flagged_since if c in pop}
    positives = {c for c in first_default if c in pop}
    tp = flagged & positives
    leads = [months_between(flagged_since[c], first_default[c]) for c in sorted(tp)]
    return (
        len(pop),
        len(flagged),
        len(positives),
        len(tp),
        len(tp) / len(flagged) if flagged else 0.0,
        len(tp) / len(positives) if positives else 0.0,
        float(statistics.median(leads)) if leads else None,
    )


# ---- old against new on one build ---------------------------------------------------------------------------


def _plain(v):
    """A cell as a plain value: NULL/NaN/NaT -> None, timestamps -> dates."""
    if v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, datetime):
        return v.date()
    return v


def frame_differences(a: pd.DataFrame, b: pd.DataFrame, keys: list[str], rel: float = 1e-12) -> int:
    """Rows that differ between two tables (by ``keys``), floats equal within ``rel``; rows only in one count too."""
    a = a.sort_values(keys, kind="stable").reset_index(drop=True)
    b = b.sort_values(keys, kind="stable").reset_index(drop=True)
    if len(a) != len(b):
        return abs(len(a) - len(b)) + frame_differences(a.head(min(len(a), len(b))), b.head(min(len(a), len(b))), keys)
    bad = np.zeros(len(a), bool)
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_float_dtype(x) or pd.api.types.is_float_dtype(y):
            xv, yv = (
                pd.to_numeric(x, errors="coerce").to_numpy(float),
                pd.to_numeric(y, errors="coerce").to_numpy(float),
            )
            same = (np.isnan(xv) & np.isnan(yv)) | np.isclose(xv, yv, rtol=rel, atol=0.0)
        else:
            same = np.array([_plain(p) == _plain(q) for p, q in zip(x, y, strict=False)], bool)
        bad |= ~same
    return int(bad.sum())


def cell_differences(ref: pd.DataFrame, new: pd.DataFrame) -> int:
    """Cells (flagged, positive, lead -> n) that differ."""

    def as_dict(df: pd.DataFrame) -> dict:
        out: dict = {}
        for f, y, lead, n in df[["flagged", "positive", "lead", "n"]].itertuples(index=False):
            k = (bool(f), bool(y), None if lead != lead else float(lead))
            out[k] = out.get(k, 0) + int(n)
        return out

    a, b = as_dict(ref), as_dict(new)
    return sum(1 for k in set(a) | set(b) if a.get(k) != b.get(k))


def point_estimates(cells: pd.DataFrame) -> dict:
    """The old evaluation's figures from a reference replay's cells (leads expanded, ``statistics.median``)."""
    f, y, n = cells.flagged.astype(bool), cells.positive.astype(bool), cells.n.astype(int)
    leads = [lead for lead, k in zip(cells.lead[f & y], n[f & y], strict=False) for _ in range(k)]
    nf, npos, tp = int(n[f].sum()), int(n[y].sum()), int(n[f & y].sum())
    return {
        "clients": int(n.sum()),
        "flagged": nf,
        "positives": npos,
        "true_positives": tp,
        "precision": tp / nf if nf else 0.0,
        "recall": tp / npos if npos else 0.0,
        "median_lead_months": float(statistics.median(leads)) if leads else None,
    }


def compare_on_build(build, calibration, workdir, horizon: int = 6) -> dict[str, int]:
    """Old (this module's replay) against new (SQL state) on a copy of ``build``: the number of differing rows of the
    episodes, ``risk_early_warnings``, the evaluation and each method comparison level (expected: 0 everywhere)."""
    import shutil
    import time
    from pathlib import Path

    from dagster_project.defs.applications import ew_calibration_assets as cala
    from dagster_project.defs.applications import ew_evaluation as ewe
    from dagster_project.defs.applications.as_of import as_of_month
    from dagster_project.defs.applications.early_warning_assets import warnings_sql
    from dagster_project.defs.applications.ew_calibration import EXPERT
    from dagster_project.defs.applications.ew_state import EPISODES, advance_warning_state
    from dagster_project.lib.months import add_months

    copy = Path(workdir) / "compare.duckdb"
    shutil.copy(build, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute("DROP SCHEMA IF EXISTS state CASCADE")
        end = as_of_month(con)
        t = time.perf_counter()
        advance_warning_state(con, "compare", calibration)
        out: dict[str, int] = {"new_advance_ms": int((time.perf_counter() - t) * 1000)}
        cols = ", ".join(EPISODE_COLUMNS)
        new_eps = con.execute(f"SELECT {cols} FROM {EPISODES}").df()
        t = time.perf_counter()
        ref_eps = episodes(con, end, calibration)
        out["old_replay_ms"] = int((time.perf_counter() - t) * 1000)
        out["episodes"] = len(new_eps)
        keys = ["client_key", "signal", "opened_at"]
        out["episode_differences"] = frame_differences(ref_eps, new_eps, keys)
        con.register("ref_eps_df", ref_eps)
        con.execute("CREATE TEMP TABLE ref_eps AS SELECT * FROM ref_eps_df")
        out["warning_differences"] = frame_differences(
            con.execute(warnings_sql("ref_eps")).df(), con.execute(warnings_sql()).df(), ["warning_id"]
        )
        cutoff = add_months(end, -horizon)
        ev = ewe.evaluate_warnings(con, end, horizon, calibration).set_index("flag_level")
        comp = cala.compare_methods(con, calibration, cutoff, end, n_boot=200)
        diffs = cells = 0
        for level in ew.SEVERITIES:
            ref = level_cells(con, calibration, cutoff, end, level, exact_month=False)
            pe = point_estimates(ref)
            row = ev.loc[level]
            diffs += sum(
                1
                for k, v in pe.items()
                if not (
                    v == row[k]
                    or (v is None and row[k] != row[k])
                    or (isinstance(v, float) and abs(v - row[k]) < 1e-12)
                )
            )
            for name, m in (("expert", EXPERT), ("score", calibration)):
                if name == "score" and (calibration.score is None or calibration.warning_threshold is None):
                    continue
                ref_c = level_cells(con, m, cutoff, end, level, exact_month=True)
                got = comp[(comp.method == name) & (comp.flag_level == level)].iloc[0]
                pe = point_estimates(ref_c)
                ci = ewe.bootstrap_ci(ref_c.assign(n=ref_c.n.astype(np.int64)), 200)
                nan2 = (float("nan"), float("nan"))
                want = pe | {
                    "precision_ci_low": ci.get("precision", nan2)[0],
                    "recall_ci_high": ci.get("recall", nan2)[1],
                }
                bad = [
                    k
                    for k, v in want.items()
                    if not (
                        v == got[k]
                        or ((v is None or v != v) and got[k] != got[k])
                        or (isinstance(v, float) and abs(v - got[k]) < 1e-12)
                    )
                ]
                if bad:
                    print("differs", name, level, {k: (want[k], got[k]) for k in bad})
                cells += len(bad)
        out["evaluation_differences"] = diffs
        out["comparison_differences"] = cells
        return out
    finally:
        con.close()
