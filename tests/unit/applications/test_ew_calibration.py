"""Early-warning calibration: operating points, fallback, time windows, sign constraints, and the asset."""

import json
from dataclasses import replace
from datetime import date

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
import reference_early_warnings as ref

from dagster_project.defs.applications import early_warning as ew
from dagster_project.defs.applications import ew_calibration as cal
from dagster_project.defs.applications import ew_calibration_assets as cala
from dagster_project.defs.applications import ew_calibration_store as ew_store
from dagster_project.defs.applications import ew_features as ewf
from dagster_project.defs.applications import ew_score as ews
from dagster_project.defs.applications import ew_sql

# ---- operating points -------------------------------------------------------------------------------------


def _scored(n: int = 4000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.08
    s = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 2.2 * y - 2.5)))
    return s, y


def test_operating_point_meets_the_precision_target_at_the_highest_recall() -> None:
    s, y = _scored()
    curve = ews.pr_curve(s, y)
    for target in (0.3, 0.6):
        pt = ews.choose_operating_point(curve, target)
        assert pt is not None and pt["precision"] >= target
        flag = s >= pt["threshold"]
        assert (flag & y).sum() / flag.sum() == pytest.approx(pt["precision"])
        feasible = curve[(curve.precision >= target) & (curve.flagged >= 5)]
        assert pt["recall"] == feasible.recall.max()
    assert ews.choose_operating_point(curve, 1.01) is None


def test_warning_point_never_catches_fewer_defaulters_than_the_rules_it_replaces() -> None:
    s, y = _scored()
    curve = ews.pr_curve(s, y)
    strict = cal.Targets(warning_recall=1.01)  # no point can have the recall margin: the fallback rule decides
    at_target = ews.choose_operating_point(curve, 0.35)
    # rules that catch more defaulters than the target point, at a lower precision: the score matches their recall
    expert = {"precision": 0.12, "recall": min(1.0, at_target["recall"] + 0.1)}
    pt = ews.warning_point(curve, expert, strict)
    assert pt["rule"] == "expert_recall"
    assert pt["recall"] >= expert["recall"] and pt["precision"] > expert["precision"]
    pt = ews.warning_point(curve, {"precision": 0.9, "recall": 0.1}, strict)
    assert pt["rule"] == "precision_target" and pt["threshold"] == at_target["threshold"]


def test_wilson_lower_bound() -> None:
    assert ews.wilson_lower(0, 0) == 0.0 and ews.wilson_lower(0, 50) == 0.0
    assert ews.wilson_lower(56, 70) == pytest.approx(0.6924, abs=1e-3)  # recall 0.80 on 70 positives
    assert ews.wilson_lower(35, 40) == pytest.approx(0.7388, abs=1e-3)
    lbs = ews.wilson_lower(np.array([10, 20, 30]), 40)
    assert np.all(np.diff(lbs) > 0) and np.all(lbs < np.array([10, 20, 30]) / 40)


def _curve(tp: list[int], flagged: list[int], positives: int) -> pd.DataFrame:
    """A curve from the highest threshold down (thresholds 0.99, 0.98, ...)."""
    rows = [
        {
            "threshold": 0.99 - 0.01 * i,
            "flagged": f,
            "true_positives": t,
            "precision": t / f,
            "recall": t / positives,
            "share_flagged": f / 1000,
        }
        for i, (t, f) in enumerate(zip(tp, flagged, strict=False))
    ]
    return pd.DataFrame(rows)


