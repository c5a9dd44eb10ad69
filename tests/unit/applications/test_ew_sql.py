"""The early warnings in SQL (ew_sql.py): severities, the composite signal, levels, episodes - on tiny DuckDB tables,
against the rules of early_warning.py and the replay kept in tests/reference_early_warnings.py."""

from dataclasses import replace
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest
import reference_early_warnings as ref

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications import ew_evaluation as ewe
from dagster_project.defs.applications import ew_features as ewf
from dagster_project.defs.applications import ew_score as ews
from dagster_project.defs.applications import ew_sql
from dagster_project.defs.applications.ew_calibration import EXPERT, Calibration


def test_sql_severity_ranks_are_the_expert_severities() -> None:
    con = duckdb.connect()
    values = [None, -1.0, 0.0, 0.5, 0.99, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 19.0, 20.0, 29.9, 30.0, 59.0, 60.0, 61.0]
    for signal in ew.SIGNALS:
        for v in values:
            got = con.execute(
                f"SELECT {ewf.severity_rank_sql(signal, 'v')} FROM (SELECT ?::DOUBLE AS v)", [v]
            ).fetchone()[0]
            want = ew.severity(signal, v)
            assert got == (ew.SEVERITY_RANK[want] if want else None), (signal, v)


def _observations(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> str:
    """Register long observations (client_key, month_end, signal, observed_value) as a view; returns its name."""
    df = pd.DataFrame(rows, columns=["client_key", "month_end", "signal", "observed_value"])
    df["threshold"] = 0.0
    df["signal_date"] = df.month_end
    con.register("obs_df", df)
    return "SELECT * FROM obs_df"


def _signals(con, rows) -> pd.DataFrame:
    return con.execute(f"{ew_sql.signals_sql(_observations(con, rows))} ORDER BY ALL").df()


def test_multiple_signals_counts_other_signals() -> None:
    con = duckdb.connect()
    m = date(2026, 1, 31)
    rows = [
        ("c1", m, s, v)
        for s, v in (("arrears", 5.0), ("inquiries", 3.0), ("collateral", 0.5), ("legal_judgments", 1.0))
    ] + [("c2", m, "arrears", 5.0)]
    got = _signals(con, rows)
    multi = got[got.signal == "multiple_signals"]
    assert list(multi.client_key) == ["c1"]
    assert (multi.severity_rank.iat[0], multi.threshold.iat[0]) == (2, 4.0)  # warning, the threshold of warning
    # each base signal carries the threshold of its own severity
    arrears = got[(got.client_key == "c1") & (got.signal == "arrears")]
    assert (arrears.severity_rank.iat[0], arrears.threshold.iat[0]) == (1, 1.0)


def test_every_observation_carries_the_threshold_of_its_own_severity() -> None:
    con = duckdb.connect()
    m = date(2026, 1, 31)
    got = _signals(con, [("a", m, "arrears", 35.0), ("b", m, "arrears", 70.0), ("c", m, "score_drop", 25.0)])
    assert {r.client_key: (r.severity_rank, r.threshold) for r in got.itertuples()} == {
        "a": (2, 30.0),
        "b": (3, 60.0),
        "c": (1, 20.0),
    }


def _levels(con, rows, cal) -> dict:
    sig = ew_sql.signals_sql(_observations(con, rows))
    out = con.execute(ew_sql.levels_sql(sig, cal)).df()
    return {
        (r.client_key, r.signal): (
            ew.SEVERITIES[r.level_rank - 1],
            r.level_driver,
            None if r.threshold != r.threshold else r.threshold,
        )
        for r in out.itertuples()
    }


def _reference_levels(rows, cal) -> dict:
    by: dict = {}
    for ck, m, sig, v in rows:
        sev = ew.severity(sig, v)
        if sev:
            by[(ck, sig)] = ref.Observation(v, ew.threshold_for(sig, sev), m, sev)
    out = ref.apply_levels(cal, ref.add_multiple_signals(by, rows[0][1]))
    return {k: (o.severity, o.level_driver, o.threshold) for k, o in out.items()}


def test_one_weak_signal_alone_is_no_watch() -> None:
    con = duckdb.connect()
    m = date(2026, 1, 31)
    rows = [
        ("a", m, "collateral", 0.8),
        ("b", m, "collateral", 0.8),
        ("b", m, "inquiries", 3.0),
        ("c", m, "arrears", 35.0),
    ]
    got = _levels(con, rows, EXPERT)
    assert set(got) == {("b", "collateral"), ("b", "inquiries"), ("c", "arrears")}
    assert got == _reference_levels(rows, EXPERT) and ew.WATCH_MIN_SIGNALS == 2


def test_score_levels_in_sql_are_the_reference_levels() -> None:
    """Every branch of the score levels: watch by the score or the expert rules, critical by the score or by a signal's
    own threshold; thresholds of each row's own level; compared on the logit."""
    con = duckdb.connect()
    m = date(2026, 1, 31)
    rows = [
        ("a", m, "arrears", 35.0),
        ("a", m, "inquiries", 3.0),
        ("b", m, "arrears", 80.0),
        ("c", m, "inquiries", 4.0),
        ("d", m, "collateral", 0.5),
        ("d", m, "score_drop", 25.0),
    ]
    sc = ews.Score(intercept=-3.0, coefficients={"arrears_dpd": 2.0, "n_signals": 0.5})
    base = Calibration(method="score", reason="t", score=sc, warning_threshold=0.3, critical_threshold=0.8)
    for cal in (
        base,
        replace(base, watch_threshold=0.05),
        replace(base, watch_threshold=0.5),
        replace(base, critical_threshold=None),
        replace(base, method="expert"),
    ):
        assert _levels(con, rows, cal) == _reference_levels(rows, cal), cal
    got = _levels(con, rows, base)
    assert got[("a", "arrears")] == ("warning", "score", 0.3) and got[("b", "arrears")] == ("critical", "score", 0.8)
    assert ("c", "inquiries") not in got  # one weak signal, no watch point: the expert rule, no watch
    got = _levels(con, rows, replace(base, critical_threshold=None))
    assert got[("b", "arrears")] == ("critical", "expert", 60.0)


def test_a_score_exactly_at_a_point_is_at_that_level_in_sql_and_python() -> None:
    """The points are compared as logits: a client whose score equals a point is at its level, whatever exp gives."""
    con = duckdb.connect()
    m = date(2026, 1, 31)
    rows = [("a", m, "arrears", 35.0), ("a", m, "inquiries", 3.0)]
    sc = ews.Score(intercept=-1.25, coefficients={"arrears_dpd": 0.7, "n_signals": 0.33})
    z = float(sc.logit({"arrears_dpd": 35.0 / 30.0, "n_signals": 2.0}))
    cal = Calibration(method="score", reason="t", score=sc, warning_threshold=ews.sigmoid(z), warning_logit=z)
    assert (
        _levels(con, rows, cal)[("a", "arrears")][0] == "warning" == _reference_levels(rows, cal)[("a", "arrears")][0]
    )


def _level_rows(rows: list[tuple]) -> str:
    df = pd.DataFrame(rows, columns=["client_key", "signal", "month_end", "level_rank", "observed_value"])
    df = df.assign(threshold=1.0, signal_date=df.month_end, level_driver="expert", client_score=None)
    return df


def _episodes(con, levels: pd.DataFrame, months: list[date], seeds: pd.DataFrame | None = None) -> pd.DataFrame:
    con.register("lv", levels)
    con.register("mo", pd.DataFrame({"month_end": months}))
    if seeds is not None:
        con.register("seeds", seeds)
    sql = ew_sql.episodes_sql("SELECT * FROM lv", "SELECT * FROM mo", None if seeds is None else "SELECT * FROM seeds")
    return con.execute(f"{sql} ORDER BY client_key, signal, opened_at").df()


MONTHS = [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31)]