def test_warning_point_has_a_recall_margin_from_the_lower_confidence_bound() -> None:
    # 40 positives. Precision >= 0.35 holds up to recall 0.775 (31 tp): that point's recall lower bound is 0.62
    curve = _curve(tp=[20, 28, 31, 34, 36, 38], flagged=[40, 70, 88, 105, 125, 190], positives=40)
    t = cal.Targets()
    old = ews.choose_operating_point(curve, 0.35)
    assert old["true_positives"] == 31 and ews.wilson_lower(31, 40) < 0.70
    pt = ews.warning_point(curve, {"precision": 0.2, "recall": 0.95}, t, positives=40)
    # the fewest flags whose recall lower bound is >= 0.70 (34/40: 0.85, bound 0.71) while precision is >= 0.30
    assert pt["rule"] == "recall_lower_bound" and pt["true_positives"] == 34
    assert pt["recall_lb"] >= 0.70 and pt["precision"] >= 0.30
    assert ews.wilson_lower(33, 40) < 0.70
    # the positives of the window set the margin: with 400 positives recall 0.775 is already enough
    big = _curve(tp=[200, 280, 310, 340], flagged=[400, 700, 880, 1050], positives=400)
    pt = ews.warning_point(big, {"precision": 0.2, "recall": 0.95}, t, positives=400)
    assert pt["rule"] == "precision_target" and pt["true_positives"] == 310
    # no point with the margin at precision >= 0.30: fallback to the highest recall at precision >= 0.35
    weak = _curve(tp=[10, 20, 25, 30], flagged=[20, 50, 70, 120], positives=40)
    pt = ews.warning_point(weak, {"precision": 0.9, "recall": 0.1}, t, positives=40)
    assert pt["rule"] == "precision_target" and pt["true_positives"] == 25 and pt["recall_lb"] < 0.70
    # positives default to the curve's own
    assert ews.curve_positives(curve) == 40 and ews.warning_point(
        curve, {"precision": 0.2, "recall": 0.95}, t
    ) == ews.warning_point(curve, {"precision": 0.2, "recall": 0.95}, t, positives=40)


def test_pr_curve_never_flags_rows_without_a_signal() -> None:
    curve = ews.pr_curve([0.9, 0.8, 0.1], [True, False, False], flaggable=[False, True, True])
    assert curve.flagged.max() == 2 and curve.true_positives.max() == 0


# ---- windows and fallback ---------------------------------------------------------------------------------


def test_windows_are_in_time_order_and_never_overlap_the_evaluation_months() -> None:
    w = cal.plan_windows(date(2024, 11, 1), date(2026, 10, 1))
    assert w.evaluation_cutoff == date(2026, 4, 1) and w.calibration_cutoff == date(2025, 10, 1)
    cuts = w.fit_cutoffs()
    assert cuts[0] == date(2025, 1, 1) and cuts[-1] == date(2025, 10, 1)
    # every fit outcome window (t, t + 6] and the calibration outcome (C, E] end by E; evaluation is (E, end]
    assert all(cal.add_months(t, w.horizon) <= w.evaluation_cutoff for t in cuts)
    assert max(cuts) <= w.calibration_cutoff < w.evaluation_cutoff < w.end_month
    assert w.history_months == 18


def _synthetic_history(n: int = 1500, months: int = 24, seed: int = 1):
    """Frame with one risk signal: defaulters show arrears in the 5 months before their first 90+ dpd month."""
    rng = np.random.default_rng(seed)
    start = date(2024, 11, 1)
    mlist = [cal.add_months(start, i) for i in range(months)]
    first_default, rows = {}, []
    for i in range(n):
        ck = f"c{i:05d}"
        d = int(rng.integers(6, months)) if rng.random() < 0.12 else None
        if d is not None:
            first_default[ck] = mlist[d]
        for j, m in enumerate(mlist):
            if d is not None and d - 5 <= j < d:
                dpd = 10.0 * (j - d + 6)
            elif rng.random() < 0.06:
                dpd = float(rng.choice([5, 10, 35]))
            else:
                continue
            rows.append(
                {
                    "client_key": ck,
                    "month_end": cal.month_end(m),
                    "expert_rank": ew.SEVERITY_RANK[ew.severity("arrears", dpd)],
                    **ref.feature_row({"arrears": dpd}),
                }
            )
    frame = pd.DataFrame(rows, columns=["client_key", "month_end", "expert_rank", *ewf.FEATURES])
    pop = {m: [f"c{i:05d}" for i in range(n)] for m in mlist}
    return frame, pop, first_default, start, mlist[-1]


def test_too_short_history_falls_back_to_the_expert_thresholds() -> None:
    frame, pop, fd, start, _ = _synthetic_history(months=14)
    w = cal.plan_windows(start, cal.add_months(start, 13))
    c, _ = cal.calibrate(frame, pop, fd, w)
    assert c.method == "expert" and "months of history" in c.reason
    ok, why = cal.history_check(
        cal.plan_windows(start, cal.add_months(start, 23)), fit_positives=5, calibration_positives=30
    )
    assert not ok and "fit window" in why
    # expert levels are the rule levels, untouched
    active = {("a", "arrears"): ref.Observation(35.0, 1.0, date(2026, 1, 31), "warning")}
    assert ref.apply_levels(c, active) == active and cal.level_logits(c) is None


def test_calibration_reads_nothing_after_the_evaluation_cutoff() -> None:
    frame, pop, fd, start, end = _synthetic_history()
    w = cal.plan_windows(start, end)
    c1, _ = cal.calibrate(frame, pop, fd, w)
    assert c1.method == "score", c1.reason
    assert c1.chosen["score"]["warning"]["precision"] >= 0.35
    # the synthetic expert critical rule (dpd >= 60) is exact there: it keeps critical unless the score recalls more
    exc, sc_crit = c1.chosen["expert"]["critical"], c1.chosen["score"]["critical"]
    assert sc_crit is None or sc_crit["recall"] > exc["recall"] or exc["precision"] < 0.65
    # scramble everything after the evaluation cutoff: features and outcomes
    me = cal.month_end(w.evaluation_cutoff)
    late = frame.month_end > me
    noisy = frame.copy()
    noisy.loc[late, "arrears_dpd"] = 2.9
    noisy.loc[late, "arrears_30"] = 1.0
    fd2 = {c: (cal.add_months(d, -1) if cal.add_months(d, -1) > w.evaluation_cutoff else d) for c, d in fd.items()}
    fd2 |= {f"c{i:05d}": end for i in range(0, 1500, 7) if f"c{i:05d}" not in fd}
    c2, _ = cal.calibrate(noisy, pop, fd2, w)
    assert c2.to_dict() == c1.to_dict()


# ---- sign constraints -------------------------------------------------------------------------------------


def test_features_with_the_wrong_business_sign_are_dropped_and_refitted() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    X = pd.DataFrame({f: np.zeros(n) for f in ewf.FEATURES})
    X["arrears_dpd"] = rng.random(n) * 3
    X["inquiries"] = rng.random(n) * 2  # more inquiries = LESS default in this data: wrong sign
    z = 2.0 * X.arrears_dpd - 2.5 * X.inquiries - 1.5
    y = rng.random(n) < 1 / (1 + np.exp(-z))
    sc = ews.fit_score(X, y)
    assert "inquiries" in sc.dropped and "inquiries" not in sc.coefficients
    assert all(v >= 0 for v in sc.coefficients.values()) and sc.coefficients["arrears_dpd"] > 0
    assert set(sc.dropped) >= {f for f in ewf.FEATURES if f not in ("arrears_dpd", "inquiries")}  # no variance


def test_operating_points_are_chosen_on_clients_the_score_was_not_fitted_on() -> None:
    frame, pop, fd, start, end = _synthetic_history(n=600)
    w = cal.plan_windows(start, end)
    fit = pd.concat(
        [cal.slice_at(frame, pop[t], t, fd, cal.add_months(t, 6)) for t in w.fit_cutoffs()], ignore_index=True
    )
    target = cal.slice_at(frame, pop[w.calibration_cutoff], w.calibration_cutoff, fd, w.evaluation_cutoff)
    oof = ews.out_of_fold_scores(fit, target)
    # flipping the labels of one fold's clients in the fit rows leaves that fold's out-of-fold scores unchanged
    k = ews.client_fold(target.client_key.iat[0])
    in_k = np.array([ews.client_fold(c) == k for c in fit.client_key])
    flipped = fit.assign(label=np.where(in_k, ~fit.label.astype(bool), fit.label.astype(bool)))
    again = ews.out_of_fold_scores(flipped, target)
    mask = np.array([ews.client_fold(c) == k for c in target.client_key])
    assert np.allclose(oof[mask], again[mask]) and not np.allclose(oof[~mask], again[~mask])


def _sql_client_levels(c: cal.Calibration, active: dict) -> dict[str, int]:
    """Client levels (0 = none) the SQL levels give one month's observations."""
    con = duckdb.connect()
    rows = [
        (k[0], o.signal_date, k[1], o.observed_value, o.severity_rank)
        for k, o in active.items()
        if k[1] != "multiple_signals"
    ]
    df = pd.DataFrame(rows, columns=["client_key", "month_end", "signal", "observed_value", "severity_rank"])
    con.register("s_df", df.assign(threshold=1.0, signal_date=df.month_end))
    got = con.execute(
        f"SELECT client_key, max(level_rank) FROM ({ew_sql.levels_sql('SELECT * FROM s_df', c)}) GROUP BY 1"
    ).fetchall()
    return {ck: 0 for ck, _ in active} | dict(got)