def test_one_open_warning_per_client_and_signal_until_it_clears() -> None:
    con = duckdb.connect()
    lv = _level_rows(
        [
            ("c1", "arrears", MONTHS[0], 1, 10.0),
            ("c1", "arrears", MONTHS[1], 2, 40.0),
            ("c1", "arrears", MONTHS[2], 3, 70.0),
            ("c1", "arrears", MONTHS[4], 1, 5.0),
        ]
    )
    eps = _episodes(con, lv, MONTHS)
    assert len(eps) == 2
    first, again = eps.iloc[0], eps.iloc[1]
    assert (first.opened_at.date(), first.cleared_at.date(), first.last_seen_at.date()) == (
        MONTHS[0],
        MONTHS[3],
        MONTHS[2],
    )
    assert (first.severity, first.max_severity, first.observed_value) == ("critical", "critical", 70.0)
    assert first.first_warning_at.date() == MONTHS[1]
    assert again.opened_at.date() == MONTHS[4] and pd.isna(again.cleared_at) and pd.isna(again.first_warning_at)


def test_advancing_from_the_open_episodes_equals_the_timeline_from_scratch() -> None:
    con = duckdb.connect()
    rows = [
        ("c1", "score_drop", MONTHS[0], 1, 20.0),
        ("c1", "score_drop", MONTHS[1], 2, 31.0),
        ("c2", "inquiries", MONTHS[1], 1, 3.0),
        ("c2", "inquiries", MONTHS[2], 1, 4.0),
        ("c3", "arrears", MONTHS[3], 3, 65.0),
        ("c3", "arrears", MONTHS[4], 1, 2.0),
    ]
    whole = _episodes(con, _level_rows(rows), MONTHS)
    first = _episodes(con, _level_rows([r for r in rows if r[2] <= MONTHS[1]]), MONTHS[:2])
    later = _episodes(con, _level_rows([r for r in rows if r[2] > MONTHS[1]]), MONTHS, first[first.cleared_at.isna()])
    advanced = pd.concat([first[first.cleared_at.notna()], later]).sort_values(["client_key", "signal", "opened_at"])
    assert ref.frame_differences(whole, advanced.reset_index(drop=True), ["client_key", "signal", "opened_at"]) == 0
    assert len(whole) == 3
    # a month with the signal still active keeps the SAME episode (opened_at unchanged)
    assert later[later.client_key == "c2"].opened_at.dt.date.tolist() == [MONTHS[1]]
    # and the same as the replay
    obs = {m: {} for m in MONTHS}
    for ck, sig, m, rank, v in rows:
        obs[m][(ck, sig)] = ref.Observation(v, 1.0, m, ew.SEVERITIES[rank - 1])
    now_open, cleared = ref.replay({}, sorted(obs.items()))
    assert len(now_open) + len(cleared) == len(whole)