def test_score_levels_agree_between_the_reference_and_sql() -> None:
    sc = ews.Score(intercept=-3.0, coefficients={"arrears_dpd": 2.0, "n_signals": 0.5})
    c = cal.Calibration(method="score", reason="t", score=sc, warning_threshold=0.3, critical_threshold=0.8)
    m = date(2026, 1, 31)
    active = {
        ("a", "arrears"): ref.Observation(35.0, 1.0, m, "warning"),
        ("a", "inquiries"): ref.Observation(3.0, 3.0, m, "watch"),
        ("b", "arrears"): ref.Observation(80.0, 1.0, m, "critical"),
        ("c", "inquiries"): ref.Observation(4.0, 3.0, m, "watch"),
    }
    sev = {k: ew.SEVERITY_RANK[o.severity] for k, o in active.items()}
    ranked = {k: replace(o, signal_date=m) for k, o in active.items()}
    for k, o in ranked.items():
        object.__setattr__(o, "severity_rank", sev[k])
    out = ref.apply_levels(c, active)
    # no watch point (a calibration made before it existed): watch by the expert rules - c's one weak signal is none
    assert {k: o.severity for k, o in out.items()} == {
        ("a", "arrears"): "warning",
        ("a", "inquiries"): "warning",
        ("b", "arrears"): "critical",
    }
    assert {k: (o.level_driver, o.threshold) for k, o in out.items()} == {
        ("a", "arrears"): ("score", 0.3),
        ("a", "inquiries"): ("score", 0.3),
        ("b", "arrears"): ("score", 0.8),
    }
    assert _sql_client_levels(c, ranked) == {"a": 2, "b": 3, "c": 0}
    # with a watch point the score sets watch too: c (score ~0.07) is on watch from 0.05, a's inquiries keep a's level
    w = replace(c, watch_threshold=0.05)
    out = ref.apply_levels(w, active)
    assert (out[("c", "inquiries")].severity, out[("c", "inquiries")].threshold) == ("watch", 0.05)
    assert _sql_client_levels(w, ranked) == {"a": 2, "b": 3, "c": 1}
    assert ref.apply_levels(replace(c, watch_threshold=0.5), active).keys() == {
        ("a", "arrears"),
        ("a", "inquiries"),
        ("b", "arrears"),
    }
    # without a critical point a signal critical by its own threshold stays critical (expert), the others the score's
    nc = replace(c, critical_threshold=None)
    out = ref.apply_levels(nc, active)
    assert (out[("b", "arrears")].severity, out[("b", "arrears")].level_driver, out[("b", "arrears")].threshold) == (
        "critical",
        "expert",
        1.0,
    )
    # round trip through the JSON store format; an older file (probabilities only) gets its points as logits
    wl = replace(w, **dict(zip(("watch_logit", "warning_logit", "critical_logit"), cal.level_logits(w), strict=False)))
    assert cal.Calibration.from_dict(json.loads(json.dumps(wl.to_dict()))).to_dict() == wl.to_dict()
    old = {k: v for k, v in w.to_dict().items() if not k.endswith("_logit")}
    lw = cal.level_logits(cal.Calibration.from_dict(old))
    assert lw == pytest.approx((np.log(0.05 / 0.95), np.log(0.3 / 0.7), np.log(0.8 / 0.2)))