def test_evaluation_precision_recall_and_lead_from_cells() -> None:
    # a flagged lead 5, b flagged lead 2, c flagged not positive, d positive not flagged, e neither
    cells = pd.DataFrame(
        {
            "flagged": [True, True, True, False, False],
            "positive": [True, True, False, True, False],
            "lead": [5.0, 2.0, np.nan, np.nan, np.nan],
            "n": [1, 1, 1, 1, 1],
        }
    )
    p, r, share, lead = ewe.rates(cells)
    assert p == pytest.approx(2 / 3) and r == pytest.approx(2 / 3) and share == pytest.approx(3 / 5)
    assert lead == 3.5  # the median of 5 and 2 months
    assert ewe.rates(cells.assign(n=[3, 1, 1, 1, 1]))[3] == 5.0  # 5, 5, 5, 2


def test_bootstrap_of_counts_brackets_the_estimate_and_is_reproducible() -> None:
    cells = pd.DataFrame(
        {
            "flagged": [True, True, False, False],
            "positive": [True, False, True, False],
            "lead": [4.0, np.nan, np.nan, np.nan],
            "n": [40, 60, 10, 890],
        }
    )
    ci = ewe.bootstrap_ci(cells, 500)
    assert ci == ewe.bootstrap_ci(cells.iloc[::-1], 500)  # the cells' order does not matter
    lo, hi = ci["precision"]
    assert lo < 0.4 < hi and hi - lo < 0.25
    assert ci["median_lead_months"] == (4.0, 4.0)