def test_watch_point_flags_at_most_the_target_share_and_never_above_the_warning_point() -> None:
    curve = ews.pr_curve([0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.01], [1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    warn = {"threshold": 0.8}
    pt = ews.watch_point(curve, 0.30, warn)
    assert pt["threshold"] == 0.6 and pt["share_flagged"] == pytest.approx(0.3) and pt["rule"] == "watch_share"
    # the warning point alone flags more than the share: watch = warning (an empty watch band)
    assert ews.watch_point(curve, 0.10, warn)["threshold"] == 0.8
    assert ews.watch_point(curve, 0.30, None) is None


def test_keep_what_wins_on_the_calibration_window() -> None:
    score = {"precision": 0.40, "recall": 0.80}
    assert cal.choose_method({"precision": 0.22, "recall": 0.95}, score)[0] == "score"  # expert misses the target
    assert cal.choose_method({"precision": 0.50, "recall": 0.85}, score)[0] == "expert"  # expert meets it, more recall
    assert (
        cal.choose_method({"precision": 0.50, "recall": 0.70}, score)[0] == "score"
    )  # both meet it, score recalls more
    assert cal.choose_method({"precision": 0.20, "recall": 0.78}, {"precision": 0.28, "recall": 0.78})[0] == "score"
    assert cal.choose_method({"precision": 0.20, "recall": 0.90}, {"precision": 0.25, "recall": 0.80})[0] == "expert"
    method, why = cal.choose_method({"precision": 0.10, "recall": 0.99}, None)
    assert method == "expert" and "no warning point" in why
    # a score point with its recall margin: the rules stay only with the margin too, precision >= 0.35, as precise
    margin = {"precision": 0.32, "recall": 0.85, "recall_lb": 0.71}
    assert cal.choose_method({"precision": 0.50, "recall": 0.90, "recall_lb": 0.80}, margin)[0] == "expert"
    assert cal.choose_method({"precision": 0.50, "recall": 0.75, "recall_lb": 0.64}, margin)[0] == "score"
    assert cal.choose_method({"precision": 0.25, "recall": 0.95, "recall_lb": 0.88}, margin)[0] == "score"
    method, why = cal.choose_method(
        {"precision": 0.2, "recall": 0.9}, {"precision": 0.4, "recall": 0.6, "recall_lb": 0.5}
    )
    assert method == "score" and "not reachable" in why


def test_new_calibration_on_monthly_retrain_or_when_none_exists() -> None:
    assert cala.should_calibrate("daily_refresh", [])
    assert not cala.should_calibrate("daily_refresh", ["c0001"])
    assert cala.should_calibrate("monthly_retrain", ["c0001"])


def test_evaluation_never_judges_a_calibration_on_months_it_read() -> None:
    w = cal.plan_windows(date(2024, 11, 1), date(2026, 10, 1))
    c = cal.Calibration(method="score", reason="", version="c0003", windows=w)
    assert cala.calibration_for_evaluation(c, date(2026, 4, 1)) is c
    assert cala.calibration_for_evaluation(c, date(2026, 3, 1)).method == "expert"


# ---- the asset on a small synthetic build database ---------------------------------------------------------


def _build_db(path, n: int = 1200, months: int = 24, seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    start = date(2024, 11, 1)
    usage, reports = [], []
    for i in range(n):
        ck = f"k{i:05d}"
        d = int(rng.integers(8, months)) if rng.random() < 0.12 else None
        for j in range(months):
            m = cal.add_months(start, j)
            if d is not None and j > d + 1:
                break
            dpd = 0
            if d is not None and j >= d - 5:
                dpd = min(90, 15 * (j - d + 6))
            elif rng.random() < 0.05:
                dpd = 10
            usage.append((ck, m, dpd, 0.5))
            if j % 3 == 0:
                drop = 40 if d is not None and d - 6 <= j < d else 0
                reports.append((ck, f"r{i}-{j}", cal.month_end(m), 600 - drop * (j // 3), 2, 0, 100.0, 150.0, 10.0))
    con = duckdb.connect(str(path))
    for s in ("marts", "staging", "intermediate"):
        con.execute(f"CREATE SCHEMA {s}")
    con.execute(
        "CREATE TABLE marts.fct_product_usage_monthly (client_key VARCHAR, snapshot_month DATE, "
        "max_days_past_due INTEGER, utilisation DOUBLE)"
    )
    u_df = pd.DataFrame(  # noqa: F841 - read by name by DuckDB (replacement scan)
        usage, columns=["client_key", "snapshot_month", "max_days_past_due", "utilisation"]
    )
    con.execute("INSERT INTO marts.fct_product_usage_monthly SELECT * FROM u_df")  # one insert, not a row at a time
    con.execute(
        "CREATE TABLE staging.stg_bureau__credit_reports (client_key VARCHAR, report_id VARCHAR, report_date DATE, "
        "bureau_score INTEGER, inquiries_6m INTEGER, legal_judgments INTEGER, total_debt DOUBLE, "
        "collateral_value DOUBLE, operating_cash_flow DOUBLE)"
    )
    r_df = pd.DataFrame(  # noqa: F841 - read by name by DuckDB (replacement scan)
        reports,
        columns=[
            "client_key",
            "report_id",
            "report_date",
            "bureau_score",
            "inquiries_6m",
            "legal_judgments",
            "total_debt",
            "collateral_value",
            "operating_cash_flow",
        ],
    )
    con.execute("INSERT INTO staging.stg_bureau__credit_reports SELECT * FROM r_df")
    con.execute(
        f"CREATE TABLE intermediate.int_as_of_date_derived AS SELECT DATE '{cal.add_months(start, months - 1)}' AS "
        "as_of_month"
    )
    con.close()


def test_calibration_asset_writes_a_version_a_table_and_a_chart(tmp_path, monkeypatch) -> None:
    from dagster_project.lib.resources import Warehouse

    monkeypatch.delenv("LENDSEG_MODEL_DIR", raising=False)
    data = tmp_path / "data"
    (data / "build").mkdir(parents=True)
    build = data / "build" / "build.duckdb"
    _build_db(build)
    wh = Warehouse(
        data_dir=str(data),
        landing_dir=str(data / "landing"),
        warehouse_path=str(data / "warehouse.duckdb"),
        build_path=str(build),
        memory_limit="1GB",
        threads=1,
    )
    res = dg.materialize([cala.early_warning_calibration], resources={"warehouse": wh})
    assert res.success
    md = res.asset_materializations_for_node("ml__early_warning_calibration")[0].metadata
    assert md["version"].value == "c0001" and md["new_version"].value is True
    assert "data:image/png;base64," in md["pr_chart"].value and "| score | warning |" in md["chosen_points"].value
    store = data / "models" / "ew_calibration"
    saved = json.loads((store / "c0001.json").read_text())
    assert (store / "c0001.png").exists() and saved["method"] == "score", saved["reason"]
    assert saved["windows"]["evaluation_cutoff"] == "2026-04-01"
    # not monthly_retrain and a version exists: reused, no new file
    res2 = dg.materialize([cala.early_warning_calibration], resources={"warehouse": wh})
    assert (
        res2.asset_materializations_for_node("ml__early_warning_calibration")[0].metadata["new_version"].value is False
    )
    assert ew_store.versions(store) == ["c0001"]
    con = duckdb.connect(str(build), read_only=True)
    try:
        rows = con.execute(
            "SELECT version, method, evaluation_cutoff, fit_positives > 0, calibration_positives > 0 "
            "FROM ml.early_warning_calibration"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("c0001", "score", date(2026, 4, 1), True, True)]


def test_a_gradient_boosting_calibration_file_reads_as_the_expert_thresholds() -> None:
    """The hgb score kind is gone (no SQL form; off by default): an old file of that kind falls back, said so."""
    d = cal.Calibration(
        method="score", reason="t", version="c0007", score=ews.Score(0.0, {}, kind="hgb"), warning_threshold=0.4
    ).to_dict()
    c = cal.Calibration.from_dict(d)
    assert c.method == "expert" and "hgb" in c.reason and cal.level_logits(c) is None


def test_aggregated_rows_fit_the_same_score_as_the_rows_repeated() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    varied = ("arrears_dpd", "score_drop", "inquiries", "n_signals")  # client-months share few distinct vectors
    X = pd.DataFrame({f: (rng.integers(0, 3, n) / 2 if f in varied else np.zeros(n)) for f in ewf.FEATURES})
    y = rng.random(n) < 1 / (1 + np.exp(-(1.2 * X.arrears_dpd + 0.8 * X.score_drop - 0.3 * X.inquiries - 2.5)))
    full = ews.fit_score(X, y)
    agg = X.assign(label=y).groupby([*ewf.FEATURES, "label"], as_index=False).size()
    w = ews.fit_score(agg, agg.label.to_numpy(bool), weights=agg["size"].to_numpy(float))
    assert w.dropped == full.dropped and "inquiries" in full.dropped and len(agg) < n / 20
    for f, v in full.coefficients.items():
        assert w.coefficients[f] == pytest.approx(v, abs=2e-3), f
    assert w.intercept == pytest.approx(full.intercept, abs=2e-3)


def test_pr_curve_of_weighted_rows_is_the_curve_of_the_rows_repeated() -> None:
    s, y = _scored(n=600)
    s = np.round(s, 2)
    df = pd.DataFrame({"s": s, "y": y}).groupby(["s", "y"], as_index=False).size()
    a = ews.pr_curve(s, y)
    b = ews.pr_curve(df.s, df.y, weights=df["size"])
    assert len(a) == len(b) < 100
    pd.testing.assert_frame_equal(a, b)
